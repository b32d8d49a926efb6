package reactor

import (
	"time"
)

// Timer is a function scheduled on a loop by AfterFunc or Every. All its methods must be
// called on the loop goroutine; a nil *Timer is inert.
type Timer struct {
	loop   *Loop
	f      func()
	period int64 // nanoseconds between runs of an Every timer, 0 for a one-shot
	idx    int   // position in the loop's timer heap plus one; 0 when not queued
}

// timerRef is what the loop's timer heap holds for a deadline: a Timer, or a connection whose
// one deadline (its timeouts and SetDeadline, conn_timer.go) is queued. A connection needs no
// Timer of its own: the heap entry carries the time, the Conn only its position.
type timerRef struct {
	t *Timer
	c *Conn
}

// SetHeapIndex records the entry's position in its owner (timerheap.Indexed).
func (r timerRef) SetHeapIndex(i int) {
	if r.c != nil {
		r.c.tmi = int32(i)
	} else {
		r.t.idx = i
	}
}

// AfterFunc runs f once on the loop after at least d (d <= 0 means in the next iteration).
// It returns nil for a nil f. Loop goroutine only: from elsewhere, Post a function that calls
// it.
func (l *Loop) AfterFunc(d time.Duration, f func()) *Timer {
	if f == nil {
		return nil
	}
	t := &Timer{loop: l, f: f}
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
	t.Reset(d)
	return t
}

// Stop cancels the timer. It reports whether it was pending (false if it already ran, as a
// one-shot, or was stopped). O(log n).
func (t *Timer) Stop() bool {
	if t == nil {
		return false
	}
	return t.loop.timers.Remove(t.idx)
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
	if !h.Fix(t.idx, when) {
		h.Push(when, timerRef{t: t})
	}
}

// runTimers runs every timer whose deadline has passed at the iteration's cached time.
func (l *Loop) runTimers() {
	for {
		e, ok := l.timers.Min()
		if !ok || e.When > l.nowNs {
			return
		}
		l.timers.PopMin()
		l.st.timersFired++
		if c := e.Value.c; c != nil {
			c.onTimeout()
			continue
		}
		t := e.Value.t
		if t.period > 0 {
			// Re-queue before running f, so f may Stop or Reset its own timer.
			t.schedule(l.nowNs + t.period)
		}
		t.f()
	}
}
