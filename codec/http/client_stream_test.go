package http

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

// bodyProducer streams a request body with SendStream on the loop: piece by piece, every
// `every` (0: as fast as the output allows), stopping at OutputFull and going on at
// OnExchangeWritable, then EndBody. It records the response.
type bodyProducer struct {
	l       *reactor.Loop
	body    []byte
	piece   int
	every   time.Duration
	x       *Exchange
	off     int
	waiting bool // paused at OutputFull
	fulls   atomic.Int64
	status  int
	resp    bytes.Buffer
	end     chan error
}

func (p *bodyProducer) produce() {
	for p.off < len(p.body) && !p.waiting {
		n := min(p.piece, len(p.body)-p.off)
		p.x.Write(p.body[p.off : p.off+n])
		p.off += n
		if p.off == len(p.body) {
			p.x.EndBody()
			return
		}
		if p.x.OutputFull() {
			p.waiting = true
			p.fulls.Add(1)
			return
		}
		if p.every > 0 {
			p.l.AfterFunc(p.every, p.produce)
			return
		}
	}
}

func (p *bodyProducer) OnExchangeWritable(x *Exchange) {
	if p.waiting {
		p.waiting = false
		p.produce()
	}
}
func (p *bodyProducer) OnResponse(x *Exchange, r *Response)  { p.status = r.Status() }
func (p *bodyProducer) OnResponseBody(x *Exchange, b []byte) { p.resp.Write(b) }
func (p *bodyProducer) OnResponseEnd(x *Exchange, err error) {
	p.off = len(p.body) // x is gone: produce no more
	p.end <- err
}

// start sends the head on l and begins the body.
func (p *bodyProducer) start(t *testing.T, c *Client, head string) {
	t.Helper()
	p.end = make(chan error, 1)
	runOnLoop(t, p.l, func() {
		x, err := c.SendStream(p.l, []byte(head), p)
		if err != nil {
			t.Errorf("SendStream: %v", err)
			return
		}
		p.x = x
		p.produce()
	})
}

func (p *bodyProducer) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.end:
		return err
	case <-time.After(testsupport.Scale(30 * time.Second)):
		t.Fatal("no OnResponseEnd")
		return nil
	}
}

// TestClientSendStream: a request body streamed with SendStream arrives intact, Content-Length
// and chunked; no header timeout runs while it is being sent (it is sent more slowly than the
// timeout); a request that waits for a connection (MaxConns) holds its body and is told to go
// on when it gets one; an upstream that takes none of the body fails it after ReadTimeout; an
// upstream that answers before the body is complete is heard, and its connection not reused.
func TestClientSendStream(t *testing.T) {
	up := startUpstream(t, nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%x %d %d %v", sha256.Sum256(b), len(b), r.ContentLength, err)
	}))
	l := clientLoop(t)
	// A header timeout shorter than the slow body takes to send.
	c := newClient(t, "tcp", up.addr, ClientConfig{HeaderTimeout: 100 * time.Millisecond})
	c1 := newClient(t, "tcp", up.addr, ClientConfig{MaxConns: 1})
	body := bytes.Repeat([]byte("stream-me-"), 300<<10) // 3 MiB
	want := func(n int, cl int64) string {
		return fmt.Sprintf("%x %d %d <nil>", sha256.Sum256(body[:n]), n, cl)
	}

	// Slow: 20 pieces 15 ms apart, three times the header timeout in all.
	slow := &bodyProducer{l: l, body: body[:20*1000], piece: 1000, every: 15 * time.Millisecond}
	slow.start(t, c, "POST /slow HTTP/1.1\r\nHost: u\r\nContent-Length: 20000\r\n\r\n")
	if err := slow.wait(t); err != nil || slow.status != 200 || slow.resp.String() != want(20000, 20000) {
		t.Fatalf("slow body: %v %d %q", err, slow.status, slow.resp.String())
	}
	// With MaxConns 1, one behind another: the second waits for the connection, holding its
	// body meanwhile.
	first := &bodyProducer{l: l, body: body[:10*1000], piece: 1000, every: 10 * time.Millisecond}
	first.start(t, c1, "POST /first HTTP/1.1\r\nHost: u\r\nContent-Length: 10000\r\n\r\n")
	fast := &bodyProducer{l: l, body: body, piece: 32 << 10}
	fast.start(t, c1, "PUT /fast HTTP/1.1\r\nHost: u\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n")
	if err := first.wait(t); err != nil || first.resp.String() != want(10000, 10000) {
		t.Fatalf("first body: %v %q", err, first.resp.String())
	}
	if err := fast.wait(t); err != nil || fast.resp.String() != want(len(body), int64(len(body))) {
		t.Fatalf("waiting body: %v %q", err, fast.resp.String())
	}
	if fast.fulls.Load() == 0 {
		t.Fatal("a 3 MiB body never found the output full")
	}

	// Chunked, framed by the caller.
	var framed bytes.Buffer
	for off := 0; off < len(body); off += 100000 {
		end := min(off+100000, len(body))
		fmt.Fprintf(&framed, "%x\r\n%s\r\n", end-off, body[off:end])
	}
	framed.WriteString("0\r\n\r\n")
	ch := &bodyProducer{l: l, body: framed.Bytes(), piece: 50000}
	ch.start(t, c1, "POST /chunked HTTP/1.1\r\nHost: u\r\nTransfer-Encoding: chunked\r\n\r\n")
	if err := ch.wait(t); err != nil || ch.resp.String() != want(len(body), -1) {
		t.Fatalf("chunked body: %v %q", err, ch.resp.String())
	}

	// An upstream that reads the head and then nothing.
	release := make(chan struct{})
	stall := rawUpstream(t, func(n int, conn net.Conn) {
		nethttp.ReadRequest(bufio.NewReader(conn))
		<-release // reads nothing more until the test ends
	})
	t.Cleanup(func() { close(release) })
	sc := newClient(t, "tcp", stall, ClientConfig{ReadTimeout: 200 * time.Millisecond})
	st := &bodyProducer{l: l, body: bytes.Repeat(body, 20), piece: 256 << 10}
	st.start(t, sc, "POST /stall HTTP/1.1\r\nHost: u\r\nContent-Length: "+strconv.Itoa(20*len(body))+"\r\n\r\n")
	if err := st.wait(t); !errors.Is(err, ErrResponseTimeout) {
		t.Fatalf("stalled upstream: %v, want ErrResponseTimeout", err)
	}

	// An upstream that answers at once, before the body is all sent.
	var accepted atomic.Int64
	early := rawUpstream(t, func(n int, conn net.Conn) {
		accepted.Add(1)
		br := bufio.NewReader(conn)
		for {
			req, err := nethttp.ReadRequest(br)
			if err != nil {
				return
			}
			if req.URL.Path == "/early" {
				// Refused at once; the body that follows is left unread.
				io.WriteString(conn, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 2\r\n\r\nno")
				io.Copy(io.Discard, conn)
				return
			}
			io.Copy(io.Discard, req.Body)
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	ec := newClient(t, "tcp", early, ClientConfig{})
	ep := &bodyProducer{l: l, body: body, piece: 1000, every: time.Millisecond}
	ep.start(t, ec, "POST /early HTTP/1.1\r\nHost: u\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n")
	if err := ep.wait(t); err != nil || ep.status != 413 {
		t.Fatalf("early answer: %v %d", err, ep.status)
	}
	if r := do(t, ec, l, &ClientRequest{Method: "GET", Target: "/next"}); r.err != nil || r.body != "ok" {
		t.Fatalf("next request: %+v", r)
	}
	if n := accepted.Load(); n != 2 {
		t.Fatalf("%d upstream connections, want 2: the one answered early is not reused", n)
	}
}
