package http

// BodyKind says how a response's body is framed (RFC 9112 §6.3), as decided by the response
// parser from the status, the request method and the framing fields.
type BodyKind uint8

const (
	// BodyNone: no body — a response to HEAD, a 1xx, 204 or 304, whatever its fields say.
	BodyNone BodyKind = iota
	// BodyLength: Content-Length bytes (possibly zero).
	BodyLength
	// BodyChunked: the chunked transfer coding, possibly followed by trailer fields.
	BodyChunked
	// BodyUntilClose: no framing; the body ends when the server closes the connection, which
	// therefore cannot carry another response.
	BodyUntilClose
	// BodyTunnel: 101 Switching Protocols, or a 2xx answer to CONNECT; the bytes after the head
	// belong to another protocol.
	BodyTunnel
)

// String returns the kind's name.
func (k BodyKind) String() string {
	switch k {
	case BodyNone:
		return "none"
	case BodyLength:
		return "length"
	case BodyChunked:
		return "chunked"
	case BodyUntilClose:
		return "until-close"
	case BodyTunnel:
		return "tunnel"
	}
	return "invalid"
}

// Response is the head of a parsed response: a read-only view into the input given to
// ResponseParser.Parse.
//
// Ownership: every []byte it returns aliases that input and is valid only until the next call
// to Parse, Reset or Release on the same parser; copy what must outlive it. A Response belongs
// to the goroutine that owns its parser.
type Response struct {
	buf []byte

	status        int
	reason        span
	major, minor  uint8
	fields        []field
	contentLength int64
	kind          BodyKind
	keepAlive     bool
}

// Status returns the status code (100-599).
func (r *Response) Status() int { return r.status }

// Reason returns the reason phrase (possibly empty). RFC 9112 §4: a client ignores it.
func (r *Response) Reason() []byte { return r.reason.of(r.buf) }

// Proto returns the HTTP version of the status-line (1.0 or 1.x).
func (r *Response) Proto() (major, minor int) { return int(r.major), int(r.minor) }

// NumHeaders returns the number of header field lines.
func (r *Response) NumHeaders() int { return len(r.fields) }

// HeaderAt returns the i-th header field line in received order, the value without leading
// and trailing whitespace. Out-of-range i returns nil, nil.
func (r *Response) HeaderAt(i int) (name, value []byte) {
	if i < 0 || i >= len(r.fields) {
		return nil, nil
	}
	f := r.fields[i]
	return f.name.of(r.buf), f.value.of(r.buf)
}

// Header returns the value of the first header field named name (ASCII case-insensitive) and
// whether it was present. No allocation.
func (r *Response) Header(name string) (value []byte, ok bool) {
	return lookup(r.buf, r.fields, name)
}

// ContentLength returns the Content-Length field's value, or -1 when there is none (chunked,
// until-close, or a bodiless response without one). For a response to HEAD it is the length
// the body would have had; no body follows.
func (r *Response) ContentLength() int64 { return r.contentLength }

// BodyKind returns how the body is framed.
func (r *Response) BodyKind() BodyKind { return r.kind }

// Interim reports whether this is a 1xx response other than 101: another head follows for the
// same request.
func (r *Response) Interim() bool { return r.status < 200 && r.status != 101 }

// KeepAlive reports whether the connection may carry another request once this response is
// complete: HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive";
// never after a body delimited by the close of the connection or a tunnel.
func (r *Response) KeepAlive() bool { return r.keepAlive }

// Head returns the raw bytes of the head, status-line to the empty line included.
func (r *Response) Head() []byte { return r.buf }
