// Package procstat reads what the harness needs to know about a server process from Linux's
// /proc: CPU time consumed (stat), resident memory (status) and the count of read and write
// system calls (io). Parsing is separated from reading so tests can feed it known text.
package procstat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// ErrFormat is returned when a /proc file does not have the shape this package expects.
var ErrFormat = errors.New("procstat: unexpected /proc format")

// ErrBadPID is returned for a pid that cannot name a process (zero or negative).
var ErrBadPID = errors.New("procstat: bad pid")

// CPU is the processor time a process has consumed, user and kernel, including that of its
// threads that have already exited.
type CPU struct {
	User   time.Duration
	System time.Duration
}

// Total is User + System.
func (c CPU) Total() time.Duration { return c.User + c.System }

// Sub returns the time consumed between an earlier sample o and c.
func (c CPU) Sub(o CPU) CPU { return CPU{User: c.User - o.User, System: c.System - o.System} }

// IO counts the read-family and write-family system calls a process has made (syscr and syscw
// in /proc/<pid>/io: read, readv, pread, write, writev, ... but not recvmsg/sendmsg or
// epoll_wait). The harness uses it as a cheap per-request syscall count that, unlike strace,
// does not slow the server.
type IO struct {
	ReadCalls  uint64
	WriteCalls uint64
}

// Sub returns the calls made between an earlier sample o and c.
func (c IO) Sub(o IO) IO {
	return IO{ReadCalls: c.ReadCalls - o.ReadCalls, WriteCalls: c.WriteCalls - o.WriteCalls}
}

// ParseStat extracts utime and stime (fields 14 and 15, in clock ticks) from the text of
// /proc/<pid>/stat and converts them with ticksPerSecond. The command name in field 2 may hold
// spaces and parentheses, so fields are counted from the last ')'.
func ParseStat(b []byte, ticksPerSecond int64) (CPU, error) {
	if ticksPerSecond <= 0 {
		return CPU{}, fmt.Errorf("procstat: ticks per second %d: %w", ticksPerSecond, ErrFormat)
	}
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return CPU{}, fmt.Errorf("procstat: stat has no ')': %w", ErrFormat)
	}
	// After ") " come fields 3 (state), 4 (ppid), ...; utime is field 14, index 11 here.
	fields := bytes.Fields(b[end+1:])
	if len(fields) < 13 {
		return CPU{}, fmt.Errorf("procstat: stat has %d fields after comm: %w", len(fields), ErrFormat)
	}
	ut, err := strconv.ParseInt(string(fields[11]), 10, 64)
	if err != nil {
		return CPU{}, fmt.Errorf("procstat: utime %q: %w", fields[11], ErrFormat)
	}
	st, err := strconv.ParseInt(string(fields[12]), 10, 64)
	if err != nil {
		return CPU{}, fmt.Errorf("procstat: stime %q: %w", fields[12], ErrFormat)
	}
	tick := time.Second / time.Duration(ticksPerSecond)
	return CPU{User: time.Duration(ut) * tick, System: time.Duration(st) * tick}, nil
}

// ParseStatusKB returns the value in kB of a "Key:   N kB" line of /proc/<pid>/status, such
// as VmRSS or VmHWM. A kernel thread or zombie has no VmRSS line: that is ErrFormat.
func ParseStatusKB(b []byte, key string) (int64, error) {
	prefix := []byte(key + ":")
	for line := range bytes.Lines(b) {
		if !bytes.HasPrefix(line, prefix) {
			continue
		}
		f := bytes.Fields(line[len(prefix):])
		if len(f) < 1 {
			break
		}
		v, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("procstat: %s %q: %w", key, f[0], ErrFormat)
		}
		return v, nil
	}
	return 0, fmt.Errorf("procstat: no %s line: %w", key, ErrFormat)
}

// ParseIO extracts syscr and syscw from the text of /proc/<pid>/io.
func ParseIO(b []byte) (IO, error) {
	var out IO
	var seen int
	for line := range bytes.Lines(b) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte(":"))
		if !ok {
			continue
		}
		var dst *uint64
		switch string(k) {
		case "syscr":
			dst = &out.ReadCalls
		case "syscw":
			dst = &out.WriteCalls
		default:
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			return IO{}, fmt.Errorf("procstat: %s %q: %w", k, v, ErrFormat)
		}
		*dst = n
		seen++
	}
	if seen != 2 {
		return IO{}, fmt.Errorf("procstat: io lacks syscr/syscw: %w", ErrFormat)
	}
	return out, nil
}

// ReadCPU samples the CPU time of process pid.
func ReadCPU(pid int) (CPU, error) {
	b, err := readProc(pid, "stat")
	if err != nil {
		return CPU{}, err
	}
	return ParseStat(b, ClockTicks())
}

// ReadRSS returns the resident set size of process pid in bytes (VmRSS).
func ReadRSS(pid int) (int64, error) {
	b, err := readProc(pid, "status")
	if err != nil {
		return 0, err
	}
	kb, err := ParseStatusKB(b, "VmRSS")
	return kb * 1024, err
}

// ReadIO samples the read/write system call counters of process pid. Reading another user's
// process needs privilege (ptrace access); the harness runs its servers as children.
func ReadIO(pid int) (IO, error) {
	b, err := readProc(pid, "io")
	if err != nil {
		return IO{}, err
	}
	return ParseIO(b)
}

func readProc(pid int, file string) ([]byte, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("procstat: pid %d: %w", pid, ErrBadPID)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + file)
	if err != nil {
		return nil, fmt.Errorf("procstat: %w", err)
	}
	return b, nil
}

var clockTicks = sync.OnceValue(func() int64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	if n, ok := ParseAuxvClockTicks(b); ok {
		return n
	}
	return 100
})

// ClockTicks returns the kernel's USER_HZ (sysconf(_SC_CLK_TCK)), the unit of utime and stime
// in /proc/<pid>/stat. Go has no sysconf, so it is read from the auxiliary vector the kernel
// handed this process (AT_CLKTCK); 100, the value on every mainstream Linux, is the fallback.
func ClockTicks() int64 { return clockTicks() }

// atClkTck is AT_CLKTCK from <elf.h>: the auxv entry that carries USER_HZ.
const atClkTck = 17

// ParseAuxvClockTicks finds AT_CLKTCK in a 64-bit little-endian auxiliary vector (pairs of
// uint64 key, value ending with key 0).
func ParseAuxvClockTicks(b []byte) (int64, bool) {
	for i := 0; i+16 <= len(b); i += 16 {
		k := binary.LittleEndian.Uint64(b[i:])
		v := binary.LittleEndian.Uint64(b[i+8:])
		if k == 0 {
			break
		}
		if k == atClkTck && v > 0 && v < 1<<20 {
			return int64(v), true
		}
	}
	return 0, false
}
