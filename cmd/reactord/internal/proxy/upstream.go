package proxy

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	codec "github.com/reactord/reactord/codec/http"
)

// Policy chooses an upstream of a group for each request.
type Policy uint8

const (
	// RoundRobin takes the group's upstreams in turn (each loop keeps its own turn, so loops
	// share no counter).
	RoundRobin Policy = iota
	// LeastConn takes the upstream with the fewest requests in flight, across all loops;
	// ties go round-robin.
	LeastConn
)

// ParsePolicy reads a policy name: "round-robin" or "least-conn".
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "", "round-robin":
		return RoundRobin, nil
	case "least-conn":
		return LeastConn, nil
	}
	return 0, fmt.Errorf("unknown balancing policy %q (want round-robin or least-conn)", s)
}

func (p Policy) String() string {
	if p == LeastConn {
		return "least-conn"
	}
	return "round-robin"
}

// Upstream is one server of a group, with its connection pools (one per loop, inside its
// codec.Client) and its health. Counters are atomics: every loop uses every upstream.
type Upstream struct {
	// Name is the address as configured: "host:port" or "unix:/path".
	Name   string
	client *codec.Client
	group  *Group
	m      *upstreamMetrics

	active    atomic.Int64 // requests in flight
	fails     atomic.Int32 // consecutive failures
	downUntil atomic.Int64 // wall-clock ns until which it is ejected; 0 when admitted
	checkDown atomic.Bool  // the active health check failed last
}

// ParseUpstream splits an upstream address into the network and address a codec.Client dials:
// "unix:/path" or "host:port".
func ParseUpstream(s string) (network, address string, err error) {
	if p, ok := strings.CutPrefix(s, "unix:"); ok {
		if p == "" {
			return "", "", errors.New("empty unix socket path")
		}
		return "unix", p, nil
	}
	if strings.Contains(s, "://") {
		return "", "", fmt.Errorf("%q: want host:port or unix:/path, without a scheme", s)
	}
	return "tcp", s, nil
}

// Admitted reports whether the upstream takes requests now: not ejected by passive health (or
// its cool-down is over) and not failing its active check.
func (u *Upstream) Admitted(now time.Time) bool {
	if u.checkDown.Load() {
		return false
	}
	d := u.downUntil.Load()
	return d == 0 || now.UnixNano() >= d
}

// succeeded notes a response received: the run of failures ends, an ejection is lifted.
func (u *Upstream) succeeded() {
	if u.fails.Load() != 0 {
		u.fails.Store(0)
	}
	if u.downUntil.Load() != 0 {
		u.downUntil.Store(0)
	}
}

// failed notes a failure (no usable response: refused, reset, timed out, malformed). After
// MaxFails in a row the upstream is ejected for FailTimeout; the first request after that is
// its trial, and one more failure ejects it again at once.
func (u *Upstream) failed(now time.Time) {
	g := u.group
	n := u.fails.Add(1)
	if g.maxFails > 0 && int(n) >= g.maxFails {
		if u.downUntil.Load() == 0 || now.UnixNano() >= u.downUntil.Load() {
			u.m.ejections.Inc()
		}
		u.downUntil.Store(now.Add(g.failTimeout).UnixNano())
	}
}

// Group is the set of upstreams a route forwards to, with its balancing policy and health
// rules. It is safe for concurrent use by every loop.
type Group struct {
	name        string
	ups         []*Upstream
	policy      Policy
	maxFails    int
	failTimeout time.Duration
	turns       []paddedCounter // round-robin turn per loop
	hc          *healthCheck    // nil without active checks
}

// paddedCounter keeps each loop's counter on its own cache line.
type paddedCounter struct {
	n uint64
	_ [56]byte
}

// Upstreams returns the group's upstreams.
func (g *Group) Upstreams() []*Upstream { return g.ups }

// pick chooses an upstream for a request on loop idx, skipping ejected ones and avoid (the
// upstream a request just failed to connect to). When every upstream is ejected it takes the
// one whose ejection ends first (so a recovered group is found at once rather than after a
// full cool-down), as long as it is not avoid. It returns nil only when avoid is the only
// choice.
func (g *Group) pick(idx int, now time.Time, avoid *Upstream) *Upstream {
	n := len(g.ups)
	if n == 1 {
		if g.ups[0] == avoid {
			return nil
		}
		return g.ups[0]
	}
	t := &g.turns[idx%len(g.turns)]
	start := int(t.n % uint64(n))
	t.n++
	var best *Upstream
	if g.policy == LeastConn {
		for i := 0; i < n; i++ {
			u := g.ups[(start+i)%n]
			if u == avoid || !u.Admitted(now) {
				continue
			}
			if best == nil || u.active.Load() < best.active.Load() {
				best = u
			}
		}
	} else {
		for i := 0; i < n; i++ {
			if u := g.ups[(start+i)%n]; u != avoid && u.Admitted(now) {
				best = u
				break
			}
		}
	}
	if best != nil {
		return best
	}
	for _, u := range g.ups {
		if u == avoid {
			continue
		}
		if best == nil || u.downUntil.Load() < best.downUntil.Load() {
			best = u
		}
	}
	return best
}
