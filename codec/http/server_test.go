package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

// nilContext is a nil context.Context, for the argument checks.
var nilContext context.Context

func TestNewServerValidation(t *testing.T) {
	tests := []struct {
		name string
		h    Handler
		opts []Option
		want error
	}{
		{"nil handler", nil, nil, ErrInvalidArgument},
		{"nil func", HandlerFunc(nil), nil, ErrInvalidArgument},
		{"nil option", hello, []Option{nil}, ErrInvalidOption},
		{"negative timeout", hello, []Option{WithReadHeaderTimeout(-1)}, ErrInvalidOption},
		{"negative idle", hello, []Option{WithIdleTimeout(-time.Second)}, ErrInvalidOption},
		{"bad limits", hello, []Option{WithLimits(Limits{MaxHeaderCount: -1})}, ErrInvalidOption},
		{"bad workers", hello, []Option{WithWorkers(0)}, ErrInvalidOption},
		{"bad pipeline", hello, []Option{WithMaxPipeline(0)}, ErrInvalidOption},
		{"nil observer", hello, []Option{WithObserver(nil)}, ErrInvalidOption},
		{"nil logger", hello, []Option{WithLogger(nil)}, ErrInvalidOption},
		{"bad server name", hello, []Option{WithServerName("a\r\nb")}, ErrInvalidOption},
		{"negative max requests", hello, []Option{WithMaxRequestsPerConn(-1)}, ErrInvalidOption},
		{"bad reactor option", hello, []Option{WithReactorOptions(reactor.WithLoops(-1))}, reactor.ErrInvalidOption},
		{"nil base context", hello, []Option{WithBaseContext(nilContext)}, ErrInvalidOption},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewServer(tc.h, tc.opts...)
			if !errors.Is(err, tc.want) {
				t.Fatalf("NewServer = %v, %v; want %v", s, err, tc.want)
			}
		})
	}
	if s, err := NewServer(hello); err != nil {
		t.Fatal(err)
	} else {
		s.Close()
	}
}

// TestServerRequests drives good and bad requests over TCP and checks status, body and whether
// the connection stays open (a second request is then answered) or is closed.
func TestServerRequests(t *testing.T) {
	_, addr := startServer(t, echo, WithReactorOptions(reactor.WithLoops(1)))
	tests := []struct {
		name   string
		req    string
		method string
		status int
		body   string
		close  bool
	}{
		{"get", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET", 200, "", false},
		{"post cl", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", "POST", 200, "hello", false},
		{"post chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "POST", 200, "hello world", false},
		{"http10 default close", "GET / HTTP/1.0\r\n\r\n", "GET", 200, "", true},
		{"http10 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET", 200, "", false},
		{"http11 close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "GET", 200, "", true},
		{"missing host", "GET / HTTP/1.1\r\n\r\n", "GET", 400, "", true},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", "GET", 400, "", true},
		{"cl and te", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "POST", 400, "", true},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", "POST", 400, "", true},
		{"unknown te", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", "POST", 501, "", true},
		{"version", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", "GET", 505, "", true},
		{"expectation", "GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", "GET", 417, "", true},
		{"bare lf", "GET / HTTP/1.1\nHost: a\n\n", "GET", 400, "", true},
		{"uri too long", "GET /" + strings.Repeat("a", DefaultMaxRequestLineBytes) + " HTTP/1.1\r\nHost: a\r\n\r\n", "GET", 414, "", true},
		{"headers too large", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", DefaultMaxHeaderBytes) + "\r\n\r\n", "GET", 431, "", true},
		{"body too large", fmt.Sprintf("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", DefaultMaxBodyBytes+1), "POST", 413, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl := dialClient(t, addr)
			cl.send(tc.req)
			resp, body := cl.read(tc.method)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tc.status, body)
			}
			if tc.status == 200 && body != tc.body {
				t.Fatalf("body %q, want %q", body, tc.body)
			}
			if resp.Header.Get("Date") == "" {
				t.Error("no Date header")
			}
			if tc.close {
				if !resp.Close {
					t.Error("response does not say Connection: close")
				}
				if !cl.closed() {
					t.Error("connection left open")
				}
				return
			}
			cl.send("GET /again HTTP/1.1\r\nHost: a\r\n\r\n")
			if resp, _ := cl.read("GET"); resp.StatusCode != 200 {
				t.Fatalf("second request: %d", resp.StatusCode)
			}
		})
	}
}

// TestServerSplitAtEveryByte writes requests one byte per write (TCP_NODELAY is Go's default)
// and expects the same responses as for one write.
func TestServerSplitAtEveryByte(t *testing.T) {
	_, addr := startServer(t, echo)
	reqs := []struct{ req, body string }{
		{"GET /a?b=c HTTP/1.1\r\nHost: a\r\nX-One: 1\r\n\r\n", ""},
		{"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world", "hello world"},
		{"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n", "abcde"},
		{"\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", ""},
	}
	cl := dialClient(t, addr)
	for _, r := range reqs {
		for i := 0; i < len(r.req); i++ {
			cl.send(r.req[i : i+1])
		}
		resp, body := cl.read("GET")
		if resp.StatusCode != 200 || body != r.body {
			t.Fatalf("%q: %d %q", r.req, resp.StatusCode, body)
		}
	}
}

func TestServerPipelinedThousand(t *testing.T) {
	_, addr := startServer(t, hello)
	var sb strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&sb, "GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
	}
	cl := dialClient(t, addr)
	go io.WriteString(cl.c, sb.String())
	for i := 0; i < 1000; i++ {
		resp, body := cl.read("GET")
		if got := resp.Header.Get("X-Path"); got != fmt.Sprintf("/%d", i) || body != "hello" {
			t.Fatalf("response %d is for %q (%q)", i, got, body)
		}
	}
}

func TestServerExpectContinue(t *testing.T) {
	_, addr := startServer(t, echo)
	t.Run("sent before body", func(t *testing.T) {
		cl := dialClient(t, addr)
		cl.send("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		if resp, _ := cl.read("POST"); resp.StatusCode != 100 {
			t.Fatalf("got %d before sending the body, want 100", resp.StatusCode)
		}
		cl.send("hello")
		if resp, body := cl.read("POST"); resp.StatusCode != 200 || body != "hello" {
			t.Fatalf("final: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("not sent when body arrived", func(t *testing.T) {
		cl := dialClient(t, addr)
		cl.send("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello")
		if resp, body := cl.read("POST"); resp.StatusCode != 200 || body != "hello" {
			t.Fatalf("got %d %q, want the final 200 directly", resp.StatusCode, body)
		}
	})
	t.Run("other expectation", func(t *testing.T) {
		cl := dialClient(t, addr)
		cl.send("POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 5\r\n\r\nhello")
		if resp, _ := cl.read("POST"); resp.StatusCode != 417 {
			t.Fatalf("got %d, want 417", resp.StatusCode)
		}
	})
}

func TestServerTrailers(t *testing.T) {
	_, addr := startServer(t, echo)
	cl := dialClient(t, addr)
	cl.send("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\nChecksum: abc\r\nX-N: 2\r\n\r\n")
	resp, body := cl.read("POST")
	if body != "body" || resp.Header.Get("X-Trailer-Checksum") != "abc" || resp.Header.Get("X-Trailer-X-N") != "2" {
		t.Fatalf("body %q headers %v", body, resp.Header)
	}
}

func TestServerHEAD(t *testing.T) {
	_, addr := startServer(t, hello)
	cl := dialClient(t, addr)
	cl.send("HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := cl.read("HEAD")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength != 5 {
		t.Fatalf("HEAD: %d len=%d body %q", resp.StatusCode, resp.ContentLength, body)
	}
	// The next response starts right after the head: no body bytes were sent for HEAD.
	if resp, body := cl.read("GET"); body != "hello" {
		t.Fatalf("GET after HEAD: %d %q", resp.StatusCode, body)
	}
}

// TestServerHandlerClose: a handler asking to close gets "Connection: close" and the close.
func TestServerHandlerClose(t *testing.T) {
	_, addr := startServer(t, HandlerFunc(func(w *ResponseWriter, r *Request) {
		w.SetClose()
		w.WriteString("bye")
	}))
	cl := dialClient(t, addr)
	cl.send("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /never HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := cl.read("GET")
	if !resp.Close || body != "bye" || !cl.closed() {
		t.Fatalf("close=%v body=%q: want a closing response and no second one", resp.Close, body)
	}
}

func TestServerStreamingFlush(t *testing.T) {
	_, addr := startServer(t, HandlerFunc(func(w *ResponseWriter, r *Request) {
		w.WriteString("part1,")
		w.Flush()
		w.WriteString("part2")
	}))
	cl := dialClient(t, addr)
	cl.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := cl.read("GET")
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" || body != "part1,part2" {
		t.Fatalf("TE %v body %q", resp.TransferEncoding, body)
	}
	cl.send("GET / HTTP/1.0\r\n\r\n")
	resp, body = cl.read("GET")
	if body != "part1,part2" || !resp.Close || !cl.closed() {
		t.Fatalf("HTTP/1.0 streaming: body %q close %v", body, resp.Close)
	}
}

// TestServerHeaderInjection: a handler trying to put CR/LF into a header gets an error, and
// the response on the wire is intact.
func TestServerHeaderInjection(t *testing.T) {
	errs := make(chan error, 2)
	_, addr := startServer(t, HandlerFunc(func(w *ResponseWriter, r *Request) {
		errs <- w.Set("X-Evil", "a\r\nSet-Cookie: pwned=1")
		errs <- w.Set("X-Evil\r\nY", "b")
		w.WriteString("ok")
	}))
	cl := dialClient(t, addr)
	cl.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := cl.read("GET")
	if e := <-errs; !errors.Is(e, ErrInvalidHeaderValue) {
		t.Errorf("value error %v", e)
	}
	if e := <-errs; !errors.Is(e, ErrInvalidHeaderName) {
		t.Errorf("name error %v", e)
	}
	if body != "ok" || resp.Header.Get("Set-Cookie") != "" || resp.Header.Get("X-Evil") != "" {
		t.Fatalf("corrupted response: %v %q", resp.Header, body)
	}
}

func TestServerPanicNative(t *testing.T) {
	_, addr := startServer(t, HandlerFunc(func(w *ResponseWriter, r *Request) {
		if string(r.Path()) == "/panic" {
			w.WriteString("partial")
			panic("boom")
		}
		w.WriteString("fine")
	}))
	cl := dialClient(t, addr)
	cl.send("GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET /panic HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body := cl.read("GET"); body != "fine" {
		t.Fatalf("first: %q", body)
	}
	resp, body := cl.read("GET")
	if resp.StatusCode != 500 || strings.Contains(body, "partial") || !cl.closed() {
		t.Fatalf("panic: %d %q", resp.StatusCode, body)
	}
}

func TestServerSlowloris(t *testing.T) {
	var mu sync.Mutex
	var infos []string
	// The first bytes are written before the server starts: a client slower than the header
	// timeout to send its first byte is closed silently, which is another test's case.
	var cl *client
	startServerPrimed(t, hello, func(addr string) {
		cl = dialClient(t, addr)
		cl.send("GET / HTTP/1.1\r\nHo")
	}, WithReadHeaderTimeout(200*time.Millisecond),
		WithObserver(func(i *RequestInfo) {
			mu.Lock()
			infos = append(infos, fmt.Sprintf("%d %v", i.Status, i.Err))
			mu.Unlock()
		}))
	// Keep dribbling until the server answers: it must not wait for the head for ever.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 1000; i++ {
			if _, err := cl.c.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond) // the attack's pacing: the server must not wait for it
		}
	}()
	resp, _ := cl.read("GET")
	cl.c.Close()
	<-done
	if resp.StatusCode != 408 || !resp.Close {
		t.Fatalf("got %d close=%v, want 408 and close", resp.StatusCode, resp.Close)
	}
	testsupport.Eventually(t, 0, "observer", func() bool { mu.Lock(); defer mu.Unlock(); return len(infos) == 1 })
	if !strings.HasPrefix(infos[0], "408") {
		t.Fatalf("observer saw %v", infos)
	}
}

// TestServerIdleTimeout: an idle keep-alive connection is closed without a response; a new
// connection that sends nothing is closed at the header timeout.
func TestServerIdleTimeout(t *testing.T) {
	// The first connection's request is written before the server starts. Written after,
	// a client descheduled for 150 ms between dialling and writing (a loaded machine) would be
	// closed as silent before its request, and the test would fail for the wrong reason.
	var cl *client
	_, addr := startServerPrimed(t, hello, func(addr string) {
		cl = dialClient(t, addr)
		cl.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	}, WithIdleTimeout(100*time.Millisecond), WithReadHeaderTimeout(150*time.Millisecond))
	if resp, body := cl.read("GET"); resp.StatusCode != 200 || body != "hello" {
		t.Fatalf("got %d %q, want 200 hello", resp.StatusCode, body)
	}
	if !cl.closed() {
		t.Fatal("idle connection not closed")
	}
	silent := dialClient(t, addr)
	if !silent.closed() {
		t.Fatal("silent connection not closed")
	}
}

func TestServerReadTimeoutBody(t *testing.T) {
	_, addr := startServer(t, echo, WithReadTimeout(200*time.Millisecond))
	cl := dialClient(t, addr)
	cl.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhal")
	resp, _ := cl.read("POST")
	if resp.StatusCode != 408 || !cl.closed() {
		t.Fatalf("got %d, want 408 and close", resp.StatusCode)
	}
}

func TestServerMaxRequestsPerConn(t *testing.T) {
	_, addr := startServer(t, hello, WithMaxRequestsPerConn(3))
	cl := dialClient(t, addr)
	cl.send(strings.Repeat("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 5))
	for i := 1; i <= 3; i++ {
		resp, _ := cl.read("GET")
		if resp.Close != (i == 3) {
			t.Fatalf("response %d: close=%v", i, resp.Close)
		}
	}
	if !cl.closed() {
		t.Fatal("connection open after MaxRequestsPerConn")
	}
}

func TestServerSendFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.txt")
	content := strings.Repeat("0123456789", 10000)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	_, addr := startServer(t, HandlerFunc(func(w *ResponseWriter, r *Request) {
		f, err := os.Open(path)
		if err != nil {
			w.SetStatus(500)
			return
		}
		defer f.Close()
		w.Set("Content-Type", "text/plain")
		if err := w.SendFile(f, 10, int64(len(content)-20)); err != nil {
			panic(err)
		}
	}))
	cl := dialClient(t, addr)
	cl.send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n")
	want := content[10 : len(content)-10]
	if resp, body := cl.read("GET"); body != want || resp.ContentLength != int64(len(want)) {
		t.Fatalf("GET: len %d (cl %d), want %d", len(body), resp.ContentLength, len(want))
	}
	if resp, body := cl.read("HEAD"); body != "" || resp.ContentLength != int64(len(want)) {
		t.Fatalf("HEAD: %q cl %d", body, resp.ContentLength)
	}
	if _, body := cl.read("GET"); body != want {
		t.Fatal("pipelined GET after sendfile: wrong body")
	}
	var w ResponseWriter
	w.Begin(nil, nil)
	if err := w.SendFile(nil, 0, 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("nil file: %v", err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	if err := w.SendFile(f, 0, 1); !errors.Is(err, ErrSendFileUnsupported) {
		t.Errorf("standalone writer: %v", err)
	}
}

func TestServerObserver(t *testing.T) {
	type rec struct {
		method, path string
		status       int
		in, out      int64
		remote       bool
	}
	got := make(chan rec, 4)
	_, addr := startServer(t, hello, WithObserver(func(i *RequestInfo) {
		got <- rec{string(i.Method), string(i.Path), i.Status, i.BytesIn, i.BytesOut, i.RemoteAddr() != nil}
	}))
	cl := dialClient(t, addr)
	req := "GET /obs?q=1 HTTP/1.1\r\nHost: a\r\n\r\n"
	cl.send(req)
	cl.read("GET")
	r := <-got
	if r.method != "GET" || r.path != "/obs" || r.status != 200 || r.in != int64(len(req)) || r.out < 50 || !r.remote {
		t.Fatalf("observer got %+v", r)
	}
	cl.send("BAD\r\n\r\n")
	cl.read("GET")
	if r := <-got; r.status != 400 || r.method != "" {
		t.Fatalf("observer got %+v for a bad request", r)
	}
}

// TestServerPipelineBackpressure: a client that pipelines without reading must not make the
// server buffer without bound: once the output reaches the high-water mark the server stops
// reading, the kernel buffers fill, and the client's writes block.
func TestServerPipelineBackpressure(t *testing.T) {
	body := strings.Repeat("x", 4096)
	s, addr := startServer(t, HandlerFunc(func(w *ResponseWriter, r *Request) { w.WriteString(body) }),
		WithReactorOptions(reactor.WithWatermarks(256<<10, 0), reactor.WithLoops(1)))
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cl := dialClient(t, addr)
	chunk := []byte(strings.Repeat("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1000))
	sent := 0
	for {
		cl.c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := cl.c.Write(chunk)
		sent += n
		if err != nil {
			break // blocked: the server stopped reading
		}
		if sent > 1<<30 {
			t.Fatal("server kept reading 1 GiB of requests without the client reading responses")
		}
	}
	served := s.Stats().Requests
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	t.Logf("client wrote %d bytes of requests before blocking; %d served; heap in use %d -> %d",
		sent, served, before.HeapInuse, after.HeapInuse)
	// Responses produced are bounded by the watermark plus the kernel's socket buffers.
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 64<<20 {
		t.Fatalf("heap grew by %d bytes", grown)
	}
	if served*4096 > 256<<20 {
		t.Fatalf("%d responses produced for a client that reads nothing", served)
	}
	// Reading responses lets the server go on, in order.
	cl.c.SetDeadline(testsupport.Deadline(20 * time.Second))
	for i := 0; i < 3000; i++ {
		if _, b := cl.read("GET"); len(b) != 4096 {
			t.Fatalf("response %d: %d bytes", i, len(b))
		}
	}
}

func TestServerShutdownNative(t *testing.T) {
	s, addr := startServer(t, hello)
	idle := dialClient(t, addr)
	idle.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	idle.read("GET")
	partial := dialClient(t, addr)
	partial.send("GET / HTTP/1.1\r\nHost: a\r\n")
	testsupport.Eventually(t, 0, "connections", func() bool { return s.Stats().ConnsOpen == 2 })
	done := make(chan error, 1)
	go func() {
		ctx, cancel := contextWithTimeout(testsupport.Scale(10 * time.Second))
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	if !idle.closed() {
		t.Fatal("idle connection not closed by Shutdown")
	}
	// The request in progress is completed, with Connection: close.
	partial.send("\r\n")
	resp, body := partial.read("GET")
	if body != "hello" || !resp.Close {
		t.Fatalf("in-flight request: %q close=%v", body, resp.Close)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
