package reactor

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// deadlineHandler is a Handler with OnDeadline: open runs in OnOpen, fired in OnDeadline.
type deadlineHandler struct {
	HandlerFuncs
	fired func(c *Conn)
}

func (h *deadlineHandler) OnDeadline(c *Conn) { h.fired(c) }

// onConnLoop runs f on c's loop goroutine and waits for it.
func onConnLoop(t *testing.T, c *Conn, f func()) {
	t.Helper()
	done := make(chan struct{})
	if err := c.Loop().Post(func() { f(); close(done) }); err != nil {
		t.Fatalf("Post: %v", err)
	}
	select {
	case <-done:
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("posted function did not run")
	}
}

// TestSetDeadline drives SetDeadline as a codec does: set per request, moved later, moved
// earlier, cancelled, and re-armed from OnDeadline. OnDeadline must run on the loop in an
// iteration that starts at or after the deadline, never before, exactly once per deadline.
func TestSetDeadline(t *testing.T) {
	d := testsupport.Scale(30 * time.Millisecond)
	type event struct {
		at   time.Time // the loop's cached iteration time when OnDeadline ran
		want time.Time // the deadline that was due
	}
	tests := []struct {
		name string
		// set runs in OnOpen and returns the deadline expected to fire (zero: none).
		set func(c *Conn) time.Time
	}{
		{"fires", func(c *Conn) time.Time {
			t := c.Loop().Now().Add(d)
			c.SetDeadline(t)
			return t
		}},
		{"moved later", func(c *Conn) time.Time {
			c.SetDeadline(c.Loop().Now().Add(d))
			t := c.Loop().Now().Add(3 * d)
			c.SetDeadline(t)
			return t
		}},
		{"moved earlier", func(c *Conn) time.Time {
			c.SetDeadline(c.Loop().Now().Add(time.Hour))
			t := c.Loop().Now().Add(d)
			c.SetDeadline(t)
			return t
		}},
		{"past", func(c *Conn) time.Time {
			t := c.Loop().Now().Add(-time.Second)
			c.SetDeadline(t)
			return t
		}},
		{"beside an idle timeout", func(c *Conn) time.Time {
			c.SetIdleTimeout(time.Hour)
			t := c.Loop().Now().Add(d)
			c.SetDeadline(t)
			return t
		}},
		{"cancelled", func(c *Conn) time.Time {
			c.SetDeadline(c.Loop().Now().Add(d))
			c.SetDeadline(time.Time{})
			return time.Time{}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			events := make(chan event, 4)
			conns := make(chan *Conn, 1)
			var want time.Time
			h := &deadlineHandler{
				HandlerFuncs: HandlerFuncs{Open: func(c *Conn) {
					want = tc.set(c)
					conns <- c
				}},
				fired: func(c *Conn) { events <- event{at: c.Loop().Now(), want: want} },
			}
			_, addr := startServer(t, h, WithLoops(1))
			dial(t, "tcp", addr)
			c := <-conns
			// A marker timer well after the deadline: by the time it runs, a due deadline has
			// run (same timer heap, earlier time), and a cancelled one has not.
			marker := make(chan struct{})
			onConnLoop(t, c, func() { c.Loop().AfterFunc(4*d, func() { close(marker) }) })
			<-marker
			if want.IsZero() {
				select {
				case ev := <-events:
					t.Fatalf("cancelled deadline fired at %v", ev.at)
				default:
				}
			} else {
				select {
				case ev := <-events:
					if ev.at.Before(ev.want) {
						t.Fatalf("OnDeadline ran at %v, before its deadline %v", ev.at, ev.want)
					}
				default:
					t.Fatal("OnDeadline did not run before a later timer")
				}
				select {
				case ev := <-events:
					t.Fatalf("OnDeadline ran twice (again at %v)", ev.at)
				default:
				}
			}
			// One timer per connection, whatever was set (the marker has run and left).
			var n int
			onConnLoop(t, c, func() { n = c.Loop().timers.Len() })
			if n > 1 {
				t.Fatalf("%d timers pending for one connection", n)
			}
		})
	}
}

// TestSetDeadlineLazy checks the cost model: moving a deadline later or cancelling it does not
// touch the timer heap (the timer stays queued for the earlier time and re-arms when it
// fires); moving it earlier re-queues the timer at once.
func TestSetDeadlineLazy(t *testing.T) {
	conns := make(chan *Conn, 1)
	h := &deadlineHandler{HandlerFuncs: HandlerFuncs{Open: func(c *Conn) { conns <- c }}, fired: func(*Conn) {}}
	_, addr := startServer(t, h, WithLoops(1))
	dial(t, "tcp", addr)
	c := <-conns
	onConnLoop(t, c, func() {
		h := &c.Loop().timers
		queued := func() int64 {
			w, ok := h.When(int(c.tmi))
			if !ok {
				t.Error("the connection has no timer queued") // not Fatal: this is the loop goroutine
			}
			return w
		}
		now := c.Loop().Now()
		c.SetDeadline(now.Add(time.Hour))
		first := queued()
		c.SetDeadline(now.Add(2 * time.Hour))
		if got := queued(); got != first {
			t.Errorf("moving the deadline later re-queued the timer: %d -> %d", first, got)
		}
		c.SetDeadline(time.Time{})
		if got := queued(); got != first {
			t.Errorf("cancelling touched the timer heap")
		}
		c.SetDeadline(now.Add(time.Minute))
		if got := queued(); got >= first {
			t.Errorf("moving the deadline earlier left the timer at %d (deadline %d)", got, c.dl)
		}
		if a := testing.AllocsPerRun(100, func() { c.SetDeadline(c.Loop().Now().Add(time.Hour)) }); a != 0 {
			t.Errorf("SetDeadline allocates %.1f times per call", a)
		}
	})
}

// TestSetDeadlineWithoutHandlerCloses: a Handler without OnDeadline gets its connection closed
// with ErrDeadline.
func TestSetDeadlineWithoutHandlerCloses(t *testing.T) {
	h, closed := closeRecorder(HandlerFuncs{Open: func(c *Conn) {
		c.SetDeadline(c.Loop().Now().Add(testsupport.Scale(20 * time.Millisecond)))
	}})
	_, addr := startServer(t, h, WithLoops(1))
	cl := dial(t, "tcp", addr)
	if err := waitClose(t, closed); !errors.Is(err, ErrDeadline) {
		t.Fatalf("OnClose err = %v, want ErrDeadline", err)
	}
	if _, err := cl.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read: %v, want EOF", err)
	}
}

// TestSetDeadlineRearmFromCallback: OnDeadline setting a deadline already past (a codec
// rescheduling from a stale clock) runs again in a later iteration, not in the same timer pass
// for ever, and the loop keeps serving meanwhile.
func TestSetDeadlineRearmFromCallback(t *testing.T) {
	const rounds = 5
	iters := make(chan uint64, rounds)
	h := &deadlineHandler{
		HandlerFuncs: HandlerFuncs{
			Open: func(c *Conn) { c.SetDeadline(c.Loop().Now()) },
			Data: func(c *Conn, in []byte) int { c.Write(in); return len(in) },
		},
	}
	h.fired = func(c *Conn) {
		iters <- c.loop.st.iterations
		if len(iters) < rounds {
			c.SetDeadline(c.Loop().Now().Add(-time.Hour))
		}
	}
	_, addr := startServer(t, h, WithLoops(1))
	cl := dial(t, "tcp", addr)
	var last uint64
	for i := 0; i < rounds; i++ {
		select {
		case it := <-iters:
			if i > 0 && it <= last {
				t.Fatalf("OnDeadline ran twice in iteration %d", it)
			}
			last = it
		case <-time.After(testsupport.Scale(10 * time.Second)):
			t.Fatalf("OnDeadline ran %d times, want %d", i, rounds)
		}
	}
	cl.Write([]byte("ping"))
	got := make([]byte, 4)
	if _, err := io.ReadFull(cl, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo after deadlines: %q, %v", got, err)
	}
}

// TestDeadlineAndIdleShareTimer: with an idle timeout and a later deadline on the one timer,
// the idle timeout still closes the connection on time, and a deadline past the idle timeout
// never runs.
func TestDeadlineAndIdleShareTimer(t *testing.T) {
	fired := make(chan struct{}, 1)
	base, closed := closeRecorder(HandlerFuncs{Open: func(c *Conn) {
		c.SetDeadline(c.Loop().Now().Add(time.Hour))
		c.SetIdleTimeout(testsupport.Scale(30 * time.Millisecond))
	}})
	h := &deadlineHandler{HandlerFuncs: base, fired: func(*Conn) { fired <- struct{}{} }}
	s, addr := startServer(t, h, WithLoops(1))
	dial(t, "tcp", addr)
	if err := waitClose(t, closed); !errors.Is(err, ErrIdleTimeout) {
		t.Fatalf("OnClose err = %v, want ErrIdleTimeout", err)
	}
	select {
	case <-fired:
		t.Fatal("OnDeadline ran for a deadline an hour away")
	default:
	}
	testsupport.Eventually(t, 0, "timer removed", func() bool { return s.Stats().Loops[0].Timers == 0 })
}
