package poller

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// nofile is the RLIMIT_NOFILE soft limit after TestMain tried to raise it to the hard limit.
var nofile uint64

// TestMain raises the fd limit (the 5,000-fd case and the benchmark need it), then checks
// that the whole run leaked neither goroutines nor fds.
func TestMain(m *testing.M) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil {
		if lim.Cur < lim.Max {
			raised := lim
			raised.Cur = lim.Max
			if unix.Setrlimit(unix.RLIMIT_NOFILE, &raised) == nil {
				lim = raised
			} else if raised.Cur = min(lim.Max, 10240); raised.Cur > lim.Cur && unix.Setrlimit(unix.RLIMIT_NOFILE, &raised) == nil {
				// macOS reports an unlimited hard limit but refuses more than
				// kern.maxfilesperproc (10240 by default).
				lim = raised
			}
		}
		nofile = uint64(lim.Cur) // int64 on some BSDs
	}
	// The runtime opens its own epoll and eventfd on first use of a pollable file; make
	// that happen before counting, so it is not taken for a leak.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	before, _ := openFDs()
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	if after, ok := openFDs(); ok && code == 0 && len(after) != len(before) {
		fmt.Fprintf(os.Stderr, "fd leak: %d open before the tests, %d after:\n", len(before), len(after))
		for fd, target := range after {
			if _, had := before[fd]; !had {
				fmt.Fprintf(os.Stderr, "  fd %s -> %s\n", fd, target)
			}
		}
		code = 1
	}
	os.Exit(code)
}

// openFDs lists this process's open fds (Linux /proc only; ok is false elsewhere).
func openFDs() (map[string]string, bool) {
	if runtime.GOOS != "linux" {
		return nil, false
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, false
	}
	m := make(map[string]string, len(ents))
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the directory fd ReadDir itself used, closed by now
		}
		m[e.Name()] = target
	}
	return m, true
}

// life gives tests in this package the shared state of any backend.
func (l *lifecycle) life() *lifecycle { return l }

// config is one backend set-up the contract suite runs against.
type config struct {
	name string // subtest name: "epoll", "epoll-ET", "poll", ...
	b    Backend
	et   Events // EdgeTriggered or 0, or-ed into every interest the suite asks for
}

// configs lists every backend compiled for this OS, plus an edge-triggered variant of those
// that support it.
func configs() []config {
	var cs []config
	for _, b := range Backends() {
		cs = append(cs, config{name: b.Name, b: b})
		if b.Has(FeatureEdgeTriggered) {
			cs = append(cs, config{name: b.Name + "-ET", b: b, et: EdgeTriggered})
		}
	}
	return cs
}

// open opens the config's backend and closes it when the test ends.
func (c config) open(t testing.TB) Poller {
	t.Helper()
	p, err := c.b.Open()
	skipUnsupported(t, err)
	if err != nil {
		t.Fatalf("open %s: %v", c.b.Name, err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("close: %v", err)
		}
	})
	return p
}

// skipUnsupported skips the test when the backend cannot run on this machine, which only
// io_uring does: a container's seccomp profile or the kernel.io_uring_disabled sysctl. The
// message says why, from the error.
func skipUnsupported(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrUnsupported) {
		t.Skipf("backend unavailable on this machine: %v", err)
	}
}

// socketpair returns a connected pair of non-blocking Unix stream sockets, closed when the
// test ends unless the test closed them itself with closeFD.
func socketpair(t testing.TB) (int, int) {
	t.Helper()
	// Flags set after the fact: SOCK_NONBLOCK is Linux/BSD only, and this runs on macOS too.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	for _, fd := range fds {
		unix.CloseOnExec(fd)
		if err := unix.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		closeIfOpen(fds[0])
		closeIfOpen(fds[1])
	})
	return fds[0], fds[1]
}

// closedByTest records fds a test closed itself, so the cleanup does not close whatever file
// reused the number. Tests in this package do not run in parallel.
var closedByTest = map[int]bool{}

func closeFD(t testing.TB, fd int) {
	t.Helper()
	if err := unix.Close(fd); err != nil {
		t.Fatalf("close %d: %v", fd, err)
	}
	closedByTest[fd] = true
}

func closeIfOpen(fd int) {
	if closedByTest[fd] {
		delete(closedByTest, fd)
		return
	}
	unix.Close(fd)
}

func write(t testing.TB, fd int, s string) {
	t.Helper()
	if n, err := unix.Write(fd, []byte(s)); err != nil || n != len(s) {
		t.Fatalf("write fd %d: n=%d err=%v", fd, n, err)
	}
}

// drain reads fd until EAGAIN and returns what it read, and whether it saw EOF.
func drain(t testing.TB, fd int) (string, bool) {
	t.Helper()
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		switch {
		case err == unix.EAGAIN:
			return string(out), false
		case err == unix.EINTR:
			continue
		case err != nil:
			t.Fatalf("read fd %d: %v", fd, err)
		case n == 0:
			return string(out), true
		}
		out = append(out, buf[:n]...)
	}
}

// collect waits up to timeout for events and merges them per fd. It returns as soon as one
// Wait reports something (or the time is up).
func collect(t testing.TB, p Poller, timeout time.Duration) map[int]Events {
	t.Helper()
	got := map[int]Events{}
	out := make([]Event, 64)
	dl := time.Now().Add(timeout)
	for {
		left := time.Until(dl)
		if left < 0 {
			left = 0
		}
		n, err := p.Wait(out, left)
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		for _, e := range out[:n] {
			if _, dup := got[e.FD]; dup {
				t.Fatalf("fd %d reported twice in one Wait", e.FD)
			}
			got[e.FD] |= e.Events
		}
		if n > 0 || left == 0 {
			return got
		}
	}
}

// waitFor waits (up to a generous 5s) until fd is reported with every bit of want.
func waitFor(t testing.TB, p Poller, fd int, want Events) Events {
	t.Helper()
	dl := testsupport.Deadline(5 * time.Second)
	var last map[int]Events
	for time.Now().Before(dl) {
		last = collect(t, p, time.Until(dl))
		if ev := last[fd]; ev&want == want {
			return ev
		}
	}
	t.Fatalf("fd %d: want %v within 5s, last Wait reported %v", fd, want, last)
	return 0
}

// quiet asserts that a short Wait reports nothing for fd.
func quiet(t testing.TB, p Poller, fd int) {
	t.Helper()
	if ev, ok := collect(t, p, 20*time.Millisecond)[fd]; ok {
		t.Fatalf("fd %d: want no event, got %v", fd, ev)
	}
}
