//go:build linux

package http

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// nginxBinary finds nginx (Debian's nginx-light: apt-get install -y nginx-light); tests that
// need it skip with this message when it is missing. .ci/run installs it.
func nginxBinary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Skip("nginx not installed (apt-get install -y nginx-light): skipping the tests against a real nginx upstream")
	return ""
}

// startNginx runs nginx in the foreground, one process, with the given server block body, and
// returns its address. It is killed at the end of the test.
func startNginx(t testing.TB, httpExtra, serverBody string) string {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    %[3]s
    server {
        listen %[2]s;
        root %[1]s/www;
        %[4]s
    }
}
`, dir, addr, httpExtra, serverBody)
	if err := os.MkdirAll(filepath.Join(dir, "www"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "www", "file.txt"), []byte(strings.Repeat("0123456789", 10000)), 0o644); err != nil {
		t.Fatal(err)
	}
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", cf, "-e", filepath.Join(dir, "error.log"))
	cmd.SysProcAttr = &unix.SysProcAttr{Pdeathsig: unix.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(unix.SIGTERM)
		select {
		case <-done:
		case <-time.After(testsupport.Scale(5 * time.Second)):
			cmd.Process.Kill()
			<-done
		}
	})
	if err := testsupport.Wait(0, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}); err != nil {
		t.Fatalf("nginx not listening on %s: %v (stderr: %s)", addr, err, stderr.String())
	}
	return addr
}

// TestClientAgainstNginx: nginx as the upstream — its own framing (Content-Length from
// "return" and files, chunked from a proxied stream), keep-alive limits and closes.
func TestClientAgainstNginx(t *testing.T) {
	addr := startNginx(t, "keepalive_requests 3;", `
        location = /hello { default_type text/plain; return 200 "hello from nginx"; }
        location = /redirect { return 301 /hello; }
        location = /teapot { return 418; }
        location = /echo { default_type text/plain; return 200 "$request_method $http_x_a"; }
        location /file.txt { }
`)
	l := clientLoop(t)
	c := newClient(t, "tcp", addr, ClientConfig{})
	file := strings.Repeat("0123456789", 10000)
	for i := 0; i < 10; i++ {
		for _, tc := range []struct {
			req    ClientRequest
			status int
			body   string
		}{
			{ClientRequest{Target: "/hello"}, 200, "hello from nginx"},
			{ClientRequest{Target: "/redirect"}, 301, ""},
			{ClientRequest{Target: "/teapot"}, 418, ""},
			{ClientRequest{Target: "/echo", Header: []HeaderField{{"X-A", "v"}}}, 200, "GET v"},
			{ClientRequest{Method: "HEAD", Target: "/file.txt"}, 200, ""},
			{ClientRequest{Target: "/file.txt"}, 200, file},
		} {
			r := do(t, c, l, &tc.req)
			if r.err != nil {
				t.Fatalf("%s %s: %v", tc.req.Method, tc.req.Target, r.err)
			}
			if r.status != tc.status || (tc.body != "" && r.body != tc.body) {
				t.Fatalf("%s: %d %q", tc.req.Target, r.status, r.body[:min(len(r.body), 40)])
			}
		}
	}
	// nginx closes a connection after 3 requests ("Connection: close"): 60 requests need 20
	// connections, and none failed or needed a retry.
	st := c.Stats()
	if st.Dials != 20 || st.Failed != 0 || st.Retries != 0 {
		t.Fatalf("stats %+v, want 20 dials and no failure", st)
	}
}

// TestClientAgainstNginxChunked: nginx streams a proxied response of unknown length to us
// chunked; the client decodes it.
func TestClientAgainstNginxChunked(t *testing.T) {
	up := startUpstream(t, upstreamMux()) // net/http, streaming /chunked
	addr := startNginx(t, "", fmt.Sprintf(`
        location / { proxy_pass http://%s; proxy_http_version 1.1; proxy_buffering off; }
`, up.addr))
	l := clientLoop(t)
	c := newClient(t, "tcp", addr, ClientConfig{})
	r := do(t, c, l, &ClientRequest{Target: "/chunked"})
	if r.err != nil || r.status != 200 || r.body != "part one, part two" || r.header["Transfer-Encoding"] != "chunked" {
		t.Fatalf("%+v", r)
	}
}
