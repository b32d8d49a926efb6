package poller

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestEINTR signals the thread blocked in Wait again and again (SIGURG, the signal Go's own
// preemption uses, so the runtime handles it). Every signal makes the kernel wait fail with
// EINTR; Wait must retry and still honour its timeout: no error, no early return.
//
// The signals come from this goroutine every 5 ms. On a busy machine it may not run at all
// during a Wait, and an attempt without a signal proves nothing: it is repeated (a few
// times; the Wait is short) rather than counted as a pass or a failure.
func TestEINTR(t *testing.T) {
	for _, c := range configs() {
		t.Run(c.name, func(t *testing.T) {
			p := c.open(t)
			a, _ := socketpair(t)
			if err := p.Add(a, Readable|c.et); err != nil {
				t.Fatal(err)
			}
			const d = 100 * time.Millisecond
			const attempts = 10
			for i := 0; i < attempts; i++ {
				if sent := waitUnderSignals(t, p, d); sent > 0 {
					return
				}
				t.Logf("attempt %d: no signal was sent during the %v Wait (busy machine); again", i+1, d)
			}
			t.Fatalf("no signal could be sent during a %v Wait in %d attempts", d, attempts)
		})
	}
}

// waitUnderSignals runs one Wait(d) on a locked thread while sending that thread SIGURG every
// 5 ms, checks the Wait's result, and returns how many signals were sent while it ran.
func waitUnderSignals(t *testing.T, p Poller, d time.Duration) int {
	t.Helper()
	type result struct {
		n   int
		err error
		el  time.Duration
	}
	tid := make(chan int, 1)
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // so tid names the thread that will block in Wait
		defer runtime.UnlockOSThread()
		tid <- unix.Gettid()
		start := time.Now()
		n, err := p.Wait(make([]Event, 4), d)
		done <- result{n, err, time.Since(start)}
	}()
	target := <-tid
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for {
		select {
		case r := <-done:
			if r.n != 0 || r.err != nil || r.el < d {
				t.Fatalf("Wait(%v) under %d signals = %d, %v after %v", d, sent, r.n, r.err, r.el)
			}
			return sent
		case <-tick.C:
			if err := unix.Tgkill(unix.Getpid(), target, unix.SIGURG); err != nil {
				t.Fatal(err)
			}
			sent++
		}
	}
}
