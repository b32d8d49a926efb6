package sockopt

import (
	"os"

	"golang.org/x/sys/unix"
)

// macOS has neither SOCK_NONBLOCK/SOCK_CLOEXEC type flags nor accept4(2), so both flags are set
// with fcntl(2) right after the descriptor is created. Between the two calls a fork+exec on
// another thread could inherit the descriptor (the child would then hold the port or the
// connection open). Package net closes that window with syscall.ForkLock; this project keeps
// package syscall out, and neither the reactor nor the daemon starts child processes, so the
// window only matters to an embedding program that runs os/exec while sockets are opening.

// setFlags makes fd close-on-exec and non-blocking, closing it on failure.
func setFlags(fd int) error {
	// F_SETFD replaces the descriptor flags; FD_CLOEXEC is the only one defined.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		unix.Close(fd)
		return os.NewSyscallError("fcntl FD_CLOEXEC", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return os.NewSyscallError("fcntl O_NONBLOCK", err)
	}
	return nil
}

// newSocket opens a non-blocking, close-on-exec socket.
func newSocket(family, typ int) (int, error) {
	fd, err := unix.Socket(family, typ, 0)
	if err != nil {
		return -1, err
	}
	if err := setFlags(fd); err != nil {
		return -1, err
	}
	return fd, nil
}

// Accept takes one connection from the listening socket fd and returns its descriptor,
// non-blocking and close-on-exec. macOS has no accept4(2): the flags are set with fcntl after
// accept(2). O_NONBLOCK is set explicitly rather than trusting it to be inherited from the
// listener, which POSIX leaves unspecified.
//
// Errors from accept(2) are the bare unix.Errno values so the caller can switch on them:
// EAGAIN when the backlog is empty, ECONNABORTED for a connection reset while it waited,
// EMFILE/ENFILE when out of descriptors, EBADF for a negative fd. A failing fcntl (the new
// descriptor is closed then) is wrapped in *os.SyscallError. Any goroutine.
func Accept(fd int) (int, error) {
	nfd, _, err := accept(fd)
	return nfd, err
}

// accept is Accept returning the peer's address too.
func accept(fd int) (int, unix.Sockaddr, error) {
	if fd < 0 {
		return -1, nil, unix.EBADF
	}
	nfd, sa, err := unix.Accept(fd)
	if err != nil {
		return -1, nil, err
	}
	if err := setFlags(nfd); err != nil {
		return -1, nil, err
	}
	return nfd, sa, nil
}
