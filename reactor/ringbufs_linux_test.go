package reactor

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// providedBufs returns how many provided buffers loop l's ring has given the kernel.
func providedBufs(t *testing.T, l *Loop) int {
	t.Helper()
	got := make(chan int, 1)
	if err := l.Post(func() { got <- l.ring.br.Provided() }); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		return n
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("the loop did not run a posted task")
		return 0
	}
}

// TestRingBuffersOnDemand: the completion mode gives the kernel its provided buffers as
// traffic needs them. Connections taking turns use the first ringBufsFirst only (the others
// stay untouched, so not resident); a burst needing more in one batch runs them out, the
// receives end with ENOBUFS, the loop provides more, and every byte still arrives.
func TestRingBuffersOnDemand(t *testing.T) {
	if _, err := CheckPoller(uringMode); err != nil {
		t.Skipf("io_uring completion mode unavailable here: %v", err)
	}
	const (
		conns = 128
		each  = 16 << 10 // four buffers' worth per connection: 512 in one batch
	)
	var got atomic.Int64
	h := HandlerFuncs{Data: func(c *Conn, in []byte) int {
		got.Add(int64(len(in)))
		if len(in) == 4 && string(in) == "ping" {
			c.Write([]byte("pong"))
		}
		return len(in)
	}}
	s, addr := startServer(t, h, WithPoller(uringMode), WithLoops(1))
	l := s.loops[0]

	// Taking turns: one request at a time, 200 times, stays within the first buffers.
	cl := dial(t, "tcp", addr)
	buf := make([]byte, 4)
	for range 200 {
		if _, err := cl.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	if n := providedBufs(t, l); n != ringBufsFirst {
		t.Fatalf("after requests taking turns the kernel has %d buffers, want the first %d", n, ringBufsFirst)
	}

	// A burst: the loop is held while every client's bytes reach the kernel, so one batch
	// must carry all of them.
	cls := make([]interface{ Write([]byte) (int, error) }, conns)
	for i := range cls {
		cls[i] = dial(t, "tcp", addr)
	}
	testsupport.Eventually(t, 10*time.Second, "every connection accepted", func() bool {
		return s.Stats().ConnsOpen == conns+1
	})
	release := make(chan struct{})
	held := make(chan struct{})
	if err := l.Post(func() { close(held); <-release }); err != nil {
		t.Fatal(err)
	}
	<-held
	before := got.Load()
	msg := make([]byte, each)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for _, c := range cls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Write(msg); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(release)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	testsupport.Eventually(t, 20*time.Second, "every byte of the burst received", func() bool {
		return got.Load()-before == conns*each
	})
	if n := providedBufs(t, l); n <= ringBufsFirst || n > ringBufs {
		t.Fatalf("after a burst of %d KiB in one batch the kernel has %d buffers; want more than %d, at most %d",
			conns*each>>10, n, ringBufsFirst, ringBufs)
	}
}
