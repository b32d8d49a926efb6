package reactor

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/poller"
)

// Per-backend checks of what each I/O mode implements its own way: the readiness backends
// with read(2), write(2) and interest changes, the io_uring completion mode with requests
// that it arms, cancels and waits for (uring_linux.go). Each asserts what a client sees.

// TestPauseReadStopsReceiving: a paused connection must stop taking bytes from the socket,
// so that TCP's window closes and the client's writes block, and everything arrives, in
// order, once it resumes. In the completion mode this is the cancellation of the multishot
// receive.
func TestPauseReadStopsReceiving(t *testing.T) {
	const total = 32 << 20
	for _, b := range backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			conns := make(chan *Conn, 1)
			var got atomic.Int64
			var bad atomic.Bool
			h := HandlerFuncs{
				Open: func(c *Conn) { c.PauseRead(); conns <- c },
				Data: func(c *Conn, in []byte) int {
					off := got.Load()
					for i, x := range in {
						if x != byte((off+int64(i))%251) {
							bad.Store(true)
						}
					}
					got.Add(int64(len(in)))
					return len(in)
				},
			}
			s, addr := startServer(t, h, WithPoller(b.Name), WithLoops(1), WithSocketBuffers(128<<10, 128<<10))
			cl := dial(t, "tcp", addr)
			c := <-conns
			msg := make([]byte, total)
			for i := range msg {
				msg[i] = byte(i % 251)
			}
			// The client pushes until the kernel takes no more; a server that kept reading
			// would take all of it.
			cl.SetWriteDeadline(testsupport.Deadline(500 * time.Millisecond))
			n, err := cl.Write(msg)
			if err == nil {
				t.Fatalf("all %d bytes went out to a paused connection", n)
			}
			if in := s.Stats().BytesIn; in > 1<<20 {
				t.Fatalf("paused connection received %d bytes", in)
			}
			onConnLoop(t, c, c.ResumeRead)
			cl.SetWriteDeadline(testsupport.Deadline(30 * time.Second))
			if _, err := cl.Write(msg[n:]); err != nil {
				t.Fatalf("write after ResumeRead: %v", err)
			}
			testsupport.Eventually(t, 20*time.Second, "every byte received", func() bool { return got.Load() == total })
			if bad.Load() {
				t.Fatal("bytes arrived out of order")
			}
		})
	}
}

// TestResetWhilePaused: a client that resets a connection the server is not reading (paused)
// is noticed: epoll reports EPOLLERR/EPOLLHUP whatever the interest, and the completion mode
// watches for them while its receive is off.
func TestResetWhilePaused(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			if !b.Has(poller.FeatureRDHUP) {
				t.Skipf("%s cannot report a hang-up without read interest", b.Name)
			}
			opened := make(chan struct{}, 1)
			h, closed := closeRecorder(HandlerFuncs{Open: func(c *Conn) { c.PauseRead(); opened <- struct{}{} }})
			_, addr := startServer(t, h, WithPoller(b.Name), WithLoops(1))
			cl := dial(t, "tcp", addr)
			<-opened
			cl.(*net.TCPConn).SetLinger(0) // close sends RST
			cl.Close()
			if err := waitClose(t, closed); !errors.Is(err, unix.ECONNRESET) {
				t.Fatalf("OnClose err = %v, want ECONNRESET", err)
			}
		})
	}
}

// TestCloseNowSendsFIN: CloseNow releases the socket at once, so the client sees the end of
// the stream. In the completion mode the pending receive holds the socket until it is
// cancelled: without the cancellation the FIN would never go out.
func TestCloseNowSendsFIN(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			conns := make(chan *Conn, 1)
			h, closed := closeRecorder(HandlerFuncs{Open: func(c *Conn) { conns <- c }})
			_, addr := startServer(t, h, WithPoller(b.Name), WithLoops(1))
			cl := dial(t, "tcp", addr)
			c := <-conns
			onConnLoop(t, c, func() { c.CloseNow() })
			waitClose(t, closed)
			cl.SetReadDeadline(testsupport.Deadline(5 * time.Second))
			if n, err := cl.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("client read after CloseNow = %d, %v; want EOF", n, err)
			}
		})
	}
}

// TestCloseNowDropsOutputInFlight: CloseNow discards pending output, including, in the
// completion mode, a send the kernel is still working through for a client that does not
// read: that send is cancelled, so the client gets what the socket held at the close and
// then the end of the stream, not the whole response.
func TestCloseNowDropsOutputInFlight(t *testing.T) {
	const size = 16 << 20
	for _, b := range backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			conns := make(chan *Conn, 1)
			h, closed := closeRecorder(HandlerFuncs{Open: func(c *Conn) {
				c.Write(make([]byte, size))
				conns <- c
			}})
			s, addr := startServer(t, h, WithPoller(b.Name), WithLoops(1), WithSocketBuffers(128<<10, 128<<10),
				WithWatermarks(64<<20, 0))
			cl := dial(t, "tcp", addr)
			cl.(*net.TCPConn).SetReadBuffer(128 << 10)
			c := <-conns
			testsupport.Eventually(t, 0, "the socket full", func() bool { return s.Stats().BytesOut > 0 })
			onConnLoop(t, c, func() { c.CloseNow() })
			waitClose(t, closed)
			cl.SetReadDeadline(testsupport.Deadline(10 * time.Second))
			n, err := io.Copy(io.Discard, cl)
			if err != nil && !errors.Is(err, unix.ECONNRESET) {
				t.Fatalf("client read: %v after %d bytes", err, n)
			}
			if n >= size {
				t.Fatalf("client got all %d bytes after CloseNow", n)
			}
		})
	}
}

// TestShutdownStopsAccepting: once Shutdown returns, the listening socket is closed and a
// new connection is refused, not accepted and dropped. In the completion mode the multishot
// accept holds the socket until its cancellation has run.
func TestShutdownStopsAccepting(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s, addr := startServer(t, echoHandler(), WithPoller(b.Name), WithLoops(2))
			cl := dial(t, "tcp", addr)
			cl.Write([]byte("x"))
			io.ReadFull(cl, make([]byte, 1))
			cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), testsupport.Scale(10*time.Second))
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			c, err := net.DialTimeout("tcp", addr, testsupport.Scale(5*time.Second))
			if err == nil {
				c.Close()
				t.Fatal("dial succeeded after Shutdown")
			}
			if !errors.Is(err, unix.ECONNREFUSED) {
				t.Fatalf("dial after Shutdown: %v, want ECONNREFUSED", err)
			}
		})
	}
}
