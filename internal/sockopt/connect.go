package sockopt

import (
	"os"

	"golang.org/x/sys/unix"
)

// Connect opens a non-blocking, close-on-exec stream socket for sa and starts connecting it.
// It returns the descriptor once connect(2) has succeeded or is under way; the caller learns
// the outcome when the socket turns writable, from SocketError. On error nothing is left open
// and the error is the kernel's, wrapped in os.SyscallError (ECONNREFUSED, ENOENT for a
// missing Unix socket path, EAGAIN for a Unix socket whose listener's backlog is full).
func Connect(sa unix.Sockaddr) (int, error) {
	var family int
	switch sa.(type) {
	case *unix.SockaddrInet4:
		family = unix.AF_INET
	case *unix.SockaddrInet6:
		family = unix.AF_INET6
	case *unix.SockaddrUnix:
		family = unix.AF_UNIX
	default:
		return -1, ErrAddress
	}
	fd, err := newSocket(family, unix.SOCK_STREAM)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	switch err := unix.Connect(fd, sa); err {
	case nil, unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
		// EINTR: the connection attempt goes on asynchronously (POSIX), exactly like
		// EINPROGRESS; retrying connect(2) would only report EALREADY.
		return fd, nil
	default:
		unix.Close(fd)
		return -1, os.NewSyscallError("connect", err)
	}
}

// StreamKind returns the Kind of a connected stream socket (TCP or Unix), from its local
// address family and type. It fails with ErrNetwork for a datagram socket or another family,
// and for a listening socket.
func StreamKind(fd int) (Kind, error) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return 0, os.NewSyscallError("getsockopt SO_TYPE", err)
	}
	if typ != unix.SOCK_STREAM {
		return 0, ErrNetwork
	}
	if listening(fd) {
		return 0, ErrNetwork
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, os.NewSyscallError("getsockname", err)
	}
	switch sa.(type) {
	case *unix.SockaddrInet4, *unix.SockaddrInet6:
		return TCP, nil
	case *unix.SockaddrUnix:
		return Unix, nil
	}
	return 0, ErrNetwork
}

// listening reports whether fd is a listening socket (SO_ACCEPTCONN).
func listening(fd int) bool {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	return err == nil && v != 0
}
