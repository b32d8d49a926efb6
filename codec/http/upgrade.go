package http

import (
	"errors"
	"fmt"

	"github.com/reactord/reactord/reactor"
)

// Protocol upgrades (RFC 9110 §7.8). A handler answers "101 Switching Protocols" and the
// connection leaves HTTP: from then on the reactor's events for it (OnData, OnWritable,
// OnReadEOF, OnClose) go to another reactor.Handler. A native handler does it with
// ResponseWriter.Upgrade; a net/http handler through the adapter does it with http.Hijacker,
// which is the same hand-over to a handler that serves the hijacked net.Conn (hijack.go).
//
// The connection's Context slot belongs to the new handler once its OnOpen runs (the codec
// finds its own state through a per-loop table instead). The codec's timeouts stop at the
// hand-over; the reactor's own (WithReactorOptions(reactor.WithIdleTimeout)) keep running.

// ErrUpgradeUnavailable is returned (wrapped, with the reason) by ResponseWriter.Upgrade when
// the connection cannot switch protocols: the writer does not serve a native Server connection
// (a writer used on its own, or the net/http adapter's, which has Hijack for this), the request
// is HTTP/1.0 or HEAD, the response is the connection's last (the server is draining, the
// request asked for "Connection: close", MaxRequests was reached), body bytes were written, or
// no Upgrade header was set.
var ErrUpgradeUnavailable = errors.New("http: connection cannot be upgraded")

// upgradedConn routes the events of a connection that left HTTP.
type upgradedConn struct {
	cs *conn
	h  reactor.Handler
	wh reactor.WritableHandler
	eh reactor.ReadEOFHandler
	dh reactor.DeadlineHandler
}

// upgradedOf returns the upgraded connection c, or nil.
func (h connHandler) upgradedOf(c *reactor.Conn) *upgradedConn {
	ls := h.s.loopStateOf(c.Loop())
	return ls.upgraded[c]
}

// Upgrade answers the request with "101 Switching Protocols" and hands the connection to h once
// the handler returns: the status line, Date and Server, the headers set so far (the caller
// must have set Upgrade, naming the new protocol, RFC 9110 §7.8) and "Connection: Upgrade" are
// queued, then h.OnOpen runs on the loop, and the bytes the client sent after the request (if
// any) go to h.OnData without waiting for another read. From then on every reactor callback of
// the connection goes to h — OnData, OnClose, and OnWritable and OnReadEOF if h implements
// reactor.WritableHandler, reactor.ReadEOFHandler or reactor.DeadlineHandler (h may use
// c.SetDeadline) — and the codec applies none of its timeouts (the reactor's own, set with
// WithReactorOptions, still run).
//
// The connection's context slot is h's from its OnOpen on: the codec finds its own state
// through a per-loop table, so h may call c.SetContext. Responses to requests pipelined before
// this one are sent first, in order.
//
// Nothing may be written after Upgrade (Write and Finish return ErrFinished). If the handler
// panics after calling Upgrade, the client gets a 500 as usual and h is never used. Loop
// goroutine only, like the rest of the ResponseWriter. Errors: ErrInvalidArgument for a nil h;
// ErrNotStarted, ErrFinished, ErrHeadersSent; ErrUpgradeUnavailable (wrapped with the reason).
func (w *ResponseWriter) Upgrade(h reactor.Handler) error {
	return w.note("Upgrade", w.upgrade(h))
}

func (w *ResponseWriter) upgrade(h reactor.Handler) error {
	if h == nil {
		return fmt.Errorf("%w: Upgrade(nil)", ErrInvalidArgument)
	}
	if err := w.check(); err != nil {
		return err
	}
	cs, ok := w.sink.(*conn)
	switch {
	case !ok || cs == nil:
		return fmt.Errorf("%w: the writer does not serve a native Server connection", ErrUpgradeUnavailable)
	case w.http10:
		return fmt.Errorf("%w: HTTP/1.0 has no 101 response", ErrUpgradeUnavailable)
	case w.head:
		return fmt.Errorf("%w: HEAD request", ErrUpgradeUnavailable)
	case w.close || !w.keepAlive:
		return fmt.Errorf("%w: the connection closes after this response", ErrUpgradeUnavailable)
	case len(w.pending) > 0 || w.pendingN > 0:
		return fmt.Errorf("%w: body bytes were written", ErrUpgradeUnavailable)
	}
	if _, ok := w.Get("Upgrade"); !ok {
		return fmt.Errorf("%w: no Upgrade header set", ErrUpgradeUnavailable)
	}
	if err := w.commitSwitching(true); err != nil {
		return err
	}
	cs.ls.upPending = h
	return nil
}

// completeUpgrade hands cs to h: the codec's deadlines stop, its parser goes back to the loop,
// reading resumes if it was paused, and h.OnOpen runs. The 101 response must already be in the
// connection's output.
func (cs *conn) completeUpgrade(h reactor.Handler) {
	ls := cs.ls
	cs.flags |= csUpgraded
	cs.stopDeadlines()
	if cs.p != nil {
		ls.putParser(cs.p)
		cs.p = nil
	}
	if ls.upgraded == nil {
		ls.upgraded = make(map[*reactor.Conn]*upgradedConn)
	}
	u := &upgradedConn{cs: cs, h: h}
	u.wh, _ = h.(reactor.WritableHandler)
	u.eh, _ = h.(reactor.ReadEOFHandler)
	u.dh, _ = h.(reactor.DeadlineHandler)
	ls.upgraded[cs.c] = u
	cs.resume()
	h.OnOpen(cs.c)
}
