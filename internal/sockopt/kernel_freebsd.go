package sockopt

import (
	"errors"

	"golang.org/x/sys/unix"
)

// FreeBSD option numbers and limits that differ between the kernels the reactor supports.

// maxUnixPath is the size of sun_path in struct sockaddr_un (104 on the BSDs, 108 on Linux);
// a path must leave room for the terminating NUL.
const maxUnixPath = 104

// reusePortOpt is SO_REUSEPORT_LB (FreeBSD 12+), not SO_REUSEPORT. Plain SO_REUSEPORT on
// FreeBSD only permits several sockets on one port: one of them receives all TCP connections
// and unicast datagrams, and every one gets a copy of each broadcast or multicast datagram. SO_REUSEPORT_LB is the Linux behaviour the reactor relies on: the
// sockets form a group and the kernel hashes each new connection or datagram to one member.
// It also lets a restarted daemon bind while the old one still listens.
const (
	reusePortOpt  = unix.SO_REUSEPORT_LB
	reusePortName = "SO_REUSEPORT_LB"
)

// ReusePortBalances reports whether sockets sharing a port through Config.ReusePort each get a
// share of the incoming connections and datagrams. It is true on Linux and FreeBSD; on macOS
// SO_REUSEPORT only permits the shared bind and one socket receives everything, so callers that
// open one socket per loop to spread load must accept on one socket and hand off instead.
const ReusePortBalances = true

// keepIdleOpt is the TCP option for the idle time before the first keep-alive probe; FreeBSD
// uses the Linux name TCP_KEEPIDLE.
const (
	keepIdleOpt  = unix.TCP_KEEPIDLE
	keepIdleName = "TCP_KEEPIDLE"
)

// HoldBacklog would stop the listening socket fd from queueing new connections (see the
// Linux version); this kernel has no socket filter that runs on a listener's handshakes, so
// it returns ErrUnsupported and the caller empties the queue and closes as quickly as it can.
func HoldBacklog(fd int) error { return errors.ErrUnsupported }

// ReleaseBacklog undoes HoldBacklog: nothing to undo here.
func ReleaseBacklog(fd int) error { return nil }
