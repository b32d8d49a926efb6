package static

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// newFS opens an FS and closes it at the end of the test.
func newFS(t *testing.T, o Options) *FS {
	t.Helper()
	fs, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	return fs
}

// write creates root/name (and its directories) with body and, unless mt is zero, mtime mt.
func write(t *testing.T, root, name, body string, mt time.Time) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if !mt.IsZero() {
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
}

// sameAnswer reports how two responses differ as a client would see them (status, header
// fields in order, Content-Length, body), or "" when they do not.
func sameAnswer(t *testing.T, a, b result) string {
	t.Helper()
	switch {
	case a.status != b.status:
		return "status"
	case !slices.Equal(a.resp.Header, b.resp.Header):
		return "header"
	case a.length != b.length:
		return "length"
	case a.body != b.body:
		return "body"
	}
	return ""
}

// TestDotfilesExistenceHidden checks that a hidden path that exists and one that does not
// get the very same answer, for every method and conditional header, so nothing tells them
// apart.
func TestDotfilesExistenceHidden(t *testing.T) {
	root := tree(t)
	pairs := [][2]string{
		{"/.env", "/.nope"},
		{"/%2eenv", "/%2enope"},
		{"/dots/.git", "/dots/.nothing"},
		{"/dots/.git/", "/dots/.nothing/"},
		{"/dots/.git/HEAD", "/dots/.nothing/HEAD"},
		{"/dots/%2Egit/HEAD", "/dots/%2Enothing/HEAD"},
		{"/.well-known/.hidden", "/.well-known/.nope"},
		{"/.env/", "/.nope/"},
	}
	reqs := []Request{
		{Method: "GET"}, {Method: "HEAD"}, {Method: "OPTIONS"},
		{Method: "GET", IfNoneMatch: "*"}, {Method: "GET", IfMatch: "*"}, {Method: "HEAD", IfMatch: `"x"`},
		{Method: "GET", IfModifiedSince: "Mon, 01 Jan 2001 00:00:00 GMT"},
		{Method: "GET", IfUnmodifiedSince: "Mon, 01 Jan 2001 00:00:00 GMT"},
		{Method: "GET", Range: "bytes=0-1"}, {Method: "GET", Range: "bytes=999-"},
	}
	for _, o := range []Options{{Root: root}, {Root: root, DirListing: true}, {Root: root, FollowSymlinks: true, DirListing: true}} {
		fs := newFS(t, o)
		for _, p := range pairs {
			for _, q := range reqs {
				q1, q2 := q, q
				q1.Target, q2.Target = p[0], p[1]
				a, b := run(t, fs, q1), run(t, fs, q2)
				if a.status != 404 {
					t.Errorf("%+v %s %s: %d, want 404", o, q.Method, p[0], a.status)
				}
				if d := sameAnswer(t, a, b); d != "" {
					t.Errorf("%+v %s %s vs %s (%+v): %s differs: %d %v vs %d %v", o, q.Method, p[0], p[1], q, d, a.status, a.resp.Header, b.status, b.resp.Header)
				}
			}
		}
	}
}

var hrefRE = regexp.MustCompile(`href="([^"]*)"`)

// links returns the decoded-HTML hrefs of a listing page.
func links(body string) []string {
	var out []string
	for _, m := range hrefRE.FindAllStringSubmatch(body, -1) {
		out = append(out, strings.NewReplacer("&amp;", "&", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(m[1]))
	}
	return out
}

// TestListingLinks lists directories holding names of every awkward kind and follows every
// link on the page: none may be refused (400) or missing, and the names the path rules
// cannot express are not on the page at all.
func TestListingLinks(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"plain.txt": "p", "a b.txt": "ab", "ü.txt": "u", "\xff\xfe.bin": "bin", "q?x#y.txt": "q", "pct%41.txt": "pct",
		"semi;colon": "s", "amp&lt.txt": "amp", "<b>\".txt": "b", "+plus": "plus", "colon:x": "c", "sub dir/in.txt": "in",
		".env": "SECRET", ".well-known/security.txt": "wk", ".git/HEAD": "ref",
	}
	refused := []string{"back\\slash.txt", "ctl\x01.txt", "new\nline.txt", "del\x7f", "tab\tx", "cr\r"}
	for name, body := range files {
		write(t, root, name, body, time.Time{})
	}
	for _, name := range refused {
		write(t, root, name, "refused", time.Time{})
	}
	if err := os.Mkdir(filepath.Join(root, "sub dir", "bad\\dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub dir", filepath.Join(root, "link dir")); err != nil {
		t.Fatal(err)
	}
	for _, dots := range []bool{false, true} {
		fs := newFS(t, Options{Root: root, DirListing: true, ServeDotfiles: dots})
		seen := map[string]bool{}
		var walk func(dir string)
		walk = func(dir string) {
			page := run(t, fs, Request{Method: "GET", Target: dir})
			if page.status != 200 {
				t.Fatalf("dots=%v: listing %s: %d", dots, dir, page.status)
			}
			for _, name := range refused {
				if strings.Contains(page.body, name) || strings.Contains(page.body, url.PathEscape(name)) {
					t.Errorf("dots=%v: %s lists %q, which no request can reach", dots, dir, name)
				}
			}
			for _, href := range links(page.body) {
				if href == "../" {
					continue
				}
				u, err := url.Parse(dir)
				if err != nil {
					t.Fatal(err)
				}
				ref, err := url.Parse(href)
				if err != nil {
					t.Fatalf("%s: link %q: %v", dir, href, err)
				}
				target := u.ResolveReference(ref).EscapedPath()
				res := run(t, fs, Request{Method: "GET", Target: target})
				switch {
				case res.status == 301 && res.resp.Get("Location") == target+"/":
					// A symbolic link to a directory is listed as a file; the link redirects.
				case res.status != 200:
					t.Errorf("dots=%v: %s links %q (%s): GET answers %d", dots, dir, href, target, res.status)
				case strings.HasSuffix(target, "/"):
					walk(target)
				default:
					seen[target] = true
				}
			}
		}
		walk("/")
		want := map[string]bool{}
		for name := range files {
			if !dots && (strings.HasPrefix(name, ".env") || strings.HasPrefix(name, ".git")) {
				continue
			}
			p := "/"
			for i, seg := range strings.Split(name, "/") {
				if i > 0 {
					p += "/"
				}
				p += url.PathEscape(seg)
			}
			want[p] = true
		}
		for p := range want {
			if !seen[p] {
				t.Errorf("dots=%v: %s is not reachable from the listings (seen %v)", dots, p, seen)
			}
		}
		for p := range seen {
			if !want[p] {
				t.Errorf("dots=%v: listings link %s", dots, p)
			}
		}
	}
}

// TestListingValidators checks that a listing is a representation like a file: validators,
// the preconditions of RFC 9110 §13.1 in the order of §13.2.2, ranges, and a tag that
// changes exactly when the page does.
func TestListingValidators(t *testing.T) {
	root := t.TempDir()
	write(t, root, "d/a.txt", "a", time.Time{})
	dirTime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(root, "d"), dirTime, dirTime); err != nil {
		t.Fatal(err)
	}
	fs := newFS(t, Options{Root: root, DirListing: true})
	first := run(t, fs, Request{Method: "GET", Target: "/d/"})
	etag := first.resp.Get("ETag")
	if first.status != 200 || !strings.HasPrefix(etag, `"`) || len(etag) < 10 {
		t.Fatalf("listing: %d, ETag %q", first.status, etag)
	}
	lm := dirTime.Format(TimeFormat)
	if got := first.resp.Get("Last-Modified"); got != lm {
		t.Errorf("Last-Modified %q, want the directory's mtime %q", got, lm)
	}
	if first.resp.Get("Accept-Ranges") != "bytes" || first.resp.Get("Cache-Control") != "no-cache" {
		t.Errorf("headers: %v", first.resp.Header)
	}
	cases := []struct {
		name   string
		req    Request
		status int
	}{
		{"INM star", Request{IfNoneMatch: "*"}, 304},
		{"INM star HEAD", Request{Method: "HEAD", IfNoneMatch: "*"}, 304},
		{"INM own tag", Request{IfNoneMatch: etag}, 304},
		{"INM weak own tag", Request{IfNoneMatch: "W/" + etag}, 304},
		{"INM other", Request{IfNoneMatch: `"nope"`}, 200},
		{"IM nope", Request{IfMatch: `"nope"`}, 412},
		{"IM nope HEAD", Request{Method: "HEAD", IfMatch: `"nope"`}, 412},
		{"IM star", Request{IfMatch: "*"}, 200},
		{"IM own tag", Request{IfMatch: etag}, 200},
		{"IM before INM", Request{IfMatch: `"nope"`, IfNoneMatch: "*"}, 412},
		{"IUS earlier", Request{IfUnmodifiedSince: "Mon, 01 Jan 2001 00:00:00 GMT"}, 412},
		{"IUS equal", Request{IfUnmodifiedSince: lm}, 200},
		{"IMS equal", Request{IfModifiedSince: lm}, 304},
		{"IMS earlier", Request{IfModifiedSince: "Mon, 01 Jan 2001 00:00:00 GMT"}, 200},
		{"INM beats IMS", Request{IfNoneMatch: `"nope"`, IfModifiedSince: lm}, 200},
		{"range", Request{Range: "bytes=0-14"}, 206},
		{"range If-Range tag", Request{Range: "bytes=0-14", IfRange: etag}, 206},
		{"range If-Range weak", Request{Range: "bytes=0-14", IfRange: "W/" + etag}, 200},
		{"range If-Range stale", Request{Range: "bytes=0-14", IfRange: `"old"`}, 200},
		{"range unsatisfiable", Request{Range: "bytes=99999-"}, 416},
		{"OPTIONS", Request{Method: "OPTIONS"}, 200},
		{"OPTIONS INM star", Request{Method: "OPTIONS", IfNoneMatch: "*"}, 412},
	}
	for _, tc := range cases {
		q := tc.req
		if q.Method == "" {
			q.Method = "GET"
		}
		q.Target = "/d/"
		res := run(t, fs, q)
		if res.status != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, res.status, tc.status)
			continue
		}
		switch res.status {
		case 304:
			if res.resp.Get("ETag") != etag || res.resp.Get("Cache-Control") != "no-cache" || res.length != -1 {
				t.Errorf("%s: 304 fields %v, length %d", tc.name, res.resp.Header, res.length)
			}
		case 206:
			if res.body != first.body[:15] || res.resp.Get("Content-Range") != "bytes 0-14/"+strconv.Itoa(len(first.body)) {
				t.Errorf("%s: %q %q", tc.name, res.body, res.resp.Get("Content-Range"))
			}
		}
	}

	// The tag is stable while nothing changes, and changes with the page.
	if again := run(t, fs, Request{Method: "GET", Target: "/d/"}); again.resp.Get("ETag") != etag {
		t.Errorf("ETag changed without a change: %q, %q", etag, again.resp.Get("ETag"))
	}
	write(t, root, "d/b.txt", "b", time.Time{})
	after := run(t, fs, Request{Method: "GET", Target: "/d/", IfNoneMatch: etag})
	if after.status != 200 || after.resp.Get("ETag") == etag || !strings.Contains(after.body, "b.txt") {
		t.Errorf("after adding b.txt: %d, ETag %q (was %q)", after.status, after.resp.Get("ETag"), etag)
	}
	// A hidden file added does not change the page, so not the tag either.
	tag2 := after.resp.Get("ETag")
	write(t, root, "d/.hidden", "h", time.Time{})
	if r := run(t, fs, Request{Method: "GET", Target: "/d/", IfNoneMatch: tag2}); r.status != 304 {
		t.Errorf("after adding a hidden file: %d, want 304", r.status)
	}
}

// TestFutureMtime serves a file whose mtime is an hour ahead of the clock: Last-Modified is
// the response's Date (RFC 9110 §8.8.2.1), and a date the client holds from before — this
// server never sends one in the future, an older one or a replica with a fast clock might
// have — never gets a 304 for a file that was rewritten since.
func TestFutureMtime(t *testing.T) {
	root := t.TempDir()
	now := time.Date(2025, 6, 1, 12, 0, 0, 250e6, time.UTC)
	future := now.Add(time.Hour)
	write(t, root, "f.txt", "version 1\n", future)
	fs := newFS(t, Options{Root: root})

	r := run(t, fs, Request{Method: "GET", Target: "/f.txt", Now: now})
	nowText := now.Format(TimeFormat)
	if r.status != 200 || r.resp.Get("Last-Modified") != nowText || r.resp.Get("Date") != nowText {
		t.Fatalf("future mtime: %d, Last-Modified %q, Date %q; want both %q", r.status, r.resp.Get("Last-Modified"), r.resp.Get("Date"), nowText)
	}
	if h := run(t, fs, Request{Method: "HEAD", Target: "/f.txt", Now: now}); !slices.Equal(h.resp.Header, r.resp.Header) {
		t.Errorf("HEAD fields %v, GET %v", h.resp.Header, r.resp.Header)
	}
	later := now.Add(10 * time.Second)
	steps := []struct {
		name   string
		req    Request
		status int
	}{
		// Still in the future: the clamped date is "now" at every request, so the date the
		// client got ten seconds ago is older than it.
		{"IMS from the first response", Request{IfModifiedSince: nowText}, 200},
		{"IMS the future mtime itself", Request{IfModifiedSince: future.Format(TimeFormat)}, 200},
		{"IUS from the first response", Request{IfUnmodifiedSince: nowText}, 412},
		{"If-Range date", Request{Range: "bytes=0-3", IfRange: nowText}, 200},
		{"If-Range ETag still works", Request{Range: "bytes=0-3", IfRange: r.resp.Get("ETag")}, 206},
		{"INM ETag still works", Request{IfNoneMatch: r.resp.Get("ETag")}, 304},
	}
	for _, s := range steps {
		q := s.req
		q.Method, q.Target, q.Now = "GET", "/f.txt", later
		if got := run(t, fs, q); got.status != s.status {
			t.Errorf("%s: %d, want %d", s.name, got.status, s.status)
		}
	}

	// The file is rewritten with an ordinary mtime; a cache that holds the future date (as
	// sent before this rule existed) revalidates: it must get the new content.
	rewritten := later.Add(5 * time.Second)
	write(t, root, "f.txt", "version 2\n", rewritten)
	got := run(t, fs, Request{Method: "GET", Target: "/f.txt", Now: rewritten.Add(time.Minute), IfModifiedSince: future.Format(TimeFormat)})
	if got.status != 200 || got.body != "version 2\n" {
		t.Errorf("rewritten file, IMS with the old future date: %d %q, want 200 with the new content", got.status, got.body)
	}
	if got.resp.Get("Date") != "" {
		t.Errorf("Date sent for an old Last-Modified: %q", got.resp.Get("Date"))
	}
	if got := run(t, fs, Request{Method: "GET", Target: "/f.txt", Now: rewritten.Add(time.Minute), IfModifiedSince: rewritten.Format(TimeFormat)}); got.status != 304 {
		t.Errorf("IMS equal to the new mtime: %d, want 304", got.status)
	}
}

// TestRecentLastModified checks the same-second rule: a Last-Modified in the current second is
// sent with the Date it was compared to, and is not trusted to answer 304 or a ranged
// If-Range, since a second write in that second would not change it.
func TestRecentLastModified(t *testing.T) {
	root := t.TempDir()
	now := time.Date(2025, 6, 1, 12, 0, 0, 900e6, time.UTC)
	write(t, root, "f.txt", "fresh file\n", now.Add(-500*time.Millisecond))
	fs := newFS(t, Options{Root: root})
	sec := now.Format(TimeFormat)
	r := run(t, fs, Request{Method: "GET", Target: "/f.txt", Now: now})
	if r.resp.Get("Last-Modified") != sec || r.resp.Get("Date") != sec {
		t.Fatalf("Last-Modified %q, Date %q, want both %q", r.resp.Get("Last-Modified"), r.resp.Get("Date"), sec)
	}
	if got := run(t, fs, Request{Method: "GET", Target: "/f.txt", Now: now, IfModifiedSince: sec}); got.status != 200 {
		t.Errorf("IMS in the same second: %d, want 200", got.status)
	}
	if got := run(t, fs, Request{Method: "GET", Target: "/f.txt", Now: now, Range: "bytes=0-4", IfRange: sec}); got.status != 200 {
		t.Errorf("If-Range date in the same second: %d, want 200", got.status)
	}
	// A second later the date is a strong validator.
	next := now.Add(time.Second)
	if got := run(t, fs, Request{Method: "GET", Target: "/f.txt", Now: next, IfModifiedSince: sec}); got.status != 304 {
		t.Errorf("IMS a second later: %d, want 304", got.status)
	}
	if got := run(t, fs, Request{Method: "GET", Target: "/f.txt", Now: next, Range: "bytes=0-4", IfRange: sec}); got.status != 206 {
		t.Errorf("If-Range a second later: %d, want 206", got.status)
	}
	if got := run(t, fs, Request{Method: "GET", Target: "/f.txt", Now: next}); got.resp.Get("Date") != "" {
		t.Errorf("Date sent for an older Last-Modified: %q", got.resp.Get("Date"))
	}
}

// TestHeadParity checks that HEAD gets the status and header fields GET gets, with the same
// Content-Length and no body, across the cases this package decides (Range aside: it is
// defined for GET only, RFC 9110 §14.2).
func TestHeadParity(t *testing.T) {
	root := tree(t)
	write(t, root, "future.txt", "future\n", time.Now().Add(time.Hour))
	now := time.Now()
	etag := ETag(int64(len(hello)), mtime)
	targets := []string{"/", "/hello.txt", "/empty.txt", "/future.txt", "/sub/", "/sub", "/dots/", "/nope", "/.env", "/%2eenv",
		"/dots/.git/HEAD", "/.well-known/security.txt", "/../x", "/link-out", "/fifo", "/hello.txt/", "/idxdir/", "/withindex/"}
	conds := []Request{{}, {IfNoneMatch: "*"}, {IfNoneMatch: etag}, {IfMatch: `"nope"`}, {IfMatch: "*"}, {IfModifiedSince: lastMod},
		{IfModifiedSince: after}, {IfUnmodifiedSince: before}, {IfModifiedSince: "Fri, 01 Jan 2100 00:00:00 GMT"}}
	for _, o := range []Options{{Root: root}, {Root: root, DirListing: true}, {Root: root, DirListing: true, ServeDotfiles: true}} {
		fs := newFS(t, o)
		for _, target := range targets {
			for _, c := range conds {
				g, h := c, c
				g.Method, h.Method = "GET", "HEAD"
				g.Target, h.Target = target, target
				g.Now, h.Now = now, now
				gr, hr := run(t, fs, g), run(t, fs, h)
				if hr.resp.Body != nil || hr.resp.File != nil {
					t.Errorf("%+v HEAD %s: carries a body", o, target)
				}
				if gr.status != hr.status || !slices.Equal(gr.resp.Header, hr.resp.Header) || gr.length != hr.length {
					t.Errorf("%+v %s %+v: GET %d %v len %d, HEAD %d %v len %d", o, target, c, gr.status, gr.resp.Header, gr.length,
						hr.status, hr.resp.Header, hr.length)
				}
			}
		}
	}
}

// TestServeContent drives the in-memory path the daemon uses for /healthz, /metrics and its
// built-in page.
func TestServeContent(t *testing.T) {
	body := []byte("ok\n")
	health := &Content{Type: "text/plain", Body: body, CacheControl: "no-store"}
	page := &Content{Type: "text/html", Body: []byte("<p>page</p>"), ETag: ContentETag([]byte("<p>page</p>")), Ranges: true,
		ModTime: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	if page.ETag != ContentETag([]byte("<p>page</p>")) || page.ETag == ContentETag([]byte("<p>page!</p>")) {
		t.Fatalf("ContentETag is not a function of the bytes")
	}
	cases := []struct {
		name   string
		c      *Content
		req    Request
		status int
		body   string
		length int64
		header map[string]string
	}{
		{"GET", health, Request{Method: "GET"}, 200, "ok\n", 3, map[string]string{"Cache-Control": "no-store", "Content-Type": "text/plain", "ETag": "", "Last-Modified": "", "Accept-Ranges": ""}},
		{"HEAD", health, Request{Method: "HEAD"}, 200, "", 3, nil},
		{"OPTIONS", health, Request{Method: "OPTIONS"}, 200, "", 0, map[string]string{"Allow": AllowedMethods}},
		{"POST", health, Request{Method: "POST"}, 405, "405 Method Not Allowed\n", 23, map[string]string{"Allow": AllowedMethods}},
		{"FOO", health, Request{Method: "FOO"}, 501, "501 Not Implemented\n", 20, map[string]string{"Allow": ""}},
		{"INM star", health, Request{Method: "GET", IfNoneMatch: "*"}, 304, "", -1, map[string]string{"Cache-Control": "no-store"}},
		{"INM tag", health, Request{Method: "GET", IfNoneMatch: `"x"`}, 200, "ok\n", 3, nil},
		{"IM nope", health, Request{Method: "GET", IfMatch: `"nope"`}, 412, "412 Precondition Failed\n", 24, nil},
		{"IM star", health, Request{Method: "GET", IfMatch: "*"}, 200, "ok\n", 3, nil},
		{"IMS without Last-Modified", health, Request{Method: "GET", IfModifiedSince: "Fri, 01 Jan 2100 00:00:00 GMT"}, 200, "ok\n", 3, nil},
		{"IUS without Last-Modified", health, Request{Method: "GET", IfUnmodifiedSince: "Mon, 01 Jan 2001 00:00:00 GMT"}, 200, "ok\n", 3, nil},
		{"Range ignored", health, Request{Method: "GET", Range: "bytes=0-0"}, 200, "ok\n", 3, nil},
		{"page", page, Request{Method: "GET"}, 200, "<p>page</p>", 11, map[string]string{"ETag": page.ETag, "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT", "Accept-Ranges": "bytes"}},
		{"page INM", page, Request{Method: "GET", IfNoneMatch: page.ETag}, 304, "", -1, map[string]string{"ETag": page.ETag}},
		{"page IMS", page, Request{Method: "GET", IfModifiedSince: "Mon, 01 Jan 2024 00:00:00 GMT"}, 304, "", -1, nil},
		{"page range", page, Request{Method: "GET", Range: "bytes=3-6"}, 206, "page", 4, map[string]string{"Content-Range": "bytes 3-6/11"}},
		{"page range HEAD", page, Request{Method: "HEAD", Range: "bytes=3-6"}, 200, "", 11, nil},
		{"page range 416", page, Request{Method: "GET", Range: "bytes=11-"}, 416, "416 Range Not Satisfiable\n", 26, map[string]string{"Content-Range": "bytes */11"}},
	}
	for _, tc := range cases {
		resp := ServeContent(&tc.req, tc.c)
		if resp.File != nil {
			t.Fatalf("%s: File set", tc.name)
		}
		if resp.Status != tc.status || string(resp.Body) != tc.body || resp.ContentLength != tc.length {
			t.Errorf("%s: %d %q len %d, want %d %q len %d", tc.name, resp.Status, resp.Body, resp.ContentLength, tc.status, tc.body, tc.length)
		}
		for k, v := range tc.header {
			if got := resp.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", tc.name, k, got, v)
			}
		}
	}
	if string(body) != "ok\n" {
		t.Errorf("ServeContent modified the body: %q", body)
	}
	if r := ServeContent(nil, health); r.Status != 500 {
		t.Errorf("nil request: %d", r.Status)
	}
	if r := ServeContent(&Request{Method: "GET"}, nil); r.Status != 500 {
		t.Errorf("nil content: %d", r.Status)
	}
}

// TestCheckMethod pins the method classes: served, recognised but not allowed (405 with
// Allow), and not recognised (501).
func TestCheckMethod(t *testing.T) {
	for m, want := range map[string]int{
		"GET": 0, "HEAD": 0, "OPTIONS": 0,
		"POST": 405, "PUT": 405, "DELETE": 405, "CONNECT": 405, "TRACE": 405, "PATCH": 405,
		"FOO": 501, "PROPFIND": 501, "MKCOL": 501, "get": 501, "Get": 501, "": 501, "GET ": 501,
	} {
		resp, ok := CheckMethod(m)
		switch {
		case want == 0 && !ok:
			t.Errorf("%q refused: %d", m, resp.Status)
		case want != 0 && (ok || resp.Status != want):
			t.Errorf("%q: ok=%v status %d, want %d", m, ok, resp.Status, want)
		case want == 405 && resp.Get("Allow") != AllowedMethods:
			t.Errorf("%q: Allow %q", m, resp.Get("Allow"))
		case want == 501 && resp.Get("Allow") != "":
			t.Errorf("%q: 501 with Allow %q", m, resp.Get("Allow"))
		}
	}
}
