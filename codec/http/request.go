package http

// span is a window [off, off+n) into a buffer; int32 keeps a field entry at 16 bytes.
type span struct{ off, n int32 }

func (s span) of(b []byte) []byte { return b[s.off : s.off+s.n : s.off+s.n] }

func mkspan(start, end int) span { return span{int32(start), int32(end - start)} }

// field is one parsed field line: name and value (OWS-trimmed) as spans into the input.
type field struct{ name, value span }

// rootPath is returned by Path for absolute-form targets with an empty path (RFC 9112 §3.2.2).
var rootPath = []byte("/")

// Request is a parsed request: a read-only view into the connection's input buffer (and, for a
// chunked body, into the parser's body buffer).
//
// Ownership: every []byte a Request returns — method, target, path, query, header names and
// values, body, trailers — aliases memory owned by the connection. It is valid only until the
// handler returns, i.e. until the next Parser.Parse or Parser.Reset on the same Parser; copy
// anything kept longer. The string helpers (MethodString, HeaderString, ...) copy and allocate.
//
// A Request is used only on the goroutine that owns its Parser (the connection's loop).
type Request struct {
	buf []byte // head input (request-line and header section), and body for Content-Length

	method, target, path, query, host span
	absForm                           bool // absolute-form target: Path "/" when empty
	major, minor                      uint8

	fields []field

	tbuf     []byte // base for trailer spans (the chunked body region of the input)
	trailers []field

	body          []byte
	contentLength int64
	chunked       bool
	keepAlive     bool
	expect100     bool
	streaming     bool // the body is not in Body: it comes through Parser.ParseBody
}

// Method returns the request method, e.g. "GET". Case-sensitive (RFC 9110 §9.1).
func (r *Request) Method() []byte { return r.method.of(r.buf) }

// MethodString returns Method as a string. It allocates unless the method is one of the common
// ones (GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, CONNECT, TRACE).
func (r *Request) MethodString() string {
	m := r.Method()
	for _, s := range commonMethods {
		if string(m) == s {
			return s
		}
	}
	return string(m)
}

var commonMethods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"}

// IsHead reports whether the method is HEAD (the response then carries no content).
func (r *Request) IsHead() bool { return string(r.Method()) == "HEAD" }

// Target returns the raw request-target exactly as received.
func (r *Request) Target() []byte { return r.target.of(r.buf) }

// Path returns the path of the target without the query: for origin-form the bytes before the
// first "?", for absolute-form the path after the authority ("/" if empty), "*" for
// asterisk-form and empty for authority-form (CONNECT). Still percent-encoded.
func (r *Request) Path() []byte {
	if r.path.n == 0 && r.absForm {
		return rootPath
	}
	return r.path.of(r.buf)
}

// Query returns the raw query after the first "?" (without the "?"), or nil.
func (r *Request) Query() []byte {
	if r.query.n == 0 {
		return nil
	}
	return r.query.of(r.buf)
}

// Proto returns the HTTP version numbers from the request-line (1.0 or 1.x). A 1.x request with
// x > 1 is handled as HTTP/1.1 (RFC 9110 §6.2) but Proto reports the numbers received.
func (r *Request) Proto() (major, minor int) { return int(r.major), int(r.minor) }

// Host returns the authority the request is for: the authority of an absolute-form target or
// the authority-form target of CONNECT (either overrides the Host header, RFC 9112 §3.3), else
// the Host header value; nil for an HTTP/1.0 request without any.
func (r *Request) Host() []byte {
	if r.host.n == 0 {
		return nil
	}
	return r.host.of(r.buf)
}

// NumHeaders returns the number of header field lines.
func (r *Request) NumHeaders() int { return len(r.fields) }

// HeaderAt returns the i-th header field line (0 <= i < NumHeaders) in received order; the
// value has leading and trailing whitespace removed. Out-of-range i returns nil, nil.
func (r *Request) HeaderAt(i int) (name, value []byte) {
	if i < 0 || i >= len(r.fields) {
		return nil, nil
	}
	f := r.fields[i]
	return f.name.of(r.buf), f.value.of(r.buf)
}

// Header returns the value of the first header field named name (ASCII case-insensitive) and
// whether it was present. No allocation. For fields that may repeat, iterate with HeaderAt.
func (r *Request) Header(name string) (value []byte, ok bool) {
	return lookup(r.buf, r.fields, name)
}

// HeaderString is Header returning a copied string ("" if absent). It allocates.
func (r *Request) HeaderString(name string) string {
	v, _ := r.Header(name)
	return string(v)
}

// NumTrailers returns the number of trailer field lines of a chunked body.
func (r *Request) NumTrailers() int { return len(r.trailers) }

// TrailerAt returns the i-th trailer field line; out-of-range i returns nil, nil. Trailer
// fields are never merged into the header fields (RFC 9110 §6.5.1).
func (r *Request) TrailerAt(i int) (name, value []byte) {
	if i < 0 || i >= len(r.trailers) {
		return nil, nil
	}
	f := r.trailers[i]
	return f.name.of(r.tbuf), f.value.of(r.tbuf)
}

// Trailer returns the first trailer field named name (ASCII case-insensitive).
func (r *Request) Trailer(name string) (value []byte, ok bool) {
	return lookup(r.tbuf, r.trailers, name)
}

// ContentLength returns the Content-Length of the request, the decoded length for a chunked
// body, and 0 when the request has no body.
func (r *Request) ContentLength() int64 { return r.contentLength }

// Chunked reports whether the body was sent with the chunked transfer coding.
func (r *Request) Chunked() bool { return r.chunked }

// Body returns the complete request body (decoded for chunked), or an empty slice.
func (r *Request) Body() []byte { return r.body }

// Streamed reports whether the body went to a BodyStreamer's writer as it arrived (Body is
// then empty).
func (r *Request) Streamed() bool { return r.streaming }

// KeepAlive reports whether the connection may carry another request after this one:
// HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive" and
// without "close". The connection layer must stop reading after a request where it is false.
func (r *Request) KeepAlive() bool { return r.keepAlive }

// Expect100 reports whether an HTTP/1.1 request carried "Expect: 100-continue" (the
// expectation is ignored for HTTP/1.0, RFC 9110 §10.1.1).
func (r *Request) Expect100() bool { return r.expect100 }

func lookup(buf []byte, fields []field, name string) ([]byte, bool) {
	for _, f := range fields {
		if equalFold(f.name.of(buf), name) {
			return f.value.of(buf), true
		}
	}
	return nil, false
}

// reset clears r for the next request, keeping the header slice's capacity.
func (r *Request) reset(fields []field) {
	*r = Request{fields: fields[:0]}
}
