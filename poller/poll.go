//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package poller

import (
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	// openCheck: poll accepts a closed fd and reports POLLNVAL for it on every call.
	register(Backend{Name: "poll", open: openPoll, openCheck: true}, 2)
}

// pollOps keeps the interest list itself, as an array of pollfd handed whole to the kernel on
// every Wait: no fd limit, but each Wait costs O(watched fds) in the kernel and here.
type pollOps struct {
	pfds []unix.PollFd // pfds[0] is the wake-up fd; the caller's fds follow, in no order
	idx  fdTable       // fd -> its index in pfds (never 0, which is the wake-up fd's)
	next int           // where the next scan starts, so a short out slice starves no fd
	kernelPoll
}

func openPoll() (ops, kernelWaker, error) {
	k, wfd, err := newPollWaker()
	if err != nil {
		return nil, nil, err
	}
	return &pollOps{pfds: []unix.PollFd{{Fd: int32(wfd), Events: unix.POLLIN}}, next: 1}, k, nil
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

// add appends one pollfd: O(1).
func (p *pollOps) add(fd int, in Events) error {
	p.idx.set(fd, uint32(len(p.pfds)))
	p.pfds = append(p.pfds, unix.PollFd{Fd: int32(fd), Events: toPoll(in)})
	return nil
}

func (p *pollOps) modify(fd int, _, in Events) error {
	i, _ := p.idx.get(fd)
	p.pfds[i].Events = toPoll(in)
	return nil
}

// remove moves the last pollfd into fd's slot: O(1).
func (p *pollOps) remove(fd int, _ Events) error {
	i, _ := p.idx.get(fd)
	last := len(p.pfds) - 1
	if int(i) != last {
		p.pfds[i] = p.pfds[last]
		p.idx.set(int(p.pfds[i].Fd), i)
	}
	p.pfds = p.pfds[:last]
	p.idx.del(fd)
	return nil
}

// wait is one poll (ppoll on Linux). It does not allocate.
func (p *pollOps) wait(out []Event, d time.Duration) (int, bool, error) {
	k, err := p.poll(p.pfds, d)
	if err != nil {
		return 0, false, err
	}
	woke := p.pfds[0].Revents != 0
	if woke {
		p.pfds[0].Revents = 0
		k--
	}
	n := 0
	if k > 0 {
		n = p.collect(out)
	}
	return n, woke, nil
}

func (p *pollOps) owns(fd int) bool { return fd == int(p.pfds[0].Fd) }
func (p *pollOps) close() error     { return nil } // nothing but the waker, which front closes

// collect copies ready pollfds into out, starting where the last full scan stopped, so that
// when out is shorter than the ready set every fd gets its turn.
func (p *pollOps) collect(out []Event) int {
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
