package sockopt

import (
	"errors"

	"golang.org/x/sys/unix"
)

// macOS option numbers and limits that differ between the kernels the reactor supports.

// maxUnixPath is the size of sun_path in struct sockaddr_un (104 on the BSDs, 108 on Linux);
// a path must leave room for the terminating NUL.
const maxUnixPath = 104

// reusePortOpt is SO_REUSEPORT. On macOS it only permits several sockets on one address and
// port: one of them receives all TCP connections and unicast datagrams, and every one gets a
// copy of each broadcast or multicast datagram. There is no load-balancing variant: see
// ReusePortBalances.
const (
	reusePortOpt  = unix.SO_REUSEPORT
	reusePortName = "SO_REUSEPORT"
)

// ReusePortBalances reports whether sockets sharing a port through Config.ReusePort each get a
// share of the incoming connections and datagrams. It is false on macOS, whose SO_REUSEPORT
// only permits the shared bind; callers that would open one socket per loop to spread load must
// open one socket and hand connections to the loops themselves.
const ReusePortBalances = false

// keepIdleOpt is the TCP option for the idle time before the first keep-alive probe: macOS
// calls it TCP_KEEPALIVE (Linux and FreeBSD: TCP_KEEPIDLE); the value is in seconds on all.
const (
	keepIdleOpt  = unix.TCP_KEEPALIVE
	keepIdleName = "TCP_KEEPALIVE"
)

// HoldBacklog would stop the listening socket fd from queueing new connections (see the
// Linux version); this kernel has no socket filter that runs on a listener's handshakes, so
// it returns ErrUnsupported and the caller empties the queue and closes as quickly as it can.
func HoldBacklog(fd int) error { return errors.ErrUnsupported }

// ReleaseBacklog undoes HoldBacklog: nothing to undo here.
func ReleaseBacklog(fd int) error { return nil }
