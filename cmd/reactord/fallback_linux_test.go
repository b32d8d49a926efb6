package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// TestPollerFallbackUnderSeccomp starts the daemon with -poller uring (the completion mode)
// and -poller uring-poll (the readiness backend) the way a container with Docker's default
// seccomp profile would: io_uring_setup fails with EPERM. The daemon must log one warning
// naming both backends and the reason, serve on epoll, and say so.
func TestPollerFallbackUnderSeccomp(t *testing.T) {
	for _, name := range []string{"uring", "uring-poll"} {
		t.Run(name, func(t *testing.T) { testPollerFallbackUnderSeccomp(t, name) })
	}
}

func testPollerFallbackUnderSeccomp(t *testing.T, name string) {
	addrFile := filepath.Join(t.TempDir(), "addrs")
	d := &proc{t: t, stdout: newOutFile(t, "stdout"), stderr: newOutFile(t, "stderr"), done: make(chan struct{})}
	d.cmd = exec.Command(binary, "-addr-file", addrFile, "-log-format", "json", "-listen", "127.0.0.1:0",
		"-poller", name, "-loops", "1", "-access-log", "off")
	d.cmd.Stdout, d.cmd.Stderr = d.stdout.f, d.stderr.f
	started := make(chan error, 1)
	go func() {
		// The child is forked from this thread and inherits its filter; the thread ends
		// with the goroutine, never unlocked, and the filter with it.
		runtime.LockOSThread()
		if err := testsupport.DenySyscall(unix.SYS_IO_URING_SETUP, unix.EPERM); err != nil {
			started <- err
			return
		}
		started <- d.cmd.Start()
	}()
	if err := <-started; err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EACCES) {
			t.Skipf("cannot install a seccomp filter here: %v", err)
		}
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
	testsupport.Eventually(t, testsupport.Scale(20*time.Second), "the daemon to publish its address", func() bool {
		select {
		case <-d.done:
			t.Fatalf("reactord exited: %v\nstderr:\n%s", d.err, d.stderr.String())
		default:
		}
		b, err := os.ReadFile(addrFile)
		if err != nil {
			return false
		}
		d.addrs = strings.Fields(string(b))
		d.addr = d.addrs[0]
		return true
	})
	r := do(t, client(t), "GET", d.url("/healthz"))
	if r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
	if body := do(t, client(t), "GET", d.url("/")).body; !strings.Contains(body, `<td id="poller">epoll</td>`) {
		t.Errorf("page does not name epoll")
	}
	d.stop()

	var warnings []map[string]any
	for _, line := range strings.Split(d.stderr.String(), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && e["level"] == "warn" {
			warnings = append(warnings, e)
		}
	}
	if len(warnings) != 1 {
		t.Fatalf("%d warnings, want 1 about the fallback:\n%s", len(warnings), d.stderr.String())
	}
	w := warnings[0]
	t.Logf("fallback warning: %v", w)
	if w["poller"] != name || w["fallback"] != "epoll" || !strings.Contains(w["error"].(string), "seccomp") {
		t.Fatalf("fallback warning %v; want poller=%s fallback=epoll and the seccomp reason", w, name)
	}
}
