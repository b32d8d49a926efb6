//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// listenSocket opens a listening socket as systemd does for a .socket unit: plain system
// calls, before the service exists.
func listenSocket(t *testing.T, network, path string) (*os.File, string) {
	t.Helper()
	family, sa := unix.AF_INET, unix.Sockaddr(&unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	if network == "unix" {
		family, sa = unix.AF_UNIX, &unix.SockaddrUnix{Name: path}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 128); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), network)
	t.Cleanup(func() { f.Close() })
	if network == "unix" {
		return f, path
	}
	got, _ := unix.Getsockname(fd)
	return f, fmt.Sprintf("127.0.0.1:%d", got.(*unix.SockaddrInet4).Port)
}

// TestSocketActivation plays systemd: the sockets exist and clients have connected and sent
// their requests before the daemon starts; it is given the sockets as descriptors 3.. with
// LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, serves them (the one named "admin" as the admin
// listener), answers the queued requests, and opens none of its configured addresses.
func TestSocketActivation(t *testing.T) {
	web, webAddr := listenSocket(t, "tcp", "")
	sock := filepath.Join(t.TempDir(), "web.sock")
	webUnix, _ := listenSocket(t, "unix", sock)
	admin, adminAddr := listenSocket(t, "tcp", "")

	var queued []*bufio.Reader
	for i := 0; i < 5; i++ {
		network, addr := "tcp", webAddr
		if i%2 == 1 {
			network, addr = "unix", sock
		}
		c, err := net.Dial(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(testsupport.Deadline(30 * time.Second))
		fmt.Fprintf(c, "GET /healthz?%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", i)
		queued = append(queued, bufio.NewReader(c))
	}
	// A configured address the daemon must not open: systemd's sockets replace it.
	unused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unusedAddr := unused.Addr().String()
	unused.Close()

	d := startWith(t, startOpts{files: []*os.File{web, webUnix, admin}, activate: true, names: "web:web-unix:admin"},
		"-listen", unusedAddr, "-access-log", "off")
	for i, br := range queued {
		resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("queued request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// With an admin socket, /healthz on the public ones is content: 404 here.
		if resp.StatusCode != 404 {
			t.Errorf("queued request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if r := raw(t, adminAddr, "GET", "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); r.status != 200 {
		t.Errorf("admin socket /readyz: %d", r.status)
	}
	if d.admin != adminAddr || len(d.addrs) != 2 || d.addrs[0] != webAddr || d.addrs[1] != "unix:"+sock {
		t.Errorf("addr file: public %v admin %q; want [%s unix:%s] and %s", d.addrs, d.admin, webAddr, sock, adminAddr)
	}
	if c, err := net.Dial("tcp", unusedAddr); err == nil {
		c.Close()
		t.Errorf("the configured address %s was opened too", unusedAddr)
	}
	d.stop()
	if !strings.Contains(d.stderr.String(), `"from":"systemd (web)"`) {
		t.Errorf("the log does not say where the socket came from:\n%s", d.stderr.String())
	}
	// systemd owns the socket file: it is still there for the next start.
	if _, err := os.Stat(sock); err != nil {
		t.Errorf("the daemon removed systemd's socket file: %v", err)
	}
}

// TestSocketActivationIgnored checks the two ways the variables can be stale: LISTEN_PID
// naming another process (they were meant for a parent), in which case the configured
// addresses are opened as usual.
func TestSocketActivationIgnored(t *testing.T) {
	web, _ := listenSocket(t, "tcp", "")
	d := startWith(t, startOpts{files: []*os.File{web}, env: []string{"LISTEN_PID=1", "LISTEN_FDS=1"}},
		"-listen", "127.0.0.1:0", "-access-log", "off")
	if r := raw(t, d.addr, "GET", "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); r.status != 200 {
		t.Errorf("configured address: %d", r.status)
	}
	d.stop()
	if !strings.Contains(d.stderr.String(), "ignoring LISTEN_FDS meant for another process") {
		t.Errorf("no warning:\n%s", d.stderr.String())
	}
}

// TestSocketActivationBadDescriptor hands over something that is not a listening socket:
// the daemon refuses to start and says which descriptor.
func TestSocketActivationBadDescriptor(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "notasocket")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, errOut, code := runBinaryWith(t, startOpts{files: []*os.File{f}, activate: true}, "-listen", "127.0.0.1:0", "-log-format", "json")
	if code != 1 || !strings.Contains(errOut, "listen socket 3") || !strings.Contains(errOut, "not a socket") {
		t.Errorf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
}

// TestSystemdNotify listens on a NOTIFY_SOCKET like systemd and follows the daemon through a
// start, a reload, an upgrade and a stop.
func TestSystemdNotify(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "notify")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 20})
	next := func(want string) string {
		t.Helper()
		buf := make([]byte, 4096)
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				t.Fatalf("waiting for %q: %v", want, err)
			}
			if msg := string(buf[:n]); strings.Contains(msg, want) {
				return msg
			}
		}
	}
	pidFile := filepath.Join(dir, "pid")
	cfg := filepath.Join(dir, "reactord.toml")
	writeConfig(t, cfg, fmt.Sprintf("listen = [\"127.0.0.1:0\"]\naccess-log = \"off\"\npid-file = %q\n", pidFile))
	d := startWith(t, startOpts{env: []string{"NOTIFY_SOCKET=" + path}}, "-config", cfg)
	if msg := next("READY=1"); !strings.Contains(msg, fmt.Sprintf("MAINPID=%d", d.cmd.Process.Pid)) {
		t.Errorf("start: %q", msg)
	}
	writeConfig(t, cfg, fmt.Sprintf("listen = [\"127.0.0.1:0\"]\naccess-log = \"off\"\npid-file = %q\nidle-timeout = \"5s\"\n", pidFile))
	d.signal(unix.SIGHUP)
	if msg := next("RELOADING=1"); !strings.Contains(msg, "MONOTONIC_USEC=") {
		t.Errorf("reload: %q", msg)
	}
	next("READY=1")
	d.signal(unix.SIGUSR2)
	msg := next("MAINPID=")
	testsupport.Eventually(t, 20*time.Second, "the new pid file", func() bool { return readPid(pidFile) != d.cmd.Process.Pid && readPid(pidFile) != 0 })
	newPid := readPid(pidFile)
	if !strings.Contains(msg, fmt.Sprintf("MAINPID=%d\n", newPid)) {
		t.Errorf("upgrade: %q, want MAINPID=%d", msg, newPid)
	}
	next2 := adopt(t, newPid)
	d.wait(30 * time.Second)
	next2.signal(unix.SIGTERM)
	next("STOPPING=1")
	if code := next2.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestWatchConfigKubelet updates the config file the way the kubelet updates a ConfigMap
// volume (a new timestamped directory, then a symbolic link renamed over ..data) and expects
// the daemon to reload it without a signal.
func TestWatchConfigKubelet(t *testing.T) {
	rootA, rootB := siteDir(t, "A"), siteDir(t, "B")
	vol := t.TempDir()
	write := func(stamp, root string) {
		t.Helper()
		dir := filepath.Join(vol, "..2026_12_02_"+stamp)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("listen = [\"127.0.0.1:0\"]\naccess-log = \"off\"\nroot = %q\n", root)
		if err := os.WriteFile(filepath.Join(dir, "reactord.toml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(vol, "..data_tmp")
		if err := os.Symlink(filepath.Base(dir), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(vol, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	write("1", rootA)
	if err := os.Symlink(filepath.Join("..data", "reactord.toml"), filepath.Join(vol, "reactord.toml")); err != nil {
		t.Fatal(err)
	}
	d := start(t, "-config", filepath.Join(vol, "reactord.toml"), "-watch-config", "20ms")
	if got := who(t, "tcp", d.addr); got != "A" {
		t.Fatalf("before the update: %q", got)
	}
	write("2", rootB)
	os.RemoveAll(filepath.Join(vol, "..2026_12_02_1"))
	testsupport.Eventually(t, 10*time.Second, "the reload on change", func() bool { return who(t, "tcp", d.addr) == "B" })
	if n := reloads(t, d.url("/metrics"), "success"); n != 1 {
		t.Errorf("successful reloads = %v, want exactly 1", n)
	}
	d.stop()
	if !strings.Contains(d.stderr.String(), `"trigger":"config file changed"`) {
		t.Errorf("log:\n%s", d.stderr.String())
	}
}

// TestSystemdSocketActivateTool runs the daemon under systemd's own socket activation code,
// systemd-socket-activate(1): it binds the socket, waits for the first connection, and execs
// the daemon with LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES set as systemd does. The
// connection that triggered the start is answered.
func TestSystemdSocketActivateTool(t *testing.T) {
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate not installed (Debian package systemd; .ci/run installs it)")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "web.sock")
	addrFile := filepath.Join(dir, "addrs")
	d := &proc{t: t, stdout: newOutFile(t, "stdout"), stderr: newOutFile(t, "stderr"), done: make(chan struct{})}
	d.cmd = exec.Command(tool, "-l", sock, "--fdname=web", binary, "-listen", "127.0.0.1:0", "-addr-file", addrFile,
		"-log-format", "json", "-access-log", "off")
	d.cmd.Stdout, d.cmd.Stderr = d.stdout.f, d.stderr.f
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Kill()
			<-d.done
		}
	})
	// Listening, not bound: the tool binds (the file appears) and then listens, and a
	// connection in between is refused. The probe connection starts the daemon, which
	// accepts it and sees it closed.
	testsupport.Eventually(t, 10*time.Second, "systemd-socket-activate to listen on "+sock, func() bool {
		c, err := net.Dial("unix", sock)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if r := rawNet(t, "unix", sock, "GET", "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); r.status != 200 {
		t.Fatalf("first connection: %d", r.status)
	}
	// The daemon serves before it writes the addr file.
	testsupport.Eventually(t, 10*time.Second, "the addr file", func() bool {
		_, err := os.Stat(addrFile)
		return err == nil
	})
	if b, _ := os.ReadFile(addrFile); string(b) != "unix:"+sock+"\n" {
		t.Errorf("addr file %q: want only the activated socket", b)
	}
	d.stop()
}

// TestSystemdUnits has systemd check the unit files in deploy/ (syntax, directives, the
// executable) with the binary the tests built in place of /usr/local/bin/reactord.
func TestSystemdUnits(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd; .ci/run installs it)")
	}
	dir := t.TempDir()
	var units []string
	for _, name := range []string{"reactord.service", "reactord.socket", "reactord-admin.socket"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", name))
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.ReplaceAll(string(b), "/usr/local/bin/reactord", binary))
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, p)
	}
	out, err := exec.Command(analyze, append([]string{"verify", "--man=no"}, units...)...).CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
