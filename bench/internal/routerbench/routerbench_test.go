package routerbench

import (
	"bufio"
	"bytes"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"testing"

	fastrouter "github.com/fasthttp/router"
	"github.com/go-chi/chi/v5"
	"github.com/valyala/fasthttp"

	rhttp "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/codec/http/router"
	"github.com/reactord/reactord/internal/routetable"
)

// The first parameter of each lookup, which every handler writes back (so routing is checked
// and no router can skip its parameter work).
var wantParam = map[string]string{"static": "", "param1": "gopher", "param2": "golang", "param4": "golang", "miss": ""}

func firstParamName(pattern string) string {
	i := strings.IndexByte(pattern, '{')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(pattern[i:], '}')
	return pattern[i+1 : i+j]
}

func newReactord(tb testing.TB) *router.Router {
	rt := router.New()
	for _, r := range routetable.GitHub {
		name := firstParamName(r.Pattern)
		err := rt.Add(r.Method, r.Pattern, func(w *rhttp.ResponseWriter, req *rhttp.Request, p router.Params) {
			w.WriteString("ok ")
			if name != "" {
				w.Write(p.Get(name))
			}
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return rt
}

func newFastRouter() *fastrouter.Router {
	rt := fastrouter.New()
	for _, r := range routetable.GitHub {
		name := firstParamName(r.Pattern)
		rt.Handle(r.Method, r.Pattern, func(ctx *fasthttp.RequestCtx) {
			ctx.WriteString("ok ")
			if name != "" {
				ctx.WriteString(ctx.UserValue(name).(string))
			}
		})
	}
	return rt
}

func newChi() *chi.Mux {
	mx := chi.NewRouter()
	for _, r := range routetable.GitHub {
		name := firstParamName(r.Pattern)
		mx.MethodFunc(r.Method, r.Pattern, func(w nethttp.ResponseWriter, req *nethttp.Request) {
			io.WriteString(w, "ok ")
			if name != "" {
				io.WriteString(w, chi.URLParam(req, name))
			}
		})
	}
	return mx
}

func newServeMux() *nethttp.ServeMux {
	mx := nethttp.NewServeMux()
	for _, r := range routetable.GitHub {
		name := firstParamName(r.Pattern)
		mx.HandleFunc(r.Method+" "+r.Pattern, func(w nethttp.ResponseWriter, req *nethttp.Request) {
			io.WriteString(w, "ok ")
			if name != "" {
				io.WriteString(w, req.PathValue(name))
			}
		})
	}
	return mx
}

// BenchmarkLookup: the lookup alone, each router given its natural input.
func BenchmarkLookup(b *testing.B) {
	rd := newReactord(b)
	fr := newFastRouter()
	cm := newChi()
	sm := newServeMux()
	for _, l := range routetable.Lookups {
		hit := l.Name != "miss"
		b.Run(l.Name+"/reactord", func(b *testing.B) {
			m, p := []byte(l.Method), []byte(l.Path)
			b.ReportAllocs()
			for b.Loop() {
				if h, _, _ := rd.Lookup(m, p); (h != nil) != hit {
					b.Fatal("wrong result")
				}
			}
		})
		b.Run(l.Name+"/fasthttp-router", func(b *testing.B) {
			var ctx fasthttp.RequestCtx
			b.ReportAllocs()
			for b.Loop() {
				if h, _ := fr.Lookup(l.Method, l.Path, &ctx); (h != nil) != hit {
					b.Fatal("wrong result")
				}
				ctx.ResetUserValues()
			}
		})
		b.Run(l.Name+"/chi", func(b *testing.B) {
			rctx := chi.NewRouteContext()
			b.ReportAllocs()
			for b.Loop() {
				rctx.Reset()
				if pat := cm.Find(rctx, l.Method, l.Path); (pat != "") != hit {
					b.Fatal("wrong result")
				}
			}
		})
		b.Run(l.Name+"/servemux", func(b *testing.B) {
			req := httptest.NewRequest(l.Method, l.Path, nil)
			b.ReportAllocs()
			for b.Loop() {
				if _, pat := sm.Handler(req); (pat != "") != hit {
					b.Fatal("wrong result")
				}
			}
		})
	}
}

func rawRequest(l routetable.Lookup) []byte {
	return []byte(l.Method + " " + l.Path + " HTTP/1.1\r\nHost: api.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
}

// checkBody verifies one response once, outside the timed loop.
func checkBody(b *testing.B, l routetable.Lookup, resp []byte) {
	b.Helper()
	want := "ok " + wantParam[l.Name]
	if l.Name == "miss" {
		if !bytes.Contains(resp, []byte(" 404 ")) {
			b.Fatalf("miss answered %q", resp)
		}
		return
	}
	if !bytes.HasSuffix(resp, []byte("\r\n\r\n"+want)) {
		b.Fatalf("%s answered %q, want body %q", l.Name, resp, want)
	}
}

// BenchmarkRequest: parse, route, handle and serialize one request, all in memory.
func BenchmarkRequest(b *testing.B) {
	rd := newReactord(b)
	fr := newFastRouter()
	adChi := rhttp.Adapt(newChi())
	adMux := rhttp.Adapt(newServeMux())
	native := func(h rhttp.Handler) func(b *testing.B, l routetable.Lookup) {
		return func(b *testing.B, l routetable.Lookup) {
			raw := rawRequest(l)
			p, err := rhttp.NewParser(rhttp.Limits{})
			if err != nil {
				b.Fatal(err)
			}
			var w rhttp.ResponseWriter
			out := make([]byte, 0, 4096)
			run := func() {
				p.Reset()
				_, req, err := p.Parse(raw)
				if err != nil || req == nil {
					b.Fatal(err)
				}
				w.Begin(out[:0], req)
				h.Handle(&w, req)
				w.Finish()
				out = w.Bytes()
			}
			run()
			checkBody(b, l, out)
			b.ReportAllocs()
			for b.Loop() {
				run()
			}
		}
	}
	fast := func(b *testing.B, l routetable.Lookup) {
		raw := rawRequest(l)
		var ctx fasthttp.RequestCtx
		var rd bytes.Reader
		br := bufio.NewReader(&rd)
		var out bytes.Buffer
		bw := bufio.NewWriter(&out)
		run := func() {
			rd.Reset(raw)
			br.Reset(&rd)
			out.Reset()
			bw.Reset(&out)
			ctx.Request.Reset()
			ctx.Response.Reset()
			ctx.ResetUserValues()
			if err := ctx.Request.Read(br); err != nil {
				b.Fatal(err)
			}
			fr.Handler(&ctx)
			ctx.Response.Write(bw)
			bw.Flush()
		}
		run()
		checkBody(b, l, out.Bytes())
		b.ReportAllocs()
		for b.Loop() {
			run()
		}
	}
	for _, l := range routetable.Lookups {
		b.Run(l.Name+"/reactord-native", func(b *testing.B) { native(rd)(b, l) })
		b.Run(l.Name+"/fasthttp-router", func(b *testing.B) { fast(b, l) })
		b.Run(l.Name+"/chi-adapter", func(b *testing.B) { native(adChi)(b, l) })
		b.Run(l.Name+"/servemux-adapter", func(b *testing.B) { native(adMux)(b, l) })
	}
}
