package reactor

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// TestGoroutineID checks the goroutine identity that selfID uses where gettid(2) does not
// exist: non-zero, stable within a goroutine, different between goroutines.
func TestGoroutineID(t *testing.T) {
	me := goroutineID()
	if me == 0 {
		t.Fatal("goroutineID() = 0")
	}
	if again := goroutineID(); again != me {
		t.Fatalf("goroutineID changed within a goroutine: %d then %d", me, again)
	}
	const n = 8
	ids := make(chan int, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids <- goroutineID()
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[int]bool{me: true}
	for id := range ids {
		if id == 0 || seen[id] {
			t.Fatalf("goroutineID %d is zero or repeated (seen %v)", id, seen)
		}
		seen[id] = true
	}
}

// onLoop runs f on l's goroutine and returns its error, failing the test if the loop does not
// answer in time (a wrong currentLoop answer shows up as a deadlock).
func onLoop(t *testing.T, l *Loop, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	if err := l.Post(func() { done <- f() }); err != nil {
		t.Fatalf("Post: %v", err)
	}
	select {
	case err := <-done:
		return err
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("loop callback did not finish: deadlocked waiting for its own loop?")
		return nil
	}
}

// TestLoopThreadDetection drives every operation that asks whether it runs on a loop
// goroutine, from a loop callback and from an ordinary goroutine.
func TestLoopThreadDetection(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, s *Server)
	}{
		{"Shutdown on a loop returns ErrCalledOnLoop", func(t *testing.T, s *Server) {
			err := onLoop(t, s.Loops()[1], func() error { return s.Shutdown(context.Background()) })
			if !errors.Is(err, ErrCalledOnLoop) {
				t.Fatalf("Shutdown from loop = %v, want ErrCalledOnLoop", err)
			}
		}},
		{"Shutdown off the loops drains", func(t *testing.T, s *Server) {
			ctx, cancel := context.WithTimeout(context.Background(), testsupport.Scale(10*time.Second))
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown from a plain goroutine = %v", err)
			}
		}},
		{"Listen on a loop registers without waiting for itself", func(t *testing.T, s *Server) {
			var addr string
			err := onLoop(t, s.Loops()[0], func() error {
				a, err := s.Listen("tcp", "127.0.0.1:0")
				if err == nil {
					addr = a.String()
				}
				return err
			})
			if err != nil {
				t.Fatalf("Listen from loop: %v", err)
			}
			for i := 0; i < 2; i++ { // round-robin: both loops serve the new listener
				c := dial(t, "tcp", addr)
				c.Write([]byte("hi"))
				got := make([]byte, 2)
				if _, err := io.ReadFull(c, got); err != nil || string(got) != "hi" {
					t.Fatalf("echo on listener added from a loop: %q, %v", got, err)
				}
			}
		}},
		{"Close on a loop does not wait for its own loop", func(t *testing.T, s *Server) {
			if err := onLoop(t, s.Loops()[0], s.Close); err != nil {
				t.Fatalf("Close from loop = %v", err)
			}
			for _, l := range s.Loops() {
				select {
				case <-l.done:
				case <-time.After(testsupport.Scale(10 * time.Second)):
					t.Fatalf("loop %d still running after Close", l.Index())
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := startServer(t, echoHandler(), WithLoops(2))
			tc.run(t, s)
		})
	}
}
