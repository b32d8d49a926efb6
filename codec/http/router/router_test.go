package router

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"strings"
	"testing"

	rhttp "github.com/reactord/reactord/codec/http"
)

// named returns a handler that writes its route name and its parameters.
func named(name string) HandlerFunc {
	return func(w *rhttp.ResponseWriter, r *rhttp.Request, p Params) {
		w.WriteString(name)
		for i := 0; i < p.Len(); i++ {
			k, v := p.At(i)
			fmt.Fprintf(w, " %s=%s", k, v)
		}
	}
}

func mustAdd(t testing.TB, rt *Router, method, pattern string, h HandlerFunc) {
	t.Helper()
	if err := rt.Add(method, pattern, h); err != nil {
		t.Fatal(err)
	}
}

// exchange runs one raw request through rt and returns the parsed response.
func exchange(t testing.TB, h rhttp.Handler, method, target string) (*nethttp.Response, string) {
	t.Helper()
	raw := method + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"
	p, err := rhttp.NewParser(rhttp.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	_, req, err := p.Parse([]byte(raw))
	if err != nil || req == nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	var w rhttp.ResponseWriter
	w.Begin(nil, req)
	h.Handle(&w, req)
	if err := w.Finish(); err != nil {
		t.Fatalf("%s %s: Finish: %v", method, target, err)
	}
	resp, err := nethttp.ReadResponse(bufio.NewReader(bytes.NewReader(w.Bytes())), &nethttp.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: response %q: %v", method, target, w.Bytes(), err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func apiRouter(t testing.TB) *Router {
	rt := New()
	mustAdd(t, rt, "GET", "/", named("root"))
	mustAdd(t, rt, "GET", "/users", named("list"))
	mustAdd(t, rt, "POST", "/users", named("create"))
	mustAdd(t, rt, "GET", "/users/", named("list-slash"))
	mustAdd(t, rt, "GET", "/users/me", named("me"))
	mustAdd(t, rt, "GET", "/users/{id}", named("get"))
	mustAdd(t, rt, "DELETE", "/users/{id}", named("delete"))
	mustAdd(t, rt, "GET", "/users/{id}/posts/{post}", named("post"))
	mustAdd(t, rt, "GET", "/files/{path...}", named("files"))
	mustAdd(t, rt, "GET", "/a/b/d", named("abd"))
	mustAdd(t, rt, "GET", "/a/{x}/c", named("axc"))
	mustAdd(t, rt, "PUT", "/a/b/c", named("put-abc"))
	mustAdd(t, rt, "HEAD", "/h", named("explicit-head"))
	mustAdd(t, rt, "GET", "/h", named("h-get"))
	mustAdd(t, rt, "OPTIONS", "/cors", named("preflight"))
	mustAdd(t, rt, "GET", "/cors", named("cors"))
	mustAdd(t, rt, "PURGE", "/cache/{key}", named("purge"))
	mustAdd(t, rt, "GET", "/café", named("utf8"))
	return rt
}

func TestRouting(t *testing.T) {
	rt := apiRouter(t)
	tests := []struct {
		method, target string
		status         int
		body           string
		allow          string
	}{
		{"GET", "/", 200, "root", ""},
		{"GET", "/users", 200, "list", ""},
		{"POST", "/users", 200, "create", ""},
		{"GET", "/users/", 200, "list-slash", ""},
		{"GET", "/users/me", 200, "me", ""},              // static beats {id}
		{"GET", "/users/42", 200, "get id=42", ""},       //
		{"GET", "/users/42?x=1", 200, "get id=42", ""},   // the query is not part of the path
		{"GET", "/users/a%2Fb", 200, "get id=a%2Fb", ""}, // an encoded slash stays in its segment, raw
		{"GET", "/%75sers/me", 200, "me", ""},            // static segments compare decoded
		{"GET", "/caf%C3%A9", 200, "utf8", ""},           //
		{"DELETE", "/users/7", 200, "delete id=7", ""},   //
		{"GET", "/users/7/posts/9", 200, "post id=7 post=9", ""},
		{"GET", "/users/7/posts/", 404, "Not Found\n", ""}, // {post} needs a non-empty segment
		{"GET", "/users//posts/9", 404, "Not Found\n", ""}, // so does {id}
		{"GET", "/files/", 200, "files path=", ""},
		{"GET", "/files/a/b/../c.txt", 200, "files path=a/b/../c.txt", ""},
		{"GET", "/files", 404, "Not Found\n", ""},
		{"GET", "/a/b/c", 200, "axc x=b", ""}, // backtracks from the static b to {x}
		{"GET", "/a/b/d", 200, "abd", ""},
		{"GET", "/a/z/c", 200, "axc x=z", ""},
		{"PUT", "/a/b/c", 200, "put-abc", ""},
		{"HEAD", "/users/5", 200, "", ""}, // HEAD by the GET handler, no body
		{"HEAD", "/h", 200, "", ""},       // explicit HEAD
		{"GET", "/h", 200, "h-get", ""},   //
		{"PURGE", "/cache/k1", 200, "purge key=k1", ""},
		{"OPTIONS", "/cors", 200, "preflight", ""},
		// 405 with Allow; for /a/b/c the methods of both matching routes are merged.
		{"POST", "/users/5", 405, "Method Not Allowed\n", "GET, HEAD, DELETE, OPTIONS"},
		{"PATCH", "/users", 405, "Method Not Allowed\n", "GET, HEAD, POST, OPTIONS"},
		{"POST", "/a/b/c", 405, "Method Not Allowed\n", "GET, HEAD, PUT, OPTIONS"},
		{"GET", "/cache/k1", 405, "Method Not Allowed\n", "PURGE, OPTIONS"},
		{"POST", "/cors", 405, "Method Not Allowed\n", "GET, HEAD, OPTIONS"},
		{"POST", "/h", 405, "Method Not Allowed\n", "GET, HEAD, OPTIONS"},
		// Automatic OPTIONS.
		{"OPTIONS", "/users", 204, "", "GET, HEAD, POST, OPTIONS"},
		{"OPTIONS", "/a/b/c", 204, "", "GET, HEAD, PUT, OPTIONS"},
		{"OPTIONS", "/nowhere", 404, "Not Found\n", ""},
		{"GET", "/nowhere", 404, "Not Found\n", ""},
		{"GET", "/users/7/extra", 404, "Not Found\n", ""},
		{"OPTIONS", "*", 404, "Not Found\n", ""},
		{"GET", "http://example.com/users/me", 200, "me", ""}, // absolute-form: routed on its path
	}
	for _, tc := range tests {
		resp, body := exchange(t, rt, tc.method, tc.target)
		if resp.StatusCode != tc.status || body != tc.body || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s = %d %q Allow %q; want %d %q Allow %q", tc.method, tc.target,
				resp.StatusCode, body, resp.Header.Get("Allow"), tc.status, tc.body, tc.allow)
		}
	}
}

func TestCustomNotFoundAndMethodNotAllowed(t *testing.T) {
	rt := New()
	mustAdd(t, rt, "GET", "/x", named("x"))
	rt.SetNotFound(func(w *rhttp.ResponseWriter, r *rhttp.Request, p Params) {
		w.Set("Content-Type", "application/json")
		w.WriteString(`{"error":"not found"}`)
	})
	rt.SetMethodNotAllowed(func(w *rhttp.ResponseWriter, r *rhttp.Request, p Params) {
		w.Set("Content-Type", "application/json")
		w.WriteString(`{"error":"method not allowed"}`)
	})
	resp, body := exchange(t, rt, "GET", "/y")
	if resp.StatusCode != 404 || body != `{"error":"not found"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("404: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, body = exchange(t, rt, "PUT", "/x")
	if resp.StatusCode != 405 || body != `{"error":"method not allowed"}` || resp.Header.Get("Allow") != "GET, HEAD, OPTIONS" {
		t.Errorf("405: %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func TestAddErrors(t *testing.T) {
	h := named("h")
	rt := New()
	mustAdd(t, rt, "GET", "/users/{id}", h)
	mustAdd(t, rt, "GET", "/files/{p...}", h)
	tests := []struct {
		method, pattern string
		h               HandlerFunc
		want            error
		msg             string
	}{
		{"GET", "/users/{name}", h, ErrConflict, `router: conflicting routes: GET /users/{name} matches the same paths as GET /users/{id}, registered earlier`},
		{"GET", "/files/{rest...}", h, ErrConflict, `GET /files/{rest...} matches the same paths as GET /files/{p...}`},
		{"GET", "", h, ErrInvalidPattern, `router: invalid pattern "": must start with "/"`},
		{"GET", "users", h, ErrInvalidPattern, `pattern "users": must start with "/"`},
		{"GET", "/a/{id", h, ErrInvalidPattern, `segment "{id": a {name} must be a whole segment`},
		{"GET", "/a/x{id}", h, ErrInvalidPattern, `segment "x{id}": braces must enclose a whole segment`},
		{"GET", "/a/{}", h, ErrInvalidPattern, `segment "{}": parameter name must be`},
		{"GET", "/a/{1x}", h, ErrInvalidPattern, `segment "{1x}": parameter name`},
		{"GET", "/a/{p...}/b", h, ErrInvalidPattern, `segment "{p...}": {name...} must be the last segment`},
		{"GET", "/a/{x}/{x}", h, ErrInvalidPattern, `parameter "x" appears twice`},
		{"GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", h, ErrInvalidPattern, `more than 8 parameters`},
		{"GET", "/a%20b", h, ErrInvalidPattern, `write static segments decoded`},
		{"GET", "/a?b", h, ErrInvalidPattern, `'?' cannot appear in a path`},
		{"GET", "/a b", h, ErrInvalidPattern, `space or control character`},
		{"GET", "/ok", nil, ErrInvalidArgument, `nil handler for GET /ok`},
		{"", "/ok", h, ErrInvalidArgument, `method "" for /ok is not an HTTP token`},
		{"GE T", "/ok", h, ErrInvalidArgument, `method "GE T"`},
	}
	for _, tc := range tests {
		err := rt.Add(tc.method, tc.pattern, tc.h)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Add(%q, %q) = %v; want %v containing %q", tc.method, tc.pattern, err, tc.want, tc.msg)
		}
	}
	// Same shape, other method: fine. Eight parameters: fine.
	mustAdd(t, rt, "PUT", "/users/{name}", h)
	mustAdd(t, rt, "GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h...}", h)
	// Once serving, the table is frozen.
	exchange(t, rt, "GET", "/users/1")
	if err := rt.Add("GET", "/late", h); !errors.Is(err, ErrServing) {
		t.Errorf("Add after serving = %v, want ErrServing", err)
	}
}

func TestParams(t *testing.T) {
	rt := New()
	var got []string
	mustAdd(t, rt, "GET", "/u/{name}/{rest...}", func(w *rhttp.ResponseWriter, r *rhttp.Request, p Params) {
		var buf [64]byte
		name, ok, err := p.Unescaped("name", buf[:0])
		got = append(got, fmt.Sprintf("%s|%v|%v|%s|%v", name, ok, err, p.Get("rest"), p.Get("none") == nil))
		_, ok, _ = p.Unescaped("none", nil)
		if ok {
			t.Error("Unescaped(none) ok")
		}
		if n, v := p.At(5); n != "" || v != nil {
			t.Error("At out of range")
		}
	})
	exchange(t, rt, "GET", "/u/J%C3%BCrgen/x/y")
	exchange(t, rt, "GET", "/u/plain/")
	want := []string{"Jürgen|true|<nil>|x/y|true", "plain|true|<nil>||true"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestUnescape(t *testing.T) {
	tests := []struct {
		in, path, query string
		err             bool
	}{
		{"plain", "plain", "plain", false},
		{"a%20b", "a b", "a b", false},
		{"a+b", "a+b", "a b", false},
		{"%2F%2f", "//", "//", false},
		{"%C3%A9", "é", "é", false},
		{"%", "", "", true},
		{"%4", "", "", true},
		{"%g0", "", "", true},
		{"x%4g", "", "", true},
	}
	for _, tc := range tests {
		p, err := Unescape(nil, []byte(tc.in))
		q, qerr := UnescapeQuery(nil, []byte(tc.in))
		if tc.err {
			if !errors.Is(err, ErrBadEscape) || !errors.Is(qerr, ErrBadEscape) {
				t.Errorf("%q: errors %v, %v; want ErrBadEscape", tc.in, err, qerr)
			}
			continue
		}
		if err != nil || qerr != nil || string(p) != tc.path || string(q) != tc.query {
			t.Errorf("%q: path %q %v, query %q %v; want %q, %q", tc.in, p, err, q, qerr, tc.path, tc.query)
		}
	}
	// Nothing encoded: src itself comes back.
	src := []byte("users")
	if out, _ := Unescape(make([]byte, 0, 8), src); &out[0] != &src[0] {
		t.Error("Unescape copied an unencoded input")
	}
}

func TestEqualDecoded(t *testing.T) {
	for _, tc := range []struct {
		raw, lit string
		want     bool
	}{
		{"users", "users", true}, {"%75sers", "users", true}, {"%75SERS", "uSERS", true},
		{"us%zzers", "us%zzers", false}, {"user%", "user%", false}, {"a%2", "a%2", false},
		{"a%2Fb", "a/b", true}, {"ab", "abc", false}, {"abc", "ab", false}, {"", "", true},
	} {
		if got := equalDecoded([]byte(tc.raw), tc.lit); got != tc.want {
			t.Errorf("equalDecoded(%q, %q) = %v", tc.raw, tc.lit, got)
		}
	}
}

func TestQueryValue(t *testing.T) {
	q := []byte("limit=10&flag&name=a%20b&limit=20&=x")
	for _, tc := range []struct {
		key, val string
		ok       bool
	}{{"limit", "10", true}, {"flag", "", true}, {"name", "a%20b", true}, {"", "x", true}, {"missing", "", false}} {
		v, ok := QueryValue(q, tc.key)
		if string(v) != tc.val || ok != tc.ok {
			t.Errorf("QueryValue(%q) = %q, %v; want %q, %v", tc.key, v, ok, tc.val, tc.ok)
		}
	}
}

// TestRouterZeroAlloc: routing and reading parameters allocate nothing — a hit, a parameter
// route, a decode into a stack buffer, a 404 and a single-route 405.
func TestRouterZeroAlloc(t *testing.T) {
	rt := New()
	sink := 0
	h := func(w *rhttp.ResponseWriter, r *rhttp.Request, p Params) {
		var buf [64]byte // a stack scratch: Write copies, so it does not escape
		v, _, _ := p.Unescaped("id", buf[:0])
		sink += len(v) + len(p.Get("post"))
		w.Write(v)
	}
	mustAdd(t, rt, "GET", "/users/{id}", h)
	mustAdd(t, rt, "GET", "/users/{id}/posts/{post}", h)
	mustAdd(t, rt, "GET", "/static/path/here", h)
	for _, target := range []string{"/users/42", "/users/a%20b/posts/7", "/static/path/here", "/missing", "/users/1/x"} {
		for _, method := range []string{"GET", "POST", "HEAD"} {
			raw := []byte(method + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")
			p, _ := rhttp.NewParser(rhttp.Limits{})
			var w rhttp.ResponseWriter
			out := make([]byte, 0, 4096)
			run := func() {
				p.Reset()
				_, req, err := p.Parse(raw)
				if err != nil || req == nil {
					t.Fatal(err)
				}
				w.Begin(out[:0], req)
				rt.Handle(&w, req)
				w.Finish()
			}
			run()
			if a := testing.AllocsPerRun(200, run); a != 0 {
				t.Errorf("%s %s: %v allocations", method, target, a)
			}
		}
	}
}
