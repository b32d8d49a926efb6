// Package child runs one benchmark server in a child process of the harness and talks to it
// over the child's standard input and output. The child is `bench serve ... -control`: it
// prints a READY line with its address and the pid whose cost is the server's, answers "stats"
// on stdin with a STATS line of Go runtime memory figures, and exits when its stdin closes, so
// that it dies with the harness even if the harness is killed.
package child

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Errors returned by this package, matched with errors.Is.
var (
	// ErrProtocol means a control line did not have the expected form.
	ErrProtocol = errors.New("child: bad control line")
	// ErrExited means the child ended before it was ready or before it answered.
	ErrExited = errors.New("child: exited")
)

// Spec says which server to start and how.
type Spec struct {
	// Exe is the bench binary; empty means this executable.
	Exe string
	// Server, Poller and Loops are passed to `bench serve`.
	Server string
	Poller string
	Loops  int
	// Addr is the listening address; empty means 127.0.0.1:0.
	Addr string
	// Upstream is passed to a reverse proxy (`bench serve -upstream`).
	Upstream string
	// GOMAXPROCS for the child; 0 leaves the environment's value.
	GOMAXPROCS int
	// Env is added to the child's environment (KEY=VALUE), after this process's: GOGC or
	// GOMEMLIMIT, say.
	Env []string
	// Stderr receives the child's log output; nil discards it.
	Stderr io.Writer
	// Timeout bounds the wait for READY; 0 means 20s.
	Timeout time.Duration
	// TLS, when set, is the certificate kind of an HTTPS server ("ecdsa", "rsa").
	TLS string
}

// RuntimeStats are the Go runtime's memory figures a child reports after a forced GC. They are
// zero for a server that is not a Go program (nginx).
type RuntimeStats struct {
	HeapInuse  uint64 `json:"heap_inuse"`
	HeapAlloc  uint64 `json:"heap_alloc"`
	StackInuse uint64 `json:"stack_inuse"`
	Goroutines uint64 `json:"goroutines"`
}

// Proc is a running child server.
type Proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
	addr  string
	pid   int
	done  chan error
	mu    sync.Mutex
	once  sync.Once
	err   error
}

// Spawn starts the child and waits for its READY line.
func Spawn(ctx context.Context, s Spec) (*Proc, error) {
	if s.Server == "" {
		return nil, fmt.Errorf("child: empty server name: %w", ErrProtocol)
	}
	exe := s.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("child: %w", err)
		}
	}
	if s.Addr == "" {
		s.Addr = "127.0.0.1:0"
	}
	if s.Timeout <= 0 {
		s.Timeout = 20 * time.Second
	}
	args := []string{"serve", "-control", "-server", s.Server, "-addr", s.Addr}
	if s.Poller != "" {
		args = append(args, "-poller", s.Poller)
	}
	if s.Loops > 0 {
		args = append(args, "-loops", strconv.Itoa(s.Loops))
	}
	if s.Upstream != "" {
		args = append(args, "-upstream", s.Upstream)
	}
	if s.TLS != "" {
		args = append(args, "-tls", s.TLS)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = os.Environ()
	if s.GOMAXPROCS > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(s.GOMAXPROCS))
	}
	cmd.Env = append(cmd.Env, s.Env...)
	cmd.Stderr = s.Stderr
	// The child dies with the harness's thread that started it; stdin EOF is the polite way.
	cmd.SysProcAttr = &unix.SysProcAttr{Pdeathsig: unix.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("child: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("child: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("child: %w", err)
	}
	p := &Proc{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout), done: make(chan error, 1)}
	type ready struct {
		addr string
		pid  int
		err  error
	}
	got := make(chan ready, 1)
	go func() {
		if !p.lines.Scan() {
			got <- ready{err: fmt.Errorf("%w before READY: %v", ErrExited, p.lines.Err())}
			return
		}
		a, pid, err := ParseReady(p.lines.Text())
		got <- ready{a, pid, err}
	}()
	t := time.NewTimer(s.Timeout)
	defer t.Stop()
	select {
	case r := <-got:
		if r.err != nil {
			_ = p.Stop()
			return nil, r.err
		}
		p.addr, p.pid = r.addr, r.pid
	case <-t.C:
		_ = p.Stop()
		return nil, fmt.Errorf("child: %s not ready after %v", s.Server, s.Timeout)
	case <-ctx.Done():
		_ = p.Stop()
		return nil, ctx.Err()
	}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// Addr is the server's listening address.
func (p *Proc) Addr() string { return p.addr }

// PID is the pid whose CPU time and memory are the server's (the child itself, or the nginx
// process it runs).
func (p *Proc) PID() int { return p.pid }

// Stats asks the child for its Go runtime memory figures (it runs a GC first).
func (p *Proc) Stats() (RuntimeStats, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := io.WriteString(p.stdin, "stats\n"); err != nil {
		return RuntimeStats{}, fmt.Errorf("%w: %w", ErrExited, err)
	}
	if !p.lines.Scan() {
		return RuntimeStats{}, fmt.Errorf("%w: no STATS line", ErrExited)
	}
	return ParseStats(p.lines.Text())
}

// Mallocs asks the child for the Go runtime's count of heap allocations so far (no GC). ok is
// false for a server that is not a Go program in the child (nginx). Sampled at the start and
// end of a measured window, the difference divided by the requests is allocations per request.
func (p *Proc) Mallocs() (n uint64, ok bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := io.WriteString(p.stdin, "mallocs\n"); err != nil {
		return 0, false, fmt.Errorf("%w: %w", ErrExited, err)
	}
	if !p.lines.Scan() {
		return 0, false, fmt.Errorf("%w: no MALLOCS line", ErrExited)
	}
	return ParseMallocs(p.lines.Text())
}

// FormatMallocs is the line a child prints in answer to "mallocs"; ok false prints "none".
func FormatMallocs(n uint64, ok bool) string {
	if !ok {
		return "MALLOCS none"
	}
	return "MALLOCS " + strconv.FormatUint(n, 10)
}

// ParseMallocs parses a MALLOCS line.
func ParseMallocs(line string) (n uint64, ok bool, err error) {
	f := strings.Fields(line)
	if len(f) != 2 || f[0] != "MALLOCS" {
		return 0, false, fmt.Errorf("%w: %q", ErrProtocol, line)
	}
	if f[1] == "none" {
		return 0, false, nil
	}
	n, err = strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%w: %q", ErrProtocol, line)
	}
	return n, true, nil
}

// Stop closes the child's stdin, which makes it shut its server down and exit, and waits up
// to 10s before killing it. A second call returns the first one's result.
func (p *Proc) Stop() error {
	p.once.Do(func() {
		_ = p.stdin.Close()
		if p.done == nil || p.addr == "" {
			// Spawn failed before the wait goroutine started.
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
			return
		}
		select {
		case err := <-p.done:
			p.err = err
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			p.err = fmt.Errorf("child: %s did not exit within 10s; killed", p.cmd.Path)
		}
	})
	return p.err
}

// FormatReady is the line a child prints once its server accepts connections.
func FormatReady(addr string, pid int) string {
	return "READY addr=" + addr + " pid=" + strconv.Itoa(pid)
}

// ParseReady parses a READY line.
func ParseReady(line string) (addr string, pid int, err error) {
	kv, err := fields(line, "READY")
	if err != nil {
		return "", 0, err
	}
	addr = kv["addr"]
	pid, perr := strconv.Atoi(kv["pid"])
	if addr == "" || perr != nil || pid <= 0 {
		return "", 0, fmt.Errorf("%w: %q", ErrProtocol, line)
	}
	return addr, pid, nil
}

// FormatStats is the line a child prints in answer to "stats".
func FormatStats(s RuntimeStats) string {
	return fmt.Sprintf("STATS heap_inuse=%d heap_alloc=%d stack_inuse=%d goroutines=%d",
		s.HeapInuse, s.HeapAlloc, s.StackInuse, s.Goroutines)
}

// ParseStats parses a STATS line.
func ParseStats(line string) (RuntimeStats, error) {
	kv, err := fields(line, "STATS")
	if err != nil {
		return RuntimeStats{}, err
	}
	var s RuntimeStats
	for k, dst := range map[string]*uint64{"heap_inuse": &s.HeapInuse, "heap_alloc": &s.HeapAlloc,
		"stack_inuse": &s.StackInuse, "goroutines": &s.Goroutines} {
		v, err := strconv.ParseUint(kv[k], 10, 64)
		if err != nil {
			return RuntimeStats{}, fmt.Errorf("%w: %s in %q", ErrProtocol, k, line)
		}
		*dst = v
	}
	return s, nil
}

func fields(line, word string) (map[string]string, error) {
	f := strings.Fields(line)
	if len(f) == 0 || f[0] != word {
		return nil, fmt.Errorf("%w: want %s, got %q", ErrProtocol, word, line)
	}
	kv := make(map[string]string, len(f)-1)
	for _, x := range f[1:] {
		k, v, ok := strings.Cut(x, "=")
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrProtocol, line)
		}
		kv[k] = v
	}
	return kv, nil
}
