// Package cpupin pins processes to CPUs and raises the open-file limit: the two pieces of
// process setup the harness needs before it measures anything.
//
// Linux applies sched_setaffinity to one thread, not to a process. A Go program already runs
// several threads by the time anyone can call it, so pinning a process means pinning every
// entry of /proc/<pid>/task; threads created afterwards inherit the mask of the thread that
// created them, which is then pinned too.
package cpupin

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrBadCPU is returned for a CPU number outside [0, NumCPU) or an empty CPU list.
var ErrBadCPU = errors.New("cpupin: bad cpu")

// Pin sets the CPU affinity of every thread of process pid (0 means this process) to cpus.
// Threads that exit while it runs are ignored.
func Pin(pid int, cpus ...int) error {
	if len(cpus) == 0 {
		return fmt.Errorf("cpupin: no cpus: %w", ErrBadCPU)
	}
	var set unix.CPUSet
	for _, c := range cpus {
		if c < 0 || c >= runtime.NumCPU() {
			return fmt.Errorf("cpupin: cpu %d of %d: %w", c, runtime.NumCPU(), ErrBadCPU)
		}
		set.Set(c)
	}
	if pid == 0 {
		pid = os.Getpid()
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	// Threads can start while the list is read; two passes catch those the first one missed
	// (they would also inherit the mask from a pinned creator, unless created from an unpinned
	// one during the first pass).
	for pass := 0; pass < 2; pass++ {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("cpupin: %w", err)
		}
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("cpupin: tid %d: %w", tid, err)
			}
		}
	}
	return nil
}

// Unpin lets every thread of process pid run on every CPU again.
func Unpin(pid int) error {
	all := make([]int, runtime.NumCPU())
	for i := range all {
		all[i] = i
	}
	return Pin(pid, all...)
}

// RaiseNoFile raises this process's RLIMIT_NOFILE so that at least want descriptors fit. It
// first tries want as both limits (root may raise the hard limit up to fs.nr_open), then falls
// back to soft = hard. It returns the soft limit now in force, which may be less than want.
// Child processes inherit the result.
func RaiseNoFile(want uint64) (uint64, error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("cpupin: getrlimit: %w", err)
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	if want > lim.Max {
		try := unix.Rlimit{Cur: want, Max: want}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &try); err == nil {
			return want, nil
		}
	}
	lim.Cur = min(want, lim.Max)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("cpupin: setrlimit: %w", err)
	}
	return lim.Cur, nil
}
