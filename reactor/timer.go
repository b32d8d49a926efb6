package reactor

import (
	"time"

	"github.com/reactord/reactord/internal/timerheap"
)

// Timer is a function scheduled on a loop by AfterFunc or Every. All its methods must be
// called on the loop goroutine; a nil *Timer is inert.
type Timer struct {
	item   timerheap.Item[*Timer]
	loop   *Loop
	f      func()
	period int64 // nanoseconds between runs of an Every timer, 0 for a one-shot
	conn   *Conn // set for a connection's timeout timer (f is nil then)
}

// AfterFunc runs f once on the loop after at least d (d <= 0 means in the next iteration).
// It returns nil for a nil f. Loop goroutine only: from elsewhere, Post a function that calls
// it.
func (l *Loop) AfterFunc(d time.Duration, f func()) *Timer {
	if f == nil {
		return nil
	}
	t := &Timer{loop: l, f: f}
	t.item.Value = t
	t.Reset(d)
	return t
}

// Every runs f on the loop every d, first after d, until Stop. A run that falls behind is not
// repeated to catch up. It returns nil for a nil f or d <= 0. Loop goroutine only.
func (l *Loop) Every(d time.Duration, f func()) *Timer {
	if f == nil || d <= 0 {
		return nil
	}
	t := &Timer{loop: l, f: f, period: int64(d)}
	t.item.Value = t
	t.Reset(d)
	return t
}

// Stop cancels the timer. It reports whether it was pending (false if it already ran, as a
// one-shot, or was stopped). O(log n).
func (t *Timer) Stop() bool {
	if t == nil {
		return false
	}
	return t.loop.timers.Remove(&t.item)
}

// Reset (re)schedules the timer to run after d, whether or not it was pending. For an Every
// timer the period is unchanged and counts from the new first run. O(log n).
func (t *Timer) Reset(d time.Duration) {
	if t == nil {
		return
	}
	if d < 0 {
		d = 0
	}
	t.schedule(t.loop.clock() + int64(d))
}

func (t *Timer) schedule(when int64) {
	h := &t.loop.timers
	t.item.When = when
	if !h.Fix(&t.item) {
		h.Push(&t.item)
	}
}

// runTimers runs every timer whose deadline has passed at the iteration's cached time.
func (l *Loop) runTimers() {
	for {
		it := l.timers.Min()
		if it == nil || it.When > l.nowNs {
			return
		}
		l.timers.PopMin()
		t := it.Value
		l.st.timersFired++
		if t.conn != nil {
			t.conn.onTimeout()
			continue
		}
		if t.period > 0 {
			// Re-queue before running f, so f may Stop or Reset its own timer.
			t.schedule(l.nowNs + t.period)
		}
		t.f()
	}
}
