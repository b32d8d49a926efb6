package sockopt

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// AcceptPeer is Accept that also returns the peer's address, decoded from the sockaddr
// accept4(2) fills in — which unix.Accept4 would allocate twice for (the raw buffer escapes,
// and the decoded Sockaddr is boxed). Here the buffer lives on the stack and the call is a raw
// system call (no scheduler hand-off), so accepting allocates nothing. fd must be a
// non-blocking listening socket (every socket the reactor listens on is): the raw call must
// not block. Errors are bare unix.Errno values, as for Accept. Any goroutine.
func AcceptPeer(fd int) (int, Peer, error) {
	if fd < 0 {
		return -1, Peer{}, unix.EBADF
	}
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&rsa)),
		uintptr(unsafe.Pointer(&n)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, Peer{}, e
	}
	return int(r), decodePeer(&rsa, n), nil
}

// decodePeer reads an AF_INET or AF_INET6 sockaddr of n bytes; anything else is no Peer.
func decodePeer(rsa *unix.RawSockaddrAny, n uint32) Peer {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		if n < unix.SizeofSockaddrInet4 {
			return Peer{}
		}
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return Peer{Addr: netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), ntohs(sa.Port))}
	case unix.AF_INET6:
		if n < unix.SizeofSockaddrInet6 {
			return Peer{}
		}
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		a := netip.AddrFrom16(sa.Addr)
		if a.Is4In6() {
			// A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d.
			a = a.Unmap()
		}
		return Peer{Addr: netip.AddrPortFrom(a, ntohs(sa.Port)), Scope: sa.Scope_id}
	}
	return Peer{}
}

// ntohs converts a port from network byte order as stored in a sockaddr.
func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// PeerOf returns the remote end of fd, a connected socket, as getpeername(2) reports it: the
// same Peer AcceptPeer would have returned (IPv4-mapped IPv6 addresses unmapped, so that a
// dual-stack listener's IPv4 client has one address), the zero Peer for a socket that is not
// IP (a Unix socket's). It is for the io_uring completion mode, whose multishot accept reports
// no address. Like AcceptPeer it is a raw system call on a stack buffer and allocates nothing.
// Errors are bare unix.Errno values: ENOTCONN when the peer has already reset the connection,
// EBADF for a negative fd. Any goroutine.
func PeerOf(fd int) (Peer, error) {
	if fd < 0 {
		return Peer{}, unix.EBADF
	}
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	_, _, e := unix.RawSyscall(unix.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)),
		uintptr(unsafe.Pointer(&n)))
	if e != 0 {
		return Peer{}, e
	}
	return decodePeer(&rsa, n), nil
}
