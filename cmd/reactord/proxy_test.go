package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// upstream is a net/http server for the proxy tests, on 127.0.0.1:0, recording what it saw.
type upstream struct {
	addr  string
	srv   *http.Server
	ln    net.Listener
	conns atomic.Int64
	reqs  atomic.Int64
	mu    sync.Mutex
	last  *http.Request
}

func startHTTPUpstream(t *testing.T, h http.Handler) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{addr: ln.Addr().String(), ln: ln}
	u.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u.reqs.Add(1)
			u.mu.Lock()
			u.last = r
			u.mu.Unlock()
			h.ServeHTTP(w, r)
		}),
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				u.conns.Add(1)
			}
		},
	}
	go u.srv.Serve(ln)
	t.Cleanup(func() { u.srv.Close() })
	return u
}

// appMux is the application behind the proxy.
func appMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Via", "Connection", "Keep-Alive", "X-Hop", "Te", "Transfer-Encoding"} {
			w.Header().Set("Seen-"+k, strings.Join(r.Header[k], "|"))
		}
		w.Header().Set("Seen-Host", r.Host)
		w.Header().Set("Seen-Method", r.Method)
		w.Header().Set("Seen-URI", r.RequestURI)
		w.Header().Set("Seen-Length", strconv.FormatInt(r.ContentLength, 10))
		w.Header().Set("Connection", "X-Secret")
		w.Header().Set("X-Secret", "hop")
		w.Write(b)
	})
	mux.HandleFunc("/api/stream", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 5; i++ {
			fmt.Fprintf(w, "chunk %d;", i)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/api/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(bytes.Repeat([]byte("b"), n))
	})
	mux.HandleFunc("/api/status", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		w.WriteHeader(code)
	})
	mux.HandleFunc("/api/ws", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			w.WriteHeader(400)
			return
		}
		c, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		buf := make([]byte, 1024)
		for {
			n, err := brw.Read(buf)
			if n > 0 {
				c.Write(bytes.ToUpper(buf[:n]))
			}
			if err != nil {
				return
			}
		}
	})
	return mux
}

// TestProxyForwards: the daemon proxies /api/ to a net/http upstream and serves its static
// files for everything else, from one configuration.
func TestProxyForwards(t *testing.T) {
	up := startHTTPUpstream(t, appMux())
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "index.html"), []byte("static page"), 0o644)
	d := start(t, "-listen", "127.0.0.1:0", "-root", root, "-proxy", "/api/="+up.addr, "-access-log", "stdout")
	c := client(t)

	r := do(t, c, "GET", d.url("/api/echo?q=1"), "Connection", "keep-alive, X-Hop", "X-Hop", "secret", "X-Forwarded-For", "198.51.100.9")
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	want := map[string]string{
		"Seen-X-Forwarded-For": "198.51.100.9, 127.0.0.1", "Seen-X-Forwarded-Proto": "http",
		"Seen-X-Forwarded-Host": d.addr, "Seen-Via": "1.1 reactord", "Seen-Host": d.addr, "Seen-Uri": "/api/echo?q=1",
		"Seen-Connection": "", "Seen-X-Hop": "", "Seen-Keep-Alive": "", "Via": "1.1 reactord", "X-Secret": "", "Connection": "",
	}
	for k, v := range want {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	// A chunked request body streams: it is re-framed chunked (the proxy's own chunks).
	conn, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(testsupport.Deadline(10 * time.Second))
	fmt.Fprintf(conn, "POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "hello world" || resp.Header.Get("Seen-Length") != "-1" || resp.Header.Get("Seen-Transfer-Encoding") != "" {
		t.Fatalf("body %q, upstream saw length %s, TE %q", body, resp.Header.Get("Seen-Length"), resp.Header.Get("Seen-Transfer-Encoding"))
	}
	// Streamed, large, HEAD, bodiless statuses.
	if r := do(t, c, "GET", d.url("/api/stream")); r.body != "chunk 0;chunk 1;chunk 2;chunk 3;chunk 4;" {
		t.Fatalf("stream %q", r.body)
	}
	if r := do(t, c, "GET", d.url("/api/big?n=5000000")); len(r.body) != 5000000 || r.header.Get("Content-Length") != "5000000" {
		t.Fatalf("big: %d bytes, length %q", len(r.body), r.header.Get("Content-Length"))
	}
	if r := do(t, c, "HEAD", d.url("/api/big?n=777")); r.body != "" || r.header.Get("Content-Length") != "777" {
		t.Fatalf("HEAD: %q %q", r.body, r.header.Get("Content-Length"))
	}
	for _, code := range []int{204, 304, 404, 500, 503} {
		if r := do(t, c, "GET", d.url("/api/status?code="+strconv.Itoa(code))); r.status != code {
			t.Fatalf("status %d, want %d", r.status, code)
		}
	}
	// Static files and the daemon's own paths are not proxied.
	if r := do(t, c, "GET", d.url("/")); r.body != "static page" {
		t.Fatalf("static: %q", r.body)
	}
	if r := do(t, c, "GET", d.url("/healthz")); r.status != 200 || r.body != "ok\n" {
		t.Fatalf("healthz: %d %q", r.status, r.body)
	}
	// Keep-alive to the upstream: a handful of connections for all of that.
	if n := up.conns.Load(); n > 4 {
		t.Fatalf("%d upstream connections for %d requests", n, up.reqs.Load())
	}
	m := do(t, c, "GET", d.url("/metrics")).body
	for _, s := range []string{`reactord_upstream_requests_total{code="2xx",route="/api/",upstream="` + up.addr + `"}`,
		`reactord_upstream_up{route="/api/",upstream="` + up.addr + `"} 1`, `reactord_upstream_request_duration_seconds_count`} {
		if !strings.Contains(m, s) {
			t.Fatalf("metrics lack %s", s)
		}
	}
	d.stop()
	if log := d.stdout.String(); !strings.Contains(log, `"upstream":"`+up.addr+`","upstream_status":200`) {
		t.Fatalf("access log has no upstream fields:\n%s", log[:min(len(log), 600)])
	}
}

// TestProxyUpgrade: after the upstream's 101 the connection is a tunnel both ways.
func TestProxyUpgrade(t *testing.T) {
	up := startHTTPUpstream(t, appMux())
	d := start(t, "-listen", "127.0.0.1:0", "-proxy", "/="+up.addr)
	conn, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(testsupport.Deadline(10 * time.Second))
	io.WriteString(conn, "GET /api/ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "echo" {
		t.Fatalf("%v %v", resp, err)
	}
	for _, msg := range []string{"hello", "tunnel"} {
		io.WriteString(conn, msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != strings.ToUpper(msg) {
			t.Fatalf("%q %v", got, err)
		}
	}
}

// TestProxyFaults: each way the upstream can fail gets its status, and nothing hangs.
func TestProxyFaults(t *testing.T) {
	rawServe := func(f func(c net.Conn)) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					c.SetDeadline(testsupport.Deadline(20 * time.Second))
					br := bufio.NewReader(c)
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					f(c)
				}()
			}
		}()
		return ln.Addr().String()
	}
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := free.Addr().String()
	free.Close()
	dir := t.TempDir()
	conf := func(name, upstream, extra string) string {
		p := filepath.Join(dir, name+".toml")
		os.WriteFile(p, []byte(fmt.Sprintf("[[proxy]]\nprefix = \"/\"\nupstreams = [%q]\n%s\n", upstream, extra)), 0o644)
		return p
	}
	tests := []struct {
		name   string
		conf   string
		status int  // 0: the connection is cut after a 200 head
		short  bool // body shorter than declared
	}{
		{"refused", conf("refused", refused, ""), 502, false},
		{"stalls", conf("stall", rawServe(func(c net.Conn) { c.Read(make([]byte, 1)) }), `header-timeout = "200ms"`), 504, false},
		{"malformed", conf("malformed", rawServe(func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx")
		}), ""), 502, false},
		{"not HTTP", conf("nothttp", rawServe(func(c net.Conn) { io.WriteString(c, "SSH-2.0-OpenSSH\r\n") }), ""), 502, false},
		{"resets mid-body", conf("reset", rawServe(func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial")
			c.(*net.TCPConn).SetLinger(0)
		}), ""), 200, true},
		{"closes mid-body", conf("close", rawServe(func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial")
		}), ""), 200, true},
		{"stalls mid-body", conf("stallbody", rawServe(func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial")
			c.Read(make([]byte, 1)) // until the proxy gives up on it
		}), `read-timeout = "200ms"`), 200, true},
		{"resets before answering", conf("resetearly", rawServe(func(c net.Conn) {
			c.(*net.TCPConn).SetLinger(0)
		}), ""), 502, false},
		{"malformed chunked body", conf("badchunk", rawServe(func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
			c.Read(make([]byte, 1))
		}), ""), 200, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := start(t, "-listen", "127.0.0.1:0", "-config", tc.conf)
			conn, err := net.Dial("tcp", d.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(testsupport.Deadline(10 * time.Second))
			io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, berr := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.short {
				if berr == nil || len(body) >= 100000 {
					t.Fatalf("a cut upstream body reached the client whole: %d bytes, %v", len(body), berr)
				}
				return
			}
			if berr != nil {
				t.Fatal(berr)
			}
		})
	}
}

// TestProxyBalancingAndHealth: two upstreams take turns; one that goes away is ejected (its
// requests go to the other at once) and taken back after the cool-down once it is up again.
func TestProxyBalancingAndHealth(t *testing.T) {
	var hits [2]atomic.Int64
	mk := func(i int) *upstream {
		return startHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			fmt.Fprintf(w, "u%d", i)
		}))
	}
	a, b := mk(0), mk(1)
	p := filepath.Join(t.TempDir(), "p.toml")
	os.WriteFile(p, []byte(fmt.Sprintf("[[proxy]]\nprefix = \"/\"\nupstreams = [%q, %q]\nmax-fails = 1\nfail-timeout = \"300ms\"\n", a.addr, b.addr)), 0o644)
	d := start(t, "-listen", "127.0.0.1:0", "-config", p, "-loops", "1")
	c := client(t)
	for i := 0; i < 10; i++ {
		if r := do(t, c, "GET", d.url("/")); r.status != 200 {
			t.Fatalf("%d", r.status)
		}
	}
	if hits[0].Load() != 5 || hits[1].Load() != 5 {
		t.Fatalf("round-robin split %d/%d", hits[0].Load(), hits[1].Load())
	}
	// a goes away: every request still succeeds (a connect error moves on to b).
	addrA := a.addr
	a.srv.Close()
	for i := 0; i < 10; i++ {
		if r := do(t, c, "GET", d.url("/")); r.status != 200 || r.body != "u1" {
			t.Fatalf("with a down: %d %q", r.status, r.body)
		}
	}
	m := do(t, c, "GET", d.url("/metrics")).body
	if !strings.Contains(m, `reactord_upstream_up{route="/",upstream="`+addrA+`"} 0`) ||
		!strings.Contains(m, `reactord_upstream_ejections_total{route="/",upstream="`+addrA+`"}`) {
		t.Fatal("the failed upstream is not shown ejected")
	}
	// a comes back on the same address; after the cool-down it gets requests again.
	ln, err := net.Listen("tcp", addrA)
	if err != nil {
		t.Skipf("cannot rebind %s: %v", addrA, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "u0") })}
	go srv.Serve(ln)
	defer srv.Close()
	testsupport.Eventually(t, 0, "the recovered upstream answers again", func() bool {
		return do(t, c, "GET", d.url("/")).body == "u0"
	})
}

// TestProxyChain: a reactord proxying to another reactord (the daemon as its own upstream,
// over a Unix socket).
func TestProxyChain(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "f.txt"), bytes.Repeat([]byte("0123456789"), 100000), 0o644)
	sock := filepath.Join(t.TempDir(), "back.sock")
	back := start(t, "-listen", "unix:"+sock, "-root", root)
	_ = back
	front := start(t, "-listen", "127.0.0.1:0", "-proxy", "/=unix:"+sock)
	c := client(t)
	r := do(t, c, "GET", front.url("/f.txt"))
	if r.status != 200 || len(r.body) != 1000000 || r.header.Get("Server") != "reactord" || r.header.Get("Via") != "1.1 reactord" {
		t.Fatalf("%d %d bytes, Server %q Via %q", r.status, len(r.body), r.header.Get("Server"), r.header.Get("Via"))
	}
	if r := do(t, c, "GET", front.url("/f.txt"), "Range", "bytes=0-9"); r.status != 206 || r.body != "0123456789" {
		t.Fatalf("range: %d %q", r.status, r.body)
	}
	if r := do(t, c, "GET", front.url("/missing")); r.status != 404 {
		t.Fatalf("missing: %d", r.status)
	}
}

// TestProxyNginxUpstream: nginx (Debian's nginx-light) behind the proxy.
func TestProxyNginxUpstream(t *testing.T) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			t.Skip("nginx not installed (apt-get install -y nginx-light): skipping the nginx upstream test")
		}
		bin = "/usr/sbin/nginx"
	}
	dir := t.TempDir()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	os.MkdirAll(filepath.Join(dir, "www"), 0o755)
	os.WriteFile(filepath.Join(dir, "www", "n.txt"), []byte("served by nginx"), 0o644)
	conf := fmt.Sprintf("daemon off; master_process off; pid %[1]s/nginx.pid; error_log %[1]s/error.log warn;\n"+
		"events { worker_connections 256; }\nhttp { access_log off; client_body_temp_path %[1]s/b; proxy_temp_path %[1]s/p;\n"+
		"fastcgi_temp_path %[1]s/f; uwsgi_temp_path %[1]s/u; scgi_temp_path %[1]s/s;\n"+
		"server { listen %[2]s; root %[1]s/www; location = /echo { return 200 \"$http_x_forwarded_for $http_via\"; } } }\n", dir, addr)
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644)
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	testsupport.Eventually(t, 0, "nginx listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	d := start(t, "-listen", "127.0.0.1:0", "-proxy", "/="+addr)
	c := client(t)
	if r := do(t, c, "GET", d.url("/n.txt")); r.status != 200 || r.body != "served by nginx" {
		t.Fatalf("%d %q", r.status, r.body)
	}
	if r := do(t, c, "GET", d.url("/echo")); r.body != "127.0.0.1 1.1 reactord" {
		t.Fatalf("nginx saw %q", r.body)
	}
}
