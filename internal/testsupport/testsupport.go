// Package testsupport holds what the project's tests share: waiting for a condition instead of
// sleeping, and one factor that widens every timing bound on a slow or busy machine.
//
// Tests never sleep to synchronise. They wait for the state they need with Eventually (which
// polls a condition until it holds or a deadline passes) and scale their timing bounds with
// Scale, so a slower machine can run the suite by setting REACTORD_TEST_TIMESCALE instead of
// editing tests:
//
//	REACTORD_TEST_TIMESCALE=3 go test -race ./...
//
// It is imported by tests only; nothing in the libraries or the daemon links it.
package testsupport

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// EnvTimeScale names the environment variable read by TimeScale: a positive number (a decimal
// fraction is allowed) by which every timing bound passed through Scale is multiplied.
const EnvTimeScale = "REACTORD_TEST_TIMESCALE"

var (
	scaleOnce sync.Once
	scale     float64
)

// TimeScale returns the factor set by REACTORD_TEST_TIMESCALE, or 1 when it is unset, not a
// number, or not positive (a bad value is reported on stderr once rather than ignored silently).
func TimeScale() float64 {
	scaleOnce.Do(func() {
		scale = 1
		v := os.Getenv(EnvTimeScale)
		if v == "" {
			return
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			fmt.Fprintf(os.Stderr, "testsupport: ignoring %s=%q: want a positive number\n", EnvTimeScale, v)
			return
		}
		scale = f
	})
	return scale
}

// Scale returns d multiplied by TimeScale. Use it for every bound a test puts on how long
// something may take: deadlines to wait for, timeouts configured on a server under test, and
// the margins a test allows around them.
func Scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) * TimeScale())
}

// TB is the part of testing.TB that Eventually needs (so it also works with a fake in its own
// tests).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// DefaultWait is the deadline Eventually uses when given 0: long enough that only a real
// failure reaches it on a loaded two-core machine, scaled like every other bound.
const DefaultWait = 10 * time.Second

// pollEvery is how often Eventually re-checks its condition. It is a polling interval, not a
// synchronisation: the condition decides when the wait ends.
const pollEvery = 2 * time.Millisecond

// Eventually calls cond until it returns true, or fails the test once timeout (scaled with
// Scale; 0 means DefaultWait) has passed, naming what was awaited: "timed out after 10s waiting
// for <what>". cond runs on the caller's goroutine and should be cheap and side-effect free.
func Eventually(t TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := Wait(timeout, cond); err != nil {
		t.Fatalf("%v for %s", err, what)
	}
}

// Wait is Eventually for code that is not a test (a helper goroutine, a benchmark's setup): it
// returns nil once cond holds, or an error saying how long it waited.
func Wait(timeout time.Duration, cond func() bool) error {
	if timeout <= 0 {
		timeout = DefaultWait
	}
	timeout = Scale(timeout)
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			// One last look: the condition may have become true while the deadline passed
			// (a descheduled test goroutine on a busy machine).
			if cond() {
				return nil
			}
			return fmt.Errorf("timed out after %v waiting", timeout)
		}
		time.Sleep(pollEvery)
	}
	return nil
}

// Deadline returns the time d (scaled with Scale) from now: for the read and write deadlines a
// test puts on its sockets, which are bounds on how long the code under test may take.
func Deadline(d time.Duration) time.Time {
	return time.Now().Add(Scale(d))
}

// Recv waits for a value from ch, or fails the test once timeout (scaled with Scale; 0 means
// DefaultWait) has passed, naming what was awaited. A bare `<-ch` in a test waits for ever when
// the code under test never sends, which leaves the whole binary to go test's -timeout and
// its panic; Recv turns that into this test's failure, with a message. Recv returns the value
// received (the zero value when ch was closed).
func Recv[T any](t TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	if timeout <= 0 {
		timeout = DefaultWait
	}
	timeout = Scale(timeout)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
		var zero T
		return zero
	}
}
