package loadgen

import (
	"bytes"
	"errors"
	"fmt"
)

// Errors returned by ParseResponse, matched with errors.Is.
var (
	// ErrInvalidResponse means the bytes are not an HTTP/1.x response: a bad status line, a
	// header line without a colon, a bad Content-Length or chunk size.
	ErrInvalidResponse = errors.New("loadgen: invalid response")
	// ErrNoFraming means a response that must have a body says neither Content-Length nor
	// chunked. Its body would run to the end of the connection, which a keep-alive load
	// generator cannot use, so it is counted as invalid.
	ErrNoFraming = errors.New("loadgen: response without Content-Length or chunked encoding")
	// ErrHeaderTooLarge means no end of header was found within MaxHeaderBytes.
	ErrHeaderTooLarge = errors.New("loadgen: response header too large")
)

// MaxHeaderBytes bounds a response's status line and headers.
const MaxHeaderBytes = 64 << 10

// Response is one parsed HTTP response. Body aliases the buffer given to ParseResponse and is
// valid only until that buffer is reused; it is nil for a chunked body (only BodyLen is kept).
type Response struct {
	Status  int
	BodyLen int
	Body    []byte
	// Close is set when the server said "Connection: close" (or spoke HTTP/1.0 without
	// keep-alive): the connection ends after this response.
	Close bool
}

// ParseResponse parses one complete response from the start of b. It returns the response and
// the number of bytes it took. If b holds only part of a response it returns n == 0 and a nil
// error: read more and call again with the bytes appended. Pipelined responses are parsed one
// call at a time, each from where the previous one ended.
func ParseResponse(b []byte) (Response, int, error) {
	var r Response
	end := bytes.Index(b, crlfcrlf)
	if end < 0 {
		if len(b) > MaxHeaderBytes {
			return r, 0, ErrHeaderTooLarge
		}
		return r, 0, nil
	}
	head := b[:end+2] // each line, the last included, ends with CRLF
	bodyStart := end + 4

	line, rest, _ := bytes.Cut(head, crlf)
	status, http10, err := parseStatusLine(line)
	if err != nil {
		return r, 0, err
	}
	r.Status = status
	r.Close = http10

	contentLength := -1
	chunked := false
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, crlf)
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 {
			return r, 0, fmt.Errorf("%w: header line %q", ErrInvalidResponse, clip(line))
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, ok := parseDecimal(value)
			if !ok || (contentLength >= 0 && contentLength != n) {
				return r, 0, fmt.Errorf("%w: Content-Length %q", ErrInvalidResponse, clip(value))
			}
			contentLength = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(value, []byte("identity")) {
				chunked = hasToken(value, "chunked")
				if !chunked {
					return r, 0, fmt.Errorf("%w: Transfer-Encoding %q", ErrInvalidResponse, clip(value))
				}
			}
		case bytes.EqualFold(name, []byte("Connection")):
			if hasToken(value, "close") {
				r.Close = true
			} else if hasToken(value, "keep-alive") {
				r.Close = false
			}
		}
	}

	// RFC 9112 §6.3: 1xx, 204 and 304 never have a body; chunked overrides Content-Length.
	if status < 200 || status == 204 || status == 304 {
		return r, bodyStart, nil
	}
	if chunked {
		n, bodyLen, err := parseChunked(b[bodyStart:])
		if err != nil || n == 0 {
			return Response{}, 0, err
		}
		r.BodyLen = bodyLen
		return r, bodyStart + n, nil
	}
	if contentLength < 0 {
		return r, 0, ErrNoFraming
	}
	if len(b)-bodyStart < contentLength {
		return Response{}, 0, nil
	}
	r.BodyLen = contentLength
	r.Body = b[bodyStart : bodyStart+contentLength]
	return r, bodyStart + contentLength, nil
}

var (
	crlf     = []byte("\r\n")
	crlfcrlf = []byte("\r\n\r\n")
)

// parseStatusLine checks "HTTP/1.x SSS[ reason]" and returns the status and whether it is
// HTTP/1.0 (whose connections close unless kept alive explicitly).
func parseStatusLine(line []byte) (status int, http10 bool, err error) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		(line[7] != '0' && line[7] != '1') || (len(line) > 12 && line[12] != ' ') {
		return 0, false, fmt.Errorf("%w: status line %q", ErrInvalidResponse, clip(line))
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, false, fmt.Errorf("%w: status line %q", ErrInvalidResponse, clip(line))
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 {
		return 0, false, fmt.Errorf("%w: status %d", ErrInvalidResponse, status)
	}
	return status, line[7] == '0', nil
}

// parseChunked walks a chunked body. It returns the bytes the body takes on the wire (0 if
// incomplete) and the decoded length.
func parseChunked(b []byte) (n, bodyLen int, err error) {
	for {
		line, _, ok := bytes.Cut(b[n:], crlf)
		if !ok {
			if len(b)-n > 1024 {
				return 0, 0, fmt.Errorf("%w: chunk size line too long", ErrInvalidResponse)
			}
			return 0, 0, nil
		}
		sizeText, _, _ := bytes.Cut(line, []byte(";"))
		size, ok := parseHex(bytes.TrimSpace(sizeText))
		if !ok {
			return 0, 0, fmt.Errorf("%w: chunk size %q", ErrInvalidResponse, clip(line))
		}
		n += len(line) + 2
		if size == 0 {
			// Trailer section: header lines until an empty line.
			for {
				t, _, ok := bytes.Cut(b[n:], crlf)
				if !ok {
					return 0, 0, nil
				}
				n += len(t) + 2
				if len(t) == 0 {
					return n, bodyLen, nil
				}
			}
		}
		if len(b)-n < size+2 {
			return 0, 0, nil
		}
		if b[n+size] != '\r' || b[n+size+1] != '\n' {
			return 0, 0, fmt.Errorf("%w: chunk not followed by CRLF", ErrInvalidResponse)
		}
		n += size + 2
		bodyLen += size
	}
}

func parseDecimal(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func parseHex(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 12 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int(d)
	}
	return n, true
}

// hasToken reports whether a comma-separated header value holds token (case-insensitive).
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte(","))
		if bytes.EqualFold(bytes.TrimSpace(t), []byte(token)) {
			return true
		}
	}
	return false
}

func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
