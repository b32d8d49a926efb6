//go:build linux

package hardening_test

import (
	"bufio"
	"bytes"
	"errors"
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

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// Proofs for running the daemon like nginx in production (issue 14): binary upgrades and
// configuration reloads under load, and socket activation. The counts each test logs as
// FIGURE lines are the ones docs/RELIABILITY.md quotes.
//
// $REACTORD_OPS_LONG=1 runs the long variants (100 upgrades, 500 reloads) instead of the
// bounded ones that go test ./... runs.

func longOps() bool { return os.Getenv("REACTORD_OPS_LONG") != "" }

// Load generator: wrk-style, two kinds of clients running back to back until stopped.
const (
	keepAliveClients = 12 // each keeps one connection and sends the next request at once
	newConnClients   = 4  // each opens a new connection per request (Connection: close)
)

// opsTally classifies every request the load generator sent.
type opsTally struct {
	ok      atomic.Int64 // a whole, correct 200
	failed  atomic.Int64 // a whole response, but not the right one (status, length, body)
	resets  atomic.Int64 // ECONNRESET on a write or a read
	lost    atomic.Int64 // part of a response arrived, then the connection ended
	unread  atomic.Int64 // keep-alive: the connection ended cleanly before any response byte
	refused atomic.Int64 // a dial failed
	conns   atomic.Int64 // connections opened
}

func (t *opsTally) String() string {
	return fmt.Sprintf("ok=%d failed=%d resets=%d lost-in-flight=%d closed-before-response=%d refused=%d connections=%d",
		t.ok.Load(), t.failed.Load(), t.resets.Load(), t.lost.Load(), t.unread.Load(), t.refused.Load(), t.conns.Load())
}

// check fails the test for anything but whole, correct responses. unread (an idle keep-alive
// connection closed by the server while the next request was on its way: the request was
// never read, and RFC 9112 §9.3.1 lets a client retry it) is held to zero too: the retiring
// server answers with "Connection: close" first, so a busy client leaves on its own.
func (t *opsTally) check(tb testing.TB, details <-chan string) {
	tb.Helper()
	for name, n := range map[string]int64{
		"failed": t.failed.Load(), "reset": t.resets.Load(), "lost in flight": t.lost.Load(),
		"closed before any response byte": t.unread.Load(), "refused": t.refused.Load(),
	} {
		if n != 0 {
			tb.Errorf("%d requests %s", n, name)
		}
	}
	if t.ok.Load() == 0 {
		tb.Error("no request succeeded")
	}
	for {
		select {
		case d := <-details:
			tb.Log("first failures: " + d)
		default:
			return
		}
	}
}

// classify records how a request ended.
func (t *opsTally) classify(resp *http.Response, body []byte, err error, gotBytes bool, details chan<- string) {
	note := func(s string) {
		select {
		case details <- s:
		default:
		}
	}
	switch {
	case err == nil && resp.StatusCode == 200 && bytes.Equal(body, smallBody):
		t.ok.Add(1)
	case err == nil:
		t.failed.Add(1)
		note(fmt.Sprintf("%s, %d body bytes", resp.Status, len(body)))
	case errors.Is(err, unix.ECONNRESET) || errors.Is(err, unix.EPIPE):
		t.resets.Add(1)
		note("reset: " + err.Error())
	case !gotBytes && isEndErr(err):
		t.unread.Add(1)
		note("closed before any response byte: " + err.Error())
	default:
		t.lost.Add(1)
		note("lost: " + err.Error())
	}
}

// exchange sends one GET for smallPath on c and reads the response.
func exchange(c net.Conn, cr *countingReader, br *bufio.Reader, closeConn bool) (*http.Response, []byte, error, bool) {
	_ = c.SetDeadline(testsupport.Deadline(20 * time.Second))
	req := getReq(smallPath)
	if closeConn {
		req = "GET " + smallPath + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
	}
	before := cr.n - int64(br.Buffered())
	if _, err := io.WriteString(c, req); err != nil {
		return nil, nil, err, false
	}
	resp, err := http.ReadResponse(br, nil)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	return resp, body, err, cr.n-int64(br.Buffered()) != before
}

// runLoad starts the clients against addr; the returned function stops them and waits.
func runLoad(addr string, tally *opsTally, details chan<- string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	stopped := func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
	for range keepAliveClients {
		wg.Go(func() {
			for !stopped() {
				c, err := dial(addr)
				if err != nil {
					tally.refused.Add(1)
					return
				}
				tally.conns.Add(1)
				cr := &countingReader{r: c}
				br := bufio.NewReader(cr)
				for !stopped() {
					resp, body, err, got := exchange(c, cr, br, false)
					tally.classify(resp, body, err, got, details)
					if err != nil || resp.Close {
						break
					}
				}
				c.Close()
			}
		})
	}
	for range newConnClients {
		wg.Go(func() {
			for !stopped() {
				c, err := dial(addr)
				if err != nil {
					tally.refused.Add(1)
					return
				}
				tally.conns.Add(1)
				cr := &countingReader{r: c}
				resp, body, err, got := exchange(c, cr, bufio.NewReader(cr), true)
				tally.classify(resp, body, err, got, details)
				c.Close()
			}
		})
	}
	return func() {
		close(done)
		wg.Wait()
	}
}

// opsProc is a daemon process followed by pid: the first one is the test's child; those an
// upgrade starts become the test's children when their parent exits (the test process is a
// subreaper, see TestMain), and are reaped with wait4.
type opsProc struct {
	pid    int
	done   chan struct{}
	status unix.WaitStatus
}

func followPid(t testing.TB, pid int) *opsProc {
	p := &opsProc{pid: pid, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			_, err := unix.Wait4(pid, &p.status, 0, nil)
			switch err {
			case unix.EINTR:
				continue
			case unix.ECHILD:
				// Still its parent's child (or being reparented): ask again shortly.
				if unix.Kill(pid, 0) == unix.ESRCH {
					return
				}
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return
		}
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			unix.Kill(pid, unix.SIGKILL)
			<-p.done
		}
	})
	return p
}

func (p *opsProc) wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(testsupport.Scale(timeout)):
		t.Fatalf("process %d did not exit within %v", p.pid, timeout)
	}
	return p.status.ExitStatus()
}

// opsDaemon starts reactord with a config file, a pid file and an admin listener, logging to
// a file (not a pipe: processes started by an upgrade share it and outlive the first one).
type opsDaemon struct {
	dir, cfg, pidFile, log string
	addr, admin            string
	first                  *opsProc
}

func startOpsDaemon(t *testing.T, config string, extra ...string) *opsDaemon {
	t.Helper()
	d := &opsDaemon{dir: t.TempDir()}
	d.cfg = filepath.Join(d.dir, "reactord.toml")
	d.pidFile = filepath.Join(d.dir, "reactord.pid")
	d.log = filepath.Join(d.dir, "stderr")
	d.writeConfig(t, config)
	logf, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	addrFile := filepath.Join(d.dir, "addrs")
	args := append([]string{"-config", d.cfg, "-addr-file", addrFile, "-pid-file", d.pidFile,
		"-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0", "-access-log", "off", "-log-format", "json"}, extra...)
	cmd := exec.Command(daemonBin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.first = followPid(t, cmd.Process.Pid)
	testsupport.Eventually(t, 20*time.Second, "the addr file", func() bool {
		b, err := os.ReadFile(addrFile)
		if err != nil {
			return false
		}
		for _, f := range strings.Fields(string(b)) {
			if a, ok := strings.CutPrefix(f, "admin="); ok {
				d.admin = a
			} else if d.addr == "" {
				d.addr = f
			}
		}
		return true
	})
	return d
}

func (d *opsDaemon) writeConfig(t testing.TB, body string) {
	t.Helper()
	tmp := d.cfg + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, d.cfg); err != nil {
		t.Fatal(err)
	}
}

func (d *opsDaemon) pid() int {
	b, _ := os.ReadFile(d.pidFile)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func (d *opsDaemon) logs() string {
	b, _ := os.ReadFile(d.log)
	return string(b)
}

// adminGet answers the admin listener's path on a new connection: status and body.
func (d *opsDaemon) adminGet(t testing.TB, path string) (int, string) {
	t.Helper()
	c, err := dial(d.admin)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(testsupport.Deadline(10 * time.Second))
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric reads one sample line's value from the admin listener's /metrics, or -1.
func (d *opsDaemon) metric(t testing.TB, line string) float64 {
	t.Helper()
	_, body := d.adminGet(t, "/metrics")
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, line+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// TestUpgradesUnderLoad replaces the binary with SIGUSR2, upgrades in a row, each new process
// upgraded in turn, while keep-alive and new-connection clients run back to back: no request
// may fail, be reset, or lose its response.
func TestUpgradesUnderLoad(t *testing.T) {
	upgrades := 10
	if longOps() {
		upgrades = 100
	}
	d := startOpsDaemon(t, fmt.Sprintf("root = %q\nshutdown-timeout = \"20s\"\nloops = 2\n", siteRoot))
	var tally opsTally
	details := make(chan string, 8)
	stop := runLoad(d.addr, &tally, details)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	testsupport.Eventually(t, 20*time.Second, "load", func() bool { return tally.ok.Load() > 500 })

	cur := d.first
	start := time.Now()
	var took []time.Duration
	for i := 0; i < upgrades; i++ {
		before := tally.ok.Load()
		t0 := time.Now()
		if err := unix.Kill(cur.pid, unix.SIGUSR2); err != nil {
			t.Fatal(err)
		}
		testsupport.Eventually(t, 30*time.Second, fmt.Sprintf("upgrade %d: the new process's pid file", i+1), func() bool {
			p := d.pid()
			return p != 0 && p != cur.pid
		})
		next := followPid(t, d.pid())
		if code := cur.wait(t, 30*time.Second); code != 0 {
			t.Fatalf("upgrade %d: old process %d exit %d\n%s", i+1, cur.pid, code, d.logs())
		}
		took = append(took, time.Since(t0))
		cur = next
		// Traffic flows through the new process before the next upgrade.
		testsupport.Eventually(t, 20*time.Second, "traffic after the upgrade", func() bool { return tally.ok.Load() > before+200 })
	}
	elapsed := time.Since(start)
	stop()
	stopped = true
	if code, _ := d.adminGet(t, "/readyz"); code != 200 {
		t.Errorf("/readyz on the last process: %d", code)
	}
	if err := unix.Kill(cur.pid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := cur.wait(t, 30*time.Second); code != 0 {
		t.Errorf("last process exit %d", code)
	}
	var longest time.Duration
	for _, d := range took {
		longest = max(longest, d)
	}
	t.Logf("FIGURE: %d SIGUSR2 upgrades under load (%d keep-alive + %d new-connection clients) in %v (each, signal to old process exited: longest %v): %s",
		upgrades, keepAliveClients, newConnClients, elapsed.Round(time.Millisecond), longest.Round(time.Millisecond), tally.String())
	tally.check(t, details)
	if n := strings.Count(d.logs(), "stopped after the upgrade"); n != upgrades {
		t.Errorf("%d processes logged a completed hand-over, want %d", n, upgrades)
	}
}

// TestReloadsUnderLoad sends SIGHUP reloads alternating a valid file (a different root each
// time, each applied as a new generation) and an invalid one, under load: no request may fail,
// and an invalid file must change nothing.
func TestReloadsUnderLoad(t *testing.T) {
	reloads := 50
	if longOps() {
		reloads = 500
	}
	// Two roots that serve the same small file, and different who.txt.
	roots := make([]string, 2)
	for i := range roots {
		roots[i] = filepath.Join(t.TempDir(), fmt.Sprint("root", i))
		if err := os.MkdirAll(roots[i], 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range map[string][]byte{smallPath: smallBody, "/who.txt": []byte(fmt.Sprint(i))} {
			if err := os.WriteFile(filepath.Join(roots[i], name), body, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	valid := func(i int) string {
		return fmt.Sprintf("root = %q\nshutdown-timeout = \"20s\"\nloops = 2\nidle-timeout = \"%ds\"\n", roots[i%2], 60+i)
	}
	invalid := []string{
		"root = 12\n",                        // wrong type
		"rot = \"/srv\"\n",                   // unknown key
		"root = \"/nonexistent-root\"\n",     // fails validation
		"loops = [\n",                        // not TOML
		"max-header-bytes = \"1KiB\"\n[x]\n", // nested table
	}
	d := startOpsDaemon(t, valid(0))
	who := func() string {
		c, err := dial(d.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(testsupport.Deadline(10 * time.Second))
		io.WriteString(c, "GET /who.txt HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var tally opsTally
	details := make(chan string, 8)
	stop := runLoad(d.addr, &tally, details)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	testsupport.Eventually(t, 20*time.Second, "load", func() bool { return tally.ok.Load() > 500 })

	const okLine = `reactord_config_reloads_total{result="success"}`
	const failLine = `reactord_config_reloads_total{result="failure"}`
	want := "0"
	start := time.Now()
	for i := 1; i <= reloads; i++ {
		ok, fail := d.metric(t, okLine), d.metric(t, failLine)
		if i%2 == 1 {
			d.writeConfig(t, valid(i))
			want = fmt.Sprint(i % 2)
		} else {
			d.writeConfig(t, invalid[(i/2)%len(invalid)])
		}
		if err := unix.Kill(d.first.pid, unix.SIGHUP); err != nil {
			t.Fatal(err)
		}
		testsupport.Eventually(t, 20*time.Second, fmt.Sprintf("reload %d counted", i), func() bool {
			return d.metric(t, okLine)+d.metric(t, failLine) == ok+fail+1
		})
		if i%2 == 1 && d.metric(t, okLine) != ok+1 {
			t.Fatalf("reload %d (valid) counted as a failure:\n%s", i, d.logs())
		}
		if i%2 == 0 && d.metric(t, failLine) != fail+1 {
			t.Fatalf("reload %d (invalid) counted as a success", i)
		}
		// New connections see the configuration in force: the last valid one.
		if got := who(); got != want {
			t.Fatalf("after reload %d: who.txt %q, want %q", i, got, want)
		}
	}
	elapsed := time.Since(start)
	stop()
	stopped = true
	okN, failN := d.metric(t, okLine), d.metric(t, failLine)
	if err := unix.Kill(d.first.pid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := d.first.wait(t, 60*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	t.Logf("FIGURE: %d SIGHUP reloads under load (%d keep-alive + %d new-connection clients), valid and invalid alternating, in %v: reloads success=%v failure=%v; %s",
		reloads, keepAliveClients, newConnClients, elapsed.Round(time.Millisecond), okN, failN, tally.String())
	tally.check(t, details)
	if okN != float64((reloads+1)/2) || failN != float64(reloads/2) {
		t.Errorf("reload counters success=%v failure=%v", okN, failN)
	}
}

// TestSocketActivationQueued plays systemd: it opens the listening socket, lets clients connect
// and send their requests while no server runs, then starts the daemon with the socket as
// descriptor 3 and LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES. Every queued request is answered, and
// the daemon serves new connections at once.
func TestSocketActivationQueued(t *testing.T) {
	const queued = 64
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 1024); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	sock := os.NewFile(uintptr(fd), "web")
	defer sock.Close()

	conns := make([]*bufio.Reader, queued)
	for i := range conns {
		c, err := dial(addr)
		if err != nil {
			t.Fatalf("connect %d while no server runs: %v", i, err)
		}
		defer c.Close()
		_ = c.SetDeadline(testsupport.Deadline(30 * time.Second))
		if _, err := io.WriteString(c, "GET "+smallPath+" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		conns[i] = bufio.NewReader(c)
	}

	logf, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// LISTEN_PID must be the daemon's own pid, which only exists after the fork: this test
	// binary, in its activation helper mode, sets it and execs the daemon (execActivated).
	cmd := exec.Command(os.Args[0], "-listen", "127.0.0.1:0", "-root", siteRoot, "-access-log", "off", "-log-format", "json")
	cmd.Env = append(os.Environ(), envExecActivate+"="+daemonBin, "LISTEN_FDS=1", "LISTEN_FDNAMES=web")
	cmd.ExtraFiles = []*os.File{sock}
	cmd.Stdout, cmd.Stderr = logf, logf
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := followPid(t, cmd.Process.Pid)
	answered := 0
	for i, br := range conns {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Errorf("queued request %d: %v", i, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(body, smallBody) {
			t.Errorf("queued request %d: %s %q", i, resp.Status, body)
			continue
		}
		answered++
	}
	firstWave := time.Since(started)
	// And new connections, on the socket systemd owns.
	for i := 0; i < 10; i++ {
		if code, _, err := fetch(addr, smallPath); code != 200 || err != nil {
			t.Errorf("new connection %d: %d %v", i, code, err)
		}
	}
	if err := unix.Kill(p.pid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 30*time.Second); code != 0 {
		b, _ := os.ReadFile(logf.Name())
		t.Errorf("exit %d\n%s", code, b)
	}
	t.Logf("FIGURE: socket activation: %d of %d requests queued before the daemon started answered, %v from exec to the last answer",
		answered, queued, firstWave.Round(time.Millisecond))
	// The socket is still systemd's (ours here): a new server could be started on it again.
	if err := unix.Listen(fd, 1024); err != nil {
		t.Errorf("the socket did not survive the daemon: %v", err)
	}
}
