package poller

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// kernelWaker is the kernel half of Wake: an eventfd, a self-pipe or a kqueue EVFILT_USER
// event that makes a blocked Wait return.
type kernelWaker interface {
	// signal makes the kernel wait return. It is called with lifecycle.wmu held and never
	// after close.
	signal() error
	// drain resets the signal so the next wait blocks again. Owner goroutine only.
	drain()
	// close releases the waker's fds. Called once, from Close, with no Wait running.
	close() error
}

// lifecycle is embedded in front, the part of a Poller every backend shares. It holds the
// owner lock that orders Add/Modify/Remove/Wait against Close, and the coalescing wake-up
// state.
//
// Why an owner lock at all, when those calls come from one goroutine? Because Close may come
// from any goroutine, and must not close the epoll/kqueue fd (whose number the kernel may hand
// out again at once) while the owner is inside epoll_wait on it, or about to enter it. The
// lock is uncontended in steady state, so it costs a few nanoseconds per call.
type lifecycle struct {
	name  string
	owner sync.Mutex // held by Add, Modify, Remove, Wait and the second half of Close

	// wmu orders Wake's kernel write against Close: closed is set and the wake fd is closed
	// only with wmu held, and Wake writes only with wmu held after seeing closed == false,
	// so Wake never writes to a closed fd, nor to an unrelated file that reused its number.
	wmu     sync.Mutex
	closed  atomic.Bool
	pending atomic.Uint32 // 1 while a wake-up has been written and not yet drained
	k       kernelWaker
}

// Name returns the backend's name.
func (l *lifecycle) Name() string { return l.name }

// Wake makes a blocked or the next Wait return. Many calls coalesce: only the call that moves
// pending from 0 to 1 writes to the kernel; Wait clears pending after draining. It is safe from
// any goroutine and returns ErrClosed after Close.
func (l *lifecycle) Wake() error {
	if l.closed.Load() {
		return ErrClosed
	}
	if l.pending.Swap(1) != 0 {
		return nil // a wake-up is already on its way; the Wait it releases serves us too
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	if err := l.k.signal(); err != nil {
		// Nothing reached the kernel: let the next Wake try again rather than coalescing
		// into a wake-up that will never come.
		l.pending.Store(0)
		return fmt.Errorf("poller: %s: wake: %w", l.name, err)
	}
	return nil
}

// drained is called by Wait when it has seen the wake fd ready. It drains the kernel signal
// first and clears pending second: a Wake that lands in between sees pending == 1 and skips
// its write, which is fine because this Wait is about to return anyway; the opposite order
// could leave pending == 1 with no signal in the kernel and lose every later wake-up.
// Swap (not Store) makes the clear observe the last Wake's write, so whatever that Wake's
// caller did before calling it happens before Wait returns.
func (l *lifecycle) drained() {
	l.k.drain()
	l.pending.Swap(0)
}

// lock takes the owner lock for Add, Modify, Remove or Wait, or reports ErrClosed.
func (l *lifecycle) lock() error {
	l.owner.Lock()
	if l.closed.Load() {
		l.owner.Unlock()
		return ErrClosed
	}
	return nil
}

// beginClose marks the poller closed and signals the kernel waker so that a Wait blocked on
// another goroutine returns (it then sees closed and reports ErrClosed). The caller then takes
// the owner lock, which waits for that Wait to leave the kernel, and closes its fds.
func (l *lifecycle) beginClose() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	l.closed.Store(true)
	// Best effort: if the signal fails the owner is not blocked in the kernel, or will find
	// closed set before it blocks again.
	_ = l.k.signal()
	return nil
}

// finishClose runs after beginClose: it waits for the owner to leave Wait, then releases the
// backend's kernel fd (closeFD) and the waker.
func (l *lifecycle) finishClose(closeFD func() error) error {
	l.owner.Lock()
	defer l.owner.Unlock()
	err1 := closeFD()
	err2 := l.k.close()
	if err1 != nil {
		return fmt.Errorf("poller: %s: close: %w", l.name, err1)
	}
	if err2 != nil {
		return fmt.Errorf("poller: %s: close wake-up fd: %w", l.name, err2)
	}
	return nil
}

// deadline returns when a Wait with this timeout must end (zero for timeout <= 0).
func deadline(timeout time.Duration) time.Time {
	if timeout <= 0 {
		return time.Time{}
	}
	return time.Now().Add(timeout)
}

// expired reports whether a Wait that found nothing should return: it polls (timeout 0), or
// its deadline has passed. A blocking Wait (timeout < 0) never expires. Backends loop when a
// kernel wait returns early with nothing to report, so the timeout is a true lower bound.
func expired(dl time.Time, timeout time.Duration) bool {
	if timeout < 0 {
		return false
	}
	return timeout == 0 || !time.Now().Before(dl)
}

// msec converts a remaining timeout to the milliseconds epoll_wait and poll take. It rounds
// UP: rounding 1.5ms down to 1ms (or 0.5ms to 0) would return early and make the caller spin
// through several zero-timeout waits before its timer is due. Negative means block forever.
// Very long timeouts are capped at MaxInt32 ms (24 days); Wait then simply waits again.
func msec(d time.Duration) int {
	if d < 0 {
		return -1
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(ms)
}

// errEmptyOut is returned by Wait for an empty event slice.
var errEmptyOut = fmt.Errorf("poller: Wait needs a non-empty event slice: %w", ErrInvalidArgument)
