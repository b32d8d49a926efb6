package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reactord/reactord/cmd/reactord/internal/metrics"
	"github.com/reactord/reactord/cmd/reactord/internal/static"
)

// TestAppRoutes checks the routing decisions without a transport.
func TestAppRoutes(t *testing.T) {
	m, err := metrics.New(metrics.Options{Version: "t", Source: func() metrics.Snapshot { return metrics.Snapshot{Poller: "epoll"} }, NoRuntime: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	page := []byte("<p>page</p>")
	bare := &app{metrics: m}
	bare.setPage(page)

	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "a.txt"), []byte("A"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs, err := static.New(static.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	withRoot := &app{metrics: m, files: fs}
	withRoot.setPage(page)

	cases := []struct {
		a      *app
		method string
		target string
		status int
		body   string
		header string // "Name: value" expected, if any
	}{
		{bare, "GET", "/", 200, "<p>page</p>", "Content-Type: text/html; charset=utf-8"},
		{bare, "GET", "/index.html", 200, "<p>page</p>", ""},
		{bare, "HEAD", "/", 200, "", ""},
		{bare, "POST", "/", 405, "405 Method Not Allowed\n", "Allow: GET, HEAD, OPTIONS"},
		{bare, "GET", "/other", 404, "404 Not Found\n", ""},
		{bare, "GET", "/healthz", 200, "ok\n", "Cache-Control: no-store"},
		{bare, "GET", "/healthz?probe=1", 200, "ok\n", ""},
		{bare, "HEAD", "/healthz", 200, "", ""},
		{bare, "PUT", "/healthz", 405, "405 Method Not Allowed\n", "Allow: GET, HEAD, OPTIONS"},
		{bare, "DELETE", "/metrics", 405, "405 Method Not Allowed\n", "Allow: GET, HEAD, OPTIONS"},
		{withRoot, "GET", "/a.txt", 200, "A", ""},
		{withRoot, "GET", "/", 403, "403 Forbidden\n", ""}, // a root without index.html and no listing
		{withRoot, "GET", "/healthz", 200, "ok\n", ""},
		{bare, "FOO", "/", 501, "501 Not Implemented\n", ""},
		{bare, "PROPFIND", "/healthz", 501, "501 Not Implemented\n", ""},
		{withRoot, "FOO", "/a.txt", 501, "501 Not Implemented\n", ""},
		{bare, "CONNECT", "", 405, "405 Method Not Allowed\n", "Allow: GET, HEAD, OPTIONS"},
		{withRoot, "CONNECT", "", 405, "405 Method Not Allowed\n", "Allow: GET, HEAD, OPTIONS"},
		{bare, "OPTIONS", "*", 200, "", "Allow: GET, HEAD, OPTIONS"},
		{withRoot, "OPTIONS", "*", 200, "", "Allow: GET, HEAD, OPTIONS"},
		{bare, "OPTIONS", "/", 200, "", "Allow: GET, HEAD, OPTIONS"},
		{bare, "OPTIONS", "/healthz", 200, "", "Allow: GET, HEAD, OPTIONS"},
		{bare, "OPTIONS", "/metrics", 200, "", "Allow: GET, HEAD, OPTIONS"},
		{bare, "OPTIONS", "/other", 404, "404 Not Found\n", ""},
		{withRoot, "OPTIONS", "/a.txt", 200, "", "Allow: GET, HEAD, OPTIONS"},
		{bare, "GET", "/", 200, "<p>page</p>", "ETag: " + static.ContentETag(page)},
	}
	for _, tc := range cases {
		r := tc.a.handle(&static.Request{Method: tc.method, Target: tc.target})
		body := string(r.Body)
		if r.File != nil {
			b := make([]byte, r.ContentLength)
			r.File.ReadAt(b, r.Offset)
			body = string(b)
		}
		r.Close()
		if r.Status != tc.status || body != tc.body {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.target, r.Status, body, tc.status, tc.body)
		}
		if tc.header != "" {
			name, value, _ := strings.Cut(tc.header, ": ")
			if got := r.Get(name); got != value {
				t.Errorf("%s %s: %s = %q, want %q", tc.method, tc.target, name, got, value)
			}
		}
	}

	r := bare.handle(&static.Request{Method: "GET", Target: "/metrics"})
	if r.Status != 200 || !strings.Contains(string(r.Body), `reactord_poller_info{poller="epoll"} 1`) || r.Get("Content-Type") != metrics.ContentType {
		t.Errorf("/metrics: %d %q %q", r.Status, r.Get("Content-Type"), r.Body)
	}
	if h := bare.handle(&static.Request{Method: "HEAD", Target: "/metrics"}); h.Body != nil || h.ContentLength <= 0 {
		t.Errorf("HEAD /metrics: body %d bytes, length %d", len(h.Body), h.ContentLength)
	}

	bare.status = &status{}
	bare.status.stopping.Store(true)
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := bare.handle(&static.Request{Method: "GET", Target: p}); r.Status != 503 || string(r.Body) != "shutting down\n" {
			t.Errorf("draining %s: %d %q", p, r.Status, r.Body)
		}
	}
	if r := bare.handle(&static.Request{Method: "GET", Target: "/livez"}); r.Status != 200 || string(r.Body) != "alive\n" {
		t.Errorf("draining livez: %d %q", r.Status, r.Body)
	}
}

// TestAppSplitRoles checks the two apps -admin-listen makes: the public one treats the probe
// paths as content, the admin one serves nothing else.
func TestAppSplitRoles(t *testing.T) {
	m, err := metrics.New(metrics.Options{Version: "t", Source: func() metrics.Snapshot { return metrics.Snapshot{} }, NoRuntime: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "healthz"), []byte("a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs, err := static.New(static.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	public := &app{metrics: m, files: fs, noOps: true}
	admin := &app{metrics: m, noContent: true}
	cases := []struct {
		a      *app
		target string
		status int
	}{
		{public, "/healthz", 200}, // the file
		{public, "/readyz", 404},
		{public, "/metrics", 404},
		{public, "/livez", 404},
		{admin, "/healthz", 200},
		{admin, "/readyz", 200},
		{admin, "/livez", 200},
		{admin, "/metrics", 200},
		{admin, "/", 404},
		{admin, "/index.html", 404},
	}
	for _, tc := range cases {
		r := tc.a.handle(&static.Request{Method: "GET", Target: tc.target})
		r.Close()
		if r.Status != tc.status {
			t.Errorf("noOps=%v %s: %d, want %d", tc.a.noOps, tc.target, r.Status, tc.status)
		}
	}
	r := public.handle(&static.Request{Method: "GET", Target: "/healthz"})
	defer r.Close()
	if r.File == nil {
		t.Errorf("public /healthz did not serve the file")
	}
}
