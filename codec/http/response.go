package http

import (
	"errors"
	"os"
	"strconv"
)

type bodyMode uint8

const (
	modeNone    bodyMode = iota // no content (1xx, 204, 304)
	modeLength                  // Content-Length framed
	modeChunked                 // Transfer-Encoding: chunked (HTTP/1.1 streaming)
	modeClose                   // delimited by closing the connection (HTTP/1.0 streaming)
)

// ResponseWriter serializes one response at a time by appending to a caller-supplied output
// buffer. It is reused across responses on a connection or loop (Begin starts the next one) and
// allocates only while its internal buffers grow to their working size.
//
// Framing is automatic: if the handler finishes without flushing, the buffered body gets a
// Content-Length; if it calls Flush first, an HTTP/1.1 response switches to chunked encoding and
// an HTTP/1.0 one is delimited by closing the connection. SetContentLength before the first Write
// sends the body straight into the output buffer with no intermediate copy. HEAD responses carry
// the headers (and Content-Length) the body would have, but no body. 1xx, 204 and 304 responses
// never carry a body, and 1xx/204 never a Content-Length.
//
// Header names and values are validated: CR, LF, NUL and other control characters are refused
// with an error and nothing is written, so a handler cannot inject header lines.
//
// Not safe for concurrent use: a ResponseWriter belongs to the goroutine that calls Begin.
type ResponseWriter struct {
	out       []byte
	hdr       []byte // handler-set header lines, serialized "Name: value\r\n"
	pending   []byte // body written before the head was committed
	pendingN  int64  // HEAD: body bytes counted before commit
	clen      int64  // declared Content-Length, -1 if none
	written   int64  // body bytes written after commit
	status    int
	mode      bodyMode
	started   bool
	committed bool
	finished  bool
	head      bool
	http10    bool
	keepAlive bool // the request allows another one on this connection
	close     bool // this response ends the connection
	userDate  bool
	userSrv   bool
	wantTrl   bool   // trailers announced: keep the body chunked
	trl       []byte // trailer lines, serialized "Name: value\r\n", sent after a chunked body

	// The first error a method returned since Begin, and the method's name (see Err).
	firstErr error
	firstOp  string

	dates     *DateCache
	server    string
	flushHook func(out []byte)

	sink   fileSink // the connection, for SendFile; nil outside a Server
	base   int      // len(dst) at Begin: output before it belongs to earlier responses
	handed int64    // bytes of this response already given to the flush hook or the sink
}

// fileSink is what SendFile needs from the connection: write out (the output so far), then
// queue the file range behind it.
type fileSink interface {
	sendFile(out []byte, f *os.File, off, n int64) error
}

// SetDateCache makes every later response carry a Date header read from d (skipped while d has
// no value yet). Pass nil to stop sending Date. Persists across Begin.
func (w *ResponseWriter) SetDateCache(d *DateCache) { w.dates = d }

// SetServer sets the Server header value sent on every later response ("" sends none). It
// returns ErrInvalidHeaderValue for a value with control characters. Persists across Begin.
func (w *ResponseWriter) SetServer(name string) error {
	if !validValue(name) {
		return ErrInvalidHeaderValue
	}
	w.server = name
	return nil
}

// SetFlushHook installs fn to receive the output accumulated so far on every Flush and Finish;
// the output buffer is then reset to length zero and reused, so fn must copy (the reactor's
// Conn.Write does). With no hook, output accumulates until the caller takes it with Bytes or
// TakeOutput. Persists across Begin.
func (w *ResponseWriter) SetFlushHook(fn func(out []byte)) { w.flushHook = fn }

// Begin starts a response to req, appending to dst (which may already hold earlier pipelined
// responses). req may be nil for a response not tied to a parsed request; it is then treated as
// HTTP/1.1 non-HEAD and the connection closes after it. Begin resets status to 200 and clears
// the headers of the previous response.
func (w *ResponseWriter) Begin(dst []byte, req *Request) {
	*w = ResponseWriter{
		out:       dst,
		hdr:       w.hdr[:0],
		pending:   w.pending[:0],
		trl:       w.trl[:0],
		clen:      -1,
		status:    StatusOK,
		started:   true,
		dates:     w.dates,
		server:    w.server,
		flushHook: w.flushHook,
		base:      len(dst),
	}
	if req != nil {
		w.head = req.IsHead()
		w.http10 = req.minor == 0
		w.keepAlive = req.keepAlive
	}
}

// beginFacts is Begin for a request known only by the facts the writer needs (the adapter's
// requests, whose views are gone by the time the response is written).
func (w *ResponseWriter) beginFacts(dst []byte, head, http10, keepAlive bool) {
	w.Begin(dst, nil)
	w.head, w.http10, w.keepAlive = head, http10, keepAlive
}

// bytesOut returns the bytes this response has produced so far, including those already handed
// to the flush hook or the connection.
func (w *ResponseWriter) bytesOut() int64 { return w.handed + int64(len(w.out)-w.base) }

// Bytes returns the output buffer: dst given to Begin with everything appended since.
func (w *ResponseWriter) Bytes() []byte { return w.out }

// TakeOutput returns the output so far and resets the buffer to length zero, keeping its
// capacity: the caller must consume (copy) the returned bytes before the next write.
func (w *ResponseWriter) TakeOutput() []byte {
	b := w.out
	w.out = w.out[:0]
	return b
}

// KeepAlive reports whether the connection may carry another request after this response: the
// request allowed it, the handler did not call SetClose, and the body was not delimited by
// close or left incomplete. Meaningful after Finish.
func (w *ResponseWriter) KeepAlive() bool { return w.keepAlive && !w.close }

// SetClose makes this the last response on the connection ("Connection: close" if the head is
// not yet written).
func (w *ResponseWriter) SetClose() { w.close = true }

// Status returns the status code set so far (200 by default).
func (w *ResponseWriter) Status() int { return w.status }

// Committed reports whether the status line and headers have been written.
func (w *ResponseWriter) Committed() bool { return w.committed }

// SetStatus sets the final status code, 200..999 (use WriteInformational for 1xx). It returns
// ErrInvalidStatus outside that range and ErrHeadersSent once the head is written.
func (w *ResponseWriter) SetStatus(code int) error {
	return w.note("SetStatus", w.setStatus(code))
}

func (w *ResponseWriter) setStatus(code int) error {
	if err := w.check(); err != nil {
		return err
	}
	if code < 200 || code > 999 {
		return ErrInvalidStatus
	}
	w.status = code
	return nil
}

// SetContentLength declares the body length. The body then goes directly into the output buffer
// and Finish reports ErrContentLengthMismatch if a different number of bytes was written.
// Negative n is ErrInvalidContentLength.
func (w *ResponseWriter) SetContentLength(n int64) error {
	return w.note("SetContentLength", w.setContentLength(n))
}

func (w *ResponseWriter) setContentLength(n int64) error {
	if err := w.check(); err != nil {
		return err
	}
	if n < 0 {
		return ErrInvalidContentLength
	}
	w.clen = n
	return nil
}

// Set replaces every header named name (case-insensitive) with one line name: value.
// Content-Length is routed to SetContentLength, "Connection: close" to SetClose, and
// Transfer-Encoding and other Connection values are ErrReservedHeader. Date and Server replace
// the automatic ones. Errors: ErrInvalidHeaderName, ErrInvalidHeaderValue, ErrHeadersSent.
func (w *ResponseWriter) Set(name, value string) error {
	return w.note("Set", setHeader(w, name, value, true))
}

// Add appends a header line name: value, keeping existing ones. Same rules as Set.
func (w *ResponseWriter) Add(name, value string) error {
	return w.note("Add", setHeader(w, name, value, false))
}

// SetBytes is Set with a []byte value (no conversion allocation).
func (w *ResponseWriter) SetBytes(name string, value []byte) error {
	return w.note("SetBytes", setHeader(w, name, value, true))
}

// AddBytes is Add with a []byte value.
func (w *ResponseWriter) AddBytes(name string, value []byte) error {
	return w.note("AddBytes", setHeader(w, name, value, false))
}

// Del removes every header named name. Deleting Content-Length forgets a declared length;
// deleting Date or Server restores the automatic one.
func (w *ResponseWriter) Del(name string) error {
	return w.note("Del", w.del(name))
}

func (w *ResponseWriter) del(name string) error {
	if err := w.check(); err != nil {
		return err
	}
	if !validName(name) {
		return ErrInvalidHeaderName
	}
	switch {
	case equalFold([]byte(name), "content-length"):
		w.clen = -1
		return nil
	case equalFold([]byte(name), "date"):
		w.userDate = false
	case equalFold([]byte(name), "server"):
		w.userSrv = false
	}
	w.delHeader(name)
	return nil
}

// Get returns the value of the first handler-set header named name, aliasing internal storage
// (valid until the header set changes).
func (w *ResponseWriter) Get(name string) ([]byte, bool) {
	for b := w.hdr; len(b) > 0; {
		n, v, rest := nextHeaderLine(b)
		if equalFoldBytes(n, []byte(name)) {
			return v, true
		}
		b = rest
	}
	return nil, false
}

func setHeader[V string | []byte](w *ResponseWriter, name string, value V, replace bool) error {
	if err := w.check(); err != nil {
		return err
	}
	if !validName(name) {
		return ErrInvalidHeaderName
	}
	if !validValue(value) {
		return ErrInvalidHeaderValue
	}
	nb := []byte(name)
	switch len(name) {
	case 4:
		if equalFold(nb, "date") {
			w.userDate = true
		}
	case 6:
		if equalFold(nb, "server") {
			w.userSrv = true
		}
	case 10:
		if equalFold(nb, "connection") {
			if equalFold([]byte(value), "close") {
				w.close = true
				return nil
			}
			return ErrReservedHeader
		}
	case 14:
		if equalFold(nb, "content-length") {
			n, ok := parseContentLength([]byte(value))
			if !ok {
				return ErrInvalidContentLength
			}
			w.clen = n
			return nil
		}
	case 17:
		if equalFold(nb, "transfer-encoding") {
			return ErrReservedHeader
		}
	}
	if replace {
		w.delHeader(name)
	}
	w.hdr = append(w.hdr, name...)
	w.hdr = append(w.hdr, ": "...)
	w.hdr = append(w.hdr, value...)
	w.hdr = append(w.hdr, "\r\n"...)
	return nil
}

// delHeader removes the lines named name from w.hdr in place.
func (w *ResponseWriter) delHeader(name string) {
	out := w.hdr[:0]
	for b := w.hdr; len(b) > 0; {
		n, _, rest := nextHeaderLine(b)
		line := b[:len(b)-len(rest)]
		if !equalFold(n, name) {
			out = append(out, line...) // copy moves left only: never overtakes the reader
		}
		b = rest
	}
	w.hdr = out
}

// nextHeaderLine splits the first "Name: value\r\n" line off b (as written by setHeader).
func nextHeaderLine(b []byte) (name, value, rest []byte) {
	i := 0
	for b[i] != ':' {
		i++
	}
	j := i + 2
	k := j
	for b[k] != '\r' {
		k++
	}
	return b[:i], b[j:k], b[k+2:]
}

func validName(name string) bool {
	if len(name) == 0 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !tokenTable[name[i]] {
			return false
		}
	}
	return true
}

func validValue[V string | []byte](v V) bool {
	for i := 0; i < len(v); i++ {
		if !fieldValueTable[v[i]] {
			return false
		}
	}
	return true
}

func (w *ResponseWriter) check() error {
	switch {
	case !w.started:
		return ErrNotStarted
	case w.finished:
		return ErrFinished
	case w.committed:
		return ErrHeadersSent
	}
	return nil
}

// WriteInformational writes a 1xx interim response (100 Continue, 102, 103 Early Hints, ...)
// carrying the headers set so far; they stay set for the final response. 101 is refused with
// ErrInvalidStatus (switch protocols with Upgrade), as is any code outside 100..199.
// For an HTTP/1.0 request nothing is written (RFC 9110 §15.2: a server MUST NOT send 1xx to an
// HTTP/1.0 client) and nil is returned.
func (w *ResponseWriter) WriteInformational(code int) error {
	return w.note("WriteInformational", w.writeInformational(code))
}

func (w *ResponseWriter) writeInformational(code int) error {
	if err := w.check(); err != nil {
		return err
	}
	if code < 100 || code > 199 || code == StatusSwitchingProtocols {
		return ErrInvalidStatus
	}
	if w.http10 {
		return nil
	}
	w.out = appendStatusLine(w.out, code)
	w.out = append(w.out, w.hdr...)
	w.out = append(w.out, "\r\n"...)
	return nil
}

func bodyless(status int) bool { return status < 200 || status == 204 || status == 304 }

// commit writes the status line and header section. finishing says the handler is done, so a
// buffered body's length is known.
func (w *ResponseWriter) commit(finishing bool) {
	st := w.status
	w.out = appendStatusLine(w.out, st)
	if !w.userDate && w.dates != nil {
		if d := w.dates.Bytes(); d != nil {
			w.out = append(w.out, "Date: "...)
			w.out = append(w.out, d...)
			w.out = append(w.out, "\r\n"...)
		}
	}
	if !w.userSrv && w.server != "" {
		w.out = append(w.out, "Server: "...)
		w.out = append(w.out, w.server...)
		w.out = append(w.out, "\r\n"...)
	}
	w.out = append(w.out, w.hdr...)
	switch {
	case bodyless(st):
		// RFC 9110 §8.6: no Content-Length in 1xx or 204; a 304 may repeat the length the
		// 200 response would have had, so an explicit one is kept.
		w.mode = modeNone
		if st == StatusNotModified && w.clen >= 0 {
			w.out = appendContentLength(w.out, w.clen)
		}
	case w.clen >= 0:
		w.mode = modeLength
		w.out = appendContentLength(w.out, w.clen)
	case finishing && !(w.wantTrl && !w.http10):
		n := int64(len(w.pending))
		if w.head {
			n = w.pendingN
		}
		w.mode, w.clen = modeLength, n
		w.out = appendContentLength(w.out, n)
	case w.http10:
		// HTTP/1.0 has no chunked coding: the body ends when the connection closes.
		w.mode, w.close = modeClose, true
	default:
		w.mode = modeChunked
		w.out = append(w.out, "Transfer-Encoding: chunked\r\n"...)
	}
	if w.close || !w.keepAlive {
		w.close = true
		w.out = append(w.out, "Connection: close\r\n"...)
	} else if w.http10 {
		w.out = append(w.out, "Connection: keep-alive\r\n"...)
	}
	w.out = append(w.out, "\r\n"...)
	w.committed = true
}

func appendContentLength(dst []byte, n int64) []byte {
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, "\r\n"...)
}

// Write appends body bytes. Before the head is committed they are buffered (or, after
// SetContentLength, the head is committed and they go straight to the output); after a Flush
// each Write becomes one chunk. For HEAD the bytes are counted, not sent. Errors:
// ErrBodyNotAllowed (1xx/204/304), ErrContentLengthMismatch (more than declared; nothing is
// written and the connection will close), ErrFinished, ErrNotStarted.
func (w *ResponseWriter) Write(p []byte) (int, error) {
	n, err := writeBody(w, p)
	return n, w.note("Write", err)
}

// WriteString is Write for a string, without converting it.
func (w *ResponseWriter) WriteString(s string) (int, error) {
	n, err := writeBody(w, s)
	return n, w.note("WriteString", err)
}

func writeBody[V string | []byte](w *ResponseWriter, p V) (int, error) {
	switch {
	case !w.started:
		return 0, ErrNotStarted
	case w.finished:
		return 0, ErrFinished
	case len(p) == 0:
		return 0, nil
	case bodyless(w.status):
		return 0, ErrBodyNotAllowed
	}
	if !w.committed {
		if w.clen < 0 {
			if w.head {
				w.pendingN += int64(len(p))
			} else {
				w.pending = append(w.pending, p...)
			}
			return len(p), nil
		}
		w.commit(false)
		if err := w.drainPending(); err != nil {
			return 0, err
		}
	}
	if w.mode == modeLength && w.written+int64(len(p)) > w.clen {
		w.close = true
		return 0, ErrContentLengthMismatch
	}
	w.written += int64(len(p))
	if w.head {
		return len(p), nil
	}
	if w.mode == modeChunked {
		w.out = strconv.AppendInt(w.out, int64(len(p)), 16)
		w.out = append(w.out, "\r\n"...)
		w.out = append(w.out, p...)
		w.out = append(w.out, "\r\n"...)
	} else {
		w.out = append(w.out, p...)
	}
	return len(p), nil
}

// Flush commits the head if needed — switching to chunked (HTTP/1.1) or close-delimited
// (HTTP/1.0) framing unless a Content-Length was declared — emits any buffered body, and hands
// the output to the flush hook if one is set.
func (w *ResponseWriter) Flush() error {
	return w.note("Flush", w.flush())
}

func (w *ResponseWriter) flush() error {
	switch {
	case !w.started:
		return ErrNotStarted
	case w.finished:
		return ErrFinished
	}
	if !w.committed {
		w.commit(false)
		if err := w.drainPending(); err != nil {
			return err
		}
	}
	w.hook()
	return nil
}

// drainPending sends the body buffered before the head was committed through the committed
// framing.
func (w *ResponseWriter) drainPending() error {
	pending := w.pending
	w.pending = w.pending[:0]
	if w.head {
		n := w.pendingN
		w.pendingN = 0
		if w.mode == modeLength && w.written+n > w.clen {
			w.close = true
			return ErrContentLengthMismatch
		}
		w.written += n
		return nil
	}
	if len(pending) == 0 {
		return nil
	}
	_, err := writeBody(w, pending)
	return err
}

// Finish completes the response: commits the head with an automatic Content-Length if nothing
// was flushed, appends the buffered body (not for HEAD), or ends a chunked body with the last
// chunk. It returns ErrContentLengthMismatch (and marks the connection for closing) when a
// declared length was not met. Calls after the first return ErrFinished.
func (w *ResponseWriter) Finish() error {
	return w.note("Finish", w.finish())
}

func (w *ResponseWriter) finish() error {
	switch {
	case !w.started:
		return ErrNotStarted
	case w.finished:
		return ErrFinished
	}
	var err error
	fresh := !w.committed // the head is written by this call
	if fresh {
		if w.clen >= 0 && !bodyless(w.status) && !w.head && w.clen != int64(len(w.pending)) {
			// The declared length differs from the buffered body.
			w.close = true
			err = ErrContentLengthMismatch
		}
		w.commit(true)
		switch {
		case !w.head && w.mode == modeLength:
			body := w.pending
			if int64(len(body)) > w.clen {
				body = body[:w.clen]
			}
			w.out = append(w.out, body...)
		case w.mode == modeChunked || w.mode == modeClose:
			// Trailers kept the body chunked (or HTTP/1.0 delimits it by close): the
			// buffered body goes out through that framing.
			if derr := w.drainPending(); derr != nil && err == nil {
				err = derr
			}
		}
	}
	switch w.mode {
	case modeChunked:
		if !w.head {
			w.out = append(w.out, "0\r\n"...)
			w.out = append(w.out, w.trl...)
			w.out = append(w.out, "\r\n"...)
		}
	case modeLength:
		if !fresh && !w.head && w.written != w.clen {
			w.close = true
			err = ErrContentLengthMismatch
		}
	}
	w.finished = true
	w.pending = w.pending[:0]
	w.hook()
	return err
}

func (w *ResponseWriter) hook() {
	if w.flushHook != nil && len(w.out) > 0 {
		w.flushHook(w.out)
		w.handed += int64(len(w.out) - w.base)
		w.out, w.base = w.out[:0], 0
	}
}

// SendFile sends n bytes of f from offset off as the response body (or as its end, after what
// Write buffered), without copying them through user space: the head (with Content-Length
// covering the buffered bytes and n) and the buffered body are handed to the connection, then
// the file range is queued behind them with sendfile(2). The connection duplicates the
// descriptor, so f may be closed as soon as SendFile returns. For HEAD only the head is sent.
// Nothing may be written after SendFile; Finish completes the response.
//
// Errors: ErrInvalidArgument for a nil f or negative off or n; ErrSendFileUnsupported when
// the writer does not belong to a Server connection; ErrHeadersSent, ErrFinished,
// ErrBodyNotAllowed, ErrContentLengthMismatch (a declared length other than buffered+n); the
// connection's error (closed, dup failure).
func (w *ResponseWriter) SendFile(f *os.File, off, n int64) error {
	return w.note("SendFile", w.sendFile(f, off, n))
}

func (w *ResponseWriter) sendFile(f *os.File, off, n int64) error {
	if f == nil || off < 0 || n < 0 {
		return ErrInvalidArgument
	}
	if err := w.check(); err != nil {
		return err
	}
	if w.sink == nil {
		return ErrSendFileUnsupported
	}
	if bodyless(w.status) {
		return ErrBodyNotAllowed
	}
	total := n + int64(len(w.pending))
	if w.head {
		total = n + w.pendingN
	}
	if w.clen >= 0 && w.clen != total {
		return ErrContentLengthMismatch
	}
	w.clen = total
	w.commit(false)
	if err := w.drainPending(); err != nil {
		return err
	}
	if w.head {
		w.written += n
		return nil
	}
	out := w.out
	if err := w.sink.sendFile(out, f, off, n); err != nil {
		w.close = true
		return err
	}
	w.handed += int64(len(out)-w.base) + n
	w.out, w.base = out[:0], 0
	w.written += n
	return nil
}

// abort is the one "abort to 500" sequence (a handler panicked, or its response cannot be
// completed): this response's output not yet handed on is dropped; if nothing of it has left,
// err's error response (AppendError) takes its place; the writer is finished and the connection
// closes after it. The flush hook is not called: the caller takes what is left with Bytes.
// appendErr makes the error response (the server's, with its WithErrorBody hook); nil means
// AppendError.
func (w *ResponseWriter) abort(err error, appendErr errorAppender) {
	w.out = w.out[:w.base]
	if w.handed == 0 {
		var date []byte
		if w.dates != nil {
			date = w.dates.Bytes()
		}
		if appendErr == nil {
			appendErr = AppendError
		}
		w.out = appendErr(w.out, err, date)
		w.status = statusFor(err)
		w.committed = true
	}
	w.keepAlive, w.close, w.finished = false, true, true
	w.pending = w.pending[:0]
}

// errorAppender appends a complete error response for err (AppendError, or a Server's version
// with its ErrorBody hook).
type errorAppender func(dst []byte, err error, date []byte) []byte

// resetHeaders forgets every handler-set header line (and with them any user Date or Server),
// so a caller that keeps its headers elsewhere (the adapter's http.Header) can copy them in
// afresh.
func (w *ResponseWriter) resetHeaders() {
	w.hdr = w.hdr[:0]
	w.userDate, w.userSrv = false, false
}

// buffered returns the body bytes written but held back until the head is committed.
func (w *ResponseWriter) buffered() int { return len(w.pending) }

// setSink sets the connection SendFile and Upgrade go through (nil outside a Server call).
func (w *ResponseWriter) setSink(s fileSink) { w.sink = s }

// shrink drops buffers grown past keep bytes, so a pooled writer does not pin the memory of
// one large response.
func (w *ResponseWriter) shrink(keep int) {
	if cap(w.out) > keep {
		w.out = nil
	}
	if cap(w.pending) > keep {
		w.pending = nil
	}
	if cap(w.hdr) > keep {
		w.hdr = nil
	}
}

// commitSwitching writes the head of a "101 Switching Protocols" response: status line, Date,
// Server, the handler's header lines, and "Connection: Upgrade" when connUpgrade (the adapter's
// header map carries its own). The writer is finished: nothing may follow on this protocol.
func (w *ResponseWriter) commitSwitching(connUpgrade bool) error {
	if err := w.check(); err != nil {
		return err
	}
	if w.http10 {
		return ErrUpgradeHTTP10
	}
	w.status = StatusSwitchingProtocols
	w.out = appendStatusLine(w.out, StatusSwitchingProtocols)
	if !w.userDate && w.dates != nil {
		if d := w.dates.Bytes(); d != nil {
			w.out = append(w.out, "Date: "...)
			w.out = append(w.out, d...)
			w.out = append(w.out, "\r\n"...)
		}
	}
	if !w.userSrv && w.server != "" {
		w.out = append(w.out, "Server: "...)
		w.out = append(w.out, w.server...)
		w.out = append(w.out, "\r\n"...)
	}
	w.out = append(w.out, w.hdr...)
	if connUpgrade {
		w.out = append(w.out, "Connection: Upgrade\r\n"...)
	}
	w.out = append(w.out, "\r\n"...)
	w.committed, w.finished, w.mode = true, true, modeNone
	w.keepAlive = false // the connection is no longer HTTP/1.1's
	return nil
}

// AddTrailer adds a trailer field, sent after the last chunk of a chunked body (RFC 9112
// §7.1.2). Called before the head is written, it also keeps the body chunked even when the
// handler finishes without flushing (the length would otherwise be declared instead). The
// handler should announce the names in a "Trailer" header. Trailers of a response that is not
// chunked (a declared Content-Length, HEAD, HTTP/1.0, 204/304) are not sent. Errors:
// ErrInvalidHeaderName, ErrInvalidHeaderValue, ErrReservedHeader for fields that must not be
// trailers (Content-Length, Transfer-Encoding, Host, Trailer, Connection), ErrFinished.
func (w *ResponseWriter) AddTrailer(name, value string) error {
	return w.note("AddTrailer", w.addTrailer(name, value))
}

func (w *ResponseWriter) addTrailer(name, value string) error {
	switch {
	case !w.started:
		return ErrNotStarted
	case w.finished:
		return ErrFinished
	case !validName(name):
		return ErrInvalidHeaderName
	case !validValue(value):
		return ErrInvalidHeaderValue
	}
	for _, bad := range [...]string{"content-length", "transfer-encoding", "host", "trailer", "connection"} {
		if equalFold([]byte(name), bad) {
			return ErrReservedHeader
		}
	}
	w.wantTrl = true
	w.trl = append(w.trl, name...)
	w.trl = append(w.trl, ": "...)
	w.trl = append(w.trl, value...)
	w.trl = append(w.trl, "\r\n"...)
	return nil
}

// expectTrailers keeps the body chunked because trailer values will be added at the end.
func (w *ResponseWriter) expectTrailers() { w.wantTrl = true }

// addLine appends a header line with only the name and value validated: none of Set's routing
// of managed fields (a 101 response carries its own Connection and Upgrade lines).
func (w *ResponseWriter) addLine(name, value string) error {
	if err := w.check(); err != nil {
		return err
	}
	if !validName(name) {
		return ErrInvalidHeaderName
	}
	if !validValue(value) {
		return ErrInvalidHeaderValue
	}
	switch {
	case equalFold([]byte(name), "date"):
		w.userDate = true
	case equalFold([]byte(name), "server"):
		w.userSrv = true
	}
	w.hdr = append(w.hdr, name...)
	w.hdr = append(w.hdr, ": "...)
	w.hdr = append(w.hdr, value...)
	w.hdr = append(w.hdr, "\r\n"...)
	return nil
}

// AppendContinue appends the interim "HTTP/1.1 100 Continue" response to dst.
func AppendContinue(dst []byte) []byte {
	return append(dst, "HTTP/1.1 100 Continue\r\n\r\n"...)
}

// AppendError appends a complete error response for err to dst: the status of err if it is (or
// wraps) a *ParseError, else 400; a Date header if date is non-nil; a short text/plain body;
// Content-Length; and "Connection: close" — the caller closes the connection after writing it.
// No allocation when err is a *ParseError.
func AppendError(dst []byte, err error, date []byte) []byte {
	status, reason := StatusBadRequest, ""
	pe, ok := err.(*ParseError)
	if !ok {
		pe = asParseError(err)
	}
	if pe != nil {
		status, reason = pe.Status, pe.Reason
	}
	if status < 100 || status > 999 || bodyless(status) {
		status = StatusInternalServerError
	}
	text := StatusText(status)
	n := len(text) + 1
	if reason != "" {
		n += 2 + len(reason)
	}
	dst = appendStatusLine(dst, status)
	if date != nil {
		dst = append(dst, "Date: "...)
		dst = append(dst, date...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Content-Type: text/plain; charset=utf-8\r\n"...)
	dst = appendContentLength(dst, int64(n))
	dst = append(dst, "Connection: close\r\n\r\n"...)
	dst = append(dst, text...)
	if reason != "" {
		dst = append(dst, ": "...)
		dst = append(dst, reason...)
	}
	return append(dst, '\n')
}

// asParseError unwraps err to a *ParseError. Kept out of line: the errors.As target escapes,
// and AppendError must not allocate in the common unwrapped case.
func asParseError(err error) *ParseError {
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}
