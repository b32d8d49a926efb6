package proxy

import (
	"bufio"
	"io"
	nethttp "net/http"
	"reflect"
	"strings"
	"testing"

	codec "github.com/reactord/reactord/codec/http"
)

// parseReq parses one raw request with the codec (CRLF from "\n" unless raw).
func parseReq(t testing.TB, raw string) *codec.Request {
	t.Helper()
	p, err := codec.NewParser(codec.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	n, r, err := p.Parse([]byte(raw))
	if err != nil || r == nil || n != len(raw) {
		t.Fatalf("parse %q: n=%d req=%v err=%v", raw, n, r != nil, err)
	}
	return r
}

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// upstreamView parses the forwarded bytes as the upstream would (net/http), checking that
// they hold exactly one request.
func upstreamView(t *testing.T, out []byte) (*nethttp.Request, string) {
	t.Helper()
	// Our own strict parser first: one request, all bytes.
	p, _ := codec.NewParser(codec.Limits{})
	n, r, err := p.Parse(out)
	if err != nil || r == nil || n != len(out) {
		t.Fatalf("forwarded request is not exactly one request for the codec: n=%d/%d err=%v\n%q", n, len(out), err, out)
	}
	br := bufio.NewReader(strings.NewReader(string(out)))
	req, err := nethttp.ReadRequest(br)
	if err != nil {
		t.Fatalf("net/http: %v\n%q", err, out)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	if br.Buffered() != 0 {
		t.Fatalf("net/http left %d bytes: a second request", br.Buffered())
	}
	return req, string(body)
}

func TestAppendRequest(t *testing.T) {
	fw := &forward{clientIP: []byte("192.0.2.7"), proto: "http", emptyHost: "10.0.0.1:9000"}
	tests := []struct {
		name    string
		in      string
		line    string // METHOD URI
		host    string
		body    string
		header  map[string][]string // expected values; nil value: must be absent
		upgrade bool
	}{
		{"plain GET", "GET /a?b=1 HTTP/1.1\nHost: example.com\nUser-Agent: t\nAccept: */*\n\n", "GET /a?b=1", "example.com", "",
			map[string][]string{"User-Agent": {"t"}, "Accept": {"*/*"}, "X-Forwarded-For": {"192.0.2.7"},
				"X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"example.com"}, "Via": {"1.1 reactord"}, "Content-Length": nil}, false},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\n\n", "GET /", "10.0.0.1:9000", "", map[string][]string{"X-Forwarded-Host": {"10.0.0.1:9000"}}, false},
		{"hop-by-hop removed", "GET / HTTP/1.1\nHost: h\nConnection: keep-alive, X-Secret\nKeep-Alive: timeout=5\nX-Secret: s\nTE: trailers\n" +
			"Proxy-Authorization: Basic x\nProxy-Connection: keep-alive\nTrailer: X-T\nUpgrade: websocket\nX-Other: o\n\n", "GET /", "h", "",
			map[string][]string{"Connection": nil, "Keep-Alive": nil, "X-Secret": nil, "Te": nil, "Proxy-Authorization": nil,
				"Proxy-Connection": nil, "Trailer": nil, "Upgrade": nil, "X-Other": {"o"}}, false},
		{"X-Forwarded-For extended", "GET / HTTP/1.1\nHost: h\nX-Forwarded-For: 198.51.100.1\nX-Forwarded-For: 198.51.100.2\nX-Forwarded-Proto: https\nX-Forwarded-Host: evil\nVia: 1.0 fred\n\n",
			"GET /", "h", "", map[string][]string{"X-Forwarded-For": {"198.51.100.1, 198.51.100.2, 192.0.2.7"},
				"X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"h"}, "Via": {"1.0 fred, 1.1 reactord"}}, false},
		{"X-Forwarded-For between other fields", "GET / HTTP/1.1\nHost: h\nX-Forwarded-For: 198.51.100.1\nAccept: a\nX-Forwarded-For:\nCookie: c\n\n",
			"GET /", "h", "", map[string][]string{"X-Forwarded-For": {"198.51.100.1, 192.0.2.7"}, "Accept": {"a"}, "Cookie": {"c"}}, false},
		{"chunked body re-framed", "POST /up HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\nExpect: 100-continue\n\n5\nhello\n6\n world\n0\nX-T: v\n\n",
			"POST /up", "h", "hello world", map[string][]string{"Content-Length": {"11"}, "Transfer-Encoding": nil, "Expect": nil}, false},
		{"content-length body", "PUT /p HTTP/1.1\nHost: h\nContent-Length: 3\n\nabc", "PUT /p", "h", "abc", map[string][]string{"Content-Length": {"3"}}, false},
		{"empty POST keeps Content-Length", "POST /p HTTP/1.1\nHost: h\nContent-Length: 0\n\n", "POST /p", "h", "", map[string][]string{"Content-Length": {"0"}}, false},
		{"upgrade", "GET /ws HTTP/1.1\nHost: h\nConnection: Upgrade\nUpgrade: websocket\nSec-WebSocket-Key: k\n\n", "GET /ws", "h", "",
			map[string][]string{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Key": {"k"}}, true},
		{"absolute-form", "GET http://origin.example:8080/x?y HTTP/1.1\nHost: ignored\n\n", "GET /x?y", "origin.example:8080", "", nil, false},
		{"absolute-form, empty path", "GET http://origin.example HTTP/1.1\nHost: ignored\n\n", "GET /", "origin.example", "", nil, false},
		{"asterisk", "OPTIONS * HTTP/1.1\nHost: h\n\n", "OPTIONS *", "h", "", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := parseReq(t, crlf(tc.in))
			out, upgrade := appendRequest(nil, r, fw)
			if upgrade != tc.upgrade {
				t.Fatalf("upgrade %v", upgrade)
			}
			req, body := upstreamView(t, out)
			if got := req.Method + " " + req.RequestURI; got != tc.line {
				t.Fatalf("request-line %q, want %q", got, tc.line)
			}
			if req.Proto != "HTTP/1.1" || req.Host != tc.host || body != tc.body {
				t.Fatalf("proto %s host %q body %q\n%s", req.Proto, req.Host, body, out)
			}
			for k, want := range tc.header {
				got := req.Header[k]
				if k == "Content-Length" && want != nil {
					got = []string{req.Header.Get("Content-Length")}
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: %q, want %q\n%s", k, got, want, out)
				}
			}
		})
	}
}

func TestAppendRequestZeroAlloc(t *testing.T) {
	r := parseReq(t, crlf("GET /plaintext HTTP/1.1\nHost: localhost\nUser-Agent: bench\nAccept: */*\nConnection: keep-alive\nX-Forwarded-For: 10.1.1.1\n\n"))
	fw := &forward{clientIP: []byte("127.0.0.1"), proto: "http"}
	buf := make([]byte, 0, 1024)
	if a := testing.AllocsPerRun(1000, func() { buf, _ = appendRequest(buf[:0], r, fw) }); a != 0 {
		t.Fatalf("%.1f allocations per request", a)
	}
}

func TestClassify(t *testing.T) {
	for name, want := range map[string]fieldKind{
		"connection": fieldHop, "KEEP-ALIVE": fieldHop, "Te": fieldHop, "proxy-connection": fieldHop,
		"Proxy-Authorization": fieldHop, "proxy-authenticate": fieldHop, "Content-Length": fieldFraming,
		"transfer-encoding": fieldFraming, "host": fieldHost, "x-forwarded-for": fieldXFF, "Via": fieldVia,
		"upgrade": fieldUpgrade, "expect": fieldExpect, "trailer": fieldTrailer, "x-forwarded-proto": fieldXForwardedOwn,
		"x-forwarded-host": fieldXForwardedOwn, "accept": fieldCopy, "cookie": fieldCopy, "te2": fieldCopy,
	} {
		if got := classify([]byte(name)); got != want {
			t.Errorf("classify(%q) = %d, want %d", name, got, want)
		}
	}
	var c connTokens
	c.add([]byte(" keep-alive ,X-A,, upgrade"))
	if !c.upgrade || !c.has([]byte("x-a")) || c.has([]byte("x-b")) || c.close {
		t.Fatalf("%+v", c)
	}
}
