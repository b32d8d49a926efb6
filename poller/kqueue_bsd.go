//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package poller

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	// openCheck: an interest of 0 adds no filter, so the kernel would not look at the fd.
	register(Backend{Name: "kqueue", Features: FeatureEdgeTriggered | FeatureO1 | FeatureRDHUP, open: openKqueue, openCheck: true}, 0)
}

// kqueueOps is the BSD and macOS default. kqueue watches (ident, filter) pairs, so an fd
// with read and write interest is two kernel entries (EVFILT_READ, EVFILT_WRITE) and can come
// back as two kevents; Wait merges them into one Event.
//
// Interest changes use EV_ADD and EV_DELETE rather than keeping both filters added and
// toggling EV_ENABLE/EV_DISABLE: some fd types refuse a filter outright (EVFILT_WRITE on the
// read end of a pipe whose writer is gone fails with EPIPE on FreeBSD), and only filters the
// caller asked for should be able to fail its call.
type kqueueOps struct {
	kq      int
	w       kqWaker
	changes [4]unix.Kevent_t
	evs     []unix.Kevent_t // reused by wait, grown to len(out) once
	pos     []int32         // fd -> index in out during one wait, for merging; see merge
	ts      unix.Timespec
}

func openKqueue() (ops, kernelWaker, error) {
	kq, err := unix.Kqueue()
	if err != nil {
		return nil, nil, fmt.Errorf("poller: kqueue: %w", err)
	}
	unix.CloseOnExec(kq)
	w, err := newKqWaker(kq)
	if err != nil {
		unix.Close(kq)
		return nil, nil, err
	}
	return &kqueueOps{kq: kq, w: w}, w, nil
}

// change builds the kevents that move fd from interest old to interest in, applies them,
// and returns the kernel's error.
func (p *kqueueOps) change(fd int, old, in Events) error {
	addFlags := unix.EV_ADD | unix.EV_ENABLE
	if in&EdgeTriggered != 0 {
		// EV_CLEAR resets the filter's state once it is reported: edge-triggered.
		addFlags |= unix.EV_CLEAR
	}
	// EV_CLEAR cannot be changed on a filter in place everywhere: switching trigger mode
	// deletes and re-adds.
	retrigger := (old^in)&EdgeTriggered != 0
	ch := p.changes[:0]
	for _, f := range [2]struct {
		bit    Events
		filter int
	}{{Readable, unix.EVFILT_READ}, {Writable, unix.EVFILT_WRITE}} {
		had, want := old&f.bit != 0, in&f.bit != 0
		if had && (!want || retrigger) {
			ch = append(ch, unix.Kevent_t{})
			unix.SetKevent(&ch[len(ch)-1], fd, f.filter, unix.EV_DELETE)
		}
		if want && (!had || retrigger) {
			ch = append(ch, unix.Kevent_t{})
			unix.SetKevent(&ch[len(ch)-1], fd, f.filter, addFlags)
		}
	}
	if len(ch) == 0 {
		return nil
	}
	// With no room for results, kevent reports a failing change as its own error.
	for {
		_, err := unix.Kevent(p.kq, ch, nil, nil)
		if err != unix.EINTR {
			return err
		}
	}
}

func (p *kqueueOps) add(fd int, in Events) error {
	if err := p.change(fd, 0, in); err != nil {
		p.change(fd, in, 0) // undo a read filter added before the write one failed
		return err
	}
	return nil
}

func (p *kqueueOps) modify(fd int, old, in Events) error { return p.change(fd, old, in) }

// remove deletes fd's filters. Unlike epoll, kqueue drops an fd's filters when that fd number
// is closed, so a forgotten Remove leaves no stale events, but the call is still needed to
// clear the front's record of the fd; ENOENT (the filters went with a close) is success.
func (p *kqueueOps) remove(fd int, old Events) error {
	return p.change(fd, old&^EdgeTriggered, 0)
}

func (p *kqueueOps) owns(fd int) bool { return p.w.owns(fd) }
func (p *kqueueOps) close() error     { return unix.Close(p.kq) }

// kernelFD is the kqueue: readable whenever kevent would report something.
func (p *kqueueOps) kernelFD() int { return p.kq }

// wait is one kevent call; read and write filters of one fd are merged into one Event.
func (p *kqueueOps) wait(out []Event, d time.Duration) (int, bool, error) {
	if cap(p.evs) < len(out) {
		p.evs = make([]unix.Kevent_t, len(out))
	}
	evs := p.evs[:len(out)]
	var tsp *unix.Timespec // nil: block
	if d >= 0 {
		p.ts = unix.NsecToTimespec(int64(d))
		tsp = &p.ts
	}
	k, err := unix.Kevent(p.kq, nil, evs, tsp)
	if err != nil {
		return 0, false, err
	}
	n, woke := 0, false
	for i := range evs[:k] {
		e := &evs[i]
		if p.w.isWake(e) {
			woke = true
			continue
		}
		n = p.merge(out, n, int(e.Ident), fromKevent(e))
	}
	return n, woke, nil
}

// merge adds ev for fd to out[:n], or-ing it into fd's entry if this Wait has one already.
// pos[fd] remembers where fd went; it is never cleared, but an entry only counts if it
// points inside out[:n] at an Event for this fd, so stale entries are harmless.
func (p *kqueueOps) merge(out []Event, n, fd int, ev Events) int {
	if fd >= len(p.pos) {
		np := make([]int32, max(fd+1, 2*len(p.pos), 64))
		copy(np, p.pos)
		p.pos = np
	}
	if i := int(p.pos[fd]); i < n && out[i].FD == fd {
		out[i].Events |= ev
		return n
	}
	p.pos[fd] = int32(n)
	out[n] = Event{FD: fd, Events: ev}
	return n + 1
}

// fromKevent converts one kevent. EV_EOF on the read filter means the peer shut down its
// writing side (reads will return the buffered data, then EOF); on the write filter it means
// the reading side is gone. Fflags then holds the socket error, if any.
func fromKevent(e *unix.Kevent_t) Events {
	var r Events
	switch e.Filter {
	case unix.EVFILT_READ:
		r |= Readable
	case unix.EVFILT_WRITE:
		r |= Writable
	}
	if e.Flags&unix.EV_EOF != 0 {
		r |= Hangup
		if e.Fflags != 0 {
			r |= Error
		}
	}
	if e.Flags&unix.EV_ERROR != 0 {
		r = Error
	}
	return r
}
