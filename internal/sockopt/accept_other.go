//go:build !linux

package sockopt

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// AcceptPeer is Accept that also returns the peer's address. Outside Linux it decodes the
// Sockaddr unix.Accept returns (which allocates); Linux has an allocation-free version. fd
// must be a non-blocking listening socket. Errors are bare unix.Errno values, as for Accept.
// Any goroutine.
func AcceptPeer(fd int) (int, Peer, error) {
	nfd, sa, err := accept(fd)
	if err != nil {
		return -1, Peer{}, err
	}
	return nfd, peerFrom(sa), nil
}

// peerFrom decodes a unix.Sockaddr (the portable, allocating form) into a Peer.
func peerFrom(sa unix.Sockaddr) Peer {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return Peer{Addr: netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))}
	case *unix.SockaddrInet6:
		a := netip.AddrFrom16(sa.Addr)
		if a.Is4In6() {
			a = a.Unmap()
		}
		return Peer{Addr: netip.AddrPortFrom(a, uint16(sa.Port)), Scope: sa.ZoneId}
	}
	return Peer{}
}

// PeerOf returns the remote end of fd, a connected socket, as getpeername(2) reports it: the
// same Peer AcceptPeer would have returned (IPv4-mapped IPv6 addresses unmapped), the zero
// Peer for a socket that is not IP (a Unix socket's). Outside Linux it decodes the Sockaddr
// unix.Getpeername returns (which allocates). Errors are bare unix.Errno values: ENOTCONN when
// the peer has already reset the connection, EBADF for a negative fd. Any goroutine.
func PeerOf(fd int) (Peer, error) {
	if fd < 0 {
		return Peer{}, unix.EBADF
	}
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return Peer{}, err
	}
	return peerFrom(sa), nil
}
