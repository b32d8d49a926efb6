package http

import (
	"bytes"
	"math"
)

type parserState uint8

const (
	stateHead    parserState = iota // request-line and header section
	stateBody                       // Content-Length body
	stateChunked                    // chunked body
	stateFailed                     // a ParseError was returned; sticky until Reset
)

// Phase tells the connection layer which timeout applies to the bytes buffered so far.
type Phase uint8

const (
	// PhaseIdle: no byte of the next request has been seen (idle timeout applies).
	PhaseIdle Phase = iota
	// PhaseHead: part of a request head has arrived (header timeout applies; 408 on expiry).
	PhaseHead
	// PhaseBody: the head is complete and the body is being received (read timeout applies).
	PhaseBody
	// PhaseFailed: Parse returned a ParseError; the connection must be closed.
	PhaseFailed
)

// bodyBufKeep is the body buffer capacity kept across requests; a larger buffer (left by a big
// chunked upload) is dropped when the next request starts so it does not pin memory.
const bodyBufKeep = 64 << 10

// Parser is a strict, incremental HTTP/1.1 request parser (RFC 9112, RFC 9110) for one
// connection. It is not safe for concurrent use: it belongs to the connection's loop goroutine.
//
// Input contract (the reactor's sticky-packet rule): Parse is called with all unconsumed input,
// i.e. the bytes passed to the previous call minus what it reported consumed, unchanged, with any
// new bytes appended. The buffer may move between calls; the parser keeps offsets, never
// pointers, and resumes scanning where it stopped, so input arriving one byte at a time is
// parsed in linear time.
type Parser struct {
	lim   Limits
	state parserState
	err   error

	// Head progress, as offsets into the current input.
	line    int  // start of the next unparsed line
	scan    int  // the LF search resumes here (line <= scan)
	head    int  // start of the header section
	reqLine bool // request-line parsed
	fresh   bool // the previous Parse returned a request; reset before the next

	// Facts gathered from the header fields of the current request.
	hostCount     int
	clCount       int
	te            codings // the Transfer-Encoding lines (fieldlines.go, shared with the response parser)
	connClose     bool
	connKeepAlive bool
	expect100     bool
	expectOther   bool
	absHost       span // authority of an absolute- or authority-form target
	rlSP1, rlSP2  int  // SPs of a partial request-line (0 = not seen yet)

	bodyStart    int
	continueSent bool

	// Streaming (set by the connection layer, never by NewParser): a body larger than
	// streamMin bytes, or chunked, is not buffered: Parse returns the request once its head is
	// complete (Request.streaming) and ParseBody hands the body over piece by piece. streamCap
	// bounds such a body (0: no bound) instead of MaxBodyBytes.
	streamMin int64
	streamCap int64
	streaming bool   // the current request's body is being streamed
	remain    int64  // Content-Length bytes of a streamed body not yet returned
	headCopy  []byte // the head of a streamed request, kept (keepHead) once its input is gone

	req    Request
	fields []field
	body   []byte
	chunk  ChunkedDecoder

	work int // bytes examined by line searches; read by the linearity test
}

// NewParser returns a Parser enforcing l (zero fields take the defaults of DefaultLimits). It
// returns ErrInvalidLimits if l fails Limits.Validate.
func NewParser(l Limits) (*Parser, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	p := &Parser{lim: l.withDefaults()}
	p.chunk.init(p.lim)
	return p, nil
}

// Reset discards any partially parsed request so the Parser can serve a new connection or
// unrelated input. Buffers are kept for reuse.
func (p *Parser) Reset() {
	p.state, p.err = stateHead, nil
	p.resetRequest()
}

// Release resets the Parser and drops its buffers, so an idle connection holds no parse memory.
// The next request reallocates them.
func (p *Parser) Release() {
	p.Reset()
	p.fields, p.body = nil, nil
	p.chunk.trailers = nil
	p.req = Request{}
}

// Limits returns the effective limits (defaults filled in).
func (p *Parser) Limits() Limits { return p.lim }

// Phase reports how far the current request has been received.
func (p *Parser) Phase() Phase {
	switch p.state {
	case stateFailed:
		return PhaseFailed
	case stateBody, stateChunked:
		return PhaseBody
	}
	if p.fresh || p.scan == 0 && p.line == 0 {
		return PhaseIdle
	}
	return PhaseHead
}

// ExpectContinue reports, at most once per request, that a request carrying
// "Expect: 100-continue" has a complete head and its body has not fully arrived. The connection
// layer then writes "100 Continue" (AppendContinue) so the client sends the body. If the body
// arrives together with the head, Parse returns the request directly and this stays false.
func (p *Parser) ExpectContinue() bool {
	if (p.state == stateBody || p.state == stateChunked) && p.req.expect100 && !p.continueSent {
		p.continueSent = true
		return true
	}
	return false
}

// Parse parses the next request from in (see the input contract on Parser).
//
//   - A complete request: returns it and n, the number of bytes it occupied (leading empty lines,
//     head and body). The caller handles it, drops in[:n] and calls Parse again with the rest
//     — pipelined requests come out one by one, in order. The *Request and every view it hands
//     out are valid until the next Parse, Reset or Release.
//   - More input needed: returns 0, nil, nil.
//   - Malformed: returns a *ParseError (one of the Err* values; its Status is the response to
//     send). Every later call returns the same error until Reset; the caller answers it with
//     AppendError and closes the connection.
//
// After a request whose KeepAlive is false the caller must not parse further input.
func (p *Parser) Parse(in []byte) (n int, req *Request, err error) {
	if p.state == stateFailed {
		return 0, nil, p.err
	}
	if p.fresh {
		p.resetRequest()
	}
	if p.state == stateHead {
		if p.scan > len(in) || p.line > len(in) {
			return 0, nil, ErrInputShrank
		}
		done, perr := p.parseHead(in)
		if perr != nil {
			return p.fail(perr)
		}
		if !done {
			return 0, nil, nil
		}
	}
	if p.bodyStart > len(in) {
		return 0, nil, ErrInputShrank
	}
	if p.streaming {
		// The head is complete and the body will come through ParseBody.
		p.req.buf = in[:p.bodyStart:p.bodyStart]
		p.req.fields = p.fields
		p.req.streaming = true
		p.remain = p.req.contentLength
		return p.bodyStart, &p.req, nil
	}
	switch p.state {
	case stateBody:
		end := p.bodyStart + int(p.req.contentLength)
		if len(in) < end {
			return 0, nil, nil
		}
		p.req.body = in[p.bodyStart:end:end]
		return p.complete(in, end)
	case stateChunked:
		region := in[p.bodyStart:]
		out, m, derr := p.chunk.Decode(p.body, region)
		p.body = out
		if derr != nil {
			if pe, ok := derr.(*ParseError); ok {
				return p.fail(pe)
			}
			return 0, nil, derr
		}
		if m == 0 {
			return 0, nil, nil
		}
		p.req.body = p.body
		p.req.contentLength = int64(len(p.body))
		p.req.tbuf = region[:m:m]
		p.req.trailers = p.chunk.trailers
		return p.complete(in, p.bodyStart+m)
	}
	// No body.
	p.req.body = in[p.bodyStart:p.bodyStart:p.bodyStart]
	return p.complete(in, p.bodyStart)
}

func (p *Parser) fail(err *ParseError) (int, *Request, error) {
	p.state, p.err = stateFailed, err
	return 0, nil, err
}

func (p *Parser) complete(in []byte, end int) (int, *Request, error) {
	p.req.buf = in[:p.bodyStart:p.bodyStart]
	p.req.fields = p.fields
	p.state = stateHead
	p.fresh = true
	return end, &p.req, nil
}

// resetRequest clears per-request state before the next request's first byte.
func (p *Parser) resetRequest() {
	p.fresh = false
	p.line, p.scan, p.head, p.reqLine = 0, 0, 0, false
	p.hostCount, p.clCount = 0, 0
	p.te = codings{}
	p.connClose, p.connKeepAlive, p.expect100, p.expectOther = false, false, false, false
	p.absHost, p.rlSP1, p.rlSP2 = span{}, 0, 0
	p.bodyStart, p.continueSent = 0, false
	p.streaming, p.remain = false, 0
	p.fields = p.fields[:0]
	if cap(p.body) > bodyBufKeep {
		p.body = nil
	}
	p.body = p.body[:0]
	p.req.reset(p.fields)
	p.chunk.Reset()
	p.chunk.lim.MaxBodyBytes = p.lim.MaxBodyBytes
}

// ParseBody continues a streamed body (after Parse returned a request whose body streams). in
// starts at the first body byte not yet consumed. It returns n, the input bytes consumed, and
// data, the body bytes they carried (decoded, for chunked; valid until the next call); done is
// true once the body is complete, and then the parser is ready for the next request (for a
// chunked body, the request's trailers are readable until the next Parse). Errors are
// *ParseError values (the connection must close after answering, if it still can).
func (p *Parser) ParseBody(in []byte) (n int, data []byte, done bool, err error) {
	if p.state == stateFailed {
		return 0, nil, false, p.err
	}
	if !p.streaming {
		return 0, nil, false, ErrInputShrank
	}
	if !p.req.chunked {
		k := int64(len(in))
		if k > p.remain {
			k = p.remain
		}
		p.remain -= k
		if p.remain == 0 {
			p.finishStream()
			return int(k), in[:k], true, nil
		}
		return int(k), in[:k], false, nil
	}
	out, m, derr := p.chunk.Decode(p.body[:0], in)
	p.body = out[:0]
	if derr != nil {
		// The data decoded before the error is still the body's: it is returned with it.
		if pe, ok := derr.(*ParseError); ok {
			p.state, p.err = stateFailed, pe
			return 0, out, false, pe
		}
		return 0, out, false, derr
	}
	if m > 0 {
		p.req.tbuf = in[:m:m]
		p.req.trailers = p.chunk.trailers
		p.req.contentLength = p.chunk.total
		p.finishStream()
		return m, out, true, nil
	}
	// Everything before the decoder's position is spent: give it back so a body of any size
	// flows through bounded memory.
	k := p.chunk.spent()
	p.chunk.rebase(k)
	return k, out, false, nil
}

// keepHead copies the head of the request being streamed, so the Request's views stay valid
// after the connection has consumed the head's input (until the next Parse).
func (p *Parser) keepHead() {
	p.headCopy = append(p.headCopy[:0], p.req.buf...)
	p.req.buf = p.headCopy[:len(p.headCopy):len(p.headCopy)]
	if cap(p.headCopy) > bodyBufKeep {
		p.headCopy = nil // the request keeps its view; the parser does not keep the memory
	}
}

// finishStream ends a streamed body: the next Parse starts a new request.
func (p *Parser) finishStream() {
	p.streaming = false
	p.state = stateHead
	p.fresh = true
}

// parseHead advances through the request-line and header section. It returns true once the
// empty line ending the header section has been parsed and the framing decided.
func (p *Parser) parseHead(in []byte) (bool, *ParseError) {
	if !p.reqLine {
		// RFC 9112 §2.2: a server SHOULD ignore at least one empty line received before the
		// request-line (some clients send a CRLF after a POST body). They count toward
		// MaxRequestLineBytes so a stream of CRLFs cannot hold the connection forever.
		for p.line < len(in) {
			switch in[p.line] {
			case '\r':
				if p.line+1 == len(in) {
					return false, nil
				}
				if in[p.line+1] != '\n' {
					return false, ErrBareCR
				}
				p.line += 2
			case '\n':
				if !p.lim.AllowBareLF {
					return false, ErrBareLF
				}
				p.line++
			default:
				goto requestLine
			}
			if p.line > p.lim.MaxRequestLineBytes {
				return false, ErrRequestLine
			}
		}
		return false, nil
	requestLine:
		if p.scan < p.line {
			p.scan = p.line
		}
		i := bytes.IndexByte(in[p.scan:], '\n')
		if i < 0 {
			// Validate the new bytes now so garbage is refused before the line completes. A
			// trailing CR is left for the next call: only the next byte tells CRLF from bare CR.
			stop := len(in)
			if in[stop-1] == '\r' {
				stop--
			}
			if err := p.checkRequestLine(in, stop); err != nil {
				return false, err
			}
			p.work += stop - p.scan
			p.scan = stop
			return false, nil
		}
		lf := p.scan + i
		end := lf
		if end > p.line && in[end-1] == '\r' {
			end--
		}
		p.work += lf + 1 - p.scan
		// Fast path: a line within the length limit and ended as allowed is parsed directly.
		// Every line parseRequestLine accepts also passes checkRequestLine's byte-by-byte
		// checks (its grammar is the stricter one), so the byte-ordered pass below is needed
		// only to pick the error for a line that fails.
		perr := errFastPathMiss
		if end-p.line <= p.lim.MaxRequestLineBytes && (end < lf || p.lim.AllowBareLF) {
			perr = p.parseRequestLine(in, p.line, end)
		}
		if perr != nil {
			// The same byte-ordered checks as for a partial line, so the error reported
			// does not depend on how the input was split.
			if err := p.checkRequestLine(in, end); err != nil {
				return false, err
			}
			if end == lf && !p.lim.AllowBareLF {
				return false, ErrBareLF
			}
			if perr == errFastPathMiss {
				perr = p.parseRequestLine(in, p.line, end)
			}
			if perr != nil {
				return false, perr
			}
		}
		p.reqLine = true
		p.line, p.scan, p.head = lf+1, lf+1, lf+1
	}
	for {
		if p.scan < p.line {
			p.scan = p.line
		}
		// Checks decided by the first byte(s) of a line run before anything else, whether or
		// not the line is complete, so the verdict does not depend on how input was split.
		if p.line < len(in) {
			switch c := in[p.line]; {
			case c == ' ' || c == '\t':
				if len(p.fields) == 0 {
					return false, ErrLeadingWhitespace
				}
				return false, ErrObsFold
			case c == '\r' && p.line+1 < len(in) && in[p.line+1] != '\n':
				return false, ErrBareCR
			}
		}
		if p.scan == p.line {
			// Fast path: a complete, valid "name: value CRLF" line is parsed in one pass,
			// instead of an LF search followed by a second scan of the same bytes. Anything
			// else (an incomplete line, bare LF, an invalid byte, the empty line) falls
			// through to the general path below, which finds the precise error.
			if f, lf, ok := scanField(in, p.line); ok {
				p.work += lf + 1 - p.scan
				if lf+1-p.head > p.lim.MaxHeaderBytes {
					return false, ErrHeaderTooLarge
				}
				if len(p.fields) >= p.lim.MaxHeaderCount {
					return false, ErrTooManyHeaders
				}
				p.line, p.scan = lf+1, lf+1
				p.fields = append(p.fields, f)
				if err := p.noteField(in, f); err != nil {
					return false, err
				}
				continue
			}
		}
		i := bytes.IndexByte(in[p.scan:], '\n')
		if i < 0 {
			seen := len(in)
			if in[seen-1] == '\r' {
				seen-- // may be the start of the CRLF; counted once the LF arrives
			}
			p.work += len(in) - p.scan
			p.scan = len(in)
			if seen-p.head > p.lim.MaxHeaderBytes {
				return false, ErrHeaderTooLarge
			}
			return false, nil
		}
		lf := p.scan + i
		p.work += i + 1
		if lf+1-p.head > p.lim.MaxHeaderBytes {
			return false, ErrHeaderTooLarge
		}
		start, end := p.line, lf
		if end > start && in[end-1] == '\r' {
			end--
		} else if !p.lim.AllowBareLF {
			return false, ErrBareLF
		}
		p.line, p.scan = lf+1, lf+1
		if end == start {
			return true, p.finishHead(in, lf+1)
		}
		if len(p.fields) >= p.lim.MaxHeaderCount {
			return false, ErrTooManyHeaders
		}
		f, err := parseField(in, start, end, len(p.fields) == 0)
		if err != nil {
			return false, err
		}
		p.fields = append(p.fields, f)
		if err := p.noteField(in, f); err != nil {
			return false, err
		}
	}
}

// checkRequestLine validates the request-line bytes in[p.scan:stop] that were not examined
// before: token method, one SP, target characters, one SP, and the HTTP-version shape, plus the
// length limit at the exact byte that exceeds it. Errors are reported for the first offending
// byte, so feeding the line whole or in pieces gives the same verdict. Every byte is examined
// once; the SP positions persist between calls.
func (p *Parser) checkRequestLine(in []byte, stop int) *ParseError {
	for k := p.scan; k < stop; k++ {
		if k-p.line >= p.lim.MaxRequestLineBytes {
			return lineTooLong(in[p.line:k])
		}
		c := in[k]
		switch {
		case c == '\r':
			// Not at stop, so another byte follows and it is not the LF.
			return ErrBareCR
		case c == ' ':
			switch {
			case k == p.line:
				return ErrMethod
			case p.rlSP1 == 0:
				p.rlSP1 = k
			case p.rlSP2 == 0:
				if k == p.rlSP1+1 {
					return ErrRequestLine
				}
				p.rlSP2 = k
			default:
				return ErrVersion
			}
		case p.rlSP1 == 0:
			if !tokenTable[c] {
				if c == '\t' && k > p.line {
					return ErrRequestLine
				}
				return ErrMethod
			}
		case p.rlSP2 == 0:
			if !pathTable[c] && c != '%' && c != '[' && c != ']' {
				return ErrTarget
			}
		default:
			// HTTP-version = "HTTP/" DIGIT "." DIGIT, checked position by position; once it is
			// complete, a major version other than 1 is 505 (RFC 9110 §6.2).
			i := k - p.rlSP2 - 1
			if i >= len(versionPattern) {
				return ErrVersion
			}
			if v := versionPattern[i]; v == 'D' && (c < '0' || c > '9') || v != 'D' && c != v {
				return ErrVersion
			}
			if i == len(versionPattern)-1 && in[k-2] != '1' {
				return ErrVersionNotSupported
			}
		}
	}
	return nil
}

const versionPattern = "HTTP/D.D"

// errFastPathMiss marks a request-line the fast path in parseHead did not try to parse. It is
// never returned to a caller.
var errFastPathMiss = newParseError(400, "request-line fast path not taken")

// lineTooLong picks the status for an over-long request-line: 414 when the target is what is
// long, 400 when the method or the version is.
func lineTooLong(line []byte) *ParseError {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return ErrRequestLine
	}
	if sp2 := bytes.IndexByte(line[sp+1:], ' '); sp2 >= 0 && len(line)-(sp+1+sp2) > 16 {
		return ErrVersion
	}
	return ErrURITooLong
}

// parseRequestLine parses method SP request-target SP HTTP-version (RFC 9112 §3) from
// in[start:end]. Exactly one SP separates the parts; RFC 9112 §3 allows lenient whitespace
// splitting but it is a smuggling vector, so anything else is 400.
func (p *Parser) parseRequestLine(in []byte, start, end int) *ParseError {
	line := in[start:end]
	i := 0
	for i < len(line) && tokenTable[line[i]] {
		i++
	}
	if i == len(line) {
		return ErrRequestLine
	}
	if line[i] != ' ' {
		if line[i] == '\t' && i > 0 {
			return ErrRequestLine
		}
		return ErrMethod
	}
	if i == 0 {
		return ErrMethod
	}
	t0 := i + 1
	sp := bytes.IndexByte(line[t0:], ' ')
	if sp <= 0 {
		// No second SP (HTTP/0.9 "GET /") or an empty target (two SPs).
		return ErrRequestLine
	}
	t1 := t0 + sp
	v := line[t1+1:]
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' ||
		v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		return ErrVersion
	}
	if v[5] != '1' {
		// RFC 9110 §6.2: only major version 1 can be spoken on an HTTP/1.1 connection.
		return ErrVersionNotSupported
	}
	r := &p.req
	r.major, r.minor = 1, v[7]-'0'
	r.method = mkspan(start, start+i)
	r.target = mkspan(start+t0, start+t1)
	return p.parseTarget(in, start+t0, start+t1, line[:i])
}

// parseTarget validates the request-target in[t0:t1] (RFC 9112 §3.2) and splits path and query.
func (p *Parser) parseTarget(in []byte, t0, t1 int, method []byte) *ParseError {
	t := in[t0:t1]
	r := &p.req
	switch {
	case string(method) == "CONNECT":
		// authority-form = uri-host ":" port, and only for CONNECT.
		if !validHostPort(t, true) {
			return ErrTarget
		}
		p.absHost = mkspan(t0, t1)
		return nil
	case t[0] == '/':
		// origin-form = absolute-path [ "?" query ]; no fragment, no raw bytes >= 0x80.
		if !validURIChars(t, &pathTable) {
			return ErrTarget
		}
		r.path, r.query = splitQuery(t0, t1, t)
		return nil
	case len(t) == 1 && t[0] == '*':
		// asterisk-form is defined for OPTIONS only.
		if string(method) != "OPTIONS" {
			return ErrTarget
		}
		r.path = mkspan(t0, t1)
		return nil
	}
	// absolute-form: only the http and https schemes make sense for an origin server, and
	// "//" authority is required by both (RFC 9110 §4.2).
	i := 0
	for i < len(t) && schemeTable[t[i]] {
		i++
	}
	if i == 0 || i+3 > len(t) || t[i] != ':' || t[i+1] != '/' || t[i+2] != '/' ||
		!(equalFold(t[:i], "http") || equalFold(t[:i], "https")) {
		return ErrTarget
	}
	a0 := i + 3
	a1 := a0
	for a1 < len(t) && t[a1] != '/' && t[a1] != '?' {
		a1++
	}
	if !validHostPort(t[a0:a1], false) {
		return ErrTarget
	}
	if !validURIChars(t[a1:], &pathTable) {
		return ErrTarget
	}
	p.absHost = mkspan(t0+a0, t0+a1)
	r.absForm = true
	r.path, r.query = splitQuery(t0+a1, t1, t[a1:])
	return nil
}

func splitQuery(start, end int, t []byte) (path, query span) {
	if q := bytes.IndexByte(t, '?'); q >= 0 {
		return mkspan(start, start+q), mkspan(start+q+1, end)
	}
	return mkspan(start, end), span{}
}

// validHostPort reports whether b is uri-host [ ":" port ] (RFC 3986 §3.2.2) with a non-empty
// host and no userinfo; requirePort demands a non-empty port (authority-form).
func validHostPort(b []byte, requirePort bool) bool {
	if len(b) == 0 {
		return false
	}
	var hostEnd int
	if b[0] == '[' {
		c := bytes.IndexByte(b, ']')
		if c < 2 {
			return false
		}
		inner := b[1:c]
		if inner[0] == 'v' || inner[0] == 'V' {
			// IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
			dot := bytes.IndexByte(inner, '.')
			if dot < 2 || dot == len(inner)-1 {
				return false
			}
			for _, x := range inner[1:dot] {
				if !isHex(x) {
					return false
				}
			}
			for _, x := range inner[dot+1:] {
				if !ipLiteralTable[x] {
					return false
				}
			}
		} else {
			if bytes.IndexByte(inner, ':') < 0 {
				return false
			}
			for _, x := range inner {
				if !isHex(x) && x != ':' && x != '.' {
					return false
				}
			}
		}
		hostEnd = c + 1
	} else {
		i := 0
		for i < len(b) && b[i] != ':' {
			switch {
			case regNameTable[b[i]]:
				i++
			case b[i] == '%' && i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]):
				i += 3
			default:
				return false
			}
		}
		if i == 0 {
			return false
		}
		hostEnd = i
	}
	rest := b[hostEnd:]
	if len(rest) == 0 {
		return !requirePort
	}
	if rest[0] != ':' {
		return false
	}
	port := rest[1:]
	if len(port) == 0 {
		return !requirePort
	}
	for _, x := range port {
		if x < '0' || x > '9' {
			return false
		}
	}
	return true
}

// noteField records what the connection layer needs from the fields that drive framing and
// persistence. Names are compared case-insensitively (RFC 9110 §5.1).
func (p *Parser) noteField(in []byte, f field) *ParseError {
	name, value := f.name.of(in), f.value.of(in)
	switch len(name) {
	case 4:
		if equalFold(name, "host") {
			if p.hostCount == 0 {
				p.req.host = f.value
			}
			p.hostCount++
		}
	case 6:
		if equalFold(name, "expect") {
			if equalFold(value, "100-continue") {
				p.expect100 = true
			} else {
				p.expectOther = true
			}
		}
	case 10:
		if equalFold(name, "connection") {
			p.noteConnection(value)
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
			p.req.contentLength = n
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			p.te.note(value)
		}
	}
	return nil
}

// parseContentLength parses Content-Length = 1*DIGIT without overflowing int64. Leading zeros
// are allowed by the grammar and accepted.
func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// noteConnection scans the Connection token list for "close" and "keep-alive".
func (p *Parser) noteConnection(v []byte) {
	for len(v) > 0 {
		var tok []byte
		if c := bytes.IndexByte(v, ','); c >= 0 {
			tok, v = v[:c], v[c+1:]
		} else {
			tok, v = v, nil
		}
		tok = trimOWS(tok)
		switch {
		case equalFold(tok, "close"):
			p.connClose = true
		case equalFold(tok, "keep-alive"):
			p.connKeepAlive = true
		}
	}
}

// finishHead applies the whole-section rules once the header section is complete and decides
// how the body is framed (RFC 9112 §6.3).
func (p *Parser) finishHead(in []byte, bodyStart int) *ParseError {
	r := &p.req
	http11 := r.minor >= 1
	switch {
	case p.hostCount > 1:
		return ErrDuplicateHost
	case p.hostCount == 0:
		// RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request without Host.
		if http11 {
			return ErrMissingHost
		}
	case !validHostPort(r.host.of(in), false):
		return ErrHost
	}
	if p.absHost.n > 0 {
		// RFC 9112 §3.3: the authority of an absolute-form or authority-form target is the
		// target URI's authority; the Host header is ignored for it.
		r.host = p.absHost
	}
	if p.te.seen {
		switch {
		case !http11:
			// RFC 9112 §6.1: framing of an HTTP/1.0 message with Transfer-Encoding is faulty.
			return ErrTransferEncodingHTTP10
		case p.clCount > 0:
			// RFC 9112 §6.1 lets a server drop Content-Length and close after the response; we
			// refuse outright, which also closes, because the pair is the classic CL.TE attack.
			return ErrContentLengthWithTE
		case p.te.bad || p.te.elems == 0:
			return ErrTransferEncoding
		case p.te.chunked && p.te.notLast:
			return ErrChunkedNotFinal
		case p.te.unknown:
			return ErrUnknownTransferCoding
		}
		r.chunked = true
	}
	p.streaming = p.streamMin > 0 && (r.chunked || r.contentLength > p.streamMin)
	switch {
	case !p.streaming && !r.chunked && r.contentLength > p.lim.MaxBodyBytes:
		return ErrBodyTooLarge
	case p.streaming && p.streamCap > 0 && r.contentLength > p.streamCap:
		return ErrBodyTooLarge
	}
	if p.streaming && r.chunked {
		cap := p.streamCap
		if cap <= 0 {
			cap = math.MaxInt64
		}
		p.chunk.lim.MaxBodyBytes = cap
	}
	if p.expectOther {
		return ErrExpectation
	}
	// RFC 9110 §10.1.1: a 100-continue expectation in an HTTP/1.0 request MUST be ignored.
	r.expect100 = p.expect100 && http11
	if http11 {
		r.keepAlive = !p.connClose
	} else {
		r.keepAlive = p.connKeepAlive && !p.connClose
	}
	p.bodyStart = bodyStart
	switch {
	case r.chunked:
		p.state = stateChunked
	case r.contentLength > 0:
		p.state = stateBody
	}
	return nil
}

// wantsContinue reports, without consuming it, what ExpectContinue would report.
func (p *Parser) wantsContinue() bool {
	return (p.state == stateBody || p.state == stateChunked) && p.req.expect100 && !p.continueSent
}
