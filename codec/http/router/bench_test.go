package router

import (
	"testing"

	rhttp "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/internal/routetable"
)

// BenchmarkLookup measures Router.Lookup alone (no request parsing, no response) on the
// GitHub-API-shaped table of internal/routetable. The comparison with fasthttp/router, chi and
// http.ServeMux lives in the bench module (bench/internal/routerbench), which may import them.
func BenchmarkLookup(b *testing.B) {
	rt := New()
	for _, r := range routetable.GitHub {
		if err := rt.Add(r.Method, r.Pattern, func(*rhttp.ResponseWriter, *rhttp.Request, Params) {}); err != nil {
			b.Fatal(err)
		}
	}
	for _, l := range routetable.Lookups {
		b.Run(l.Name, func(b *testing.B) {
			m, p := []byte(l.Method), []byte(l.Path)
			b.ReportAllocs()
			for b.Loop() {
				if h, _, _ := rt.Lookup(m, p); (h == nil) != (l.Name == "miss") {
					b.Fatal("wrong lookup result")
				}
			}
		})
	}
}
