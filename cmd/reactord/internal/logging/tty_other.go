//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd && !dragonfly

package logging

// IsTerminal reports false where no termios ioctl is wired up: JSON is the safe default.
func IsTerminal(fd int) bool { return false }
