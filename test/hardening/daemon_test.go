//go:build linux

package hardening_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// daemon is one reactord process started by a test.
type daemon struct {
	t           testing.TB
	cmd         *exec.Cmd
	addr        string
	pid         int
	logs        *lockedBuffer // stderr (the daemon's zap log)
	done        chan struct{} // closed when the process has exited
	status      int           // exit status, valid after done
	baseSockets int           // sockets held before any client connected (the listeners)
}

// daemonOpts configures startDaemon.
type daemonOpts struct {
	args   []string // flags after the defaults; a later flag wins
	nofile uint64   // RLIMIT_NOFILE (soft and hard) for the daemon; 0 inherits ours
	stdout *lockedBuffer
}

// startDaemon runs the daemon on 127.0.0.1:0 with -root siteRoot and waits for the address
// it writes to -addr-file. The daemon is killed at the end of the test if still running.
func startDaemon(t testing.TB, o daemonOpts) *daemon {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	args := []string{
		"-listen", "127.0.0.1:0",
		"-addr-file", addrFile,
		"-root", siteRoot,
		"-access-log", "off",
		"-log-format", "json",
		"-log-level", "warn",
	}
	args = append(args, o.args...)
	var cmd *exec.Cmd
	if o.nofile > 0 {
		// Re-exec this test binary in its helper mode (TestMain → execLimited), which lowers
		// the limit and then becomes the daemon: the pid we watch is the daemon's.
		cmd = exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(),
			envExecNofile+"="+strconv.FormatUint(o.nofile, 10),
			envExecBin+"="+daemonBin)
	} else {
		cmd = exec.Command(daemonBin, args...)
	}
	d := &daemon{t: t, cmd: cmd, logs: new(lockedBuffer), done: make(chan struct{})}
	cmd.Stderr = d.logs
	if o.stdout != nil {
		cmd.Stdout = o.stdout
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	d.pid = cmd.Process.Pid
	go func() {
		err := cmd.Wait()
		d.status = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			d.status = ee.ExitCode()
		} else if err != nil {
			d.status = -1
		}
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
			return
		default:
		}
		_ = cmd.Process.Signal(unix.SIGKILL)
		<-d.done
	})
	deadline := testsupport.Deadline(20 * time.Second)
	for {
		b, err := os.ReadFile(addrFile)
		if err == nil && len(b) > 0 {
			d.addr = strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
			d.baseSockets, _ = d.connFds()
			return d
		}
		select {
		case <-d.done:
			t.Fatalf("daemon exited with status %d before listening; log:\n%s", d.status, d.logs.String())
		case <-time.After(10 * time.Millisecond): // polling interval for the addr file
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not write %s; log:\n%s", addrFile, d.logs.String())
		}
	}
}

// stop sends SIGTERM and waits for the exit status.
func (d *daemon) stop(timeout time.Duration) int {
	d.t.Helper()
	if err := d.cmd.Process.Signal(unix.SIGTERM); err != nil {
		d.t.Fatalf("SIGTERM: %v", err)
	}
	return d.wait(timeout)
}

// wait waits for the process to exit and returns its status. The timeout is scaled with
// testsupport.Scale.
func (d *daemon) wait(timeout time.Duration) int {
	d.t.Helper()
	timeout = testsupport.Scale(timeout)
	select {
	case <-d.done:
		return d.status
	case <-time.After(timeout):
		d.t.Fatalf("daemon did not exit within %v; log:\n%s", timeout, d.logs.String())
		return -1
	}
}

// fds is the number of descriptors the daemon holds.
func (d *daemon) fds() int {
	d.t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.pid))
	if err != nil {
		d.t.Fatalf("list fds: %v", err)
	}
	return len(ents)
}

// fdTargets lists the daemon's descriptors with what they point at ("7 -> socket:[123]"),
// for failure messages.
func (d *daemon) fdTargets() string {
	dir := fmt.Sprintf("/proc/%d/fd", d.pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		fmt.Fprintf(&b, "%s -> %s\n", e.Name(), target)
	}
	return b.String()
}

// connFds counts the daemon's sockets and the descriptors it holds on files under siteRoot
// (sendfile keeps a dup of the file until the response is sent).
func (d *daemon) connFds() (sockets, files int) {
	dir := fmt.Sprintf("/proc/%d/fd", d.pid)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		switch {
		case strings.HasPrefix(target, "socket:"):
			sockets++
		case strings.HasPrefix(target, siteRoot+"/"):
			files++
		}
	}
	return sockets, files
}

// quiescentFds waits until the daemon holds no connection and no file being sent (the
// closes of the last client's connection are asynchronous to the client), and returns its
// descriptor count and list: the baseline of a leak check.
func (d *daemon) quiescentFds(t testing.TB) (int, string) {
	t.Helper()
	testsupport.Eventually(t, 15*time.Second, "the daemon to close every connection", func() bool {
		s, f := d.connFds()
		return s == d.baseSockets && f == 0
	})
	return d.fds(), d.fdTargets()
}

// waitFds polls until the daemon holds want descriptors; on timeout (scaled with
// testsupport.Scale) it fails the test with the descriptor lists before and now.
func (d *daemon) waitFds(t testing.TB, want int, before string, timeout time.Duration) {
	t.Helper()
	if err := testsupport.Wait(timeout, func() bool { return d.fds() == want }); err != nil {
		t.Fatalf("daemon holds %d descriptors, want %d (%v)\nbefore:\n%s\nnow:\n%s", d.fds(), want, err, before, d.fdTargets())
	}
}

// rssKiB is the daemon's resident set size (VmRSS) in KiB.
func (d *daemon) rssKiB() int64 {
	d.t.Helper()
	v, err := procStatusKiB(d.pid, "VmRSS:")
	if err != nil {
		d.t.Fatal(err)
	}
	return v
}

func procStatusKiB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// userHZ is the unit of utime and stime in /proc/<pid>/stat (USER_HZ, 100 on every Linux
// architecture Go supports).
const userHZ = 100

// cpuTicks is the daemon's utime+stime in clock ticks.
func (d *daemon) cpuTicks() int64 {
	d.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.pid))
	if err != nil {
		d.t.Fatal(err)
	}
	// The command name (field 2) may hold spaces; fields are counted after its ')'.
	rest := string(b[bytes.LastIndexByte(b, ')')+2:])
	f := strings.Fields(rest)
	// rest starts at field 3 (state): utime is field 14, stime field 15.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		d.t.Fatalf("parse /proc/%d/stat: %q", d.pid, b)
	}
	return ut + st
}

// nofileLimit is the daemon's soft RLIMIT_NOFILE, read back from /proc/<pid>/limits.
func (d *daemon) nofileLimit() int {
	d.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", d.pid))
	if err != nil {
		d.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Max open files") {
			f := strings.Fields(line)
			n, err := strconv.Atoi(f[3])
			if err != nil {
				d.t.Fatalf("parse limits line %q", line)
			}
			return n
		}
	}
	d.t.Fatalf("no open-files line in /proc/%d/limits", d.pid)
	return 0
}

// lockedBuffer is a bytes.Buffer safe for a writer (the child's pipe) and readers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
