package router

import (
	"bytes"
	"errors"
)

// ErrBadEscape is returned by Unescape and UnescapeQuery for a '%' not followed by two
// hexadecimal digits.
var ErrBadEscape = errors.New("router: malformed percent-encoding")

// Unescape percent-decodes src, a path or a path parameter ("%2F" becomes "/"; '+' stays '+').
//
// When src holds no '%' it returns src itself: no copy, no allocation, the common case. Otherwise
// it decodes into dst[:0] and returns that; the result is never longer than src, so a dst with
// capacity len(src) (a stack array sliced to [:0], or a per-loop scratch) means no allocation
// either — the scratch is bounded by the request's own length. A dst too small is grown by
// append. The result aliases src or dst: valid while they are. ErrBadEscape for a '%' not
// followed by two hex digits (the result is then nil).
func Unescape(dst, src []byte) ([]byte, error) { return unescape(dst, src, false) }

// UnescapeQuery is Unescape for a query key or value (application/x-www-form-urlencoded):
// '+' also decodes to a space. Without '%' or '+' it returns src itself.
func UnescapeQuery(dst, src []byte) ([]byte, error) { return unescape(dst, src, true) }

func unescape(dst, src []byte, plus bool) ([]byte, error) {
	i := 0
	for i < len(src) && src[i] != '%' && !(plus && src[i] == '+') {
		i++
	}
	if i == len(src) {
		return src, nil
	}
	out := append(dst[:0], src[:i]...)
	for ; i < len(src); i++ {
		switch c := src[i]; {
		case c == '%':
			if i+2 >= len(src) || !ishex(src[i+1]) || !ishex(src[i+2]) {
				return nil, ErrBadEscape
			}
			out = append(out, unhex(src[i+1])<<4|unhex(src[i+2]))
			i += 2
		case plus && c == '+':
			out = append(out, ' ')
		default:
			out = append(out, c)
		}
	}
	return out, nil
}

// equalDecoded reports whether raw, percent-decoded, equals lit. It decodes as it compares,
// so matching an encoded segment against a route needs no buffer. Malformed escapes never
// match.
func equalDecoded(raw []byte, lit string) bool {
	j := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' {
			if i+2 >= len(raw) || !ishex(raw[i+1]) || !ishex(raw[i+2]) {
				return false
			}
			c = unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 2
		}
		if j >= len(lit) || lit[j] != c {
			return false
		}
		j++
	}
	return j == len(lit)
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// QueryValue returns the raw (still encoded) value of the first key=value pair named key in
// query (as Request.Query returns it: "a=1&b=2", no '?'), and whether it was present; a key
// without '=' has an empty value. key is compared with the raw key bytes, so a key that needs
// encoding is not found (API keys rarely do). No allocation; decode the value with
// UnescapeQuery.
func QueryValue(query []byte, key string) ([]byte, bool) {
	for len(query) > 0 {
		pair := query
		if i := bytes.IndexByte(query, '&'); i >= 0 {
			pair, query = query[:i], query[i+1:]
		} else {
			query = nil
		}
		k, v := pair, pair[len(pair):]
		if i := bytes.IndexByte(pair, '='); i >= 0 {
			k, v = pair[:i], pair[i+1:]
		}
		if string(k) == key {
			return v, true
		}
	}
	return nil, false
}
