//go:build linux

package main

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// siteDir makes a root whose /who.txt says who.
func siteDir(t *testing.T, who string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "who.txt"), []byte(who), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeConfig writes a TOML file (atomically, as an operator's editor or a deploy tool would).
func writeConfig(t *testing.T, path, body string) {
	t.Helper()
	if err := writeFileAtomic(path, []byte(body), ".cfg-*"); err != nil {
		t.Fatal(err)
	}
}

// who asks a new connection for /who.txt.
func who(t *testing.T, network, addr string) string {
	t.Helper()
	r := rawNet(t, network, addr, "GET", "GET /who.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if r.status != 200 {
		t.Fatalf("GET /who.txt on %s: %d", addr, r.status)
	}
	return r.body
}

// keepAlive is a raw HTTP/1.1 connection the test drives request by request.
type keepAlive struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialKeepAlive(t *testing.T, addr string) *keepAlive {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testsupport.Scale(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(testsupport.Deadline(30 * time.Second))
	return &keepAlive{t: t, c: c, br: bufio.NewReader(c)}
}

// get sends GET path and returns the response (nil, err when the connection ended first).
func (k *keepAlive) get(path string) (*http.Response, string, error) {
	if _, err := io.WriteString(k.c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return nil, "", err
	}
	resp, err := http.ReadResponse(k.br, &http.Request{Method: "GET"})
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

func reloads(t *testing.T, metricsURL, result string) float64 {
	t.Helper()
	return sample(t, scrapeURL(t, metricsURL), "reactord_config_reloads_total", map[string]string{"result": result})
}

// TestReloadConfigFile changes the root with SIGHUP: new connections see the new root at
// once, a keep-alive connection opened before finishes under the old configuration and is told
// to close, an invalid file changes nothing and is counted, and a valid one after it applies.
func TestReloadConfigFile(t *testing.T) {
	rootA, rootB, rootC := siteDir(t, "A"), siteDir(t, "B"), siteDir(t, "C")
	cfg := filepath.Join(t.TempDir(), "reactord.toml")
	base := "listen = [\"127.0.0.1:0\"]\naccess-log = \"off\"\nloops = 2\n"
	writeConfig(t, cfg, base+fmt.Sprintf("root = %q\n", rootA))
	d := start(t, "-config", cfg)
	metricsURL := d.url("/metrics")
	if got := who(t, "tcp", d.addr); got != "A" {
		t.Fatalf("before reload: %q", got)
	}
	old := dialKeepAlive(t, d.addr)
	if _, body, err := old.get("/who.txt"); err != nil || body != "A" {
		t.Fatalf("keep-alive before reload: %q %v", body, err)
	}

	writeConfig(t, cfg, base+fmt.Sprintf("root = %q\nidle-timeout = \"61s\"\n", rootB))
	d.signal(unix.SIGHUP)
	testsupport.Eventually(t, 10*time.Second, "the new root", func() bool { return who(t, "tcp", d.addr) == "B" })
	// The new generation serves a moment before the reload is counted.
	testsupport.Eventually(t, 10*time.Second, "the reload counted", func() bool { return reloads(t, metricsURL, "success") == 1 })
	// The connection opened before the reload is the old generation's: its next request is
	// answered under the old root, as its last.
	resp, body, err := old.get("/who.txt")
	if err == nil {
		if body != "A" || !resp.Close {
			t.Errorf("old connection after reload: %q, Connection close %v", body, resp.Close)
		}
		if _, err := old.br.ReadByte(); err != io.EOF {
			t.Errorf("old connection after its last response: %v, want EOF", err)
		}
	} else if err != io.EOF && err != io.ErrUnexpectedEOF {
		// The grace phase may be over on a slow machine: then the server closed the idle
		// connection before our request, cleanly (no reset).
		t.Errorf("old connection after reload: %v", err)
	}

	bad := []struct{ name, body, logged string }{
		{"unknown key", base + "rot = \"/srv\"\n", "rot: unknown key"},
		{"root missing", base + "root = \"/nonexistent-root\"\n", "root: /nonexistent-root"},
		{"syntax", "listen = [\n", "toml"},
	}
	for i, b := range bad {
		writeConfig(t, cfg, b.body)
		d.signal(unix.SIGHUP)
		want := float64(i + 1)
		testsupport.Eventually(t, 10*time.Second, "a failed reload counted ("+b.name+")", func() bool { return reloads(t, metricsURL, "failure") == want })
		if got := who(t, "tcp", d.addr); got != "B" {
			t.Errorf("after invalid file (%s): %q, want B", b.name, got)
		}
		if !strings.Contains(d.stderr.String(), b.logged) {
			t.Errorf("log does not say why (%q):\n%s", b.logged, d.stderr.String())
		}
	}
	// An address that cannot be bound fails while the next generation is built: nothing
	// changes either, the running listener included.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	writeConfig(t, cfg, fmt.Sprintf("listen = [\"127.0.0.1:0\", %q]\naccess-log = \"off\"\nloops = 2\nroot = %q\n", busy.Addr().String(), rootC))
	d.signal(unix.SIGHUP)
	testsupport.Eventually(t, 10*time.Second, "the bind failure counted", func() bool { return reloads(t, metricsURL, "failure") == 4 })
	if got := who(t, "tcp", d.addr); got != "B" {
		t.Errorf("after a bind failure: %q, want B", got)
	}

	writeConfig(t, cfg, base+fmt.Sprintf("root = %q\n", rootC))
	d.signal(unix.SIGHUP)
	testsupport.Eventually(t, 10*time.Second, "the root after a good file", func() bool { return who(t, "tcp", d.addr) == "C" })
	testsupport.Eventually(t, 10*time.Second, "the second success counted", func() bool { return reloads(t, metricsURL, "success") == 2 })
	// The same file again: a reload that changes nothing keeps the generation (and its
	// connections).
	ka := dialKeepAlive(t, d.addr)
	if _, body, err := ka.get("/who.txt"); err != nil || body != "C" {
		t.Fatal(body, err)
	}
	d.signal(unix.SIGHUP)
	testsupport.Eventually(t, 10*time.Second, "the no-op reload counted", func() bool { return reloads(t, metricsURL, "success") == 3 })
	if resp, body, err := ka.get("/who.txt"); err != nil || body != "C" || resp.Close {
		t.Errorf("keep-alive across a no-op reload: %q %v", body, err)
	}
	d.stop()
	if !strings.Contains(d.stderr.String(), `"changed":["root","idle-timeout"]`) {
		t.Errorf("the reload log line does not list the changed keys:\n%s", d.stderr.String())
	}
}

// TestReloadListenAddresses adds and removes a listen address by reload; the TCP socket kept
// across reloads is the same one (its ephemeral port does not change).
func TestReloadListenAddresses(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "r.sock")
	cfg := filepath.Join(dir, "reactord.toml")
	writeConfig(t, cfg, "listen = [\"127.0.0.1:0\"]\naccess-log = \"off\"\n")
	d := start(t, "-config", cfg)
	writeConfig(t, cfg, fmt.Sprintf("listen = [\"127.0.0.1:0\", \"unix:%s\"]\naccess-log = \"off\"\n", sock))
	d.signal(unix.SIGHUP)
	testsupport.Eventually(t, 10*time.Second, "the unix socket", func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if r := rawNet(t, "unix", sock, "GET", "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); r.status != 200 {
		t.Errorf("unix socket: %d", r.status)
	}
	if r := raw(t, d.addr, "GET", "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); r.status != 200 {
		t.Errorf("the TCP address after the reload: %d", r.status)
	}
	writeConfig(t, cfg, "listen = [\"127.0.0.1:0\"]\naccess-log = \"off\"\n")
	d.signal(unix.SIGHUP)
	testsupport.Eventually(t, 10*time.Second, "the unix socket to close", func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if r := raw(t, d.addr, "GET", "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); r.status != 200 {
		t.Errorf("the TCP address after the second reload: %d", r.status)
	}
	// Back again, then a stop: the file a previous generation created is removed at the end.
	writeConfig(t, cfg, fmt.Sprintf("listen = [\"127.0.0.1:0\", \"unix:%s\"]\naccess-log = \"off\"\n", sock))
	d.signal(unix.SIGHUP)
	testsupport.Eventually(t, 10*time.Second, "the unix socket again", func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	writeConfig(t, cfg, fmt.Sprintf("listen = [\"127.0.0.1:0\", \"unix:%s\"]\naccess-log = \"off\"\nidle-timeout = \"9s\"\n", sock))
	d.signal(unix.SIGHUP)
	testsupport.Eventually(t, 10*time.Second, "the third reload", func() bool {
		return strings.Count(d.stderr.String(), `"msg":"configuration reloaded"`) == 4
	})
	d.stop()
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket file left after the stop: %v", err)
	}
}

// TestAdminListener moves the probes and /metrics to their own listener, and checks what a
// load balancer sees during a shutdown: readiness fails, liveness does not.
func TestAdminListener(t *testing.T) {
	root := t.TempDir()
	const size = 8 << 20
	if err := os.WriteFile(filepath.Join(root, "big.bin"), pattern(size), 0o644); err != nil {
		t.Fatal(err)
	}
	d := start(t, "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0", "-root", root, "-access-log", "off", "-shutdown-timeout", "60s")
	if d.admin == "" {
		t.Fatal("no admin address in the addr file")
	}
	get := func(addr, path string) int {
		return raw(t, addr, "GET", "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status
	}
	for _, tc := range []struct {
		addr, path string
		status     int
	}{
		{d.addr, "/metrics", 404}, {d.addr, "/healthz", 404}, {d.addr, "/readyz", 404},
		{d.admin, "/metrics", 200}, {d.admin, "/healthz", 200}, {d.admin, "/readyz", 200}, {d.admin, "/livez", 200},
		{d.admin, "/big.bin", 404}, {d.admin, "/", 404},
	} {
		if got := get(tc.addr, tc.path); got != tc.status {
			t.Errorf("%s%s: %d, want %d", tc.addr, tc.path, got, tc.status)
		}
	}
	// A download in flight keeps the shutdown draining while the probes are looked at.
	conn, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(16 << 10)
	conn.SetDeadline(testsupport.Deadline(60 * time.Second))
	io.WriteString(conn, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("download: %v", err)
	}
	d.signal(unix.SIGTERM)
	testsupport.Eventually(t, 10*time.Second, "readiness to fail", func() bool { return get(d.admin, "/readyz") == 503 })
	if got := get(d.admin, "/healthz"); got != 503 {
		t.Errorf("/healthz while draining: %d", got)
	}
	if got := get(d.admin, "/livez"); got != 200 {
		t.Errorf("/livez while draining: %d", got)
	}
	h := sha256.New()
	if n, err := io.Copy(h, resp.Body); err != nil || n != size {
		t.Fatalf("download during shutdown: %d bytes, %v", n, err)
	}
	if code := d.wait(60 * time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, d.stderr.String())
	}
}

// readPid reads a pid file, or 0.
func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// TestUpgrade replaces the running binary twice with SIGUSR2: each new process serves the
// same addresses (public and admin) at once, rewrites the pid file, and the old one finishes
// its in-flight response and exits 0.
func TestUpgrade(t *testing.T) {
	dir := t.TempDir()
	rootA, rootB := siteDir(t, "A"), siteDir(t, "B")
	const size = 4 << 20
	if err := os.WriteFile(filepath.Join(rootA, "big.bin"), pattern(size), 0o644); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "reactord.pid")
	cfg := filepath.Join(dir, "reactord.toml")
	conf := func(root string) string {
		return fmt.Sprintf("listen = [\"127.0.0.1:0\"]\nadmin-listen = \"127.0.0.1:0\"\naccess-log = \"off\"\nroot = %q\npid-file = %q\nshutdown-timeout = \"30s\"\n", root, pidFile)
	}
	writeConfig(t, cfg, conf(rootA))
	d := start(t, "-config", cfg)
	// The daemon publishes its addresses (what start waits for) just before it writes the pid
	// file: under load the test can read the file in between.
	testsupport.Eventually(t, 0, "the pid file", func() bool { return readPid(pidFile) == d.cmd.Process.Pid })
	// In flight on the old process during the upgrade.
	conn, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(16 << 10)
	conn.SetDeadline(testsupport.Deadline(60 * time.Second))
	io.WriteString(conn, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "GET"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("download: %v", err)
	}

	// The new binary gets the new file: that is how the test tells the processes apart.
	writeConfig(t, cfg, conf(rootB))
	d.signal(unix.SIGUSR2)
	testsupport.Eventually(t, 20*time.Second, "the new process's pid file", func() bool {
		p := readPid(pidFile)
		return p != 0 && p != d.cmd.Process.Pid
	})
	second := adopt(t, readPid(pidFile))
	testsupport.Eventually(t, 10*time.Second, "new connections served by the new process", func() bool { return who(t, "tcp", d.addr) == "B" })
	if got := raw(t, d.admin, "GET", "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status; got != 200 {
		t.Errorf("admin /readyz after the upgrade: %d", got)
	}
	h := sha256.New()
	if n, err := io.Copy(h, resp.Body); err != nil || n != size {
		t.Fatalf("in-flight download across the upgrade: %d bytes, %v", n, err)
	}
	if string(h.Sum(nil)) != string(sha256Sum(pattern(size))) {
		t.Error("in-flight download: body differs")
	}
	if code := d.wait(30 * time.Second); code != 0 {
		t.Fatalf("old process exit %d\n%s", code, d.stderr.String())
	}
	if !strings.Contains(d.stderr.String(), "stopped after the upgrade") {
		t.Errorf("old process log:\n%s", d.stderr.String())
	}
	if pid := readPid(pidFile); pid != second.pid {
		t.Errorf("pid file after the old process exited: %d, want %d", pid, second.pid)
	}

	// Again, from the new process: upgrades repeat.
	writeConfig(t, cfg, conf(rootA))
	second.signal(unix.SIGUSR2)
	testsupport.Eventually(t, 20*time.Second, "the third process's pid file", func() bool {
		p := readPid(pidFile)
		return p != 0 && p != second.pid
	})
	third := adopt(t, readPid(pidFile))
	if code := second.wait(30 * time.Second); code != 0 {
		t.Fatalf("second process exit %d\n%s", code, d.stderr.String())
	}
	if got := who(t, "tcp", d.addr); got != "A" {
		t.Errorf("after the second upgrade: %q", got)
	}
	third.signal(unix.SIGTERM)
	if code := third.wait(30 * time.Second); code != 0 {
		t.Fatalf("third process exit %d", code)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left after the last process stopped: %v", err)
	}
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// TestAddrFileLast: the addr file is what a script (and every test here) waits for, so
// the pid file must be in place before it appears. TestUpgrade read the pid file right after
// the addr file appeared and once, under load, found none: the daemon wrote it second. Here
// the pid file cannot be written (its path is a directory), and the addr file must never
// have been published by the process that then fails.
func TestAddrFileLast(t *testing.T) {
	dir := t.TempDir()
	addrFile, pidDir := filepath.Join(dir, "addrs"), filepath.Join(dir, "pid-is-a-dir")
	if err := os.Mkdir(pidDir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runBinary(t, "-listen", "127.0.0.1:0", "-root", siteDir(t, "A"), "-log-format", "json",
		"-addr-file", addrFile, "-pid-file", pidDir)
	if code == 0 || !strings.Contains(errOut, "pid file") {
		t.Fatalf("exit %d with an unwritable pid file; stderr:\n%s", code, errOut)
	}
	if b, err := os.ReadFile(addrFile); !os.IsNotExist(err) {
		t.Fatalf("addr file published (%q, %v) by a process that failed to write its pid file", b, err)
	}
}

// TestUpgradeFailureKeepsServing starts, on SIGUSR2, a binary that fails, then a good binary
// with an invalid configuration: each time the old process logs why and serves on; once both
// are fixed, the upgrade goes through.
func TestUpgradeFailureKeepsServing(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "reactord")
	real, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	install := func(content []byte) {
		t.Helper()
		// As a package manager does: a new file renamed over the old name.
		tmp := exe + ".new"
		if err := os.WriteFile(tmp, content, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, exe); err != nil {
			t.Fatal(err)
		}
	}
	install(real)
	pidFile := filepath.Join(dir, "pid")
	cfg := filepath.Join(dir, "reactord.toml")
	good := fmt.Sprintf("listen = [\"127.0.0.1:0\"]\naccess-log = \"off\"\npid-file = %q\n", pidFile)
	writeConfig(t, cfg, good)
	d := startWith(t, startOpts{exe: exe}, "-config", cfg)
	pid := d.cmd.Process.Pid

	failures := 0
	expectFailure := func(why string) {
		t.Helper()
		failures++
		d.signal(unix.SIGUSR2)
		testsupport.Eventually(t, 20*time.Second, "the failure to be logged", func() bool {
			return strings.Count(d.stderr.String(), "upgrade failed; this process keeps serving") == failures
		})
		if !strings.Contains(d.stderr.String(), why) {
			t.Errorf("the log does not say %q:\n%s", why, d.stderr.String())
		}
		if r := raw(t, d.addr, "GET", "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); r.status != 200 {
			t.Errorf("after a failed upgrade: %d", r.status)
		}
		if p := readPid(pidFile); p != pid {
			t.Errorf("pid file %d after a failed upgrade, want %d", p, pid)
		}
	}
	install([]byte("#!/bin/sh\necho 'broken build' >&2\nexit 3\n"))
	expectFailure("exit status 3")
	install(real)
	writeConfig(t, cfg, good+"loops = 0\n")
	expectFailure("exit status 2")
	if !strings.Contains(d.stderr.String(), "loops: must be ≥ 1") {
		t.Errorf("the new process's own error is not in the log:\n%s", d.stderr.String())
	}
	writeConfig(t, cfg, good)
	d.signal(unix.SIGUSR2)
	testsupport.Eventually(t, 20*time.Second, "the upgrade to go through", func() bool {
		p := readPid(pidFile)
		return p != 0 && p != pid
	})
	next := adopt(t, readPid(pidFile))
	if code := d.wait(30 * time.Second); code != 0 {
		t.Fatalf("old process exit %d", code)
	}
	next.signal(unix.SIGTERM)
	if code := next.wait(30 * time.Second); code != 0 {
		t.Fatalf("new process exit %d", code)
	}
}

// TestMaxConnsPerIPReload: a reload keeps the per-address counts. Three connections from
// 127.0.0.1 inside a request head (busy: the retiring generation waits for them) hold a limit
// of 3, so a fourth is refused; after a reload to a limit of 4 the new generation serves one
// more and refuses the next, counting the old generation's three. Completing their requests
// closes them (the old generation's last responses) and the count drains to 0.
func TestMaxConnsPerIPReload(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "reactord.toml")
	base := "listen = [\"127.0.0.1:0\"]\nadmin-listen = \"127.0.0.1:0\"\naccess-log = \"off\"\n" +
		"header-timeout = \"60s\"\nshutdown-timeout = \"60s\"\n"
	writeConfig(t, cfg, base+"max-conns-per-ip = 3\n")
	d := start(t, "-config", cfg)
	metricsURL := "http://" + d.admin + "/metrics"
	refused := func() float64 {
		return sample(t, scrapeURL(t, metricsURL), "reactord_connections_refused_total", map[string]string{"reason": "per_ip"})
	}
	var partial []net.Conn
	for range 3 {
		c := dialFrom(t, d.addr, "127.0.0.1")
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		partial = append(partial, c)
	}
	if _, status, err := getFrom(t, d.addr, "127.0.0.1"); status != 0 || err == nil {
		t.Fatalf("4th connection: status %d, %v; want closed unanswered", status, err)
	}
	if got := refused(); got != 1 {
		t.Fatalf("refused = %v, want 1", got)
	}

	writeConfig(t, cfg, base+"max-conns-per-ip = 4\n")
	d.signal(unix.SIGHUP)
	testsupport.Eventually(t, 10*time.Second, "the reload counted", func() bool { return reloads(t, metricsURL, "success") == 1 })
	fresh, status, err := getFrom(t, d.addr, "127.0.0.1")
	if status != 200 {
		t.Fatalf("after the reload, the 4th connection: status %d, %v; want 200", status, err)
	}
	if _, status, err := getFrom(t, d.addr, "127.0.0.1"); status != 0 || err == nil {
		t.Fatalf("after the reload, the 5th connection: status %d, %v; want closed unanswered (the old generation's count kept)", status, err)
	}
	if got := refused(); got != 2 {
		t.Fatalf("refused = %v, want 2", got)
	}

	for i, c := range partial {
		if _, err := io.WriteString(c, "\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("old connection %d: %v", i, err)
		}
		resp.Body.Close()
	}
	fresh.Close()
	testsupport.Eventually(t, 10*time.Second, "client_addresses back to 0", func() bool {
		return sample(t, scrapeURL(t, metricsURL), "reactord_client_addresses", nil) == 0
	})
	d.stop()
}
