package http

import (
	"bufio"
	"context"
	"io"
	"net"
	nethttp "net/http"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

// TestShutdownAnswersQueuedConnections: connections a client opened and sent a request on
// before Shutdown, but which the loop had not accepted yet, are answered (with
// "Connection: close"), not closed unread (which the kernel reports to the client as a reset).
// The loop is held inside a timer until Shutdown has begun, so the connections are accepted
// while the server drains: by the reactor's drain of the listen backlog, or by the loop's
// next accept if that ran first. Before the fix, OnOpen closed every connection opened while
// draining.
func TestShutdownAnswersQueuedConnections(t *testing.T) {
	const clients = 4
	s, addr := startServer(t, HandlerFunc(func(w *ResponseWriter, r *Request) {
		w.Write([]byte("ok"))
	}), WithReactorOptions(reactor.WithLoops(1)))
	l := s.Reactor().Loops()[0]
	held, release := make(chan struct{}), make(chan struct{})
	if err := l.Post(func() {
		l.AfterFunc(0, func() {
			close(held)
			<-release
		})
	}); err != nil {
		t.Fatalf("Post: %v", err)
	}
	testsupport.Recv(t, held, 0, "the loop to run the holding timer")
	conns := make([]net.Conn, clients)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, testsupport.Scale(5*time.Second))
		if err != nil {
			close(release)
			t.Fatalf("dial %d: %v", i, err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			close(release)
			t.Fatalf("write %d: %v", i, err)
		}
		conns[i] = c
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testsupport.Scale(10*time.Second))
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	err := testsupport.Wait(0, func() bool { return s.draining.Load() })
	close(release)
	if err != nil {
		t.Fatalf("%v for Shutdown to begin", err)
	}
	for i, c := range conns {
		_ = c.SetReadDeadline(testsupport.Deadline(10 * time.Second))
		resp, err := nethttp.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Errorf("client %d (request sent before Shutdown): %v; want a response", i, err)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 || string(body) != "ok" || !resp.Close {
			t.Errorf("client %d: %d %q close=%v, %v; want 200 \"ok\" and Connection: close", i, resp.StatusCode, body, resp.Close, err)
		}
	}
	if err := testsupport.Recv(t, shut, 10*time.Second, "Shutdown to return"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
