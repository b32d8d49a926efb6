package http

import (
	"context"
	"sync"
	"sync/atomic"
)

// workerPool runs adapter jobs on a fixed number of goroutines. Submitting never blocks the
// loop: the queue is a slice under a mutex. It stays bounded because a connection stops being
// read while it has WithMaxPipeline requests in flight, or any request in flight while the pool
// is saturated (see adConn.maybePause), so the queue holds at most about one request per
// connection beyond the pool's own backlog.
type workerPool struct {
	srv  *Server
	size int

	mu      sync.Mutex
	cond    *sync.Cond
	q       []*job
	head    int
	started bool
	closed  bool
	wg      sync.WaitGroup

	queued, running atomic.Int64
}

func newWorkerPool(s *Server, n int) *workerPool {
	p := &workerPool{srv: s, size: n}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *workerPool) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.closed {
		return
	}
	p.started = true
	p.wg.Add(p.size)
	for i := 0; i < p.size; i++ {
		go p.work()
	}
}

// stop lets the workers finish the queue and waits for them, or for ctx.
func (p *workerPool) stop(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// submit queues j; it reports false once the pool is stopped.
func (p *workerPool) submit(j *job) bool {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	if p.head > 256 && p.head*2 > len(p.q) {
		// Slide the live part to the front so a busy queue does not grow for ever.
		n := copy(p.q, p.q[p.head:])
		clear(p.q[n:])
		p.q, p.head = p.q[:n], 0
	}
	p.q = append(p.q, j)
	p.queued.Add(1)
	p.mu.Unlock()
	p.cond.Signal()
	return true
}

// saturated reports whether requests are waiting for a worker.
func (p *workerPool) saturated() bool { return p.queued.Load() >= int64(p.size) }

func (p *workerPool) work() {
	defer p.wg.Done()
	w := &worker{pool: p}
	for {
		p.mu.Lock()
		for p.head == len(p.q) && !p.closed {
			p.cond.Wait()
		}
		if p.head == len(p.q) {
			p.mu.Unlock()
			return
		}
		j := p.q[p.head]
		p.q[p.head] = nil
		p.head++
		if p.head == len(p.q) {
			p.q, p.head = p.q[:0], 0
		}
		p.queued.Add(-1)
		p.running.Add(1)
		p.mu.Unlock()
		w.run(j)
		p.running.Add(-1)
	}
}
