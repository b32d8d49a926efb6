// Package connlimit is the daemon's per-client-address connection limit (-max-conns-per-ip):
// a concurrent count of the open connections of each client IP address, and the
// reactor.Admitter that refuses a client's connection once it holds the limit.
//
// One Counter serves the whole process: every listener of every generation admits through
// it, so a configuration reload — which starts a new server beside the old one while the old
// one's connections finish — neither resets a client's count nor lets it hold the limit on
// each generation. Memory follows the live clients: an address's entry is deleted when its
// last connection closes.
package connlimit

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// shards spreads the addresses over this many independently locked maps, so that loops
// accepting and closing at once seldom wait for each other.
const shards = 16

// quiet is how long without a refusal ends a burst of them (for the log), as for shedding.
const quiet = time.Second

// ErrLimit is returned by Counter.Limiter for a limit that is not positive.
var ErrLimit = errors.New("connlimit: limit must be positive")

// Counter counts open connections per client address. Its methods are safe for concurrent
// use and do not block beyond a short critical section on one of its shards. The zero value
// is not usable: use New.
type Counter struct {
	shards [shards]shard
	addrs  atomic.Int64 // addresses with at least one open connection

	log   *zap.Logger
	quiet time.Duration
	// A burst of refusals: whether one is on, when the last refusal was (Unix ns), how many
	// so far, and the timer that ends it; mu orders the start and the end of a burst.
	mu      sync.Mutex
	burst   bool
	start   time.Time
	last    atomic.Int64
	inBurst atomic.Uint64
	timer   *time.Timer
	closed  bool
}

// shard is one lock and the addresses that hash to it, padded to its own cache lines.
type shard struct {
	mu sync.Mutex
	m  map[netip.Addr]int32
	_  [64 - 16]byte
}

// New returns an empty Counter that logs bursts of refusals to log (nil: not logged).
func New(log *zap.Logger) *Counter {
	if log == nil {
		log = zap.NewNop()
	}
	c := &Counter{log: log, quiet: quiet}
	for i := range c.shards {
		c.shards[i].m = make(map[netip.Addr]int32)
	}
	return c
}

// shardOf picks the shard of a: a multiplicative hash of its 16 bytes (IPv4 as mapped).
func (c *Counter) shardOf(a netip.Addr) *shard {
	b := a.As16()
	h := binary.LittleEndian.Uint64(b[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(b[8:])
	h *= 0xff51afd7ed558ccd
	return &c.shards[h>>(64-4)]
}

// acquire counts one more connection from a unless it already has limit, and reports whether
// it did.
func (c *Counter) acquire(a netip.Addr, limit int32) bool {
	s := c.shardOf(a)
	s.mu.Lock()
	n := s.m[a]
	if n >= limit {
		s.mu.Unlock()
		return false
	}
	s.m[a] = n + 1
	s.mu.Unlock()
	if n == 0 {
		c.addrs.Add(1)
	}
	return true
}

// release counts one connection from a fewer; an address with none left is forgotten. A
// release of an address with no count is ignored (it cannot come from the reactor, which
// releases only what it admitted).
func (c *Counter) release(a netip.Addr) {
	s := c.shardOf(a)
	s.mu.Lock()
	n, ok := s.m[a]
	switch {
	case !ok:
		s.mu.Unlock()
		return
	case n <= 1:
		delete(s.m, a)
		s.mu.Unlock()
		c.addrs.Add(-1)
		return
	}
	s.m[a] = n - 1
	s.mu.Unlock()
}

// Count returns the connections open from a now (0 for the zero Addr). Any goroutine.
func (c *Counter) Count(a netip.Addr) int {
	if !a.IsValid() {
		return 0
	}
	a = a.Unmap().WithZone("")
	s := c.shardOf(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.m[a])
}

// Addresses returns how many client addresses have connections open now (the
// reactord_client_addresses gauge). Any goroutine.
func (c *Counter) Addresses() int64 { return c.addrs.Load() }

// Close stops the timer that logs the end of a burst of refusals (logging it now if one is
// on); later refusals are not logged. Any goroutine; the counting goes on working.
func (c *Counter) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if c.burst {
		c.endBurst()
	}
}

// refused notes a refusal: the first of a burst is logged at once, and a timer then waits for
// a quiet second to log the burst's end.
func (c *Counter) refused(a netip.Addr, limit int32) {
	now := time.Now()
	c.last.Store(now.UnixNano())
	c.inBurst.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.burst || c.closed {
		return
	}
	c.burst, c.start = true, now
	c.log.Warn("refusing connections over the per-address limit",
		zap.Stringer("client", a), zap.Int32("max_conns_per_ip", limit))
	c.timer = time.AfterFunc(c.quiet, c.check)
}

// check ends the burst once no connection was refused for the quiet period. Timer goroutine.
func (c *Counter) check() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.burst {
		return
	}
	last := time.Unix(0, c.last.Load())
	if q := time.Since(last); q < c.quiet {
		c.timer = time.AfterFunc(c.quiet-q, c.check)
		return
	}
	c.endBurst()
	c.timer = nil
}

// endBurst logs the end of the burst in progress. Under mu.
func (c *Counter) endBurst() {
	last := time.Unix(0, c.last.Load())
	c.log.Warn("refusing connections stopped", zap.Uint64("refused", c.inBurst.Swap(0)),
		zap.Duration("lasted", last.Sub(c.start)))
	c.burst = false
}

// Limiter returns the reactor.Admitter that admits a client's connection while the client
// holds fewer than limit, counting in c; ErrLimit if limit is not positive (no limit: do not
// set an Admitter). Several Limiters of one Counter, with different limits (one per
// configuration generation), count the same connections.
func (c *Counter) Limiter(limit int) (*Limiter, error) {
	if limit <= 0 || limit > 1<<31-1 {
		return nil, ErrLimit
	}
	return &Limiter{c: c, limit: int32(limit)}, nil
}

// Limiter is a reactor.Admitter: a limit on a Counter. Safe for concurrent use; Admit and
// Release do not block beyond a short critical section (and Admit, at the start of a burst
// of refusals, one log line).
type Limiter struct {
	c     *Counter
	limit int32
}

// Admit counts a connection from peer and reports true, or reports false (counting the
// refusal for the log) when peer already has the limit. IPv4-mapped IPv6 addresses count as
// their IPv4 address, and a zone is ignored. The zero Addr (no IP peer: the reactor never
// asks about one) is admitted without being counted.
func (l *Limiter) Admit(peer netip.Addr) bool {
	if !peer.IsValid() {
		return true
	}
	peer = peer.Unmap().WithZone("")
	if l.c.acquire(peer, l.limit) {
		return true
	}
	l.c.refused(peer, l.limit)
	return false
}

// Release uncounts a connection Admit admitted; the zero Addr is ignored, as Admit did not
// count it.
func (l *Limiter) Release(peer netip.Addr) {
	if peer.IsValid() {
		l.c.release(peer.Unmap().WithZone(""))
	}
}

// Limit returns the limit.
func (l *Limiter) Limit() int { return int(l.limit) }
