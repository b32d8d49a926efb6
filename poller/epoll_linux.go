//go:build linux

package poller

import (
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func init() {
	register(Backend{Name: "epoll", Features: FeatureEdgeTriggered | FeatureO1 | FeatureRDHUP, open: openEpoll}, 0)
}

// epollPoller is the Linux default: the kernel keeps the interest list, and epoll_wait costs
// O(ready fds), not O(watched fds).
type epollPoller struct {
	lifecycle
	epfd int
	wfd  int               // the eventfd; never reported to the caller
	evs  []unix.EpollEvent // reused by Wait, grown to len(out) once
	fds  fdTable           // interest|present per watched fd
}

func openEpoll() (Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("poller: epoll_create1: %w", err)
	}
	w, err := newEventfdWaker()
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	// The eventfd is level-triggered on purpose: after Close's final signal it stays
	// readable, so a Wait that raced with Close cannot block.
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(w.fd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, w.fd, &ev); err != nil {
		w.close()
		unix.Close(epfd)
		return nil, fmt.Errorf("poller: epoll_ctl(eventfd): %w", err)
	}
	p := &epollPoller{epfd: epfd, wfd: w.fd}
	p.lifecycle = lifecycle{name: "epoll", k: w}
	return p, nil
}

// toEpoll converts an interest. EPOLLRDHUP goes with read interest: a half-closed peer is
// news to a reader. Asking for it without read interest would make a level-triggered epoll
// report the half-close on every Wait while the caller has paused reading (for instance
// because its output is backed up), spinning the loop. EPOLLHUP and EPOLLERR need no asking:
// the kernel always reports them.
func toEpoll(in Events) uint32 {
	var e uint32
	if in&Readable != 0 {
		e |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if in&Writable != 0 {
		e |= unix.EPOLLOUT
	}
	if in&EdgeTriggered != 0 {
		e |= unix.EPOLLET
	}
	return e
}

// fromEpoll converts a result. EPOLLHUP means both directions are shut (peer closed a
// socketpair, or a TCP reset): reads return EOF or the error, writes fail. EPOLLRDHUP means
// only the peer's writing side is shut; buffered data can still be read. Both are Hangup.
// EPOLLERR means a pending socket error (read it with SO_ERROR or by reading).
func fromEpoll(e uint32) Events {
	var r Events
	if e&unix.EPOLLIN != 0 {
		r |= Readable
	}
	if e&unix.EPOLLOUT != 0 {
		r |= Writable
	}
	if e&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		r |= Hangup
	}
	if e&unix.EPOLLERR != 0 {
		r |= Error
	}
	return r
}

// Add watches fd; see Poller.Add.
func (p *epollPoller) Add(fd int, interest Events) error {
	if err := checkInterest(fd, interest, FeatureEdgeTriggered); err != nil {
		return err
	}
	if err := p.lock(); err != nil {
		return err
	}
	defer p.owner.Unlock()
	if _, ok := p.fds.get(fd); ok || fd == p.wfd {
		return fmt.Errorf("poller: epoll: add fd %d: %w", fd, ErrAlreadyRegistered)
	}
	ev := unix.EpollEvent{Events: toEpoll(interest), Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		if err == unix.EEXIST {
			// Our table says no but the kernel says yes: the caller closed a watched fd
			// without Remove while a dup of it kept the file in the interest list, and
			// the number came back. Report it as what it is.
			return fmt.Errorf("poller: epoll: add fd %d: %w (EEXIST)", fd, ErrAlreadyRegistered)
		}
		return fmt.Errorf("poller: epoll: add fd %d: %w", fd, err)
	}
	p.fds.set(fd, uint32(interest)|present)
	return nil
}

// Modify replaces fd's interest; see Poller.Modify.
func (p *epollPoller) Modify(fd int, interest Events) error {
	if err := checkInterest(fd, interest, FeatureEdgeTriggered); err != nil {
		return err
	}
	if err := p.lock(); err != nil {
		return err
	}
	defer p.owner.Unlock()
	if _, ok := p.fds.get(fd); !ok {
		return fmt.Errorf("poller: epoll: modify fd %d: %w", fd, ErrNotRegistered)
	}
	ev := unix.EpollEvent{Events: toEpoll(interest), Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &ev); err != nil {
		if err == unix.ENOENT || err == unix.EBADF {
			// The fd was closed while watched (the kernel dropped it, or the number now
			// names another file): forget it so the number can be added again.
			p.fds.del(fd)
		}
		if err == unix.ENOENT {
			return fmt.Errorf("poller: epoll: modify fd %d: %w (ENOENT)", fd, ErrNotRegistered)
		}
		return fmt.Errorf("poller: epoll: modify fd %d: %w", fd, err)
	}
	p.fds.set(fd, uint32(interest)|present)
	return nil
}

// Remove stops watching fd; see Poller.Remove. Call it before closing fd: epoll watches open
// files, not fd numbers. A file leaves the interest list by itself only when its last fd is
// closed, so if a dup of fd is open (after fork, dup, or SCM_RIGHTS), closing fd first leaves
// the file watched under its old number, and its events keep coming with no way to remove
// them (EPOLL_CTL_DEL on the closed number fails).
func (p *epollPoller) Remove(fd int) error {
	if err := checkFD(fd); err != nil {
		return err
	}
	if err := p.lock(); err != nil {
		return err
	}
	defer p.owner.Unlock()
	if _, ok := p.fds.get(fd); !ok {
		return fmt.Errorf("poller: epoll: remove fd %d: %w", fd, ErrNotRegistered)
	}
	p.fds.del(fd)
	// A nil event is fine: kernels before 2.6.9 wanted one, none we support do.
	switch err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil); err {
	case nil, unix.ENOENT: // ENOENT: closed already and dropped by the kernel; same outcome
		return nil
	default:
		return fmt.Errorf("poller: epoll: remove fd %d: %w", fd, err)
	}
}

// Wait reports ready fds; see Poller.Wait. It does not allocate once evs has grown to
// len(out).
func (p *epollPoller) Wait(out []Event, timeout time.Duration) (int, error) {
	if err := p.lock(); err != nil {
		return 0, err
	}
	defer p.owner.Unlock()
	if len(out) == 0 {
		return 0, errEmptyOut
	}
	if cap(p.evs) < len(out) {
		p.evs = make([]unix.EpollEvent, len(out))
	}
	evs := p.evs[:len(out)]
	dl := deadline(timeout)
	for {
		var k int
		var err error
		if timeout == 0 {
			k, err = epollPollRaw(p.epfd, evs)
		} else {
			k, err = unix.EpollWait(p.epfd, evs, msec(remaining(dl, timeout)))
		}
		if err != nil {
			if err == unix.EINTR {
				// A signal (Go's preemption uses SIGURG) interrupted the wait: wait
				// again for whatever time remains, not the full timeout.
				continue
			}
			return 0, fmt.Errorf("poller: epoll_wait: %w", err)
		}
		if p.closed.Load() {
			return 0, ErrClosed
		}
		n, woke := 0, false
		for i := range evs[:k] {
			e := &evs[i]
			if int(e.Fd) == p.wfd {
				woke = true
				continue
			}
			out[n] = Event{FD: int(e.Fd), Events: fromEpoll(e.Events)}
			n++
		}
		if woke {
			p.drained()
		}
		if n > 0 || woke || expired(dl, timeout) {
			return n, nil
		}
	}
}

// epollPollRaw is epoll_wait with a zero timeout issued as a raw system call. Why raw: a zero
// timeout never sleeps, so the runtime's entersyscall/exitsyscall hand-off (which exists so
// that a blocking call can give its P to another thread) is pure cost, and it keeps the
// runtime's sysmon thread polling at its fastest. A Wait that may block must keep the
// ordinary call, or it would stall every other goroutine of a GOMAXPROCS=1 process.
//
// It is epoll_pwait with a nil signal mask, which the kernel treats exactly as epoll_wait:
// arm64 (and every newer Linux port) has no epoll_wait system call, only epoll_pwait.
func epollPollRaw(epfd int, evs []unix.EpollEvent) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// Close releases the epoll and eventfd fds; see Poller.Close.
func (p *epollPoller) Close() error {
	if err := p.beginClose(); err != nil {
		return err
	}
	return p.finishClose(func() error { return unix.Close(p.epfd) })
}
