//go:build !linux

package reactor

import "golang.org/x/sys/unix"

// rawRead is read(2) on a non-blocking fd. On Linux it is a raw system call that skips the
// scheduler hand-off (see rawio_linux.go); elsewhere it is unix.Read, which is always correct,
// only a little dearer.
func rawRead(fd int, p []byte) (int, error) { return unix.Read(fd, p) }

// rawWrite is write(2) on a non-blocking fd; see rawRead.
func rawWrite(fd int, p []byte) (int, error) { return unix.Write(fd, p) }
