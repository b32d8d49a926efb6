package http

import (
	"encoding/json"
	"errors"
	nethttp "net/http"
	"strings"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

// jsonErrors is an ErrorBody hook in the shape a JSON API would write.
func jsonErrors(dst []byte, err *ParseError) ([]byte, string) {
	dst = append(dst, `{"error":"`...)
	dst = append(dst, err.Reason...)
	dst = append(dst, `","status":`...)
	dst = appendInt(dst, err.Status)
	return append(dst, '}'), "application/json"
}

func appendInt(dst []byte, n int) []byte {
	var b [8]byte
	i := len(b)
	for n > 0 || i == len(b) {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return append(dst, b[i:]...)
}

// TestErrorBodyHook: every response the codec makes itself takes the hook's body and type;
// the status and the close stay the codec's.
func TestErrorBodyHook(t *testing.T) {
	h := HandlerFunc(func(w *ResponseWriter, r *Request) {
		if string(r.Path()) == "/panic" {
			panic("boom")
		}
		w.WriteString("ok")
	})
	_, addr := startServer(t, h, WithErrorBody(jsonErrors),
		WithLimits(Limits{MaxRequestLineBytes: 64, MaxHeaderBytes: 256, MaxBodyBytes: 8}),
		WithReadHeaderTimeout(testsupport.Scale(200*time.Millisecond)),
		WithReactorOptions(reactor.WithLoops(1)))
	tests := []struct {
		name, raw string
		status    int
		reason    string
	}{
		{"400", "GET / HTTP/1.1\r\n\r\n", 400, ErrMissingHost.Reason},
		{"408", "GET / HTTP/1.1\r\nHost: x\r\n", 408, ErrRequestTimeout.Reason},
		{"413", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n123456789", 413, ErrBodyTooLarge.Reason},
		{"414", "GET /" + strings.Repeat("a", 100) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414, ErrURITooLong.Reason},
		{"431", "GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("b", 300) + "\r\n\r\n", 431, ErrHeaderTooLarge.Reason},
		{"505", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, ErrVersionNotSupported.Reason},
		{"500", "GET /panic HTTP/1.1\r\nHost: x\r\n\r\n", 500, ErrHandlerPanic.Reason},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl := dialClient(t, addr)
			cl.send(tc.raw)
			resp, body := cl.read("GET")
			var got struct {
				Error  string
				Status int
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if resp.StatusCode != tc.status || got.Status != tc.status || got.Error != tc.reason ||
				resp.Header.Get("Content-Type") != "application/json" || !resp.Close {
				t.Fatalf("%d %v %q; want %d, JSON {%q, %d}, Connection: close", resp.StatusCode, resp.Header, body, tc.status, tc.reason, tc.status)
			}
			if !cl.closed() {
				t.Fatal("connection still open after the error response")
			}
		})
	}
	// A normal request is untouched.
	cl := dialClient(t, addr)
	cl.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := cl.read("GET"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("normal request: %d %q", resp.StatusCode, body)
	}
}

func TestErrorBodyHookAdapterPanic(t *testing.T) {
	h := Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) { panic("boom") }))
	_, addr := startServer(t, h, WithErrorBody(jsonErrors), WithWorkers(1))
	cl := dialClient(t, addr)
	cl.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := cl.read("GET")
	if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "application/json" || body != `{"error":"internal error","status":500}` {
		t.Fatalf("%d %v %q", resp.StatusCode, resp.Header, body)
	}
}

func TestErrorBodyFallbackAndOption(t *testing.T) {
	var c config
	c.errorBody = func(dst []byte, err *ParseError) ([]byte, string) { return append(dst, "x"...), "bad\r\ntype" }
	got := string(c.appendError(nil, ErrMissingHost, nil, nil))
	if got != string(AppendError(nil, ErrMissingHost, nil)) {
		t.Fatalf("invalid content type not refused: %q", got)
	}
	if _, err := NewServer(HandlerFunc(func(*ResponseWriter, *Request) {}), WithErrorBody(nil)); !errors.Is(err, ErrInvalidOption) ||
		!strings.Contains(err.Error(), "WithErrorBody(nil)") {
		t.Fatalf("WithErrorBody(nil) = %v", err)
	}
	// A non-ParseError is a 400 for the hook too.
	c.errorBody = jsonErrors
	if got := string(c.appendError(nil, errors.New("x"), nil, nil)); !strings.HasPrefix(got, "HTTP/1.1 400 Bad Request\r\n") ||
		!strings.HasSuffix(got, `{"error":"bad request","status":400}`) {
		t.Fatalf("non-ParseError: %q", got)
	}
}

// TestErrorBodyNoAllocOnLoop: with a loop's scratch, an appending hook costs no allocation.
func TestErrorBodyNoAllocOnLoop(t *testing.T) {
	c := config{errorBody: jsonErrors}
	var scratch []byte
	out := make([]byte, 0, 1024)
	date := []byte("Mon, 02 Jan 2006 15:04:05 GMT")
	c.appendError(out, ErrHeaderTooLarge, date, &scratch)
	if a := testing.AllocsPerRun(100, func() { out = c.appendError(out[:0], ErrHeaderTooLarge, date, &scratch) }); a != 0 {
		t.Fatalf("%v allocations", a)
	}
}
