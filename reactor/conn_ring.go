package reactor

import (
	"io"
	"os"

	"github.com/reactord/reactord/internal/sockopt"
	"github.com/reactord/reactord/poller"
)

// The connection's side of the completion mode (WithPoller("uring"), uring_linux.go): what a
// received buffer, an ended receive or a reset do to the connection. They mirror read, onEOF
// and onEvent of the readiness path (conn_io.go), and from there on the two modes share every
// decision: deliver, backpressure, redelivery, the EOF rules, timeouts, afterFlush.

// received takes bytes a completion delivered from a provided buffer, which goes back to the
// kernel when this returns: OnData sees them directly (the buffer plays the loop read buffer's
// part), or behind the kept tail, and what OnData leaves is copied into the connection's own
// storage by deliver, as after a read(2).
func (c *Conn) received(data []byte) {
	c.receivedBytes(len(data))
	switch {
	case c.flags&(fClosing|fClosed|fEOF) != 0:
		// Closing: input is discarded, as a closing connection reads none.
	case !c.reading():
		// Paused, its receive being cancelled, or kept input waiting to be handed back: the
		// bytes join the kept input, behind it, where a later read would have put them.
		c.keep(data)
	case len(c.kept()) == 0:
		c.deliver(data, false)
	default:
		c.keep(data)
		c.deliver(c.io.in, true)
	}
}

// gather adds bytes of one of several completions of a batch to the kept input; gathered
// then hands them all to OnData at once.
func (c *Conn) gather(data []byte) {
	c.receivedBytes(len(data))
	if c.flags&(fClosing|fClosed|fEOF) == 0 {
		c.keep(data)
	}
}

func (c *Conn) gathered() {
	if c.reading() && len(c.kept()) > 0 {
		c.deliver(c.io.in, true)
	}
}

// keep appends data to the connection's kept input.
func (c *Conn) keep(data []byte) {
	b := c.bufs()
	b.in = append(c.loop.pool.Grow(b.in, len(data)), data...)
}

// receivedBytes counts input and its activity, as read does.
func (c *Conn) receivedBytes(n int) {
	l := c.loop
	l.st.bytesIn += uint64(n)
	if c.flags&fTimeouts != 0 {
		c.x.Load().to.lastActive, c.x.Load().to.lastRead = l.nowNs, l.nowNs
	}
}

// hangup settles an error or a full hang-up (both directions shut: a reset, typically)
// reported while the connection is not reading: epoll reports those whatever the interest,
// and in the completion mode the watch that stands in for the cancelled receive does. Pending
// output is tried first: a dead socket fails it with EPIPE or ECONNRESET, the most precise
// cause to report.
func (c *Conn) hangup(ev poller.Events) {
	if ev&poller.Error != 0 {
		if err := sockopt.SocketError(int(c.fd)); err != nil {
			c.closeNow(os.NewSyscallError("socket", err))
			return
		}
	}
	if ev&(poller.Hangup|poller.Error) == 0 {
		return
	}
	if c.Buffered() > 0 {
		if c.flags&fRing != 0 {
			// The send (in flight, or queued now) fails and closes the connection with its
			// error; if the socket still takes it, the watch reports the hang-up again.
			c.markDirty()
			return
		}
		c.flush()
		if c.flags&fClosed != 0 {
			return
		}
	}
	c.closeNow(io.EOF)
}
