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

// ErrUpgradeUnsupported is returned by ResponseWriter.Upgrade when the writer is not serving a
// Server connection (a writer used on its own, or Adapter.Handle's).
var ErrUpgradeUnsupported = errors.New("http: Upgrade needs a Server connection")

// upgradedConn routes the events of a connection that left HTTP.
type upgradedConn struct {
	cs *conn
	h  reactor.Handler
	wh reactor.WritableHandler
	eh reactor.ReadEOFHandler
}

// upgradedOf returns the upgraded connection c, or nil.
func (h connHandler) upgradedOf(c *reactor.Conn) *upgradedConn {
	ls := h.s.loopStateOf(c.Loop())
	return ls.upgraded[c]
}

// Upgrade answers the request with "101 Switching Protocols" ("Connection: Upgrade" and
// "Upgrade: protocol", plus the headers set so far) and, once the handler returns, hands the
// connection to h: h.OnOpen(c) runs first, then h.OnData with any bytes the client sent after
// this request (already read), and from then on every event of the connection goes to h (its
// OnWritable and OnReadEOF too, if h implements reactor.WritableHandler or
// reactor.ReadEOFHandler). Nothing may be written on this ResponseWriter afterwards.
//
// The caller checks the request first (the Upgrade and Connection headers, and whatever the
// new protocol requires); Upgrade only refuses what cannot work: ErrInvalidArgument for a nil
// h, ErrUpgradeHTTP10 for an HTTP/1.0 request, ErrInvalidHeaderValue for a protocol with
// control characters, ErrUpgradeUnsupported outside a Server, ErrHeadersSent or ErrFinished
// when the response has begun. protocol "" leaves the Connection and Upgrade header lines to
// the caller. Loop goroutine (the handler's) only.
func (w *ResponseWriter) Upgrade(protocol string, h reactor.Handler) error {
	if h == nil {
		return fmt.Errorf("%w: nil reactor.Handler", ErrInvalidArgument)
	}
	cs, ok := w.sink.(*conn)
	if !ok || cs == nil {
		return ErrUpgradeUnsupported
	}
	if err := w.commitSwitching(protocol); err != nil {
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
	ls.upgraded[cs.c] = u
	cs.resume()
	h.OnOpen(cs.c)
}
