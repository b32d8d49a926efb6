package http

import (
	"runtime"
	"sync/atomic"
	"time"

	"github.com/reactord/reactord/reactor"
)

// loopState is the codec's per-loop state: the Date cache, the response writer and scratch
// output shared by every connection of the loop (handlers never run concurrently on one loop),
// idle parsers, and the request counters. The Server owns one per loop, indexed by
// Loop.Index(), so the loop's own Context slot stays free for embedders.
type loopState struct {
	srv  *Server
	loop *reactor.Loop
	base time.Time // origin of nowNs

	date DateCache
	w    ResponseWriter
	out  []byte // scratch: the responses of one OnData, written to the connection at once
	ebuf []byte // scratch for the ErrorBody hook

	appendErr errorAppender // the server's error responses, with ebuf as the hook's scratch
	info      RequestInfo

	parsers []*Parser // parsers of connections that went idle, for reuse
	jobs    []*job    // adapter jobs answered and reset, for reuse

	requests, rejected       uint64 // loop goroutine only
	pubRequests, pubRejected atomic.Uint64

	active    *conn                           // connections with requests answered elsewhere (doubly linked)
	upgraded  map[*reactor.Conn]*upgradedConn // connections handed to another protocol's handler
	upPending reactor.Handler                 // set by ResponseWriter.Upgrade during a handler call

	deferFree []*Deferred // deferred responses for reuse (deferred.go)
	curReq    *Request    // the request a native handler is running for, for Defer
	curLen    int         // its bytes on the wire
	deferred  bool        // the running handler called Defer

	unstarted atomic.Int64 // batches handed to a worker that has not begun them (see yieldSoon)
	yieldSet  bool         // yieldFn is posted for this iteration
	yieldFn   func()
}

// scratchFlush is the scratch size at which responses are handed to the connection before the
// next request is parsed, so OutputFull is checked against what was produced.
const scratchFlush = 32 << 10

// scratchKeep bounds the scratch capacity kept between OnData calls.
const scratchKeep = 256 << 10

// maxIdleParsers bounds the parsers a loop keeps for reuse.
const maxIdleParsers = 1024

// loopStateOf returns the state of loop l, creating it (and its Date timer) on first use,
// which is always on l's goroutine (OnOpen). Any goroutine may read the table; only creation
// takes the lock, and it publishes a new copy of the table (loops are few and fixed).
func (s *Server) loopStateOf(l *reactor.Loop) *loopState {
	if p := s.lstab.Load(); p != nil {
		if i := l.Index(); i < len(*p) && (*p)[i] != nil {
			return (*p)[i]
		}
	}
	ls := &loopState{srv: s, loop: l, base: l.Now(), out: make([]byte, 0, 4096)}
	ls.appendErr = func(dst []byte, err error, date []byte) []byte {
		return s.cfg.appendError(dst, err, date, &ls.ebuf)
	}
	ls.date.Update(time.Now())
	ls.w.SetDateCache(&ls.date)
	ls.w.server = s.cfg.serverName
	// The Date header changes once a second: a loop timer refreshes the cache, re-aligned to
	// just after each second boundary so the value is never a whole second stale.
	var t *reactor.Timer
	t = l.Every(time.Second, func() {
		now := time.Now()
		ls.date.Update(now)
		t.Reset(time.Second - time.Duration(now.Nanosecond()) + time.Millisecond)
	})
	t.Reset(time.Second - time.Duration(time.Now().Nanosecond()) + time.Millisecond)
	s.mu.Lock()
	var tab []*loopState
	if p := s.lstab.Load(); p != nil {
		tab = *p
	}
	n := max(len(tab), l.Index()+1)
	grown := make([]*loopState, n)
	copy(grown, tab)
	grown[l.Index()] = ls
	s.lstab.Store(&grown)
	s.mu.Unlock()
	return ls
}

// loopStates returns every loop state created so far. Any goroutine.
func (s *Server) loopStates() []*loopState {
	if p := s.lstab.Load(); p != nil {
		return *p
	}
	return nil
}

// yieldSoon, called after a batch was handed to a worker goroutine, posts once per loop iteration
// a task that gives the loop's CPU to such workers if they have not started by then.
//
// Why: the loop runs on a locked OS thread. A worker readied by it can run only on another
// thread with a P of its own; when every P is taken (GOMAXPROCS=1, or all busy) the workers
// wait until the loop blocks in the poller and the runtime's monitor takes the P away from
// the blocked thread, tens of microseconds later, after which the finished responses wake the
// loop through the poller again. Yielding at the end of the iteration (runtime.Gosched, in a
// task that runs after every event and timer of the iteration) hands the P over at once: quick
// handlers finish, post their responses (without a wake-up, the loop is not asleep) and the
// loop carries on — one hand-off per iteration, however many requests it dispatched. With an
// idle P the runtime has started the workers already and the task does nothing.
func (ls *loopState) yieldSoon() {
	if ls.yieldSet {
		return
	}
	if ls.yieldFn == nil {
		ls.yieldFn = ls.yield
	}
	if ls.loop.Post(ls.yieldFn) == nil {
		ls.yieldSet = true
	}
}

// countUnstarted counts b until a worker begins it (batch.work), before b is handed over. A
// nil ls (a helper submitted by a worker) counts nothing.
func (ls *loopState) countUnstarted(b *batch) {
	if ls == nil {
		return
	}
	b.unstarted = ls
	ls.unstarted.Add(1)
}

func (ls *loopState) yield() {
	ls.yieldSet = false
	if ls.unstarted.Load() > 0 {
		runtime.Gosched()
	}
}

// nowNs is the loop's cached clock in nanoseconds since base.
func (ls *loopState) nowNs() int64 { return int64(ls.loop.Now().Sub(ls.base)) }

// timeAt converts a nowNs value back to a time.
func (ls *loopState) timeAt(ns int64) time.Time { return ls.base.Add(time.Duration(ns)) }

func (ls *loopState) getParser() *Parser {
	if n := len(ls.parsers); n > 0 {
		p := ls.parsers[n-1]
		ls.parsers[n-1] = nil
		ls.parsers = ls.parsers[:n-1]
		return p
	}
	p := &Parser{lim: ls.srv.cfg.limits.withDefaults()}
	p.chunk.init(p.lim)
	_, native := ls.srv.h.(BodyStreamer)
	if ls.srv.ad != nil || native {
		// The adapter, and a native BodyStreamer, stream large and chunked bodies;
		// Limits.MaxBodyBytes bounds them only when it was set.
		p.streamMin, p.streamCap = streamMin, ls.srv.cfg.limits.MaxBodyBytes
	}
	return p
}

func (ls *loopState) putParser(p *Parser) {
	if len(ls.parsers) >= maxIdleParsers {
		return
	}
	p.Reset()
	ls.parsers = append(ls.parsers, p)
}

func (ls *loopState) publish() {
	ls.pubRequests.Store(ls.requests)
	ls.pubRejected.Store(ls.rejected)
}

// addActive and removeActive keep the list of connections with requests answered elsewhere.
// Only connections with adapter state (cs.ad) are ever on it.
func (ls *loopState) addActive(cs *conn) {
	cs.ad.nextA = ls.active
	if ls.active != nil {
		ls.active.ad.prevA = cs
	}
	ls.active = cs
}

func (ls *loopState) removeActive(cs *conn) {
	ad := cs.ad
	if ad.prevA != nil {
		ad.prevA.ad.nextA = ad.nextA
	} else if ls.active == cs {
		ls.active = ad.nextA
	}
	if ad.nextA != nil {
		ad.nextA.ad.prevA = ad.prevA
	}
	ad.prevA, ad.nextA = nil, nil
}
