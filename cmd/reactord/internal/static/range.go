package static

import (
	"strconv"
	"strings"
)

// rangeKind is what a Range header asks of a representation of a given size.
type rangeKind int

const (
	rangeIgnore        rangeKind = iota // absent, invalid, other unit or several ranges: send 200
	rangeSingle                         // exactly one satisfiable range: send 206
	rangeUnsatisfiable                  // no range can be satisfied: send 416
)

// maxRangeSpecs bounds the work spent on one header; a longer list is ignored (200).
const maxRangeSpecs = 64

// parseRange evaluates a Range header value against a representation of size bytes. It
// returns the kind of answer and, for rangeSingle, the first byte and the length.
//
// Rules (RFC 9110 §14.1.2): the unit must be "bytes" (case-insensitive); "a-b" with b < a, a
// non-numeric position or an empty list make the header invalid and it is ignored. "a-" and
// "a-b" are satisfiable when a < size (b is clamped to size-1); "-n" takes the last n bytes
// and is satisfiable when n > 0. A set with several specs is answered with the whole file,
// unless none of them can be satisfied (416). For an empty file "-n" sends the empty whole
// file rather than a 206 no Content-Range could describe.
func parseRange(h string, size int64) (kind rangeKind, start, length int64) {
	h = strings.TrimSpace(h)
	unit, set, ok := strings.Cut(h, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return rangeIgnore, 0, 0
	}
	specs := strings.Split(set, ",")
	if len(specs) > maxRangeSpecs {
		return rangeIgnore, 0, 0
	}
	n, satisfiable := 0, 0
	for _, spec := range specs {
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue // empty list elements are allowed by the #rule
		}
		n++
		s, l, sat, valid := parseSpec(spec, size)
		if !valid {
			return rangeIgnore, 0, 0
		}
		if sat {
			satisfiable++
			start, length = s, l
		}
	}
	switch {
	case n == 0:
		return rangeIgnore, 0, 0
	case satisfiable == 0:
		if size == 0 && allSuffix(specs) {
			return rangeIgnore, 0, 0
		}
		return rangeUnsatisfiable, 0, 0
	case n > 1:
		return rangeIgnore, 0, 0
	}
	return rangeSingle, start, length
}

func allSuffix(specs []string) bool {
	for _, s := range specs {
		s = strings.TrimSpace(s)
		if s != "" && (s[0] != '-' || s == "-0") {
			return false
		}
	}
	return true
}

// parseSpec reads one range-spec. valid is false for a syntax error; sat says whether it can
// be satisfied for size, and then start/length say which bytes.
func parseSpec(spec string, size int64) (start, length int64, sat, valid bool) {
	first, last, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, false, false
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" {
		// suffix-range: the last n bytes.
		n, ok := digits(last)
		if !ok {
			return 0, 0, false, false
		}
		if n == 0 || size == 0 {
			return 0, 0, false, true
		}
		if n > size || n < 0 { // n < 0: overflowed, i.e. larger than any size
			n = size
		}
		return size - n, n, true, true
	}
	a, ok := digits(first)
	if !ok {
		return 0, 0, false, false
	}
	b := int64(-1)
	if last != "" {
		if b, ok = digits(last); !ok {
			return 0, 0, false, false
		}
		if a >= 0 && b >= 0 && b < a {
			return 0, 0, false, false
		}
	}
	if a < 0 || a >= size { // a < 0: overflowed, beyond any size
		return 0, 0, false, true
	}
	if b < 0 || b >= size { // absent, overflowed or past the end: clamp
		b = size - 1
	}
	return a, b - a + 1, true, true
}

// digits parses a non-empty run of ASCII digits. A number too large for int64 returns -1
// with ok true: it is well-formed, just beyond any file size.
func digits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return -1, true
	}
	return n, true
}

// contentRange formats "bytes a-b/size".
func contentRange(start, length, size int64) string {
	b := make([]byte, 0, 48)
	b = append(b, "bytes "...)
	b = strconv.AppendInt(b, start, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, start+length-1, 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, size, 10)
	return string(b)
}
