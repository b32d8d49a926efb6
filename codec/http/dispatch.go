package http

import "time"

// dispatcher is what the connection layer does with a complete request, and what it needs to
// know about requests answered elsewhere. A Server has exactly one: inline for a native
// Handler, the worker pool for an adapted net/http handler. Every method runs on the
// connection's loop goroutine.
type dispatcher interface {
	// serve handles req (raw is its bytes on the wire) and returns out with whatever was
	// answered inline appended. ok false means the request must wait for earlier ones; nothing
	// was consumed and the connection layer pauses reading until it is resumed.
	serve(cs *conn, out []byte, req *Request, raw []byte, now int64) (_ []byte, ok bool)
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

// inline answers every request on the loop with the native Handler, inside OnData.
type inline struct{}

func (inline) owed(*conn) int                         { return 0 }
func (inline) queueReady(*conn, []byte, error, int64) {}
func (inline) readEOF(*conn) bool                     { return false }
func (inline) writable(*conn)                         {}
func (inline) closed(*conn)                           {}
func (inline) serve(cs *conn, out []byte, req *Request, raw []byte, now int64) ([]byte, bool) {
	if req.streaming {
		// The body follows (BodyStreamer); Handle runs once it is complete (feedNative).
		return cs.startNativeBody(out, req, now), true
	}
	return cs.serveNative(out, req, len(raw), now), true
}

// serveNative answers one request with the native handler, appending the response to out.
func (cs *conn) serveNative(out []byte, req *Request, n int, now int64) []byte {
	ls := cs.ls
	s := ls.srv
	w := &ls.w
	w.Begin(out, req)
	w.setSink(cs)
	if cs.countRequest(s.cfg.maxRequests) || s.draining.Load() {
		w.SetClose()
	}
	var rerr error
	if cs.callNative(s, w, req) {
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
