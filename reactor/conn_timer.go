package reactor

import "time"

// connTimer is a connection's one timer. It carries the idle and read timeouts and the
// handler's deadline (SetDeadline), and exists only once one of them was set.
//
// It is re-armed lazily: the activity stamps are plain stores on the hot path, and moving a
// deadline later is a store too. The heap is touched only when a deadline moves earlier than
// the time the timer is queued for, or when the timer fires; then onTimeout works out the real
// deadline from the fields and either acts or re-queues itself for it.
type connTimer struct {
	t          Timer
	idle       int64 // ns, 0 = off
	read       int64 // ns, 0 = off
	user       int64 // loop-clock time of the SetDeadline deadline, 0 = none
	connect    int64 // loop-clock time a Dial in progress gives up (dial.go), 0 = none
	lastActive int64 // loop clock of the last read or write progress
	lastRead   int64 // loop clock of the last read (or of resuming reads)
}

// SetIdleTimeout closes the connection with ErrIdleTimeout once it has seen neither input nor
// output progress for d while not busy (Hold, PauseRead, or kept open by OnReadEOF; see the
// package doc): time spent busy does not count, and the clock restarts when the connection
// stops being busy. 0 disables it; negative counts as 0. Cheap to call and to keep: the timer
// is re-armed lazily when it fires, never per read. Loop goroutine only.
func (c *Conn) SetIdleTimeout(d time.Duration) {
	if c.flags&fClosed != 0 {
		return
	}
	c.timer().idle = max(int64(d), 0)
	c.arm()
}

// SetReadTimeout closes the connection with ErrReadTimeout once it has been waiting for input
// for d without receiving any. Only time spent reading and not busy counts: not while held or
// paused (see the package doc), nor while output above the high-water mark stops reading (the
// idle timeout covers a peer that does not read). 0 disables it. Loop goroutine only.
func (c *Conn) SetReadTimeout(d time.Duration) {
	if c.flags&fClosed != 0 {
		return
	}
	tm := c.timer()
	tm.read = max(int64(d), 0)
	tm.lastRead = c.loop.nowNs
	c.arm()
}

// SetDeadline sets the connection's deadline to t: OnDeadline (see DeadlineHandler) runs on
// the loop goroutine in the first loop iteration that starts at or after t, once per
// SetDeadline, and a t already past runs it in the next iteration. A zero t cancels the
// deadline; a later call replaces an earlier one. If the Handler does not implement
// DeadlineHandler, reaching the deadline closes the connection at once with ErrDeadline.
//
// The deadline shares the connection's one timer with the idle and read timeouts, and is
// meant to be set per request: moving it later (or cancelling it) is a store, moving it
// earlier than the time the timer is queued for is one heap fix. Only the first call on a
// connection allocates (the timer). Loop goroutine only; it does nothing once the connection
// has closed.
func (c *Conn) SetDeadline(t time.Time) {
	if c.flags&fClosed != 0 {
		return
	}
	if t.IsZero() {
		if c.tm != nil {
			c.tm.user = 0 // the queued timer finds nothing to do when it fires
		}
		return
	}
	l := c.loop
	when := int64(t.Sub(l.base))
	if when <= l.nowNs {
		// Due already: the next iteration, never this one's timer pass again (a handler that
		// sets a past deadline from OnDeadline would otherwise run for ever).
		when = l.nowNs + 1
	}
	c.timer().user = when
	c.armAt(when)
}

func (c *Conn) timer() *connTimer {
	if c.tm == nil {
		now := c.loop.nowNs
		c.tm = &connTimer{lastActive: now, lastRead: now}
		c.tm.t.loop = c.loop
		c.tm.t.conn = c
		c.tm.t.item.Value = &c.tm.t
	}
	return c.tm
}

// timeout returns the earliest of the idle and read timeout deadlines, and the error it
// carries; 0 for none. Neither runs while the connection is busy (see unbusied).
func (c *Conn) timeout() (int64, error) {
	tm := c.tm
	var when int64
	var cause error
	if c.busy() {
		return 0, nil
	}
	if tm.idle > 0 {
		when, cause = tm.lastActive+tm.idle, ErrIdleTimeout
	}
	if tm.read > 0 {
		if r := tm.lastRead + tm.read; when == 0 || r < when {
			when, cause = r, ErrReadTimeout
		}
	}
	return when, cause
}

// next returns the earliest of the timer's deadlines, 0 for none.
func (c *Conn) next() int64 {
	when, _ := c.timeout()
	if u := c.tm.user; u != 0 && (when == 0 || u < when) {
		when = u
	}
	if k := c.tm.connect; k != 0 && (when == 0 || k < when) {
		when = k
	}
	return when
}

// arm makes sure the timer fires no later than the current earliest deadline.
func (c *Conn) arm() {
	if when := c.next(); when != 0 {
		c.armAt(when)
	}
}

// armAt makes sure the timer fires no later than when. A timer queued for an earlier time is
// left there (lazy re-arming: onTimeout moves it to the real deadline when it fires).
func (c *Conn) armAt(when int64) {
	it := &c.tm.t.item
	if it.Queued() && it.When <= when {
		return
	}
	c.tm.t.schedule(when)
}

// onTimeout runs when the timer fires. Activity since it was armed has moved the real
// deadlines later; then it is simply re-armed.
func (c *Conn) onTimeout() {
	if c.flags&fClosed != 0 {
		return
	}
	tm := c.tm
	now := c.loop.nowNs
	if tm.connect != 0 && tm.connect <= now {
		tm.connect = 0
		if ds := c.hs.dial; ds != nil {
			c.closeNow(ds.dialErr(ErrDialTimeout))
			return
		}
	}
	if tm.user != 0 && tm.user <= now {
		tm.user = 0
		if c.flags&fHandshake != 0 {
			// Before OnOpen the deadline is the TLS handshake's (startTLS).
			c.closeNow(ErrTLSHandshakeTimeout)
			return
		}
		if dh := c.hs.dh; dh != nil {
			dh.OnDeadline(c)
		} else {
			c.closeNow(ErrDeadline)
		}
		if c.flags&fClosed != 0 {
			return
		}
	}
	if !c.reading() {
		// Read time does not run while reading is paused.
		tm.lastRead = now
	}
	if when, cause := c.timeout(); when != 0 && when <= now {
		c.closeNow(cause)
		return
	}
	if when := c.next(); when != 0 {
		// OnDeadline may have queued the timer again already; armAt keeps the earlier time.
		c.armAt(when)
	}
}
