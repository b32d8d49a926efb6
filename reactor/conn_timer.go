package reactor

import "time"

// A connection has one deadline in the loop's timer heap, whatever asked for it: the idle and
// read timeouts and the handler's deadline (SetDeadline). The heap entry holds the time; the
// Conn holds only its position in the heap (tmi) and the SetDeadline deadline (dl), and the
// timeouts live with the rarely needed state (connExtra), made only for a connection that has
// one. A connection whose codec sets a deadline per request thus costs 12 bytes of its own
// and one heap entry, and no allocation.
//
// The entry is re-armed lazily: the activity stamps are plain stores on the hot path, and
// moving a deadline later is a store too. The heap is touched only when a deadline moves
// earlier than the time the entry is queued for, or when it fires; then onTimeout works out the
// real deadline from the fields and either acts or re-queues the entry for it.

// connTimeouts are a connection's idle and read timeouts and the stamps they count from, in
// loop-clock nanoseconds.
type connTimeouts struct {
	idle       int64 // ns, 0 = off
	read       int64 // ns, 0 = off
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
	c.timeouts().idle = max(int64(d), 0)
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
	to := c.timeouts()
	to.read = max(int64(d), 0)
	to.lastRead = c.loop.nowNs
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
// earlier than the time the timer is queued for is one heap fix. It allocates nothing. Loop
// goroutine only; it does nothing once the connection has closed.
func (c *Conn) SetDeadline(t time.Time) {
	if c.flags&fClosed != 0 {
		return
	}
	if t.IsZero() {
		c.dl = 0 // a queued entry finds nothing to do when it fires
		return
	}
	l := c.loop
	when := int64(t.Sub(l.base))
	if when <= l.nowNs {
		// Due already: the next iteration, never this one's timer pass again (a handler that
		// sets a past deadline from OnDeadline would otherwise run for ever).
		when = l.nowNs + 1
	}
	c.dl = when
	c.armAt(when)
}

// timeouts returns the connection's idle and read timeouts, making them on first use.
func (c *Conn) timeouts() *connTimeouts {
	x := c.extra()
	if c.flags&fTimeouts == 0 {
		now := c.loop.nowNs
		x.to = connTimeouts{lastActive: now, lastRead: now}
		c.flags |= fTimeouts
	}
	return &x.to
}

// active and readNow stamp progress for the idle and read timeouts; they cost a flag test on
// connections without them.
func (c *Conn) active() {
	if c.flags&fTimeouts != 0 {
		c.x.Load().to.lastActive = c.loop.nowNs
	}
}

func (c *Conn) readNow() {
	if c.flags&fTimeouts != 0 {
		c.x.Load().to.lastRead = c.loop.nowNs
	}
}

// timeout returns the earliest of the idle and read timeout deadlines, and the error it
// carries; 0 for none. Neither runs while the connection is busy (see unbusied).
func (c *Conn) timeout() (int64, error) {
	if c.flags&fTimeouts == 0 || c.busy() {
		return 0, nil
	}
	to := &c.x.Load().to
	var when int64
	var cause error
	if to.idle > 0 {
		when, cause = to.lastActive+to.idle, ErrIdleTimeout
	}
	if to.read > 0 {
		if r := to.lastRead + to.read; when == 0 || r < when {
			when, cause = r, ErrReadTimeout
		}
	}
	return when, cause
}

// next returns the earliest of the connection's deadlines, 0 for none.
func (c *Conn) next() int64 {
	when, _ := c.timeout()
	if u := c.dl; u != 0 && (when == 0 || u < when) {
		when = u
	}
	if ds := c.hs.dial; ds != nil && ds.connectAt != 0 && (when == 0 || ds.connectAt < when) {
		when = ds.connectAt // a Dial in progress gives up then (dial.go)
	}
	return when
}

// arm makes sure the timer fires no later than the current earliest deadline.
func (c *Conn) arm() {
	if when := c.next(); when != 0 {
		c.armAt(when)
	}
}

// armAt makes sure the timer fires no later than when. An entry queued for an earlier time is
// left there (lazy re-arming: onTimeout moves it to the real deadline when it fires).
func (c *Conn) armAt(when int64) {
	h := &c.loop.timers
	if queued, ok := h.When(int(c.tmi)); ok {
		if queued > when {
			h.Fix(int(c.tmi), when)
		}
		return
	}
	h.Push(when, timerRef{c: c})
}

// onTimeout runs when the connection's heap entry fires (it has left the heap). Activity since
// it was armed has moved the real deadlines later; then it is simply re-armed.
func (c *Conn) onTimeout() {
	if c.flags&fClosed != 0 {
		return
	}
	now := c.loop.nowNs
	if ds := c.hs.dial; ds != nil && ds.connectAt != 0 && ds.connectAt <= now {
		ds.connectAt = 0
		c.closeNow(ds.dialErr(ErrDialTimeout))
		return
	}
	if u := c.dl; u != 0 && u <= now {
		c.dl = 0
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
	if c.flags&fTimeouts != 0 && !c.reading() {
		// Read time does not run while reading is paused.
		c.x.Load().to.lastRead = now
	}
	if when, cause := c.timeout(); when != 0 && when <= now {
		c.closeNow(cause)
		return
	}
	if when := c.next(); when != 0 {
		// OnDeadline may have queued the entry again already; armAt keeps the earlier time.
		c.armAt(when)
	}
}
