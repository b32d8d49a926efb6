package reactor

import (
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/sockopt"
)

// Admitter decides which TCP connections a server serves, by the client's IP address, before
// it spends anything on them: a per-client connection limit is one (see WithAdmitter).
//
// Admit is asked once for every TCP connection a listener accepts, with the peer's address
// (an IPv4 client of a dual-stack listener as its 4-byte IPv4 address, so that one client is
// one address; no zone); true serves the connection, false closes it at once. Release is
// called exactly once for every connection Admit admitted, with the same address, when the
// server is done with it: when it closes (by either side, by a timeout, by shedding, at
// Shutdown or Close), or when the server drops it before serving it (the loop stopping, the
// poller refusing it). Connections on Unix sockets, dialed and adopted ones are never asked
// about.
//
// Both are called from the server's loop goroutines, several at once with more than one loop
// or listener, so an Admitter must be safe for concurrent use; and they run on the accept and
// close paths of every connection, so they must not block (no I/O, no lock held for long).
type Admitter interface {
	// Admit reports whether a connection from peer may be served; an admitted connection
	// is counted until its Release.
	Admit(peer netip.Addr) bool
	// Release ends the count of a connection from peer that Admit admitted.
	Release(peer netip.Addr)
}

// WithAdmitter makes the server ask a (see Admitter) about every TCP connection it accepts,
// before reading from it, before a TLS handshake, and before it counts toward WithMaxConns:
// a connection refused is closed at once, nothing written to it, and counted in
// Stats.ConnsRefused; the Handler never sees it, and it is never shed (WithShedding).
// Without this option (the default) every connection is served, and accepting pays
// nothing for the check. nil is an error.
//
// The address is known only once the connection is accepted. A server at its cap does not
// accept (it pauses, or with WithShedding it sheds first; the io_uring completion mode too,
// whose accepts take only what the cap has room for), so a client over its limit that
// arrives then waits like any other, and may cause a shed before it is accepted and refused.
//
// In the io_uring completion mode the kernel's accept reports no address, so with an
// Admitter set each accepted connection costs one getpeername(2) more.
func WithAdmitter(a Admitter) Option {
	return func(o *options) {
		if a == nil {
			o.fail("WithAdmitter(nil)")
			return
		}
		o.admitter = a
	}
}

// admit asks the server's Admitter whether fd, a connection the listener just accepted from
// peer, is served. A refused one is closed here; so is one whose peer is already gone, which
// only the completion mode can see (its accept reports no address, read now with getpeername,
// which then fails). ok says to serve it; admitted that it was admitted, so that its Release
// is due (serve marks the Conn with fAdmitted). peer is filled in when accept left it empty.
// Loop goroutine.
func (ln *listener) admit(fd int, peer *sockopt.Peer) (ok, admitted bool) {
	a := ln.srv.opt.admitter
	if a == nil || ln.kind != sockopt.TCP {
		return true, false
	}
	if !peer.Addr.IsValid() {
		p, err := sockopt.PeerOf(fd)
		if err != nil || !p.Addr.IsValid() {
			// ENOTCONN: the client reset the connection while it waited to be accepted.
			unix.Close(fd)
			return false, false
		}
		*peer = p
	}
	if !a.Admit(peer.Addr.Addr()) {
		unix.Close(fd)
		ln.srv.connsRefused.Add(1)
		return false, false
	}
	return true, true
}

// releaseAdmission calls the Admitter's Release for a connection it admitted, once: the flag
// is cleared. The address is the one accept (or getpeername) reported, kept in c.peer, which
// nothing changes once fPeer is set. The Conn's loop goroutine, or the acceptor's before the
// Conn was handed over.
func (c *Conn) releaseAdmission() {
	if c.flags&fAdmitted == 0 {
		return
	}
	c.flags &^= fAdmitted
	c.loop.srv.opt.admitter.Release(netip.AddrFrom16(c.peer).Unmap())
}
