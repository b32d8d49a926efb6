package syscount

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrNoTracepoints is returned by OpenCounter where the kernel's syscall tracepoints cannot
// be used: no tracefs, or perf_event_open refused (kernel.perf_event_paranoid, no root).
var ErrNoTracepoints = errors.New("syscount: syscall tracepoints unavailable")

// Counter counts a process's system calls as it runs, with the kernel's syscall tracepoints
// opened through perf_event_open: one counter per thread and tracepoint, inherited by the
// threads those create later. Each call costs the process a counter increment, nothing more.
// That is the difference from strace, which stops the process at every call: a design that
// batches work into fewer calls (io_uring) batches more the slower its calls are, so a traced
// run flatters it. Counter measures it as it really runs, in the same window as the CPU time.
type Counter struct {
	all []int // raw_syscalls:sys_enter, one per thread
	io  []int // the I/O calls' tracepoints (see ioCalls), per thread
	// attempts is how many openings OpenCounter needed (see there).
	attempts int
}

// tracefs is where the tracepoint ids are; the second is the older debugfs mount.
var tracefs = []string{"/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"}

func tracepointID(category, name string) (uint64, error) {
	var last error
	for _, root := range tracefs {
		b, err := os.ReadFile(root + "/" + category + "/" + name + "/id")
		if err == nil {
			return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		}
		last = err
	}
	return 0, last
}

// ioTracepoint maps an I/O call of ioCalls to its tracepoint name, where they differ.
var ioTracepoint = map[string]string{"sendfile": "sendfile64"}

// OpenCounter starts counting every thread of pid. Open it before the window to measure and
// Read at both ends: threads created in between by counted threads are counted too.
//
// A thread the process creates while the counters are being opened, from a thread whose
// counter is not open yet, would be counted by none: the Go runtime starts threads whenever a
// goroutine blocks in a system call, and the event loop may then run on the new one for the
// whole window, its reads and writes uncounted (seen: a server's 2 reads and writes per
// request counted as 0 I/O calls, on a busy machine). So the threads are listed again once
// every counter is open: a thread that was not in the first listing may or may not be counted
// (inherited from its creator, or not), so all counters are closed and opened again, until
// the listing holds still across an opening.
func OpenCounter(pid int) (*Counter, error) {
	rawID, err := tracepointID("raw_syscalls", "sys_enter")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoTracepoints, err)
	}
	var ioIDs []uint64
	for name := range ioCalls {
		tp := name
		if alias, ok := ioTracepoint[name]; ok {
			tp = alias
		}
		if id, err := tracepointID("syscalls", "sys_enter_"+tp); err == nil {
			ioIDs = append(ioIDs, id) // a call this architecture lacks (select) has none
		}
	}
	for attempt := 1; ; attempt++ {
		before, err := listThreads(pid)
		if err != nil {
			return nil, err
		}
		c, err := openThreads(rawID, ioIDs, before)
		if err != nil {
			return nil, err
		}
		after, err := listThreads(pid)
		if err != nil {
			c.Close()
			return nil, err
		}
		if !slices.ContainsFunc(after, func(tid int) bool { return !slices.Contains(before, tid) }) {
			c.attempts = attempt
			return c, nil
		}
		c.Close()
		if attempt == maxOpenAttempts {
			return nil, fmt.Errorf("syscount: process %d created threads during each of %d attempts to open its counters", pid, attempt)
		}
	}
}

// maxOpenAttempts bounds OpenCounter's openings: a Go process creates threads in bursts (at
// start, when goroutines block in system calls), not continuously.
const maxOpenAttempts = 20

// listThreads returns the thread ids of pid (a variable: tests make threads appear).
var listThreads = func(pid int) ([]int, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, fmt.Errorf("syscount: %w", err)
	}
	tids := make([]int, 0, len(tasks))
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// openThreads opens the counters of each thread in tids: all calls, and each I/O call.
func openThreads(rawID uint64, ioIDs []uint64, tids []int) (*Counter, error) {
	c := &Counter{}
	for _, tid := range tids {
		fd, err := openTracepoint(rawID, tid)
		if errors.Is(err, unix.ESRCH) {
			continue // the thread exited meanwhile
		}
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("%w: perf_event_open: %v", ErrNoTracepoints, err)
		}
		c.all = append(c.all, fd)
		for _, id := range ioIDs {
			fd, err := openTracepoint(id, tid)
			if errors.Is(err, unix.ESRCH) {
				break
			}
			if err != nil {
				// Not skipped: a thread without its I/O counters would make the I/O count
				// silently low (EMFILE in the harness, say).
				c.Close()
				return nil, fmt.Errorf("%w: perf_event_open: %v", ErrNoTracepoints, err)
			}
			c.io = append(c.io, fd)
		}
	}
	return c, nil
}

func openTracepoint(id uint64, tid int) (int, error) {
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_TRACEPOINT,
		Config: id,
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Bits:   unix.PerfBitInherit, // threads this one creates are counted into it
	}
	return unix.PerfEventOpen(&attr, tid, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
}

// Read returns the calls counted so far: all of them, and the I/O calls (reads, writes,
// readiness waits, epoll_ctl, io_uring_enter, accepts; see IOTotal).
func (c *Counter) Read() (all, io uint64, err error) {
	sum := func(fds []int) (uint64, error) {
		var n uint64
		var b [8]byte
		for _, fd := range fds {
			if _, err := unix.Read(fd, b[:]); err != nil {
				return 0, fmt.Errorf("syscount: read counter: %w", err)
			}
			n += binary.NativeEndian.Uint64(b[:])
		}
		return n, nil
	}
	if all, err = sum(c.all); err != nil {
		return 0, 0, err
	}
	io, err = sum(c.io)
	return all, io, err
}

// Close releases the counters.
func (c *Counter) Close() {
	for _, fd := range append(c.all, c.io...) {
		unix.Close(fd)
	}
	c.all, c.io = nil, nil
}
