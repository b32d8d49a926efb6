package reactor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// TestAsyncWriteContextPacesWriter: a goroutine streams to a client that does not read. With
// AsyncWriteContext its backlog stays within the high-water mark plus one chunk (it waits
// instead of buffering), and it resumes and completes once the client reads everything.
func TestAsyncWriteContextPacesWriter(t *testing.T) {
	const high, low, chunk, total = 256 << 10, 64 << 10, 32 << 10, 4 << 20
	conns := make(chan *Conn, 1)
	_, addr := startServer(t, HandlerFuncs{Open: func(c *Conn) { conns <- c }}, WithLoops(1),
		WithWatermarks(high, low), WithSocketBuffers(128<<10, 128<<10))
	cl := dial(t, "tcp", addr)
	c := <-conns

	writeErr := make(chan error, 1)
	go func() {
		for n := 0; n < total; n += chunk {
			buf := bytes.Repeat([]byte{byte(n / chunk)}, chunk)
			if err := c.AsyncWriteContext(context.Background(), buf); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()

	// The client reads nothing: the writer must end up waiting, with a bounded backlog.
	testsupport.Eventually(t, 0, "writer waiting for the output to drain", func() bool {
		pc := c.pacerIfAny()
		return pc != nil && pc.waiters.Load() > 0
	})
	var buffered int
	var queued int64
	onConnLoop(t, c, func() { buffered, queued = c.Buffered(), c.pacerIfAny().queued.Load() })
	if backlog := int64(buffered) + queued; backlog > high+chunk {
		t.Fatalf("backlog %d bytes (pending %d, queued %d) with a stalled client, want at most high+chunk = %d",
			backlog, buffered, queued, high+chunk)
	}
	select {
	case err := <-writeErr:
		t.Fatalf("writer finished against a stalled client: %v", err)
	default:
	}

	// The client reads: the writer resumes and everything arrives, in order.
	got := make([]byte, total)
	if _, err := io.ReadFull(cl, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("writer: %v", err)
	}
	for n := 0; n < total; n += chunk {
		if bytes.Count(got[n:n+chunk], []byte{byte(n / chunk)}) != chunk {
			t.Fatalf("chunk at %d is not the %dth chunk written", n, n/chunk)
		}
	}
}

// TestAsyncWriteContextErrors covers the ways a paced write ends without writing: its context
// ends, the connection closes under it, or it would have to wait on a loop goroutine.
func TestAsyncWriteContextErrors(t *testing.T) {
	const high = 64 << 10
	// fill queues output above the high-water mark behind a client that does not read.
	fill := func(t *testing.T, c *Conn) {
		t.Helper()
		if err := c.AsyncWriteContext(context.Background(), make([]byte, 4*high)); err != nil {
			t.Fatalf("first write: %v", err)
		}
		testsupport.Eventually(t, 0, "backlog above the mark", func() bool { return c.pacerIfAny().backlog() >= high })
	}
	setup := func(t *testing.T) (*Conn, net.Conn) {
		conns := make(chan *Conn, 1)
		_, addr := startServer(t, HandlerFuncs{Open: func(c *Conn) { conns <- c }}, WithLoops(1),
			WithWatermarks(high, 0), WithSocketBuffers(16<<10, 16<<10))
		cl := dial(t, "tcp", addr)
		return <-conns, cl
	}

	t.Run("nil context", func(t *testing.T) {
		c, _ := setup(t)
		//lint:ignore SA1012 the nil context is the point of the test
		if err := c.AsyncWriteContext(nil, []byte("x")); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("AsyncWriteContext(nil) = %v, want ErrInvalidArgument", err)
		}
	})
	t.Run("context ends while waiting", func(t *testing.T) {
		c, _ := setup(t)
		fill(t, c)
		ctx, cancel := context.WithTimeout(context.Background(), testsupport.Scale(30*time.Millisecond))
		defer cancel()
		before := c.pacerIfAny().backlog()
		if err := c.AsyncWriteContext(ctx, make([]byte, 100)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("AsyncWriteContext = %v, want DeadlineExceeded", err)
		}
		if after := c.pacerIfAny().backlog(); after > before {
			t.Fatalf("backlog grew from %d to %d: the refused bytes were queued", before, after)
		}
		if n := c.pacerIfAny().waiters.Load(); n != 0 {
			t.Fatalf("%d waiters left registered", n)
		}
	})
	t.Run("connection closed while waiting", func(t *testing.T) {
		for _, how := range []string{"Close", "client reset"} {
			t.Run(how, func(t *testing.T) {
				c, cl := setup(t)
				fill(t, c)
				res := make(chan error, 1)
				go func() { res <- c.AsyncWriteContext(context.Background(), []byte("late")) }()
				testsupport.Eventually(t, 0, "writer waiting", func() bool { return c.pacerIfAny().waiters.Load() > 0 })
				if how == "Close" {
					c.Close()
				} else {
					cl.(*net.TCPConn).SetLinger(0)
					cl.Close()
				}
				select {
				case err := <-res:
					if !errors.Is(err, ErrConnClosed) {
						t.Fatalf("AsyncWriteContext = %v, want ErrConnClosed", err)
					}
				case <-time.After(testsupport.Scale(10 * time.Second)):
					t.Fatal("waiter not released when the connection closed")
				}
			})
		}
	})
	t.Run("on a loop goroutine", func(t *testing.T) {
		c, _ := setup(t)
		fill(t, c)
		var err error
		onConnLoop(t, c, func() { err = c.AsyncWriteContext(context.Background(), []byte("x")) })
		if !errors.Is(err, ErrCalledOnLoop) {
			t.Fatalf("AsyncWriteContext on the loop with a full backlog = %v, want ErrCalledOnLoop", err)
		}
	})
}
