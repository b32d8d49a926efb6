package reactor

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// TestRingClosedNumberNotReused: in the completion mode a connection closed in the
// iteration that queued a request for it (here: accepted, its receive armed, closed in
// OnOpen) must not let that request reach whatever next takes its descriptor number. The
// loop's afterClose hook takes the number at once, as another loop's accept could: it
// opens a socket pair, whose first end gets the lowest free number, the one just closed,
// and puts bytes in it. A stale receive submitted at the next enter would read them.
func TestRingClosedNumberNotReused(t *testing.T) {
	if _, err := CheckPoller(uringMode); err != nil {
		t.Skipf("io_uring completion mode unavailable here: %v", err)
	}
	var opened atomic.Int32
	h := HandlerFuncs{Open: func(c *Conn) {
		opened.Add(1)
		c.Close()
	}}
	s, addr := startServer(t, h, WithPoller(uringMode), WithLoops(1))
	l := s.loops[0]

	type pair struct {
		closed []int
		a, b   int
	}
	pairs := make(chan pair, 64)
	set := make(chan struct{})
	if err := l.Post(func() {
		l.afterClose = func(closed []int) {
			if len(closed) == 0 {
				return
			}
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return
			}
			unix.Write(fds[1], []byte("not yours"))
			select {
			case pairs <- pair{append([]int(nil), closed...), fds[0], fds[1]}:
			default:
				unix.Close(fds[0])
				unix.Close(fds[1])
			}
		}
		close(set)
	}); err != nil {
		t.Fatal(err)
	}
	<-set
	const conns = 16
	for range conns {
		c := dial(t, "tcp", addr)
		c.SetReadDeadline(testsupport.Deadline(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Fatalf("a connection closed in OnOpen read %d bytes, %v", n, err)
		}
	}
	// Two more iterations (each a posted task and an enter) submit whatever was queued.
	for range 2 {
		done := make(chan struct{})
		if err := l.Post(func() { close(done) }); err != nil {
			t.Fatal(err)
		}
		<-done
	}
	done := make(chan struct{})
	l.Post(func() { l.afterClose = nil; close(done) })
	<-done
	close(pairs)
	reused := 0
	for p := range pairs {
		if slices.Contains(p.closed, p.a) {
			reused++
		}
		buf := make([]byte, 32)
		n, _, err := unix.Recvfrom(p.a, buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if n != len("not yours") {
			t.Errorf("the socket that took a closed descriptor (%v, as %d) lost its bytes to a stale request: peek %d, %v", p.closed, p.a, n, err)
		}
		unix.Close(p.a)
		unix.Close(p.b)
	}
	if reused == 0 {
		t.Fatalf("no socket took a just-closed descriptor number (%d connections opened): the test proved nothing", opened.Load())
	}
}
