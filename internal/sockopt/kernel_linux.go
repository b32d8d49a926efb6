package sockopt

import "golang.org/x/sys/unix"

// Linux option numbers and limits that differ between the kernels the reactor supports.

// maxUnixPath is the size of sun_path in struct sockaddr_un; a path must leave room for the
// terminating NUL, so the longest usable path is one byte shorter.
const maxUnixPath = 108

// reusePortOpt is SO_REUSEPORT. On Linux (3.9+) sockets of one user bound to the same address
// and port form a group, and the kernel hashes each new connection (or datagram flow) to one of
// them: it both lets a restarted daemon bind next to the old one and balances load.
const (
	reusePortOpt  = unix.SO_REUSEPORT
	reusePortName = "SO_REUSEPORT"
)

// ReusePortBalances reports whether sockets sharing a port through Config.ReusePort each get a
// share of the incoming connections and datagrams. It is true on Linux and FreeBSD; on macOS
// SO_REUSEPORT only permits the shared bind and one socket receives everything, so callers that
// open one socket per loop to spread load must accept on one socket and hand off instead.
const ReusePortBalances = true

// keepIdleOpt is the TCP option for the idle time before the first keep-alive probe; Linux and
// FreeBSD call it TCP_KEEPIDLE.
const (
	keepIdleOpt  = unix.TCP_KEEPIDLE
	keepIdleName = "TCP_KEEPIDLE"
)

// dropAll is a classic BPF program of one instruction, "return 0": a socket filter that keeps
// nothing of any packet.
var dropAll = []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}

// HoldBacklog makes the TCP listening socket fd refuse to queue new connections while the
// caller empties its accept queue before closing it. Closing a listener resets (RST) every
// connection still in its queue although each one's handshake completed and its client may
// have sent a request; a listener cannot stop listening without closing, and accepting until
// EAGAIN and then closing leaves a window in which new connections queue and are reset.
// Attached to a listener, a socket filter is run on the SYN of a new connection and on the
// ACK that would complete a half-open one (tcp_v4_rcv, tcp_v6_rcv), so with a drop-all
// filter nothing joins the queue: a new client's SYN goes unanswered and is retransmitted,
// and by then the socket is closed and the client gets a clean refusal. Connections already
// queued are separate sockets, which the filter does not touch. ReleaseBacklog undoes it.
// The socket must not carry a filter of its own (the reactor's sockets never do): it is
// replaced, and ReleaseBacklog removes it.
func HoldBacklog(fd int) error {
	prog := unix.SockFprog{Len: uint16(len(dropAll)), Filter: &dropAll[0]}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog)
}

// ReleaseBacklog removes the filter HoldBacklog attached. A listening socket may be shared
// (systemd socket activation, a duplicate held by another process): the next owner must get
// it as it was, so the filter comes off before the caller closes its descriptor.
func ReleaseBacklog(fd int) error {
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0)
}
