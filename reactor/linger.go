package reactor

import (
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/poller"
)

// lingerTime bounds how long a closed connection's descriptor is kept to read and discard
// what its peer still sends (see lingerer).
const lingerTime = 2 * time.Second

// lingerer keeps the descriptor of a TCP connection closed gracefully while its peer was still
// sending — input was waiting, unread, when the output had drained (a request body the handler
// refused and answered with "Connection: close", pipelined requests after a closing response).
// close(2) on a socket with unread input makes the kernel answer with a reset instead of a
// FIN, and a reset discards what of the response the socket still held and, at the peer, what
// it had received but not yet read: the client would lose the answer that explains the
// close. So the loop shuts the writing side (the FIN follows the response), reads and
// discards until the peer's EOF, an error or lingerTime, and only then closes — nginx's
// lingering close. The Conn is gone by then (OnClose has run, the server no longer counts it):
// only the descriptor lingers, watched by the readiness poller in every mode (the io_uring
// completion mode too: the ring's requests for it are cancelled), closed at the end of an
// iteration like any other, and counted as open until then, so the connection cap and
// shedding's descriptor reserve see it. A reset or shed connection, CloseNow, and a peer that
// has sent its EOF do not linger.
type lingerer struct {
	l  *Loop
	fd int
	t  *Timer
}

// linger starts the lingering close of fd, which the caller has taken off the poller (and
// the ring). It reports false when the descriptor could not be watched: the caller closes it.
func (l *Loop) linger(fd int) bool {
	// The FIN goes out after the queued output; from now on the peer sees the end of the
	// response, and whatever it still sends is only read to be dropped.
	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		return false // the peer reset it already: nothing to protect
	}
	if err := l.poll.Add(fd, poller.Readable); err != nil {
		l.log.Debug("lingering close: watch", zap.Error(err))
		return false
	}
	g := &lingerer{l: l, fd: fd}
	l.others[fd] = g
	g.t = l.AfterFunc(lingerTime, g.done)
	return true
}

// onEvent reads and discards what the peer sent; its EOF or an error ends the linger.
func (g *lingerer) onEvent(poller.Events) {
	buf := g.l.readBuf
	for {
		n, err := unix.Read(g.fd, buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return
		case err != nil || n == 0:
			g.done()
			return
		}
	}
}

// shut ends the linger when the loop stops.
func (g *lingerer) shut() { g.done() }

// done stops watching the descriptor and closes it at the end of the iteration.
func (g *lingerer) done() {
	l := g.l
	if l.others[g.fd] != g {
		return
	}
	g.t.Stop()
	l.poll.Remove(g.fd)
	delete(l.others, g.fd)
	l.closeFd(g.fd)
	l.closedConns++ // the server's open count (and the connection cap) held it until now
}
