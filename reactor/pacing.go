package reactor

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// pacer lets goroutines that write with AsyncWriteContext wait until a connection's output
// backlog has drained. A connection gets one with its first AsyncWriteContext; until then
// AsyncWrite costs nothing extra, and the loop never looks for one on its hot path but once
// per flush (an atomic pointer load).
//
// The backlog is what the goroutines can see of the connection's output: shown, the loop's
// Buffered() as published after every flush and every append of posted bytes, plus queued,
// the bytes posted by AsyncWrite and AsyncWriteContext that the loop has not appended yet.
type pacer struct {
	queued  atomic.Int64
	shown   atomic.Int64
	waiters atomic.Int32 // goroutines between enter and leave
	mu      sync.Mutex
	ch      chan struct{} // closed by wake; made by the first waiter after a wake
}

func (pc *pacer) backlog() int64 { return pc.shown.Load() + pc.queued.Load() }

// enter registers a waiter and returns the channel wake will close. The waiter must check the
// backlog again after enter (the loop may have drained it just before) and call leave.
func (pc *pacer) enter() <-chan struct{} {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.ch == nil {
		pc.ch = make(chan struct{})
	}
	pc.waiters.Add(1)
	return pc.ch
}

func (pc *pacer) leave() { pc.waiters.Add(-1) }

// wake releases every waiter. Any goroutine.
func (pc *pacer) wake() {
	pc.mu.Lock()
	if pc.ch != nil {
		close(pc.ch)
		pc.ch = nil
	}
	pc.mu.Unlock()
}

// publish records the connection's pending output (loop goroutine) and wakes the waiters once
// the backlog is at or below the low-water mark. The store comes before the load of waiters,
// and a waiter's enter before its second look at the backlog: either the loop sees the waiter
// or the waiter sees the drained backlog.
func (pc *pacer) publish(buffered, low int) {
	pc.shown.Store(int64(buffered))
	if pc.waiters.Load() > 0 && pc.backlog() <= int64(low) {
		pc.wake()
	}
}

// pacer returns the connection's pacer, making it on first use. Any goroutine.
func (c *Conn) pacer() *pacer {
	if pc := c.pacerIfAny(); pc != nil {
		return pc
	}
	x := c.extra()
	x.pace.CompareAndSwap(nil, &pacer{})
	return x.pace.Load()
}

// AsyncWriteContext is AsyncWrite for a goroutine that must be paced by the connection's
// watermarks (WithWatermarks): a producer streaming to a client, which must not buffer more
// than the client takes. When the connection's output backlog (its pending output plus bytes
// posted by AsyncWrite and AsyncWriteContext that the loop has not appended yet) is at or above
// the high-water mark, it waits until the loop has written it down to the low-water mark, then
// queues a copy of p like AsyncWrite. The backlog thus stays within the high-water mark plus
// one p per writing goroutine, and the writer resumes as soon as the client reads.
//
// It is safe from any goroutine. ctx bounds only the wait: when ctx is done first it returns
// ctx.Err() and nothing of p is queued. Other errors: ErrInvalidArgument for a nil ctx,
// ErrConnClosed once Close was requested or the connection closed (waiters are released
// then), ErrLoopClosed once the loop has stopped, and ErrCalledOnLoop when it would have to
// wait on a loop goroutine (a loop never waits; loop code checks OutputFull and continues
// from OnWritable instead). Calls from one goroutine keep their order, and the bytes of one
// call stay contiguous, also relative to AsyncWrite.
func (c *Conn) AsyncWriteContext(ctx context.Context, p []byte) error {
	if ctx == nil {
		return fmt.Errorf("%w: AsyncWriteContext(nil, ...)", ErrInvalidArgument)
	}
	if c.state.Load() != connOpen {
		return ErrConnClosed
	}
	if len(p) == 0 {
		return nil
	}
	pc := c.pacer()
	high := int64(c.loop.opt.high)
	checkedLoop := false
	for pc.backlog() >= high {
		if !checkedLoop {
			if currentLoop() != nil {
				return ErrCalledOnLoop
			}
			checkedLoop = true
		}
		ch := pc.enter()
		if pc.backlog() < high || c.state.Load() != connOpen {
			pc.leave()
			break
		}
		select {
		case <-ch:
			pc.leave()
		case <-ctx.Done():
			pc.leave()
			return ctx.Err()
		}
		if c.state.Load() != connOpen {
			return ErrConnClosed
		}
	}
	if c.state.Load() != connOpen {
		return ErrConnClosed
	}
	return c.asyncWrite(p, pc)
}

// asyncWrite posts a copy of p to be appended on the loop, counting it in pc's backlog if the
// connection has a pacer.
func (c *Conn) asyncWrite(p []byte, pc *pacer) error {
	data := make([]byte, len(p))
	copy(data, p)
	t := task{op: opWrite, c: c, data: data}
	if pc != nil {
		pc.queued.Add(int64(len(p)))
		t.counted = true
	}
	if err := c.loop.post(t); err != nil {
		if pc != nil {
			pc.queued.Add(-int64(len(p)))
		}
		return err
	}
	return nil
}

// asyncAppended runs on the loop once a counted AsyncWrite's n bytes were appended (or dropped,
// the connection having closed): they move from queued to shown.
func (c *Conn) asyncAppended(n int) {
	pc := c.pacerIfAny()
	pc.shown.Store(int64(c.Buffered()))
	pc.queued.Add(-int64(n))
	if c.flags&fClosed != 0 {
		pc.wake()
	}
}
