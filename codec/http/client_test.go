package http

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

// clientLoop starts a reactor server with no listener, whose loop runs the client.
func clientLoop(t testing.TB) *reactor.Loop {
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

// runOnLoop runs f on l and waits for it.
func runOnLoop(t testing.TB, l *reactor.Loop, f func()) {
	t.Helper()
	done := make(chan struct{})
	if err := l.Post(func() { f(); close(done) }); err != nil {
		t.Fatal(err)
	}
	<-done
}

// doResult is one Do outcome, copied out of the callback.
type doResult struct {
	status   int
	header   map[string]string
	body     string
	trailers map[string]string
	err      error
}

// do runs Client.Do on l and waits for its callback.
func do(t testing.TB, c *Client, l *reactor.Loop, req *ClientRequest) doResult {
	t.Helper()
	ch := make(chan doResult, 1)
	var derr error
	runOnLoop(t, l, func() {
		derr = c.Do(l, req, func(r *ClientResponse, err error) {
			res := doResult{err: err}
			if r != nil {
				res.status = r.Status()
				res.body = string(r.Body)
				res.header = map[string]string{}
				for i := 0; i < r.NumHeaders(); i++ {
					k, v := r.HeaderAt(i)
					res.header[nethttp.CanonicalHeaderKey(string(k))] = string(v)
				}
				res.trailers = map[string]string{}
				for i := 0; i < r.NumTrailers(); i++ {
					k, v := r.TrailerAt(i)
					res.trailers[nethttp.CanonicalHeaderKey(string(k))] = string(v)
				}
			}
			ch <- res
		})
	})
	if derr != nil {
		return doResult{err: derr}
	}
	select {
	case r := <-ch:
		return r
	case <-time.After(testsupport.Scale(20 * time.Second)):
		t.Fatal("Do callback not called")
		return doResult{}
	}
}

// upstreamServer runs a net/http server on 127.0.0.1:0 and counts the connections it accepted.
type upstreamServer struct {
	srv   *nethttp.Server
	addr  string
	conns atomic.Int64 // connections accepted
	open  atomic.Int64 // connections open now
}

func startUpstream(t testing.TB, h nethttp.Handler) *upstreamServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstreamServer{addr: ln.Addr().String()}
	u.srv = &nethttp.Server{Handler: h, ConnState: func(c net.Conn, s nethttp.ConnState) {
		switch s {
		case nethttp.StateNew:
			u.conns.Add(1)
			u.open.Add(1)
		case nethttp.StateClosed, nethttp.StateHijacked:
			u.open.Add(-1)
		}
	}}
	go u.srv.Serve(ln)
	t.Cleanup(func() { u.srv.Close() })
	return u
}

func newClient(t testing.TB, network, addr string, cfg ClientConfig) *Client {
	t.Helper()
	c, err := NewClient(network, addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func upstreamMux() nethttp.Handler {
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/hello", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("X-Host", r.Host)
		io.WriteString(w, "hello "+r.Method)
	})
	mux.HandleFunc("/echo", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Len", strconv.Itoa(len(b)))
		w.Write(b)
	})
	mux.HandleFunc("/empty", func(w nethttp.ResponseWriter, r *nethttp.Request) { w.WriteHeader(204) })
	mux.HandleFunc("/chunked", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "part one, ")
		w.(nethttp.Flusher).Flush()
		io.WriteString(w, "part two")
		w.Header().Set("X-Sum", "42")
	})
	mux.HandleFunc("/big", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(bytes.Repeat([]byte("b"), n))
	})
	mux.HandleFunc("/slow", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		time.Sleep(20 * time.Millisecond) // the upstream's own pace, not a synchronisation
		io.WriteString(w, "slow")
	})
	return mux
}

func TestClientDoAgainstNetHTTP(t *testing.T) {
	up := startUpstream(t, upstreamMux())
	l := clientLoop(t)
	c := newClient(t, "tcp", up.addr, ClientConfig{})
	tests := []struct {
		name   string
		req    ClientRequest
		status int
		body   string
		check  func(t *testing.T, r doResult)
	}{
		{"GET", ClientRequest{Target: "/hello"}, 200, "hello GET", func(t *testing.T, r doResult) {
			if r.header["X-Host"] != up.addr {
				t.Fatalf("Host seen upstream: %q", r.header["X-Host"])
			}
		}},
		{"custom Host", ClientRequest{Target: "/hello", Host: "example.com"}, 200, "hello GET", func(t *testing.T, r doResult) {
			if r.header["X-Host"] != "example.com" {
				t.Fatalf("Host seen upstream: %q", r.header["X-Host"])
			}
		}},
		{"HEAD", ClientRequest{Method: "HEAD", Target: "/hello"}, 200, "", func(t *testing.T, r doResult) {
			if r.header["Content-Length"] != "10" { // len("hello HEAD")
				t.Fatalf("HEAD Content-Length %q", r.header["Content-Length"])
			}
		}},
		{"POST body", ClientRequest{Method: "POST", Target: "/echo", Body: []byte("payload")}, 200, "payload", nil},
		{"POST empty", ClientRequest{Method: "POST", Target: "/echo"}, 200, "", func(t *testing.T, r doResult) {
			if r.header["X-Len"] != "0" {
				t.Fatal(r.header)
			}
		}},
		{"204", ClientRequest{Target: "/empty"}, 204, "", nil},
		{"404", ClientRequest{Target: "/nope"}, 404, "404 page not found\n", nil},
		{"chunked with trailer", ClientRequest{Target: "/chunked"}, 200, "part one, part two", func(t *testing.T, r doResult) {
			if r.header["Transfer-Encoding"] != "chunked" || r.trailers["X-Sum"] != "42" {
				t.Fatalf("header %v trailers %v", r.header, r.trailers)
			}
		}},
		{"1 MiB", ClientRequest{Target: "/big?n=1048576"}, 200, strings.Repeat("b", 1<<20), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, c, l, &tc.req)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.status != tc.status || r.body != tc.body {
				t.Fatalf("got %d %q (%d bytes), want %d %q", r.status, r.body[:min(len(r.body), 64)], len(r.body), tc.status, tc.body[:min(len(tc.body), 64)])
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
	// Every request went over one keep-alive connection.
	if n := up.conns.Load(); n != 1 {
		t.Fatalf("upstream saw %d connections, want 1", n)
	}
	// The connection goes back to the pool just after the callback.
	testsupport.Eventually(t, 0, "stats", func() bool {
		st := c.Stats()
		return st.Dials == 1 && st.Requests == uint64(len(tests)) && st.Responses == uint64(len(tests)) && st.Failed == 0 && st.Idle == 1 && st.Open == 1
	})
}

func TestClientDoArguments(t *testing.T) {
	l := clientLoop(t)
	c := newClient(t, "tcp", "127.0.0.1:1", ClientConfig{})
	for _, tc := range []struct {
		name string
		req  *ClientRequest
		want error
	}{
		{"nil request", nil, ErrInvalidArgument},
		{"bad method", &ClientRequest{Method: "G T"}, ErrInvalidArgument},
		{"absolute target", &ClientRequest{Target: "http://x/"}, ErrInvalidArgument},
		{"CRLF in target", &ClientRequest{Target: "/a\r\nX: y"}, ErrInvalidArgument},
		{"bad header name", &ClientRequest{Header: []HeaderField{{"X Y", "1"}}}, ErrInvalidHeaderName},
		{"header injection", &ClientRequest{Header: []HeaderField{{"X", "a\r\nEvil: 1"}}}, ErrInvalidHeaderValue},
		{"framing header", &ClientRequest{Header: []HeaderField{{"Transfer-Encoding", "chunked"}}}, ErrReservedHeader},
		{"connection header", &ClientRequest{Header: []HeaderField{{"Connection", "close"}}}, ErrReservedHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			runOnLoop(t, l, func() { err = c.Do(l, tc.req, func(*ClientResponse, error) { t.Error("callback after a refused Do") }) })
			if !errors.Is(err, tc.want) {
				t.Fatalf("Do = %v, want %v", err, tc.want)
			}
		})
	}
	var err error
	runOnLoop(t, l, func() { _, err = c.Send(l, []byte("no method"), nil) })
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Send(nil handler) = %v", err)
	}
	for _, tc := range []struct {
		network, addr string
		cfg           ClientConfig
		want          error
	}{
		{"udp", "127.0.0.1:1", ClientConfig{}, reactor.ErrUnsupportedNetwork},
		{"tcp", "127.0.0.1", ClientConfig{}, reactor.ErrBadAddress},
		{"unix", "", ClientConfig{}, reactor.ErrBadAddress},
		{"tcp", "127.0.0.1:1", ClientConfig{MaxConns: -1}, ErrInvalidArgument},
		{"tcp", "127.0.0.1:1", ClientConfig{HeaderTimeout: -1}, ErrInvalidArgument},
		{"tcp", "127.0.0.1:1", ClientConfig{Limits: Limits{MaxHeaderBytes: -1}}, ErrInvalidLimits},
	} {
		if _, err := NewClient(tc.network, tc.addr, tc.cfg); !errors.Is(err, tc.want) {
			t.Fatalf("NewClient(%s, %s, %+v) = %v, want %v", tc.network, tc.addr, tc.cfg, err, tc.want)
		}
	}
	c.Close()
	runOnLoop(t, l, func() { err = c.Do(l, &ClientRequest{}, func(*ClientResponse, error) {}) })
	if !errors.Is(err, ErrClientClosed) {
		t.Fatalf("Do after Close = %v", err)
	}
}

func TestClientUnixUpstream(t *testing.T) {
	path := filepath.Join(t.TempDir(), "up.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &nethttp.Server{Handler: upstreamMux()}
	go srv.Serve(ln)
	defer srv.Close()
	l := clientLoop(t)
	c := newClient(t, "unix", path, ClientConfig{})
	r := do(t, c, l, &ClientRequest{Target: "/hello"})
	if r.err != nil || r.status != 200 || r.body != "hello GET" || r.header["X-Host"] != "localhost" {
		t.Fatalf("%+v", r)
	}
}

// TestClientPoolLimits: MaxConns bounds the connections (requests wait for one), MaxIdle
// bounds the idle ones kept, IdleTimeout closes them.
func TestClientPoolLimits(t *testing.T) {
	up := startUpstream(t, upstreamMux())
	l := clientLoop(t)
	c := newClient(t, "tcp", up.addr, ClientConfig{MaxConns: 2, MaxIdle: 1, IdleTimeout: testsupport.Scale(200 * time.Millisecond)})
	const n = 6
	results := make(chan doResult, n)
	var maxOpen atomic.Int64
	runOnLoop(t, l, func() {
		for i := 0; i < n; i++ {
			err := c.Do(l, &ClientRequest{Target: "/slow"}, func(r *ClientResponse, err error) {
				if o := up.open.Load(); o > maxOpen.Load() {
					maxOpen.Store(o)
				}
				res := doResult{err: err}
				if r != nil {
					res.status, res.body = r.Status(), string(r.Body)
				}
				results <- res
			})
			if err != nil {
				t.Error(err)
			}
		}
		if st := c.Stats(); st.Open != 2 || st.Waiting != n-2 {
			t.Errorf("after %d requests: %+v, want 2 open and %d waiting", n, st, n-2)
		}
	})
	for i := 0; i < n; i++ {
		r := <-results
		if r.err != nil || r.status != 200 || r.body != "slow" {
			t.Fatalf("request %d: %+v", i, r)
		}
	}
	if m := maxOpen.Load(); m > 2 {
		t.Fatalf("upstream saw %d connections open at once, want at most 2", m)
	}
	if n := up.conns.Load(); n != 2 {
		t.Fatalf("upstream accepted %d connections, want 2", n)
	}
	testsupport.Eventually(t, 0, "one idle connection kept, the other closed", func() bool {
		st := c.Stats()
		return st.Idle == 1 && st.Open == 1 && up.open.Load() == 1
	})
	testsupport.Eventually(t, 0, "the idle connection closed after IdleTimeout", func() bool {
		st := c.Stats()
		return st.Idle == 0 && st.Open == 0 && up.open.Load() == 0
	})
}

// rawUpstream accepts connections on 127.0.0.1:0 and runs serve for each.
func rawUpstream(t testing.TB, serve func(n int, c net.Conn)) string {
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
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(testsupport.Scale(20 * time.Second)))
				serve(i, c)
			}(i)
		}
	}()
	return ln.Addr().String()
}

// readRequestHead reads one request head (and discards a Content-Length body).
func readRequestHead(br *bufio.Reader) (*nethttp.Request, error) {
	req, err := nethttp.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, req.Body)
	return req, nil
}

// TestClientRetriesIdempotentOnReusedConn: the upstream answers one request with keep-alive,
// then closes the connection without a word (as an idle timeout does) when the next request
// comes. An idempotent request is sent again on a new connection; a POST is not.
func TestClientRetriesIdempotentOnReusedConn(t *testing.T) {
	upstream := func() string {
		return rawUpstream(t, func(n int, c net.Conn) {
			br := bufio.NewReader(c)
			if _, err := readRequestHead(br); err != nil {
				return
			}
			if n == 0 {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
				// Wait for the next request, then close without answering it.
				br.Peek(1)
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecond")
		})
	}
	l := clientLoop(t)
	for _, tc := range []struct {
		method  string
		retried bool
	}{{"GET", true}, {"POST", false}} {
		t.Run(tc.method, func(t *testing.T) {
			c := newClient(t, "tcp", upstream(), ClientConfig{})
			if r := do(t, c, l, &ClientRequest{Target: "/"}); r.err != nil || r.body != "first" {
				t.Fatalf("first: %+v", r)
			}
			r := do(t, c, l, &ClientRequest{Method: tc.method, Target: "/"})
			st := c.Stats()
			if tc.retried {
				if r.err != nil || r.body != "second" || st.Retries != 1 || st.Dials != 2 {
					t.Fatalf("second: %+v, stats %+v", r, st)
				}
			} else if !errors.Is(r.err, ErrUpstreamClosed) || st.Retries != 0 || GatewayStatus(r.err) != 502 {
				t.Fatalf("POST: %+v, stats %+v; want ErrUpstreamClosed, no retry", r, st)
			}
		})
	}
}

// TestClientFaults: each way an upstream can fail ends the exchange with the error a gateway
// maps to the right status, and never leaves a connection in the pool.
func TestClientFaults(t *testing.T) {
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := free.Addr().String()
	free.Close()
	serve := func(reply string, then func(c net.Conn)) string {
		return rawUpstream(t, func(n int, c net.Conn) {
			if _, err := readRequestHead(bufio.NewReader(c)); err != nil {
				return
			}
			io.WriteString(c, reply)
			if then != nil {
				then(c)
			}
		})
	}
	reset := func(c net.Conn) { c.(*net.TCPConn).SetLinger(0) }
	hold := func(c net.Conn) { c.Read(make([]byte, 1)) } // until the client closes
	tests := []struct {
		name   string
		addr   string
		cfg    ClientConfig
		want   error // errors.Is target; nil: only the status is checked
		status int
	}{
		{"refused", refused, ClientConfig{}, unix.ECONNREFUSED, 502},
		{"refused, as a connect error", refused, ClientConfig{}, ErrUpstreamConnect, 502},
		{"reset mid-body", serve("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part", reset), ClientConfig{}, nil, 502},
		{"closed mid-body", serve("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part", nil), ClientConfig{}, ErrTruncatedResponse, 502},
		{"closed mid-chunked", serve("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", nil), ClientConfig{}, ErrTruncatedResponse, 502},
		{"closed before answering", serve("", nil), ClientConfig{}, ErrUpstreamClosed, 502},
		{"stalls before the head", serve("", hold), ClientConfig{HeaderTimeout: testsupport.Scale(100 * time.Millisecond)}, ErrResponseTimeout, 504},
		{"stalls in the head", serve("HTTP/1.1 200 OK\r\nX-A: ", hold), ClientConfig{HeaderTimeout: testsupport.Scale(100 * time.Millisecond)}, ErrResponseTimeout, 504},
		{"stalls mid-body", serve("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart", hold), ClientConfig{ReadTimeout: testsupport.Scale(100 * time.Millisecond)}, ErrResponseTimeout, 504},
		{"malformed status line", serve("HTTP/1.1 2OO OK\r\n\r\n", hold), ClientConfig{}, ErrStatusCode, 502},
		{"smuggling framing", serve("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", hold), ClientConfig{}, ErrContentLengthWithTE, 502},
		{"not HTTP", serve("SSH-2.0-OpenSSH_9.2\r\n", hold), ClientConfig{}, ErrStatusLine, 502},
		{"unsolicited bytes", serve("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n", hold), ClientConfig{}, nil, 0},
	}
	l := clientLoop(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, "tcp", tc.addr, tc.cfg)
			r := do(t, c, l, &ClientRequest{Target: "/"})
			if tc.status == 0 {
				// The response itself was fine; the extra bytes close the connection.
				if r.err != nil || r.body != "ok" {
					t.Fatalf("%+v", r)
				}
				testsupport.Eventually(t, 0, "connection dropped", func() bool { return c.Stats().Open == 0 })
				return
			}
			if r.err == nil {
				t.Fatalf("no error: %+v", r)
			}
			if tc.want != nil && !errors.Is(r.err, tc.want) {
				t.Fatalf("error %v, want %v", r.err, tc.want)
			}
			if s := GatewayStatus(r.err); s != tc.status {
				t.Fatalf("GatewayStatus(%v) = %d, want %d", r.err, s, tc.status)
			}
			testsupport.Eventually(t, 0, "no connection left", func() bool {
				st := c.Stats()
				return st.Open == 0 && st.Idle == 0 && st.Failed == 1
			})
		})
	}
}

// streamRec is a ResponseHandler that records a streamed response and pauses after each
// body piece when asked to.
type streamRec struct {
	mu        sync.Mutex
	status    int
	body      bytes.Buffer
	pieces    int
	n         int  // body bytes received
	countOnly bool // count body bytes without keeping them
	pauseEach bool
	paused    chan *Exchange
	end       chan error
}

func newStreamRec() *streamRec {
	return &streamRec{paused: make(chan *Exchange, 1), end: make(chan error, 1)}
}

func (s *streamRec) OnResponse(x *Exchange, r *Response) {
	s.mu.Lock()
	s.status = r.Status()
	s.mu.Unlock()
}

func (s *streamRec) OnResponseBody(x *Exchange, b []byte) {
	s.mu.Lock()
	if !s.countOnly {
		s.body.Write(b)
	}
	s.n += len(b)
	s.pieces++
	pause := s.pauseEach
	s.mu.Unlock()
	if pause {
		x.Pause()
		s.paused <- x
	}
}

func (s *streamRec) OnResponseEnd(x *Exchange, err error) { s.end <- err }

func (s *streamRec) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// TestClientStreamingBackpressure: a paused exchange stops reading the upstream — the
// upstream's write of a large body blocks — and nothing more is delivered until Resume.
func TestClientStreamingBackpressure(t *testing.T) {
	const size = 16 << 20 // more than loopback socket buffers hold
	wrote := make(chan struct{})
	addr := rawUpstream(t, func(n int, c net.Conn) {
		if _, err := readRequestHead(bufio.NewReader(c)); err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
		c.Write(bytes.Repeat([]byte("s"), size))
		close(wrote)
		c.Read(make([]byte, 1))
	})
	l := clientLoop(t)
	c := newClient(t, "tcp", addr, ClientConfig{})
	rec := newStreamRec()
	rec.pauseEach, rec.countOnly = true, true
	runOnLoop(t, l, func() {
		if _, err := c.Send(l, []byte("GET /big HTTP/1.1\r\nHost: up\r\n\r\n"), rec); err != nil {
			t.Error(err)
		}
	})
	x := <-rec.paused
	got := rec.size()
	select {
	case <-wrote:
		t.Fatal("the upstream wrote the whole body while the exchange was paused")
	case <-time.After(testsupport.Scale(200 * time.Millisecond)):
	}
	if rec.size() != got {
		t.Fatalf("body delivered while paused: %d then %d", got, rec.size())
	}
	// Resume for good: every further piece resumes at once.
	rec.mu.Lock()
	rec.pauseEach = false
	rec.mu.Unlock()
	runOnLoop(t, l, x.Resume)
	if err := <-rec.end; err != nil {
		t.Fatal(err)
	}
	if rec.size() != size {
		t.Fatalf("received %d of %d", rec.size(), size)
	}
}

// pipeRec collects the bodies of pipelined responses in completion order.
type pipeRec struct {
	mu     sync.Mutex
	bodies []string
	cur    map[*Exchange]*bytes.Buffer
	done   chan struct{}
	want   int
}

func (p *pipeRec) OnResponse(x *Exchange, r *Response) {}
func (p *pipeRec) OnResponseBody(x *Exchange, b []byte) {
	p.mu.Lock()
	if p.cur[x] == nil {
		p.cur[x] = &bytes.Buffer{}
	}
	p.cur[x].Write(b)
	p.mu.Unlock()
}
func (p *pipeRec) OnResponseEnd(x *Exchange, err error) {
	p.mu.Lock()
	s := err
	body := ""
	if b := p.cur[x]; b != nil {
		body = b.String()
	}
	delete(p.cur, x)
	if s != nil {
		body = "error: " + s.Error()
	}
	p.bodies = append(p.bodies, body)
	if len(p.bodies) == p.want {
		close(p.done)
	}
	p.mu.Unlock()
}

// TestClientPipelining: SendNext puts a batch on one connection, in one write; the responses
// come back in order.
func TestClientPipelining(t *testing.T) {
	var reads atomic.Int64
	addr := rawUpstream(t, func(n int, c net.Conn) {
		br := bufio.NewReader(readCounter{c, &reads})
		for i := 0; ; i++ {
			req, err := readRequestHead(br)
			if err != nil {
				return
			}
			body := req.URL.Path
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
	})
	l := clientLoop(t)
	c := newClient(t, "tcp", addr, ClientConfig{MaxPipeline: 16})
	const n = 16
	rec := &pipeRec{cur: map[*Exchange]*bytes.Buffer{}, done: make(chan struct{}), want: n}
	runOnLoop(t, l, func() {
		var x *Exchange
		for i := 0; i < n; i++ {
			req := []byte(fmt.Sprintf("GET /r%d HTTP/1.1\r\nHost: up\r\n\r\n", i))
			var err error
			if x == nil {
				x, err = c.Send(l, req, rec)
			} else {
				x, err = x.SendNext(req, rec)
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	})
	<-rec.done
	for i, b := range rec.bodies {
		if b != fmt.Sprintf("/r%d", i) {
			t.Fatalf("response %d: %q (all: %q)", i, b, rec.bodies)
		}
	}
	if st := c.Stats(); st.Dials != 1 {
		t.Fatalf("%d connections for one pipelined batch", st.Dials)
	}
	if r := reads.Load(); r > 2 {
		t.Logf("the upstream needed %d reads for the batch", r)
	}
}

type readCounter struct {
	r io.Reader
	n *atomic.Int64
}

func (c readCounter) Read(p []byte) (int, error) {
	c.n.Add(1)
	return c.r.Read(p)
}

// TestClientPipelineNotForPOST: a non-idempotent request is never pipelined.
func TestClientPipelineNotForPOST(t *testing.T) {
	up := startUpstream(t, upstreamMux())
	l := clientLoop(t)
	c := newClient(t, "tcp", up.addr, ClientConfig{MaxPipeline: 8})
	rec := &pipeRec{cur: map[*Exchange]*bytes.Buffer{}, done: make(chan struct{}), want: 2}
	runOnLoop(t, l, func() {
		x, err := c.Send(l, []byte("POST /echo HTTP/1.1\r\nHost: up\r\nContent-Length: 1\r\n\r\na"), rec)
		if err == nil {
			_, err = x.SendNext([]byte("GET /hello HTTP/1.1\r\nHost: up\r\n\r\n"), rec)
		}
		if err != nil {
			t.Error(err)
		}
	})
	<-rec.done
	if st := c.Stats(); st.Dials != 2 {
		t.Fatalf("%d connections, want 2 (no pipelining behind a POST)", st.Dials)
	}
}

// tunnelRec drives a tunnel: it echoes nothing itself, collects what comes back.
type tunnelRec struct {
	streamRec
	head chan *Exchange
}

func (tr *tunnelRec) OnResponse(x *Exchange, r *Response) {
	tr.streamRec.OnResponse(x, r)
	if r.BodyKind() == BodyTunnel {
		tr.head <- x
	}
}

// TestClientTunnel: after 101 Switching Protocols the connection carries raw bytes both
// ways, and the exchange ends when the upstream closes.
func TestClientTunnel(t *testing.T) {
	addr := rawUpstream(t, func(n int, c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readRequestHead(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nwelcome;")
		buf := make([]byte, 5)
		if _, err := io.ReadFull(br, buf); err != nil {
			return
		}
		c.Write(bytes.ToUpper(buf))
	})
	l := clientLoop(t)
	c := newClient(t, "tcp", addr, ClientConfig{})
	rec := &tunnelRec{streamRec: *newStreamRec(), head: make(chan *Exchange, 1)}
	runOnLoop(t, l, func() {
		if _, err := c.Send(l, []byte("GET /ws HTTP/1.1\r\nHost: up\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"), rec); err != nil {
			t.Error(err)
		}
	})
	x := <-rec.head
	runOnLoop(t, l, func() { x.Write([]byte("hello")) })
	if err := <-rec.end; err != nil {
		t.Fatal(err)
	}
	if got := rec.body.String(); got != "welcome;HELLO" || rec.status != 101 {
		t.Fatalf("status %d, tunnel bytes %q", rec.status, got)
	}
	if st := c.Stats(); st.Idle != 0 {
		t.Fatal("a tunnelled connection went back to the pool")
	}
}

// TestClientCancel: a cancelled exchange gets no callback and its connection is not reused.
func TestClientCancel(t *testing.T) {
	addr := rawUpstream(t, func(n int, c net.Conn) {
		if _, err := readRequestHead(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart")
		c.Read(make([]byte, 1))
	})
	l := clientLoop(t)
	c := newClient(t, "tcp", addr, ClientConfig{})
	rec := newStreamRec()
	rec.pauseEach = true
	runOnLoop(t, l, func() { c.Send(l, []byte("GET / HTTP/1.1\r\nHost: up\r\n\r\n"), rec) })
	x := <-rec.paused
	runOnLoop(t, l, x.Cancel)
	testsupport.Eventually(t, 0, "connection closed", func() bool { return c.Stats().Open == 0 })
	select {
	case err := <-rec.end:
		t.Fatalf("OnResponseEnd after Cancel: %v", err)
	default:
	}
}

// TestClientServesFromReactordUpstream: the client against the codec's own Server.
func TestClientServesFromReactordUpstream(t *testing.T) {
	_, addr := startServer(t, HandlerFunc(func(w *ResponseWriter, r *Request) {
		w.Set("X-Method", r.MethodString())
		w.Write(r.Body())
	}))
	l := clientLoop(t)
	c := newClient(t, "tcp", addr, ClientConfig{MaxPipeline: 4})
	for i := 0; i < 20; i++ {
		body := strings.Repeat("x", i*100)
		r := do(t, c, l, &ClientRequest{Method: "PUT", Target: "/p", Body: []byte(body)})
		if r.err != nil || r.status != 200 || r.body != body || r.header["X-Method"] != "PUT" {
			t.Fatalf("request %d: %+v", i, r.err)
		}
	}
	if st := c.Stats(); st.Dials != 1 {
		t.Fatalf("%d dials for 20 sequential requests", st.Dials)
	}
}

// cannedUpstream answers every request (a head without body, ended by CRLFCRLF) with resp,
// allocating nothing per request, so allocation counts see only the client.
func cannedUpstream(t testing.TB, resp string) string {
	return rawUpstream(t, func(n int, c net.Conn) {
		c.SetDeadline(time.Time{})
		buf := make([]byte, 64<<10)
		out := make([]byte, 0, 64<<10)
		held := 0
		for {
			k, err := c.Read(buf[held:])
			if err != nil {
				return
			}
			held += k
			out = out[:0]
			start := 0
			for {
				i := bytes.Index(buf[start:held], []byte("\r\n\r\n"))
				if i < 0 {
					break
				}
				start += i + 4
				out = append(out, resp...)
			}
			held = copy(buf, buf[start:held])
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	})
}

// chainRec sends the next request from each OnResponseEnd until n are done.
type chainRec struct {
	c    *Client
	l    *reactor.Loop
	req  []byte
	left int
	err  error
	done chan struct{}
}

func (h *chainRec) OnResponse(x *Exchange, r *Response)  {}
func (h *chainRec) OnResponseBody(x *Exchange, b []byte) {}
func (h *chainRec) OnResponseEnd(x *Exchange, err error) {
	if err != nil {
		h.err = err
		h.done <- struct{}{}
		return
	}
	h.left--
	if h.left == 0 {
		h.done <- struct{}{}
		return
	}
	if _, err := h.c.Send(h.l, h.req, h); err != nil {
		h.err = err
		h.done <- struct{}{}
	}
}

// TestClientZeroAllocPerRequest: once the pool is warm, a request and its response cost the
// client no allocation.
func TestClientZeroAllocPerRequest(t *testing.T) {
	addr := cannedUpstream(t, "HTTP/1.1 200 OK\r\nServer: canned\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")
	l := clientLoop(t)
	c := newClient(t, "tcp", addr, ClientConfig{})
	h := &chainRec{c: c, l: l, req: []byte("GET /plaintext HTTP/1.1\r\nHost: up\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n"), done: make(chan struct{}, 1)}
	start := func() {
		h.left = 20
		if _, err := c.Send(l, h.req, h); err != nil {
			h.err = err
			h.done <- struct{}{}
		}
	}
	run := func() {
		l.Post(start)
		<-h.done
		if h.err != nil {
			t.Fatal(h.err)
		}
	}
	for i := 0; i < 20; i++ {
		run()
	}
	a := testing.AllocsPerRun(50, run)
	t.Logf("%.2f allocations per chain of 20 requests", a)
	if a != 0 {
		t.Fatalf("%.1f allocations per 20 requests, want 0", a)
	}
}

// BenchmarkClientRoundTrip: one request and response on a warm pooled connection, against an
// upstream goroutine that answers from a canned buffer.
func BenchmarkClientRoundTrip(b *testing.B) {
	addr := cannedUpstream(b, "HTTP/1.1 200 OK\r\nServer: canned\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")
	l := clientLoop(b)
	c := newClient(b, "tcp", addr, ClientConfig{})
	h := &chainRec{c: c, l: l, req: []byte("GET /plaintext HTTP/1.1\r\nHost: up\r\n\r\n"), done: make(chan struct{}, 1)}
	b.ReportAllocs()
	b.ResetTimer()
	h.left = b.N
	l.Post(func() { c.Send(l, h.req, h) })
	<-h.done
	if h.err != nil {
		b.Fatal(h.err)
	}
}

// BenchmarkClient64: 64 exchanges in flight on one loop (64 pooled connections), each sending
// its next request from OnResponseEnd, against the canned upstream. With -cpuprofile it shows
// the client's share of a proxy's work.
func BenchmarkClient64(b *testing.B) {
	addr := cannedUpstream(b, "HTTP/1.1 200 OK\r\nServer: canned\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")
	l := clientLoop(b)
	c := newClient(b, "tcp", addr, ClientConfig{})
	req := []byte("GET /plaintext HTTP/1.1\r\nHost: up\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	const chains = 64
	done := make(chan struct{}, chains)
	hs := make([]*chainRec, chains)
	for i := range hs {
		hs[i] = &chainRec{c: c, l: l, req: req, done: done}
	}
	start := func(n int) {
		l.Post(func() {
			for _, h := range hs {
				h.left = n
				c.Send(l, h.req, h)
			}
		})
		for range hs {
			<-done
		}
	}
	start(10) // warm the pool
	b.ReportAllocs()
	b.ResetTimer()
	start(max(b.N/chains, 1))
}
