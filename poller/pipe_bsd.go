//go:build freebsd || netbsd || openbsd || dragonfly

package poller

import "golang.org/x/sys/unix"

// pipe makes a close-on-exec pipe atomically with pipe2.
func pipe(fds []int) error {
	return unix.Pipe2(fds, unix.O_CLOEXEC)
}
