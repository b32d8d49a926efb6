package reactor

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// TestListenerCloseLeaksNoFds: a listener that closes while clients are connecting —
// ReleaseListeners, Shutdown, Close — leaves no descriptor behind. In the completion mode
// the kernel accepts on its own: connections its accepts took before their cancellation
// took effect complete after the listener is gone, and must be closed, not leaked (onAccept
// with a stale listener); under a cap (one-shot accepts, the wait at the cap, shedding)
// the same. The process's descriptors are counted before the server starts and after each
// step, with the clients' own sockets closed.
func TestListenerCloseLeaksNoFds(t *testing.T) {
	pollers := []string{"epoll"}
	if _, err := CheckPoller(uringMode); err == nil {
		pollers = append(pollers, uringMode)
	} else {
		t.Logf("io_uring completion mode unavailable here (%v): epoll only", err)
	}
	caps := []struct {
		name string
		opts []Option
	}{
		{"uncapped", nil},
		{"capped-shedding", []Option{WithMaxConns(4), WithShedding(true)}},
	}
	// The Go runtime's own poller descriptors are opened by its first network use: make it
	// before the first count.
	warm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wc := dial(t, "tcp", warm.Addr().String())
	wc.Close()
	warm.Close()

	for _, poller := range pollers {
		for _, cp := range caps {
			for _, action := range []string{"release", "shutdown", "close"} {
				t.Run(poller+"/"+cp.name+"/"+action, func(t *testing.T) {
					testListenerCloseFds(t, poller, cp.opts, action)
				})
			}
		}
	}
}

func testListenerCloseFds(t *testing.T, poller string, opts []Option, action string) {
	before := countFDs()
	if before < 0 {
		t.Skip("no /proc/self/fd")
	}
	opts = append([]Option{WithPoller(poller), WithLoops(1)}, opts...)
	s, err := NewServer(echoHandler(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := a.String()
	running := countFDs() // the server's poller, ring, eventfd and listener

	// Clients connect, send a byte and hang up, over and over, from several goroutines, so
	// that connections are always in the listener's queue and on their way in when it closes.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var dialed atomic.Int64
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					time.Sleep(time.Millisecond) // refused once the listener is gone: not a spin
					continue
				}
				dialed.Add(1)
				c.Write([]byte("x"))
				c.Close()
			}
		})
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	testsupport.Eventually(t, 10*time.Second, "connections accepted", func() bool {
		return s.Stats().ConnsAccepted >= 50
	})

	fdsSettle := func(what string, want int) {
		t.Helper()
		if err := testsupport.Wait(10*time.Second, func() bool { return countFDs() <= want }); err != nil {
			t.Fatalf("%s: %d descriptors open, want at most %d (%v):\n%v", what, countFDs(), want, err, openFDs())
		}
	}
	switch action {
	case "release":
		if err := s.ReleaseListeners(); err != nil {
			t.Fatal(err)
		}
		cancel()
		wg.Wait()
		// Still running: every connection ends (the clients hung up), and what remains is
		// the server without its listener.
		testsupport.Eventually(t, 10*time.Second, "connections closed", func() bool {
			return s.Stats().ConnsOpen == 0
		})
		fdsSettle("after ReleaseListeners", running-1)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	case "shutdown":
		sctx, scancel := context.WithTimeout(context.Background(), testsupport.Scale(10*time.Second))
		defer scancel()
		err := s.Shutdown(sctx)
		cancel()
		wg.Wait()
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case "close":
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		cancel()
		wg.Wait()
	}
	if st := s.Stats(); st.ConnsOpen != 0 {
		t.Errorf("after %s: %d connections counted open", action, st.ConnsOpen)
	}
	fdsSettle("after the server stopped", before)
	t.Logf("%s %s: %d connections dialled, %d accepted; descriptors %d before, %d running, %d after",
		poller, action, dialed.Load(), s.Stats().ConnsAccepted, before, running, countFDs())
}

// TestAcceptsOnlyWhatFits: at its connection cap a server leaves the clients it has no room
// for in the kernel's queue, holding no descriptor for them — in the completion mode too,
// whose multishot accept, left armed, empties the whole queue in one go (the cause of
// TestShedSlowAtFdLimit's 503s on uring: the descriptor reserve taken by connections nobody
// could serve yet). On one loop, and on two with a listener each sharing the cap (the
// completion mode's credits, Server.reserveAccepts). With a cap of 4, 48 clients connect at
// once, silent; the process's descriptors are sampled until the server has paused accepting
// (no shedding) or shed a dozen (shedding, which admits the waiting clients in turn), and
// must never exceed the clients' own sockets plus the cap.
func TestAcceptsOnlyWhatFits(t *testing.T) {
	pollers := []string{"epoll"}
	if _, err := CheckPoller(uringMode); err == nil {
		pollers = append(pollers, uringMode)
	} else {
		t.Logf("io_uring completion mode unavailable here (%v): epoll only", err)
	}
	const capConns, clients = 4, 48
	for _, poller := range pollers {
		for _, tc := range []struct {
			loops int
			shed  bool
		}{{1, false}, {1, true}, {2, false}, {2, true}} {
			name := fmt.Sprintf("%s/loops=%d/pause", poller, tc.loops)
			if tc.shed {
				name = fmt.Sprintf("%s/loops=%d/shed", poller, tc.loops)
			}
			shed := tc.shed
			t.Run(name, func(t *testing.T) {
				h := &shedLineHandler{}
				// Two loops: a listener each (PerLoopListeners), sharing the cap.
				s, addr := startServer(t, h, WithPoller(poller), WithLoops(tc.loops), WithLoadBalancing(PerLoopListeners),
					WithMaxConns(capConns), WithShedding(shed))
				running := countFDs()
				if running < 0 {
					t.Skip("no /proc/self/fd")
				}
				// The readiness path checks the cap before each accept(2): two loops can
				// each pass the check at once, and go one over. The completion mode's
				// credits are taken atomically, so its bound is exact.
				slack := 0
				if poller != uringMode {
					slack = tc.loops - 1
				}
				limit := running + clients + capConns + slack
				worst := 0
				for range clients {
					dial(t, "tcp", addr) // handshake done: queued in the kernel if not accepted
					worst = max(worst, countFDs())
				}
				done := func() bool {
					worst = max(worst, countFDs())
					st := s.Stats()
					if shed {
						return st.ConnsShed >= 12
					}
					return st.AcceptPaused > 0 && st.ConnsOpen == capConns
				}
				testsupport.Eventually(t, 20*time.Second, "the server at its cap to pause or shed", done)
				for range 50 { // and a while longer: what the queue still holds stays there
					done()
				}
				if worst > limit {
					t.Errorf("%d descriptors open at worst, want at most %d (%d before the clients, %d clients, cap %d)",
						worst, limit, running, clients, capConns)
				}
				if st := s.Stats(); st.ConnsOpen > int64(capConns+slack) {
					t.Errorf("%d connections open over a cap of %d", st.ConnsOpen, capConns)
				}
				t.Logf("descriptors: %d before the clients, %d at worst (limit %d); stats %+v", running, worst, limit, s.Stats())
			})
		}
	}
}
