package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

// fakeResponder records what the proxy answers, the way the codec's deferred response would
// receive it.
type fakeResponder struct {
	loop     *reactor.Loop
	mu       sync.Mutex
	status   int
	fields   [][2]string
	clen     int64
	body     bytes.Buffer
	flushes  int
	full     bool // what OutputFull reports
	finished bool
	aborted  bool
	done     chan struct{}
}

func newFake(l *reactor.Loop) *fakeResponder {
	return &fakeResponder{loop: l, clen: -1, done: make(chan struct{})}
}

func (f *fakeResponder) SetStatus(code int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = code
	return nil
}
func (f *fakeResponder) AddField(name, value []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fields = append(f.fields, [2]string{string(name), string(value)})
	return nil
}
func (f *fakeResponder) SetContentLength(n int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clen = n
	return nil
}
func (f *fakeResponder) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.body.Write(p)
}
func (f *fakeResponder) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushes++
	return nil
}
func (f *fakeResponder) Finish() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finished = true
	close(f.done)
	return nil
}
func (f *fakeResponder) Abort() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aborted = true
	close(f.done)
}
func (f *fakeResponder) OutputFull() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.full
}
func (f *fakeResponder) SetClose() error                 { return nil }
func (f *fakeResponder) PauseBody()                      {}
func (f *fakeResponder) ResumeBody()                     {}
func (f *fakeResponder) Upgrade(h reactor.Handler) error { return fmt.Errorf("fake: no upgrade") }
func (f *fakeResponder) Loop() *reactor.Loop             { return f.loop }
func (f *fakeResponder) Conn() *reactor.Conn             { return nil }

func (f *fakeResponder) field(name string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, kv := range f.fields {
		if strings.EqualFold(kv[0], name) {
			return kv[1], true
		}
	}
	return "", false
}

func (f *fakeResponder) wait(t *testing.T) {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("response not finished")
	}
}

// waitMoving waits for the response to finish for as long as its body keeps growing: a large
// body under -race on a loaded machine may take longer than any fixed bound, but a stalled one
// stops growing, and that is the failure (10 s without a byte).
func (f *fakeResponder) waitMoving(t *testing.T) {
	t.Helper()
	last, still := -1, time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-f.done:
			return
		case <-tick.C:
		}
		f.mu.Lock()
		n := f.body.Len()
		f.mu.Unlock()
		if n != last {
			last, still = n, time.Now()
		} else if time.Since(still) > testsupport.Scale(10*time.Second) {
			t.Fatalf("response stalled at %d body bytes", n)
		}
	}
}

func testLoop(t *testing.T) *reactor.Loop {
	t.Helper()
	s, err := reactor.NewServer(reactor.HandlerFuncs{}, reactor.WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Loops()[0]
}

func onLoop(t *testing.T, l *reactor.Loop, f func()) {
	t.Helper()
	done := make(chan struct{})
	if err := l.Post(func() { f(); close(done) }); err != nil {
		t.Fatal(err)
	}
	<-done
}

// forwardOnce runs one request through p's first group with a fake responder.
func forwardOnce(t *testing.T, p *Proxy, l *reactor.Loop, raw string) (*fakeResponder, *Exchange) {
	t.Helper()
	f := newFake(l)
	var e *Exchange
	onLoop(t, l, func() {
		r := parseReq(t, crlf(raw))
		e = p.Serve(f, r, p.groups[0], []byte("192.0.2.1"))
	})
	return f, e
}

// rawUpstream serves each accepted connection with serve, on 127.0.0.1:0.
func rawUpstream(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(testsupport.Scale(20 * time.Second)))
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// replyWith answers one request with a fixed response, then holds the connection.
func replyWith(resp string) func(c net.Conn) {
	return func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := nethttp.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		io.WriteString(c, resp)
		c.Read(make([]byte, 1))
	}
}

func refusedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

func TestForwardResponses(t *testing.T) {
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/hello", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("X-Seen-XFF", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Seen-Via", r.Header.Get("Via"))
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "must go")
		w.Header().Set("Keep-Alive", "timeout=5")
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("/stream", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		io.WriteString(w, "one,")
		w.(nethttp.Flusher).Flush()
		io.WriteString(w, "two")
	})
	mux.HandleFunc("/nothing", func(w nethttp.ResponseWriter, r *nethttp.Request) { w.WriteHeader(204) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &nethttp.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	l := testLoop(t)
	p := mustProxy(t, RouteConfig{Prefix: "/", Upstreams: []string{ln.Addr().String()}})

	t.Run("Content-Length", func(t *testing.T) {
		f, _ := forwardOnce(t, p, l, "GET /hello HTTP/1.1\nHost: front\nConnection: keep-alive\n\n")
		f.wait(t)
		if f.status != 200 || f.body.String() != "hello" || f.clen != 5 || !f.finished {
			t.Fatalf("status %d clen %d body %q finished %v", f.status, f.clen, f.body.String(), f.finished)
		}
		if v, _ := f.field("X-Seen-XFF"); v != "192.0.2.1" {
			t.Fatalf("upstream saw X-Forwarded-For %q", v)
		}
		if v, _ := f.field("X-Seen-Via"); v != "1.1 reactord" {
			t.Fatalf("upstream saw Via %q", v)
		}
		if v, _ := f.field("Via"); v != "1.1 reactord" {
			t.Fatalf("response Via %q", v)
		}
		for _, hop := range []string{"Connection", "X-Hop", "Keep-Alive", "Content-Length", "Transfer-Encoding"} {
			if _, ok := f.field(hop); ok {
				t.Fatalf("%s forwarded to the client", hop)
			}
		}
	})
	t.Run("streamed", func(t *testing.T) {
		f, _ := forwardOnce(t, p, l, "GET /stream HTTP/1.1\nHost: front\n\n")
		f.wait(t)
		if f.status != 200 || f.body.String() != "one,two" || f.clen != -1 || f.flushes < 2 {
			t.Fatalf("status %d clen %d body %q flushes %d", f.status, f.clen, f.body.String(), f.flushes)
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		f, _ := forwardOnce(t, p, l, "HEAD /hello HTTP/1.1\nHost: front\n\n")
		f.wait(t)
		if f.status != 200 || f.body.Len() != 0 || f.clen != 5 {
			t.Fatalf("status %d clen %d body %q", f.status, f.clen, f.body.String())
		}
	})
	t.Run("204", func(t *testing.T) {
		f, _ := forwardOnce(t, p, l, "GET /nothing HTTP/1.1\nHost: front\n\n")
		f.wait(t)
		if f.status != 204 || f.clen != -1 || f.body.Len() != 0 {
			t.Fatalf("status %d clen %d", f.status, f.clen)
		}
	})
	t.Run("CONNECT refused", func(t *testing.T) {
		f, e := forwardOnce(t, p, l, "CONNECT example.com:443 HTTP/1.1\nHost: example.com:443\n\n")
		if e == nil || f.status != 405 || !f.finished {
			t.Fatalf("CONNECT: %d", f.status)
		}
	})
	u := p.groups[0].ups[0]
	if got := counterValue(p.metrics.requests.WithLabelValues(u.Name, "/", "2xx")); got != 4 {
		t.Fatalf("2xx counted %v, want 4", got)
	}
}

func TestForwardFailures(t *testing.T) {
	l := testLoop(t)
	tests := []struct {
		name    string
		ups     []string
		rc      RouteConfig
		status  int
		aborted bool
		body    string
		kind    string // error kind counted for the first upstream
	}{
		{"refused", []string{refusedAddr(t)}, RouteConfig{}, 502, false, "", errConnect},
		{"stall", []string{rawUpstream(t, func(c net.Conn) { c.Read(make([]byte, 1<<10)); c.Read(make([]byte, 1)) })},
			RouteConfig{HeaderTimeout: testsupport.Scale(100 * time.Millisecond)}, 504, false, "", errTimeout},
		{"malformed", []string{rawUpstream(t, replyWith("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"))}, RouteConfig{}, 502, false, "", errProtocol},
		{"closed mid-body", []string{rawUpstream(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			nethttp.ReadRequest(br)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
		})}, RouteConfig{}, 200, true, "partial", errClosed},
		{"next upstream after a refusal", []string{refusedAddr(t), rawUpstream(t, replyWith("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))},
			RouteConfig{}, 200, false, "ok", errConnect},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := tc.rc
			rc.Prefix, rc.Upstreams = "/", tc.ups
			p := mustProxy(t, rc)
			f, _ := forwardOnce(t, p, l, "GET / HTTP/1.1\nHost: front\n\n")
			f.wait(t)
			if f.status != tc.status || f.aborted != tc.aborted || (tc.body != "" && f.body.String() != tc.body) {
				t.Fatalf("status %d aborted %v body %q", f.status, f.aborted, f.body.String())
			}
			u := p.groups[0].ups[0]
			if tc.kind != "" {
				if got := counterValue(p.metrics.errors.WithLabelValues(u.Name, "/", tc.kind)); got != 1 {
					t.Fatalf("%s errors counted %v", tc.kind, got)
				}
			}
			if u.fails.Load() != 1 {
				t.Fatalf("consecutive failures %d, want 1", u.fails.Load())
			}
			testsupport.Eventually(t, 0, "no request in flight", func() bool { return u.active.Load() == 0 })
		})
	}
}

// TestForwardBackpressure: while the client's output is full the upstream is not read; the
// server side's Writable resumes it.
func TestForwardBackpressure(t *testing.T) {
	const size = 16 << 20
	wrote := make(chan struct{})
	addr := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := nethttp.ReadRequest(br); err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
		c.Write(bytes.Repeat([]byte("x"), size))
		close(wrote)
		c.Read(make([]byte, 1))
	})
	l := testLoop(t)
	p := mustProxy(t, RouteConfig{Prefix: "/", Upstreams: []string{addr}})
	f := newFake(l)
	f.full = true
	var e *Exchange
	onLoop(t, l, func() { e = p.Serve(f, parseReq(t, crlf("GET / HTTP/1.1\nHost: h\n\n")), p.groups[0], nil) })
	testsupport.Eventually(t, 0, "first piece", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.body.Len() > 0
	})
	select {
	case <-wrote:
		t.Fatal("the upstream wrote everything while the client was full")
	case <-time.After(testsupport.Scale(200 * time.Millisecond)):
	}
	f.mu.Lock()
	f.full = false
	f.mu.Unlock()
	onLoop(t, l, e.Writable)
	f.waitMoving(t)
	if f.body.Len() != size {
		t.Fatalf("forwarded %d of %d", f.body.Len(), size)
	}
}

// TestForwardClientGone: a client that leaves mid-response cancels the upstream exchange.
func TestForwardClientGone(t *testing.T) {
	closed := make(chan struct{})
	addr := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := nethttp.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
		c.Read(make([]byte, 1)) // returns once the proxy closes its side
		close(closed)
	})
	l := testLoop(t)
	p := mustProxy(t, RouteConfig{Prefix: "/", Upstreams: []string{addr}})
	f := newFake(l)
	var e *Exchange
	onLoop(t, l, func() { e = p.Serve(f, parseReq(t, crlf("GET / HTTP/1.1\nHost: h\n\n")), p.groups[0], nil) })
	testsupport.Eventually(t, 0, "head forwarded", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.status == 200
	})
	onLoop(t, l, e.Gone)
	select {
	case <-closed:
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("upstream connection not closed after the client left")
	}
	u := p.groups[0].ups[0]
	if got := counterValue(p.metrics.errors.WithLabelValues(u.Name, "/", errClient)); got != 1 || u.active.Load() != 0 {
		t.Fatalf("client errors %v, active %d", got, u.active.Load())
	}
	if u.fails.Load() != 0 {
		t.Fatal("a client leaving counted against the upstream's health")
	}
}

var _ prometheus.Collector = (*upstreamCollector)(nil)

// counterValue reads a counter's value.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
