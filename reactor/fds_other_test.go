//go:build !linux

package reactor

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// Without /proc/self/fd (macOS, FreeBSD) the open descriptors are found by asking fcntl(F_GETFD)
// about every number below the soft RLIMIT_NOFILE: a descriptor cannot be numbered at or above
// it. /dev/fd is no substitute: on FreeBSD it lists only 0-2 unless fdescfs is mounted.

// fdScanLimit is the first descriptor number not scanned.
func fdScanLimit() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 1 << 16
	}
	// uint64 on macOS, int64 on FreeBSD; RLIM_INFINITY is the largest value of either.
	if n := uint64(rl.Cur); n < 1<<20 {
		return int(n)
	}
	return 1 << 20
}

// eachOpenFD calls f for every open descriptor of this process.
func eachOpenFD(f func(fd int)) {
	for fd, lim := 0, fdScanLimit(); fd < lim; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			f(fd)
		}
	}
}

// countFDs returns the number of open descriptors of this process.
func countFDs() int {
	n := 0
	eachOpenFD(func(int) { n++ })
	return n
}

// openFDs lists the open descriptor numbers, for a leak report.
func openFDs() []string {
	var names []string
	eachOpenFD(func(fd int) { names = append(names, strconv.Itoa(fd)) })
	return names
}
