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

// offloadHandler serves each input on a worker goroutine, the documented offload pattern: in
// OnData it marks the connection busy (PauseRead, Hold, or both), the worker waits for release
// and answers with AsyncWrite, then posts the end of the busy period. started gets the
// connection when a request has gone to the worker.
type offloadHandler struct {
	pause, hold bool
	release     chan struct{}
	started     chan *Conn
	closed      chan error
}

func newOffloadHandler(pause, hold bool) *offloadHandler {
	return &offloadHandler{pause: pause, hold: hold, release: make(chan struct{}),
		started: make(chan *Conn, 1), closed: make(chan error, 1)}
}

func (h *offloadHandler) OnOpen(c *Conn)             {}
func (h *offloadHandler) OnClose(c *Conn, err error) { h.closed <- err }
func (h *offloadHandler) OnData(c *Conn, in []byte) int {
	if h.pause {
		c.PauseRead()
	}
	if h.hold {
		c.Hold()
	}
	answer := append([]byte("answer to "), in...)
	go func() {
		<-h.release
		c.AsyncWrite(answer)
		c.Loop().Post(func() {
			if h.hold {
				c.Release()
			}
			if h.pause {
				c.ResumeRead()
			}
		})
	}()
	h.started <- c
	return len(in)
}

// waitLoopTime returns once d has passed on c's loop clock, measured by a loop timer: the
// loop's own timer pass has run everything due before it by then.
func waitLoopTime(t *testing.T, c *Conn, d time.Duration) {
	t.Helper()
	passed := make(chan struct{})
	onConnLoop(t, c, func() { c.Loop().AfterFunc(d, func() { close(passed) }) })
	select {
	case <-passed:
	case <-time.After(testsupport.Scale(10*time.Second) + d):
		t.Fatal("loop timer did not run")
	}
}

// TestBusyConnectionOutlivesTimeouts: a connection whose handler paused reading or holds it
// while a worker produces the answer is busy. Its idle or read timeout must not close it however
// long the work takes; once the work is done the timeout counts again and closes it.
func TestBusyConnectionOutlivesTimeouts(t *testing.T) {
	tests := []struct {
		name        string
		pause, hold bool
		opts        func(d time.Duration) []Option
		set         func(d time.Duration) func(c *Conn)
		want        error
	}{
		{"paused, idle timeout", true, false, idleOpt, nil, ErrIdleTimeout},
		{"held, idle timeout", false, true, idleOpt, nil, ErrIdleTimeout},
		{"paused and held, idle timeout", true, true, idleOpt, nil, ErrIdleTimeout},
		{"held, read timeout", false, true, nil, func(d time.Duration) func(c *Conn) {
			return func(c *Conn) { c.SetReadTimeout(d) }
		}, ErrReadTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The timeout runs from the accept (OnOpen), before the client's byte arrives. On a
			// busy machine the byte can come later than the timeout, which then closes the
			// connection before it was ever busy: such an attempt proves nothing either way,
			// and is repeated with the timeout doubled.
			for d := testsupport.Scale(30 * time.Millisecond); ; d *= 2 {
				if busyOutlivesTimeout(t, tc.pause, tc.hold, d, tc.opts, tc.set, tc.want) {
					return
				}
				if d > testsupport.Scale(2*time.Second) {
					t.Fatalf("the client's byte never arrived within a %v timeout of the accept", d)
				}
				t.Logf("the %v timeout ran out before the client's byte arrived; again with %v", d, 2*d)
			}
		})
	}
}

func idleOpt(d time.Duration) []Option { return []Option{WithIdleTimeout(d)} }

// busyOutlivesTimeout runs one attempt of TestBusyConnectionOutlivesTimeouts with timeout d. It
// returns false, having checked nothing, when the timeout closed the connection before its
// first input arrived.
func busyOutlivesTimeout(t *testing.T, pause, hold bool, d time.Duration,
	opts func(time.Duration) []Option, set func(time.Duration) func(*Conn), want error) bool {
	t.Helper()
	h := newOffloadHandler(pause, hold)
	var hh Handler = h
	if set != nil {
		hh = &openHook{offloadHandler: h, open: set(d)}
	}
	o := []Option{WithLoops(1)}
	if opts != nil {
		o = append(o, opts(d)...)
	}
	s, addr := startServer(t, hh, o...)
	defer s.Close()
	cl := dial(t, "tcp", addr)
	defer cl.Close()
	if _, err := cl.Write([]byte("q")); err != nil {
		t.Fatalf("write: %v", err)
	}
	var c *Conn
	select {
	case c = <-h.started:
	case err := <-h.closed:
		if errors.Is(err, want) {
			return false // timed out before the byte came: not busy yet
		}
		t.Fatalf("closed before its input was handled: %v", err)
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("timed out after 10s waiting for the request to reach the worker")
	}
	// Several timeouts' worth of work on the worker.
	waitLoopTime(t, c, 5*d)
	select {
	case err := <-h.closed:
		t.Fatalf("busy connection closed while its work ran: %v", err)
	default:
	}
	close(h.release)
	got := make([]byte, len("answer to q"))
	_ = cl.SetReadDeadline(testsupport.Deadline(10 * time.Second))
	if _, err := io.ReadFull(cl, got); err != nil || string(got) != "answer to q" {
		t.Fatalf("answer %q, %v", got, err)
	}
	// Work done: the connection is waiting on the peer again, and the timeout applies.
	if err := waitClose(t, h.closed); !errors.Is(err, want) {
		t.Fatalf("OnClose err = %v, want %v", err, want)
	}
	return true
}

// openHook adds an OnOpen to offloadHandler.
type openHook struct {
	*offloadHandler
	open func(c *Conn)
}

func (h *openHook) OnOpen(c *Conn) { h.open(c) }

// TestShutdownWaitsForHeld: Shutdown treats a held connection as busy: it closes the idle one
// at once, and the held one only after its answer was written and the hold released.
func TestShutdownWaitsForHeld(t *testing.T) {
	h := newOffloadHandler(false, true)
	s, addr := startServer(t, h, WithLoops(1))
	busy := dial(t, "tcp", addr)
	idle := dial(t, "tcp", addr)
	busy.Write([]byte("work"))
	testsupport.Recv(t, h.started, 0, "the request to reach the worker")
	testsupport.Eventually(t, 0, "both accepted", func() bool { return s.Stats().ConnsOpen == 2 })
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	if err := waitClose(t, h.closed); err != nil {
		t.Fatalf("idle connection: OnClose err = %v, want nil", err)
	}
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection read: %v, want EOF", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned while a connection was held: %v", err)
	default:
	}
	close(h.release)
	got, err := io.ReadAll(busy)
	if err != nil || string(got) != "answer to work" {
		t.Fatalf("held connection got %q, %v", got, err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestHalfCloseWaitsForRelease: a peer that sends a request and shuts its writing side gets
// the answer produced while the connection was held; the EOF closes the connection only after
// the Release (with io.EOF), without a ReadEOFHandler.
func TestHalfCloseWaitsForRelease(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			h := newOffloadHandler(false, true)
			_, addr := startServer(t, h, WithPoller(b.Name), WithLoops(1))
			cl := dial(t, "tcp", addr)
			cl.Write([]byte("q"))
			cl.(*net.TCPConn).CloseWrite()
			c := testsupport.Recv(t, h.started, 0, "the request to reach the worker")
			// Let the loop read the EOF while the worker is still busy.
			waitLoopTime(t, c, testsupport.Scale(20*time.Millisecond))
			close(h.release)
			got, err := io.ReadAll(cl)
			if err != nil || string(got) != "answer to q" {
				t.Fatalf("got %q, %v", got, err)
			}
			if err := waitClose(t, h.closed); err != io.EOF {
				t.Fatalf("OnClose err = %v, want io.EOF", err)
			}
		})
	}
}

// TestHoldRelease checks the counting: holds nest, a Release without a Hold does nothing, and
// kept input comes back to OnData when the last hold ends.
func TestHoldRelease(t *testing.T) {
	type step struct {
		held int
		data []string
	}
	conns := make(chan *Conn, 1)
	var data []string
	h := HandlerFuncs{
		Open: func(c *Conn) { conns <- c },
		Data: func(c *Conn, in []byte) int {
			data = append(data, string(in))
			if c.Held() > 0 {
				return 0 // busy: keep it for later
			}
			return len(in)
		},
	}
	_, addr := startServer(t, h, WithLoops(1))
	cl := dial(t, "tcp", addr)
	c := <-conns
	var got step
	snap := func() { got = step{c.Held(), append([]string(nil), data...)} }
	onConnLoop(t, c, func() {
		c.Release() // nothing to release
		c.Hold()
		c.Hold()
		snap()
	})
	if got.held != 2 {
		t.Fatalf("Held() = %d after two Holds", got.held)
	}
	cl.Write([]byte("kept"))
	testsupport.Eventually(t, 0, "input delivered", func() bool {
		onConnLoop(t, c, snap)
		return len(got.data) == 1
	})
	onConnLoop(t, c, func() { c.Release() })
	waitLoopTime(t, c, time.Millisecond)
	onConnLoop(t, c, snap)
	if got.held != 1 || len(got.data) != 1 {
		t.Fatalf("after one Release: held %d, OnData calls %q; want 1 and no redelivery", got.held, got.data)
	}
	onConnLoop(t, c, func() { c.Release() })
	testsupport.Eventually(t, 0, "kept input handed back after the last Release", func() bool {
		onConnLoop(t, c, snap)
		return len(got.data) == 2
	})
	if got.held != 0 || got.data[1] != "kept" {
		t.Fatalf("held %d, OnData calls %q", got.held, got.data)
	}
}
