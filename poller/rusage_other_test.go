//go:build !linux

package poller

import "golang.org/x/sys/unix"

// rusageThread: the BSDs and macOS have no per-thread getrusage; the process's time is the
// next best thing (the benchmark is the only busy goroutine).
const rusageThread = unix.RUSAGE_SELF
