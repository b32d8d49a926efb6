package rhttptest

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	rhttp "github.com/reactord/reactord/codec/http"
)

// echo answers with the method, path and body it received.
var echo = rhttp.HandlerFunc(func(w *rhttp.ResponseWriter, r *rhttp.Request) {
	w.Set("Content-Type", "text/plain")
	w.Set("X-Method", r.MethodString())
	fmt.Fprintf(w, "%s %s %s", r.Method(), r.Path(), r.Body())
})

func TestDo(t *testing.T) {
	resp := Do(t, echo, httptest.NewRequest("POST", "/things?x=1", strings.NewReader("payload")))
	if resp.Status != 200 || string(resp.Body) != "POST /things payload" || resp.Header.Get("X-Method") != "POST" || resp.Close {
		t.Fatalf("response %d %q %v close=%v", resp.Status, resp.Body, resp.Header, resp.Close)
	}
	if !strings.HasPrefix(string(resp.Raw), "HTTP/1.1 200 OK\r\n") || resp.WriterErr != nil || resp.ParseErr != nil {
		t.Fatalf("raw %q, errs %v %v", resp.Raw, resp.WriterErr, resp.ParseErr)
	}
	// HEAD: same headers, no body.
	head := Do(t, echo, httptest.NewRequest("HEAD", "/h", nil))
	if head.Status != 200 || len(head.Body) != 0 || head.Header.Get("Content-Length") != "8" {
		t.Fatalf("HEAD: %d %q %v", head.Status, head.Body, head.Header)
	}
}

func TestDoRawPipelinedAndClose(t *testing.T) {
	raw := "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" +
		"GET /never HTTP/1.1\r\nHost: x\r\n\r\n"
	resps := DoRaw(t, echo, raw)
	if len(resps) != 2 {
		t.Fatalf("%d responses, want 2 (nothing after Connection: close)", len(resps))
	}
	if string(resps[0].Body) != "GET /a " || resps[0].Close || string(resps[1].Body) != "GET /b " || !resps[1].Close {
		t.Fatalf("responses %q/%v, %q/%v", resps[0].Body, resps[0].Close, resps[1].Body, resps[1].Close)
	}
}

func TestMalformedRequestGetsTheCodecsAnswer(t *testing.T) {
	called := false
	h := rhttp.HandlerFunc(func(w *rhttp.ResponseWriter, r *rhttp.Request) { called = true })
	tests := []struct {
		raw    string
		status int
		err    error
	}{
		{"GET / HTTP/1.1\r\n\r\n", 400, rhttp.ErrMissingHost},
		{"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, rhttp.ErrVersionNotSupported},
		{"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nab", 400, rhttp.ErrDuplicateContentLength},
	}
	for _, tc := range tests {
		resps := DoRaw(t, h, tc.raw)
		if len(resps) != 1 || resps[0].Status != tc.status || !errors.Is(resps[0].ParseErr, tc.err) || !resps[0].Close {
			t.Errorf("%q: %+v", tc.raw, resps[0])
		}
	}
	if called {
		t.Error("the handler ran for a malformed request")
	}
	// Limits apply: a body above MaxBodyBytes is 413.
	resps, err := Exchange(h, []byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n01234567890123456789"), rhttp.Limits{MaxBodyBytes: 10})
	if err != nil || len(resps) != 1 || resps[0].Status != 413 {
		t.Fatalf("413: %v %+v", err, resps)
	}
}

// fakeTB records what a helper reports; Fatalf stops the helper with a panic.
type fakeTB struct {
	testing.TB
	errs, fatals []string
}

type fatal struct{}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatals = append(f.fatals, fmt.Sprintf(format, args...))
	panic(fatal{})
}
func (f *fakeTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

func run(f func(tb testing.TB)) *fakeTB {
	tb := &fakeTB{}
	func() {
		defer func() {
			if v := recover(); v != nil {
				if _, ok := v.(fatal); !ok {
					panic(v)
				}
			}
		}()
		f(tb)
	}()
	return tb
}

func TestMisuseIsLoud(t *testing.T) {
	lateHeader := rhttp.HandlerFunc(func(w *rhttp.ResponseWriter, r *rhttp.Request) {
		w.WriteString("body first")
		w.Flush()
		w.Set("Content-Type", "application/json") // ignored error: the head is out
	})
	tb := run(func(tb testing.TB) { Do(tb, lateHeader, httptest.NewRequest("GET", "/", nil)) })
	want := "rhttptest: response 1 (status 200): the handler ignored an error: http: ResponseWriter.Set: http: headers already written"
	if len(tb.errs) != 1 || tb.errs[0] != want {
		t.Fatalf("errors %q, want %q", tb.errs, want)
	}
	// Exchange leaves it to the caller.
	resps, err := Exchange(lateHeader, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), rhttp.Limits{})
	if err != nil || !errors.Is(resps[0].WriterErr, rhttp.ErrHeadersSent) {
		t.Fatalf("Exchange: %v, %v", err, resps[0].WriterErr)
	}
	// A handler that finishes itself is fine.
	self := rhttp.HandlerFunc(func(w *rhttp.ResponseWriter, r *rhttp.Request) {
		w.WriteString("done")
		if err := w.Finish(); err != nil {
			panic(err)
		}
	})
	if tb := run(func(tb testing.TB) { Do(tb, self, httptest.NewRequest("GET", "/", nil)) }); len(tb.errs)+len(tb.fatals) != 0 {
		t.Fatalf("clean handler reported: %q %q", tb.errs, tb.fatals)
	}
}

func TestArgumentErrors(t *testing.T) {
	if _, err := Exchange(nil, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), rhttp.Limits{}); !errors.Is(err, rhttp.ErrInvalidArgument) {
		t.Errorf("nil handler: %v", err)
	}
	if _, err := Exchange(echo, nil, rhttp.Limits{MaxBodyBytes: -1}); err == nil {
		t.Error("bad limits accepted")
	}
	if _, err := Exchange(echo, []byte("GET / HTTP/1.1\r\nHost"), rhttp.Limits{}); !errors.Is(err, ErrIncomplete) {
		t.Errorf("incomplete: %v", err)
	}
	tb := run(func(tb testing.TB) { DoRaw(tb, echo, "GET / HTTP/1.1\r\n") })
	if len(tb.fatals) != 1 || !strings.Contains(tb.fatals[0], "input ends inside a request") {
		t.Errorf("DoRaw incomplete: %q", tb.fatals)
	}
	tb = run(func(tb testing.TB) { Do(tb, echo, nil) })
	if len(tb.fatals) != 1 {
		t.Errorf("Do(nil): %q", tb.fatals)
	}
}
