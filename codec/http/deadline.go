package http

import "time"

// timeoutKind says what a due deadline does.
type timeoutKind uint8

const (
	toNone   timeoutKind = iota
	toSilent             // idle: close without a response
	to408                // a request is incomplete: answer 408, close
	toWrite              // output stuck: close at once
)

// Deadlines. A connection has one deadline at a time, derived from plain loop-clock stamps on
// the conn (opened, lastActive, reqStart, writeDL) and the phase of the request being read:
//
//	nothing received yet          opened + ReadHeaderTimeout        close silently
//	between requests              lastActive + IdleTimeout           close silently
//	head arriving                 reqStart + ReadHeaderTimeout       408, close
//	body arriving                 reqStart + ReadTimeout             408, close
//	                              (also while a BodyReceiver's response is owed; the time
//	                              a receiver holds the body paused does not count)
//	                              (or lastActive + IdleTimeout when ReadTimeout is off)
//	responses owed elsewhere      none: a request being handled is not idle
//	output unsent (WriteTimeout)  writeDL                            close at once
//
// Keeping the stamps current costs no timer operation: the timer is re-armed lazily, only when
// the deadline moves earlier than where it is armed, and moved forward when it fires early.

// startDeadlines notes that deadlines apply to the connection if any timeout is configured.
// The deadline itself lives on the reactor connection's one timer (Conn.SetDeadline, with
// OnDeadline coming back to onDeadline), shared with the reactor's own idle and read timeouts:
// one timer per connection, not two timer systems.
func (cs *conn) startDeadlines() {
	cfg := &cs.srv().cfg
	if cfg.readHeaderTimeout > 0 || cfg.readTimeout > 0 || cfg.idleTimeout > 0 || cfg.writeTimeout > 0 {
		cs.flags |= csTimed
		cs.arm()
	}
}

// stopDeadlines cancels the deadline (the connection changed protocols; the new handler may
// set its own).
func (cs *conn) stopDeadlines() {
	if cs.flags&csTimed != 0 {
		cs.flags &^= csTimed
		cs.armedAt = 0
		cs.c.SetDeadline(time.Time{})
	}
}

// deadline returns the connection's next deadline and what it does.
func (cs *conn) deadline() (int64, timeoutKind) {
	cfg := &cs.srv().cfg
	var when int64
	kind := toNone
	consider := func(t int64, k timeoutKind) {
		if when == 0 || t < when {
			when, kind = t, k
		}
	}
	if cfg.writeTimeout > 0 && cs.writeDL != 0 {
		consider(cs.writeDL, toWrite)
	}
	if (cs.flags&csDone != 0 || cs.srv().disp.owed(cs) > 0) && !cs.bodyArriving() {
		// Closing, or requests are being handled: no read deadline runs — except for a body
		// still arriving for a receiver that answers early (BodyReceiver), unless it paused it.
		return when, kind
	}
	phase := PhaseIdle
	if cs.p != nil {
		phase = cs.p.Phase()
	}
	switch {
	case phase == PhaseIdle && cs.nreq == 0 && cs.flags&csInReq == 0 && cfg.readHeaderTimeout > 0:
		consider(cs.opened+int64(cfg.readHeaderTimeout), toSilent)
	case phase == PhaseIdle:
		if cfg.idleTimeout > 0 {
			consider(cs.lastActive+int64(cfg.idleTimeout), toSilent)
		}
	case phase == PhaseHead && cfg.readHeaderTimeout > 0:
		consider(cs.reqStart+int64(cfg.readHeaderTimeout), to408)
	case cfg.readTimeout > 0:
		consider(cs.reqStart+int64(cfg.readTimeout), to408)
	case cfg.idleTimeout > 0:
		consider(cs.lastActive+int64(cfg.idleTimeout), to408)
	}
	return when, kind
}

// arm makes sure the timer fires no later than the current deadline. A timer due earlier is
// left alone: when it fires, onDeadline moves it to the real deadline (lazy re-arming), so the
// per-request cost is a few comparisons.
func (cs *conn) arm() {
	if cs.flags&csTimed == 0 || cs.flags&(csClosed|csUpgraded) != 0 {
		return
	}
	when, _ := cs.deadline()
	if when == 0 || cs.armedAt != 0 && cs.armedAt <= when {
		return
	}
	cs.armedAt = when
	cs.c.SetDeadline(cs.ls.timeAt(when))
}

// onDeadline runs when the connection's deadline is reached (reactor.DeadlineHandler).
func (cs *conn) onDeadline() {
	cs.armedAt = 0
	if cs.flags&csTimed == 0 || cs.flags&(csClosed|csUpgraded) != 0 {
		return
	}
	now := cs.ls.nowNs()
	if cs.writeDL != 0 && cs.c.Buffered() == 0 {
		cs.writeDL = 0 // the output drained since it was written
	}
	when, kind := cs.deadline()
	if when == 0 {
		return
	}
	if when > now {
		cs.armedAt = when
		cs.c.SetDeadline(cs.ls.timeAt(when))
		return
	}
	switch kind {
	case toSilent:
		cs.flags |= csDone
		cs.c.Close()
	case to408:
		ls := cs.ls
		out := cs.reject(ls.out[:0], ErrRequestTimeout, now)
		cs.c.Write(out)
		ls.out = out[:0]
		ls.publish()
		cs.c.Close()
	case toWrite:
		cs.c.CloseNow()
	}
}

// bodyArriving reports whether a streamed body is being read for a BodyReceiver that answered
// early and has not paused it: the client, not the handler, is awaited.
func (cs *conn) bodyArriving() bool {
	return cs.ad != nil && cs.ad.nb != nil && cs.ad.nb.rcv != nil && cs.flags&csBodyHeld == 0
}
