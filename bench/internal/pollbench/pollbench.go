// Package pollbench measures the poller backends the way libevent's bench.c does: N
// socketpairs, all watched for reading, A of them made active at the start of a run, and a
// chain of writes in which every byte read makes one more byte arrive on the next pair, until a
// fixed number of writes has fired. What is timed is dispatching: non-blocking Wait calls and
// the one-byte reads and writes they lead to. Registration happens before the clock starts.
//
// The point it shows is how the cost of one dispatch grows with the number of idle watched
// descriptors: flat for epoll, linear for poll and select, which scan every descriptor on
// every call.
package pollbench

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/reactord/reactord/poller"
	"golang.org/x/sys/unix"
)

// ErrBadConfig is returned for a configuration that cannot run.
var ErrBadConfig = errors.New("pollbench: bad config")

// Config describes one measurement point.
type Config struct {
	// Backend is a poller backend name ("epoll", "uring-poll", "poll", "select").
	Backend string
	// Pairs is N, the number of socketpairs watched, at least 1.
	Pairs int
	// Active is A, the number of pairs written at the start of each run (1 ≤ A ≤ N).
	Active int
	// Writes is the number of chained writes per run; 0 means Pairs, as in bench.c.
	Writes int
	// Runs is how many times to measure; the result is the median. 0 means 25.
	Runs int
}

// Result is the median over runs of one measurement point.
type Result struct {
	Backend string `json:"backend"`
	Pairs   int    `json:"pairs"`
	Active  int    `json:"active"`
	// PerRun is the time from the first dispatch to the last byte read.
	PerRun time.Duration `json:"per_run_ns"`
	// Dispatches is how many Wait calls one run made.
	Dispatches int `json:"dispatches"`
	// PerDispatch is PerRun / Dispatches: the cost of one trip through the poller with the
	// reads and writes it triggered.
	PerDispatch time.Duration `json:"per_dispatch_ns"`
	// Events is the number of readiness events handled in one run.
	Events int `json:"events"`
}

// Run measures one point. It opens 2·Pairs descriptors: the caller raises RLIMIT_NOFILE first.
// A backend that cannot watch that many (select past FD_SETSIZE) returns its Add error.
func Run(cfg Config) (Result, error) {
	if cfg.Pairs < 1 || cfg.Active < 1 || cfg.Active > cfg.Pairs || cfg.Writes < 0 || cfg.Runs < 0 {
		return Result{}, fmt.Errorf("%w: pairs %d active %d writes %d runs %d",
			ErrBadConfig, cfg.Pairs, cfg.Active, cfg.Writes, cfg.Runs)
	}
	if cfg.Writes == 0 {
		cfg.Writes = cfg.Pairs
	}
	if cfg.Runs == 0 {
		cfg.Runs = 25
	}
	p, err := poller.Open(cfg.Backend)
	if err != nil {
		return Result{}, err
	}
	defer p.Close()

	b := &bench{cfg: cfg, p: p, byFD: map[int]int{}}
	defer b.closePairs()
	if err := b.openPairs(); err != nil {
		return Result{}, err
	}

	perRun := make([]time.Duration, 0, cfg.Runs)
	var dispatches, events int
	for r := 0; r < cfg.Runs; r++ {
		d, n, ev, err := b.runOnce()
		if err != nil {
			return Result{}, err
		}
		perRun = append(perRun, d)
		dispatches, events = n, ev
	}
	slices.Sort(perRun)
	med := perRun[len(perRun)/2]
	res := Result{Backend: cfg.Backend, Pairs: cfg.Pairs, Active: cfg.Active, PerRun: med,
		Dispatches: dispatches, Events: events}
	if dispatches > 0 {
		res.PerDispatch = med / time.Duration(dispatches)
	}
	return res, nil
}

type bench struct {
	cfg   Config
	p     poller.Poller
	pairs [][2]int
	byFD  map[int]int // read end → pair index; looked up outside the kernel's time only
	idx   []int       // read end fd → pair index, dense, for the timed loop
	buf   [64]byte
}

func (b *bench) openPairs() error {
	for i := 0; i < b.cfg.Pairs; i++ {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("pollbench: socketpair %d of %d: %w", i, b.cfg.Pairs, err)
		}
		b.pairs = append(b.pairs, [2]int{fds[0], fds[1]})
		b.byFD[fds[0]] = i
		if err := b.p.Add(fds[0], poller.Readable); err != nil {
			return fmt.Errorf("pollbench: %s: add fd %d (pair %d): %w", b.cfg.Backend, fds[0], i, err)
		}
	}
	maxFD := 0
	for fd := range b.byFD {
		maxFD = max(maxFD, fd)
	}
	b.idx = make([]int, maxFD+1)
	for fd, i := range b.byFD {
		b.idx[fd] = i
	}
	return nil
}

func (b *bench) closePairs() {
	for _, pr := range b.pairs {
		_ = b.p.Remove(pr[0])
		_ = unix.Close(pr[0])
		_ = unix.Close(pr[1])
	}
}

// runOnce makes A pairs readable, then dispatches until every byte written has been read.
func (b *bench) runOnce() (time.Duration, int, int, error) {
	events := make([]poller.Event, 256)
	// Drain anything left over, so every run starts from the same state.
	for {
		n, err := b.p.Wait(events, 0)
		if err != nil {
			return 0, 0, 0, err
		}
		if n == 0 {
			break
		}
		for _, ev := range events[:n] {
			_, _ = unix.Read(ev.FD, b.buf[:])
		}
	}
	space := b.cfg.Pairs / b.cfg.Active
	fired := 0
	for i := 0; i < b.cfg.Active; i++ {
		if _, err := unix.Write(b.pairs[i*space][1], []byte{'e'}); err != nil {
			return 0, 0, 0, fmt.Errorf("pollbench: prime write: %w", err)
		}
		fired++
	}
	writes := b.cfg.Writes
	count, dispatches, handled := 0, 0, 0
	start := time.Now()
	for count != fired {
		n, err := b.p.Wait(events, 0)
		if err != nil {
			return 0, 0, 0, err
		}
		dispatches++
		for _, ev := range events[:n] {
			handled++
			r, err := unix.Read(ev.FD, b.buf[:1])
			if err != nil || r != 1 {
				continue
			}
			count++
			if writes > 0 {
				next := b.idx[ev.FD] + 1
				if next == len(b.pairs) {
					next = 0
				}
				if _, err := unix.Write(b.pairs[next][1], []byte{'e'}); err == nil {
					writes--
					fired++
				}
			}
		}
	}
	return time.Since(start), dispatches, handled, nil
}
