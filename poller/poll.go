//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package poller

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	register(Backend{Name: "poll", open: openPoll}, 1)
}

// pollPoller keeps the interest list itself, as an array of pollfd handed whole to the kernel
// on every Wait: no fd limit, but each Wait costs O(watched fds) in the kernel and here.
type pollPoller struct {
	lifecycle
	pfds []unix.PollFd // pfds[0] is the wake-up fd; the caller's fds follow, in no order
	idx  fdTable       // fd -> its index in pfds (never 0, which is the wake-up fd's)
	next int           // where the next scan starts, so a short out slice starves no fd
	kernelPoll
}

func openPoll() (Poller, error) {
	k, wfd, err := newPollWaker()
	if err != nil {
		return nil, err
	}
	p := &pollPoller{pfds: []unix.PollFd{{Fd: int32(wfd), Events: unix.POLLIN}}, next: 1}
	p.lifecycle = lifecycle{name: "poll", k: k}
	return p, nil
}

// toPoll converts an interest. POLLRDHUP (Linux) goes with read interest only, for the reason
// toEpoll gives. POLLHUP, POLLERR and POLLNVAL need no asking: the kernel always reports them.
func toPoll(in Events) int16 {
	var e int16
	if in&Readable != 0 {
		e |= unix.POLLIN | pollRDHUP
	}
	if in&Writable != 0 {
		e |= unix.POLLOUT
	}
	return e
}

// fromPoll converts a result. POLLNVAL means the fd was closed while watched (the caller
// skipped Remove); it is reported as Error until the caller removes it.
func fromPoll(e int16) Events {
	var r Events
	if e&unix.POLLIN != 0 {
		r |= Readable
	}
	if e&unix.POLLOUT != 0 {
		r |= Writable
	}
	if e&(unix.POLLHUP|pollRDHUP) != 0 {
		r |= Hangup
	}
	if e&(unix.POLLERR|unix.POLLNVAL) != 0 {
		r |= Error
	}
	return r
}

// Add watches fd; see Poller.Add. It appends one pollfd: O(1).
func (p *pollPoller) Add(fd int, interest Events) error {
	if err := checkInterest(fd, interest, 0); err != nil {
		return err
	}
	if err := p.lock(); err != nil {
		return err
	}
	defer p.owner.Unlock()
	if _, ok := p.idx.get(fd); ok || fd == int(p.pfds[0].Fd) {
		return fmt.Errorf("poller: poll: add fd %d: %w", fd, ErrAlreadyRegistered)
	}
	if err := checkOpen(fd); err != nil {
		return fmt.Errorf("poller: poll: add fd %d: %w", fd, err)
	}
	p.idx.set(fd, uint32(len(p.pfds)))
	p.pfds = append(p.pfds, unix.PollFd{Fd: int32(fd), Events: toPoll(interest)})
	return nil
}

// checkOpen fails with EBADF if fd is not open. poll, select and kqueue (for an interest of
// 0, which adds no filter) need it: poll would accept a closed fd and report POLLNVAL later,
// select would fail every Wait with EBADF.
func checkOpen(fd int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err
}

// Modify replaces fd's interest; see Poller.Modify.
func (p *pollPoller) Modify(fd int, interest Events) error {
	if err := checkInterest(fd, interest, 0); err != nil {
		return err
	}
	if err := p.lock(); err != nil {
		return err
	}
	defer p.owner.Unlock()
	i, ok := p.idx.get(fd)
	if !ok {
		return fmt.Errorf("poller: poll: modify fd %d: %w", fd, ErrNotRegistered)
	}
	p.pfds[i].Events = toPoll(interest)
	return nil
}

// Remove stops watching fd; see Poller.Remove. The last pollfd moves into its slot: O(1).
func (p *pollPoller) Remove(fd int) error {
	if err := checkFD(fd); err != nil {
		return err
	}
	if err := p.lock(); err != nil {
		return err
	}
	defer p.owner.Unlock()
	i, ok := p.idx.get(fd)
	if !ok {
		return fmt.Errorf("poller: poll: remove fd %d: %w", fd, ErrNotRegistered)
	}
	last := len(p.pfds) - 1
	if int(i) != last {
		p.pfds[i] = p.pfds[last]
		p.idx.set(int(p.pfds[i].Fd), i)
	}
	p.pfds = p.pfds[:last]
	p.idx.del(fd)
	return nil
}

// Wait reports ready fds; see Poller.Wait. It does not allocate.
func (p *pollPoller) Wait(out []Event, timeout time.Duration) (int, error) {
	if err := p.lock(); err != nil {
		return 0, err
	}
	defer p.owner.Unlock()
	if len(out) == 0 {
		return 0, errEmptyOut
	}
	dl := deadline(timeout)
	for {
		k, err := p.poll(p.pfds, remaining(dl, timeout))
		if err != nil {
			if err == unix.EINTR || err == unix.EAGAIN {
				// EINTR: interrupted by a signal (Go's preemption); EAGAIN: the kernel
				// was briefly short of memory for the pollfd copy. Retry with what is left.
				continue
			}
			return 0, fmt.Errorf("poller: poll: %w", err)
		}
		if p.closed.Load() {
			return 0, ErrClosed
		}
		woke := p.pfds[0].Revents != 0
		if woke {
			p.pfds[0].Revents = 0
			k--
			p.drained()
		}
		n := 0
		if k > 0 {
			n = p.collect(out)
		}
		if n > 0 || woke || expired(dl, timeout) {
			return n, nil
		}
	}
}

// collect copies ready pollfds into out, starting where the last full scan stopped, so that
// when out is shorter than the ready set every fd gets its turn.
func (p *pollPoller) collect(out []Event) int {
	m := len(p.pfds) - 1 // the caller's fds are pfds[1:]
	if m == 0 {
		return 0
	}
	if p.next < 1 || p.next > m {
		p.next = 1
	}
	n := 0
	for j := 0; j < m; j++ {
		i := p.next + j
		if i > m {
			i -= m
		}
		pf := &p.pfds[i]
		if pf.Revents == 0 {
			continue
		}
		if n == len(out) {
			p.next = i
			return n
		}
		out[n] = Event{FD: int(pf.Fd), Events: fromPoll(pf.Revents)}
		n++
	}
	return n
}

// Close releases the wake-up fds; see Poller.Close.
func (p *pollPoller) Close() error {
	if err := p.beginClose(); err != nil {
		return err
	}
	return p.finishClose(func() error { return nil })
}
