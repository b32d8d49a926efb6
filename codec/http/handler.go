package http

import (
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/reactord/reactord/reactor"
)

// Handler is the native, zero-allocation request handler. Handle runs on the connection's
// loop goroutine, once per request, in request order.
//
// Rules, because Handle runs inside the event loop:
//   - r and every []byte it returns alias the connection's input buffer: they are valid only
//     until Handle returns. Copy what must outlive the call.
//   - w appends straight into the output of the connection (through a per-loop scratch
//     buffer); it too is valid only during the call. Finish is called for the handler when it
//     returns, so a handler that sets nothing answers "200 OK" with an empty body.
//   - Handle must not block: a blocked handler stalls every connection of its loop. Work that
//     blocks (disk, database, other servers) belongs behind the net/http adapter (Adapt), whose
//     handlers run on a worker pool.
//
// A panic in Handle is recovered: the response becomes 500 (if nothing of it was sent yet) and
// the connection is closed; the panic is logged through WithLogger's logger.
type Handler interface {
	Handle(w *ResponseWriter, r *Request)
}

// BodyStreamer is implemented by a native Handler that consumes large request bodies as they
// arrive, instead of having the codec buffer each body whole (within Limits.MaxBodyBytes)
// before Handle runs.
//
// StreamBody is called on the loop goroutine when the head of a request whose body is chunked
// or longer than 64 KiB is complete; r is valid during the call. It returns the writer that
// receives the body, piece by piece as it is read (each p valid during its Write only), or nil
// to have this body buffered as usual. Writes run on the loop and must not block; an error
// stops the body, and the request is answered with that error's status if it is a
// *ParseError (else 400) and the connection closed. Once the body is complete, Handle runs
// for the request as for any other, with an empty r.Body(), r.Streamed() true, and the
// trailers of a chunked body — unless the writer is a BodyReceiver, which handles the request
// as soon as its head is complete (see BodyReceiver).
//
// Streamed bodies are bounded by Limits.MaxBodyBytes only when it is set (a Content-Length
// above it gets 413 before StreamBody; a chunked body that grows past it gets 413 then);
// bodies StreamBody declines are bounded by MaxBodyBytes or its default. The read timeout
// (WithReadTimeout, or the idle timeout when it is off) applies while the body arrives.
type BodyStreamer interface {
	StreamBody(r *Request) io.Writer
}

// BodyReceiver is implemented by a writer, returned by BodyStreamer.StreamBody, that answers
// its request while the body is still arriving — a reverse proxy forwarding an upload as it
// comes, instead of after it was read whole. It reuses the BodyStreamer mechanism; only the
// order differs:
//
//   - Handle runs right after StreamBody, on the loop goroutine, in place of the Server's
//     Handler, with the head of the request (r.Streamed() true, r.Body() empty). It typically
//     defers its response (ResponseWriter.Defer), since the body has not arrived yet; it may
//     also answer at once.
//   - Write then receives the body piece by piece as it is read, after Handle returned, on the
//     loop goroutine: p is decoded (no chunked framing), valid during the call only (it aliases
//     the connection's input buffer), and must not be retained. Write must not block; it
//     returns len(p), nil to go on, or an error to stop the body (then EndBody comes with that
//     error). A Deferred's PauseBody stops the body between two Writes — the receiver cannot
//     keep up (a proxy's upstream is slow) — until ResumeBody: the connection stops reading, so
//     the client is paced by TCP, and memory stays bounded whatever the body's size.
//   - EndBody is called exactly once, on the loop goroutine: with nil once the body is complete
//     (the trailers of a chunked body readable on r during the call); with the *ParseError of a
//     malformed or too large body (the connection reads no more and closes once the response
//     is done: the receiver should answer with the error's Status if nothing was sent, or
//     abort); or with ErrClientGone when the connection closed first (the deferred response's
//     OnDeferredEnd follows).
//
// r, the same *Request for Handle, Write's call and EndBody, stays valid from StreamBody until
// EndBody returns; its views must not be kept longer. If the response completes before the
// body does, the rest of the body is still read and passed to Write (a receiver that no longer
// needs it drops it), so the connection can carry the next request; a body paused with
// PauseBody resumes when its response completes.
type BodyReceiver interface {
	Handler
	io.Writer
	EndBody(r *Request, err error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(w *ResponseWriter, r *Request)

// Handle calls f(w, r).
func (f HandlerFunc) Handle(w *ResponseWriter, r *Request) { f(w, r) }

// RequestInfo describes one finished exchange for an Observer (access logs, metrics). It is
// owned by the loop and reused: it and its []byte fields are valid only during the Observer
// call, on the loop goroutine. Copy what must outlive the call.
type RequestInfo struct {
	// Method and Path are views of the request's method and path (without query); nil when
	// the request was rejected before its request-line was parsed (a 400 or a 408). Read-only.
	Method, Path []byte
	// ProtoMinor is the minor HTTP version (0 or 1) of the request.
	ProtoMinor int
	// Status is the status code sent (for a streamed adapter response, the one in its head).
	Status int
	// BytesIn counts the request's bytes on the wire (head and body, framing included).
	BytesIn int64
	// BytesOut counts the response's bytes handed to the connection (head, body and any file
	// queued with SendFile).
	BytesOut int64
	// Start is the loop clock (Loop.Now, cached once per loop iteration) when the request was
	// first seen: when its first bytes were read, or the iteration it was dispatched in.
	Start time.Time
	// Duration is the loop clock at completion minus Start. Its resolution is one loop
	// iteration: a request read and answered in the same iteration reports 0. No clock is read
	// per request.
	Duration time.Duration
	// Err is nil for a request the handler answered; a *ParseError (ErrRequestTimeout for a
	// 408) for a request the codec rejected; ErrHandlerPanic when the handler panicked.
	Err error
	// KeepAlive reports whether the connection stays open after this response.
	KeepAlive bool
	// Tag is what the producer of a deferred response attached with Deferred.SetTag (the
	// reverse proxy: the exchange with its upstream); nil otherwise.
	Tag any

	conn *reactor.Conn
}

// RemoteAddr returns the client's address. It is read from the kernel once per connection and
// then cached (the first call on a connection allocates). Only during the Observer call.
func (i *RequestInfo) RemoteAddr() net.Addr {
	if i.conn == nil {
		return nil
	}
	return i.conn.RemoteAddr()
}

// RemoteAddrPort returns the client's IP address (IPv4 in its 4-byte form) and port without
// allocating (reactor.Conn.RemoteAddrPort); the zero AddrPort for a Unix-socket client. Only
// during the Observer call. Prefer it to RemoteAddr on a hot path: RemoteAddr builds a
// net.Addr and keeps it with the connection for as long as the connection lives.
func (i *RequestInfo) RemoteAddrPort() netip.AddrPort {
	if i.conn == nil {
		return netip.AddrPort{}
	}
	return i.conn.RemoteAddrPort()
}

// Observer is called on the loop goroutine after every response has been handed to the
// connection, including codec-generated error responses. It must be cheap and must not block;
// info is valid only during the call.
type Observer func(info *RequestInfo)
