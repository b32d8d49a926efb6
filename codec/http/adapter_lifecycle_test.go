package http

import (
	"bufio"
	"errors"
	"io"
	"net"
	nethttp "net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

// onLoop runs f on the first loop of s with its codec state and returns f's answer.
func onLoop(t *testing.T, s *Server, f func(ls *loopState) bool) bool {
	t.Helper()
	res := make(chan bool, 1)
	l := s.Reactor().Loops()[0]
	if err := l.Post(func() { res <- f(s.loopStateOf(l)) }); err != nil {
		t.Fatalf("Post: %v", err)
	}
	return <-res
}

// TestAdapterPacesResponseBehindSlowOne is issue 19's defect 5: a streaming response pipelined
// behind a slow one must block its handler once a bounded amount is buffered, instead of
// piling its whole body up in memory while it waits for its turn.
func TestAdapterPacesResponseBehindSlowOne(t *testing.T) {
	const chunk = 32 << 10
	const chunks = 256 // 8 MiB if nothing paced it
	release := make(chan struct{})
	var flushed, finished atomic.Int64
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/slow", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		<-release
		io.WriteString(w, "slow done")
	})
	mux.HandleFunc("/big", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b := []byte(strings.Repeat("b", chunk))
		for i := 0; i < chunks; i++ {
			if _, err := w.Write(b); err != nil {
				return
			}
			w.(nethttp.Flusher).Flush()
			flushed.Add(1)
		}
		finished.Store(1)
	})
	s, addr := startServer(t, Adapt(mux), WithReactorOptions(reactor.WithLoops(1)))
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the server's Close, which waits for the handlers
	cl := dialClient(t, addr)
	cl.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	// Either /big runs to its end (the defect) or the loop holds back its handler's flush.
	testsupport.Eventually(t, 0, "/big to finish or be held back", func() bool {
		return finished.Load() == 1 || onLoop(t, s, func(ls *loopState) bool {
			cs := ls.active
			return cs != nil && len(cs.ad.queue) == 2 && cs.ad.queue[1].waiting
		})
	})
	if finished.Load() == 1 {
		t.Fatalf("/big wrote all %d chunks while waiting behind /slow: its output is not paced", chunks)
	}
	if got, limit := flushed.Load(), int64(behindMax/chunk+1); got > limit {
		t.Fatalf("%d chunks flushed behind /slow, want at most %d", got, limit)
	}
	unblock()
	if _, body := cl.read("GET"); body != "slow done" {
		t.Fatalf("/slow: %q", body)
	}
	resp, body := cl.read("GET")
	if resp.StatusCode != 200 || len(body) != chunk*chunks {
		t.Fatalf("/big: %d, %d bytes", resp.StatusCode, len(body))
	}
}

// TestAdapterCloseFromHandler: Server.Close called from an adapted handler returns (it does
// not wait for the calling handler), and the server is closed.
func TestAdapterCloseFromHandler(t *testing.T) {
	var sp atomic.Pointer[Server] // the handler reads it: the kernel is no happens-before edge
	ret := make(chan error, 1)
	s, addr := startServer(t, Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		ret <- sp.Load().Close()
	})))
	sp.Store(s)
	cl := dialClient(t, addr)
	cl.send("GET /quit HTTP/1.1\r\nHost: a\r\n\r\n")
	select {
	case err := <-ret:
		if err != nil {
			t.Fatalf("Close from a handler: %v", err)
		}
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("Close called from a handler did not return")
	}
	if !cl.closed() {
		t.Fatal("connection still open after Close")
	}
	if _, err := s.Listen("tcp", "127.0.0.1:0"); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Listen after Close: %v", err)
	}
}

// TestAdapterShutdownFromHandler: Shutdown from a handler fails fast instead of waiting for
// its own request.
func TestAdapterShutdownFromHandler(t *testing.T) {
	var sp atomic.Pointer[Server]
	ret := make(chan error, 1)
	s, addr := startServer(t, Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		ctx, cancel := contextWithTimeout(testsupport.Scale(10 * time.Second))
		defer cancel()
		ret <- sp.Load().Shutdown(ctx)
	})))
	sp.Store(s)
	cl := dialClient(t, addr)
	cl.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if err := <-ret; !errors.Is(err, ErrCalledFromHandler) {
		t.Fatalf("Shutdown from a handler: %v", err)
	}
	if resp, _ := cl.read("GET"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// TestAdapterHalfClosePipelined is issue 19's defect 1 through the adapter: a client that
// pipelines requests and then shuts its writing side gets every response, including those of
// requests held back by the pipeline bound or by an unsafe method.
func TestAdapterHalfClosePipelined(t *testing.T) {
	get := func(p string) string { return "GET " + p + " HTTP/1.1\r\nHost: x\r\n\r\n" }
	post := func(p string) string { return "POST " + p + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n" }
	cases := []struct {
		name string
		opts []Option
		reqs []string
	}{
		{"pipeline of one", []Option{WithMaxPipeline(1)}, []string{get("/1"), get("/2"), get("/3")}},
		{"POST barrier", nil, []string{post("/1"), get("/2"), get("/3")}},
		{"20 GETs over the default pipeline", nil, func() (r []string) {
			for i := 0; i < 20; i++ {
				r = append(r, get("/g"))
			}
			return
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
				io.WriteString(w, r.URL.Path)
			})
			_, addr := startServer(t, Adapt(h), append(tc.opts, WithReactorOptions(reactor.WithLoops(1)))...)
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(testsupport.Scale(10 * time.Second)))
			io.WriteString(nc, strings.Join(tc.reqs, ""))
			nc.(*net.TCPConn).CloseWrite()
			br := bufio.NewReader(nc)
			for i, raw := range tc.reqs {
				want := strings.Fields(raw)[1]
				_, body, err := readResponse(br, "GET")
				if err != nil {
					t.Fatalf("response %d of %d: %v", i+1, len(tc.reqs), err)
				}
				if body != want {
					t.Fatalf("response %d: %q, want %q", i+1, body, want)
				}
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("after the last response: %v, want EOF", err)
			}
		})
	}
}

// TestAdapterReactorIdleTimeoutWhileBusy is issue 19's defect 6: a reactor idle timeout passed
// through WithReactorOptions must not close a connection whose request is still being handled.
// An idle connection opened after the request started is closed by that timeout first (so the
// timeout has certainly passed for the busy one too); then the handler finishes and its
// response must arrive.
func TestAdapterReactorIdleTimeoutWhileBusy(t *testing.T) {
	idle := testsupport.Scale(300 * time.Millisecond)
	gate := make(chan struct{})
	entered := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	_, addr := startServer(t, Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		close(entered)
		<-gate
		io.WriteString(w, "done")
	})), WithIdleTimeout(0), WithReactorOptions(reactor.WithIdleTimeout(idle)))
	t.Cleanup(open)
	busy := dialClient(t, addr)
	busy.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered
	probe := dialClient(t, addr)
	if !probe.closed() {
		t.Fatal("the idle probe connection was not closed by the reactor's idle timeout")
	}
	open()
	if _, body := busy.read("GET"); body != "done" {
		t.Fatalf("busy connection: %q", body)
	}
}

// TestAdapterPanicAfterFlush: a handler that panics after part of its response left: the
// response is cut short and the connection closes, so the client never reads a later response
// as the rest of this one.
func TestAdapterPanicAfterFlush(t *testing.T) {
	_, addr := startServer(t, Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		io.WriteString(w, "partial")
		w.(nethttp.Flusher).Flush()
		panic(nethttp.ErrAbortHandler)
	})))
	cl := dialClient(t, addr)
	cl.send("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := nethttp.ReadResponse(cl.br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	b, err := io.ReadAll(resp.Body)
	if string(b) != "partial" || err == nil {
		t.Fatalf("body %q, err %v: want the flushed part, then an error (no last chunk)", b, err)
	}
	if !cl.closed() {
		t.Fatal("connection open after a handler panicked mid-response")
	}
}
