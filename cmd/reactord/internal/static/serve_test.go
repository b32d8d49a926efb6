package static

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// mtime is the modification time given to every test file.
var mtime = time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC)

const (
	hello    = "hello, world\n" // 13 bytes
	lastMod  = "Tue, 02 Jan 2024 03:04:05 GMT"
	before   = "Tue, 02 Jan 2024 03:04:04 GMT"
	after    = "Tue, 02 Jan 2024 03:04:06 GMT"
	indexDoc = "<h1>home</h1>\n"
)

// tree builds a served root and a sibling "outside" directory with a secret, and returns
// the root's path.
func tree(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	files := map[string]string{
		"root/index.html":               indexDoc,
		"root/hello.txt":                hello,
		"root/empty.txt":                "",
		"root/a b.txt":                  "spaced\n",
		"root/UPPER.HTML":               "<p>up</p>",
		"root/blob.zzzunknown":          "??",
		"root/sub/a.txt":                "a\n",
		"root/sub/<we\"ird>&.txt":       "w\n",
		"root/sub/deeper/x.txt":         "x\n",
		"root/withindex/index.html":     "<p>with</p>",
		"root/idxdir/index.html/x.txt":  "x",
		"outside/secret.txt":            "TOP SECRET\n",
		"root/inner/target/landing.txt": "landed\n",
		"root/.env":                     "SECRET=1\n",
		"root/dots/.git/HEAD":           "ref: refs/heads/main\n",
		"root/dots/visible.txt":         "v\n",
		"root/sub/.secret":              "s\n",
		"root/.well-known/security.txt": "Contact: x\n",
		"root/.well-known/.hidden":      "h\n",
	}
	for name, body := range files {
		p := filepath.Join(base, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"root/link-in":          "hello.txt",
		"root/sub/link-up":      "../hello.txt",
		"root/link-abs":         filepath.Join(root, "hello.txt"),
		"root/link-out":         "../outside/secret.txt",
		"root/dirlink-out":      "../outside",
		"root/inner/link-inner": "target",
		"root/env-link":         ".env",
		"root/gitdir-link":      "dots/.git",
	}
	for name, dest := range links {
		if err := os.Symlink(dest, filepath.Join(base, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// result is what a client would see for a Response.
type result struct {
	status int
	length int64
	body   string
	resp   Response
}

func run(t *testing.T, fs *FS, r Request) result {
	t.Helper()
	resp := fs.Serve(&r)
	defer resp.Close()
	res := result{status: resp.Status, length: resp.ContentLength, resp: resp}
	switch {
	case resp.File != nil && resp.Body != nil:
		t.Fatalf("%s %s: both File and Body set", r.Method, r.Target)
	case resp.File != nil:
		b, err := io.ReadAll(io.NewSectionReader(resp.File, resp.Offset, resp.ContentLength))
		if err != nil {
			t.Fatal(err)
		}
		res.body = string(b)
	case resp.Body != nil:
		res.body = string(resp.Body)
	}
	if resp.ContentLength >= 0 && (resp.File != nil || resp.Body != nil) && int64(len(res.body)) != resp.ContentLength {
		t.Fatalf("%s %s: body has %d bytes, Content-Length %d", r.Method, r.Target, len(res.body), resp.ContentLength)
	}
	for _, f := range resp.Header {
		if f.Name == "Content-Length" {
			t.Fatalf("Content-Length must not be in Header")
		}
	}
	return res
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

func TestServe(t *testing.T) {
	root := tree(t)
	etag := ETag(int64(len(hello)), mtime)
	weak := "W/" + etag
	type hdr = map[string]string
	cases := []struct {
		name      string
		req       Request
		follow    bool
		listing   bool
		dotfiles  bool
		status    int
		body      string // exact body; "" with length 0 means empty, checked when bodySub == ""
		bodySub   []string
		bodyNot   []string
		length    int64 // checked when status is 304 (-1) or for HEAD
		header    hdr   // exact values
		noHeader  []string
		checkBody bool
	}{
		// Basic GET / HEAD and method handling.
		{name: "index", req: Request{Method: "GET", Target: "/"}, status: 200, body: indexDoc, checkBody: true,
			header: hdr{"Content-Type": "text/html; charset=utf-8"}},
		{name: "index HEAD", req: Request{Method: "HEAD", Target: "/"}, status: 200, length: int64(len(indexDoc)), checkBody: true},
		{name: "file", req: Request{Method: "GET", Target: "/hello.txt"}, status: 200, body: hello, checkBody: true,
			header: hdr{"Content-Type": "text/plain; charset=utf-8", "ETag": etag, "Last-Modified": lastMod, "Accept-Ranges": "bytes"}},
		{name: "file HEAD", req: Request{Method: "HEAD", Target: "/hello.txt"}, status: 200, length: 13, checkBody: true,
			header: hdr{"ETag": etag, "Last-Modified": lastMod}},
		{name: "query ignored", req: Request{Method: "GET", Target: "/hello.txt?v=3"}, status: 200, body: hello, checkBody: true},
		{name: "double slash", req: Request{Method: "GET", Target: "//hello.txt"}, status: 200, body: hello, checkBody: true},
		{name: "encoded name", req: Request{Method: "GET", Target: "/a%20b.txt"}, status: 200, body: "spaced\n", checkBody: true},
		{name: "upper ext", req: Request{Method: "GET", Target: "/UPPER.HTML"}, status: 200, header: hdr{"Content-Type": "text/html; charset=utf-8"}},
		{name: "unknown ext", req: Request{Method: "GET", Target: "/blob.zzzunknown"}, status: 200, header: hdr{"Content-Type": "application/octet-stream"}},
		{name: "empty file", req: Request{Method: "GET", Target: "/empty.txt"}, status: 200, length: 0, checkBody: true},
		{name: "POST", req: Request{Method: "POST", Target: "/hello.txt"}, status: 405, header: hdr{"Allow": "GET, HEAD, OPTIONS"}},
		{name: "PUT", req: Request{Method: "PUT", Target: "/hello.txt"}, status: 405, header: hdr{"Allow": "GET, HEAD, OPTIONS"}},
		{name: "DELETE", req: Request{Method: "DELETE", Target: "/"}, status: 405, header: hdr{"Allow": "GET, HEAD, OPTIONS"}},
		{name: "PATCH", req: Request{Method: "PATCH", Target: "/hello.txt"}, status: 405, header: hdr{"Allow": "GET, HEAD, OPTIONS"}},
		{name: "TRACE", req: Request{Method: "TRACE", Target: "/"}, status: 405, header: hdr{"Allow": "GET, HEAD, OPTIONS"}},
		{name: "CONNECT", req: Request{Method: "CONNECT", Target: "example.com:443"}, status: 405, header: hdr{"Allow": "GET, HEAD, OPTIONS"}},
		{name: "POST missing still 405", req: Request{Method: "POST", Target: "/nope.txt"}, status: 405},
		{name: "unknown method", req: Request{Method: "FOO", Target: "/hello.txt"}, status: 501, bodySub: []string{"501 Not Implemented"}, noHeader: []string{"Allow"}},
		{name: "PROPFIND", req: Request{Method: "PROPFIND", Target: "/"}, status: 501},
		{name: "unknown method bad path", req: Request{Method: "FOO", Target: "/../x"}, status: 501},
		{name: "lower-case get", req: Request{Method: "get", Target: "/"}, status: 501},
		{name: "OPTIONS star", req: Request{Method: "OPTIONS", Target: "*"}, status: 200, length: 0, checkBody: true,
			header: hdr{"Allow": "GET, HEAD, OPTIONS"}, noHeader: []string{"Content-Type", "ETag"}},
		{name: "OPTIONS file", req: Request{Method: "OPTIONS", Target: "/hello.txt"}, status: 200, length: 0, checkBody: true,
			header: hdr{"Allow": "GET, HEAD, OPTIONS"}, noHeader: []string{"Content-Type", "ETag", "Last-Modified"}},
		{name: "OPTIONS missing", req: Request{Method: "OPTIONS", Target: "/nope.txt"}, status: 404},
		{name: "OPTIONS bad path", req: Request{Method: "OPTIONS", Target: "/../x"}, status: 400},
		{name: "OPTIONS If-Match fail", req: Request{Method: "OPTIONS", Target: "/hello.txt", IfMatch: `"nope"`}, status: 412},
		{name: "OPTIONS If-None-Match star", req: Request{Method: "OPTIONS", Target: "/hello.txt", IfNoneMatch: "*"}, status: 412},
		{name: "OPTIONS IMS ignored", req: Request{Method: "OPTIONS", Target: "/hello.txt", IfModifiedSince: after}, status: 200},
		{name: "OPTIONS listing", req: Request{Method: "OPTIONS", Target: "/sub/"}, listing: true, status: 200, length: 0, checkBody: true},
		{name: "OPTIONS listing off", req: Request{Method: "OPTIONS", Target: "/sub/"}, status: 403},
		{name: "missing", req: Request{Method: "GET", Target: "/nope.txt"}, status: 404, bodySub: []string{"404 Not Found"}},
		{name: "missing HEAD", req: Request{Method: "HEAD", Target: "/nope.txt"}, status: 404, length: 14, checkBody: true},
		{name: "file with slash", req: Request{Method: "GET", Target: "/hello.txt/"}, status: 404},
		{name: "fifo", req: Request{Method: "GET", Target: "/fifo"}, status: 403},

		// Directories.
		{name: "dir redirect", req: Request{Method: "GET", Target: "/sub"}, status: 301, header: hdr{"Location": "/sub/"}},
		{name: "dir redirect query", req: Request{Method: "GET", Target: "/sub?x=1"}, status: 301, header: hdr{"Location": "/sub/?x=1"}},
		{name: "dir redirect no open redirect", req: Request{Method: "GET", Target: "//sub"}, status: 301, header: hdr{"Location": "/sub/"}},
		{name: "dir redirect HEAD", req: Request{Method: "HEAD", Target: "/sub"}, status: 301, header: hdr{"Location": "/sub/"}},
		{name: "dir listing off", req: Request{Method: "GET", Target: "/sub/"}, status: 403},
		{name: "dir listing on", req: Request{Method: "GET", Target: "/sub/"}, listing: true, status: 200,
			header:  hdr{"Content-Type": "text/html; charset=utf-8"},
			bodySub: []string{"Index of /sub/", `href="./a.txt"`, `href="./deeper/"`, "&lt;we&#34;ird&gt;&amp;.txt", `href="./%3Cwe%22ird%3E&amp;.txt"`, `href="../"`},
			bodyNot: []string{"<we"}},
		{name: "dir listing HEAD", req: Request{Method: "HEAD", Target: "/sub/"}, listing: true, status: 200},
		{name: "root listing has no parent", req: Request{Method: "GET", Target: "/idxdir/"}, listing: true, status: 200,
			bodySub: []string{"index.html/"}},
		{name: "index in subdir", req: Request{Method: "GET", Target: "/withindex/"}, status: 200, body: "<p>with</p>", checkBody: true},
		{name: "index.html is a dir", req: Request{Method: "GET", Target: "/idxdir/"}, status: 403},

		// Dotfiles: refused as missing unless ServeDotfiles, whatever the encoding.
		{name: "dotfile", req: Request{Method: "GET", Target: "/.env"}, status: 404, body: "404 Not Found\n", checkBody: true},
		{name: "dotfile encoded", req: Request{Method: "GET", Target: "/%2eenv"}, status: 404, bodyNot: []string{"SECRET"}},
		{name: "dotfile encoded upper", req: Request{Method: "GET", Target: "/%2Eenv"}, status: 404},
		{name: "dotfile double slash", req: Request{Method: "GET", Target: "//.env"}, status: 404},
		{name: "dot dir", req: Request{Method: "GET", Target: "/dots/.git/HEAD"}, status: 404, bodyNot: []string{"ref:"}},
		{name: "dot dir encoded", req: Request{Method: "GET", Target: "/dots/%2Egit/HEAD"}, status: 404},
		{name: "dot dir no redirect", req: Request{Method: "GET", Target: "/dots/.git"}, status: 404, noHeader: []string{"Location"}},
		{name: "dot dir slash", req: Request{Method: "GET", Target: "/dots/.git/"}, listing: true, status: 404},
		{name: "dotfile HEAD", req: Request{Method: "HEAD", Target: "/.env"}, status: 404, length: 14, checkBody: true},
		{name: "dotfile conditional", req: Request{Method: "GET", Target: "/.env", IfNoneMatch: "*"}, status: 404},
		{name: "dotfile range", req: Request{Method: "GET", Target: "/.env", Range: "bytes=0-3"}, status: 404},
		{name: "dotfile OPTIONS", req: Request{Method: "OPTIONS", Target: "/.env"}, status: 404},
		{name: "dotfile in subdir", req: Request{Method: "GET", Target: "/sub/.secret"}, status: 404},
		{name: "dotfile with query", req: Request{Method: "GET", Target: "/.env?x=1"}, status: 404},
		{name: "well-known", req: Request{Method: "GET", Target: "/.well-known/security.txt"}, status: 200, body: "Contact: x\n", checkBody: true},
		{name: "well-known encoded", req: Request{Method: "GET", Target: "/%2Ewell-known/security.txt"}, status: 200},
		{name: "well-known redirect", req: Request{Method: "GET", Target: "/.well-known"}, status: 301, header: hdr{"Location": "/.well-known/"}},
		{name: "well-known nested dotfile", req: Request{Method: "GET", Target: "/.well-known/.hidden"}, status: 404},
		{name: "well-known only at root", req: Request{Method: "GET", Target: "/sub/.well-known/x"}, status: 404},
		{name: "link to dotfile is served", req: Request{Method: "GET", Target: "/env-link"}, status: 200, body: "SECRET=1\n", checkBody: true},
		{name: "link to dot dir is served", req: Request{Method: "GET", Target: "/gitdir-link/HEAD"}, status: 200},
		{name: "dotfiles on", req: Request{Method: "GET", Target: "/.env"}, dotfiles: true, status: 200, body: "SECRET=1\n", checkBody: true},
		{name: "dotfiles on dot dir", req: Request{Method: "GET", Target: "/dots/.git/HEAD"}, dotfiles: true, status: 200},
		{name: "dotfiles on encoded", req: Request{Method: "GET", Target: "/%2eenv"}, dotfiles: true, status: 200},
		{name: "dotfiles on still refuses dotdot", req: Request{Method: "GET", Target: "/.%2e/outside/secret.txt"}, dotfiles: true, status: 400},
		{name: "listing hides dotfiles", req: Request{Method: "GET", Target: "/dots/"}, listing: true, status: 200,
			bodySub: []string{`href="./visible.txt"`}, bodyNot: []string{".git"}},
		{name: "listing shows dotfiles when on", req: Request{Method: "GET", Target: "/dots/"}, listing: true, dotfiles: true, status: 200,
			bodySub: []string{`href="./.git/"`, `href="./visible.txt"`}},

		// Traversal and malformed paths: all refused before the file system is touched.
		{name: "dotdot", req: Request{Method: "GET", Target: "/../outside/secret.txt"}, status: 400},
		{name: "dotdot inner", req: Request{Method: "GET", Target: "/sub/../../outside/secret.txt"}, status: 400},
		{name: "encoded dotdot", req: Request{Method: "GET", Target: "/%2e%2e/outside/secret.txt"}, status: 400},
		{name: "encoded dotdot upper", req: Request{Method: "GET", Target: "/%2E%2E/outside/secret.txt"}, status: 400},
		{name: "half encoded dotdot", req: Request{Method: "GET", Target: "/.%2e/outside/secret.txt"}, status: 400},
		{name: "encoded slash", req: Request{Method: "GET", Target: "/sub/..%2f..%2foutside%2fsecret.txt"}, status: 400},
		{name: "encoded slash plain", req: Request{Method: "GET", Target: "/sub%2fa.txt"}, status: 400},
		{name: "backslash", req: Request{Method: "GET", Target: "/..\\outside\\secret.txt"}, status: 400},
		{name: "encoded backslash", req: Request{Method: "GET", Target: "/..%5coutside%5csecret.txt"}, status: 400},
		{name: "NUL", req: Request{Method: "GET", Target: "/hello.txt%00.html"}, status: 400},
		{name: "raw NUL", req: Request{Method: "GET", Target: "/hello.txt\x00"}, status: 400},
		{name: "control", req: Request{Method: "GET", Target: "/hello%0a.txt"}, status: 400},
		{name: "dot segment", req: Request{Method: "GET", Target: "/./hello.txt"}, status: 400},
		{name: "encoded dot segment", req: Request{Method: "GET", Target: "/sub/%2e/a.txt"}, status: 400},
		{name: "relative", req: Request{Method: "GET", Target: "hello.txt"}, status: 400},
		{name: "empty", req: Request{Method: "GET", Target: ""}, status: 400},
		{name: "bad escape", req: Request{Method: "GET", Target: "/%zz"}, status: 400},
		{name: "truncated escape", req: Request{Method: "GET", Target: "/hello.txt%2"}, status: 400},
		{name: "CRLF in query", req: Request{Method: "GET", Target: "/sub?a\r\nSet-Cookie: x=1"}, status: 400},
		{name: "fragment", req: Request{Method: "GET", Target: "/hello.txt#x"}, status: 400},
		{name: "absolute form", req: Request{Method: "GET", Target: "http://evil/etc/passwd"}, status: 400},
		{name: "refused HEAD", req: Request{Method: "HEAD", Target: "/../x"}, status: 400, length: 16, checkBody: true},

		// Symbolic links.
		{name: "link inside", req: Request{Method: "GET", Target: "/link-in"}, status: 200, body: hello, checkBody: true},
		{name: "link up inside", req: Request{Method: "GET", Target: "/sub/link-up"}, status: 200, body: hello, checkBody: true},
		{name: "dir link inside", req: Request{Method: "GET", Target: "/inner/link-inner/landing.txt"}, status: 200, body: "landed\n", checkBody: true},
		{name: "link outside refused", req: Request{Method: "GET", Target: "/link-out"}, status: 403, bodyNot: []string{"SECRET"}},
		{name: "dir link outside refused", req: Request{Method: "GET", Target: "/dirlink-out/secret.txt"}, status: 403, bodyNot: []string{"SECRET"}},
		{name: "absolute link refused", req: Request{Method: "GET", Target: "/link-abs"}, status: 403},
		{name: "link outside followed", req: Request{Method: "GET", Target: "/link-out"}, follow: true, status: 200, body: "TOP SECRET\n", checkBody: true},
		{name: "dir link outside followed", req: Request{Method: "GET", Target: "/dirlink-out/secret.txt"}, follow: true, status: 200, body: "TOP SECRET\n", checkBody: true},
		{name: "absolute link followed", req: Request{Method: "GET", Target: "/link-abs"}, follow: true, status: 200, body: hello, checkBody: true},
		{name: "follow still refuses dotdot", req: Request{Method: "GET", Target: "/%2e%2e/outside/secret.txt"}, follow: true, status: 400},

		// If-None-Match and If-Modified-Since.
		{name: "INM match", req: Request{Method: "GET", Target: "/hello.txt", IfNoneMatch: etag}, status: 304, length: -1, checkBody: true,
			header: hdr{"ETag": etag, "Last-Modified": lastMod}, noHeader: []string{"Content-Type", "Content-Range"}},
		{name: "INM weak match", req: Request{Method: "GET", Target: "/hello.txt", IfNoneMatch: weak}, status: 304, length: -1},
		{name: "INM list", req: Request{Method: "GET", Target: "/hello.txt", IfNoneMatch: `"a", W/"b",` + etag}, status: 304, length: -1},
		{name: "INM star", req: Request{Method: "GET", Target: "/hello.txt", IfNoneMatch: "*"}, status: 304, length: -1},
		{name: "INM other", req: Request{Method: "GET", Target: "/hello.txt", IfNoneMatch: `"other"`}, status: 200, body: hello, checkBody: true},
		{name: "INM garbage", req: Request{Method: "GET", Target: "/hello.txt", IfNoneMatch: `nonsense, "x`}, status: 200},
		{name: "INM HEAD", req: Request{Method: "HEAD", Target: "/hello.txt", IfNoneMatch: etag}, status: 304, length: -1},
		{name: "INM beats IMS (no match)", req: Request{Method: "GET", Target: "/hello.txt", IfNoneMatch: `"other"`, IfModifiedSince: after}, status: 200},
		{name: "INM beats IMS (match)", req: Request{Method: "GET", Target: "/hello.txt", IfNoneMatch: etag, IfModifiedSince: before}, status: 304, length: -1},
		{name: "IMS equal", req: Request{Method: "GET", Target: "/hello.txt", IfModifiedSince: lastMod}, status: 304, length: -1},
		{name: "IMS later", req: Request{Method: "GET", Target: "/hello.txt", IfModifiedSince: after}, status: 304, length: -1},
		{name: "IMS earlier", req: Request{Method: "GET", Target: "/hello.txt", IfModifiedSince: before}, status: 200, body: hello, checkBody: true},
		{name: "IMS invalid", req: Request{Method: "GET", Target: "/hello.txt", IfModifiedSince: "yesterday"}, status: 200},
		{name: "IMS rfc850", req: Request{Method: "GET", Target: "/hello.txt", IfModifiedSince: "Tuesday, 02-Jan-24 03:04:05 GMT"}, status: 304, length: -1},
		{name: "IMS asctime", req: Request{Method: "GET", Target: "/hello.txt", IfModifiedSince: "Tue Jan  2 03:04:05 2024"}, status: 304, length: -1},
		{name: "IMS HEAD", req: Request{Method: "HEAD", Target: "/hello.txt", IfModifiedSince: lastMod}, status: 304, length: -1},
		{name: "IMS in the future ignored", req: Request{Method: "GET", Target: "/hello.txt", IfModifiedSince: "Fri, 01 Jan 2100 00:00:00 GMT"}, status: 200},

		// If-Match and If-Unmodified-Since.
		{name: "IM match", req: Request{Method: "GET", Target: "/hello.txt", IfMatch: etag}, status: 200, body: hello, checkBody: true},
		{name: "IM star", req: Request{Method: "GET", Target: "/hello.txt", IfMatch: "*"}, status: 200},
		{name: "IM other", req: Request{Method: "GET", Target: "/hello.txt", IfMatch: `"other"`}, status: 412},
		{name: "IM weak never matches", req: Request{Method: "GET", Target: "/hello.txt", IfMatch: weak}, status: 412},
		{name: "IUS earlier", req: Request{Method: "GET", Target: "/hello.txt", IfUnmodifiedSince: before}, status: 412},
		{name: "IUS equal", req: Request{Method: "GET", Target: "/hello.txt", IfUnmodifiedSince: lastMod}, status: 200},
		{name: "IM beats IUS", req: Request{Method: "GET", Target: "/hello.txt", IfMatch: etag, IfUnmodifiedSince: before}, status: 200},

		// Range.
		{name: "range first bytes", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=0-4"}, status: 206, body: "hello", checkBody: true,
			header: hdr{"Content-Range": "bytes 0-4/13", "ETag": etag}},
		{name: "range open end", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=7-"}, status: 206, body: "world\n", checkBody: true,
			header: hdr{"Content-Range": "bytes 7-12/13"}},
		{name: "range suffix", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=-6"}, status: 206, body: "world\n", checkBody: true,
			header: hdr{"Content-Range": "bytes 7-12/13"}},
		{name: "range suffix too long", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=-100"}, status: 206, body: hello, checkBody: true,
			header: hdr{"Content-Range": "bytes 0-12/13"}},
		{name: "range end clamped", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=5-100"}, status: 206, body: ", world\n", checkBody: true,
			header: hdr{"Content-Range": "bytes 5-12/13"}},
		{name: "range one byte", req: Request{Method: "GET", Target: "/hello.txt", Range: "BYTES = 0-0"}, status: 206, body: "h", checkBody: true},
		{name: "range last byte", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=12-12"}, status: 206, body: "\n", checkBody: true},
		{name: "range past end", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=13-"}, status: 416,
			header: hdr{"Content-Range": "bytes */13"}},
		{name: "range suffix zero", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=-0"}, status: 416, header: hdr{"Content-Range": "bytes */13"}},
		{name: "range huge", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=99999999999999999999-"}, status: 416},
		{name: "range huge end", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=2-99999999999999999999"}, status: 206, body: "llo, world\n", checkBody: true},
		{name: "multi range served whole", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=0-1,3-4"}, status: 200, body: hello, checkBody: true,
			noHeader: []string{"Content-Range"}},
		{name: "multi range unsatisfiable", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=20-30, 40-"}, status: 416},
		{name: "range reversed ignored", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=5-2"}, status: 200, body: hello, checkBody: true},
		{name: "range garbage ignored", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=abc"}, status: 200},
		{name: "range unit ignored", req: Request{Method: "GET", Target: "/hello.txt", Range: "items=0-1"}, status: 200},
		{name: "range empty set ignored", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes="}, status: 200},
		{name: "range on HEAD ignored", req: Request{Method: "HEAD", Target: "/hello.txt", Range: "bytes=0-4"}, status: 200, length: 13},
		{name: "range empty file", req: Request{Method: "GET", Target: "/empty.txt", Range: "bytes=0-"}, status: 416, header: hdr{"Content-Range": "bytes */0"}},
		{name: "range suffix empty file", req: Request{Method: "GET", Target: "/empty.txt", Range: "bytes=-5"}, status: 200, length: 0},
		{name: "range after INM match", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=0-4", IfNoneMatch: etag}, status: 304, length: -1},
		{name: "range after IM fail", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=0-4", IfMatch: `"x"`}, status: 412},
		{name: "If-Range etag", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=0-4", IfRange: etag}, status: 206, body: "hello", checkBody: true},
		{name: "If-Range etag stale", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=0-4", IfRange: `"old"`}, status: 200, body: hello, checkBody: true},
		{name: "If-Range weak", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=0-4", IfRange: weak}, status: 200},
		{name: "If-Range date", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=0-4", IfRange: lastMod}, status: 206},
		{name: "If-Range date later", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=0-4", IfRange: after}, status: 200},
		{name: "If-Range garbage", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=0-4", IfRange: "soon"}, status: 200},
		{name: "If-Range unsatisfiable stale", req: Request{Method: "GET", Target: "/hello.txt", Range: "bytes=99-", IfRange: `"old"`}, status: 200},
	}
	before := openFDs(t)
	fss := map[Options]*FS{}
	for _, tc := range cases {
		o := Options{Root: root, FollowSymlinks: tc.follow, DirListing: tc.listing, ServeDotfiles: tc.dotfiles}
		if fss[o] == nil {
			fs, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			fss[o] = fs
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, fss[Options{Root: root, FollowSymlinks: tc.follow, DirListing: tc.listing, ServeDotfiles: tc.dotfiles}], tc.req)
			if res.status != tc.status {
				t.Fatalf("status = %d, want %d (body %q)", res.status, tc.status, res.body)
			}
			if tc.req.Method == "HEAD" && (res.resp.Body != nil || res.resp.File != nil) {
				t.Errorf("HEAD response carries a body")
			}
			if tc.checkBody {
				if res.body != tc.body {
					t.Errorf("body = %q, want %q", res.body, tc.body)
				}
				if tc.req.Method == "HEAD" || tc.status == 304 {
					if res.resp.Body != nil || res.resp.File != nil {
						t.Errorf("HEAD/304 carries a body")
					}
					if res.length != tc.length {
						t.Errorf("Content-Length = %d, want %d", res.length, tc.length)
					}
				} else if res.length != int64(len(tc.body)) {
					t.Errorf("Content-Length = %d, want %d", res.length, len(tc.body))
				}
			}
			for _, s := range tc.bodySub {
				if !strings.Contains(res.body, s) {
					t.Errorf("body lacks %q:\n%s", s, res.body)
				}
			}
			for _, s := range tc.bodyNot {
				if strings.Contains(res.body, s) {
					t.Errorf("body contains %q:\n%s", s, res.body)
				}
			}
			for k, v := range tc.header {
				if got := res.resp.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			for _, k := range tc.noHeader {
				if got := res.resp.Get(k); got != "" {
					t.Errorf("%s = %q, want none", k, got)
				}
			}
		})
	}
	for _, fs := range fss {
		if err := fs.Close(); err != nil {
			t.Error(err)
		}
	}
	if after := openFDs(t); after != before {
		t.Errorf("open fds: %d before, %d after: a Response leaked its file", before, after)
	}
}

func TestServeNil(t *testing.T) {
	var fs *FS
	if r := fs.Serve(&Request{Method: "GET", Target: "/"}); r.Status != 500 {
		t.Errorf("nil FS: %d", r.Status)
	}
	fs2, err := New(Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer fs2.Close()
	if r := fs2.Serve(nil); r.Status != 500 {
		t.Errorf("nil request: %d", r.Status)
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{}); !errors.Is(err, ErrNoRoot) {
		t.Errorf("empty root: %v", err)
	}
	if _, err := New(Options{Root: file}); !errors.Is(err, ErrNotDir) {
		t.Errorf("file root: %v", err)
	}
	if _, err := New(Options{Root: filepath.Join(dir, "missing")}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing root: %v", err)
	}
	fs, err := New(Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	if fs.Root() != dir {
		t.Errorf("Root() = %q", fs.Root())
	}
	if err := fs.Close(); err != nil {
		t.Error(err)
	}
}

// TestServeLargeRange checks offsets beyond 32 bits on a sparse file.
func TestServeLargeRange(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "big.bin")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	const size = 5 << 30
	if _, err := f.WriteAt([]byte("END"), size-3); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fs, err := New(Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	res := run(t, fs, Request{Method: "GET", Target: "/big.bin", Range: "bytes=-3"})
	if res.status != 206 || res.body != "END" || res.resp.Get("Content-Range") != "bytes "+strconv.Itoa(size-3)+"-"+strconv.Itoa(size-1)+"/"+strconv.Itoa(size) {
		t.Fatalf("got %d %q %q", res.status, res.body, res.resp.Get("Content-Range"))
	}
	full := fs.Serve(&Request{Method: "GET", Target: "/big.bin"})
	defer full.Close()
	if full.ContentLength != size || full.File == nil {
		t.Fatalf("full: %d", full.ContentLength)
	}
}

func TestContentType(t *testing.T) {
	for name, want := range map[string]string{
		"a.html": "text/html; charset=utf-8", "A.CSS": "text/css; charset=utf-8", "x.js": "text/javascript; charset=utf-8",
		"i.svg": "image/svg+xml", "w.wasm": "application/wasm", "noext": "application/octet-stream",
		"dir.d/file": "application/octet-stream", "f.zzzunknown": "application/octet-stream",
	} {
		if got := ContentType(name); got != want {
			t.Errorf("ContentType(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
