package reactor

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// TestShutdownServesInputWaitingInTheKernel: a keep-alive connection looks idle to the loop (no
// kept input, no output, not busy) while its next request already sits unread in the socket's
// receive buffer. Shutdown must not close it then — the client would get a reset for a request
// it sent — but read it, answer it, and close once it is idle. The loop is held inside a posted
// task while the bytes arrive, so the drain sees exactly that state, on every backend.
func TestShutdownServesInputWaitingInTheKernel(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			var conn atomic.Pointer[Conn]
			h := HandlerFuncs{
				Open: func(c *Conn) { conn.Store(c) },
				Data: func(c *Conn, in []byte) int {
					c.Write([]byte("answer\n"))
					return len(in)
				},
			}
			s, addr := startServer(t, h, WithLoops(1), WithPoller(b.Name))
			client := dial(t, "tcp", addr)
			testsupport.Eventually(t, 0, "the connection opened", func() bool { return conn.Load() != nil })
			c := conn.Load()
			l := s.Loops()[0]

			// Hold the loop in a task until the request is waiting in the kernel, then run what
			// Shutdown's drain runs, on the loop, before it can read the request.
			closedByDrain := make(chan bool, 1)
			if err := l.Post(func() {
				if _, err := client.Write([]byte("request\n")); err != nil {
					t.Errorf("write: %v", err)
				}
				if err := testsupport.Wait(0, func() bool {
					n, err := unix.IoctlGetInt(int(c.fd), unix.SIOCINQ)
					return err == nil && n > 0
				}); err != nil {
					t.Errorf("%v for the request to reach the server's socket", err)
				}
				l.draining = true
				l.drainIdle()
				closedByDrain <- c.flags&fClosed != 0
			}); err != nil {
				t.Fatalf("Post: %v", err)
			}
			if <-closedByDrain {
				t.Fatal("the drain closed a connection whose request was waiting unread in the kernel")
			}

			// The request is served; the connection then closes as the drain's idle close.
			got, err := io.ReadAll(client)
			if err != nil {
				t.Fatalf("read: %v (a reset means the request was dropped)", err)
			}
			if string(got) != "answer\n" {
				t.Fatalf("got %q, want the answer then EOF", got)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testsupport.Scale(10*time.Second))
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
		})
	}
}
