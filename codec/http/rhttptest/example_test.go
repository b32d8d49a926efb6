package rhttptest_test

import (
	"fmt"
	"net/http/httptest"
	"testing"

	rhttp "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/codec/http/rhttptest"
	"github.com/reactord/reactord/codec/http/router"
)

// t stands in for the *testing.T of a real test (these examples report no failure).
var t = &testing.T{}

// ExampleDo tests a routed native handler the way net/http/httptest tests a net/http one:
// build the request with httptest.NewRequest, run it with rhttptest.Do.
func ExampleDo() {
	rt := router.New()
	rt.Add("GET", "/users/{id}", func(w *rhttp.ResponseWriter, r *rhttp.Request, p router.Params) {
		w.Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q}`, p.Get("id"))
	})

	resp := rhttptest.Do(t, rt, httptest.NewRequest("GET", "/users/42", nil))
	fmt.Println(resp.Status, resp.Header.Get("Content-Type"), string(resp.Body))

	resp = rhttptest.Do(t, rt, httptest.NewRequest("DELETE", "/users/42", nil))
	fmt.Println(resp.Status, resp.Header.Get("Allow"))
	// Output:
	// 200 application/json {"id":"42"}
	// 405 GET, HEAD, OPTIONS
}

// ExampleDoRaw feeds raw bytes: pipelined requests, or a malformed one, which gets the codec's
// own answer without reaching the handler.
func ExampleDoRaw() {
	h := rhttp.HandlerFunc(func(w *rhttp.ResponseWriter, r *rhttp.Request) {
		w.Write(r.Path())
	})
	for _, resp := range rhttptest.DoRaw(t, h,
		"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"+
			"GET /two HTTP/1.1\r\nHost: x\r\n\r\n"+
			"GET /three HTTP/1.1\r\n\r\n") { // no Host: 400, and the connection closes
		fmt.Printf("%d %q %v\n", resp.Status, resp.Body, resp.ParseErr)
	}
	// Output:
	// 200 "/one" <nil>
	// 200 "/two" <nil>
	// 400 "Bad Request: missing Host header\n" http: missing Host header
}
