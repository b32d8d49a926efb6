//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package poller

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	register(Backend{Name: "kqueue", Features: FeatureEdgeTriggered | FeatureO1 | FeatureRDHUP, open: openKqueue}, 0)
}

// kqueuePoller is the BSD and macOS default. kqueue watches (ident, filter) pairs, so an fd
// with read and write interest is two kernel entries (EVFILT_READ, EVFILT_WRITE) and can come
// back as two kevents; Wait merges them into one Event.
//
// Interest changes use EV_ADD and EV_DELETE rather than keeping both filters added and
// toggling EV_ENABLE/EV_DISABLE: some fd types refuse a filter outright (EVFILT_WRITE on the
// read end of a pipe whose writer is gone fails with EPIPE on FreeBSD), and only filters the
// caller asked for should be able to fail its call.
type kqueuePoller struct {
	lifecycle
	kq      int
	w       kqWaker
	changes [4]unix.Kevent_t
	evs     []unix.Kevent_t // reused by Wait, grown to len(out) once
	fds     fdTable         // interest|present per watched fd
	pos     []int32         // fd -> index in out during one Wait, for merging; see merge
	ts      unix.Timespec
}

func openKqueue() (Poller, error) {
	kq, err := unix.Kqueue()
	if err != nil {
		return nil, fmt.Errorf("poller: kqueue: %w", err)
	}
	unix.CloseOnExec(kq)
	w, err := newKqWaker(kq)
	if err != nil {
		unix.Close(kq)
		return nil, err
	}
	p := &kqueuePoller{kq: kq, w: w}
	p.lifecycle = lifecycle{name: "kqueue", k: w}
	return p, nil
}

// change builds the kevents that move fd from interest old to interest in, applies them,
// and returns the kernel's error.
func (p *kqueuePoller) change(fd int, old, in Events) error {
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

// Add watches fd; see Poller.Add.
func (p *kqueuePoller) Add(fd int, interest Events) error {
	if err := checkInterest(fd, interest, FeatureEdgeTriggered); err != nil {
		return err
	}
	if err := p.lock(); err != nil {
		return err
	}
	defer p.owner.Unlock()
	if _, ok := p.fds.get(fd); ok || p.w.owns(fd) {
		return fmt.Errorf("poller: kqueue: add fd %d: %w", fd, ErrAlreadyRegistered)
	}
	// An interest of 0 adds no filter, so the kernel would not check the fd: check here.
	if err := checkOpen(fd); err != nil {
		return fmt.Errorf("poller: kqueue: add fd %d: %w", fd, err)
	}
	if err := p.change(fd, 0, interest); err != nil {
		p.change(fd, interest, 0) // undo a read filter added before the write one failed
		return fmt.Errorf("poller: kqueue: add fd %d: %w", fd, err)
	}
	p.fds.set(fd, uint32(interest)|present)
	return nil
}

// Modify replaces fd's interest; see Poller.Modify.
func (p *kqueuePoller) Modify(fd int, interest Events) error {
	if err := checkInterest(fd, interest, FeatureEdgeTriggered); err != nil {
		return err
	}
	if err := p.lock(); err != nil {
		return err
	}
	defer p.owner.Unlock()
	old, ok := p.fds.get(fd)
	if !ok {
		return fmt.Errorf("poller: kqueue: modify fd %d: %w", fd, ErrNotRegistered)
	}
	if err := p.change(fd, Events(old&^present), interest); err != nil {
		if err == unix.EBADF {
			p.fds.del(fd) // closed while watched: kqueue dropped its filters already
		}
		return fmt.Errorf("poller: kqueue: modify fd %d: %w", fd, err)
	}
	p.fds.set(fd, uint32(interest)|present)
	return nil
}

// Remove stops watching fd; see Poller.Remove. Unlike epoll, kqueue drops an fd's filters
// when that fd number is closed, so a forgotten Remove leaves no stale events, but the call
// is still needed to clear this poller's record of the fd.
func (p *kqueuePoller) Remove(fd int) error {
	if err := checkFD(fd); err != nil {
		return err
	}
	if err := p.lock(); err != nil {
		return err
	}
	defer p.owner.Unlock()
	old, ok := p.fds.get(fd)
	if !ok {
		return fmt.Errorf("poller: kqueue: remove fd %d: %w", fd, ErrNotRegistered)
	}
	p.fds.del(fd)
	switch err := p.change(fd, Events(old&^present)&^EdgeTriggered, 0); err {
	case nil, unix.ENOENT: // ENOENT: the filters went with a close already
		return nil
	default:
		return fmt.Errorf("poller: kqueue: remove fd %d: %w", fd, err)
	}
}

// Wait reports ready fds; see Poller.Wait.
func (p *kqueuePoller) Wait(out []Event, timeout time.Duration) (int, error) {
	if err := p.lock(); err != nil {
		return 0, err
	}
	defer p.owner.Unlock()
	if len(out) == 0 {
		return 0, errEmptyOut
	}
	if cap(p.evs) < len(out) {
		p.evs = make([]unix.Kevent_t, len(out))
	}
	evs := p.evs[:len(out)]
	dl := deadline(timeout)
	for {
		var tsp *unix.Timespec // nil: block
		if timeout >= 0 {
			p.ts = unix.NsecToTimespec(int64(remaining(dl, timeout)))
			tsp = &p.ts
		}
		k, err := unix.Kevent(p.kq, nil, evs, tsp)
		if err != nil {
			if err == unix.EINTR {
				continue // interrupted by a signal: retry with what is left
			}
			return 0, fmt.Errorf("poller: kevent: %w", err)
		}
		if p.closed.Load() {
			return 0, ErrClosed
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
		if woke {
			p.drained()
		}
		if n > 0 || woke || expired(dl, timeout) {
			return n, nil
		}
	}
}

// merge adds ev for fd to out[:n], or-ing it into fd's entry if this Wait has one already.
// pos[fd] remembers where fd went; it is never cleared, but an entry only counts if it
// points inside out[:n] at an Event for this fd, so stale entries are harmless.
func (p *kqueuePoller) merge(out []Event, n, fd int, ev Events) int {
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

// Close releases the kqueue and wake-up fds; see Poller.Close.
func (p *kqueuePoller) Close() error {
	if err := p.beginClose(); err != nil {
		return err
	}
	return p.finishClose(func() error { return unix.Close(p.kq) })
}
