//go:build linux || freebsd

package sockopt

import "golang.org/x/sys/unix"

// newSocket opens a socket that is non-blocking and close-on-exec from birth: both flags are
// passed to socket(2) itself, so no fork+exec on another thread can inherit the descriptor
// between creation and an fcntl.
func newSocket(family, typ int) (int, error) {
	return unix.Socket(family, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
}

// Accept takes one connection from the listening socket fd and returns its descriptor,
// non-blocking and close-on-exec. accept4(2) (Linux 2.6.28+, FreeBSD 10+) sets both flags
// atomically; plain accept(2) on Linux would not even inherit O_NONBLOCK from the listener.
//
// Errors are the bare unix.Errno values so the caller can switch on them: EAGAIN when the
// backlog is empty, ECONNABORTED/EPROTO for a connection reset while it waited, EMFILE/ENFILE
// when out of descriptors, EBADF for a negative fd. Any goroutine.
func Accept(fd int) (int, error) {
	nfd, _, err := accept(fd)
	return nfd, err
}

// accept is Accept returning the peer's address too, in the allocating portable form.
func accept(fd int) (int, unix.Sockaddr, error) {
	if fd < 0 {
		return -1, nil, unix.EBADF
	}
	return unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
}
