package http

import (
	"errors"
	"io"
	nethttp "net/http"
	"runtime"
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

// blockedIn reports whether some goroutine is blocked in a function whose name contains fn,
// in one of the given wait states ("chan receive", "select", ...).
func blockedIn(fn string, states ...string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, fn) {
			continue
		}
		head, _, _ := strings.Cut(g, "\n")
		for _, s := range states {
			if strings.Contains(head, "["+s) {
				return true
			}
		}
	}
	return false
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
