package reactor

import "golang.org/x/sys/unix"

// sendFile sends up to n bytes of the file infd from *off to the socket out and advances *off
// by what was sent. Linux's sendfile(2) advances *off itself and reports either a count or an
// error, never both.
func sendFile(out, infd int, off *int64, n int) (int, error) {
	return unix.Sendfile(out, infd, off, n)
}
