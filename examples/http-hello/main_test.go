package main

import (
	"strings"
	"testing"

	rhttp "github.com/reactord/reactord/codec/http"
)

// TestHandleAllocatesNothing backs the claim in the README: once the response buffer has
// grown, parsing a request and running handle allocates nothing, for every route.
func TestHandleAllocatesNothing(t *testing.T) {
	for _, target := range []string{"/", "/hello?name=gopher", "/agent", "/missing"} {
		t.Run(target, func(t *testing.T) {
			raw := []byte("GET " + target + " HTTP/1.1\r\nHost: example\r\nUser-Agent: test/1\r\n\r\n")
			p, err := rhttp.NewParser(rhttp.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			var w rhttp.ResponseWriter
			out := make([]byte, 0, 4096)
			run := func() {
				p.Reset()
				n, req, err := p.Parse(raw)
				if err != nil || req == nil || n != len(raw) {
					t.Fatalf("Parse = %d, %v, %v", n, req, err)
				}
				w.Begin(out[:0], req)
				handle(&w, req)
				if err := w.Finish(); err != nil {
					t.Fatal(err)
				}
				out = w.Bytes()
			}
			run()
			if a := testing.AllocsPerRun(100, run); a != 0 {
				t.Errorf("%v allocations per request", a)
			}
			if !strings.HasPrefix(string(out), "HTTP/1.1 ") {
				t.Errorf("response %q", out)
			}
		})
	}
}
