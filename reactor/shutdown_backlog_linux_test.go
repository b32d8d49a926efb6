package reactor

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// TestShutdownServesTheListenBacklog: connections whose handshake completed before Shutdown
// but which the loop had not accepted yet (they sit in the kernel's accept queue, their
// requests in their receive buffers) are served by a graceful shutdown, not reset by the
// close of the listener. The loop is held inside a timer callback while the clients connect
// and write, and until Shutdown's first task is queued; released, the loop runs that task in
// the same iteration (tasks run after timers), before it could see the listener readable.
// Without the drain in Shutdown every one of these clients reads ECONNRESET.
func TestShutdownServesTheListenBacklog(t *testing.T) {
	const clients = 8
	for _, b := range backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			h := HandlerFuncs{
				Data: func(c *Conn, in []byte) int {
					c.Write([]byte("answer\n"))
					return len(in)
				},
			}
			s, addr := startServer(t, h, WithLoops(1), WithPoller(b.Name))
			l := s.Loops()[0]

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
				if _, err := c.Write([]byte("request\n")); err != nil {
					close(release)
					t.Fatalf("write %d: %v", i, err)
				}
				conns[i] = c
			}
			// The precondition, from the kernel: the connections are in the listener's accept
			// queue (for a listening socket TCP_INFO's unacked field is the queue's length).
			// Except in the completion mode, whose multishot accept takes them out of the queue
			// while the loop is held: there the test checks that they are served all the same.
			if b.Name != "uring" {
				var lfd int
				for fd, h := range l.others {
					if _, ok := h.(*listener); ok {
						lfd = fd
					}
				}
				info, err := unix.GetsockoptTCPInfo(lfd, unix.IPPROTO_TCP, unix.TCP_INFO)
				if err != nil || info.Unacked != clients {
					close(release)
					t.Fatalf("accept queue %+v (%v), want the %d connections queued", info, err, clients)
				}
			}
			shut := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), testsupport.Scale(10*time.Second))
				defer cancel()
				shut <- s.Shutdown(ctx)
			}()
			err := testsupport.Wait(0, func() bool { return l.ntasks.Load() > 0 })
			close(release)
			if err != nil {
				t.Fatalf("%v for Shutdown to post its task", err)
			}

			for i, c := range conns {
				_ = c.SetReadDeadline(testsupport.Deadline(10 * time.Second))
				got, err := io.ReadAll(c)
				if err != nil || string(got) != "answer\n" {
					t.Errorf("client %d (connected before Shutdown, request sent): got %q, %v; want the answer, then EOF", i, got, err)
				}
			}
			if err := testsupport.Recv(t, shut, 10*time.Second, "Shutdown to return"); err != nil && !errors.Is(err, ErrServerClosed) {
				t.Fatalf("Shutdown: %v", err)
			}
		})
	}
}
