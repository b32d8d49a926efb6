package reactor

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/sockopt"
	"github.com/reactord/reactord/poller"
)

// listener is a listening socket registered on one loop, which accepts for it. It is a socket:
// see there for who owns it when.
type listener struct {
	srv        *Server
	loop       *Loop
	fd         int
	kind       sockopt.Kind
	addr       net.Addr
	path       string // Unix socket file to remove on close
	registered bool   // in loop's poller and others map
	paused     bool
	// perLoop: the socket is one of a group with one per loop, among which the kernel
	// spreads connections (SO_REUSEPORT), so the loop that accepts keeps the connection.
	perLoop bool
	// Pauses are logged at most once per pauseLogEvery per listener: an fd shortage tends to
	// come back in waves while it is being relieved, and one line tells the operator enough.
	lastWarn   time.Time
	suppressed int
	backoff    time.Duration
	retry      *Timer
	rr         int        // round-robin cursor
	tls        *tlsListen // WithTLS: accepted connections speak TLS
	// The completion mode's accepts under a connection cap (uring_linux.go, syncAccept): the
	// credits its multishot accept holds, its one-shot accepts in flight (one credit each),
	// and the most a multishot accept can take in one go (0: not yet known).
	heldMulti int64
	oneShots  int
	queueMax  int64
	// Shedding (shed.go): a burst's count and times, the timer that ends it, and shedding
	// asked of the other loops (their counts arrive in shedRemote).
	shedCount           uint64
	shedStart, shedLast time.Time
	shedTimer           *Timer
	shedPosted          atomic.Bool
	shedRemote          atomic.Uint64
}

// acceptBudget bounds accepts per readiness report, so a connection storm cannot starve the
// loop's established connections; level-triggered readiness brings the loop back for more.
const acceptBudget = 128

// Backoff while accepting is paused: first retry soon, then less often.
const (
	minAcceptBackoff = 10 * time.Millisecond
	maxAcceptBackoff = 200 * time.Millisecond
	pauseLogEvery    = time.Minute
)

func (ln *listener) onEvent(poller.Events) {
	for i := 0; i < acceptBudget; i++ {
		if ln.atCap() {
			switch {
			case !ln.srv.opt.shed:
				ln.pause(ErrTooManyConns)
			case i > 0:
				// At the cap after accepting: nothing says another client waits. If one
				// does, the listener is still readable and the next iteration sheds.
			default:
				ln.shed(ErrTooManyConns)
			}
			return
		}
		// accept4 on Linux and FreeBSD (raw and allocation-free on Linux, the peer's address
		// decoded from the sockaddr it fills in); accept plus fcntl on macOS.
		fd, peer, err := sockopt.AcceptPeer(ln.fd)
		switch {
		case err == unix.EAGAIN:
			return
		case err != nil:
			if ln.acceptFailed(err) {
				return
			}
		default:
			if ok, admitted := ln.admit(fd, &peer); ok {
				ln.serve(fd, peer, admitted)
			}
		}
	}
}

// acceptDone handles a completion of one of the completion mode's accepts: a connection (fd),
// or err. The ring (syncAccept) decides which accepts stay armed; a connection the kernel
// accepted is always served (see there why, even over the cap), unless the Admitter refuses it.
func (ln *listener) acceptDone(fd int, err error) {
	switch {
	case err == nil:
		// The ring's accept reports no address (one sockaddr buffer cannot serve a stream
		// of completions): RemoteAddr reads it with getpeername when asked, or admit does
		// now when an Admitter needs it.
		var peer sockopt.Peer
		if ok, admitted := ln.admit(fd, &peer); ok {
			ln.serve(fd, peer, admitted)
		}
	case err == unix.ECANCELED:
		// Ours: a pause, room running out, or the listener closing.
	default:
		ln.acceptFailed(err)
	}
}

// atCap reports whether the server is at its connection cap: WithMaxConns, or with
// shedding the descriptor limit less a reserve (options.connCap).
func (ln *listener) atCap() bool {
	max := ln.srv.connCap
	return max > 0 && ln.srv.open.Load() >= max
}

// reserveAccepts takes n accept credits if the server has room for n more connections
// beyond those open and those its listeners' accepts already hold credits for (the
// completion mode under a cap, see ringIO.syncAccept), all or none. Any goroutine: the
// listeners of several loops share the count. Credits are loaded before the open count, and
// a connection is counted open before its credit is released (onAccept), so a race only
// ever understates the room.
func (s *Server) reserveAccepts(n int64) bool {
	for {
		held := s.acceptHeld.Load()
		if s.connCap-s.open.Load()-held < n {
			return false
		}
		if s.acceptHeld.CompareAndSwap(held, held+n) {
			return true
		}
	}
}

// releaseAccepts gives back n credits taken by reserveAccepts.
func (s *Server) releaseAccepts(n int64) {
	if n != 0 {
		s.acceptHeld.Add(-n)
	}
}

// acceptFailed handles a failed accept and reports whether accepting paused.
func (ln *listener) acceptFailed(err error) bool {
	switch err {
	case unix.EINTR, unix.ECONNABORTED, unix.EPROTO:
		// Interrupted, or a connection reset while it sat in the backlog: skip it.
		return false
	case unix.EMFILE, unix.ENFILE:
		// Out of descriptors. With shedding, close the connections that made the least
		// progress (after this iteration's dispatch); their descriptors are free at its end,
		// and the listener, still readable (or its accept armed again, see syncAccept),
		// brings the loop back to accept. Otherwise pause, as below; runShed pauses too if
		// nothing could be shed.
		if ln.srv.opt.shed {
			ln.shed(err)
		} else {
			ln.pause(err)
		}
		return true
	case unix.ENOBUFS, unix.ENOMEM:
		// Out of descriptors or memory. The connection stays in the backlog, so the
		// listener stays readable: retrying at once would spin the loop at 100% CPU,
		// and giving up (as some engines do) would kill the server. Stop watching the
		// listener for a while instead; closing connections frees descriptors. (The
		// completion mode's accept ends with the error, and is armed again on resuming.)
		ln.pause(err)
		return true
	default:
		ln.loop.log.Error("accept", zap.Error(err), zap.Stringer("addr", ln.addr))
		ln.pause(err)
		return true
	}
}

// serve hands an accepted connection to its loop; peer is what accept reported, if anything;
// admitted says the Admitter admitted it (see listener.admit), so that its Release is due.
func (ln *listener) serve(fd int, peer sockopt.Peer, admitted bool) {
	s := ln.srv
	if ln.backoff != 0 {
		ln.backoff = 0
		ln.loop.log.Debug("accepting resumed", zap.Stringer("addr", ln.addr))
	}
	if ln.kind == sockopt.TCP {
		s.tuneConn(fd)
	}
	s.open.Add(1)
	c := newConn(ln.pick(), fd, ln.kind, peer)
	if admitted {
		c.flags |= fAdmitted
	}
	if ln.tls != nil {
		c.tls = &tlsSession{c: c, hs: &tlsHandshake{ln: ln.tls}}
	}
	if c.loop == ln.loop {
		c.loop.addConn(c)
	} else if err := c.loop.post(task{op: opAttach, c: c}); err != nil {
		unix.Close(fd)
		s.open.Add(-1)
		c.releaseAdmission() // never handed over: still this goroutine's
	}
}

// pick chooses the loop for a new connection.
func (ln *listener) pick() *Loop {
	s := ln.srv
	// With PerLoopListeners every loop has its own TCP socket and the kernel picked this one. Unix
	// sockets, and TCP where the kernel does not balance SO_REUSEPORT (macOS), have one
	// socket and fall through to round-robin.
	if len(s.loops) == 1 || ln.perLoop {
		return ln.loop
	}
	if s.opt.balancing == LeastConnections {
		best := s.loops[0]
		for _, l := range s.loops[1:] {
			if l.openConns.Load() < best.openConns.Load() {
				best = l
			}
		}
		return best
	}
	ln.rr = (ln.rr + 1) % len(s.loops)
	return s.loops[ln.rr]
}

// pause stops watching the listener and re-arms it after a backoff, logging once per episode.
func (ln *listener) pause(cause error) {
	if ln.paused {
		return
	}
	ln.paused = true
	ln.srv.acceptPaused.Add(1)
	if r := ln.loop.ring; r != nil {
		r.syncAccept(ln) // cancels its accepts
	} else if err := ln.loop.poll.Modify(ln.fd, 0); err != nil {
		ln.loop.log.Error("pause accepting", zap.Error(err))
	}
	if ln.backoff == 0 {
		ln.backoff = minAcceptBackoff
	} else {
		ln.backoff = min(2*ln.backoff, maxAcceptBackoff)
	}
	if now := ln.loop.now; ln.lastWarn.IsZero() || now.Sub(ln.lastWarn) >= pauseLogEvery {
		ln.lastWarn = now
		fields := []zap.Field{zap.Error(cause), zap.Stringer("addr", ln.addr), zap.Duration("retry", ln.backoff),
			zap.Int("suppressed", ln.suppressed)}
		ln.suppressed = 0
		if errors.Is(cause, ErrTooManyConns) {
			ln.loop.log.Warn("accept paused: connection limit reached", fields...)
		} else {
			ln.loop.log.Warn("accept paused: out of resources", fields...)
		}
	} else {
		ln.suppressed++
	}
	ln.retry = ln.loop.AfterFunc(ln.backoff, ln.resume)
}

func (ln *listener) resume() {
	ln.retry = nil
	if !ln.paused || ln.fd < 0 {
		return
	}
	ln.paused = false
	if r := ln.loop.ring; r != nil {
		// Accepts for the room there is; at the cap, the wait for a client, which sheds or
		// pauses again when one waits, as the listener's readability does below.
		r.syncAccept(ln)
		return
	}
	if err := ln.loop.poll.Modify(ln.fd, poller.Readable); err != nil {
		ln.loop.log.Error("resume accepting", zap.Error(err))
	}
}

func (ln *listener) bind(l *Loop) { ln.loop = l }

// register adds the listener to its loop's poller. Loop goroutine (or Start).
func (ln *listener) register() error {
	if r := ln.loop.ring; r != nil {
		r.syncAccept(ln) // submitted by the loop's first (or next) enter
	} else if err := ln.loop.poll.Add(ln.fd, poller.Readable); err != nil {
		return err
	}
	ln.loop.others[ln.fd] = ln
	ln.registered = true
	return nil
}

// drainAndShut is shut for a graceful shutdown: it serves the connections already in the
// kernel's accept queue before it closes the socket, where shut would have them reset.
// Their handshakes completed before the shutdown and their clients may have sent requests:
// served, they get answers (or a clean close once idle) like the connections accepted before.
// On Linux the queue is first held (sockopt.HoldBacklog), so that no connection joins it while
// it is emptied; elsewhere a connection that arrives between the last accept and the close is
// still reset. Connections past WithMaxConns stay queued and are reset, as at Close. Owner only.
func (ln *listener) drainAndShut() {
	if ln.fd < 0 {
		return
	}
	held := ln.kind == sockopt.TCP && sockopt.HoldBacklog(ln.fd) == nil
	ln.acceptQueued()
	if held {
		if err := sockopt.ReleaseBacklog(ln.fd); err != nil {
			ln.loop.log.Warn("listener filter removal", zap.Error(err), zap.Stringer("addr", ln.addr))
		}
	}
	ln.shut()
}

// acceptQueued serves the connections waiting in the socket's queue, while the server is
// below its cap. Owner only.
func (ln *listener) acceptQueued() {
	for !ln.atCap() {
		fd, peer, err := sockopt.AcceptPeer(ln.fd)
		if err == unix.EINTR || err == unix.ECONNABORTED || err == unix.EPROTO {
			continue // interrupted, or a connection reset while it sat in the backlog
		}
		if err != nil {
			break // EAGAIN: empty; anything else (EMFILE, ...): what is left stays queued
		}
		if ok, admitted := ln.admit(fd, &peer); ok {
			ln.serve(fd, peer, admitted)
		}
	}
}

// shut stops accepting and closes the socket, once. Its owner only (see socket).
func (ln *listener) shut() {
	if ln.fd < 0 {
		return
	}
	ln.retry.Stop()
	ln.retry = nil
	ln.shedTimer.Stop()
	ln.shedTimer = nil
	if ln.registered {
		if r := ln.loop.ring; r != nil {
			r.dropListener(ln)
		} else {
			ln.loop.poll.Remove(ln.fd)
		}
		delete(ln.loop.others, ln.fd)
		ln.registered = false
	}
	unix.Close(ln.fd)
	ln.fd = -1
	if ln.path != "" {
		unix.Unlink(ln.path)
	}
}
