package http

// ErrorBody formats the body of a response the codec makes itself: a malformed or
// unacceptable request (400, 413, 414, 417, 431, 501, 505), a read timeout (408), a handler
// panic (500) or an adapter request refused while shutting down (503). err says which
// (compare with the Err* values, or read err.Status and err.Reason); the status is the codec's
// decision and is not the hook's to change, nor is the connection handling: the response still
// carries "Connection: close" and the connection closes after it.
//
// The hook appends the body to dst (empty, with capacity kept between calls on a loop, so a
// hook that appends allocates nothing once warm) and returns it with its Content-Type. A
// Content-Type that is not a valid header value (control characters) falls back to the default
// text/plain response. It runs on loop goroutines and, for the net/http adapter, on worker
// goroutines, so it must be safe for concurrent use, must not block, and must not keep dst.
type ErrorBody func(dst []byte, err *ParseError) (body []byte, contentType string)

// WithErrorBody makes the codec's own error responses carry the body and Content-Type fn
// returns (a JSON API's error format) instead of the default text/plain "Bad Request: reason".
// Default none; nil is an error.
func WithErrorBody(fn ErrorBody) Option {
	return func(c *config) {
		if fn == nil {
			c.fail("WithErrorBody(nil)")
			return
		}
		c.errorBody = fn
	}
}

// errBadRequest stands for an error that is not a *ParseError when the hook is asked for a
// body: AppendError answers those with 400 too.
var errBadRequest = newParseError(StatusBadRequest, "bad request")

// errorStatus returns the status AppendError sends for err and the ParseError behind it.
func errorStatus(err error) (int, *ParseError) {
	pe, ok := err.(*ParseError)
	if !ok {
		pe = asParseError(err)
	}
	if pe == nil {
		return StatusBadRequest, errBadRequest
	}
	status := pe.Status
	if status < 100 || status > 999 || bodyless(status) {
		status = StatusInternalServerError
	}
	return status, pe
}

// appendErrorHead appends the head of an error response with a body of n bytes.
func appendErrorHead(dst []byte, status int, date []byte, contentType string, n int) []byte {
	dst = appendStatusLine(dst, status)
	if date != nil {
		dst = append(dst, "Date: "...)
		dst = append(dst, date...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Content-Type: "...)
	dst = append(dst, contentType...)
	dst = append(dst, "\r\n"...)
	dst = appendContentLength(dst, int64(n))
	return append(dst, "Connection: close\r\n\r\n"...)
}

// appendError is AppendError with the server's ErrorBody hook, if any. scratch holds the
// hook's body between calls (a loop's; nil on a worker, where the hook's allocation does not
// matter).
func (c *config) appendError(dst []byte, err error, date []byte, scratch *[]byte) []byte {
	if c.errorBody == nil {
		return AppendError(dst, err, date)
	}
	status, pe := errorStatus(err)
	var buf []byte
	if scratch != nil {
		buf = (*scratch)[:0]
	}
	body, ctype := c.errorBody(buf, pe)
	if scratch != nil && cap(body) <= scratchKeep {
		*scratch = body[:0]
	}
	if ctype == "" || !validValue(ctype) {
		return AppendError(dst, err, date)
	}
	dst = appendErrorHead(dst, status, date, ctype, len(body))
	return append(dst, body...)
}
