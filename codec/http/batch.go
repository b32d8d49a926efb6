package http

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/reactord/reactord/reactor"
)

// A batch is what the worker pool runs: the adapter requests of one connection dispatched by
// one OnData call, in request order — a single request, or pipelined requests with safe
// methods (an unsafe or upgrading request is always alone in its batch).
//
// Why batches: handing every pipelined request to a worker goroutine of its own, and every
// response back to the loop with a task of its own, made the hand-offs (pool lock, channel,
// goroutine switch, loop task) the largest cost of a pipelined request after the handler's
// own work. A batch is handed over once: the worker that takes it runs its requests back to
// back, and the loop is told once when they are done.
//
// Blocking handlers still block only their worker: whenever a goroutine takes a request of
// the batch while later ones are untaken, it makes sure a helper submission of the batch is
// pending in the pool. If the request's handler blocks (or runs while another CPU is free),
// the helper runs, announces the responses finished so far to the loop, and takes the next
// request, again leaving a helper behind if more remain. So every request starts as soon as
// the one before it has started and either blocked or finished, as with a goroutine per
// request; when nothing blocks, the helper finds the batch done and costs one goroutine
// switch per batch.
//
// Ownership: jobs, loop and notify are written by the loop before the first submission and
// only read afterwards (the pool's lock and channel order them). claim hands each job to
// exactly one goroutine. A job's results are published by its fin flag; announcements go to
// the loop as posts of notify, the connection's progress callback, so a post never refers to
// the batch itself and may run after the batch was recycled. refs counts the loop's reference
// (held while any job of the batch is in the connection's queue) and one per submission that
// has not returned; the last to drop its reference puts the batch back in batchPool.
type batch struct {
	jobs   []*job
	loop   *reactor.Loop
	notify func() // the connection's progress callback (adConn.progress), posted to the loop

	claim  atomic.Int32 // jobs[:claim] have been taken by a goroutine
	helper atomic.Bool  // a helper submission is pending: submitted, not yet started
	dirty  atomic.Bool  // jobs finished since the last announcement to the loop
	refs   atomic.Int32

	left      int        // loop goroutine: jobs of the batch still in the connection's queue
	unstarted *loopState // counted in its unstarted until the first worker begins
	enq       time.Time  // when the pending submission was queued (pool lock)
}

var batchPool sync.Pool

// newBatch returns an empty batch for the loop to fill (loop goroutine).
func newBatch() *batch {
	b, _ := batchPool.Get().(*batch)
	if b == nil {
		b = &batch{}
	}
	b.claim.Store(0)
	return b
}

// unref drops a reference; the last one recycles the batch. Any goroutine.
func (b *batch) unref() {
	if b.refs.Add(-1) != 0 {
		return
	}
	clear(b.jobs)
	b.jobs = b.jobs[:0]
	b.loop, b.notify = nil, nil
	batchPool.Put(b)
}

// leave is called by the loop when j leaves its connection's queue (answered, dropped, or
// taken over by Hijack): the batch is released by the loop once none of its jobs is queued.
func (j *job) leave() {
	b := j.b
	if b == nil {
		return
	}
	j.b = nil
	b.left--
	if b.left == 0 {
		b.unref()
	}
}

// work runs jobs of b on a worker goroutine until none is left untaken, then announces what
// it finished. It is the entry of every submission of b, the first and the helpers alike.
func (b *batch) work(wk *worker) {
	if ls := b.unstarted; ls != nil {
		// Only the first submission is counted; helpers are submitted after this.
		b.unstarted = nil
		ls.unstarted.Add(-1)
	}
	// A helper starts because the goroutine that submitted it blocked or another CPU is
	// free: the responses finished meanwhile go to the loop now, not when that goroutine
	// gets to announce them.
	b.helper.Store(false)
	if b.dirty.Load() {
		b.announce()
	}
	n := int32(len(b.jobs))
	for {
		i := b.claim.Add(1) - 1
		if i >= n {
			break
		}
		if i+1 < n {
			b.wantHelper(wk.pool)
		}
		if !b.jobs[i].run(wk) {
			// Hijacked: the connection left HTTP and this goroutine left the pool with
			// it. A hijacking request is the last of its connection's queue, so nothing
			// of the batch is left to take.
			break
		}
		b.dirty.Store(true)
	}
	loop, notify := b.loop, b.notify
	post := b.dirty.Swap(false)
	b.unref() // b may be recycled from here on
	if post {
		// If the loop is gone, so is the connection: nothing is left to do.
		_ = loop.Post(notify)
	}
}

// announce tells the loop that jobs finished.
func (b *batch) announce() {
	if b.dirty.Swap(false) {
		_ = b.loop.Post(b.notify)
	}
}

// wantHelper makes sure a helper submission of b is pending. If the pool refuses it (stopped,
// or its queue is full), the batch goes on without one: its requests run one after another.
func (b *batch) wantHelper(p *workerPool) {
	if b.helper.Load() || !b.helper.CompareAndSwap(false, true) {
		return
	}
	b.refs.Add(1)
	if _, err := p.submit(b, nil); err != nil {
		b.helper.Store(false)
		b.refs.Add(-1) // never the last: the caller holds one
	}
}
