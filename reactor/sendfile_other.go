//go:build !linux

package reactor

import "golang.org/x/sys/unix"

// sendFile sends up to n bytes of the file infd from *off to the socket out and advances *off
// by what was sent, as Linux's sendfile(2) does. The BSD calls behind unix.Sendfile differ in
// two ways the caller must not see:
//   - they take the offset by value and leave *off alone, so it is advanced here;
//   - on a non-blocking socket they can send part of the range and still fail with EAGAIN or
//     EINTR, reporting the bytes sent (the only errors for which the count is defined: FreeBSD
//     and macOS document it so). A partial EINTR is returned as a plain short send, because
//     the caller retries EINTR from the same offset without looking at the count; a partial
//     EAGAIN keeps its error, which the caller handles after counting the bytes.
func sendFile(out, infd int, off *int64, n int) (int, error) {
	sent, err := unix.Sendfile(out, infd, off, n)
	if err != nil && err != unix.EAGAIN && err != unix.EINTR {
		return 0, err
	}
	if sent > 0 {
		*off += int64(sent)
		if err == unix.EINTR {
			err = nil
		}
	}
	return sent, err
}
