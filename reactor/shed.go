package reactor

import (
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// ErrShed is the cause OnClose is given for a connection the server closed to make room for
// new ones (see WithShedding).
var ErrShed = errors.New("reactor: connection shed to admit new ones")

// WithShedding makes the server, when it runs out of descriptors (accept fails with EMFILE or
// ENFILE) or reaches its connection cap, close the connections that have made the least
// progress instead of pausing accepting: a few hundred clients that open connections and send
// nothing, or dribble a request a byte at a time, can then no longer lock everyone else out.
//
// Progress is what the Handler shows the reactor: a connection whose OnData has never
// consumed a byte (for the HTTP codec: still inside its first request head, or silent) goes
// first; then one holding unconsumed input (inside a later request); then idle ones. Within
// each group the oldest connection goes first; one open for less than 100 ms is left alone (a
// client just admitted may not have had time to send), and no connection is shed while one
// of an earlier group is open, on any loop. A connection that is busy (held, paused, kept
// open after EOF), has output pending, or is closing is never shed, nor one the server did
// not accept (Dial, Adopt). Those shed get OnClose
// with ErrShed and are counted in Stats.ConnsShed; each burst of shedding is logged twice
// (when it starts, and when it has stopped for a second, with the count).
//
// With shedding on, the server also keeps descriptors in reserve for what its handlers open
// (files to send, upstream connections, logs): unless WithMaxConns sets a lower cap, it sheds
// once its open connections reach RLIMIT_NOFILE minus a reserve of 1/32 of it (at least 32,
// at most 1024), read at Start. Off by default.
func WithShedding(on bool) Option {
	return func(o *options) { o.shed = on }
}

// shedBatch bounds how many connections one shed closes: 1/4 of those open, at least one,
// at most maxShedBatch — enough that a backlog of hundreds drains in a few dozen iterations,
// few enough that one burst of new connections does not cost many partly sent requests.
const maxShedBatch = 64

func shedBatch(open int64) int { return int(min(max(open/4, 1), maxShedBatch)) }

// shedGraceMs is the age in milliseconds below which a connection is not shed: the first
// bytes of a client just admitted are on their way (they follow the handshake's last ACK, but
// a busy client or machine may take a while to send them). Without it, attackers that
// reconnect at once would rotate the connection table so fast that a normal client admitted
// among them could be the oldest head-incomplete connection before its request is read.
// When every connection that could go is younger, accepting pauses until the oldest of them
// comes of age, which bounds the rotation to about the table per grace period.
const shedGraceMs = 100

// clockMs is the loop clock in milliseconds, wrapping at 2^32 (49 days): connections' ages
// are differences of such values, right as long as no connection lives that long without
// progress.
func (l *Loop) clockMs() uint32 { return uint32(l.nowNs / 1e6) }

// shedQuiet is how long without shedding ends a burst (for the log).
const shedQuiet = time.Second

// fdReserve is the number of descriptors kept free with shedding on, for a limit of nofile.
func fdReserve(nofile uint64) uint64 {
	return min(max(nofile/32, 32), 1024)
}

// connCap returns the connection count at which the server stops accepting (or sheds):
// WithMaxConns, or with shedding the descriptor limit less a reserve, whichever is lower; 0 =
// none. Called by Start.
func (o *options) connCap() int64 {
	c := int64(o.maxConns)
	if !o.shed {
		return c
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return c
	}
	cur := uint64(rl.Cur) // int64 on FreeBSD
	if cur >= 1<<31 {
		return c // unlimited, in effect
	}
	fdCap := int64(0)
	if r := fdReserve(cur); cur > r {
		fdCap = int64(cur - r)
	}
	if fdCap > 0 && (c == 0 || fdCap < c) {
		return fdCap
	}
	return c
}

// shedCand is a connection that may be shed, with its rank (lower goes first).
type shedCand struct {
	rank uint64
	c    *Conn
}

// shedRank ranks the connection for shedding at loop time nowMs, or reports that it must
// not be shed. The top 16 bits are its group (0: never consumed input, 1: holds unconsumed
// input, 2: idle), the next 32 decrease with its age in ms and the last 16 with its place in
// the loop's order of arrival (for those of the same ms), so sorting ascending puts the
// oldest of the lowest group first.
// young reports a connection that may be shed but not yet: younger than shedGraceMs, or
// added in this iteration (the loop has not waited for its input once); age is its age in ms.
func (c *Conn) shedRank(nowMs uint32) (rank uint64, age uint32, ok, young bool) {
	if c.flags&(fClosing|fClosed|fInData|fConnecting) != 0 || c.hs != &c.loop.hs ||
		c.state.Load() != connOpen || c.busy() || c.Buffered() > 0 {
		// Busy, or not accepted by this server (dialed or adopted: the embedder's own).
		return 0, 0, false, false
	}
	age = nowMs - c.born
	group := uint64(2)
	switch {
	case c.flags&fProgress == 0:
		group = 0
	case c.hasKept():
		group = 1
	}
	l := c.loop
	young = age < shedGraceMs || c.seq-l.iterSeq < l.addSeq-l.iterSeq
	return group<<48 | uint64(^age)<<16 | uint64(^(l.addSeq - c.seq)), age, true, young
}

// shed closes up to n of the loop's connections, least progress first (see WithShedding),
// and returns how many it closed: only connections of the lowest group present, here and
// (as the other loops last saw themselves) on the server's other loops, so that one of a
// later group is never shed while one of an earlier group is still open (even one too new
// to shed yet). Their descriptors are released at the end of the iteration. When it closes
// none because those it could close are too new, wait is how long until the oldest of them
// may go. Loop goroutine.
func (l *Loop) shed(n int) (closed int, wait time.Duration) {
	cands := l.shedCands[:0]
	now := l.clockMs()
	lowest := uint64(3)
	var oldestYoung uint32
	for _, c := range l.conns {
		if c == nil {
			continue
		}
		r, age, ok, young := c.shedRank(now)
		if !ok {
			continue
		}
		g := r >> 48
		if g < lowest {
			lowest = g
			cands = cands[:0]
			oldestYoung = 0
		}
		switch {
		case g != lowest:
		case young:
			oldestYoung = max(oldestYoung, age)
		default:
			cands = append(cands, shedCand{r, c})
		}
	}
	l.shedLowest.Store(uint32(lowest))
	for _, o := range l.srv.loops {
		if o != l && uint64(o.shedLowest.Load()) < lowest {
			// Another loop holds connections that go before these: its share of the shed
			// takes them (it may have published this before they were shed, in which case
			// the next shed finds its new value).
			cands = cands[:0]
			break
		}
	}
	if len(cands) > n {
		slices.SortFunc(cands, func(a, b shedCand) int {
			switch {
			case a.rank < b.rank:
				return -1
			case a.rank > b.rank:
				return 1
			}
			return 0
		})
		cands = cands[:n]
	}
	for _, sc := range cands {
		if sc.c.flags&fPeer == 0 {
			// The completion mode's accept reports no address: read it now (getpeername),
			// so that OnClose and its logs can still say whom shedding closed.
			sc.c.RemoteAddrPort()
		}
		sc.c.closeNow(ErrShed)
	}
	clear(cands) // drop the references until the next shed
	l.shedCands = cands[:0]
	l.srv.connsShed.Add(uint64(len(cands)))
	if len(cands) == 0 && lowest < 3 {
		wait = time.Duration(max(shedGraceMs-oldestYoung, 1)) * time.Millisecond
	}
	return len(cands), wait
}

// shed makes room for new connections after accept hit cause (out of descriptors, or the
// connection cap). It asks for up to shedBatch connections to be shed: its share of them on
// the listener's loop, after this iteration's dispatch (runShed), and the same share on each
// other loop of the server (posted: a loop touches only its own connections). Accepting resumes at the next iteration, the
// listener being still readable; runShed pauses it if nothing could be shed.
func (ln *listener) shed(cause error) {
	l, loops := ln.loop, ln.srv.loops
	share := shedBatch(ln.srv.open.Load())
	if len(loops) > 1 {
		// Every loop is asked, even with a listener per loop: the cap and the descriptor
		// limit are the server's and the process's, and a loop holding only idle
		// connections must find out that another holds slow ones (see Loop.shed).
		share = (share + len(loops) - 1) / len(loops)
		if !ln.shedPosted.Load() {
			ln.shedPosted.Store(true)
			left := new(atomic.Int32)
			left.Store(int32(len(loops) - 1))
			for _, o := range loops {
				if o == l {
					continue
				}
				err := o.Post(func() {
					n, _ := o.shed(share)
					ln.shedRemote.Add(uint64(n))
					if left.Add(-1) == 0 {
						ln.shedPosted.Store(false)
					}
				})
				if err != nil && left.Add(-1) == 0 {
					ln.shedPosted.Store(false) // that loop is stopping
				}
			}
		}
	}
	l.shedWant, l.shedBy, l.shedCause = max(l.shedWant, share), ln, cause
}

// runShed carries out the shed a listener asked for in this iteration's dispatch. When there
// was nothing to shed it pauses the listener: until the first connection that could go comes
// of age, or, with every connection busy, as without shedding (see listener.pause).
func (l *Loop) runShed() {
	ln, cause := l.shedBy, l.shedCause
	n, wait := l.shed(l.shedWant)
	l.shedWant, l.shedBy, l.shedCause = 0, nil, nil
	if ln.fd < 0 {
		return // closed meanwhile
	}
	ln.noteShed(cause, n)
	switch {
	case n > 0:
		// Readiness: the listener, still readable, is accepted from once the descriptors
		// are closed at the end of this iteration. Completion mode: the wait for a client
		// (syncAccept) fires again at the next enter, after that, and finds room.
		if r := ln.loop.ring; r != nil {
			r.syncAccept(ln)
		}
	case wait > 0:
		ln.pauseFor(wait)
	default:
		ln.pause(cause)
	}
}

// pauseFor stops watching the listener for d, without the backoff and the log of pause: the
// wait for a connection to come of age for shedding is short and expected.
func (ln *listener) pauseFor(d time.Duration) {
	if ln.paused {
		return
	}
	ln.paused = true
	if r := ln.loop.ring; r != nil {
		r.syncAccept(ln) // cancels its accepts
	} else if err := ln.loop.poll.Modify(ln.fd, 0); err != nil {
		ln.loop.log.Error("pause accepting", zap.Error(err))
	}
	ln.retry = ln.loop.AfterFunc(d, ln.resume)
}

// noteShed logs the start of a burst of shedding and arms the check for its end.
func (ln *listener) noteShed(cause error, n int) {
	if n == 0 && ln.shedTimer == nil {
		return
	}
	ln.shedCount += uint64(n)
	ln.shedLast = ln.loop.now
	if ln.shedTimer != nil {
		return
	}
	ln.shedStart = ln.loop.now
	ln.loop.log.Warn("shedding connections with the least progress to admit new ones",
		zap.NamedError("cause", cause), zap.Stringer("addr", ln.addr))
	ln.shedTimer = ln.loop.AfterFunc(shedQuiet, ln.shedCheck)
}

// shedCheck ends a burst once no connection was shed for shedQuiet, logging what it cost.
func (ln *listener) shedCheck() {
	ln.shedTimer = nil
	if quiet := ln.loop.now.Sub(ln.shedLast); quiet < shedQuiet {
		ln.shedTimer = ln.loop.AfterFunc(shedQuiet-quiet, ln.shedCheck)
		return
	}
	total := ln.shedCount + ln.shedRemote.Swap(0)
	ln.loop.log.Warn("shedding stopped", zap.Uint64("shed", total), zap.Stringer("addr", ln.addr),
		zap.Duration("lasted", ln.shedLast.Sub(ln.shedStart)))
	ln.shedCount = 0
}
