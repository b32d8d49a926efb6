package http

import (
	"context"
	"errors"
	"net"
	nethttp "net/http"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

// runHTTP listens on 127.0.0.1:0 and runs s.Run on a goroutine.
func runHTTP(t *testing.T, s *Server, ctx context.Context, drain time.Duration) (string, <-chan error) {
	t.Helper()
	addr, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, drain) }()
	t.Cleanup(func() { s.Close() })
	return addr.String(), done
}

func waitRun(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("Run did not return")
		return nil
	}
}

// TestRunDrainsAdapterRequest: a request running on the worker pool when ctx ends still gets
// its response, marked as the connection's last, and Run then returns nil.
func TestRunDrainsAdapterRequest(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	h := Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		close(started)
		<-release
		w.Write([]byte("finished"))
	}))
	s, err := NewServer(h, WithWorkers(2), WithReactorOptions(reactor.WithLoops(1)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, done := runHTTP(t, s, ctx, testsupport.Scale(10*time.Second))
	cl := dialClient(t, addr)
	cl.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	cancel()
	// Draining has begun once the listener is gone.
	testsupport.Eventually(t, 0, "listener closed", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-done:
		t.Fatalf("Run returned %v while a request was running", err)
	default:
	}
	close(release)
	resp, body := cl.read("GET")
	if resp.StatusCode != 200 || body != "finished" || !resp.Close {
		t.Fatalf("response %d %q close=%v, want 200 \"finished\" with Connection: close", resp.StatusCode, body, resp.Close)
	}
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// TestRunDrainBoundCancelsRequests: a handler that outlives the drain has its context
// cancelled, and Run reports that the drain ran out.
func TestRunDrainBoundCancelsRequests(t *testing.T) {
	started := make(chan struct{})
	cancelled := make(chan struct{})
	h := Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		close(started)
		<-r.Context().Done()
		close(cancelled)
	}))
	s, err := NewServer(h, WithWorkers(1), WithReactorOptions(reactor.WithLoops(1)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, done := runHTTP(t, s, ctx, 50*time.Millisecond)
	cl := dialClient(t, addr)
	cl.send("GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	cancel()
	err = waitRun(t, done)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	select {
	case <-cancelled:
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("the handler's context was not cancelled")
	}
}

func TestRunNativeArguments(t *testing.T) {
	s, err := NewServer(HandlerFunc(func(w *ResponseWriter, r *Request) {}), WithReactorOptions(reactor.WithLoops(1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background(), -1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Run(negative drain) = %v, want ErrInvalidArgument", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, done := runHTTP(t, s, ctx, testsupport.Scale(time.Second)) // a bound: nothing is in flight
	cl := dialClient(t, addr)
	cl.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := cl.read("GET"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	cancel()
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if !cl.closed() {
		t.Fatal("idle keep-alive connection still open after Run returned")
	}
}
