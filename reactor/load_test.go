package reactor

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/poller"
)

func TestManyConcurrentConnections(t *testing.T) {
	n := 5000
	if testing.Short() {
		n = 500
	}
	// Both ends of every connection live in this process: stay under the descriptor limit
	// (macOS caps it at kern.maxfilesperproc, which can be as low as 10,240).
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil && uint64(rl.Cur) < uint64(2*n+256) {
		n = (int(rl.Cur) - 256) / 2
		t.Logf("RLIMIT_NOFILE %d: %d connections", rl.Cur, n)
	}
	// The O(1) backend only (epoll on Linux, kqueue on the BSDs, ranked first): select cannot
	// watch fds above FD_SETSIZE (1024), and poll scanning 5,000 fds per Wait is slow under
	// the race detector without telling us anything new.
	best := backends(t)[0]
	if !best.Has(poller.FeatureO1) {
		t.Skipf("no O(1) poller backend compiled (best is %s)", best.Name)
	}
	s, addr := startServer(t, echoHandler(), WithPoller(best.Name), WithLoops(2), WithBacklog(4096))
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 200)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", addr, testsupport.Scale(10*time.Second))
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	select {
	case err := <-errs:
		t.Fatalf("dial: %v", err)
	default:
	}
	testsupport.Eventually(t, 20*time.Second, "all accepted", func() bool { return s.Stats().ConnsOpen == int64(n) })
	// Every connection is alive at once: each echoes its own index.
	for i, c := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.SetDeadline(testsupport.Deadline(20 * time.Second))
			msg := []byte{byte(i), byte(i >> 8), 'x'}
			if _, err := c.Write(msg); err != nil {
				errs <- err
				return
			}
			got := make([]byte, 3)
			if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
				errs <- err
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("echo: %v", err)
	default:
	}
	st := s.Stats()
	if st.Loops[0].ConnsOpen == 0 || st.Loops[1].ConnsOpen == 0 {
		t.Fatalf("connections not spread over loops: %+v", st.Loops)
	}
}

func TestIdleLoopDoesNotSpin(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			// 1,000 connections with both ends in this process: fd numbers pass 2,000, above
			// FD_SETSIZE (1024), which the select backend's growing fd sets handle.
			const n = 1000
			s, addr := startServer(t, echoHandler(), WithPoller(b.Name), WithLoops(1))
			conns := make([]net.Conn, 0, n)
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for i := 0; i < n; i++ {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
			}
			// One round trip on each connection, so every one has been read and written.
			buf := make([]byte, 1)
			for _, c := range conns {
				c.Write([]byte("i"))
				if _, err := io.ReadFull(c, buf); err != nil {
					t.Fatal(err)
				}
			}
			testsupport.Eventually(t, 10*time.Second, "accepted", func() bool { return s.Stats().ConnsOpen == n })
			before := s.Stats().Loops[0]
			// The measurement window. It cannot turn a pass into a failure by running long
			// on a busy machine: an idle loop with no timer does not wake up however long
			// it waits, so the bound below is a count, not a rate.
			time.Sleep(time.Second)
			after := s.Stats().Loops[0]
			if d := after.Iterations - before.Iterations; d > 5 {
				t.Fatalf("idle loop ran %d iterations in 1s (waits %d, events %d)", d,
					after.Waits-before.Waits, after.Events-before.Events)
			}
		})
	}
}

func TestSlowReaderBoundsOutput(t *testing.T) {
	// Each 8-byte request is answered with a 64 KiB reply. The client pipelines requests and
	// does not read: the server must stop reading once output passes the high-water mark,
	// and never buffer more than the mark plus one reply.
	const (
		reqSize   = 8
		replySize = 64 << 10
		high      = 256 << 10
	)
	reply := make([]byte, replySize)
	var maxBuffered, maxHeld int
	var paused bool
	var mu sync.Mutex
	h := HandlerFuncs{Data: func(c *Conn, in []byte) int {
		consumed := 0
		for len(in)-consumed >= reqSize && !c.OutputFull() {
			c.Write(reply)
			consumed += reqSize
			mu.Lock()
			maxBuffered = max(maxBuffered, c.Buffered())
			mu.Unlock()
		}
		return consumed
	}}
	s, addr := startServer(t, h, WithLoops(1), WithWatermarks(high, 0))
	conns := make(chan *Conn, 1)
	cl := dial(t, "tcp", addr)
	testsupport.Eventually(t, 5*time.Second, "accepted", func() bool { return s.Stats().ConnsOpen == 1 })
	l := s.Loops()[0]
	l.Post(func() {
		for _, c := range l.conns {
			if c != nil {
				conns <- c
			}
		}
	})
	c := <-conns
	sample := func() {
		done := make(chan struct{})
		l.Post(func() {
			mu.Lock()
			maxHeld = max(maxHeld, c.Buffered()+len(c.kept()))
			if c.flags&fPausedBP != 0 {
				paused = true
			}
			mu.Unlock()
			close(done)
		})
		<-done
	}
	// Up to 100 MiB of requests; the writer blocks once the kernel buffers are full.
	go func() {
		req := make([]byte, 64<<10)
		for sent := 0; sent < 100<<20; sent += len(req) {
			if _, err := cl.Write(req); err != nil {
				return
			}
		}
	}()
	testsupport.Eventually(t, 20*time.Second, "reading paused", func() bool {
		sample()
		mu.Lock()
		defer mu.Unlock()
		return paused
	})
	// Reading stays paused: input stops growing while nobody reads. (BytesIn is published at
	// the end of an iteration: the barriers make in1 include the one that paused.)
	loopBarrier(t, l)
	loopBarrier(t, l)
	in1 := s.Stats().BytesIn
	for i := 0; i < 50; i++ {
		sample()
	}
	if in2 := s.Stats().BytesIn; in2 > in1+64<<10 {
		t.Fatalf("server kept reading while paused: %d -> %d", in1, in2)
	}
	// Now read 8 MiB of replies: the server resumes and keeps within bounds.
	buf := make([]byte, 1<<20)
	cl.SetReadDeadline(testsupport.Deadline(20 * time.Second))
	for got := 0; got < 8<<20; {
		n, err := cl.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got += n
		if got%(1<<20) < n {
			sample()
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if maxBuffered > high+replySize {
		t.Fatalf("Buffered reached %d, above high-water %d + one reply %d", maxBuffered, high, replySize)
	}
	if limit := high + replySize + DefaultReadBufferSize; maxHeld > limit {
		t.Fatalf("held %d bytes (output + kept input), limit %d", maxHeld, limit)
	}
}
