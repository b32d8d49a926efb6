package http

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// earlyServer is a native handler whose StreamBody returns a BodyReceiver: the request is
// answered (deferred) at head time, the body hashed as it arrives, paused every pauseEvery
// bytes for a moment as a slow consumer would, and the response finished at EndBody.
type earlyServer struct {
	pauseEvery int64
	mu         sync.Mutex
	events     []string // "handle", "end <err>", violations
	ends       chan error
}

type earlyRecv struct {
	s       *earlyServer
	d       *Deferred
	h       hash.Hash
	n       int64
	paused  bool
	handled bool
	ended   bool
	next    int64
}

func (s *earlyServer) note(e string) {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
}

func (s *earlyServer) eventList() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.events...)
}

func (s *earlyServer) StreamBody(r *Request) io.Writer {
	return &earlyRecv{s: s, h: sha256.New(), next: s.pauseEvery}
}

func (s *earlyServer) Handle(w *ResponseWriter, r *Request) {
	w.WriteString("not early")
}

func (e *earlyRecv) Handle(w *ResponseWriter, r *Request) {
	e.handled = true
	if !r.Streamed() || len(r.Body()) != 0 {
		e.s.note("handle without a streamed body")
	}
	e.s.note("handle " + string(r.Path()))
	d, err := w.Defer(e)
	if err != nil {
		e.s.note("defer: " + err.Error())
		return
	}
	e.d = d
}

func (e *earlyRecv) Write(p []byte) (int, error) {
	switch {
	case !e.handled:
		e.s.note("write before handle")
	case e.paused:
		e.s.note("write while paused")
	}
	e.h.Write(p)
	e.n += int64(len(p))
	if e.s.pauseEvery > 0 && e.n >= e.next && e.d != nil {
		e.next = e.n + e.s.pauseEvery
		e.paused = true
		e.d.PauseBody()
		e.d.Loop().AfterFunc(5*time.Millisecond, func() {
			e.paused = false
			if !e.ended {
				e.d.ResumeBody()
			}
		})
	}
	return len(p), nil
}

func (e *earlyRecv) EndBody(r *Request, err error) {
	e.ended = true
	e.s.note(fmt.Sprintf("end %v", err))
	if e.s.ends != nil {
		e.s.ends <- err
	}
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) && e.d != nil {
			e.d.SetStatus(pe.Status)
			e.d.Finish()
		}
		return
	}
	trailer := ""
	for i := 0; i < r.NumTrailers(); i++ {
		name, value := r.TrailerAt(i)
		trailer += " " + string(name) + "=" + string(value)
	}
	fmt.Fprintf(e.d, "early %d %x%s", e.n, e.h.Sum(nil), trailer)
	e.d.Finish()
}

func (e *earlyRecv) OnDeferredWritable(*Deferred) {}
func (e *earlyRecv) OnDeferredEnd(d *Deferred, err error) {
	if err != nil {
		e.s.note("deferred end " + err.Error())
	}
}

// TestBodyReceiver: a BodyReceiver is handled at head time (before any body byte reaches it),
// gets the body in order while it pauses and resumes it (no Write comes while paused), finishes
// its deferred response at EndBody (trailers of a chunked body readable), and the connection
// carries the next request; a malformed chunked body ends with the *ParseError and the
// connection closes after the receiver's answer; a client that leaves mid-body ends it with
// ErrClientGone.
func TestBodyReceiver(t *testing.T) {
	s := &earlyServer{pauseEvery: 256 << 10, ends: make(chan error, 8)}
	_, addr := startServer(t, s)
	const total = 4 << 20
	body := bytes.Repeat([]byte("0123456789abcdef"), total/16)
	cl := dialClient(t, addr)
	cl.send("POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(total) + "\r\n\r\n")
	testsupport.Eventually(t, 0, "Handle to run on the head alone", func() bool {
		ev := s.eventList()
		return len(ev) > 0 && ev[0] == "handle /cl"
	})
	cl.send(string(body))
	want := fmt.Sprintf("early %d %x", total, sha256.Sum256(body))
	if _, rb := cl.read("POST"); rb != want {
		t.Fatalf("%q, want %q", rb, want)
	}
	// Chunked, with a trailer, on the same connection.
	var sb strings.Builder
	for off := 0; off < total; off += 100000 {
		end := min(off+100000, total)
		fmt.Fprintf(&sb, "%x;ext=1\r\n%s\r\n", end-off, body[off:end])
	}
	sb.WriteString("0\r\nCheck: yes\r\n\r\n")
	cl.send("POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + sb.String())
	want = fmt.Sprintf("early %d %x Check=yes", total, sha256.Sum256(body))
	if _, rb := cl.read("POST"); rb != want {
		t.Fatalf("chunked: %q, want %q", rb, want)
	}
	for _, e := range s.eventList() {
		if strings.Contains(e, "before") || strings.Contains(e, "paused") || strings.Contains(e, "without") {
			t.Fatalf("violation: %s (events %q)", e, s.eventList())
		}
	}
	for i := 0; i < 2; i++ {
		if err := <-s.ends; err != nil {
			t.Fatalf("end %d: %v", i, err)
		}
	}

	// Malformed chunk size mid-body: the receiver answers with the error's status; the
	// connection closes.
	cl2 := dialClient(t, addr)
	cl2.send("POST /bad HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
	if err := <-s.ends; !errors.Is(err, ErrChunkSize) && statusOf(err) != 400 {
		t.Fatalf("malformed body ended with %v", err)
	}
	resp, _ := cl2.read("POST")
	if resp.StatusCode != 400 || !resp.Close {
		t.Fatalf("malformed body: status %d close %v", resp.StatusCode, resp.Close)
	}
	testsupport.Eventually(t, 0, "the connection to close", cl2.closed)

	// The client leaves mid-body.
	cl3 := dialClient(t, addr)
	cl3.send("POST /gone HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n" + string(body[:300000]))
	cl3.c.Close()
	select {
	case err := <-s.ends:
		if !errors.Is(err, ErrClientGone) {
			t.Fatalf("client gone: EndBody(%v)", err)
		}
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("no EndBody after the client left")
	}
}
