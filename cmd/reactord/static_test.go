package main

import (
	"bufio"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reactord/reactord/cmd/reactord/internal/static"
	"github.com/reactord/reactord/internal/testsupport"
)

// get sends one request line with the given extra header lines on a new connection and
// reads the response, so that the target reaches the daemon byte for byte.
func get(t *testing.T, addr, method, target string, hdr ...string) response {
	t.Helper()
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n")
	for i := 0; i+1 < len(hdr); i += 2 {
		b.WriteString(hdr[i] + ": " + hdr[i+1] + "\r\n")
	}
	b.WriteString("\r\n")
	return raw(t, addr, method, b.String())
}

// dotRoot adds dotfiles, a .well-known directory and a listable directory to a web root.
func dotRoot(t *testing.T) string {
	t.Helper()
	root, _ := webRoot(t)
	for name, body := range map[string]string{
		".env":                     "SECRET=1\n",
		"dots/.git/HEAD":           "ref: refs/heads/main\n",
		"dots/.git/config":         "[core]\n",
		"dots/visible.txt":         "visible\n",
		".well-known/security.txt": "Contact: mailto:x@example.com\n",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestDotfilesRefused checks the default: dotfiles and dot directories, however the path is
// encoded, answer 404 exactly like a missing file and are left out of listings, except
// /.well-known/; -serve-dotfiles and the file key serve-dotfiles turn the rule off.
func TestDotfilesRefused(t *testing.T) {
	root := dotRoot(t)
	cfg := filepath.Join(t.TempDir(), "r.toml")
	if err := os.WriteFile(cfg, []byte("serve-dotfiles = true\ndir-listing = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hidden := []string{"/.env", "/%2eenv", "/%2Eenv", "//.env", "/dots/.git/HEAD", "/dots/%2Egit/HEAD", "/dots/%2egit/config",
		"/dots/.git", "/dots/.git/"}
	for _, mode := range []string{"default", "flag", "file"} {
		args := []string{"-listen", "127.0.0.1:0", "-root", root, "-access-log", "off", "-dir-listing"}
		switch mode {
		case "flag":
			args = append(args, "-serve-dotfiles")
		case "file":
			args = append(args, "-config", cfg)
		}
		d := start(t, args...)
		missing := get(t, d.addr, "GET", "/.missing")
		for _, p := range hidden {
			r := get(t, d.addr, "GET", p)
			if mode == "default" {
				if r.status != 404 || r.body != missing.body || strings.Contains(r.body, "SECRET") || strings.Contains(r.body, "ref:") {
					t.Errorf("%s: GET %s: %d %q, want the 404 of a missing file", mode, p, r.status, r.body)
				}
				delete(r.header, "Date")
				delete(missing.header, "Date")
				if !maps.EqualFunc(r.header, missing.header, slices.Equal) {
					t.Errorf("%s: GET %s: fields %v differ from a missing file's %v", mode, p, r.header, missing.header)
				}
				// HEAD and conditional requests tell no more.
				for _, h := range [][]string{nil, {"If-None-Match", "*"}, {"If-Match", "*"}, {"Range", "bytes=0-1"}} {
					if r := get(t, d.addr, "HEAD", p, h...); r.status != 404 {
						t.Errorf("%s: HEAD %s %v: %d", mode, p, h, r.status)
					}
					if r := get(t, d.addr, "GET", p, h...); r.status != 404 {
						t.Errorf("%s: GET %s %v: %d", mode, p, h, r.status)
					}
				}
			} else if r.status != 200 && r.status != 301 {
				t.Errorf("%s: GET %s: %d, want it served", mode, p, r.status)
			}
		}
		if r := get(t, d.addr, "GET", "/.well-known/security.txt"); r.status != 200 || !strings.HasPrefix(r.body, "Contact:") {
			t.Errorf("%s: /.well-known/security.txt: %d %q", mode, r.status, r.body)
		}
		listing := get(t, d.addr, "GET", "/dots/")
		if listing.status != 200 || !strings.Contains(listing.body, `href="./visible.txt"`) ||
			strings.Contains(listing.body, ".git") != (mode != "default") {
			t.Errorf("%s: /dots/ listing: %d\n%s", mode, listing.status, listing.body)
		}
		d.stop()
	}
}

// TestPreconditionsOnEveryResponse sends If-None-Match: * and If-Match with an unknown tag to
// each kind of 2xx the daemon gives — a file, a directory listing, /healthz, /metrics and the
// built-in page — and expects 304 and 412 (RFC 9110 §13.1.1, §13.1.2); a listing's own
// ETag revalidates it.
func TestPreconditionsOnEveryResponse(t *testing.T) {
	root, _ := webRoot(t)
	withRoot := start(t, "-listen", "127.0.0.1:0", "-root", root, "-dir-listing", "-access-log", "off")
	bare := start(t, "-listen", "127.0.0.1:0", "-access-log", "off")
	for _, tc := range []struct {
		d    *proc
		path string
	}{
		{withRoot, "/hello.txt"}, {withRoot, "/docs/"}, {withRoot, "/healthz"}, {withRoot, "/metrics"},
		{bare, "/"}, {bare, "/healthz"}, {bare, "/metrics"},
	} {
		plain := get(t, tc.d.addr, "GET", tc.path)
		if plain.status != 200 {
			t.Fatalf("GET %s: %d", tc.path, plain.status)
		}
		for _, c := range []struct {
			method string
			hdr    []string
			status int
		}{
			{"GET", []string{"If-None-Match", "*"}, 304},
			{"HEAD", []string{"If-None-Match", "*"}, 304},
			{"GET", []string{"If-Match", `"nope"`}, 412},
			{"HEAD", []string{"If-Match", `"nope"`}, 412},
			{"GET", []string{"If-Match", "*"}, 200},
			{"GET", []string{"If-Match", `"nope"`, "If-None-Match", "*"}, 412},
			{"OPTIONS", []string{"If-None-Match", "*"}, 412},
		} {
			r := get(t, tc.d.addr, c.method, tc.path, c.hdr...)
			if r.status != c.status {
				t.Errorf("%s %s %v: %d, want %d", c.method, tc.path, c.hdr, r.status, c.status)
			}
			if r.status == 304 && (r.body != "" || r.header.Get("Cache-Control") != plain.header.Get("Cache-Control")) {
				t.Errorf("%s %s: 304 with body %q, Cache-Control %q (200 had %q)", c.method, tc.path, r.body,
					r.header.Get("Cache-Control"), plain.header.Get("Cache-Control"))
			}
		}
		if tag := plain.header.Get("ETag"); tag != "" {
			if r := get(t, tc.d.addr, "GET", tc.path, "If-None-Match", tag); r.status != 304 || r.header.Get("ETag") != tag {
				t.Errorf("GET %s If-None-Match its own ETag %s: %d %q", tc.path, tag, r.status, r.header.Get("ETag"))
			}
		} else if tc.path == "/docs/" || tc.path == "/" {
			t.Errorf("GET %s: no ETag", tc.path)
		}
	}
	withRoot.stop()
	bare.stop()
}

// TestFutureMtimeClamped serves a file whose mtime is an hour ahead: Last-Modified is never
// later than Date (RFC 9110 §8.8.2.1), and once the file has been rewritten, a cache still
// holding the future date that older versions sent gets the new content, not a 304.
func TestFutureMtimeClamped(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "f.txt")
	if err := os.WriteFile(p, []byte("version 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour).Truncate(time.Second)
	if err := os.Chtimes(p, future, future); err != nil {
		t.Fatal(err)
	}
	d := start(t, "-listen", "127.0.0.1:0", "-root", root, "-access-log", "off")
	for _, method := range []string{"GET", "HEAD"} {
		r := get(t, d.addr, method, "/f.txt")
		lm, err1 := http.ParseTime(r.header.Get("Last-Modified"))
		date, err2 := http.ParseTime(r.header.Get("Date"))
		if r.status != 200 || err1 != nil || err2 != nil || lm.After(date) || len(r.header.Values("Date")) != 1 {
			t.Fatalf("%s: %d Last-Modified %q Date %q: want Last-Modified ≤ Date, one Date", method, r.status,
				r.header.Get("Last-Modified"), r.header.Values("Date"))
		}
		if lm.Equal(future) {
			t.Fatalf("%s: the future mtime was sent", method)
		}
	}
	futureText := future.UTC().Format(http.TimeFormat)
	if r := get(t, d.addr, "GET", "/f.txt", "If-Modified-Since", futureText); r.status != 200 {
		t.Errorf("IMS with the future mtime: %d, want 200", r.status)
	}
	// Rewritten with an ordinary mtime: the old future date must not validate it.
	if err := os.WriteFile(p, []byte("version 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Minute)
	if err := os.Chtimes(p, past, past); err != nil {
		t.Fatal(err)
	}
	if r := get(t, d.addr, "GET", "/f.txt", "If-Modified-Since", futureText); r.status != 200 || r.body != "version 2\n" {
		t.Errorf("rewritten, IMS with the old future date: %d %q, want 200 and the new content", r.status, r.body)
	}
	if r := get(t, d.addr, "GET", "/f.txt", "If-Modified-Since", past.UTC().Format(http.TimeFormat)); r.status != 304 {
		t.Errorf("IMS with the current Last-Modified: %d, want 304", r.status)
	}
	d.stop()
}

// TestListingLinksServed lists a directory with names a request path cannot carry (a
// backslash, control bytes) next to ordinary and awkward ones: the listing leaves the former
// out, and every link it shows is served.
func TestListingLinksServed(t *testing.T) {
	root := t.TempDir()
	names := []string{"plain.txt", "a b.txt", "ü.txt", "q?x#y.txt", "100%.txt", "<i>\"x\".txt", "back\\slash.txt", "ctl\x01.txt",
		"new\nline.txt", "del\x7f.txt"}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(root, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := start(t, "-listen", "127.0.0.1:0", "-root", root, "-dir-listing", "-access-log", "off")
	page := get(t, d.addr, "GET", "/")
	if page.status != 200 {
		t.Fatalf("listing: %d", page.status)
	}
	hrefs := regexp.MustCompile(`href="\./([^"]*)"`).FindAllStringSubmatch(page.body, -1)
	if len(hrefs) != 6 {
		t.Errorf("listing links %d names, want the 6 a request can name:\n%s", len(hrefs), page.body)
	}
	for _, m := range hrefs {
		target := "/" + strings.NewReplacer("&amp;", "&", "&#34;", `"`, "&#39;", "'").Replace(m[1])
		r := get(t, d.addr, "GET", target)
		if r.status != 200 {
			t.Errorf("listing links %s: GET answers %d", target, r.status)
		}
	}
	for _, bad := range []string{"slash", "ctl", "line", "del"} {
		if strings.Contains(page.body, bad) {
			t.Errorf("listing shows %q, which no request can reach", bad)
		}
	}
	d.stop()
}

// TestMethods checks the method classes on the wire: 501 for a method the daemon does not
// recognise, 405 with Allow for a standard one it does not allow, OPTIONS answered with
// Allow (the asterisk-form included), with and without -root; and that the connection stays
// usable after each.
func TestMethods(t *testing.T) {
	root, _ := webRoot(t)
	for _, args := range [][]string{{"-root", root}, nil} {
		d := start(t, append([]string{"-listen", "127.0.0.1:0", "-access-log", "off"}, args...)...)
		for _, tc := range []struct {
			line   string
			status int
			allow  string
		}{
			{"FOO / HTTP/1.1", 501, ""},
			{"PROPFIND /hello.txt HTTP/1.1", 501, ""},
			{"get / HTTP/1.1", 501, ""},
			{"POST /hello.txt HTTP/1.1", 405, static.AllowedMethods},
			{"POST /healthz HTTP/1.1", 405, static.AllowedMethods},
			{"TRACE / HTTP/1.1", 405, static.AllowedMethods},
			{"CONNECT example.com:443 HTTP/1.1", 405, static.AllowedMethods},
			{"OPTIONS * HTTP/1.1", 200, static.AllowedMethods},
			{"OPTIONS / HTTP/1.1", 200, static.AllowedMethods},
			{"OPTIONS /healthz HTTP/1.1", 200, static.AllowedMethods},
		} {
			conn, err := net.DialTimeout("tcp", d.addr, testsupport.Scale(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(testsupport.Deadline(10 * time.Second))
			io.WriteString(conn, tc.line+"\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			br := bufio.NewReader(conn)
			method, _, _ := strings.Cut(tc.line, " ")
			resp, err := http.ReadResponse(br, &http.Request{Method: method})
			if err != nil {
				t.Fatalf("%v %q: %v", args, tc.line, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("Allow") != tc.allow {
				t.Errorf("%v %q: %d Allow %q, want %d %q", args, tc.line, resp.StatusCode, resp.Header.Get("Allow"), tc.status, tc.allow)
			}
			if tc.status == 200 && (len(body) != 0 || resp.Header.Get("Content-Length") != "0") {
				t.Errorf("%v %q: body %q, Content-Length %q", args, tc.line, body, resp.Header.Get("Content-Length"))
			}
			next, err := http.ReadResponse(br, &http.Request{Method: "GET"})
			if err != nil || next.StatusCode != 200 {
				t.Errorf("%v %q: the next request on the connection: %v", args, tc.line, err)
			} else {
				next.Body.Close()
			}
			conn.Close()
		}
		d.stop()
	}
}

// TestHeadMatchesGet sends each request as GET and as HEAD and expects the same status and
// header fields (Date aside, which may tick between the two), the same Content-Length, and no
// body for HEAD.
func TestHeadMatchesGet(t *testing.T) {
	root := dotRoot(t)
	future := time.Now().Add(time.Hour)
	if err := os.WriteFile(filepath.Join(root, "future.txt"), []byte("future\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(root, "future.txt"), future, future); err != nil {
		t.Fatal(err)
	}
	// Every other fixture, directories included, an hour old: one made in the second a request
	// is answered in has its Last-Modified equal to Date, which the comparison below would set
	// aside for one of the pair and not the other (a GET and HEAD straddling that second).
	past := time.Now().Add(-time.Hour)
	if err := filepath.Walk(root, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.Mode()&os.ModeSymlink != 0 || fi.Name() == "future.txt" {
			return err // a link's target is not the fixture's to change
		}
		return os.Chtimes(path, past, past)
	}); err != nil {
		t.Fatal(err)
	}
	d := start(t, "-listen", "127.0.0.1:0", "-root", root, "-dir-listing", "-access-log", "off")
	paths := []string{"/", "/hello.txt", "/docs/", "/docs", "/dots/", "/.env", "/%2eenv", "/dots/.git/HEAD", "/.well-known/security.txt",
		"/missing", "/escape", "/future.txt", "/healthz", "/empty/"}
	conds := [][]string{nil, {"If-None-Match", "*"}, {"If-Match", `"nope"`}, {"If-Match", "*"},
		{"If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT"}, {"If-Unmodified-Since", "Mon, 01 Jan 2001 00:00:00 GMT"}}
	// A Last-Modified clamped to Date (future.txt) moves with the clock like Date: it is
	// checked against Date, then set aside with it.
	norm := func(p string, r response) {
		if lm := r.header.Get("Last-Modified"); p == "/future.txt" && lm != "" && lm == r.header.Get("Date") {
			r.header.Del("Last-Modified")
		} else if p == "/future.txt" && r.status == 200 {
			t.Errorf("%s: Last-Modified %q, Date %q", p, lm, r.header.Get("Date"))
		}
		r.header.Del("Date")
	}
	for _, p := range paths {
		for _, c := range conds {
			g, h := get(t, d.addr, "GET", p, c...), get(t, d.addr, "HEAD", p, c...)
			norm(p, g)
			norm(p, h)
			if g.status != h.status || !maps.EqualFunc(g.header, h.header, slices.Equal) || h.body != "" {
				t.Errorf("%s %v: GET %d %v, HEAD %d %v body %q", p, c, g.status, g.header, h.status, h.header, h.body)
			}
		}
	}
	d.stop()
}
