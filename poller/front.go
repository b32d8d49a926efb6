package poller

import (
	"fmt"
	"math"
	"time"

	"golang.org/x/sys/unix"
)

// ops is the kernel half of one backend, the part that differs from backend to backend: Redis
// ae's aeApiAddEvent/aeApiDelEvent/aeApiPoll, libevent's eventop. Everything the backends
// share lives in front: argument checks, the owner lock, the table of watched fds and their
// interests, the "already registered" and "not registered" answers, EINTR, the deadline, the
// wake-up bookkeeping and the wrapping of errors. So an ops implementation holds only kernel
// calls and the kernel's own data structures (an epoll fd, a pollfd array, fd sets, a ring).
//
// Every method is called with the owner lock held, never concurrently with another, and never
// after close. Errors are returned bare (a unix.Errno, typically); front wraps them.
type ops interface {
	// add starts watching fd, which front knows is not watched, for in.
	add(fd int, in Events) error
	// modify moves fd's interest from old to in (old != in is not guaranteed). A return of
	// ENOENT or EBADF tells front that the kernel has lost track of fd (it was closed while
	// watched), and front forgets it.
	modify(fd int, old, in Events) error
	// remove stops watching fd, whose interest was old. front has forgotten fd already, so
	// whatever remove returns, fd is not watched afterwards; ENOENT counts as success.
	remove(fd int, old Events) error
	// wait blocks for up to d (negative: without limit; zero: not at all), fills out (which
	// is never empty) with ready fds, and reports whether the wake-up fd was among them. It
	// must not drain the wake-up itself: front does, through the kernelWaker. EINTR and
	// EAGAIN are returned bare and front retries with what is left of the timeout.
	wait(out []Event, d time.Duration) (n int, woke bool, err error)
	// owns reports whether fd is one of the backend's own fds (its wake-up fd), which a
	// caller must not be able to register.
	owns(fd int) bool
	// close releases the backend's kernel object. The waker is closed separately.
	close() error
}

// front is the one Poller implementation: the checks and bookkeeping every backend needs,
// around a backend's ops. Backend.Open builds it.
type front struct {
	lifecycle
	ops      ops
	features Features
	// openCheck is set for backends whose kernel accepts a closed fd at registration and
	// fails later (poll reports POLLNVAL, select fails every call with EBADF, kqueue adds no
	// filter for an interest of 0, io_uring reports the error in a completion). front then
	// checks the fd with fcntl(F_GETFD) first, so Add returns EBADF as the contract says.
	openCheck bool
	fds       fdTable // interest|present per watched fd
}

func newFront(b Backend, o ops, k kernelWaker) *front {
	return &front{
		lifecycle: lifecycle{name: b.Name, k: k},
		ops:       o,
		features:  b.Features,
		openCheck: b.openCheck,
	}
}

// Add watches fd; see Poller.Add.
func (p *front) Add(fd int, interest Events) error {
	if err := checkInterest(fd, interest, p.features); err != nil {
		return err
	}
	if err := p.lock(); err != nil {
		return err
	}
	defer p.owner.Unlock()
	if _, ok := p.fds.get(fd); ok || p.ops.owns(fd) {
		return p.wrap("add", fd, ErrAlreadyRegistered)
	}
	if p.openCheck {
		if err := checkOpen(fd); err != nil {
			return p.wrap("add", fd, err)
		}
	}
	if err := p.ops.add(fd, interest); err != nil {
		if err == unix.EEXIST {
			// Our table says no but the kernel says yes: the caller closed a watched fd
			// without Remove while a dup of it kept the file in epoll's interest list, and
			// the number came back. Report it as what it is.
			return fmt.Errorf("poller: %s: add fd %d: %w (EEXIST)", p.name, fd, ErrAlreadyRegistered)
		}
		return p.wrap("add", fd, err)
	}
	p.fds.set(fd, uint32(interest)|present)
	return nil
}

// Modify replaces fd's interest; see Poller.Modify.
func (p *front) Modify(fd int, interest Events) error {
	if err := checkInterest(fd, interest, p.features); err != nil {
		return err
	}
	if err := p.lock(); err != nil {
		return err
	}
	defer p.owner.Unlock()
	old, ok := p.fds.get(fd)
	if !ok {
		return p.wrap("modify", fd, ErrNotRegistered)
	}
	if err := p.ops.modify(fd, Events(old&^present), interest); err != nil {
		if err == unix.ENOENT || err == unix.EBADF {
			// The fd was closed while watched (the kernel dropped it, or the number now
			// names another file): forget it so the number can be added again.
			p.fds.del(fd)
		}
		if err == unix.ENOENT {
			return fmt.Errorf("poller: %s: modify fd %d: %w (ENOENT)", p.name, fd, ErrNotRegistered)
		}
		return p.wrap("modify", fd, err)
	}
	p.fds.set(fd, uint32(interest)|present)
	return nil
}

// Remove stops watching fd; see Poller.Remove.
func (p *front) Remove(fd int) error {
	if err := checkFD(fd); err != nil {
		return err
	}
	if err := p.lock(); err != nil {
		return err
	}
	defer p.owner.Unlock()
	old, ok := p.fds.get(fd)
	if !ok {
		return p.wrap("remove", fd, ErrNotRegistered)
	}
	p.fds.del(fd)
	switch err := p.ops.remove(fd, Events(old&^present)); err {
	case nil, unix.ENOENT: // ENOENT: closed already and dropped by the kernel; same outcome
		return nil
	default:
		return p.wrap("remove", fd, err)
	}
}

// Wait reports ready fds; see Poller.Wait. The steady state allocates nothing: the backends'
// result buffers grow to len(out) once.
func (p *front) Wait(out []Event, timeout time.Duration) (int, error) {
	if err := p.lock(); err != nil {
		return 0, err
	}
	defer p.owner.Unlock()
	if len(out) == 0 {
		return 0, errEmptyOut
	}
	dl := deadline(timeout)
	for {
		n, woke, err := p.ops.wait(out, remaining(dl, timeout))
		if err != nil {
			if err == unix.EINTR || err == unix.EAGAIN {
				// EINTR: a signal (Go's preemption uses SIGURG) interrupted the wait;
				// EAGAIN: the kernel was briefly short of memory (poll's pollfd copy).
				// Wait again for whatever time remains, not the full timeout.
				continue
			}
			return 0, fmt.Errorf("poller: %s: wait: %w", p.name, err)
		}
		if p.closed.Load() {
			return 0, ErrClosed
		}
		if woke {
			p.drained()
		}
		if n > 0 || woke || expired(dl, timeout) {
			return n, nil
		}
	}
}

// KernelFD returns the descriptor of p's kernel object, for watching one event mechanism
// from another: it polls readable (poll(2), epoll, an io_uring POLL_ADD) whenever Wait would
// report something, a Wake included. The reactor's io_uring completion mode watches its
// epoll poller this way for the descriptors it does not drive itself. The descriptor stays
// p's: do not close it, nor use it after p.Close. Readiness of the descriptor is only a hint
// to call Wait (with a zero timeout); it is cleared by Wait, never by reading it.
//
// Errors: ErrUnsupported for a Poller of a backend without one kernel object (poll, select,
// uring-poll, whose ring is not pollable), ErrClosed after Close.
func KernelFD(p Poller) (int, error) {
	f, ok := p.(*front)
	if !ok {
		return -1, fmt.Errorf("poller: KernelFD of a %T: %w", p, ErrUnsupported)
	}
	k, ok := f.ops.(interface{ kernelFD() int })
	if !ok {
		return -1, fmt.Errorf("poller: %s: KernelFD: %w", f.name, ErrUnsupported)
	}
	if f.closed.Load() {
		return -1, ErrClosed
	}
	return k.kernelFD(), nil
}

// Close releases the backend's kernel resources; see Poller.Close.
func (p *front) Close() error {
	if err := p.beginClose(); err != nil {
		return err
	}
	return p.finishClose(p.ops.close)
}

// wrap gives a kernel or contract error its context: backend, call and fd.
func (p *front) wrap(call string, fd int, err error) error {
	return fmt.Errorf("poller: %s: %s fd %d: %w", p.name, call, fd, err)
}

// checkFD rejects fd numbers no kernel hands out. The upper bound matters: the kernel takes fds
// as 32-bit ints, so 1<<32+5 would silently name fd 5, and backends index tables by fd.
func checkFD(fd int) error {
	if fd < 0 || fd > math.MaxInt32 {
		return fmt.Errorf("poller: fd %d: %w", fd, ErrInvalidArgument)
	}
	return nil
}

// checkInterest validates an fd and an interest mask against a backend's features.
func checkInterest(fd int, interest Events, f Features) error {
	if err := checkFD(fd); err != nil {
		return err
	}
	if interest&^interestMask != 0 {
		return fmt.Errorf("poller: fd %d interest %v: %w", fd, interest, ErrInvalidArgument)
	}
	if interest&EdgeTriggered != 0 && f&FeatureEdgeTriggered == 0 {
		return fmt.Errorf("poller: edge-triggered: %w", ErrUnsupported)
	}
	return nil
}

// checkOpen fails with EBADF if fd is not open.
func checkOpen(fd int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err
}
