package reactor

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// runServer listens on 127.0.0.1:0 and runs s.Run(ctx, drain) on a goroutine; the returned
// channel gets Run's result.
func runServer(t *testing.T, s *Server, ctx context.Context, drain time.Duration) (string, <-chan error) {
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

func TestRunServesUntilCancelledThenDrains(t *testing.T) {
	// The busy connection's answer comes from another goroutine while reading is paused: the
	// drain must wait for it, deliver it, and only then let Run return nil.
	release := make(chan struct{})
	h := HandlerFuncs{Data: func(c *Conn, in []byte) int {
		c.PauseRead()
		go func() {
			<-release
			c.Loop().Post(func() {
				c.Write([]byte("done"))
				c.ResumeRead()
			})
		}()
		return len(in)
	}}
	s, err := NewServer(h, WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, done := runServer(t, s, ctx, testsupport.Scale(10*time.Second))
	busy := dial(t, "tcp", addr)
	busy.Write([]byte("work"))
	testsupport.Eventually(t, 0, "request read", func() bool { return s.Stats().BytesIn == 4 })
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned %v before the busy connection finished", err)
	default:
	}
	// Draining has begun once the listener is gone: no further connection is accepted.
	testsupport.Eventually(t, 0, "listener closed", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	got, err := io.ReadAll(busy)
	if err != nil || string(got) != "done" {
		t.Fatalf("in-flight reply %q, %v", got, err)
	}
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run = %v, want nil after a clean drain", err)
	}
}

func TestRunDrainBoundExceeded(t *testing.T) {
	h, closed := closeRecorder(HandlerFuncs{Data: func(c *Conn, in []byte) int {
		c.PauseRead() // never resumed: the connection never finishes
		return len(in)
	}})
	s, err := NewServer(h, WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, done := runServer(t, s, ctx, 50*time.Millisecond)
	c := dial(t, "tcp", addr)
	c.Write([]byte("stuck"))
	testsupport.Eventually(t, 0, "request read", func() bool { return s.Stats().BytesIn == 5 })
	cancel()
	err = waitRun(t, done)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if want := "reactor: connections still busy after draining for 50ms were closed: context deadline exceeded"; err.Error() != want {
		t.Errorf("Run error %q, want %q", err, want)
	}
	if err := waitClose(t, closed); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("OnClose err = %v, want ErrServerClosed", err)
	}
}

func TestRunDrainZeroClosesAtOnce(t *testing.T) {
	h, closed := closeRecorder(HandlerFuncs{Data: func(c *Conn, in []byte) int {
		c.PauseRead()
		return len(in)
	}})
	s, err := NewServer(h, WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, done := runServer(t, s, ctx, 0)
	c := dial(t, "tcp", addr)
	c.Write([]byte("busy"))
	testsupport.Eventually(t, 0, "request read", func() bool { return s.Stats().BytesIn == 4 })
	cancel()
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run = %v, want nil (drain 0 is Close)", err)
	}
	if err := waitClose(t, closed); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("OnClose err = %v, want ErrServerClosed", err)
	}
}

func TestRunStoppedFromElsewhere(t *testing.T) {
	for _, stop := range []struct {
		name string
		fn   func(s *Server) error
	}{
		{"Shutdown", func(s *Server) error { return s.Shutdown(context.Background()) }},
		{"Close", func(s *Server) error { return s.Close() }},
	} {
		t.Run(stop.name, func(t *testing.T) {
			s, err := NewServer(echoHandler(), WithLoops(1))
			if err != nil {
				t.Fatal(err)
			}
			addr, done := runServer(t, s, context.Background(), testsupport.Scale(time.Second))
			c := dial(t, "tcp", addr)
			c.Write([]byte("x"))
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			if err := stop.fn(s); err != nil {
				t.Fatal(err)
			}
			if err := waitRun(t, done); err != nil {
				t.Fatalf("Run = %v, want nil after %s", err, stop.name)
			}
		})
	}
}

func TestRunArgumentsAndStartErrors(t *testing.T) {
	s, err := NewServer(echoHandler(), WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1012 a nil context is the invalid argument under test
	if err := s.Run(nil, time.Second); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Run(nil ctx) = %v, want ErrInvalidArgument", err)
	}
	if err := s.Run(context.Background(), -time.Second); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Run(negative drain) = %v, want ErrInvalidArgument", err)
	}
	s.Close()
	if err := s.Run(context.Background(), time.Second); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Run on a closed server = %v, want ErrServerClosed", err)
	}
	// A context done before Run: the server starts, then stops at once.
	s2, err := NewServer(echoHandler(), WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s2.Run(ctx, testsupport.Scale(time.Second)); err != nil {
		t.Errorf("Run(done ctx) = %v, want nil", err)
	}
	if err := s2.Start(); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Start after Run = %v, want ErrServerClosed", err)
	}
}
