// Package syscount counts a server's system calls with `strace -c -f`, for the syscalls per
// request figure. strace stops the traced threads at every call, so a traced run's throughput
// means nothing: the harness makes a separate short run for the count.
package syscount

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoStrace is returned when strace is not installed.
var ErrNoStrace = errors.New("syscount: strace not installed (apt-get install strace)")

// ErrFormat is returned when strace's summary cannot be read.
var ErrFormat = errors.New("syscount: unexpected strace -c output")

// Summary is strace's per-syscall call count.
type Summary struct {
	Calls map[string]uint64 `json:"calls"`
	Total uint64            `json:"total"`
}

// ioCalls are the system calls of a server's request path: reading, writing and waiting for
// readiness. The rest of a Go server's calls (futex, nanosleep, tgkill, ...) are the runtime's
// scheduler and signal-based preemption, which strace's own slowdown inflates.
var ioCalls = map[string]bool{
	"read": true, "readv": true, "recvfrom": true, "recvmsg": true, "recvmmsg": true,
	"write": true, "writev": true, "sendto": true, "sendmsg": true, "sendmmsg": true, "sendfile": true,
	"epoll_wait": true, "epoll_pwait": true, "epoll_pwait2": true, "epoll_ctl": true,
	"poll": true, "ppoll": true, "select": true, "pselect6": true,
	// io_uring: one io_uring_enter submits and waits for everything an iteration does;
	// io_uring_register is setup, but counted so a loop that calls it per request shows.
	"io_uring_enter": true, "io_uring_register": true, "splice": true, "accept4": true, "accept": true,
}

// IOTotal is the number of request-path calls (reads, writes, readiness waits, epoll_ctl,
// io_uring_enter, accepts).
func (s Summary) IOTotal() uint64 {
	var n uint64
	for name, c := range s.Calls {
		if ioCalls[name] {
			n += c
		}
	}
	return n
}

// Tracer is a running `strace -c -f -p PID`.
type Tracer struct {
	cmd  *exec.Cmd
	out  string
	done chan error
}

// Available reports whether strace can be run.
func Available() error {
	if _, err := exec.LookPath("strace"); err != nil {
		return ErrNoStrace
	}
	return nil
}

// Attach starts tracing every thread of pid and returns once strace reports that it is
// attached (or after a second, strace's attach being quick).
func Attach(pid int) (*Tracer, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("syscount: pid %d: %w", pid, ErrFormat)
	}
	bin, err := exec.LookPath("strace")
	if err != nil {
		return nil, ErrNoStrace
	}
	f, err := os.CreateTemp("", "bench-strace-*.txt")
	if err != nil {
		return nil, fmt.Errorf("syscount: %w", err)
	}
	name := f.Name()
	_ = f.Close()
	cmd := exec.Command(bin, "-c", "-f", "-p", strconv.Itoa(pid), "-o", name)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("syscount: %w", err)
	}
	if err := cmd.Start(); err != nil {
		_ = os.Remove(name)
		return nil, fmt.Errorf("syscount: %w", err)
	}
	t := &Tracer{cmd: cmd, out: name, done: make(chan error, 1)}
	attached := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "attached") {
				once = true
				close(attached)
			}
		}
		if !once {
			close(attached)
		}
		t.done <- cmd.Wait()
	}()
	select {
	case <-attached:
	case <-time.After(time.Second):
	}
	return t, nil
}

// Detach stops tracing (strace prints its summary on SIGINT) and returns the counts.
func (t *Tracer) Detach() (Summary, error) {
	defer os.Remove(t.out)
	_ = t.cmd.Process.Signal(unix.SIGINT)
	select {
	case <-t.done:
	case <-time.After(10 * time.Second):
		_ = t.cmd.Process.Kill()
		<-t.done
		return Summary{}, fmt.Errorf("syscount: strace did not stop: %w", ErrFormat)
	}
	b, err := os.ReadFile(t.out)
	if err != nil {
		return Summary{}, fmt.Errorf("syscount: %w", err)
	}
	return Parse(b)
}

// Parse reads the table `strace -c` prints:
//
//	% time     seconds  usecs/call     calls    errors syscall
//	------ ----------- ----------- --------- --------- ----------------
//	 52.10    0.010000           5      2000           write
//
// Every row but "total" has the call count in its fourth column; the total is recomputed
// from the rows rather than read, because its row's columns vary between strace versions.
func Parse(b []byte) (Summary, error) {
	s := Summary{Calls: map[string]uint64{}}
	header := false
	for line := range bytes.Lines(b) {
		f := strings.Fields(string(line))
		if len(f) == 0 || strings.HasPrefix(f[0], "---") {
			continue
		}
		if f[0] == "%" {
			header = true
			continue
		}
		if !header || len(f) < 5 {
			continue
		}
		name := f[len(f)-1]
		if name == "total" {
			continue
		}
		n, err := strconv.ParseUint(f[3], 10, 64)
		if err != nil {
			return Summary{}, fmt.Errorf("%w: row %q", ErrFormat, strings.TrimSpace(string(line)))
		}
		s.Calls[name] += n
		s.Total += n
	}
	if !header {
		return Summary{}, fmt.Errorf("%w: no header", ErrFormat)
	}
	return s, nil
}
