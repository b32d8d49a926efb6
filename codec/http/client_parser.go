package http

import (
	"bytes"
	"math"
)

// ResponseEvent is what one ResponseParser.Parse call produced.
type ResponseEvent uint8

const (
	// ResponseNeedMore: more input is needed (n may still be positive: framing consumed).
	ResponseNeedMore ResponseEvent = iota
	// ResponseInterim: the head of a 1xx response other than 101 (Response().Interim()). The
	// final response to the same request follows.
	ResponseInterim
	// ResponseHead: the head of the final response; Response() describes it.
	ResponseHead
	// ResponseBody: body bytes, decoded (chunk framing removed), in Body().
	ResponseBody
	// ResponseDone: the response is complete; for a chunked body, its trailers are available
	// through NumTrailers and TrailerAt. The next Parse starts the next response.
	ResponseDone
)

// String returns the event's name.
func (e ResponseEvent) String() string {
	switch e {
	case ResponseNeedMore:
		return "need-more"
	case ResponseInterim:
		return "interim"
	case ResponseHead:
		return "head"
	case ResponseBody:
		return "body"
	case ResponseDone:
		return "done"
	}
	return "invalid"
}

type respState uint8

const (
	rsHead      respState = iota // status-line and header section
	rsLength                     // Content-Length body
	rsChunked                    // chunked body
	rsClose                      // body delimited by the end of the connection
	rsEnd                        // body complete: the next Parse reports ResponseDone
	rsTunnelEnd                  // tunnel head returned: the next Parse reports ResponseDone
	rsTunnel                     // after a tunnel's ResponseDone: ErrTunnel
	rsFailed                     // a ParseError was returned; sticky until Reset
)

// methodKind is what the parser needs to know of the request a response answers.
type methodKind uint8

const (
	methodOther   methodKind = iota
	methodHead               // the response has no body
	methodConnect            // a 2xx response starts a tunnel
)

// ResponseParser is a strict, incremental, zero-allocation HTTP/1.1 response parser (RFC
// 9112, RFC 9110) for one client connection. It streams: the head is returned once complete,
// then the body in pieces as they arrive (decoded, for chunked), so a caller forwarding a
// large body holds no more of it than one read. It is not safe for concurrent use; it belongs
// to the connection's loop goroutine.
//
// Input contract (the reactor's sticky-packet rule): each Parse gets all unconsumed input —
// what the previous call was given minus the n it reported, unchanged, with new bytes
// appended. Whatever the event, the caller drops in[:n]. The buffer may move between calls;
// the parser keeps offsets, never pointers, so input arriving one byte at a time is parsed in
// linear time.
//
// Each response yields, from successive calls: zero or more ResponseInterim heads (1xx), one
// ResponseHead, zero or more ResponseBody pieces, and one ResponseDone. The caller loops until
// ResponseNeedMore or an error. When the connection ends, EOF says whether that completed a
// body delimited by the close. Responses to pipelined requests come out in order; tell the
// parser each request's method with SetRequestMethod before its response starts.
//
// Strictness is the request parser's (see the package documentation): bare LF refused unless
// Limits.AllowBareLF, obs-fold and whitespace before a colon refused, Content-Length
// duplicated (even with equal values) or combined with Transfer-Encoding refused, transfer
// codings other than a final chunked refused, Transfer-Encoding in HTTP/1.0 refused, HTTP
// major versions other than 1 refused, status codes outside 100-599 refused. No empty lines are
// skipped before a status-line. A status-line without the SP and reason phrase
// ("HTTP/1.1 200") is accepted, as deployed servers send it. Limits apply as for requests:
// MaxRequestLineBytes bounds the status-line, MaxHeaderBytes and MaxHeaderCount the header
// and trailer sections, MaxChunkLineBytes a chunk-size line; MaxBodyBytes bounds the body only
// when set, since a streamed body is never buffered.
type ResponseParser struct {
	lim      Limits
	bodyMax  int64 // MaxBodyBytes as given: 0 means no limit
	state    respState
	err      error
	fresh    bool // at a response boundary: reset per-response state before parsing
	interim  bool // an interim head was returned: the next head starts afresh
	awaiting bool // an interim head was returned: the final head is awaited
	next     methodKind
	method   methodKind
	scan     int  // status-line LF search resumes here
	statusOK bool // status-line parsed

	fl        fieldLines
	clCount   int
	te        codings
	connClose bool
	connKeep  bool

	resp   Response
	fields []field
	remain int64 // Content-Length bytes still to come, or of the current chunk
	total  int64 // body bytes so far
	body   []byte

	chunk    chunkState
	cscan    int        // chunk-size line LF search resumes here
	tl       fieldLines // trailer section, offsets relative to its start
	trailers []field
	tbuf     []byte // input the trailer spans refer to, at ResponseDone

	work int // bytes examined by line searches; read by the linearity test
}

// NewResponseParser returns a parser enforcing l (zero fields take DefaultLimits' values,
// except MaxBodyBytes: zero means no limit on the body). It returns ErrInvalidLimits if l fails
// Limits.Validate.
func NewResponseParser(l Limits) (*ResponseParser, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	p := &ResponseParser{}
	p.init(l)
	return p, nil
}

// init prepares a parser for limits that passed Validate.
func (p *ResponseParser) init(l Limits) {
	p.bodyMax = l.MaxBodyBytes
	p.lim = l.withDefaults()
	p.Reset()
}

// expect is SetRequestMethod for a method already classified.
func (p *ResponseParser) expect(m methodKind) { p.next = m }

// Reset discards any partially parsed response so the parser can serve a new connection.
// Buffers are kept; the method set by SetRequestMethod is forgotten.
func (p *ResponseParser) Reset() {
	p.state, p.err, p.next = rsHead, nil, methodOther
	p.startResponse()
	p.fresh = true // the first Parse takes the method set by SetRequestMethod
}

// Release resets the parser and drops its buffers, so an idle connection holds no parse memory.
func (p *ResponseParser) Release() {
	p.Reset()
	p.fields, p.trailers = nil, nil
	p.resp = Response{}
}

// Limits returns the effective limits (defaults filled in; MaxBodyBytes as given).
func (p *ResponseParser) Limits() Limits {
	l := p.lim
	l.MaxBodyBytes = p.bodyMax
	return l
}

// SetRequestMethod tells the parser the method of the request the next response answers:
// "HEAD" means the response has no body, "CONNECT" that a 2xx response turns the connection
// into a tunnel; any other method frames the response by its fields. It applies to the next
// response only (the parser assumes GET after it) and must be called at a response boundary:
// before the first Parse, or after ResponseDone.
func (p *ResponseParser) SetRequestMethod(method []byte) {
	switch {
	case string(method) == "HEAD":
		p.next = methodHead
	case string(method) == "CONNECT":
		p.next = methodConnect
	default:
		p.next = methodOther
	}
}

// Phase reports how far the current response has been received: PhaseIdle before its first
// byte, PhaseHead inside the head (interim heads included), PhaseBody inside the body,
// PhaseFailed after an error.
func (p *ResponseParser) Phase() Phase {
	switch p.state {
	case rsFailed:
		return PhaseFailed
	case rsHead:
		if p.fresh || !p.awaiting && p.scan == 0 {
			return PhaseIdle
		}
		return PhaseHead
	case rsLength, rsChunked, rsClose, rsEnd:
		return PhaseBody
	}
	return PhaseIdle
}

// Response returns the head of the current response. It is valid after ResponseInterim or
// ResponseHead, until the next Parse, Reset or Release.
func (p *ResponseParser) Response() *Response { return &p.resp }

// Body returns the body bytes of the last ResponseBody event: a view into the input given to
// that Parse, valid until the next one.
func (p *ResponseParser) Body() []byte { return p.body }

// BodyRead returns the number of body bytes returned so far for the current response.
func (p *ResponseParser) BodyRead() int64 { return p.total }

// NumTrailers returns the number of trailer fields of a chunked response, after ResponseDone.
func (p *ResponseParser) NumTrailers() int { return len(p.trailers) }

// TrailerAt returns the i-th trailer field after ResponseDone, as views into the input given to
// that Parse (valid until the next one). Out-of-range i returns nil, nil.
func (p *ResponseParser) TrailerAt(i int) (name, value []byte) {
	if i < 0 || i >= len(p.trailers) {
		return nil, nil
	}
	f := p.trailers[i]
	return f.name.of(p.tbuf), f.value.of(p.tbuf)
}

// Parse parses from in (see the input contract on ResponseParser) and returns the number of
// bytes to drop and what happened. A malformed response returns a *ParseError; every later
// call returns the same error until Reset, and the connection must not be reused. After a
// response whose KeepAlive is false, the connection must not be reused either.
func (p *ResponseParser) Parse(in []byte) (n int, ev ResponseEvent, err error) {
	switch p.state {
	case rsFailed:
		return 0, ResponseNeedMore, p.err
	case rsTunnel:
		return 0, ResponseNeedMore, ErrTunnel
	case rsEnd:
		p.state, p.fresh = rsHead, true
		return 0, ResponseDone, nil
	case rsTunnelEnd:
		p.state = rsTunnel
		return 0, ResponseDone, nil
	}
	p.body = nil
	if p.fresh {
		p.startResponse()
	}
	switch p.state {
	case rsHead:
		if p.interim {
			p.startHead()
		}
		if p.scan > len(in) || p.fl.scan > len(in) {
			return 0, ResponseNeedMore, ErrInputShrank
		}
		done, perr := p.parseHead(in)
		if perr != nil {
			return p.fail(perr)
		}
		if !done {
			return 0, ResponseNeedMore, nil
		}
		n := p.fl.line
		p.resp.buf = in[:n:n]
		p.resp.fields = p.fields
		if p.resp.Interim() {
			p.interim, p.awaiting = true, true
			return n, ResponseInterim, nil
		}
		return n, ResponseHead, nil
	case rsLength:
		if len(in) == 0 {
			return 0, ResponseNeedMore, nil
		}
		k := int(min(p.remain, int64(len(in))))
		p.body = in[:k:k]
		p.remain -= int64(k)
		p.total += int64(k)
		if p.remain == 0 {
			p.state = rsEnd
		}
		return k, ResponseBody, nil
	case rsClose:
		if len(in) == 0 {
			return 0, ResponseNeedMore, nil
		}
		k := len(in)
		if p.bodyMax > 0 && int64(k) > p.bodyMax-p.total {
			// Hand out what fits first, so the bytes delivered before the error do not depend
			// on how the input was split.
			if p.total == p.bodyMax {
				return p.fail(ErrResponseTooLarge)
			}
			k = int(p.bodyMax - p.total)
		}
		p.body = in[:k:k]
		p.total += int64(k)
		return k, ResponseBody, nil
	}
	// rsChunked
	if p.cscan > len(in) || p.tl.scan > len(in) {
		return 0, ResponseNeedMore, ErrInputShrank
	}
	n, ev, perr := p.chunkStep(in)
	if perr != nil {
		return p.fail(perr)
	}
	return n, ev, nil
}

// EOF reports what the end of the connection means for the response being received. It
// returns ResponseDone when it completes a body delimited by the close (or follows a tunnel),
// ResponseNeedMore when no byte of a response had arrived (the connection closed between
// responses: whether one was owed is the caller's business), and ErrTruncatedResponse when it
// cuts a head or a framed body short. After it the parser needs Reset.
func (p *ResponseParser) EOF() (ResponseEvent, error) {
	switch p.state {
	case rsFailed:
		return ResponseNeedMore, p.err
	case rsClose:
		p.state, p.fresh = rsHead, true
		return ResponseDone, nil
	case rsEnd:
		p.state, p.fresh = rsHead, true
		return ResponseDone, nil
	case rsTunnel, rsTunnelEnd:
		p.state = rsTunnel
		return ResponseDone, nil
	case rsHead:
		if p.Phase() == PhaseIdle {
			return ResponseNeedMore, nil
		}
	}
	p.state, p.err = rsFailed, ErrTruncatedResponse
	return ResponseNeedMore, ErrTruncatedResponse
}

func (p *ResponseParser) fail(err *ParseError) (int, ResponseEvent, error) {
	p.state, p.err = rsFailed, err
	p.body = nil
	return 0, ResponseNeedMore, err
}

// startResponse clears per-response state before the next response's first byte.
func (p *ResponseParser) startResponse() {
	p.fresh, p.awaiting = false, false
	p.method, p.next = p.next, methodOther
	p.remain, p.total, p.body = 0, 0, nil
	p.chunk, p.cscan = chunkSizeLine, 0
	p.trailers, p.tbuf = p.trailers[:0], nil
	p.startHead()
}

// startHead clears the head state before a (final or interim) head's first byte.
func (p *ResponseParser) startHead() {
	p.interim = false
	p.scan, p.statusOK = 0, false
	p.fl.reset(0)
	p.clCount, p.te = 0, codings{}
	p.connClose, p.connKeep = false, false
	p.fields = p.fields[:0]
	p.resp = Response{fields: p.fields, contentLength: -1}
}

// parseHead advances through the status-line and header section. It returns true once the
// empty line ending the section has been parsed and the framing decided.
func (p *ResponseParser) parseHead(in []byte) (bool, *ParseError) {
	if !p.statusOK {
		i := bytes.IndexByte(in[p.scan:], '\n')
		if i < 0 {
			// Validate the new bytes now, so garbage is refused before the line completes. A
			// trailing CR waits: only the next byte tells CRLF from a bare CR.
			stop := len(in)
			if stop > 0 && in[stop-1] == '\r' {
				stop--
			}
			if err := p.checkStatusLine(in, stop); err != nil {
				return false, err
			}
			p.work += stop - p.scan
			p.scan = stop
			return false, nil
		}
		lf := p.scan + i
		end := lf
		if end > 0 && in[end-1] == '\r' {
			end--
		}
		p.work += lf + 1 - p.scan
		// The same byte-ordered checks as for a partial line, so the verdict does not depend on
		// how the input was split; they validate every byte of the line.
		if err := p.checkStatusLine(in, end); err != nil {
			return false, err
		}
		if end == lf && !p.lim.AllowBareLF {
			return false, ErrBareLF
		}
		if end < len("HTTP/1.1 200") {
			return false, ErrStatusLine
		}
		r := &p.resp
		r.major, r.minor = in[5]-'0', in[7]-'0'
		r.status = int(in[9]-'0')*100 + int(in[10]-'0')*10 + int(in[11]-'0')
		if end > 13 {
			r.reason = mkspan(13, end)
		}
		p.statusOK = true
		p.scan = lf + 1
		p.fl.reset(lf + 1)
	}
	for {
		f, step, err := p.fl.next(in, &p.lim)
		switch {
		case err != nil:
			return false, err
		case step == stepMore:
			return false, nil
		case step == stepEnd:
			return true, p.finishHead()
		}
		p.fields = append(p.fields, f)
		if err := p.noteField(in, f); err != nil {
			return false, err
		}
	}
}

// statusPattern is the fixed-width start of a status-line: "HTTP/" DIGIT "." DIGIT SP 3DIGIT,
// 'D' standing for a digit.
const statusPattern = "HTTP/D.D DDD"

// checkStatusLine validates the status-line bytes in[p.scan:stop] not examined before, in
// order: the length limit at the exact byte that exceeds it, the fixed-width prefix position by
// position (a major version other than 1 once the version is complete, a status code class
// outside 1-5), the SP before the reason phrase, and the reason phrase's characters.
func (p *ResponseParser) checkStatusLine(in []byte, stop int) *ParseError {
	for k := p.scan; k < stop; k++ {
		if k >= p.lim.MaxRequestLineBytes {
			return ErrStatusLineTooLong
		}
		c := in[k]
		switch {
		case k < len(statusPattern):
			v := statusPattern[k]
			switch {
			case v == 'D' && (c < '0' || c > '9'):
				if k >= 9 {
					return ErrStatusCode
				}
				return ErrStatusLine
			case v != 'D' && c != v:
				return ErrStatusLine
			case k == 7 && in[5] != '1':
				// RFC 9110 §6.2: only major version 1 can be spoken on an HTTP/1.1 connection.
				return ErrResponseVersion
			case k == 9 && (c < '1' || c > '5'):
				// RFC 9110 §15: the first digit is the class, and there are five.
				return ErrStatusCode
			}
		case k == len(statusPattern):
			if c != ' ' {
				if c >= '0' && c <= '9' {
					return ErrStatusCode
				}
				return ErrStatusLine
			}
		case !fieldValueTable[c]:
			// reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ). A CR here is followed by
			// another byte that is not LF (else the line would have ended before it).
			if c == '\r' {
				return ErrBareCR
			}
			return ErrStatusLine
		}
	}
	return nil
}

// noteField records the fields that decide framing and persistence (RFC 9112 §6, §9).
func (p *ResponseParser) noteField(in []byte, f field) *ParseError {
	name, value := f.name.of(in), f.value.of(in)
	switch len(name) {
	case 10:
		if equalFold(name, "connection") {
			c, k := connectionOptions(value)
			p.connClose = p.connClose || c
			p.connKeep = p.connKeep || k
		}
	case 14:
		if equalFold(name, "content-length") {
			p.clCount++
			if p.clCount > 1 || bytes.IndexByte(value, ',') >= 0 {
				return ErrDuplicateContentLength
			}
			n, ok := parseContentLength(value)
			if !ok {
				return ErrContentLength
			}
			p.resp.contentLength = n
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			p.te.note(value)
		}
	}
	return nil
}

// finishHead applies the whole-section rules and decides the framing (RFC 9112 §6.3).
func (p *ResponseParser) finishHead() *ParseError {
	r := &p.resp
	http11 := r.minor >= 1
	if p.te.seen {
		switch {
		case !http11:
			return ErrResponseTEHTTP10
		case p.clCount > 0:
			// RFC 9112 §6.3 lets Transfer-Encoding override Content-Length but calls the pair
			// a likely smuggling or splitting attempt that ought to be handled as an error.
			return ErrContentLengthWithTE
		case p.te.bad || p.te.elems == 0:
			return ErrTransferEncoding
		case p.te.chunked && p.te.notLast:
			return ErrChunkedNotFinal
		case p.te.unknown:
			// A response whose final coding is not chunked would be delimited by the close
			// (RFC 9112 §6.3); we cannot decode such codings and refuse them, as nginx does.
			return ErrUnknownTransferCoding
		}
	}
	if http11 {
		r.keepAlive = !p.connClose
	} else {
		r.keepAlive = p.connKeep && !p.connClose
	}
	switch {
	case r.status == 101:
		r.kind, r.keepAlive = BodyTunnel, false
		p.state = rsTunnelEnd
		return nil
	case r.status < 200:
		r.kind = BodyNone
		return nil // interim: the next head follows
	case p.method == methodConnect && r.status < 300:
		r.kind, r.keepAlive = BodyTunnel, false
		p.state = rsTunnelEnd
		return nil
	case p.method == methodHead || r.status == 204 || r.status == 304:
		// RFC 9112 §6.3 item 1: terminated by the empty line, whatever the fields say.
		r.kind = BodyNone
		p.state = rsEnd
		return nil
	case p.te.seen:
		r.kind = BodyChunked
		p.state = rsChunked
		return nil
	case p.clCount > 0:
		if p.bodyMax > 0 && r.contentLength > p.bodyMax {
			return ErrResponseTooLarge
		}
		r.kind = BodyLength
		p.remain = r.contentLength
		p.state = rsLength
		if p.remain == 0 {
			p.state = rsEnd
		}
		return nil
	}
	r.kind, r.keepAlive = BodyUntilClose, false
	p.state = rsClose
	return nil
}

// chunkStep decodes the chunked body from in, whose first byte follows what earlier calls
// consumed. It returns one chunk's data (or part of it) per call, in place: chunk-size lines
// and the CRLF after the data are consumed as framing. The trailer section is kept unconsumed
// until complete, so its fields can be returned with ResponseDone.
func (p *ResponseParser) chunkStep(in []byte) (int, ResponseEvent, *ParseError) {
	off := 0
	for {
		switch p.chunk {
		case chunkSizeLine:
			// Fail fast on a line that cannot become a chunk-size, before any other check, so
			// the verdict does not depend on how the input was split.
			if off < len(in) && !isHex(in[off]) {
				return 0, 0, ErrChunkSize
			}
			if p.cscan < off {
				p.cscan = off
			}
			i := bytes.IndexByte(in[p.cscan:], '\n')
			if i < 0 {
				seen := len(in)
				if seen > off && in[seen-1] == '\r' {
					seen-- // may start the CRLF: not line content (yet)
				}
				p.work += len(in) - p.cscan
				if seen-off > p.lim.MaxChunkLineBytes {
					return 0, 0, ErrChunkLineTooLong
				}
				p.cscan = len(in) - off // re-based: in[:off] is consumed
				return off, ResponseNeedMore, nil
			}
			lf := p.cscan + i
			p.work += i + 1
			end := lf
			crlf := end > off && in[end-1] == '\r'
			if crlf {
				end--
			}
			if end-off > p.lim.MaxChunkLineBytes {
				return 0, 0, ErrChunkLineTooLong
			}
			if !crlf && !p.lim.AllowBareLF {
				return 0, 0, ErrBareLF
			}
			size, perr := parseChunkLine(in[off:end])
			if perr != nil {
				return 0, 0, perr
			}
			off, p.cscan = lf+1, 0
			if size == 0 {
				p.chunk = chunkTrailer
				p.tl.reset(0)
				p.trailers = p.trailers[:0]
				continue
			}
			if p.bodyMax > 0 && size > p.bodyMax-p.total {
				return 0, 0, ErrResponseTooLarge
			}
			if size > math.MaxInt64-p.total {
				return 0, 0, ErrChunkSize
			}
			p.remain, p.chunk = size, chunkData
		case chunkData:
			avail := len(in) - off
			if avail == 0 {
				return off, ResponseNeedMore, nil
			}
			k := int(min(p.remain, int64(avail)))
			p.body = in[off : off+k : off+k]
			off += k
			p.remain -= int64(k)
			p.total += int64(k)
			if p.remain == 0 {
				p.chunk = chunkDataEnd
				// Take the CRLF along when it is here; it is checked on the next call otherwise.
				if off+1 < len(in) && in[off] == '\r' && in[off+1] == '\n' {
					off += 2
					p.chunk = chunkSizeLine
				}
			}
			return off, ResponseBody, nil
		case chunkDataEnd:
			// Exactly CRLF must follow the data; anything else means the sender wrote more (or
			// less) than it declared.
			if off >= len(in) {
				return off, ResponseNeedMore, nil
			}
			switch in[off] {
			case '\r':
				if off+1 >= len(in) {
					return off, ResponseNeedMore, nil
				}
				if in[off+1] != '\n' {
					return 0, 0, ErrChunkData
				}
				off += 2
			case '\n':
				if !p.lim.AllowBareLF {
					return 0, 0, ErrChunkData
				}
				off++
			default:
				return 0, 0, ErrChunkData
			}
			p.chunk = chunkSizeLine
		case chunkTrailer:
			// The trailer section is scanned relative to its own start (in[off:]), which
			// stays put until the section is complete and consumed with ResponseDone.
			sec := in[off:]
			for {
				f, step, perr := p.tl.next(sec, &p.lim)
				if perr != nil {
					return 0, 0, perr
				}
				if step == stepMore {
					return off, ResponseNeedMore, nil
				}
				if step == stepEnd {
					break
				}
				p.trailers = append(p.trailers, f)
			}
			end := off + p.tl.line
			p.tbuf = in[off:end:end]
			p.chunk = chunkDone
			p.state, p.fresh = rsHead, true
			return end, ResponseDone, nil
		default:
			return 0, 0, ErrChunkSize // unreachable: chunkDone ends the response
		}
	}
}
