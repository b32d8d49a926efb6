//go:build linux

package hardening_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// Environment of the re-exec helper mode: the test binary, started with these set, lowers its
// RLIMIT_NOFILE and replaces itself with the daemon (see execLimited).
const (
	envExecNofile = "REACTORD_HARDENING_NOFILE"
	envExecBin    = "REACTORD_HARDENING_BIN"
	// envExecActivate names the daemon to exec after setting LISTEN_PID to the process's own
	// pid, as systemd does between fork and exec (see execActivated).
	envExecActivate = "REACTORD_HARDENING_ACTIVATE"
)

// Environment of the latency-client helper mode (see runClientsApart): the daemon's address,
// and the requests per client (0: until stdin is closed).
const (
	envLatencyAddr = "REACTORD_HARDENING_LATENCY_ADDR"
	envLatencyN    = "REACTORD_HARDENING_LATENCY_N"
)

// Paths shared by every test, set by TestMain.
var (
	daemonBin string // the reactord binary built for this run
	siteRoot  string // the -root directory (see makeSite)
)

// Files under siteRoot.
const (
	smallPath = "/small.txt" // smallBody
	bigPath   = "/64k.bin"   // 64 KiB: fills socket buffers within a few responses
	hugePath  = "/16m.bin"   // 16 MiB: a response still in flight when the client misbehaves
	bigSize   = 64 << 10
	hugeSize  = 16 << 20
)

var smallBody = []byte("hello from reactord\n")

func TestMain(m *testing.M) {
	if os.Getenv(envExecNofile) != "" {
		os.Exit(execLimited())
	}
	if os.Getenv(envExecActivate) != "" {
		os.Exit(execActivated())
	}
	if os.Getenv(envLatencyAddr) != "" {
		os.Exit(latencyClients())
	}
	if os.Getenv(envShedAddr) != "" {
		os.Exit(shedClient())
	}
	// Daemons started by an upgrade outlive the process that started them: as a subreaper,
	// the test process becomes their parent then and can wait for them (see followPid).
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "hardening: PR_SET_CHILD_SUBREAPER:", err)
		os.Exit(1)
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "reactord-hardening-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "hardening:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := raiseNofile(); err != nil {
		fmt.Fprintln(os.Stderr, "hardening: raise RLIMIT_NOFILE:", err)
		return 1
	}
	daemonBin = filepath.Join(dir, "reactord")
	if err := buildDaemon(daemonBin); err != nil {
		fmt.Fprintln(os.Stderr, "hardening:", err)
		return 1
	}
	siteRoot = filepath.Join(dir, "site")
	if err := makeSite(siteRoot); err != nil {
		fmt.Fprintln(os.Stderr, "hardening:", err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		// The tests' own client goroutines must be gone too (the daemon's are checked through
		// its /metrics and /proc, since it is another process).
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "hardening: leaked goroutines:", err)
			code = 1
		}
	}
	return code
}

// buildDaemon compiles ./cmd/reactord once for the whole run. The race detector is left out
// of the daemon on purpose: it multiplies memory use, and the slow-reader and soak tests
// measure the daemon's RSS. (The reactor and codec run their own suites under -race.)
func buildDaemon(out string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("go tool not found to build the daemon: %w", err)
	}
	cmd := exec.Command(goTool, "build", "-o", out, "github.com/reactord/reactord/cmd/reactord")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build reactord: %v\n%s", err, stderr.String())
	}
	return nil
}

// makeSite writes the static tree the daemon serves with -root.
func makeSite(root string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{
		smallPath:     smallBody,
		"/index.html": []byte("<!doctype html><title>hardening</title>\n"),
		bigPath:       bytes.Repeat([]byte("0123456789abcdef"), bigSize/16),
		hugePath:      bytes.Repeat([]byte("reactord hardening huge file...\n"), hugeSize/32),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(root, name), body, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// raiseNofile lifts the soft RLIMIT_NOFILE to the hard limit: the slowloris test holds a
// thousand client sockets in this process. (Go does this at start since 1.19; doing it again
// is harmless and documents the need.)
func raiseNofile() error {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		return unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
	}
	return nil
}

// execLimited is the helper mode: set both RLIMIT_NOFILE limits (the hard one too, so the
// Go runtime of the daemon cannot raise the soft one back at start) and exec the daemon with
// the remaining arguments. It only returns on failure.
func execLimited() int {
	n, err := strconv.ParseUint(os.Getenv(envExecNofile), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hardening exec: bad", envExecNofile, err)
		return 2
	}
	bin := os.Getenv(envExecBin)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: n, Max: n}); err != nil {
		fmt.Fprintln(os.Stderr, "hardening exec: setrlimit:", err)
		return 2
	}
	var env []string
	for _, kv := range os.Environ() {
		if !bytes.HasPrefix([]byte(kv), []byte("REACTORD_HARDENING_")) {
			env = append(env, kv)
		}
	}
	err = unix.Exec(bin, append([]string{bin}, os.Args[1:]...), env)
	fmt.Fprintln(os.Stderr, "hardening exec:", err)
	return 2
}

// execActivated is the socket activation helper mode: with the descriptors it was given (3..),
// set LISTEN_PID to this pid and exec the daemon, which keeps the pid.
func execActivated() int {
	bin := os.Getenv(envExecActivate)
	var env []string
	for _, kv := range os.Environ() {
		if !bytes.HasPrefix([]byte(kv), []byte("REACTORD_HARDENING_")) {
			env = append(env, kv)
		}
	}
	env = append(env, "LISTEN_PID="+strconv.Itoa(os.Getpid()))
	err := unix.Exec(bin, append([]string{bin}, os.Args[1:]...), env)
	fmt.Fprintln(os.Stderr, "hardening exec:", err)
	return 2
}
