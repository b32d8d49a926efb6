package servers

import (
	"bytes"
	"errors"
)

// errBadRequest is returned by frameRequests for input that cannot be framed: a bad
// Content-Length or a header section larger than maxRequestHead. The server closes the
// connection.
var errBadRequest = errors.New("servers: bad request framing")

const maxRequestHead = 16 << 10

var crlfcrlf = []byte("\r\n\r\n")

// frameRequests counts the complete requests at the start of b and the bytes they take: each is
// a header section ending in CRLFCRLF followed by Content-Length bytes of body, if the header
// says so. It is the framing the evio, gnet and reactor-raw servers use; it does not parse
// HTTP beyond that (those peers' examples only scan for CRLFCRLF; reading Content-Length is
// the least that keeps a request body from being taken for the next request).
func frameRequests(b []byte) (n, consumed int, err error) {
	for {
		rest := b[consumed:]
		end := bytes.Index(rest, crlfcrlf)
		if end < 0 {
			if len(rest) > maxRequestHead {
				return n, consumed, errBadRequest
			}
			return n, consumed, nil
		}
		cl, err := contentLength(rest[:end])
		if err != nil {
			return n, consumed, err
		}
		total := end + 4 + cl
		if total > len(rest) {
			return n, consumed, nil
		}
		consumed += total
		n++
	}
}

// contentLength finds a Content-Length header in head (case-insensitively) and returns its
// value, or 0 if there is none.
func contentLength(head []byte) (int, error) {
	const name = "content-length:"
	for i := 0; ; {
		j := bytes.IndexByte(head[i:], '\n')
		if j < 0 {
			return 0, nil
		}
		line := head[i+j+1:]
		i += j + 1
		if len(line) < len(name) || (line[0]|0x20) != 'c' || !bytes.EqualFold(line[:len(name)], []byte(name)) {
			continue
		}
		v := line[len(name):]
		if k := bytes.IndexByte(v, '\r'); k >= 0 {
			v = v[:k]
		}
		v = bytes.TrimSpace(v)
		if len(v) == 0 || len(v) > 12 {
			return 0, errBadRequest
		}
		n := 0
		for _, c := range v {
			if c < '0' || c > '9' {
				return 0, errBadRequest
			}
			n = n*10 + int(c-'0')
		}
		return n, nil
	}
}

// crlfScanner counts "\r\n\r\n" in a byte stream that arrives in pieces. It is the floor
// server's whole parser: a match can straddle two reads, so the scanner keeps how many bytes
// of the pattern the previous piece ended with.
type crlfScanner struct{ state uint8 }

// count returns the number of "\r\n\r\n" that end inside b.
func (s *crlfScanner) count(b []byte) int {
	n, i := 0, 0
	// Finish (or abandon) a match begun in an earlier piece; at most three bytes.
	for s.state > 0 && i < len(b) {
		s.state = step(s.state, b[i])
		i++
		if s.state == 4 {
			n++
			s.state = 0
		}
	}
	for {
		j := bytes.Index(b[i:], crlfcrlf)
		if j < 0 {
			break
		}
		n++
		i += j + 4
	}
	// With no match left, the state depends only on the last three bytes.
	for k := max(i, len(b)-3); k < len(b); k++ {
		s.state = step(s.state, b[k])
	}
	return n
}

// step is the transition of the matcher for "\r\n\r\n": state k means the last k bytes are
// the pattern's first k. A mismatch falls back to 1 on '\r' (it starts a new match), else 0.
func step(state uint8, c byte) uint8 {
	if c == crlfcrlf[state] {
		return state + 1
	}
	if c == '\r' {
		return 1
	}
	return 0
}
