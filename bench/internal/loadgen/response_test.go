package loadgen

import (
	"errors"
	"strings"
	"testing"
)

const hello = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		status  int
		n       int // 0: incomplete; -1: the whole input
		body    string
		bodyLen int
		close   bool
		err     error
	}{
		{name: "hello", in: hello, status: 200, n: len(hello), body: "Hello, World!", bodyLen: 13},
		{name: "trailing next response", in: hello + "HTTP/1.1 2", status: 200, n: len(hello), body: "Hello, World!", bodyLen: 13},
		{name: "head only", in: "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello", n: 0},
		{name: "no end of head", in: "HTTP/1.1 200 OK\r\nContent-Len", n: 0},
		{name: "lower-case header and spaces", in: "HTTP/1.1 404 Not Found\r\ncontent-length:  2 \r\n\r\nno", status: 404, n: -1, body: "no", bodyLen: 2},
		{name: "no reason phrase", in: "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", status: 200, n: -1},
		{name: "204 has no body", in: "HTTP/1.1 204 No Content\r\n\r\n", status: 204, n: -1},
		{name: "304 ignores length", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", status: 304, n: -1},
		{name: "connection close", in: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", status: 200, n: -1, close: true},
		{name: "http/1.0 closes", in: "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", status: 200, n: -1, close: true},
		{name: "http/1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", status: 200, n: -1},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n8;x=y\r\n, World!\r\n0\r\n\r\n", status: 200, n: -1, bodyLen: 13},
		{name: "chunked with trailer", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX: y\r\n\r\n", status: 200, n: -1, bodyLen: 1},
		{name: "chunked incomplete", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHel", n: 0},
		{name: "chunked bad size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", err: ErrInvalidResponse},
		{name: "chunk without CRLF", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", err: ErrInvalidResponse},
		{name: "no framing", in: "HTTP/1.1 200 OK\r\n\r\nbody", err: ErrNoFraming},
		{name: "bad version", in: "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", err: ErrInvalidResponse},
		{name: "bad status digits", in: "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", err: ErrInvalidResponse},
		{name: "status below 100", in: "HTTP/1.1 099 X\r\nContent-Length: 0\r\n\r\n", err: ErrInvalidResponse},
		{name: "not http", in: "SSH-2.0-OpenSSH\r\n\r\n", err: ErrInvalidResponse},
		{name: "header without colon", in: "HTTP/1.1 200 OK\r\nbogus\r\n\r\n", err: ErrInvalidResponse},
		{name: "bad content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", err: ErrInvalidResponse},
		{name: "conflicting content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", err: ErrInvalidResponse},
		{name: "unknown transfer-encoding", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", err: ErrInvalidResponse},
		{name: "header too large", in: "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", MaxHeaderBytes), err: ErrHeaderTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, n, err := ParseResponse([]byte(tt.in))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tt.n == -1 {
				tt.n = len(tt.in)
			}
			if n != tt.n {
				t.Fatalf("n = %d, want %d", n, tt.n)
			}
			if n == 0 {
				return
			}
			if r.Status != tt.status || string(r.Body) != tt.body || r.BodyLen != tt.bodyLen || r.Close != tt.close {
				t.Fatalf("got %+v (body %q), want status %d body %q len %d close %v", r, r.Body, tt.status, tt.body, tt.bodyLen, tt.close)
			}
		})
	}
}

// TestParseResponseSplit feeds pipelined responses cut at every possible point, as reads
// would deliver them, and checks that every response comes out exactly once and whole.
func TestParseResponseSplit(t *testing.T) {
	chunked := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
	stream := hello + chunked + hello + "HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy"
	want := []int{200, 200, 200, 503}
	for cut := 0; cut <= len(stream); cut++ {
		var buf []byte
		var got []int
		feed := func(p string) {
			buf = append(buf, p...)
			for {
				r, n, err := ParseResponse(buf)
				if err != nil {
					t.Fatalf("cut %d: %v", cut, err)
				}
				if n == 0 {
					return
				}
				if r.Status == 200 && r.Body != nil && string(r.Body) != "Hello, World!" {
					t.Fatalf("cut %d: body %q", cut, r.Body)
				}
				got = append(got, r.Status)
				buf = buf[n:]
			}
		}
		feed(stream[:cut])
		feed(stream[cut:])
		if len(buf) != 0 || len(got) != len(want) {
			t.Fatalf("cut %d: statuses %v, %d bytes left; want %v", cut, got, len(buf), want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("cut %d: statuses %v, want %v", cut, got, want)
			}
		}
	}
}

// FuzzParseResponse checks that no input panics the parser, that a reported length is within
// the input, and that parsing a prefix never reports a longer response than the whole input.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(hello))
	f.Add([]byte(hello + hello))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, n, err := ParseResponse(b)
		if err != nil {
			return
		}
		if n < 0 || n > len(b) {
			t.Fatalf("n = %d for %d bytes", n, len(b))
		}
		if n > 0 {
			_, n2, err2 := ParseResponse(b[:n])
			if err2 != nil || n2 != n {
				t.Fatalf("exact prefix: n %d err %v, want %d", n2, err2, n)
			}
		}
	})
}
