package reactor

import (
	"sync"
	"sync/atomic"
	"time"
)

// handshakePool runs TLS handshakes on a bounded set of goroutines, shared by the server's
// TLS listeners. Loops submit a connection once its whole ClientHello has arrived; a worker
// runs crypto/tls's handshake over the connection's transport and posts the result back to
// the loop. Connections wait in a FIFO queue (no goroutine each) while every worker is busy.
// Workers start on demand and exit after workerIdle without work, so an idle server holds
// none.
type handshakePool struct {
	max int

	mu      sync.Mutex
	queue   []*tlsSession // FIFO: queue[head:]
	head    int
	workers int  // live worker goroutines
	idle    int  // workers waiting for work
	closed  bool // close was called: no new work, workers exit
	notify  chan struct{}
	quit    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup

	active atomic.Int64 // handshakes running now
	queued atomic.Int64 // sessions waiting for a worker
	live   atomic.Int64 // workers, for Stats
}

// workerIdle is how long a worker waits for work before it exits.
const workerIdle = 2 * time.Second

func newHandshakePool(max int) *handshakePool {
	return &handshakePool{max: max, notify: make(chan struct{}, max), quit: make(chan struct{})}
}

// submit queues ts for a handshake. Loop goroutine; it never waits.
func (p *handshakePool) submit(ts *tlsSession) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return // the server is closing: its loops close the connection
	}
	p.queue = append(p.queue, ts)
	p.queued.Add(1)
	start := p.idle == 0 && p.workers < p.max
	if start {
		p.workers++
		p.live.Add(1)
		p.wg.Add(1)
	}
	p.mu.Unlock()
	if start {
		go p.work()
		return
	}
	// An idle worker takes it, or a busy one finds it when it finishes. A token may be left
	// over; a worker it wakes finds the queue empty and waits again.
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// next takes the first queued session, or nil.
func (p *handshakePool) next() *tlsSession {
	if p.head == len(p.queue) {
		return nil
	}
	ts := p.queue[p.head]
	p.queue[p.head] = nil
	p.head++
	if p.head == len(p.queue) {
		p.queue, p.head = p.queue[:0], 0
	}
	p.queued.Add(-1)
	return ts
}

func (p *handshakePool) work() {
	defer p.wg.Done()
	timer := time.NewTimer(workerIdle)
	defer timer.Stop()
	for {
		p.mu.Lock()
		if ts := p.next(); ts != nil {
			p.mu.Unlock()
			p.run(ts)
			continue
		}
		if p.closed {
			p.exit()
			return
		}
		p.idle++
		p.mu.Unlock()
		timer.Reset(workerIdle)
		select {
		case <-p.notify:
			p.mu.Lock()
			p.idle--
			p.mu.Unlock()
		case <-p.quit:
			p.mu.Lock()
			p.idle--
			p.mu.Unlock()
		case <-timer.C:
			p.mu.Lock()
			p.idle--
			// Work queued between the wait and now (submit saw this worker idle and started
			// none) is taken before leaving.
			if p.head == len(p.queue) {
				p.exit()
				return
			}
			p.mu.Unlock()
		}
	}
}

// exit retires the calling worker; p.mu is held and released.
func (p *handshakePool) exit() {
	p.workers--
	p.live.Add(-1)
	p.mu.Unlock()
}

// run performs one handshake and posts its result to the connection's loop. A connection
// closed while it waited is skipped; one closed during the handshake makes the transport's
// reads fail, which ends it.
func (p *handshakePool) run(ts *tlsSession) {
	in := &ts.hs.in
	in.mu.Lock()
	closed := in.closed
	in.mu.Unlock()
	if closed {
		return
	}
	p.active.Add(1)
	// Background has no Done channel, so crypto/tls starts nothing to watch it; the loop's
	// handshake timeout closes the input instead, which fails the read in progress.
	err := ts.tc.Handshake()
	p.active.Add(-1)
	c := ts.c
	out := ts.hs.pending
	ts.hs.pending = nil
	c.loop.post(task{op: opFunc, f: func() {
		if len(out) > 0 {
			c.appendSealed(out)
		}
		c.handshakeDone(err)
	}})
}

// close stops the pool: queued sessions are dropped (their loops have closed or are closing
// their connections), idle workers exit, busy ones after their handshake, which the closing
// connections end promptly. With wait it returns once every worker has exited.
func (p *handshakePool) close(wait bool) {
	p.once.Do(func() {
		p.mu.Lock()
		p.closed = true
		for p.next() != nil {
		}
		p.mu.Unlock()
		close(p.quit)
	})
	if wait {
		p.wg.Wait()
	}
}
