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
	w   io.Writer // the handler's writer; nil: StreamBody declined, the body is buffered
	buf []byte
	max int64 // bound of a buffered body
}

// startNativeBody begins a streamed body for req (its head just completed). It returns the
// scratch output, with a 413 appended when a declined body is too large to buffer.
func (cs *conn) startNativeBody(out []byte, req *Request, now int64) []byte {
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
		return len(in), cs.reject(out, err, now), true
	}
	if done {
		cs.ad.nb = nil
		req := &cs.p.req
		if nb.w == nil {
			// Declined: Handle sees the body as if it had been buffered by Parse.
			req.body, req.streaming, req.contentLength = nb.buf, false, int64(len(nb.buf))
		}
		out = cs.serveNative(out, req, n, now)
	}
	return n, out, false
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
