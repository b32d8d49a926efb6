package logging

import "golang.org/x/sys/unix"

// IsTerminal reports whether fd refers to a terminal: TCGETS only succeeds on a tty (a file,
// pipe or socket answers ENOTTY).
func IsTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}
