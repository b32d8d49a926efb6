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

// epollOps is the Linux default: the kernel keeps the interest list, and epoll_wait costs
// O(ready fds), not O(watched fds).
type epollOps struct {
	epfd int
	wfd  int               // the eventfd; never reported to the caller
	evs  []unix.EpollEvent // reused by wait, grown to len(out) once
}

// kernelFD is the epoll instance: readable whenever epoll_wait would report something.
func (p *epollOps) kernelFD() int { return p.epfd }

func openEpoll() (ops, kernelWaker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("poller: epoll_create1: %w", err)
	}
	w, err := newEventfdWaker()
	if err != nil {
		unix.Close(epfd)
		return nil, nil, err
	}
	// The eventfd is level-triggered on purpose: after Close's final signal it stays
	// readable, so a Wait that raced with Close cannot block.
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(w.fd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, w.fd, &ev); err != nil {
		w.close()
		unix.Close(epfd)
		return nil, nil, fmt.Errorf("poller: epoll_ctl(eventfd): %w", err)
	}
	return &epollOps{epfd: epfd, wfd: w.fd}, w, nil
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

func (p *epollOps) add(fd int, in Events) error {
	ev := unix.EpollEvent{Events: toEpoll(in), Fd: int32(fd)}
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
}

func (p *epollOps) modify(fd int, _, in Events) error {
	ev := unix.EpollEvent{Events: toEpoll(in), Fd: int32(fd)}
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &ev)
}

// remove takes fd out of the interest list. The Poller contract says to call Remove before
// closing fd because epoll watches open files, not fd numbers: a file leaves the interest list
// by itself only when its last fd is closed, so if a dup of fd is open (after fork, dup, or
// SCM_RIGHTS), closing fd first leaves the file watched under its old number, and its events
// keep coming with no way to remove them (EPOLL_CTL_DEL on the closed number fails).
func (p *epollOps) remove(fd int, _ Events) error {
	// A nil event is fine: kernels before 2.6.9 wanted one, none we support do.
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// wait is one epoll_wait. It does not allocate once evs has grown to len(out).
func (p *epollOps) wait(out []Event, d time.Duration) (int, bool, error) {
	if cap(p.evs) < len(out) {
		p.evs = make([]unix.EpollEvent, len(out))
	}
	evs := p.evs[:len(out)]
	var k int
	var err error
	if d == 0 {
		k, err = epollPollRaw(p.epfd, evs)
	} else {
		k, err = unix.EpollWait(p.epfd, evs, msec(d))
	}
	if err != nil {
		return 0, false, err
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
	return n, woke, nil
}

func (p *epollOps) owns(fd int) bool { return fd == p.wfd }
func (p *epollOps) close() error     { return unix.Close(p.epfd) }

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
