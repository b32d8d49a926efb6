package reactor

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// returnsWithin fails the test if f does not return within d (scaled): the symptom of a
// deadlock between loops.
func returnsWithin(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(testsupport.Scale(d)):
		t.Fatalf("%s has not returned after %v (deadlock)", what, testsupport.Scale(d))
	}
}

// onEveryLoop runs f on each loop of s at about the same time and returns when all have
// returned.
func onEveryLoop(s *Server, f func(l *Loop)) {
	var wg sync.WaitGroup
	for _, l := range s.Loops() {
		wg.Add(1)
		if l.Post(func() { defer wg.Done(); f(l) }) != nil {
			wg.Done()
		}
	}
	wg.Wait()
}

// TestServerMethodsOnLoops: Server methods are safe from any goroutine, loops included, and a
// loop never waits for a loop. Two loops closing the server at once, OnClose handlers that
// close the server when told it closed, two loops adding PerLoopListeners listeners at once, and
// loops of two servers closing each other must all return.
func TestServerMethodsOnLoops(t *testing.T) {
	t.Run("Close on two loops at once", func(t *testing.T) {
		for i := 0; i < 50; i++ {
			s, _ := startServer(t, echoHandler(), WithLoops(2))
			var errs [2]error
			returnsWithin(t, 5*time.Second, "Close called on both loops", func() {
				onEveryLoop(s, func(l *Loop) { errs[l.Index()] = s.Close() })
			})
			if errs[0] != nil || errs[1] != nil {
				t.Fatalf("Close on loops = %v", errs)
			}
			returnsWithin(t, 5*time.Second, "Serve after Close on loops", func() {
				if err := s.Serve(); !errors.Is(err, ErrServerClosed) {
					t.Errorf("Serve = %v, want ErrServerClosed", err)
				}
			})
		}
	})
	t.Run("OnClose closes the server", func(t *testing.T) {
		var s *Server
		opened := make(chan struct{}, 4)
		h := HandlerFuncs{
			Open: func(c *Conn) { opened <- struct{}{} },
			Close: func(c *Conn, err error) {
				if errors.Is(err, ErrServerClosed) {
					s.Close() // e.g. a supervisor reacting to the shutdown
				}
			},
		}
		s, addr := startServer(t, h, WithLoops(2))
		for i := 0; i < 4; i++ { // round-robin: two connections on each loop
			dial(t, "tcp", addr)
			<-opened
		}
		returnsWithin(t, 5*time.Second, "Close with OnClose calling Close on both loops", func() { s.Close() })
	})
	t.Run("Listen with PerLoopListeners on two loops at once", func(t *testing.T) {
		s, _ := startServer(t, echoHandler(), WithLoops(2), WithLoadBalancing(PerLoopListeners))
		var addrs [2]string
		returnsWithin(t, 5*time.Second, "Listen called on both loops", func() {
			onEveryLoop(s, func(l *Loop) {
				a, err := s.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Errorf("Listen on loop %d: %v", l.Index(), err)
					return
				}
				addrs[l.Index()] = a.String()
			})
		})
		// Registered without the callers waiting: both addresses serve.
		for _, a := range addrs {
			c := dial(t, "tcp", a)
			c.Write([]byte("hi"))
			got := make([]byte, 2)
			if _, err := io.ReadFull(c, got); err != nil || string(got) != "hi" {
				t.Fatalf("echo on %s: %q, %v", a, got, err)
			}
		}
	})
	t.Run("loops of two servers close each other", func(t *testing.T) {
		for i := 0; i < 20; i++ {
			a, _ := startServer(t, echoHandler(), WithLoops(1))
			b, _ := startServer(t, echoHandler(), WithLoops(1))
			returnsWithin(t, 5*time.Second, "cross-server Close from loops", func() {
				var wg sync.WaitGroup
				wg.Add(2)
				for _, pair := range [][2]*Server{{a, b}, {b, a}} {
					on, target := pair[0], pair[1]
					if on.Loops()[0].Post(func() { defer wg.Done(); target.Close() }) != nil {
						wg.Done() // the other side closed this server first
					}
				}
				wg.Wait()
			})
		}
	})
	t.Run("Shutdown and Serve on a loop return ErrCalledOnLoop", func(t *testing.T) {
		a, _ := startServer(t, echoHandler(), WithLoops(1))
		b, _ := startServer(t, echoHandler(), WithLoops(1))
		var shut, serve error
		returnsWithin(t, 5*time.Second, "Shutdown and Serve on a loop", func() {
			onEveryLoop(a, func(*Loop) {
				shut = b.Shutdown(context.Background())
				serve = a.Serve()
			})
		})
		if !errors.Is(shut, ErrCalledOnLoop) || !errors.Is(serve, ErrCalledOnLoop) {
			t.Fatalf("Shutdown = %v, Serve = %v; want ErrCalledOnLoop", shut, serve)
		}
		// Nothing was started or stopped by the refused calls.
		c := dial(t, "tcp", b.Addrs()[0].String())
		c.Write([]byte("ok"))
		if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
			t.Fatalf("b stopped serving: %v", err)
		}
	})
}

// TestListenRacingStop: Listen (and ListenPacket) racing Close or Shutdown. Each socket has one
// owner at a time, so under -race there is no data race, no descriptor is closed twice or left
// open (TestMain checks the descriptor count at the end), and Listen either returns an address
// (closed by the stop) or ErrServerClosed.
func TestListenRacingStop(t *testing.T) {
	for _, stop := range []string{"Close", "Shutdown"} {
		t.Run(stop, func(t *testing.T) {
			for i := 0; i < 300; i++ {
				s, err := NewServer(echoHandler(), WithLoops(2), WithLoadBalancing(PerLoopListeners))
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Start(); err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				errs := make(chan error, 2)
				wg.Add(2)
				go func() {
					defer wg.Done()
					_, err := s.Listen("tcp", "127.0.0.1:0")
					errs <- err
				}()
				go func() {
					defer wg.Done()
					_, err := s.ListenPacket("udp", "127.0.0.1:0", PacketHandlerFunc(func(*PacketConn, []byte, net.Addr) {}))
					errs <- err
				}()
				if stop == "Close" {
					s.Close()
				} else {
					s.Shutdown(context.Background())
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil && !errors.Is(err, ErrServerClosed) {
						t.Fatalf("Listen racing %s: %v", stop, err)
					}
				}
				s.Close()
			}
		})
	}
}
