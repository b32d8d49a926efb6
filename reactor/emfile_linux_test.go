package reactor

// The EMFILE survival test is Linux-only: it measures the child's CPU from /proc/<pid>/stat
// (macOS and FreeBSD have no /proc) and counts its descriptors through /proc/self/fd to set a
// limit just above them. The accept-pause logic it drives is the same on every platform; the
// kqueue build is covered by the poller contract suite and the other reactor tests.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

func init() { childModes["emfile"] = emfileChild }

// emfilePollerEnv names the backend the child serves on.
const emfilePollerEnv = "REACTOR_TEST_EMFILE_POLLER"

// emfileChild serves echo with a descriptor limit a few above what it has open, prints its
// address, logs JSON to stderr and exits when stdin closes.
func emfileChild() int {
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.Lock(os.Stderr), zapcore.DebugLevel))
	s, err := NewServer(echoHandler(), WithLoops(1), WithLogger(logger), WithPoller(os.Getenv(emfilePollerEnv)))
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	// The limit is lowered after Start (whose descriptors it cannot know) and before Listen (one
	// descriptor more): the io_uring completion mode's multishot accept takes RLIMIT_NOFILE when
	// the kernel prepares it, so a limit lowered after the accept was armed would not apply.
	if err := s.Start(); err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	rl := unix.Rlimit{Cur: uint64(countFDs() + 1 + 8), Max: 4096}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	addr, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	fmt.Println("ADDR", addr)
	io.Copy(io.Discard, os.Stdin)
	s.Close()
	logger.Sync()
	return 0
}

// cpuTicks returns utime+stime of pid in clock ticks, from /proc/<pid>/stat.
func cpuTicks(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}

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

// TestEMFILESurvival floods a server whose descriptors run out, on every backend: the
// readiness backends stop watching the listener for a while, the io_uring completion mode's
// multishot accept ends with EMFILE and is armed again only when the retry timer fires.
func TestEMFILESurvival(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.Name, func(t *testing.T) { testEMFILESurvival(t, b.Name) })
	}
}

func testEMFILESurvival(t *testing.T, backend string) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=emfile", emfilePollerEnv+"="+backend)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		t.Fatalf("child said %q, %v; logs: %s", line, err, logs.String())
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))

	// Flood: far more connections than the child has descriptors for.
	var flood []net.Conn
	for i := 0; i < 64; i++ {
		c, err := net.DialTimeout("tcp", addr, testsupport.Scale(5*time.Second))
		if err != nil {
			t.Fatalf("flood dial %d: %v", i, err)
		}
		flood = append(flood, c)
	}
	testsupport.Eventually(t, 10*time.Second, "accept paused log", func() bool {
		return strings.Contains(logs.String(), "accept paused")
	})
	// While the flood holds, the child must sleep between retries, not spin.
	start, before := time.Now(), cpuTicks(t, cmd.Process.Pid)
	// The measurement window. The bound is a rate over the window's actual length, so a
	// window stretched by a busy machine measures longer rather than failing.
	time.Sleep(500 * time.Millisecond)
	used, window := cpuTicks(t, cmd.Process.Pid)-before, time.Since(start)
	// 100 ticks per second is the usual USER_HZ: a spinning loop would use ~100 a second, a
	// sleeping one close to 0; the bound is 30% of a core.
	if share := float64(used) / 100 / window.Seconds(); share > 0.3 {
		t.Fatalf("child used %d clock ticks of CPU in %v (%.0f%% of a core) while out of descriptors", used, window, 100*share)
	}
	for _, c := range flood {
		c.Close()
	}
	// Served again: retry until the child has worked through the backlog.
	testsupport.Eventually(t, 20*time.Second, "served after the flood", func() bool {
		c, err := net.DialTimeout("tcp", addr, testsupport.Scale(time.Second))
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(testsupport.Deadline(2 * time.Second))
		c.Write([]byte("ping"))
		got := make([]byte, 4)
		_, err = io.ReadFull(c, got)
		return err == nil && string(got) == "ping"
	})
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child exit: %v; logs: %s", err, logs.String())
	}
	if n := strings.Count(logs.String(), "accept paused"); n != 1 {
		t.Fatalf("accept-paused logged %d times, want once; logs:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "too many open files") {
		t.Fatalf("log does not name EMFILE:\n%s", logs.String())
	}
}
