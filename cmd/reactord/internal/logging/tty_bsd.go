//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package logging

import "golang.org/x/sys/unix"

// IsTerminal reports whether fd refers to a terminal: TIOCGETA only succeeds on a tty (a
// file, pipe or socket answers ENOTTY).
func IsTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TIOCGETA)
	return err == nil
}
