package http

import "bytes"

// fieldLines scans the field lines of one header or trailer section incrementally, one line per
// call, under the same rules as the request parser's header loop: obs-fold and leading
// whitespace refused on the line's first byte, a bare CR refused as soon as the byte after it is
// seen, bare LF refused unless Limits.AllowBareLF, the section bounded by MaxHeaderBytes and
// MaxHeaderCount. The response parser uses it for its header section and for chunked trailers.
//
// Offsets are positions in the caller's input, which follows the parser input contract (the
// unconsumed bytes come back unchanged with new bytes appended), so a section arriving one byte
// at a time is scanned in linear time.
type fieldLines struct {
	line int // start of the next line
	scan int // the LF search resumes here (line <= scan)
	head int // start of the section, for MaxHeaderBytes
	n    int // field lines returned so far
	work int // bytes examined by LF searches (linearity tests)
}

// fieldStep is what fieldLines.next found.
type fieldStep uint8

const (
	stepMore  fieldStep = iota // the next line is incomplete
	stepField                  // a field line
	stepEnd                    // the empty line ending the section
)

// reset starts a section at offset head.
func (s *fieldLines) reset(head int) { *s = fieldLines{line: head, scan: head, head: head} }

// next scans the next line of the section. It returns stepField with the parsed field,
// stepEnd after the empty line (s.line is then the offset just past it), or stepMore.
func (s *fieldLines) next(in []byte, lim *Limits) (field, fieldStep, *ParseError) {
	if s.scan < s.line {
		s.scan = s.line
	}
	// Checks decided by the first byte(s) of a line run before anything else, whether or not
	// the line is complete, so the verdict does not depend on how the input was split.
	if s.line < len(in) {
		switch c := in[s.line]; {
		case c == ' ' || c == '\t':
			if s.n == 0 {
				return field{}, 0, ErrLeadingWhitespace
			}
			return field{}, 0, ErrObsFold
		case c == '\r' && s.line+1 < len(in) && in[s.line+1] != '\n':
			return field{}, 0, ErrBareCR
		}
	}
	if s.scan == s.line {
		// Fast path: a complete, valid "name: value CRLF" line in one pass (see scanField).
		if f, lf, ok := scanField(in, s.line); ok {
			s.work += lf + 1 - s.scan
			if lf+1-s.head > lim.MaxHeaderBytes {
				return field{}, 0, ErrHeaderTooLarge
			}
			if s.n >= lim.MaxHeaderCount {
				return field{}, 0, ErrTooManyHeaders
			}
			s.line, s.scan = lf+1, lf+1
			s.n++
			return f, stepField, nil
		}
	}
	i := bytes.IndexByte(in[s.scan:], '\n')
	if i < 0 {
		seen := len(in)
		if seen > s.line && in[seen-1] == '\r' {
			seen-- // may be the start of the CRLF; counted once the LF arrives
		}
		s.work += len(in) - s.scan
		s.scan = len(in)
		if seen-s.head > lim.MaxHeaderBytes {
			return field{}, 0, ErrHeaderTooLarge
		}
		return field{}, stepMore, nil
	}
	lf := s.scan + i
	s.work += i + 1
	if lf+1-s.head > lim.MaxHeaderBytes {
		return field{}, 0, ErrHeaderTooLarge
	}
	start, end := s.line, lf
	if end > start && in[end-1] == '\r' {
		end--
	} else if !lim.AllowBareLF {
		return field{}, 0, ErrBareLF
	}
	s.line, s.scan = lf+1, lf+1
	if end == start {
		return field{}, stepEnd, nil
	}
	if s.n >= lim.MaxHeaderCount {
		return field{}, 0, ErrTooManyHeaders
	}
	f, err := parseField(in, start, end, s.n == 0)
	if err != nil {
		return field{}, 0, err
	}
	s.n++
	return f, stepField, nil
}

// codings accumulates the Transfer-Encoding lines of one message; several lines form one list
// in order (RFC 9110 §5.3).
type codings struct {
	seen    bool
	elems   int
	chunked bool
	notLast bool // an element followed chunked
	unknown bool
	bad     bool
}

// note adds one Transfer-Encoding field value.
func (t *codings) note(v []byte) {
	t.seen = true
	if len(v) == 0 {
		// An empty field: peers that count Transfer-Encoding lines (net/http allows one) would
		// disagree with those that skip it.
		t.bad = true
	}
	for len(v) > 0 {
		var el []byte
		if c := bytes.IndexByte(v, ','); c >= 0 {
			el, v = v[:c], v[c+1:]
		} else {
			el, v = v, nil
		}
		el = trimOWS(el)
		if len(el) == 0 {
			// An empty element in the one field that decides framing is refused: a peer that
			// does not skip it (RFC 9110 §5.6.1 asks recipients to) would frame differently.
			t.bad = true
			continue
		}
		t.elems++
		if t.chunked {
			t.notLast = true
		}
		name, params := el, []byte(nil)
		if sc := bytes.IndexByte(el, ';'); sc >= 0 {
			name, params = trimOWS(el[:sc]), el[sc:]
		}
		switch {
		case equalFold(name, "chunked"):
			// chunked takes no parameters and must not be applied twice (RFC 9112 §7).
			if t.chunked || params != nil {
				t.bad = true
			}
			t.chunked = true
		case isToken(name):
			t.unknown = true
		default:
			t.bad = true
		}
	}
}

// connectionOptions reports whether the Connection field value v lists "close" and
// "keep-alive" (ASCII case-insensitive).
func connectionOptions(v []byte) (closeTok, keepAlive bool) {
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
			closeTok = true
		case equalFold(tok, "keep-alive"):
			keepAlive = true
		}
	}
	return closeTok, keepAlive
}
