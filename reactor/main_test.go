package reactor

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/poller"
)

// childEnv selects a helper mode when the test binary is re-executed as a child process.
const childEnv = "REACTOR_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	// Thousands of sockets: raise the soft descriptor limit to the hard one.
	// The idle-memory benchmark holds 10,000 connections at both ends: as root, also raise the
	// hard limit if it is lower than that needs.
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil {
		if rl.Max < 1<<16 {
			raised := unix.Rlimit{Cur: 1 << 16, Max: 1 << 16}
			if unix.Setrlimit(unix.RLIMIT_NOFILE, &raised) == nil {
				rl = raised
			}
		}
		if rl.Cur < rl.Max {
			rl.Cur = rl.Max
			unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
		}
	}
	// Let the runtime open its own netpoller descriptors before counting ours.
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
	before := countFDs()
	code := m.Run()
	if code == 0 {
		if err := waitFDs(before); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	if code == 0 {
		goleak.VerifyTestMain(exitOnly{code})
	}
	os.Exit(code)
}

// exitOnly lets goleak.VerifyTestMain run its check after m.Run has run already.
type exitOnly struct{ code int }

func (e exitOnly) Run() int { return e.code }

// waitFDs polls until the descriptor count is back to want (closing sockets release
// asynchronously in the runtime's netpoller).
func waitFDs(want int) error {
	if err := testsupport.Wait(5*time.Second, func() bool { return countFDs() <= want }); err != nil {
		return fmt.Errorf("fd leak: %d open, %d before (%v): %s", countFDs(), want, err, strings.Join(openFDs(), " "))
	}
	return nil
}

// testBackend is one name WithPoller accepts (Pollers), with the poller backend behind it
// (epoll for the "uring" completion mode).
type testBackend struct {
	Name string
	poller.Backend
}

// backends returns the I/O backends compiled here that this machine can run: every readiness
// poller, and the io_uring completion mode ("uring"). io_uring is compiled on every Linux but
// refused by some (a container's seccomp profile, kernel.io_uring_disabled), and the poller
// suite reports that; here such a backend is left out, with a log line.
func backends(t testing.TB) []testBackend {
	var b []testBackend
	for _, name := range Pollers() {
		if _, err := CheckPoller(name); err != nil {
			t.Logf("poller %s unavailable here, not tested: %v", name, err)
			continue
		}
		ch, err := resolvePoller(name)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, testBackend{Name: name, Backend: ch.backend})
	}
	if len(b) == 0 {
		t.Skip("no poller backend compiled")
	}
	return b
}

// loopBarrier returns once l has run a task posted now. A loop publishes its counters at the
// end of an iteration, after running its tasks, so after two barriers Stats includes all that
// l did before the first.
func loopBarrier(t testing.TB, l *Loop) {
	t.Helper()
	done := make(chan struct{})
	if err := l.Post(func() { close(done) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatal("the loop did not run a posted task")
	}
}

// startServer starts a server on 127.0.0.1:0 and closes it at the end of the test.
func startServer(t testing.TB, h Handler, opts ...Option) (*Server, string) {
	t.Helper()
	s, err := NewServer(h, opts...)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	addr, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, addr.String()
}

// echoHandler writes back everything it receives.
func echoHandler() Handler {
	return HandlerFuncs{Data: func(c *Conn, in []byte) int {
		c.Write(in)
		return len(in)
	}}
}

func dial(t testing.TB, network, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(network, addr, testsupport.Scale(5*time.Second))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c.SetDeadline(testsupport.Deadline(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}
