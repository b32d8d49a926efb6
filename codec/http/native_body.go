package http

import (
	"io"

	"go.uber.org/zap"
)

// Streamed request bodies for native handlers (BodyStreamer). The loop hands each piece of the
// body to the handler's writer as it is parsed; the head of the request is kept (one copy), so
// Handle runs with a valid Request once the body is complete.

// nativeBody is the state of a native request body being streamed.
type nativeBody struct {
	w   io.Writer    // the handler's writer; nil: StreamBody declined, the body is buffered
	rcv BodyReceiver // w, when it answers the request at head time (BodyReceiver)
	buf []byte
	max int64 // bound of a buffered body
}

// startNativeBody begins a streamed body for req (its head just completed). It returns the
// scratch output, with a 413 appended when a declined body is too large to buffer.
func (cs *conn) startNativeBody(out []byte, req *Request, n int, now int64) []byte {
	var w io.Writer
	if st, ok := cs.srv().h.(BodyStreamer); ok {
		var panicked bool
		w, panicked = cs.callStreamBody(st, req)
		if panicked {
			return cs.reject(out, ErrHandlerPanic, now)
		}
	}
	cs.p.keepHead()
	nb := &nativeBody{w: w}
	if w == nil {
		nb.max = cs.p.lim.MaxBodyBytes
		if req.contentLength > nb.max {
			return cs.reject(out, ErrBodyTooLarge, now)
		}
	}
	if cs.ad == nil {
		cs.ad = &adConn{cs: cs}
	}
	cs.ad.nb = nb
	if rcv, ok := w.(BodyReceiver); ok {
		// The receiver answers now, with the head; the body follows to its Write.
		nb.rcv = rcv
		out = cs.serveNative(out, req, n, now, rcv)
	}
	return out
}

// feedNative passes the input of a streamed body on; when the body is complete it runs the
// handler. It returns the bytes consumed, the scratch output, and whether to stop consuming.
func (cs *conn) feedNative(in, out []byte, now int64) (int, []byte, bool) {
	nb := cs.ad.nb
	n, data, done, err := cs.p.ParseBody(in)
	if len(data) > 0 && (err == nil || nb.w != nil) {
		switch {
		case nb.w != nil:
			if _, werr := nb.w.Write(data); werr != nil && err == nil {
				err = werr
			}
		case int64(len(nb.buf)+len(data)) > nb.max:
			err = ErrBodyTooLarge
		default:
			nb.buf = append(nb.buf, data...)
		}
	}
	if err != nil {
		cs.ad.nb = nil
		if nb.rcv != nil {
			// The request is being answered already: its receiver ends the response (with the
			// error's status, or an abort). Nothing after the broken body can be read.
			cs.flags |= csDone
			cs.endBodyHold()
			if q := &cs.ad.df; len(q.slots) > 0 && !q.slots[0].done {
				q.slots[0].w.SetClose() // say so in the response, if its head is still to go
			}
			nb.rcv.EndBody(&cs.p.req, err)
			return len(in), out, true
		}
		return len(in), cs.reject(out, err, now), true
	}
	if done {
		cs.ad.nb = nil
		req := &cs.p.req
		if nb.rcv != nil {
			cs.endBodyHold()
			nb.rcv.EndBody(req, nil)
			cs.reqStart = now
			return n, out, false
		}
		if nb.w == nil {
			// Declined: Handle sees the body as if it had been buffered by Parse.
			req.body, req.streaming, req.contentLength = nb.buf, false, int64(len(nb.buf))
		}
		out = cs.serveNative(out, req, n, now, cs.srv().h)
		return n, out, false
	}
	// A receiver that cannot keep up paused the body (Deferred.PauseBody): the rest of the
	// input waits, unread, until it resumes.
	return n, out, cs.flags&csBodyHeld != 0
}

// holdBody stops reading a streamed body (Deferred.PauseBody). The time the body is held does
// not count against the client's read timeout: the wait is the receiver's.
func (cs *conn) holdBody() {
	if cs.flags&(csBodyHeld|csClosed) != 0 || cs.ad == nil || cs.ad.nb == nil {
		return
	}
	cs.flags |= csBodyHeld
	cs.ad.heldAt = cs.ls.nowNs()
	cs.pause()
}

// releaseBody undoes holdBody: the reactor hands the kept input back.
func (cs *conn) releaseBody() {
	if cs.flags&csBodyHeld == 0 {
		return
	}
	cs.endBodyHold()
	cs.resume()
	cs.arm()
}

// endBodyHold clears the hold, moving the request's start by the time it lasted.
func (cs *conn) endBodyHold() {
	if cs.flags&csBodyHeld == 0 {
		return
	}
	cs.flags &^= csBodyHeld
	cs.reqStart += cs.ls.nowNs() - cs.ad.heldAt
}

// endNativeBody tells a body's receiver that the connection closed before the body was
// complete (OnClose).
func (cs *conn) endNativeBody() {
	if cs.ad == nil || cs.ad.nb == nil {
		return
	}
	nb := cs.ad.nb
	cs.ad.nb = nil
	cs.flags &^= csBodyHeld
	if nb.rcv != nil && cs.p != nil {
		nb.rcv.EndBody(&cs.p.req, ErrClientGone)
	}
}

// callStreamBody calls StreamBody, reporting a recovered panic.
func (cs *conn) callStreamBody(st BodyStreamer, req *Request) (w io.Writer, panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			panicked = true
			cs.srv().cfg.logger.Error("http StreamBody panic", zap.Any("panic", v),
				zap.ByteString("method", req.Method()), zap.ByteString("path", req.Path()), zap.StackSkip("stack", 2))
		}
	}()
	return st.StreamBody(req), false
}
