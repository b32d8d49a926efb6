package sockopt

import "net/netip"

// Peer is the remote end of an accepted connection, as accept(2) reported it: an IP address
// and port (IPv4 addresses in their 4-byte form), and the IPv6 scope (interface index) of a
// link-local peer, 0 otherwise. Addr is the zero AddrPort for a peer that is not IP (a Unix
// socket's). A Peer holds no pointers: it is kept by value.
type Peer struct {
	Addr  netip.AddrPort
	Scope uint32
}
