package sockopt

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Socket describes a socket descriptor the process did not open itself: one inherited from
// systemd (socket activation) or from the process it replaces (a binary upgrade).
type Socket struct {
	// Endpoint is the bound address as the kernel reports it (getsockname), with V6Only read
	// back from the socket, so another socket can be bound next to it.
	Endpoint
	// Listening is SO_ACCEPTCONN: listen(2) has been called on a stream socket.
	Listening bool
	// ReusePort reports whether the SO_REUSEPORT (SO_REUSEPORT_LB on FreeBSD) option is set.
	ReusePort bool
}

// Inspect reports what fd is: its kind (TCP, Unix or UDP), family, bound address, whether it
// listens and whether SO_REUSEPORT is set. It changes nothing. Errors wrap ErrNetwork for a
// descriptor that is open but is not a socket of a kind the reactor serves (a file, a pipe, a
// raw or SOCK_SEQPACKET socket, a Unix datagram socket, an unbound socket); the kernel's error
// (EBADF for a descriptor that is not open) is returned as an *os.SyscallError.
func Inspect(fd int) (Socket, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Socket{}, os.NewSyscallError("fstat", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return Socket{}, fmt.Errorf("%w: descriptor %d is not a socket", ErrNetwork, fd)
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return Socket{}, os.NewSyscallError("getsockopt SO_TYPE", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return Socket{}, os.NewSyscallError("getsockname", err)
	}
	var s Socket
	s.Sa = sa
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		s.Family = unix.AF_INET
	case *unix.SockaddrInet6:
		s.Family = unix.AF_INET6
		v6only, err := unix.GetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		if err != nil {
			return Socket{}, os.NewSyscallError("getsockopt IPV6_V6ONLY", err)
		}
		s.V6Only = v6only != 0
	case *unix.SockaddrUnix:
		s.Family = unix.AF_UNIX
		s.Path = sa.Name
	default:
		return Socket{}, fmt.Errorf("%w: descriptor %d is a socket of an unsupported family (%T)", ErrNetwork, fd, sa)
	}
	switch {
	case typ == unix.SOCK_STREAM && s.Family == unix.AF_UNIX:
		s.Kind = Unix
	case typ == unix.SOCK_STREAM:
		s.Kind = TCP
	case typ == unix.SOCK_DGRAM && s.Family != unix.AF_UNIX:
		s.Kind = UDP
	default:
		return Socket{}, fmt.Errorf("%w: descriptor %d is a socket of an unsupported type (%s, SO_TYPE %d)",
			ErrNetwork, fd, familyName(s.Family), typ)
	}
	if s.Kind != Unix && Port(sa) == 0 {
		// getsockname of a socket never bound reports port 0; it could not receive anything.
		return Socket{}, fmt.Errorf("%w: descriptor %d is not bound to an address", ErrNetwork, fd)
	}
	if s.Kind != UDP {
		acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		if err != nil {
			return Socket{}, os.NewSyscallError("getsockopt SO_ACCEPTCONN", err)
		}
		s.Listening = acc != 0
	}
	if s.Kind != Unix {
		// A failure here (an old kernel without the option) only means "not set".
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, reusePortOpt); err == nil {
			s.ReusePort = v != 0
		}
	}
	return s, nil
}

func familyName(f int) string {
	switch f {
	case unix.AF_INET:
		return "AF_INET"
	case unix.AF_INET6:
		return "AF_INET6"
	case unix.AF_UNIX:
		return "AF_UNIX"
	}
	return fmt.Sprintf("family %d", f)
}

// Adopt makes a descriptor the reactor did not open fit its rules: non-blocking (the loop
// must never block in accept or recvfrom) and close-on-exec (a child the program starts must
// not keep the socket open by accident). O_NONBLOCK belongs to the open file description, so
// every duplicate of the socket, in this process or another, sees it too; all the processes
// that share a listening socket must therefore accept without blocking, as the reactor and
// package net do.
func Adopt(fd int) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		return os.NewSyscallError("fcntl O_NONBLOCK", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return os.NewSyscallError("fcntl FD_CLOEXEC", err)
	}
	return nil
}

// Dup returns a close-on-exec duplicate of fd (F_DUPFD_CLOEXEC: no window in which a
// concurrent fork could inherit it).
func Dup(fd int) (int, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err)
	}
	return nfd, nil
}
