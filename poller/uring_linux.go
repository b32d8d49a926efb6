//go:build linux

package poller

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/uring"
)

func init() {
	// Rank 1: Open("auto") stays epoll. As a readiness poller io_uring saves no system call
	// the reactor makes (its reads and writes are still its own), and measured it is no
	// faster (docs/BENCHMARKS.md); it is here to be chosen by name or REACTOR_POLLER, to
	// compare. The name is "uring-poll": "uring" is the reactor's completion mode, which
	// does the reads and writes in the ring (reactor.WithPoller, docs/IO_URING.md).
	// openCheck: a POLL_ADD on a closed fd fails only in its completion, after Add returned.
	register(Backend{Name: "uring-poll", Features: FeatureEdgeTriggered | FeatureO1 | FeatureRDHUP, open: openUring, openCheck: true}, 1)
}

// uringOps watches fds with io_uring poll requests (Linux 5.13+).
//
// Each watched fd has one multishot IORING_OP_POLL_ADD in flight. A multishot poll is
// edge-triggered: it reports the state when armed, then posts a completion on every wake-up
// of the file, so with EdgeTriggered interest it is the whole story. Level-triggered interest
// is built on it: every fd a Wait reports gets a one-shot "probe" poll with the next Wait's
// submission (an SQE in the same io_uring_enter, not a system call of its own); the kernel
// checks readiness as it arms a poll, so a still-ready fd completes at once and is reported
// again, exactly as epoll reports it again. A probe that finds nothing stays armed until the
// fd becomes ready, and at most one is in flight per fd.
//
// Why not one-shot polls re-armed after every report? The kernel adds POLLRDHUP, POLLHUP and
// POLLERR to every poll's mask. A one-shot poll with Writable interest (or none) on a
// half-closed socket would complete at once with POLLRDHUP every time it is re-armed, which
// the contract forbids reporting there: the loop would spin. The multishot poll only fires
// on wake-ups, and a probe is only sent for an fd just reported, so neither can spin.
//
// Add, Modify and Remove queue SQEs and return: nothing reaches the kernel until the next
// Wait (or until the submission queue fills). Every request carries in its user data the
// fd, the fd's generation (bumped by every Modify and Remove) and its kind; a completion
// from an older generation is dropped, so a stale event never reaches the caller, even when
// the fd number has been closed and reused in between.
//
// A poll request holds a reference to the file, so an fd closed without Remove stays open in
// the kernel (the peer sees no FIN) until Remove or Close; the Poller contract's "Remove
// before close" matters more here than anywhere.
type uringOps struct {
	r        *uring.Ring
	wfd      int       // the eventfd Wake writes; watched by its own multishot poll
	fds      []uringFD // indexed by fd
	todo     []int32   // fds with a re-arm or probe to send with the next submission
	pos      []int32   // fd -> index in out during one wait, for merging; see merge; len(pos) == len(fds)
	wakeLive bool      // the wake-up poll is in flight
	skip     uint8     // SQE flags for ASYNC_CANCEL: no completion on success, where supported
}

// uringFD is the state of one watched fd.
type uringFD struct {
	gen     uint32 // generation, in the user data of every request for this fd
	in      Events // interest
	reg     bool   // watched
	armed   bool   // a multishot poll of this generation is in flight
	probing bool   // a probe of this generation is in flight
	rearm   bool   // the multishot poll ended: send a new one
	probe   bool   // reported level-triggered: send a probe
	queued  bool   // in todo
}

// User data layout: kind in the top 8 bits, generation in the next 24, fd in the low 32.
const (
	udPoll   = 1 // the fd's multishot poll
	udProbe  = 2 // a level-triggered probe
	udWake   = 3 // the wake-up eventfd's poll
	udIgnore = 4 // ASYNC_CANCEL results (only failures post one with FeatCQESkip)
	genMask  = 1<<24 - 1
)

func ud(kind uint64, gen uint32, fd int) uint64 {
	return kind<<56 | uint64(gen&genMask)<<32 | uint64(uint32(fd))
}

// uringConfig is what the poller asks of the kernel: multishot poll (5.13, the release that
// also added FEAT_RSRC_TAGS, which is how it is detected without submitting anything),
// overflowed completions kept (NODROP), waits with a timeout (EXT_ARG), 32-bit poll masks
// for POLLRDHUP.
var uringConfig = uring.Config{
	Entries:   256,
	CQEntries: 4096, // multishot polls post many completions per submission
	Features:  uring.FeatNoDrop | uring.FeatExtArg | uring.FeatRsrcTags | uring.FeatPoll32Bits,
	Ops:       []uint8{uring.OpPollAdd, uring.OpAsyncCancel},
}

func openUring() (ops, kernelWaker, error) {
	r, err := uring.New(uringConfig)
	if err != nil {
		if errors.Is(err, uring.ErrUnavailable) {
			return nil, nil, fmt.Errorf("poller: uring-poll: %w (%w)", err, ErrUnsupported)
		}
		return nil, nil, fmt.Errorf("poller: uring-poll: %w", err)
	}
	w, err := newEventfdWaker()
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	p := &uringOps{r: r, wfd: w.fd}
	if r.Features()&uring.FeatCQESkip != 0 {
		p.skip = uring.SQECQESkipSuccess
	}
	// The wake-up poll is armed by the first Wait, so that the thread that waits is the one
	// that submitted it: the kernel runs a poll's completion work on the submitting thread.
	return p, w, nil
}

// pollMask is the poll(2) mask for an interest. POLLRDHUP goes with Readable, as in epoll.
func pollMask(in Events) uint32 {
	var m uint32
	if in&Readable != 0 {
		m |= unix.POLLIN | unix.POLLRDHUP
	}
	if in&Writable != 0 {
		m |= unix.POLLOUT
	}
	return m
}

// fromPollResult converts a poll completion for an fd with interest in. The kernel reports
// POLLRDHUP whatever was asked; it is a Hangup only for a reader, for the reason toEpoll
// gives. A failed request (fd closed while watched: EBADF) is an Error.
func fromPollResult(res int32, in Events) Events {
	if res < 0 {
		return Error
	}
	m := uint32(res)
	var e Events
	if m&unix.POLLIN != 0 && in&Readable != 0 {
		e |= Readable
	}
	if m&unix.POLLOUT != 0 && in&Writable != 0 {
		e |= Writable
	}
	if m&unix.POLLHUP != 0 || m&unix.POLLRDHUP != 0 && in&Readable != 0 {
		e |= Hangup
	}
	if m&(unix.POLLERR|unix.POLLNVAL) != 0 {
		e |= Error
	}
	return e
}

// state returns fd's state, growing the tables indexed by fd to hold it. They grow here, in
// Add, so that Wait never allocates, not even on the first sight of an fd.
func (p *uringOps) state(fd int) *uringFD {
	if fd >= len(p.fds) {
		n := make([]uringFD, max(fd+1, 2*len(p.fds), 64))
		copy(n, p.fds)
		p.fds = n
		pos := make([]int32, len(n))
		copy(pos, p.pos)
		p.pos = pos
	}
	return &p.fds[fd]
}

// sqe returns a free SQE, submitting the queued ones first if the queue is full.
func (p *uringOps) sqe() (*uring.SQE, error) {
	if s := p.r.NextSQE(); s != nil {
		return s, nil
	}
	for {
		if _, err := p.r.Submit(); err != nil && err != unix.EINTR {
			return nil, err
		}
		if s := p.r.NextSQE(); s != nil {
			return s, nil
		}
	}
}

// arm queues fd's multishot poll for its current generation and interest.
func (p *uringOps) arm(fd int, st *uringFD) error {
	s, err := p.sqe()
	if err != nil {
		return err
	}
	s.PrepPollAdd(fd, pollMask(st.in), true)
	s.UserData = ud(udPoll, st.gen, fd)
	st.armed = true
	return nil
}

// retire queues the cancellation of fd's requests and starts a new generation, so whatever
// they still post is dropped.
//
// IORING_OP_ASYNC_CANCEL, not IORING_OP_POLL_REMOVE: a poll whose completion work is queued
// (it fired, or was ready when armed earlier in the same submission, as when Modify runs
// twice between Waits) cannot be taken by POLL_REMOVE, which then fails with -EALREADY and
// leaves a multishot poll armed for good, holding a reference to the file: closed, the
// socket would never send its FIN. ASYNC_CANCEL marks such a poll cancelled, and its pending
// completion work ends it (-ECANCELED).
func (p *uringOps) retire(fd int, st *uringFD) error {
	for _, k := range [2]struct {
		live bool
		kind uint64
	}{{st.armed, udPoll}, {st.probing, udProbe}} {
		if !k.live {
			continue
		}
		s, err := p.sqe()
		if err != nil {
			return err
		}
		s.PrepCancel(ud(k.kind, st.gen, fd), 0)
		s.UserData = ud(udIgnore, 0, 0)
		s.Flags |= p.skip
	}
	st.armed, st.probing, st.rearm, st.probe = false, false, false, false
	st.gen = (st.gen + 1) & genMask
	return nil
}

func (p *uringOps) add(fd int, in Events) error {
	st := p.state(fd)
	st.gen = (st.gen + 1) & genMask
	st.in, st.reg = in, true
	st.armed, st.probing, st.rearm, st.probe = false, false, false, false
	return p.arm(fd, st)
}

func (p *uringOps) modify(fd int, old, in Events) error {
	st := p.state(fd)
	if pollMask(old) == pollMask(in) {
		st.in = in // only EdgeTriggered changed: the kernel's request stays as it is
		return nil
	}
	if err := p.retire(fd, st); err != nil {
		return err
	}
	st.in = in
	return p.arm(fd, st)
}

func (p *uringOps) remove(fd int, _ Events) error {
	st := p.state(fd)
	err := p.retire(fd, st)
	st.reg = false
	return err
}

func (p *uringOps) owns(fd int) bool { return fd == p.wfd || fd == p.r.FD() }

func (p *uringOps) close() error { return p.r.Close() }

// queue puts fd on the to-do list of the next submission.
func (p *uringOps) queue(fd int, st *uringFD) {
	if !st.queued {
		st.queued = true
		p.todo = append(p.todo, int32(fd))
	}
}

// flush turns the to-do list into SQEs: new multishot polls for those that ended, probes for
// the level-triggered fds the last Wait reported, and the wake-up poll.
func (p *uringOps) flush() error {
	if !p.wakeLive {
		s, err := p.sqe()
		if err != nil {
			return err
		}
		s.PrepPollAdd(p.wfd, unix.POLLIN, true)
		s.UserData = ud(udWake, 0, 0)
		p.wakeLive = true
	}
	for i, fd32 := range p.todo {
		fd := int(fd32)
		st := &p.fds[fd]
		if st.reg && st.rearm && !st.armed {
			if err := p.arm(fd, st); err != nil {
				p.todo = append(p.todo[:0], p.todo[i:]...)
				return err
			}
		}
		st.rearm = false
		if st.reg && st.probe && !st.probing && st.in&EdgeTriggered == 0 {
			s, err := p.sqe()
			if err != nil {
				p.todo = append(p.todo[:0], p.todo[i:]...)
				return err
			}
			s.PrepPollAdd(fd, pollMask(st.in), false)
			s.UserData = ud(udProbe, st.gen, fd)
			st.probing = true
		}
		st.probe = false
		st.queued = false
	}
	p.todo = p.todo[:0]
	return nil
}

// wait submits what is queued and waits for completions in one io_uring_enter, then turns
// the completions into events.
func (p *uringOps) wait(out []Event, d time.Duration) (int, bool, error) {
	if err := p.flush(); err != nil {
		return 0, false, err
	}
	// Skip the system call only when there is nothing to submit, completions are already
	// waiting, and none are stuck in the kernel's overflow list.
	if p.r.Pending() > 0 || p.r.Ready() == 0 || p.r.Overflowed() {
		var min uint32 = 1
		if d == 0 {
			min = 0
		}
		switch _, err := p.r.SubmitAndWait(min, d); err {
		case nil, unix.ETIME: // ETIME: the timeout passed; front decides whether to return
		case unix.EBUSY:
			// Completions are backed up in the overflow list; reaping below makes room.
		default:
			return 0, false, err // EINTR included: front waits again for what is left
		}
	}
	return p.reap(out)
}

// reap consumes completions into out, one Event per fd, and leaves the ones that would need
// a slot out does not have for the next Wait.
func (p *uringOps) reap(out []Event) (int, bool, error) {
	n, woke := 0, false
	ready := p.r.Ready()
	var i uint32
	for ; i < ready; i++ {
		c := p.r.Peek(i)
		kind := c.UserData >> 56
		switch kind {
		case udWake:
			woke = true
			if c.Flags&uring.CQEFMore == 0 {
				p.wakeLive = false // ended (overflow, or the submitting thread exited): re-arm
			}
			continue
		case udPoll, udProbe:
		default:
			continue // udIgnore: an ASYNC_CANCEL whose target had already completed
		}
		fd := int(uint32(c.UserData))
		if fd >= len(p.fds) {
			continue
		}
		st := &p.fds[fd]
		if !st.reg || st.gen != uint32(c.UserData>>32)&genMask {
			continue // from a request retired by Modify or Remove
		}
		ev := Events(0)
		if c.Res != -int32(unix.ECANCELED) {
			ev = fromPollResult(c.Res, st.in)
		}
		if ev != 0 && n == len(out) && !p.has(out, n, fd) {
			break // no room: this completion and the rest wait for the next Wait
		}
		if kind == udPoll && c.Flags&uring.CQEFMore == 0 {
			// The multishot poll ended. After an error (EBADF: closed while watched) it is
			// not re-armed: the Error is reported and the caller removes the fd. Otherwise
			// (ECANCELED when its submitting thread exited, or the kernel ending it when
			// the completion queue overflowed) it is re-armed with the next submission.
			st.armed = false
			if c.Res >= 0 || c.Res == -int32(unix.ECANCELED) {
				st.rearm = true
				p.queue(fd, st)
			}
		}
		if kind == udProbe {
			st.probing = false
		}
		if ev == 0 {
			continue
		}
		n = p.merge(out, n, fd, ev)
		if st.in&EdgeTriggered == 0 {
			st.probe = true
			p.queue(fd, st)
		}
	}
	p.r.Advance(i)
	return n, woke, nil
}

// has reports whether fd already has an entry in out[:n] during this wait.
func (p *uringOps) has(out []Event, n, fd int) bool {
	if fd >= len(p.pos) {
		return false
	}
	i := int(p.pos[fd])
	return i < n && out[i].FD == fd
}

// merge adds ev for fd to out[:n], or-ing it into fd's entry if this wait has one already
// (a multishot poll and a probe, or several wake-ups, for one fd). pos[fd] remembers where fd
// went; a stale entry never points at an Event for its fd inside out[:n], so it is harmless.
// pos is as long as fds (see state), and reap only merges fds found in fds.
func (p *uringOps) merge(out []Event, n, fd int, ev Events) int {
	if p.has(out, n, fd) {
		out[p.pos[fd]].Events |= ev
		return n
	}
	p.pos[fd] = int32(n)
	out[n] = Event{FD: fd, Events: ev}
	return n + 1
}
