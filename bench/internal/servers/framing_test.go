package servers

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestFrameRequests(t *testing.T) {
	get := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	post := "POST /x HTTP/1.1\r\nHost: a\r\ncontent-LENGTH: 5\r\n\r\nhello"
	tests := []struct {
		name    string
		in      string
		n, used int
		err     error
	}{
		{"empty", "", 0, 0, nil},
		{"one get", get, 1, len(get), nil},
		{"pipelined", get + post + get, 3, 2*len(get) + len(post), nil},
		{"partial head", get + "GET / HT", 1, len(get), nil},
		{"body not yet complete", post[:len(post)-2], 0, 0, nil},
		{"body in next request's place", post + "GET", 1, len(post), nil},
		{"bad content-length", "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 0, 0, errBadRequest},
		{"head too large", "GET /" + strings.Repeat("a", maxRequestHead+1), 0, 0, errBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, used, err := frameRequests([]byte(tt.in))
			if n != tt.n || used != tt.used || !errors.Is(err, tt.err) {
				t.Fatalf("got %d, %d, %v; want %d, %d, %v", n, used, err, tt.n, tt.used, tt.err)
			}
		})
	}
}

func TestCRLFScannerSplits(t *testing.T) {
	stream := []byte("GET / HTTP/1.1\r\n\r\nGET /\r\r\n\r\n\r\n\r\nx\r\n\r\r\n\r\n")
	want := bytes.Count(stream, crlfcrlf)
	for a := 0; a <= len(stream); a++ {
		for b := a; b <= len(stream); b++ {
			var s crlfScanner
			got := s.count(stream[:a]) + s.count(stream[a:b]) + s.count(stream[b:])
			if got != want {
				t.Fatalf("cuts %d,%d: %d, want %d", a, b, got, want)
			}
		}
	}
}

// FuzzCRLFScanner checks that counting in two pieces equals counting the whole.
func FuzzCRLFScanner(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), 5)
	f.Add([]byte("\r\n\r\r\n\r\n\n\r\n\r\n"), 3)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		if cut < 0 || cut > len(b) {
			cut = len(b) / 2
		}
		var s crlfScanner
		if got, want := s.count(b[:cut])+s.count(b[cut:]), bytes.Count(b, crlfcrlf); got != want {
			t.Fatalf("cut %d of %q: %d, want %d", cut, b, got, want)
		}
	})
}

// FuzzFrameRequests checks that framing never panics and never reports more than its input.
func FuzzFrameRequests(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, used, _ := frameRequests(b)
		if n < 0 || used < 0 || used > len(b) || (n == 0) != (used == 0) {
			t.Fatalf("n %d used %d len %d", n, used, len(b))
		}
	})
}
