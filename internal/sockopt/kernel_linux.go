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
