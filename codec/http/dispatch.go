package http

import (
	"io"
	"time"
)

// dispatcher is what the connection layer does with a complete request, and what it needs to
// know about requests answered elsewhere. A Server has exactly one: inline for a native
// Handler, the worker pool for an adapted net/http handler. Every method runs on the
// connection's loop goroutine.
type dispatcher interface {
	// serve handles req (raw is its bytes on the wire) and returns out with whatever was
	// answered inline appended. ok false means the request must wait for earlier ones; nothing
	// was consumed and the connection layer pauses reading until it is resumed.
	serve(cs *conn, out []byte, req *Request, raw []byte, now int64) (_ []byte, ok bool)
	// dispatch hands over what serve took during this OnData (the worker pool gets the
	// requests of one read together). Called once at the end of every OnData.
	dispatch(cs *conn)
	// owed returns how many responses of cs are still being produced elsewhere.
	owed(cs *conn) int
	// queueReady queues a codec-generated response (copied) behind the owed ones.
	queueReady(cs *conn, resp []byte, err error, now int64)
	// readEOF reports whether cs stays open after its client shut its writing side.
	readEOF(cs *conn) bool
	// writable is OnWritable: the output drained below the low-water mark.
	writable(cs *conn)
	// closed runs from OnClose: abandon what is owed.
	closed(cs *conn)
}

// inline answers every request on the loop with the native Handler, inside OnData. A handler
// may defer its response (ResponseWriter.Defer): the connection then owes it, and responses
// after it wait in the connection's queue (deferred.go).
type inline struct{}

func (inline) owed(cs *conn) int {
	if cs.ad == nil {
		return 0
	}
	return len(cs.ad.df.slots)
}

func (inline) queueReady(cs *conn, resp []byte, err error, now int64) {
	cs.queue().queueReady(cs, resp, err)
}

// readEOF keeps a half-closed connection open while responses are owed; it closes after the
// last one.
func (d inline) readEOF(cs *conn) bool {
	if cs.ad != nil && cs.ad.nb != nil && cs.ad.nb.rcv != nil {
		// The client shut its side in the middle of a body its receiver is taking: the
		// request can never complete. The receiver hears ErrClientGone and the connection
		// closes (a response it already wrote goes first).
		cs.flags |= csDone
		cs.endNativeBody()
		cs.c.Close()
		return true
	}
	if d.owed(cs) == 0 {
		return false
	}
	cs.flags |= csDone | csEOF
	return true
}

// writable tells the producer of the first owed response that the output drained.
func (d inline) writable(cs *conn) {
	if d.owed(cs) > 0 {
		cs.ad.df.advance(cs)
	}
}

func (inline) closed(cs *conn) {
	if cs.ad != nil {
		cs.ad.df.drop(ErrClientGone)
	}
}

func (inline) dispatch(*conn) {}

func (d inline) serve(cs *conn, out []byte, req *Request, raw []byte, now int64) ([]byte, bool) {
	if n := d.owed(cs); n > 0 {
		if n >= cs.srv().cfg.maxPipeline || cs.flags&csBarrier != 0 {
			return out, false // resumed by the queue once a slot frees
		}
		if req.streaming {
			// A body to stream behind owed responses: it waits, unread, for them.
			return out, false
		}
		cs.serveBehind(req, len(raw), now)
		return out, true
	}
	if req.streaming {
		// The body follows (BodyStreamer); Handle runs once it is complete (feedNative).
		return cs.startNativeBody(out, req, len(raw), now), true
	}
	return cs.serveNative(out, req, len(raw), now, cs.srv().h), true
}

// serveNative answers one request with h — the Server's native handler, or a BodyReceiver
// answering at head time — appending the response to out.
func (cs *conn) serveNative(out []byte, req *Request, n int, now int64, h Handler) []byte {
	ls := cs.ls
	s := ls.srv
	w := &ls.w
	w.Begin(out, req)
	w.setSink(cs)
	if cs.countRequest(s.cfg.maxRequests) || s.draining.Load() {
		w.SetClose()
	}
	var rerr error
	ls.curReq, ls.curLen, ls.deferred = req, n, false
	panicked := cs.callNative(s, h, w, req)
	ls.curReq = nil
	if panicked && cs.ad != nil && cs.ad.nb != nil {
		// A BodyReceiver that panicked in Handle gets no more of the body: it is read and
		// dropped, and the connection closes after the 500.
		cs.ad.nb.w, cs.ad.nb.rcv = io.Discard, nil
	}
	if ls.deferred {
		// The response is owed (Defer); it is counted and observed when it completes. A panic
		// after Defer ends it as the Deferred's Abort would.
		ls.deferred = false
		w.setSink(nil)
		if panicked {
			if ad := cs.ad; ad != nil && len(ad.df.slots) > 0 {
				q := &ad.df
				d := q.slots[len(q.slots)-1]
				d.keep = true
				d.Abort()
			}
		}
		cs.reqStart = now
		return w.out
	}
	if panicked {
		rerr = ErrHandlerPanic
		ls.upPending = nil // a handler that panicked after Upgrade does not switch protocols
		w.abort(ErrHandlerPanic, ls.appendErr)
	} else if !w.finished {
		w.Finish()
	}
	w.setSink(nil)
	keep := w.KeepAlive()
	if !keep {
		cs.flags |= csDone
	}
	ls.requests++
	if obs := s.cfg.observer; obs != nil {
		info := &ls.info
		*info = RequestInfo{
			Method: req.Method(), Path: req.Path(), ProtoMinor: int(req.minor),
			Status: w.status, BytesIn: int64(n), BytesOut: w.bytesOut(),
			Start: ls.timeAt(cs.reqStart), Duration: time.Duration(now - cs.reqStart),
			Err: rerr, KeepAlive: keep, conn: cs.c,
		}
		obs(info)
		info.conn = nil
	}
	cs.reqStart = now
	return w.out
}
