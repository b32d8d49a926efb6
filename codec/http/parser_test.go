package http

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

const hostLine = "Host: example.com\n"

func TestParseGoodRequests(t *testing.T) {
	tests := []struct {
		name  string
		in    string // "\n" becomes CRLF
		check func(t *testing.T, r parsed)
	}{
		{"simple GET", "GET /index.html?a=1&b=2 HTTP/1.1\n" + hostLine + "\n", func(t *testing.T, r parsed) {
			want := parsed{Method: "GET", Target: "/index.html?a=1&b=2", Path: "/index.html", Query: "a=1&b=2",
				Host: "example.com", Major: 1, Minor: 1, Headers: [][2]string{{"Host", "example.com"}}, KeepAlive: true}
			if !reflect.DeepEqual(r, want) {
				t.Fatalf("got %+v\nwant %+v", r, want)
			}
		}},
		{"OWS trimmed", "GET / HTTP/1.1\nHost:\t example.com \t\nX-A:   v a l  \n\n", func(t *testing.T, r parsed) {
			if r.Headers[0][1] != "example.com" || r.Headers[1][1] != "v a l" {
				t.Fatalf("values not trimmed: %q", r.Headers)
			}
		}},
		{"empty value", "GET / HTTP/1.1\n" + hostLine + "X-Empty:\n\n", func(t *testing.T, r parsed) {
			if r.Headers[1] != [2]string{"X-Empty", ""} {
				t.Fatalf("got %q", r.Headers[1])
			}
		}},
		{"obs-text value", "GET / HTTP/1.1\n" + hostLine + "X-U: D\xc3\xbcsseldorf\n\n", func(t *testing.T, r parsed) {
			if r.Headers[1][1] != "D\xc3\xbcsseldorf" {
				t.Fatal(r.Headers)
			}
		}},
		{"content-length body", "POST /p HTTP/1.1\n" + hostLine + "Content-Length: 5\n\nhello", func(t *testing.T, r parsed) {
			if r.Body != "hello" || r.ContentLength != 5 || r.Chunked {
				t.Fatalf("%+v", r)
			}
		}},
		{"content-length leading zeros", "POST / HTTP/1.1\n" + hostLine + "Content-Length: 005\n\nhello", func(t *testing.T, r parsed) {
			if r.Body != "hello" {
				t.Fatal(r.Body)
			}
		}},
		{"chunked with extensions and trailers", "POST / HTTP/1.1\n" + hostLine + "Transfer-Encoding: chunked\n\n" +
			"5;a=b;c=\"q \\\" d\"\nhello\n6 ; x\n world\n0\nX-Sum: 1\nX-Other: two\n\n", func(t *testing.T, r parsed) {
			if r.Body != "hello world" || !r.Chunked || r.ContentLength != 11 {
				t.Fatalf("%+v", r)
			}
			if !reflect.DeepEqual(r.Trailers, [][2]string{{"X-Sum", "1"}, {"X-Other", "two"}}) {
				t.Fatalf("trailers %q", r.Trailers)
			}
		}},
		{"chunked case-insensitive", "POST / HTTP/1.1\n" + hostLine + "Transfer-Encoding:  Chunked \n\n0\n\n", func(t *testing.T, r parsed) {
			if !r.Chunked || r.Body != "" {
				t.Fatalf("%+v", r)
			}
		}},
		{"HTTP/1.0 default close", "GET / HTTP/1.0\n\n", func(t *testing.T, r parsed) {
			if r.KeepAlive || r.Minor != 0 || r.Host != "" {
				t.Fatalf("%+v", r)
			}
		}},
		{"HTTP/1.0 keep-alive", "GET / HTTP/1.0\nConnection: Keep-Alive\n\n", func(t *testing.T, r parsed) {
			if !r.KeepAlive {
				t.Fatal("want keep-alive")
			}
		}},
		{"HTTP/1.0 keep-alive and close", "GET / HTTP/1.0\nConnection: keep-alive, CLOSE\n\n", func(t *testing.T, r parsed) {
			if r.KeepAlive {
				t.Fatal("close must win")
			}
		}},
		{"HTTP/1.1 close in list", "GET / HTTP/1.1\n" + hostLine + "Connection: upgrade , close\n\n", func(t *testing.T, r parsed) {
			if r.KeepAlive {
				t.Fatal("want close")
			}
		}},
		{"HTTP/1.2 treated as 1.1", "GET / HTTP/1.2\n" + hostLine + "\n", func(t *testing.T, r parsed) {
			if !r.KeepAlive || r.Minor != 2 {
				t.Fatalf("%+v", r)
			}
		}},
		{"leading CRLF ignored", "\n\nGET / HTTP/1.1\n" + hostLine + "\n", func(t *testing.T, r parsed) {
			if r.Method != "GET" {
				t.Fatal(r)
			}
		}},
		{"absolute-form overrides Host", "GET http://Other.example:8080?x=1 HTTP/1.1\n" + hostLine + "\n", func(t *testing.T, r parsed) {
			if r.Host != "Other.example:8080" || r.Path != "/" || r.Query != "x=1" {
				t.Fatalf("%+v", r)
			}
		}},
		{"asterisk OPTIONS", "OPTIONS * HTTP/1.1\n" + hostLine + "\n", func(t *testing.T, r parsed) {
			if r.Path != "*" {
				t.Fatal(r.Path)
			}
		}},
		{"CONNECT authority-form", "CONNECT example.com:443 HTTP/1.1\nHost: example.com:443\n\n", func(t *testing.T, r parsed) {
			if r.Target != "example.com:443" || r.Path != "" {
				t.Fatalf("%+v", r)
			}
		}},
		{"IPv6 host", "GET / HTTP/1.1\nHost: [::1]:8080\n\n", func(t *testing.T, r parsed) {
			if r.Host != "[::1]:8080" {
				t.Fatal(r.Host)
			}
		}},
		{"expect 100-continue", "POST / HTTP/1.1\n" + hostLine + "Expect: 100-Continue\nContent-Length: 2\n\nok", func(t *testing.T, r parsed) {
			if !r.Expect100 || r.Body != "ok" {
				t.Fatalf("%+v", r)
			}
		}},
		{"expect ignored on 1.0", "POST / HTTP/1.0\nExpect: 100-continue\nContent-Length: 2\n\nok", func(t *testing.T, r parsed) {
			if r.Expect100 {
				t.Fatal("HTTP/1.0 expectation must be ignored")
			}
		}},
		{"pct-encoded and sub-delims", "GET /a%20b/c;p=1,2!$&'()*+=:@?q=/?x%2F HTTP/1.1\n" + hostLine + "\n", func(t *testing.T, r parsed) {
			if r.Path != "/a%20b/c;p=1,2!$&'()*+=:@" || r.Query != "q=/?x%2F" {
				t.Fatalf("%+v", r)
			}
		}},
		{"any method token", "M-SEARCH /x HTTP/1.1\n" + hostLine + "\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := crlf(tc.in)
			o := oneShot(t, Limits{}, in)
			if o.Err != nil || len(o.Reqs) != 1 || o.Rest != 0 {
				t.Fatalf("want one request, got %v", o)
			}
			if tc.check != nil {
				tc.check(t, o.Reqs[0])
			}
		})
	}
}

func TestParseBadRequests(t *testing.T) {
	long := strings.Repeat("a", DefaultMaxRequestLineBytes)
	tests := []struct {
		name string
		in   string // sent as-is (no CRLF rewriting)
		want *ParseError
	}{
		{"CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ErrContentLengthWithTE},
		{"TE and CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", ErrContentLengthWithTE},
		{"duplicate CL differing", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", ErrDuplicateContentLength},
		{"duplicate CL identical", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", ErrDuplicateContentLength},
		{"CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", ErrDuplicateContentLength},
		{"CL sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", ErrContentLength},
		{"CL negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", ErrContentLength},
		{"CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", ErrContentLength},
		{"CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", ErrContentLength},
		{"CL internal space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 0\r\n\r\n", ErrContentLength},
		{"CL overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", ErrContentLength},
		{"CL too large", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 8388609\r\n\r\n", ErrBodyTooLarge},
		{"TE chunked not final", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", ErrChunkedNotFinal},
		{"TE chunked not final across lines", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", ErrChunkedNotFinal},
		{"TE chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", ErrTransferEncoding},
		{"TE chunked params", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=y\r\n\r\n", ErrTransferEncoding},
		{"TE empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", ErrTransferEncoding},
		{"TE empty element", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n", ErrTransferEncoding},
		{"TE unknown", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", ErrUnknownTransferCoding},
		{"TE unknown before chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", ErrUnknownTransferCoding},
		{"TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", ErrUnknownTransferCoding},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ErrTransferEncodingHTTP10},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", ErrObsFold},
		{"space before colon", "GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n", ErrSpaceBeforeColon},
		{"tab before colon", "GET / HTTP/1.1\r\nHost: a\r\nX\t: a\r\n\r\n", ErrSpaceBeforeColon},
		{"whitespace before first header", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", ErrLeadingWhitespace},
		{"whitespace-only line first", "GET / HTTP/1.1\r\n \r\nHost: a\r\n\r\n", ErrLeadingWhitespace},
		{"bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", ErrBareCR},
		{"bare CR request line", "GET / HTTP/1.1\rHost: a\r\n\r\n", ErrBareCR},
		{"bare CR as line end", "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", ErrBareCR},
		{"bare LF request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", ErrBareLF},
		{"bare LF header", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", ErrBareLF},
		{"bare LF end of head", "GET / HTTP/1.1\r\nHost: a\r\n\n", ErrBareLF},
		{"bare LF leading", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", ErrBareLF},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", ErrFieldValue},
		{"control in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x07b\r\n\r\n", ErrFieldValue},
		{"DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", ErrFieldValue},
		{"NUL in name", "GET / HTTP/1.1\r\nHost: a\r\nX\x00Y: b\r\n\r\n", ErrFieldName},
		{"bad name char", "GET / HTTP/1.1\r\nHost: a\r\nBad[Name: b\r\n\r\n", ErrFieldName},
		{"non-ASCII name", "GET / HTTP/1.1\r\nHost: a\r\nX-T\xc3\xabst: b\r\n\r\n", ErrFieldName},
		{"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", ErrFieldName},
		{"no colon", "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", ErrFieldLine},
		{"bad method char", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", ErrMethod},
		{"NUL in method", "G\x00T / HTTP/1.1\r\nHost: a\r\n\r\n", ErrMethod},
		{"empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", ErrMethod},
		{"tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", ErrRequestLine},
		{"double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", ErrRequestLine},
		{"missing target", "GET HTTP/1.1\r\nHost: a\r\n\r\n", ErrRequestLine},
		{"HTTP/0.9", "GET /\r\n\r\n", ErrRequestLine},
		{"trailing space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", ErrVersion},
		{"lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", ErrVersion},
		{"version junk", "GET / HTTP/1.1x\r\nHost: a\r\n\r\n", ErrVersion},
		{"version missing minor", "GET / HTTP/1\r\nHost: a\r\n\r\n", ErrVersion},
		{"version leading zeros", "GET / HTTP/01.01\r\nHost: a\r\n\r\n", ErrVersion},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", ErrVersionNotSupported},
		{"HTTP/3.0", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", ErrVersionNotSupported},
		{"HTTP/0.9 versioned", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", ErrVersionNotSupported},
		{"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", ErrVersion},
		{"fragment in target", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"non-ASCII target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"NUL in target", "GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"bad pct-encoding", "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"truncated pct-encoding", "GET /%2 HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"asterisk with GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"absolute-form ftp", "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"absolute-form userinfo", "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"CONNECT without port", "CONNECT a HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"missing Host", "GET / HTTP/1.1\r\n\r\n", ErrMissingHost},
		{"duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", ErrDuplicateHost},
		{"duplicate Host identical", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", ErrDuplicateHost},
		{"duplicate Host on 1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", ErrDuplicateHost},
		{"empty Host", "GET / HTTP/1.1\r\nHost: \r\n\r\n", ErrHost},
		{"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", ErrHost},
		{"Host with path", "GET / HTTP/1.1\r\nHost: a/p\r\n\r\n", ErrHost},
		{"Host list", "GET / HTTP/1.1\r\nHost: a:80, b\r\n\r\n", ErrHost},
		{"Host bad port", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", ErrHost},
		{"unknown expectation", "GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", ErrExpectation},
		{"request line too long", "GET /" + long + " HTTP/1.1\r\nHost: a\r\n\r\n", ErrURITooLong},
		{"request line too long partial", "GET /" + long, ErrURITooLong},
		{"method too long", long + long, ErrRequestLine},
		{"garbage", "\xa3\xa3\xa3\xa3", ErrMethod},
		{"header section too large", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("b", DefaultMaxHeaderBytes) + "\r\n\r\n", ErrHeaderTooLarge},
		{"header section too large partial", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("b", DefaultMaxHeaderBytes), ErrHeaderTooLarge},
		{"too many headers", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: y\r\n", DefaultMaxHeaderCount) + "\r\n", ErrTooManyHeaders},
		{"chunk size sign", chunkedReq("+5\r\nhello\r\n0\r\n\r\n"), ErrChunkSize},
		{"chunk size negative", chunkedReq("-1\r\nhello\r\n0\r\n\r\n"), ErrChunkSize},
		{"chunk size 0x", chunkedReq("0x5\r\nhello\r\n0\r\n\r\n"), ErrChunkSize},
		{"chunk size empty", chunkedReq("\r\nhello\r\n0\r\n\r\n"), ErrChunkSize},
		{"chunk size overflow", chunkedReq("FFFFFFFFFFFFFFFF0\r\nhello\r\n0\r\n\r\n"), ErrChunkSize},
		{"chunk size junk", chunkedReq("5x\r\nhello\r\n0\r\n\r\n"), ErrChunkSize},
		{"chunk size trailing space", chunkedReq("5 \r\nhello\r\n0\r\n\r\n"), ErrChunkSize},
		{"chunk size leading space", chunkedReq(" 5\r\nhello\r\n0\r\n\r\n"), ErrChunkSize},
		{"chunk size underscore", chunkedReq("1_0\r\nhello world!!!!!\r\n0\r\n\r\n"), ErrChunkSize},
		{"chunk ext bare semicolon", chunkedReq("5;\r\nhello\r\n0\r\n\r\n"), ErrChunkExtension},
		{"chunk ext bad token", chunkedReq("5;bad[=x\r\nhello\r\n0\r\n\r\n"), ErrChunkExtension},
		{"chunk ext NUL", chunkedReq("5;\x00ext\r\nhello\r\n0\r\n\r\n"), ErrChunkExtension},
		{"chunk ext CR", chunkedReq("5;a\rX\r\nhello\r\n0\r\n\r\n"), ErrChunkExtension},
		{"chunk ext unbalanced quote", chunkedReq("5;a=\"b\r\nhello\r\n0\r\n\r\n"), ErrChunkExtension},
		{"chunk ext trailing space", chunkedReq("5;a \r\nhello\r\n0\r\n\r\n"), ErrChunkExtension},
		{"chunk data too long", chunkedReq("5\r\nhello!!\r\n0\r\n\r\n"), ErrChunkData},
		{"chunk data missing CRLF", chunkedReq("5\r\nhello0\r\n\r\n"), ErrChunkData},
		{"chunk bare CR after size", chunkedReq("5\rhello\r\n0\r\n\r\n"), ErrChunkSize},
		{"chunk bare LF after data", chunkedReq("5\r\nhello\n0\r\n\r\n"), ErrChunkData},
		{"chunk last-chunk bare LF", chunkedReq("0\n\r\n"), ErrBareLF},
		{"chunk missing last-chunk", chunkedReq("3\r\nfoo\r\n\r\n"), ErrChunkSize},
		{"chunked too large", chunkedReq("800001\r\n"), ErrBodyTooLarge},
		{"trailer obs-fold", chunkedReq("0\r\nX: a\r\n b\r\n\r\n"), ErrObsFold},
		{"trailer bad name", chunkedReq("0\r\nX Y: a\r\n\r\n"), ErrSpaceBeforeColon},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for mode, o := range map[string]outcome{
				"one-shot": oneShot(t, Limits{}, tc.in),
			} {
				if !errors.Is(o.Err, tc.want) {
					t.Fatalf("%s: got %v, want %v (status %d)", mode, o, tc.want, tc.want.Status)
				}
				if len(o.Reqs) != 0 {
					t.Fatalf("%s: a request was delivered before the error: %v", mode, o)
				}
			}
			if len(tc.in) < 4096 {
				if o := byteAtATime(t, Limits{}, tc.in); !errors.Is(o.Err, tc.want) {
					t.Fatalf("byte-at-a-time: got %v, want %v", o, tc.want)
				}
			}
		})
	}
}

func chunkedReq(body string) string {
	return "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body
}

func TestParseErrorIsSticky(t *testing.T) {
	p, _ := NewParser(Limits{})
	in := []byte("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
	for i := 0; i < 3; i++ {
		if _, req, err := p.Parse(in); err != ErrDuplicateHost || req != nil {
			t.Fatalf("call %d: %v %v", i, req, err)
		}
	}
	if p.Phase() != PhaseFailed {
		t.Fatalf("phase %v", p.Phase())
	}
	p.Reset()
	if _, req, err := p.Parse([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil || req == nil {
		t.Fatalf("after Reset: %v %v", req, err)
	}
}

func TestAllowBareLF(t *testing.T) {
	in := "\nGET / HTTP/1.1\nHost: a\nX: b\n\n" +
		"POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n3\nabc\n0\nT: v\n\n"
	o := oneShot(t, Limits{AllowBareLF: true}, in)
	if o.Err != nil || len(o.Reqs) != 2 || o.Reqs[1].Body != "abc" || o.Reqs[1].Trailers[0] != [2]string{"T", "v"} {
		t.Fatalf("%v", o)
	}
	if o := byteAtATime(t, Limits{AllowBareLF: true}, in); o.Err != nil || len(o.Reqs) != 2 {
		t.Fatalf("%v", o)
	}
}

func TestNeedMore(t *testing.T) {
	full := crlf("POST / HTTP/1.1\nHost: a\nContent-Length: 3\n\nabc")
	p, _ := NewParser(Limits{})
	for i := 0; i < len(full); i++ {
		n, req, err := p.Parse([]byte(full[:i]))
		if n != 0 || req != nil || err != nil {
			t.Fatalf("prefix %d: %d %v %v", i, n, req, err)
		}
	}
	n, req, err := p.Parse([]byte(full))
	if n != len(full) || req == nil || err != nil || string(req.Body()) != "abc" {
		t.Fatalf("%d %v %v", n, req, err)
	}
}

func TestPhases(t *testing.T) {
	p, _ := NewParser(Limits{})
	if p.Phase() != PhaseIdle {
		t.Fatal(p.Phase())
	}
	in := []byte("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
	if _, req, _ := p.Parse(in[:10]); req != nil || p.Phase() != PhaseHead {
		t.Fatal("want head phase")
	}
	if _, req, _ := p.Parse(in); req != nil || p.Phase() != PhaseBody {
		t.Fatal("want body phase")
	}
	if !p.ExpectContinue() || p.ExpectContinue() {
		t.Fatal("ExpectContinue must fire exactly once")
	}
	in = append(in, "abc"...)
	n, req, err := p.Parse(in)
	if err != nil || req == nil || n != len(in) || p.Phase() != PhaseIdle {
		t.Fatalf("%v %v %d %v", req, err, n, p.Phase())
	}
	if p.ExpectContinue() {
		t.Fatal("no continue after completion")
	}
}

func TestExpectContinueNotWhenBodyArrived(t *testing.T) {
	o := oneShot(t, Limits{}, crlf("POST / HTTP/1.1\nHost: a\nExpect: 100-continue\nContent-Length: 3\n\nabc"))
	if o.Continues != 0 || len(o.Reqs) != 1 || !o.Reqs[0].Expect100 {
		t.Fatal(o)
	}
	o = feed(t, Limits{}, [][]byte{[]byte(crlf("POST / HTTP/1.1\nHost: a\nExpect: 100-continue\nContent-Length: 3\n\n")), []byte("abc")})
	if o.Continues != 1 || len(o.Reqs) != 1 || o.Reqs[0].Body != "abc" {
		t.Fatal(o)
	}
	// No body, nothing to continue.
	o = feed(t, Limits{}, [][]byte{[]byte(crlf("GET / HTTP/1.1\nHost: a\nExpect: 100-continue\n\n"))})
	if o.Continues != 0 || len(o.Reqs) != 1 {
		t.Fatal(o)
	}
}

func TestInputShrank(t *testing.T) {
	p, _ := NewParser(Limits{})
	if _, _, err := p.Parse([]byte("GET / HTTP/1.1\r\nHost: a\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Parse([]byte("GET")); !errors.Is(err, ErrInputShrank) {
		t.Fatal(err)
	}
}

func TestNewParserLimits(t *testing.T) {
	for _, l := range []Limits{{MaxHeaderBytes: -1}, {MaxRequestLineBytes: 2 << 20}, {MaxBodyBytes: -5}, {MaxHeaderCount: 1 << 20}, {MaxChunkLineBytes: -1}} {
		if _, err := NewParser(l); !errors.Is(err, ErrInvalidLimits) {
			t.Fatalf("%+v: %v", l, err)
		}
		if _, err := NewChunkedDecoder(l); !errors.Is(err, ErrInvalidLimits) {
			t.Fatalf("%+v: %v", l, err)
		}
	}
	p, err := NewParser(Limits{MaxHeaderCount: 2})
	if err != nil || p.Limits().MaxHeaderCount != 2 || p.Limits().MaxBodyBytes != DefaultMaxBodyBytes {
		t.Fatal(p.Limits(), err)
	}
	o := oneShot(t, Limits{MaxHeaderCount: 2}, crlf("GET / HTTP/1.1\nHost: a\nA: 1\nB: 2\n\n"))
	if !errors.Is(o.Err, ErrTooManyHeaders) {
		t.Fatal(o)
	}
	o = oneShot(t, Limits{MaxBodyBytes: 4}, crlf("POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n3\nabc\n2\nde\n0\n\n"))
	if !errors.Is(o.Err, ErrBodyTooLarge) {
		t.Fatal(o)
	}
}

// splitCorpus is fed whole, in two pieces at every split point, and one byte at a time; all
// three must give identical results.
var splitCorpus = []string{
	crlf("GET /a?b=c HTTP/1.1\nHost: example.com\nUser-Agent: t\nAccept: */*\n\n"),
	crlf("POST /p HTTP/1.1\nHost: a\nContent-Length: 11\n\nhello world"),
	crlf("POST /c HTTP/1.1\nHost: a\nTransfer-Encoding: gzip, chunked\n\n"),
	crlf("POST /c HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n5;ext=1;q=\"x;y\"\nhello\n6\n world\nA\n0123456789\n0\nX-T: 1\nY: 2\n\n"),
	crlf("GET /1 HTTP/1.1\nHost: a\n\nPOST /2 HTTP/1.1\nHost: a\nContent-Length: 3\n\nabc\n\nPOST /3 HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n1\nx\n0\n\nGET /4 HTTP/1.1\nHost: a\nConnection: close\n\nGET /never HTTP/1.1\nHost: a\n\n"),
	crlf("GET / HTTP/1.0\nConnection: keep-alive\n\nGET / HTTP/1.0\n\nGET /after-close HTTP/1.0\n\n"),
	crlf("POST / HTTP/1.1\nHost: a\nExpect: 100-continue\nContent-Length: 4\n\nbody"),
	crlf("GET / HTTP/1.1\nHost: a\nX: a\n b\n\n"),
	crlf("POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n5\nhello!!\n0\n\n"),
	crlf("GET / HTTP/1.1\nHost: a\n\nGET /bad HTTP/1.1\nHost: a\nHost: b\n\n"),
	crlf("\n\nGET http://x.example/p?q HTTP/1.1\nHost: a\n\n"),
	crlf("GET /partial HTTP/1.1\nHost: a\nX-Incomplete: v"),
}

func TestSplitAtEveryByte(t *testing.T) {
	for ci, in := range splitCorpus {
		want := oneShot(t, Limits{}, in)
		for i := 0; i <= len(in); i++ {
			got := feed(t, Limits{}, [][]byte{[]byte(in[:i]), []byte(in[i:])})
			if !sameOutcome(got, want) {
				t.Fatalf("corpus %d split at %d:\n got %v\nwant %v", ci, i, got, want)
			}
		}
		if got := byteAtATime(t, Limits{}, in); !sameOutcome(got, want) {
			t.Fatalf("corpus %d byte at a time:\n got %v\nwant %v", ci, got, want)
		}
	}
}

// sameOutcome compares everything except Continues, which depends on how the body arrives.
func sameOutcome(a, b outcome) bool {
	a.Continues, b.Continues = 0, 0
	return reflect.DeepEqual(a, b)
}

func TestSplitCorpusExpectations(t *testing.T) {
	// Pin down what the corpus means, so the split test cannot pass on a parser that is
	// consistently wrong.
	o := oneShot(t, Limits{}, splitCorpus[4])
	var paths []string
	for _, r := range o.Reqs {
		paths = append(paths, r.Path+"="+r.Body)
	}
	if strings.Join(paths, ",") != "/1=,/2=abc,/3=x,/4=" || o.Err != nil || !o.Closed {
		t.Fatalf("pipelined corpus: %v %v", paths, o)
	}
	if o := oneShot(t, Limits{}, splitCorpus[5]); len(o.Reqs) != 2 || o.Reqs[1].KeepAlive || !o.Closed {
		t.Fatal(o)
	}
	if o := oneShot(t, Limits{}, splitCorpus[9]); len(o.Reqs) != 1 || o.Err != ErrDuplicateHost {
		t.Fatal(o)
	}
	if o := oneShot(t, Limits{}, splitCorpus[11]); len(o.Reqs) != 0 || o.Err != nil || o.Rest != len(splitCorpus[11]) {
		t.Fatal(o)
	}
}

func TestThousandPipelined(t *testing.T) {
	var b bytes.Buffer
	for i := 0; i < 1000; i++ {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "GET /r/%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
		case 1:
			body := strconv.Itoa(i)
			fmt.Fprintf(&b, "POST /r/%d HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", i, len(body), body)
		case 2:
			body := strconv.Itoa(i)
			fmt.Fprintf(&b, "PUT /r/%d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", i, len(body), body)
		}
	}
	p, _ := NewParser(Limits{})
	in := b.Bytes()
	for i := 0; i < 1000; i++ {
		n, req, err := p.Parse(in)
		if err != nil || req == nil {
			t.Fatalf("request %d: %v %v", i, req, err)
		}
		if string(req.Path()) != "/r/"+strconv.Itoa(i) {
			t.Fatalf("request %d out of order: %s", i, req.Path())
		}
		if i%3 != 0 && string(req.Body()) != strconv.Itoa(i) {
			t.Fatalf("request %d body %q", i, req.Body())
		}
		in = in[n:]
	}
	if len(in) != 0 {
		t.Fatalf("%d bytes left", len(in))
	}
}

// TestLinearByteAtATime counts the bytes the line scanner examines (not time) while a large
// header section and a large chunked body arrive one byte at a time.
func TestLinearByteAtATime(t *testing.T) {
	var b strings.Builder
	b.WriteString("POST / HTTP/1.1\r\nHost: a\r\n")
	for b.Len() < 40_000 {
		b.WriteString("X-Header-With-A-Long-Name: and a reasonably long value to scan\r\n")
	}
	b.WriteString("X-Long: " + strings.Repeat("v", 8000) + "\r\n")
	b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	b.WriteString("1f40;ext=" + strings.Repeat("e", 3000) + "\r\n" + strings.Repeat("d", 8000) + "\r\n")
	b.WriteString("0\r\nT: " + strings.Repeat("t", 5000) + "\r\n\r\n")
	in := []byte(b.String())

	p, _ := NewParser(Limits{MaxHeaderCount: 10000})
	for i := 1; i <= len(in); i++ {
		n, req, err := p.Parse(in[:i])
		if err != nil {
			t.Fatal(err)
		}
		if req != nil {
			if i != len(in) || n != len(in) || len(req.Body()) != 8000 {
				t.Fatalf("complete at %d of %d, body %d", i, len(in), len(req.Body()))
			}
		}
	}
	work := p.work + p.chunk.work
	if work > 2*len(in) {
		t.Fatalf("scanned %d bytes for %d bytes of input: not linear", work, len(in))
	}
	t.Logf("input %d bytes, scanned %d", len(in), work)
}

var getTenHeaders = []byte("GET /plaintext?x=1 HTTP/1.1\r\n" +
	"Host: server.example.com:8080\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: session=0123456789abcdef; theme=dark\r\n" +
	"Cache-Control: max-age=0\r\n" +
	"If-None-Match: \"abc123\"\r\n" +
	"Upgrade-Insecure-Requests: 1\r\n" +
	"\r\n")

func TestZeroAllocGET(t *testing.T) {
	p, _ := NewParser(Limits{})
	// Warm the reusable header storage.
	if _, req, err := p.Parse(getTenHeaders); err != nil || req == nil || req.NumHeaders() != 10 {
		t.Fatal(req, err)
	}
	allocs := testing.AllocsPerRun(200, func() {
		n, req, err := p.Parse(getTenHeaders)
		if err != nil || req == nil || n != len(getTenHeaders) {
			panic("parse failed")
		}
		if v, ok := req.Header("user-agent"); !ok || len(v) == 0 || len(req.Path()) == 0 {
			panic("lookup failed")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per request, want 0", allocs)
	}
}

func TestZeroAllocChunked(t *testing.T) {
	in := []byte(chunkedReq("5\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n"))
	p, _ := NewParser(Limits{})
	p.Parse(in)
	allocs := testing.AllocsPerRun(200, func() {
		if _, req, err := p.Parse(in); err != nil || req == nil || string(req.Body()) != "hello world" {
			panic("parse failed")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per request, want 0", allocs)
	}
}

func TestRequestAccessors(t *testing.T) {
	p, _ := NewParser(Limits{})
	_, req, err := p.Parse([]byte(crlf("DELETE /x HTTP/1.1\nHost: a\nX-A: 1\nx-a: 2\n\n")))
	if err != nil {
		t.Fatal(err)
	}
	if req.MethodString() != "DELETE" || req.HeaderString("X-a") != "1" || req.HeaderString("missing") != "" {
		t.Fatal(req.MethodString(), req.HeaderString("X-a"))
	}
	if n, v := req.HeaderAt(5); n != nil || v != nil {
		t.Fatal("out of range HeaderAt")
	}
	if n, v := req.TrailerAt(0); n != nil || v != nil {
		t.Fatal("out of range TrailerAt")
	}
	if _, ok := req.Trailer("x"); ok {
		t.Fatal("no trailers expected")
	}
	if req.Query() != nil || req.IsHead() || req.Body() == nil && req.ContentLength() != 0 {
		t.Fatal("accessors")
	}
	_, req, _ = p.Parse([]byte(crlf("FOO /x HTTP/1.1\nHost: a\n\n")))
	if req.MethodString() != "FOO" {
		t.Fatal(req.MethodString())
	}
	p.Release()
	if p.Phase() != PhaseIdle {
		t.Fatal(p.Phase())
	}
	if _, req, err := p.Parse(getTenHeaders); err != nil || req.NumHeaders() != 10 {
		t.Fatal(err)
	}
}
