package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reactord/reactord/cmd/reactord/internal/static"
	"github.com/reactord/reactord/internal/testsupport"
)

// webRoot builds a served tree and a secret next to it.
func webRoot(t *testing.T) (root string, mtime time.Time) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "www")
	mtime = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	files := map[string]string{
		"www/index.html":     "<h1>root index</h1>\n",
		"www/hello.txt":      "hello, world\n",
		"www/style.css":      "body{}\n",
		"www/docs/guide.txt": "guide\n",
		"www/empty/.keep":    "",
		"secret.txt":         "TOP SECRET\n",
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
	if err := os.Symlink("../secret.txt", filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	return root, mtime
}

func TestDefaultPageHealthz(t *testing.T) {
	d := start(t, "-listen", "127.0.0.1:0", "-loops", "2")
	c := client(t)
	r := do(t, c, "GET", d.url("/"))
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %v", r.status, r.header)
	}
	for _, want := range []string{`<td id="version">v0.0.0-test</td>`, `<td id="loops">2</td>`, `<td id="poller">`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if h := do(t, c, "HEAD", d.url("/")); h.status != 200 || h.body != "" || h.header.Get("Content-Length") != strconv.Itoa(len(r.body)) {
		t.Errorf("HEAD /: %d len=%s body=%q", h.status, h.header.Get("Content-Length"), h.body)
	}
	if r := do(t, c, "GET", d.url("/healthz")); r.status != 200 || r.body != "ok\n" {
		t.Errorf("healthz: %d %q", r.status, r.body)
	}
	if r := do(t, c, "POST", d.url("/healthz")); r.status != 405 || r.header.Get("Allow") != "GET, HEAD, OPTIONS" {
		t.Errorf("POST healthz: %d %v", r.status, r.header)
	}
	if r := do(t, c, "GET", d.url("/nothing")); r.status != 404 {
		t.Errorf("GET /nothing: %d", r.status)
	}
	if !strings.Contains(d.stderr.String(), `"msg":"listening"`) || !strings.Contains(d.stderr.String(), `"addr":"`+d.addr+`"`) {
		t.Errorf("no listening log line with the address:\n%s", d.stderr.String())
	}
	d.stop()
}

func TestStaticFiles(t *testing.T) {
	root, mtime := webRoot(t)
	d := start(t, "-listen", "127.0.0.1:0", "-root", root, "-access-log", "off")
	fdsBefore := d.openFDs()
	tr := &http.Transport{DisableCompression: true}
	c := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer tr.CloseIdleConnections()
	etag := static.ETag(13, mtime)
	lastMod := mtime.Format(static.TimeFormat)
	earlier := mtime.Add(-time.Hour).Format(static.TimeFormat)

	cases := []struct {
		name    string
		method  string
		path    string
		hdr     []string
		status  int
		body    string
		headers map[string]string
	}{
		{"index", "GET", "/", nil, 200, "<h1>root index</h1>\n", map[string]string{"Content-Type": "text/html; charset=utf-8"}},
		{"file", "GET", "/hello.txt", nil, 200, "hello, world\n", map[string]string{
			"Content-Type": "text/plain; charset=utf-8", "ETag": etag, "Last-Modified": lastMod, "Accept-Ranges": "bytes", "Content-Length": "13"}},
		{"css", "GET", "/style.css", nil, 200, "body{}\n", map[string]string{"Content-Type": "text/css; charset=utf-8"}},
		{"head", "HEAD", "/hello.txt", nil, 200, "", map[string]string{"Content-Length": "13", "ETag": etag}},
		{"dir redirect", "GET", "/docs", nil, 301, "", map[string]string{"Location": "/docs/"}},
		{"no listing", "GET", "/docs/", nil, 403, "", nil},
		{"missing", "GET", "/missing.txt", nil, 404, "", nil},
		{"post", "POST", "/hello.txt", nil, 405, "", map[string]string{"Allow": "GET, HEAD, OPTIONS"}},
		{"delete", "DELETE", "/hello.txt", nil, 405, "", map[string]string{"Allow": "GET, HEAD, OPTIONS"}},
		{"INM", "GET", "/hello.txt", []string{"If-None-Match", etag}, 304, "", map[string]string{"ETag": etag}},
		{"INM weak", "GET", "/hello.txt", []string{"If-None-Match", "W/" + etag}, 304, "", nil},
		{"INM list", "GET", "/hello.txt", []string{"If-None-Match", `"x", ` + etag}, 304, "", nil},
		{"INM star", "GET", "/hello.txt", []string{"If-None-Match", "*"}, 304, "", nil},
		{"INM miss", "GET", "/hello.txt", []string{"If-None-Match", `"nope"`}, 200, "hello, world\n", nil},
		{"INM beats IMS", "GET", "/hello.txt", []string{"If-None-Match", `"nope"`, "If-Modified-Since", lastMod}, 200, "hello, world\n", nil},
		{"IMS equal", "GET", "/hello.txt", []string{"If-Modified-Since", lastMod}, 304, "", map[string]string{"Last-Modified": lastMod}},
		{"IMS earlier", "GET", "/hello.txt", []string{"If-Modified-Since", earlier}, 200, "hello, world\n", nil},
		{"IMS HEAD", "HEAD", "/hello.txt", []string{"If-Modified-Since", lastMod}, 304, "", nil},
		{"If-Match fail", "GET", "/hello.txt", []string{"If-Match", `"nope"`}, 412, "", nil},
		{"IUS fail", "GET", "/hello.txt", []string{"If-Unmodified-Since", earlier}, 412, "", nil},
		{"range", "GET", "/hello.txt", []string{"Range", "bytes=0-4"}, 206, "hello", map[string]string{"Content-Range": "bytes 0-4/13", "Content-Length": "5"}},
		{"range open", "GET", "/hello.txt", []string{"Range", "bytes=7-"}, 206, "world\n", map[string]string{"Content-Range": "bytes 7-12/13"}},
		{"range suffix", "GET", "/hello.txt", []string{"Range", "bytes=-6"}, 206, "world\n", map[string]string{"Content-Range": "bytes 7-12/13"}},
		{"range clamp", "GET", "/hello.txt", []string{"Range", "bytes=10-99"}, 206, "ld\n", map[string]string{"Content-Range": "bytes 10-12/13"}},
		{"range unsatisfiable", "GET", "/hello.txt", []string{"Range", "bytes=13-"}, 416, "", map[string]string{"Content-Range": "bytes */13"}},
		{"range multi", "GET", "/hello.txt", []string{"Range", "bytes=0-1,4-5"}, 200, "hello, world\n", nil},
		{"range invalid", "GET", "/hello.txt", []string{"Range", "bytes=9-2"}, 200, "hello, world\n", nil},
		{"range HEAD", "HEAD", "/hello.txt", []string{"Range", "bytes=0-4"}, 200, "", map[string]string{"Content-Length": "13"}},
		{"If-Range match", "GET", "/hello.txt", []string{"Range", "bytes=0-4", "If-Range", etag}, 206, "hello", nil},
		{"If-Range stale", "GET", "/hello.txt", []string{"Range", "bytes=0-4", "If-Range", `"old"`}, 200, "hello, world\n", nil},
		{"If-Range date", "GET", "/hello.txt", []string{"Range", "bytes=0-4", "If-Range", lastMod}, 206, "hello", nil},
		{"range and INM", "GET", "/hello.txt", []string{"Range", "bytes=0-4", "If-None-Match", etag}, 304, "", nil},
		{"healthz still reserved", "GET", "/healthz", nil, 200, "ok\n", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, c, tc.method, d.url(tc.path), tc.hdr...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (body %q)", r.status, tc.status, r.body)
			}
			if tc.body != "" || tc.status == 304 || tc.method == "HEAD" {
				if r.body != tc.body {
					t.Errorf("body %q, want %q", r.body, tc.body)
				}
			}
			for k, v := range tc.headers {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
	// Every file opened for those requests was closed: once the client's connections are
	// gone, the daemon holds as many descriptors as before.
	tr.CloseIdleConnections()
	testsupport.Eventually(t, 10*time.Second, "descriptors to return to their count before the requests", func() bool {
		return d.openFDs() <= fdsBefore
	})
	d.stop()
}

// TestTraversalRefused sends hostile paths on raw sockets (an HTTP client would normalise
// them) and checks that none returns the secret beside the root.
func TestTraversalRefused(t *testing.T) {
	root, _ := webRoot(t)
	for _, follow := range []bool{false, true} {
		args := []string{"-listen", "127.0.0.1:0", "-root", root, "-access-log", "off"}
		if follow {
			args = append(args, "-follow-symlinks")
		}
		d := start(t, args...)
		paths := []string{
			"/../secret.txt", "/docs/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt",
			"/.%2e/secret.txt", "/docs/..%2f..%2fsecret.txt", "/..%2fsecret.txt", "/%2e%2e%2fsecret.txt",
			"/..%5csecret.txt", "/hello.txt%00", "/%00/../secret.txt", "/./../secret.txt",
			"/docs/%2e%2e/%2e%2e/secret.txt", "/%252e%252e/secret.txt",
		}
		if !follow {
			paths = append(paths, "/escape")
		}
		for _, p := range paths {
			r := raw(t, d.addr, "GET", "GET "+p+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if strings.Contains(r.body, "SECRET") {
				t.Errorf("follow=%v %s: served the secret (%d)", follow, p, r.status)
			}
			if r.status != 400 && r.status != 403 && r.status != 404 {
				t.Errorf("follow=%v %s: status %d, want 400/403/404", follow, p, r.status)
			}
		}
		if follow {
			// With -follow-symlinks the link is followed: the operator asked for it.
			if r := raw(t, d.addr, "GET", "GET /escape HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); r.status != 200 || r.body != "TOP SECRET\n" {
				t.Errorf("follow-symlinks: /escape %d %q", r.status, r.body)
			}
		}
		d.stop()
	}
}

func TestDirListingFlag(t *testing.T) {
	root, _ := webRoot(t)
	d := start(t, "-listen", "127.0.0.1:0", "-root", root, "-dir-listing", "-access-log", "off")
	r := do(t, client(t), "GET", d.url("/docs/"))
	if r.status != 200 || !strings.Contains(r.body, `href="./guide.txt"`) {
		t.Errorf("listing: %d %q", r.status, r.body)
	}
	d.stop()
}

// TestLargeFileSendfile fetches a file far larger than socket buffers, whole and by range,
// over keep-alive, and checks every byte.
func TestLargeFileSendfile(t *testing.T) {
	root := t.TempDir()
	data := pattern(8 << 20)
	if err := os.WriteFile(filepath.Join(root, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	d := start(t, "-listen", "127.0.0.1:0", "-root", root, "-access-log", "off")
	c := client(t)
	r := do(t, c, "GET", d.url("/big.bin"))
	if r.status != 200 || r.body != string(data) {
		t.Fatalf("big.bin: %d, %d bytes, equal=%v", r.status, len(r.body), r.body == string(data))
	}
	r = do(t, c, "GET", d.url("/big.bin"), "Range", "bytes=3000000-5999999")
	if r.status != 206 || r.body != string(data[3000000:6000000]) {
		t.Fatalf("range: %d, %d bytes", r.status, len(r.body))
	}
	d.stop()
}

// pattern returns n bytes that differ at every offset modulo a prime, so misplaced chunks
// are detected.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// TestUnixSocket serves over a Unix socket, alongside TCP, and cleans the socket up on exit.
func TestUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "r.sock")
	// A stale socket file from a crashed run must not prevent binding.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	d := start(t, "-listen", "127.0.0.1:0", "-listen", "unix:"+sock)
	if len(d.addrs) != 2 || d.addrs[1] != "unix:"+sock {
		t.Fatalf("addrs %v", d.addrs)
	}
	r := rawNet(t, "unix", sock, "GET", "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	if r.status != 200 || r.body != "ok\n" {
		t.Errorf("healthz over unix: %d %q", r.status, r.body)
	}
	d.stop()
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket file left behind: %v", err)
	}
}

// TestPipelinedAndAbsoluteForm sends three pipelined requests in one write — a small file,
// a large one that goes out with sendfile, and an absolute-form target — and reads the
// responses back in order.
func TestPipelinedAndAbsoluteForm(t *testing.T) {
	root, _ := webRoot(t)
	big := pattern(3 << 20)
	if err := os.WriteFile(filepath.Join(root, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	d := start(t, "-listen", "127.0.0.1:0", "-root", root, "-access-log", "off")
	conn, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(testsupport.Deadline(30 * time.Second))
	req := "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET http://x/style.css HTTP/1.1\r\nHost: x\r\n\r\n" +
		"HEAD /big.bin HTTP/1.0\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	want := []struct {
		method, body string
		length       int
	}{{"GET", "hello, world\n", 13}, {"GET", string(big), len(big)}, {"GET", "body{}\n", 7}, {"HEAD", "", len(big)}}
	for i, w := range want {
		resp, err := http.ReadResponse(br, &http.Request{Method: w.method})
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(b) != w.body || resp.ContentLength != int64(w.length) {
			t.Fatalf("response %d: %d, %d bytes (Content-Length %d), err %v", i, resp.StatusCode, len(b), resp.ContentLength, err)
		}
	}
	// The HTTP/1.0 request without keep-alive ends the connection.
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the HTTP/1.0 response: %v, want EOF", err)
	}
	d.stop()
}
