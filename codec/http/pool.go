package http

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// workerPool runs adapter batches (batch.go: the requests of one connection dispatched
// together) on goroutines that are started on demand, up to max at once, and retired after
// idleRetire without work (keeping minIdle). A batch submitted while every one of the max
// workers is busy waits in a FIFO queue; with maxQueue > 0 a batch that would make the queue
// longer is refused (its first request is answered 503). Submitting never blocks the loop.
//
// Why it grows: a handler that blocks (a slow backend, a long poll) holds its worker. With a
// small fixed pool a few slow routes take every worker and every other route queues behind
// them — an outage of the whole server caused by one route, which net/http (a goroutine per
// connection) does not have. Growing to a generous cap keeps fast routes fast while slow ones
// block, and the cap (WithWorkers) plus the queue bound (WithMaxQueue) are the operator's
// limits on memory and on latency under overload.
type workerPool struct {
	srv      *Server
	max      int
	maxQueue int
	minIdle  int

	mu      sync.Mutex
	idle    []*worker // idle workers, most recently idle last
	q       []*batch
	head    int
	n       int // live worker goroutines
	closed  bool
	reaping bool
	exited  *sync.Cond     // signalled when a worker exits after closed
	gids    map[int64]bool // goroutine ids of live workers (Close/Shutdown from a handler)
	reaper  *time.Timer

	queued, running, live atomic.Int64
	dequeued, shed        atomic.Uint64
	waitNs                atomic.Int64 // total time batches spent queued
	hijacked              atomic.Int64 // workers that left the pool's count with Hijack
}

// idleRetire is how long a worker waits for work before it exits (above minIdle).
const idleRetire = 5 * time.Second

type worker struct {
	pool      *workerPool
	jobs      chan *batch // nil: retire
	idleSince time.Time
	gid       int64
	detached  atomic.Bool // hijacked: no longer counted
}

func newWorkerPool(s *Server, max, maxQueue int) *workerPool {
	p := &workerPool{srv: s, max: max, maxQueue: maxQueue, minIdle: min(max, 2*runtime.GOMAXPROCS(0)),
		gids: make(map[int64]bool)}
	p.exited = sync.NewCond(&p.mu)
	return p
}

// submit hands b to an idle worker, a new one, or the queue. It returns nil on success,
// errUnavailable once the pool is stopped, and ErrOverloaded when the queue is full. handed
// reports that a worker was given the batch directly (it runs as soon as it gets a CPU). ls is
// the submitting loop, which counts the batch until a worker begins it (see yieldSoon); nil
// for a helper submitted by a worker (see batch.wantHelper), which is never counted as shed.
func (p *workerPool) submit(b *batch, ls *loopState) (handed bool, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false, errUnavailable
	}
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		p.running.Add(1)
		ls.countUnstarted(b)
		w.jobs <- b
		return true, nil
	}
	if p.n < p.max {
		p.n++
		p.live.Add(1)
		p.mu.Unlock()
		p.running.Add(1)
		ls.countUnstarted(b)
		go p.work(b)
		return true, nil
	}
	if p.maxQueue > 0 && len(p.q)-p.head >= p.maxQueue {
		p.mu.Unlock()
		if ls != nil {
			p.shed.Add(1)
		}
		return false, ErrOverloaded
	}
	if p.head > 256 && p.head*2 > len(p.q) {
		// Slide the live part to the front so a busy queue does not grow for ever.
		n := copy(p.q, p.q[p.head:])
		clear(p.q[n:])
		p.q, p.head = p.q[:n], 0
	}
	b.enq = time.Now()
	p.q = append(p.q, b)
	p.queued.Add(1)
	p.mu.Unlock()
	return false, nil
}

// work is one worker goroutine, started with its first batch.
func (p *workerPool) work(b *batch) {
	w := &worker{pool: p, jobs: make(chan *batch, 1), gid: goroutineID()}
	p.mu.Lock()
	p.gids[w.gid] = true
	p.mu.Unlock()
	for b != nil {
		b.work(w)
		if w.detached.Load() {
			break
		}
		p.running.Add(-1)
		b = p.next(w)
	}
	p.mu.Lock()
	delete(p.gids, w.gid)
	if !w.detached.Load() {
		p.n--
		p.live.Add(-1)
	}
	p.exited.Broadcast()
	p.mu.Unlock()
}

// detach takes a worker whose handler hijacked its connection out of the pool's count: the
// handler now serves a connection that is no longer HTTP, for as long as it likes, as a
// goroutine of its own (Close and Shutdown do not wait for it, as with net/http).
func (p *workerPool) detach(w *worker) {
	p.mu.Lock()
	if !w.detached.Load() {
		w.detached.Store(true)
		p.n--
		p.live.Add(-1)
		p.running.Add(-1)
		p.hijacked.Add(1)
		p.exited.Broadcast()
	}
	p.mu.Unlock()
}

// next returns the worker's next batch: the head of the queue, or whatever is handed to it
// while it waits on the idle stack; nil when it is retired or the pool stops.
func (p *workerPool) next(w *worker) *batch {
	p.mu.Lock()
	if p.head < len(p.q) {
		b := p.q[p.head]
		p.q[p.head] = nil
		p.head++
		if p.head == len(p.q) {
			p.q, p.head = p.q[:0], 0
		}
		p.queued.Add(-1)
		p.dequeued.Add(1)
		p.waitNs.Add(int64(time.Since(b.enq)))
		p.running.Add(1)
		p.mu.Unlock()
		return b
	}
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	w.idleSince = time.Now()
	p.idle = append(p.idle, w)
	if len(p.idle) > p.minIdle && !p.reaping {
		p.reaping = true
		if p.reaper == nil {
			p.reaper = time.AfterFunc(idleRetire, p.reap)
		} else {
			p.reaper.Reset(idleRetire)
		}
	}
	p.mu.Unlock()
	return <-w.jobs
}

// reap retires workers idle for idleRetire or more, keeping minIdle, and re-arms itself while
// there are more idle workers than that.
func (p *workerPool) reap() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reaping = false
	if p.closed {
		return
	}
	now := time.Now()
	// The oldest idle workers are at the bottom of the stack.
	k := 0
	for k < len(p.idle)-p.minIdle && now.Sub(p.idle[k].idleSince) >= idleRetire {
		p.idle[k].jobs <- nil
		k++
	}
	n := copy(p.idle, p.idle[k:])
	clear(p.idle[n:])
	p.idle = p.idle[:n]
	if len(p.idle) > p.minIdle {
		p.reaping = true
		wait := idleRetire - now.Sub(p.idle[0].idleSince)
		p.reaper.Reset(max(wait, time.Millisecond))
	}
}

// isWorker reports whether the calling goroutine is one of the pool's workers.
func (p *workerPool) isWorker() bool {
	gid := goroutineID()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gids[gid]
}

// stop refuses new batches, lets the workers finish the queue, and waits for them to exit, or for
// ctx. When called from a worker (a handler closing its own server) it does not wait for that
// worker, which exits once its handler returns.
func (p *workerPool) stop(ctx context.Context) error {
	self := p.isWorker()
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		for _, w := range p.idle {
			w.jobs <- nil
		}
		p.idle = nil
		if p.reaper != nil {
			p.reaper.Stop()
		}
	}
	p.mu.Unlock()
	keep := 0
	if self {
		keep = 1
	}
	done := make(chan struct{})
	go func() {
		p.mu.Lock()
		for p.n > keep {
			p.exited.Wait()
		}
		p.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// goroutineID returns the calling goroutine's id, or 0 if it cannot be read. Go exposes no API
// for it; the first line of the goroutine's own stack trace, "goroutine 123 [running]:", has
// carried it in this form since Go 1.0. Used only when a worker starts and in Close/Shutdown.
func goroutineID() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	const prefix = "goroutine "
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return 0
	}
	var id int64
	for _, c := range b[len(prefix):] {
		if c < '0' || c > '9' {
			return id
		}
		id = id*10 + int64(c-'0')
	}
	return 0
}
