package router

import (
	"net/url"
	"sort"
	"strings"
	"testing"

	rhttp "github.com/reactord/reactord/codec/http"
)

// refRoute is a registered route as the reference matcher sees it.
type refRoute struct {
	method string
	segs   []string // pattern segments: literal, "{name}" or "{name...}"
	id     int
}

// kinds is the route's precedence key: 0 static, 1 {name}, 2 {name...} per segment.
func (r refRoute) kinds() []int {
	k := make([]int, len(r.segs))
	for i, s := range r.segs {
		switch {
		case strings.HasSuffix(s, "...}"):
			k[i] = 2
		case strings.HasPrefix(s, "{"):
			k[i] = 1
		}
	}
	return k
}

// match reports whether the route's pattern matches path, with the parameter values.
func (r refRoute) match(path string) ([]string, bool) {
	parts := strings.Split(path[1:], "/")
	var vals []string
	for i, s := range r.segs {
		if strings.HasSuffix(s, "...}") {
			if i > len(parts) {
				return nil, false
			}
			return append(vals, strings.Join(parts[i:], "/")), i < len(parts)
		}
		if i >= len(parts) {
			return nil, false
		}
		switch {
		case strings.HasPrefix(s, "{"):
			if parts[i] == "" {
				return nil, false
			}
			vals = append(vals, parts[i])
		default:
			dec, err := url.PathUnescape(parts[i])
			if err != nil || dec != s {
				return nil, false
			}
		}
	}
	return vals, len(parts) == len(r.segs)
}

func less(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

var fuzzSegs = []string{"a", "b", "", "{p}", "{q}", "{w...}"}
var fuzzPathSegs = []string{"a", "b", "", "%61", "c", "a%2Fb"}
var fuzzMethods = []string{"GET", "POST", "HEAD", "OPTIONS"}

// FuzzRouter registers routes built from the input and checks every lookup against a
// reference matcher that tries all routes in precedence order.
func FuzzRouter(f *testing.F) {
	f.Add([]byte{0, 2, 0, 1, 1, 3, 2, 1, 5}, []byte{2, 0, 1})
	f.Add([]byte{1, 1, 3, 0, 2, 0, 4, 2, 1, 5}, []byte{3, 3, 2})
	f.Fuzz(checkRouter)
}

// checkRouter is FuzzRouter's body: routes and path are decoded into patterns and a request
// path over small alphabets, so the fuzzer explores shapes rather than spellings.
func checkRouter(t *testing.T, routes, path []byte) {
	{
		rt := New()
		var refs []refRoute
		for i := 0; i+1 < len(routes) && len(refs) < 12; {
			method := fuzzMethods[routes[i]%byte(len(fuzzMethods))]
			n := int(routes[i+1]%3) + 1
			i += 2
			var segs []string
			for j := 0; j < n && i < len(routes); j++ {
				segs = append(segs, fuzzSegs[routes[i]%byte(len(fuzzSegs))])
				i++
			}
			if len(segs) == 0 {
				break
			}
			id := len(refs)
			pattern := "/" + strings.Join(segs, "/")
			err := rt.Add(method, pattern, func(w *rhttp.ResponseWriter, r *rhttp.Request, p Params) {})
			if err != nil {
				continue // invalid (a repeated name, {w...} not last) or a conflict
			}
			refs = append(refs, refRoute{method: method, segs: segs, id: id})
		}
		var pb strings.Builder
		for _, c := range path {
			pb.WriteString("/")
			pb.WriteString(fuzzPathSegs[c%byte(len(fuzzPathSegs))])
		}
		p := pb.String()
		if p == "" {
			p = "/"
		}
		for _, method := range fuzzMethods {
			// Reference: matching routes in precedence order; the first shape with the method.
			type cand struct {
				r    refRoute
				vals []string
			}
			var cands []cand
			for _, r := range refs {
				if vals, ok := r.match(p); ok {
					cands = append(cands, cand{r, vals})
				}
			}
			sort.SliceStable(cands, func(i, j int) bool { return less(cands[i].r.kinds(), cands[j].r.kinds()) })
			var want *cand
			for i := range cands {
				c := &cands[i]
				if c.r.method == method {
					want = c
					break
				}
				if method == "HEAD" && c.r.method == "GET" {
					// GET serves HEAD only when the same shape has no HEAD route.
					hasHead := false
					for _, o := range cands {
						if o.r.method == "HEAD" && strings.Join(o.r.segs, "/") == strings.Join(c.r.segs, "/") {
							hasHead = true
						}
					}
					if !hasHead {
						want = c
						break
					}
				}
			}
			h, params, matched := rt.Lookup([]byte(method), []byte(p))
			if matched != (len(cands) > 0) {
				t.Fatalf("%s %s: pathMatched %v, reference has %d candidates", method, p, matched, len(cands))
			}
			if (h != nil) != (want != nil) {
				t.Fatalf("%s %s: handler %v, reference %+v (routes %+v)", method, p, h != nil, want, refs)
			}
			if want == nil {
				continue
			}
			var got []string
			for i := 0; i < params.Len(); i++ {
				_, v := params.At(i)
				got = append(got, string(v))
			}
			if strings.Join(got, "|") != strings.Join(want.vals, "|") || len(got) != len(want.vals) {
				t.Fatalf("%s %s: params %q, reference %q via /%s", method, p, got, want.vals, strings.Join(want.r.segs, "/"))
			}
		}
	}
}

// FuzzUnescape checks Unescape against net/url.PathUnescape and UnescapeQuery against
// url.QueryUnescape.
func FuzzUnescape(f *testing.F) {
	for _, s := range []string{"plain", "a%20b", "a+b", "%", "%4", "%zz", "%C3%A9", "%2F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Unescape(make([]byte, 0, len(s)), []byte(s))
		want, werr := url.PathUnescape(s)
		if (err != nil) != (werr != nil) || err == nil && string(got) != want {
			t.Fatalf("Unescape(%q) = %q, %v; url.PathUnescape: %q, %v", s, got, err, want, werr)
		}
		gotQ, err := UnescapeQuery(nil, []byte(s))
		wantQ, werr := url.QueryUnescape(s)
		if (err != nil) != (werr != nil) || err == nil && string(gotQ) != wantQ {
			t.Fatalf("UnescapeQuery(%q) = %q, %v; url.QueryUnescape: %q, %v", s, gotQ, err, wantQ, werr)
		}
		if err == nil {
			// equalDecoded agrees with decoding then comparing.
			if !equalDecoded([]byte(s), want) && werr == nil {
				t.Fatalf("equalDecoded(%q, %q) = false", s, want)
			}
		}
	})
}
