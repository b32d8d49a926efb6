package http

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	nethttp "net/http"
	"strings"
	"testing"
	"time"
)

func mustReq(t testing.TB, raw string) *Request {
	t.Helper()
	p, _ := NewParser(Limits{})
	_, req, err := p.Parse([]byte(raw))
	if err != nil || req == nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	return req
}

var (
	get11   = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	head11  = "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
	get10   = "GET / HTTP/1.0\r\n\r\n"
	get10k  = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
	close11 = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
)

// readBack parses a serialized response with net/http as an independent client would.
func readBack(t *testing.T, out []byte, method string) (*nethttp.Response, string) {
	t.Helper()
	resp, err := nethttp.ReadResponse(bufio.NewReader(bytes.NewReader(out)), &nethttp.Request{Method: method})
	if err != nil {
		t.Fatalf("net/http cannot read %q: %v", out, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("body of %q: %v", out, err)
	}
	return resp, string(body)
}

func TestResponseFraming(t *testing.T) {
	tests := []struct {
		name      string
		req       string
		handler   func(w *ResponseWriter) error
		want      string // exact serialization
		keepAlive bool
	}{
		{"auto content-length", get11, func(w *ResponseWriter) error {
			w.Set("Content-Type", "text/plain")
			_, err := w.WriteString("Hello, World!")
			return err
		}, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!", true},
		{"empty body", get11, func(w *ResponseWriter) error { return nil },
			"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
		{"flush switches to chunked", get11, func(w *ResponseWriter) error {
			w.WriteString("abc")
			if err := w.Flush(); err != nil {
				return err
			}
			_, err := w.WriteString("defghijklmnopq")
			return err
		}, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\ne\r\ndefghijklmnopq\r\n0\r\n\r\n", true},
		{"HTTP/1.0 flush is close-delimited", get10k, func(w *ResponseWriter) error {
			w.WriteString("abc")
			w.Flush()
			_, err := w.WriteString("def")
			return err
		}, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabcdef", false},
		{"HTTP/1.0 keep-alive echoed", get10k, func(w *ResponseWriter) error { _, err := w.WriteString("x"); return err },
			"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\nx", true},
		{"HTTP/1.0 default close", get10, func(w *ResponseWriter) error { return nil },
			"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false},
		{"request close", close11, func(w *ResponseWriter) error { return nil },
			"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false},
		{"handler close", get11, func(w *ResponseWriter) error { return w.Set("Connection", "close") },
			"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false},
		{"HEAD keeps length, drops body", head11, func(w *ResponseWriter) error {
			_, err := w.WriteString("0123456789")
			return err
		}, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true},
		{"HEAD flushed", head11, func(w *ResponseWriter) error {
			w.WriteString("0123456789")
			return w.Flush()
		}, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true},
		{"declared length goes direct", get11, func(w *ResponseWriter) error {
			w.SetContentLength(6)
			w.WriteString("abc")
			if !w.Committed() {
				return errors.New("head not committed on first write")
			}
			_, err := w.WriteString("def")
			return err
		}, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef", true},
		{"buffered then declared", get11, func(w *ResponseWriter) error {
			w.WriteString("ab")
			w.SetContentLength(4)
			_, err := w.WriteString("cd")
			return err
		}, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd", true},
		{"204 no content-length", get11, func(w *ResponseWriter) error {
			w.SetStatus(204)
			w.SetContentLength(5)
			if _, err := w.WriteString("x"); !errors.Is(err, ErrBodyNotAllowed) {
				return errors.New("204 body accepted")
			}
			return nil
		}, "HTTP/1.1 204 No Content\r\n\r\n", true},
		{"304 keeps explicit length", get11, func(w *ResponseWriter) error {
			w.SetStatus(304)
			w.Set("ETag", `"x"`)
			return w.Set("Content-Length", "42")
		}, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 42\r\n\r\n", true},
		{"103 early hints then 200", get11, func(w *ResponseWriter) error {
			w.Add("Link", "</s.css>; rel=preload")
			if err := w.WriteInformational(103); err != nil {
				return err
			}
			_, err := w.WriteString("ok")
			return err
		}, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nLink: </s.css>; rel=preload\r\nContent-Length: 2\r\n\r\nok", true},
		{"1xx suppressed for HTTP/1.0", get10, func(w *ResponseWriter) error { return w.WriteInformational(100) },
			"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false},
		{"unregistered status", get11, func(w *ResponseWriter) error { return w.SetStatus(299) },
			"HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n", true},
		{"set replaces, add appends, del removes", get11, func(w *ResponseWriter) error {
			w.Add("X-A", "1")
			w.Add("x-a", "2")
			w.Add("X-B", "b")
			w.Set("X-A", "3")
			w.Add("X-C", "c")
			return w.Del("x-b")
		}, "HTTP/1.1 200 OK\r\nX-A: 3\r\nX-C: c\r\nContent-Length: 0\r\n\r\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var w ResponseWriter
			req := mustReq(t, tc.req)
			w.Begin(nil, req)
			if err := tc.handler(&w); err != nil {
				t.Fatal(err)
			}
			if err := w.Finish(); err != nil {
				t.Fatal(err)
			}
			if got := string(w.Bytes()); got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
			if w.KeepAlive() != tc.keepAlive {
				t.Fatalf("KeepAlive %v, want %v", w.KeepAlive(), tc.keepAlive)
			}
			// An independent client agrees with the framing (skip 1xx prefixes).
			out := w.Bytes()
			for bytes.HasPrefix(out, []byte("HTTP/1.1 1")) {
				out = out[bytes.Index(out, []byte("\r\n\r\n"))+4:]
			}
			method := "GET"
			if req.IsHead() {
				method = "HEAD"
			}
			resp, body := readBack(t, out, method)
			chunked := len(resp.TransferEncoding) > 0
			if !req.IsHead() && !chunked && resp.StatusCode != 204 && resp.StatusCode != 304 && !strings.HasSuffix(tc.want, body) {
				t.Fatalf("client read body %q", body)
			}
		})
	}
}

func TestResponseHeaderValidation(t *testing.T) {
	var w ResponseWriter
	if err := w.Set("A", "b"); !errors.Is(err, ErrNotStarted) {
		t.Fatal(err)
	}
	w.Begin(nil, mustReq(t, get11))
	bad := []struct {
		name, value string
		want        error
	}{
		{"X-Inject", "a\r\nSet-Cookie: evil=1", ErrInvalidHeaderValue},
		{"X-LF", "a\nb", ErrInvalidHeaderValue},
		{"X-CR", "a\rb", ErrInvalidHeaderValue},
		{"X-NUL", "a\x00b", ErrInvalidHeaderValue},
		{"X-Bell", "a\x07", ErrInvalidHeaderValue},
		{"Bad Name", "v", ErrInvalidHeaderName},
		{"Bad:Name", "v", ErrInvalidHeaderName},
		{"X\r\nEvil", "v", ErrInvalidHeaderName},
		{"", "v", ErrInvalidHeaderName},
		{"Transfer-Encoding", "chunked", ErrReservedHeader},
		{"Connection", "upgrade", ErrReservedHeader},
		{"Content-Length", "-1", ErrInvalidContentLength},
		{"Content-Length", "1x", ErrInvalidContentLength},
	}
	for _, b := range bad {
		if err := w.Set(b.name, b.value); !errors.Is(err, b.want) {
			t.Errorf("Set(%q, %q) = %v, want %v", b.name, b.value, err, b.want)
		}
		if err := w.AddBytes(b.name, []byte(b.value)); !errors.Is(err, b.want) {
			t.Errorf("AddBytes(%q, %q) = %v, want %v", b.name, b.value, err, b.want)
		}
	}
	if err := w.SetStatus(99); !errors.Is(err, ErrInvalidStatus) {
		t.Fatal(err)
	}
	if err := w.SetStatus(1000); !errors.Is(err, ErrInvalidStatus) {
		t.Fatal(err)
	}
	if err := w.WriteInformational(101); !errors.Is(err, ErrInvalidStatus) {
		t.Fatal(err)
	}
	if err := w.WriteInformational(200); !errors.Is(err, ErrInvalidStatus) {
		t.Fatal(err)
	}
	if err := w.SetContentLength(-1); !errors.Is(err, ErrInvalidContentLength) {
		t.Fatal(err)
	}
	if err := w.SetServer("x\r\ny"); !errors.Is(err, ErrInvalidHeaderValue) {
		t.Fatal(err)
	}
	w.SetBytes("X-Ok", []byte("tab\tand obs-text \xff"))
	if v, ok := w.Get("x-ok"); !ok || string(v) != "tab\tand obs-text \xff" {
		t.Fatalf("%q %v", v, ok)
	}
	w.Finish()
	if strings.Contains(string(w.Bytes()), "evil") || strings.Contains(string(w.Bytes()), "Evil") {
		t.Fatalf("injected: %q", w.Bytes())
	}
	if err := w.Set("A", "b"); !errors.Is(err, ErrFinished) {
		t.Fatal(err)
	}
	if _, err := w.WriteString("x"); !errors.Is(err, ErrFinished) {
		t.Fatal(err)
	}
	if err := w.Finish(); !errors.Is(err, ErrFinished) {
		t.Fatal(err)
	}
}

func TestResponseStateErrors(t *testing.T) {
	var w ResponseWriter
	w.Begin(nil, mustReq(t, get11))
	w.Flush()
	if err := w.SetStatus(404); !errors.Is(err, ErrHeadersSent) {
		t.Fatal(err)
	}
	if err := w.Set("X", "y"); !errors.Is(err, ErrHeadersSent) {
		t.Fatal(err)
	}
	w.Finish()

	w.Begin(nil, mustReq(t, get11))
	w.SetContentLength(3)
	if _, err := w.WriteString("abcd"); !errors.Is(err, ErrContentLengthMismatch) {
		t.Fatal(err)
	}
	w.WriteString("ab")
	if err := w.Finish(); !errors.Is(err, ErrContentLengthMismatch) || w.KeepAlive() {
		t.Fatalf("short body: %v keepAlive=%v", err, w.KeepAlive())
	}

	w.Begin(nil, mustReq(t, get11))
	w.SetContentLength(3)
	if err := w.Finish(); !errors.Is(err, ErrContentLengthMismatch) || w.KeepAlive() {
		t.Fatal(err)
	}
	var z ResponseWriter
	for _, err := range []error{z.Flush(), z.Finish(), z.SetStatus(200), z.Del("x")} {
		if !errors.Is(err, ErrNotStarted) {
			t.Fatal(err)
		}
	}
	if _, err := z.Write([]byte("x")); !errors.Is(err, ErrNotStarted) {
		t.Fatal(err)
	}
}

func TestResponseDateServerAndHook(t *testing.T) {
	var dc DateCache
	if dc.Bytes() != nil {
		t.Fatal("empty cache must return nil")
	}
	now := time.Date(2025, 11, 26, 1, 2, 3, 0, time.FixedZone("X", 3600))
	if got := string(dc.Update(now)); got != "Wed, 26 Nov 2025 00:02:03 GMT" {
		t.Fatal(got)
	}
	if _, err := time.Parse(TimeFormat, string(dc.Bytes())); err != nil {
		t.Fatal(err)
	}
	var w ResponseWriter
	w.SetDateCache(&dc)
	if err := w.SetServer("reactord"); err != nil {
		t.Fatal(err)
	}
	var chunks []string
	w.SetFlushHook(func(b []byte) { chunks = append(chunks, string(b)) })
	w.Begin(nil, mustReq(t, get11))
	w.WriteString("a")
	w.Flush()
	w.WriteString("b")
	w.Finish()
	want := []string{
		"HTTP/1.1 200 OK\r\nDate: Wed, 26 Nov 2025 00:02:03 GMT\r\nServer: reactord\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n",
		"1\r\nb\r\n0\r\n\r\n",
	}
	if strings.Join(chunks, "|") != strings.Join(want, "|") {
		t.Fatalf("%q", chunks)
	}
	// User-set Date and Server replace the automatic ones.
	w.SetFlushHook(nil)
	w.Begin(nil, mustReq(t, get11))
	w.Set("Date", "x")
	w.Set("Server", "y")
	w.Finish()
	if got := string(w.TakeOutput()); got != "HTTP/1.1 200 OK\r\nDate: x\r\nServer: y\r\nContent-Length: 0\r\n\r\n" {
		t.Fatal(got)
	}
	if len(w.Bytes()) != 0 {
		t.Fatal("TakeOutput must reset")
	}
	// The cache only reformats when the second changes.
	b := dc.Update(now.Add(500 * time.Millisecond))
	if string(b) != "Wed, 26 Nov 2025 00:02:03 GMT" {
		t.Fatal(string(b))
	}
	if string(dc.Update(now.Add(time.Second))) != "Wed, 26 Nov 2025 00:02:04 GMT" {
		t.Fatal(string(dc.Bytes()))
	}
}

func TestAppendErrorAndContinue(t *testing.T) {
	date := []byte("Wed, 26 Nov 2025 00:02:03 GMT")
	for _, e := range []*ParseError{ErrMissingHost, ErrURITooLong, ErrHeaderTooLarge, ErrBodyTooLarge,
		ErrUnknownTransferCoding, ErrVersionNotSupported, ErrExpectation, ErrRequestTimeout} {
		out := AppendError(nil, e, date)
		resp, body := readBack(t, out, "GET")
		if resp.StatusCode != e.Status || !resp.Close || body != StatusText(e.Status)+": "+e.Reason+"\n" {
			t.Fatalf("%v: %d close=%v %q", e, resp.StatusCode, resp.Close, body)
		}
		if resp.Header.Get("Date") != string(date) {
			t.Fatal(resp.Header)
		}
	}
	out := AppendError([]byte("prefix"), errors.New("other"), nil)
	if !bytes.HasPrefix(out, []byte("prefixHTTP/1.1 400 Bad Request\r\n")) {
		t.Fatalf("%q", out)
	}
	if string(AppendContinue(nil)) != "HTTP/1.1 100 Continue\r\n\r\n" {
		t.Fatal("continue")
	}
	buf := make([]byte, 0, 512)
	if a := testing.AllocsPerRun(100, func() { buf = AppendError(buf[:0], ErrDuplicateHost, date) }); a != 0 {
		t.Fatalf("AppendError allocates %v", a)
	}
}

func TestStatusText(t *testing.T) {
	for code, want := range map[int]string{100: "Continue", 103: "Early Hints", 200: "OK", 208: "Already Reported",
		226: "IM Used", 308: "Permanent Redirect", 413: "Content Too Large", 421: "Misdirected Request",
		422: "Unprocessable Content", 425: "Too Early", 431: "Request Header Fields Too Large",
		451: "Unavailable For Legal Reasons", 511: "Network Authentication Required", 299: "", 600: ""} {
		if got := StatusText(code); got != want {
			t.Errorf("StatusText(%d) = %q, want %q", code, got, want)
		}
	}
	// Our phrases match net/http's wherever both define one, except where RFC 9110 changed the
	// registered wording (413, 414, 416, 422) and the "(Unused)" registrations 306 and 418.
	renamed := map[int]bool{306: true, 413: true, 414: true, 416: true, 418: true, 422: true}
	for code := 100; code < 600; code++ {
		ours, theirs := StatusText(code), nethttp.StatusText(code)
		if ours != "" && theirs != "" && ours != theirs && !renamed[code] {
			t.Errorf("%d: %q vs net/http %q", code, ours, theirs)
		}
	}
}

func TestResponseZeroAlloc(t *testing.T) {
	req := mustReq(t, getTenHeaders2())
	var dc DateCache
	dc.Update(time.Now())
	var w ResponseWriter
	w.SetDateCache(&dc)
	out := make([]byte, 0, 4096)
	run := func() {
		w.Begin(out[:0], req)
		w.Set("Content-Type", "text/plain")
		w.WriteString("Hello, World!")
		w.Finish()
		out = w.Bytes()
	}
	run()
	if a := testing.AllocsPerRun(200, run); a != 0 {
		t.Fatalf("%v allocations per response", a)
	}
}

func getTenHeaders2() string { return string(getTenHeaders) }
