package http

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

// deferRec is a DeferredHandler that records its events.
type deferRec struct {
	mu       sync.Mutex
	writable int
	gone     []error
	goneCh   chan error
	onWrite  func(d *Deferred)
}

func newDeferRec() *deferRec { return &deferRec{goneCh: make(chan error, 16)} }

func (r *deferRec) OnDeferredWritable(d *Deferred) {
	r.mu.Lock()
	r.writable++
	r.mu.Unlock()
	if r.onWrite != nil {
		r.onWrite(d)
	}
}

func (r *deferRec) OnDeferredEnd(d *Deferred, err error) {
	if err == nil {
		return
	}
	r.mu.Lock()
	r.gone = append(r.gone, err)
	r.mu.Unlock()
	r.goneCh <- err
}

// TestDeferredInOrder: pipelined requests answered late, inline and early leave in request
// order; the deferred ones are finished from loop timers after the handler returned.
func TestDeferredInOrder(t *testing.T) {
	rec := newDeferRec()
	h := HandlerFunc(func(w *ResponseWriter, r *Request) {
		path := string(r.Path())
		var delay time.Duration
		switch path {
		case "/inline":
			w.WriteString("inline")
			return
		case "/slow":
			delay = testsupport.Scale(50 * time.Millisecond)
		case "/fast":
		}
		w.Set("X-Deferred", "yes")
		d, err := w.Defer(rec)
		if err != nil {
			panic(err)
		}
		if _, err := w.WriteString("too late"); err != ErrFinished {
			panic(fmt.Sprintf("write to w after Defer: %v", err))
		}
		d.Loop().AfterFunc(delay, func() {
			d.SetContentLength(int64(len(path)))
			d.WriteString(path)
			d.Finish()
		})
	})
	var infos []string
	var mu sync.Mutex
	_, addr := startServer(t, h, WithObserver(func(i *RequestInfo) {
		mu.Lock()
		infos = append(infos, fmt.Sprintf("%s %d %d", i.Path, i.Status, i.BytesOut))
		mu.Unlock()
	}))
	cl := dialClient(t, addr)
	cl.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /inline HTTP/1.1\r\nHost: a\r\n\r\nGET /fast HTTP/1.1\r\nHost: a\r\n\r\nGET /inline HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, want := range []string{"/slow", "inline", "/fast", "inline"} {
		resp, body := cl.read("GET")
		if body != want || resp.StatusCode != 200 {
			t.Fatalf("got %d %q, want %q", resp.StatusCode, body, want)
		}
		if want[0] == '/' && resp.Header.Get("X-Deferred") != "yes" {
			t.Fatal("header set before Defer lost")
		}
	}
	testsupport.Eventually(t, 0, "four observed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(infos) == 4
	})
	if infos[0][:5] != "/slow" || infos[2][:5] != "/fast" {
		t.Fatalf("observer order %q", infos)
	}
}

// TestDeferredBackpressure: a deferred response streams a body much larger than the
// watermarks; OutputFull and OnDeferredWritable pace it, so the server never holds it whole.
func TestDeferredBackpressure(t *testing.T) {
	const size = 16 << 20
	chunk := bytes.Repeat([]byte("z"), 64<<10)
	var maxBuffered int
	rec := newDeferRec()
	var sent int
	pump := func(d *Deferred) {
		for sent < size {
			d.Write(chunk)
			d.Flush()
			sent += len(chunk)
			rec.mu.Lock()
			if b := d.cs.c.Buffered(); b > maxBuffered {
				maxBuffered = b
			}
			rec.mu.Unlock()
			if d.OutputFull() {
				return // OnDeferredWritable calls pump again
			}
		}
		d.Finish()
	}
	rec.onWrite = pump
	h := HandlerFunc(func(w *ResponseWriter, r *Request) {
		d, err := w.Defer(rec)
		if err != nil {
			panic(err)
		}
		d.SetContentLength(size)
		d.Loop().AfterFunc(0, func() { pump(d) })
	})
	_, addr := startServer(t, h, WithReactorOptions(reactor.WithLoops(1), reactor.WithWatermarks(256<<10, 0)))
	cl := dialClient(t, addr)
	cl.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := cl.read("GET")
	if resp.StatusCode != 200 || len(body) != size {
		t.Fatalf("%d, %d bytes", resp.StatusCode, len(body))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if maxBuffered > 512<<10 {
		t.Fatalf("%d bytes buffered at once: the producer was not paced", maxBuffered)
	}
	if rec.writable == 0 {
		t.Fatal("OnDeferredWritable never called")
	}
}

// TestDeferredClientGone: the client leaving before the response is finished tells the
// producer, once, and the Deferred refuses further use.
func TestDeferredClientGone(t *testing.T) {
	rec := newDeferRec()
	got := make(chan *Deferred, 1)
	h := HandlerFunc(func(w *ResponseWriter, r *Request) {
		d, err := w.Defer(rec)
		if err != nil {
			panic(err)
		}
		got <- d
	})
	s, addr := startServer(t, h, WithReactorOptions(reactor.WithLoops(1)))
	cl := dialClient(t, addr)
	cl.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	d := <-got
	// A reset, not a FIN: after a FIN (a half-close) the response is still delivered.
	cl.c.(*net.TCPConn).SetLinger(0)
	cl.c.Close()
	select {
	case err := <-rec.goneCh:
		if !errors.Is(err, ErrClientGone) {
			t.Fatalf("OnDeferredEnd(%v)", err)
		}
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("OnDeferredEnd(err) not called")
	}
	done := make(chan error, 1)
	s.Reactor().Loops()[0].Post(func() { done <- d.Finish() })
	if err := <-done; !errors.Is(err, ErrClientGone) {
		t.Fatalf("Finish after the client left: %v", err)
	}
}

// TestDeferredHalfClose: a client that sends its request and shuts its writing side still
// gets the deferred answer.
func TestDeferredHalfClose(t *testing.T) {
	rec := newDeferRec()
	h := HandlerFunc(func(w *ResponseWriter, r *Request) {
		d, _ := w.Defer(rec)
		d.Loop().AfterFunc(testsupport.Scale(20*time.Millisecond), func() {
			d.WriteString("late")
			d.Finish()
		})
	})
	_, addr := startServer(t, h)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(testsupport.Deadline(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	c.(*net.TCPConn).CloseWrite()
	all, err := io.ReadAll(c)
	if err != nil || !bytes.HasSuffix(all, []byte("late")) {
		t.Fatalf("%q %v", all, err)
	}
}

// TestDeferredThenFile: a static file answered inline behind a deferred response waits its
// turn, and is still sent with sendfile.
func TestDeferredThenFile(t *testing.T) {
	dir := t.TempDir()
	content := strings.Repeat("file!", 10000)
	path := filepath.Join(dir, "f")
	os.WriteFile(path, []byte(content), 0o644)
	rec := newDeferRec()
	h := HandlerFunc(func(w *ResponseWriter, r *Request) {
		if string(r.Path()) == "/file" {
			f, err := os.Open(path)
			if err != nil {
				panic(err)
			}
			defer f.Close()
			if err := w.SendFile(f, 0, int64(len(content))); err != nil {
				panic(err)
			}
			return
		}
		d, _ := w.Defer(rec)
		d.Loop().AfterFunc(testsupport.Scale(30*time.Millisecond), func() {
			d.WriteString("deferred first")
			d.Finish()
		})
	})
	_, addr := startServer(t, h)
	cl := dialClient(t, addr)
	cl.send("GET /d HTTP/1.1\r\nHost: a\r\n\r\nGET /file HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body := cl.read("GET"); body != "deferred first" {
		t.Fatalf("first %q", body)
	}
	if _, body := cl.read("GET"); body != content {
		t.Fatalf("file body %d bytes", len(body))
	}
}

// TestDeferredUpgrade: a deferred 101 hands the connection to a new handler; the bytes the
// client sent after the request are not parsed as HTTP.
func TestDeferredUpgrade(t *testing.T) {
	rec := newDeferRec()
	echo := reactor.HandlerFuncs{Data: func(c *reactor.Conn, in []byte) int {
		c.Write(bytes.ToUpper(in))
		return len(in)
	}}
	h := HandlerFunc(func(w *ResponseWriter, r *Request) {
		d, err := w.Defer(rec)
		if err != nil {
			panic(err)
		}
		d.Loop().AfterFunc(testsupport.Scale(20*time.Millisecond), func() {
			d.Set("Upgrade", "shout")
			if err := d.Upgrade(echo); err != nil {
				panic(err)
			}
		})
	})
	_, addr := startServer(t, h)
	cl := dialClient(t, addr)
	// "GET /x" after the request must reach the new protocol, not the HTTP parser.
	cl.send("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: shout\r\nConnection: Upgrade\r\n\r\nGET /x")
	resp, err := nethttp.ReadResponse(cl.br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v %v", resp, err)
	}
	got := make([]byte, 6)
	if _, err := io.ReadFull(cl.br, got); err != nil || string(got) != "GET /X" {
		t.Fatalf("%q %v", got, err)
	}
}

// TestDeferredErrors: Defer refuses misuse.
func TestDeferredErrors(t *testing.T) {
	var w ResponseWriter
	if _, err := w.Defer(nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatal(err)
	}
	w.Begin(nil, nil)
	if _, err := w.Defer(newDeferRec()); !errors.Is(err, ErrDeferUnavailable) {
		t.Fatalf("Defer on a standalone writer: %v", err)
	}
	results := make(chan error, 1)
	h := HandlerFunc(func(w *ResponseWriter, r *Request) {
		w.WriteString("x")
		_, err := w.Defer(newDeferRec())
		results <- err
	})
	_, addr := startServer(t, h)
	cl := dialClient(t, addr)
	cl.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if err := <-results; !errors.Is(err, ErrDeferUnavailable) {
		t.Fatalf("Defer after a body write: %v", err)
	}
	cl.read("GET")
}

// TestDeferredPipelineLimit: at most WithMaxPipeline responses are owed; the rest of a
// pipelined batch waits in the connection until one is done.
func TestDeferredPipelineLimit(t *testing.T) {
	var mu sync.Mutex
	var pending []*Deferred
	maxOwed := 0
	rec := newDeferRec()
	h := HandlerFunc(func(w *ResponseWriter, r *Request) {
		d, _ := w.Defer(rec)
		mu.Lock()
		pending = append(pending, d)
		if len(pending) > maxOwed {
			maxOwed = len(pending)
		}
		mu.Unlock()
		d.Loop().AfterFunc(testsupport.Scale(5*time.Millisecond), func() {
			mu.Lock()
			pending = pending[1:]
			mu.Unlock()
			d.WriteString("ok")
			d.Finish()
		})
	})
	_, addr := startServer(t, h, WithMaxPipeline(4))
	cl := dialClient(t, addr)
	cl.send(strings.Repeat("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 12))
	for i := 0; i < 12; i++ {
		if _, body := cl.read("GET"); body != "ok" {
			t.Fatalf("%d: %q", i, body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if maxOwed > 4 {
		t.Fatalf("%d responses owed at once, want at most 4", maxOwed)
	}
}

// TestDeferredZeroAlloc: a deferred response finished within its handler's loop costs no
// allocation once the loop's free list is warm (the client side reads fixed-size responses
// into one buffer, so AllocsPerRun sees the server alone).
func TestDeferredZeroAlloc(t *testing.T) {
	rec := newDeferRec()
	body := []byte("Hello, World!")
	h := HandlerFunc(func(w *ResponseWriter, r *Request) {
		d, err := w.Defer(rec)
		if err != nil {
			panic(err)
		}
		d.SetContentLength(int64(len(body)))
		d.Write(body)
		d.Finish()
	})
	_, addr := startServer(t, h, WithServerName("reactord"), WithReactorOptions(reactor.WithLoops(1)))
	cl := dialClient(t, addr)
	req := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	one := len("HTTP/1.1 200 OK\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nServer: reactord\r\nContent-Length: 13\r\n\r\nHello, World!")
	buf := make([]byte, one)
	round := func() {
		if _, err := cl.c.Write(req); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(cl.c, buf); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 50; i++ {
		round()
	}
	if !bytes.HasSuffix(buf, body) {
		t.Fatalf("unexpected response %q", buf)
	}
	if a := testing.AllocsPerRun(300, round); a != 0 {
		t.Fatalf("%.2f allocations per deferred response, want 0", a)
	}
}

// TestDeferredLastRequest: after a deferred request that closes the connection ("Connection:
// close"), nothing more is parsed: a request pipelined after it never reaches the handler.
func TestDeferredLastRequest(t *testing.T) {
	rec := newDeferRec()
	var mu sync.Mutex
	var seen []string
	h := HandlerFunc(func(w *ResponseWriter, r *Request) {
		mu.Lock()
		seen = append(seen, string(r.Path()))
		mu.Unlock()
		d, _ := w.Defer(rec)
		d.Loop().AfterFunc(testsupport.Scale(10*time.Millisecond), func() {
			d.WriteString("only")
			d.Finish()
		})
	})
	_, addr := startServer(t, h)
	cl := dialClient(t, addr)
	cl.send("GET /first HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := cl.read("GET")
	if body != "only" || !resp.Close {
		t.Fatalf("%q close=%v", body, resp.Close)
	}
	if !cl.closed() {
		t.Fatal("connection open after the last response")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 {
		t.Fatalf("handler saw %q", seen)
	}
}
