//go:build linux

package reactor

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/sockopt"
	"github.com/reactord/reactord/internal/uring"
	"github.com/reactord/reactord/poller"
)

// ringIO is a loop's io_uring completion engine: WithPoller("uring"). The kernel does the
// loop's accepting, receiving and sending, and one io_uring_enter per iteration hands it the
// iteration's work and waits for the next completions:
//
//   - a listener has one multishot ACCEPT: every connection arrives as a completion;
//   - a connection has one multishot RECV into the loop's provided-buffer ring, so an idle
//     connection holds no buffer; the bytes are handed to OnData from the buffer the kernel
//     filled (as the readiness path hands them from the loop's read buffer), and the buffer
//     goes back to the kernel when OnData returns. Pausing (PauseRead, output above the
//     high-water mark, closing, EOF) cancels the receive, so TCP's window closes on the peer
//     exactly as when an epoll loop stops reading; while it is off, a multishot poll watches
//     for a reset or full hang-up, which epoll would report whatever the interest;
//   - the output an iteration produced is sent by one SEND per connection, queued by the flush
//     at the end of the iteration (flushDirty, unchanged) and submitted by the next enter. The
//     bytes in flight move to the connection's slot here, where nothing appends to them, and
//     its completion advances the output, settles backpressure and graceful closes, and calls
//     OnWritable, where the readiness path does after a write(2);
//   - files (SendFile) from ringSpliceMin go out through a pipe with two linked SPLICEs per
//     round, file → pipe → socket, queued by the flush like a SEND (uring_splice_linux.go);
//     smaller ones with sendfile(2) on the loop. When the socket is full, a one-shot poll on
//     the ring says when it has room again.
//
// Descriptors the ring does not drive (UDP sockets, and the wake-up eventfd behind Post and
// Close) stay on the loop's epoll poller, and the ring watches that poller's descriptor with a
// one-shot poll: when it fires, the loop calls Wait with a zero timeout and dispatches the
// events as in readiness mode. The ring is set up with SINGLE_ISSUER and DEFER_TASKRUN:
// completion work runs only inside the loop's own io_uring_enter, never by interrupting it.
//
// Every request's user data carries a kind, the descriptor, and the generation of the
// descriptor's slot, bumped when its connection or listener goes: completions of requests
// that belonged to a closed connection (even one whose number an accept has reused since)
// are recognised and only their resources released. A request holds a reference to its
// file, so closing a connection cancels its requests (ASYNC_CANCEL, sent with the next
// enter, right after the close(2) at the end of the iteration); only when they are gone does
// the kernel release the socket and send the FIN.
type ringIO struct {
	l       *Loop
	r       *uring.Ring
	br      *uring.BufRing
	slots   []ringSlot // indexed by fd: connections and listeners
	pfd     int        // the loop's epoll poller, watched from the ring
	polled  bool       // its poll fired in the completions being dispatched
	pollOn  bool       // its poll is in flight
	recycle bool       // provided buffers were given back: publish them
	live    int        // requests whose last completion has not been reaped
	orphans map[uint64][]byte
	eofs    []ringEOF // paused connections' EOFs, acted on by the next dispatch
	// recvCap bounds what one receive request takes before it ends and is armed again (the
	// read buffer's size, what one read(2) takes): a connection that pauses can have at most
	// that much more arrive before the cancellation reaches the kernel. 0 on kernels without
	// the cap (before 6.15), where the bound is what the kernel receives in one enter.
	recvCap uint32
	stop    bool // quiescing: no more re-arming
	// epoch counts the times the submission queue was emptied into the kernel; a slot
	// whose epoch is the current one may have a queued request the kernel has not seen.
	// closePending: a descriptor that is about to be closed has one (see beforeClose).
	epoch        uint16
	closePending bool
	// Files through the ring (uring_splice_linux.go): splice says the kernel has SPLICE,
	// pipes is the pool of idle pipes, files the transfers of connections that hold a pipe
	// (sPiped), fileOrphans what closed connections' splices still name; rounds counts the
	// file → pipe → socket chains queued (tests read it).
	splice      bool
	rounds      uint64
	pipes       []ringPipe
	files       map[int]*ringFile
	fileOrphans map[uint64]ringFileOrphan
	// dropped holds the listeners closed while their accepts were in flight, by descriptor
	// and generation, until the last of those requests has completed (dropListener).
	dropped map[uint64]*droppedListener
}

// droppedListener is a closed listener whose live requests have not all completed.
type droppedListener struct {
	ln   *listener
	live int
}

// droppedKey names a closed listener's requests in ringIO.dropped.
func droppedKey(fd int, gen uint32) uint64 { return uint64(uint32(fd))<<32 | uint64(gen) }

// ringEOF is an EOF held back while its connection was paused (see sEOF).
type ringEOF struct {
	c   *Conn
	gen uint32
}

// ringSlot is the ring's state for one descriptor.
type ringSlot struct {
	gen   uint32
	st    uint16
	epoch uint16 // ringIO.epoch when a request naming this descriptor was last queued
	sbuf  []byte // output the send in flight reads (from the loop's pool); sbuf[shead:] unsent
	shead int
}

// Slot states: which requests of the descriptor are in flight.
const (
	sRecv             uint16 = 1 << iota // multishot receive
	sRecvCancel                          // its cancellation is queued
	sWatch                               // hang-up watch (while not receiving)
	sWatchCancel                         // its cancellation is queued
	sSend                                // a send of sbuf[shead:]
	sRoom                                // a one-shot poll for room in the socket (files)
	sEOF                                 // a receive ended at EOF while paused: act on it on resuming
	sEOFQueued                           // in ringIO.eofs
	sAccept                              // multishot accept (listeners)
	sAcceptCancel                        // its cancellation is queued
	sPiped                               // a file goes through a pipe: ringIO.files has its state
	sOnesCancel                          // the cancellation of the listener's one-shot accepts is queued
	sAcceptWait                          // a one-shot poll for a client waiting at the cap (listeners)
	sAcceptWaitCancel                    // its cancellation is queued
)

// User data: kind in the top 8 bits, slot generation in the next 24, fd in the low 32.
const (
	kRecv = 1 + iota
	kWatch
	kSend
	kRoom
	kAccept
	kPoll       // the loop's epoll poller
	kCancel     // ASYNC_CANCEL: only failures post (CQE_SKIP_SUCCESS), and they need nothing
	kSpliceIn   // a file into a connection's pipe
	kSpliceOut  // a connection's pipe into its socket
	kAccept1    // a one-shot accept (a listener near its connection cap)
	kAcceptWait // a listener's poll for a waiting client at the cap
	genMask     = 1<<24 - 1
)

func rud(kind uint64, gen uint32, fd int) uint64 {
	return kind<<56 | uint64(gen&genMask)<<32 | uint64(uint32(fd))
}

// ringConfig is what the completion mode asks of the kernel. DEFER_TASKRUN (6.1) implies
// multishot accept (5.19), multishot receive (6.0), provided-buffer rings (5.19) and
// CQE_SKIP_SUCCESS (5.17); the opcode probe checks the rest.
var ringConfig = uring.Config{
	Entries:   512,
	CQEntries: 8192, // multishot requests post many completions per submission
	Flags:     uring.SetupSingleIssuer | uring.SetupDeferTaskrun | uring.SetupRDisabled,
	Optional:  uring.SetupSubmitAll,
	Features:  uring.FeatNoDrop | uring.FeatExtArg | uring.FeatFastPoll | uring.FeatCQESkip | uring.FeatPoll32Bits,
	Ops:       []uint8{uring.OpAccept, uring.OpRecv, uring.OpSend, uring.OpPollAdd, uring.OpAsyncCancel},
}

// The loop's provided buffers: up to ringBufs buffers of ringBufSize bytes (2 MiB per loop). A
// receive takes one only when data arrives and gives it back once OnData has seen it, so the
// count bounds the completions with data one batch can hold, not the connections. More
// arriving than that ends a receive with ENOBUFS, and it is re-armed once the buffers are
// back: nothing is lost, the bytes wait in the socket.
//
// The kernel takes buffers in ring order and recycled ones go to the back, so every buffer
// given to it is touched, and resident, within one lap, however few a batch needs. Only
// ringBufsFirst are given at first; each ENOBUFS doubles that, up to ringBufs (growBufs). A
// loop keeps what its busiest batch needed: 256 KiB instead of 2 MiB for a loop whose
// connections take turns (measured with bench idle, docs/IO_URING.md).
const (
	ringBufs      = 512
	ringBufsFirst = 64
	ringBufSize   = 4096
	ringGroup     = 1
)

const ringCompiled = true

// ringAvailable reports whether this kernel runs the completion mode, as Server.Start would
// set it up: a ring with the loop's flags and a provided-buffer ring.
func ringAvailable() error {
	r, err := uring.New(ringConfig)
	if err != nil {
		return ringUnavailable(err)
	}
	defer r.Close()
	br, err := r.NewBufRing(ringGroup, 1, ringBufSize)
	if err != nil {
		return ringUnavailable(err)
	}
	return br.Close()
}

// ringUnavailable wraps a setup error: the kernel's refusal becomes poller.ErrUnsupported,
// the cue to fall back, with io_uring's reason.
func ringUnavailable(err error) error {
	if errors.Is(err, uring.ErrUnavailable) {
		return fmt.Errorf("reactor: uring: %w (%w)", err, poller.ErrUnsupported)
	}
	return fmt.Errorf("reactor: uring: %w", err)
}

// openRing sets up the loop's ring, disabled, from Server.Start: start enables it on the
// loop's own thread, which SINGLE_ISSUER binds it to.
func (l *Loop) openRing() error {
	pfd, err := poller.KernelFD(l.poll)
	if err != nil {
		return err
	}
	r, err := uring.New(ringConfig)
	if err != nil {
		return ringUnavailable(err)
	}
	br, err := r.NewBufRingAvail(ringGroup, ringBufs, ringBufSize, ringBufsFirst)
	if err != nil {
		r.Close()
		return ringUnavailable(err)
	}
	l.ring = &ringIO{l: l, r: r, br: br, pfd: pfd, recvCap: uint32(l.opt.readBufSize),
		splice: r.Supports(uring.OpSplice)}
	l.ring.armPoll()
	return nil
}

// start runs first on the loop goroutine, locked to its thread: the ring becomes this
// thread's, and its fd is registered with the thread so io_uring_enter skips the file
// lookup.
func (r *ringIO) start() error {
	if err := r.r.Enable(); err != nil {
		return err
	}
	r.r.RegisterRingFD() // an optimisation; older kernels lack it
	return nil
}

// close releases the ring: the buffer group first (unregistered while the ring is still
// enabled on this thread), then the ring. Requests must be gone (quiesce).
func (r *ringIO) close() {
	r.br.Close()
	r.r.Close()
	r.closeFiles()
}

// slot returns fd's slot, growing the table to hold it.
func (r *ringIO) slot(fd int) *ringSlot {
	if fd >= len(r.slots) {
		n := make([]ringSlot, max(fd+64, 2*len(r.slots)))
		copy(n, r.slots)
		r.slots = n
	}
	return &r.slots[fd]
}

// sqe returns a free SQE, submitting the queued ones first when the queue is full.
func (r *ringIO) sqe() *uring.SQE {
	for {
		if s := r.r.NextSQE(); s != nil {
			return s
		}
		if _, err := r.r.Submit(); err != nil && err != unix.EINTR && err != unix.EBUSY && err != unix.EAGAIN {
			r.l.log.Error("io_uring submit", zap.Error(err))
			runtime.Gosched()
		}
		r.submitted()
	}
}

// submitted notes a submission: once the queue is empty, every request queued so far names
// its descriptor in the kernel, which has taken its own reference to the socket.
func (r *ringIO) submitted() {
	if r.r.Pending() == 0 {
		r.epoch++
	}
}

// named notes that a request naming fd's descriptor has just been queued.
func (r *ringIO) named(s *ringSlot) { s.epoch = r.epoch }

// beforeClose runs before the iteration's descriptors are closed and reports whether they
// may be. A request queued in this iteration for a connection that then closed (a receive
// armed on accept, then Close in OnOpen; a send flushed, then a drain's close) names its
// descriptor by number, and the kernel looks the number up only when the request is
// submitted, at the next enter. Closed before that, the number is free: another loop's accept
// or a file the program opens may take it, and the stale receive would read that socket's
// bytes, or the stale send write to it. So such requests are submitted first (one extra
// enter, only in iterations that close a connection with a request still queued); the
// kernel's reference then keeps the socket until the queued cancellation ends them. When the
// kernel cannot take them now (EBUSY: its completions back up), the descriptors stay open
// until the next iteration's enter has submitted them.
func (r *ringIO) beforeClose() bool {
	if !r.closePending {
		return true
	}
	if _, err := r.r.Submit(); err != nil && err != unix.EINTR && err != unix.EBUSY && err != unix.EAGAIN {
		r.l.log.Error("io_uring submit", zap.Error(err))
	}
	if r.r.Pending() != 0 {
		return false
	}
	r.epoch++
	r.closePending = false
	return true
}

// cancel queues the cancellation of the request with user data target.
func (r *ringIO) cancel(target uint64) {
	s := r.sqe()
	s.PrepCancel(target, 0)
	s.UserData = rud(kCancel, 0, 0)
	s.Flags |= uring.SQECQESkipSuccess
}

// armPoll queues the one-shot poll on the loop's epoll poller. The kernel checks readiness
// as it arms a poll, so events left after a Wait (more than fitted, or level-triggered fds
// still ready) fire it again at once.
func (r *ringIO) armPoll() {
	s := r.sqe()
	s.PrepPollAdd(r.pfd, unix.POLLIN, false)
	s.UserData = rud(kPoll, 0, 0)
	r.pollOn = true
	r.live++
}

// wait submits everything queued and waits for at least one completion or the timeout
// (negative: none; zero: just collect what is done): the iteration's one system call.
func (r *ringIO) wait(timeout time.Duration) error {
	_, err := r.r.SubmitAndWait(1, timeout)
	r.submitted()
	switch err {
	case nil, unix.ETIME, unix.EINTR:
		// EINTR: a signal (Go's preemption) cut the wait short; the SQEs went in.
	case unix.EBUSY, unix.EAGAIN:
		// Completions backed up in the kernel, or it was briefly short of memory: reaping
		// makes room, and the next iteration submits what is left.
	default:
		return fmt.Errorf("reactor: io_uring_enter: %w", err)
	}
	return nil
}

// dispatch handles the completions that are ready and returns how many readiness events of
// the epoll poller it put in l.events.
func (r *ringIO) dispatch() (int, error) {
	l := r.l
	if len(r.eofs) > 0 {
		eofs := r.eofs
		r.eofs = nil
		for _, e := range eofs {
			if s := &r.slots[e.c.fd]; s.gen == e.gen && e.c.flags&fClosed == 0 {
				s.st &^= sEOF | sEOFQueued
				e.c.onEOF()
			}
		}
	}
	ready := r.r.Ready()
	l.st.events += uint64(ready)
	for i := uint32(0); i < ready; i++ {
		c := r.r.Peek(i)
		ud, res, flags := c.UserData, c.Res, c.Flags
		fd, gen := int(uint32(ud)), uint32(ud>>32)&genMask
		switch ud >> 56 {
		case kRecv:
			i = r.onRecv(i, ready, ud, fd, gen, res, flags)
		case kSend:
			r.onSend(ud, fd, gen, res)
		case kWatch:
			r.onWatch(fd, gen, res, flags)
		case kRoom:
			r.onRoom(fd, gen)
		case kSpliceIn:
			r.onSpliceIn(fd, gen, res)
		case kSpliceOut:
			r.onSpliceOut(ud, fd, gen, res)
		case kAccept, kAccept1:
			r.onAccept(ud>>56 == kAccept1, fd, gen, res, flags)
		case kAcceptWait:
			r.onAcceptWait(fd, gen, res)
		case kPoll:
			r.live--
			r.pollOn = false
			r.polled = true
		}
	}
	r.r.Advance(ready)
	if r.recycle {
		r.recycle = false
		r.br.Publish()
	}
	if !r.polled {
		return 0, nil
	}
	r.polled = false
	n, err := l.poll.Wait(l.events, 0)
	if !r.stop {
		r.armPoll()
	}
	if err != nil {
		if errors.Is(err, poller.ErrClosed) && l.stopping.Load() {
			return 0, nil
		}
		return 0, err
	}
	return n, nil
}

// conn returns the connection a completion belongs to, or nil for a stale one.
func (r *ringIO) conn(fd int, gen uint32) *Conn {
	if fd >= len(r.slots) || r.slots[fd].gen != gen || fd >= len(r.l.conns) {
		return nil
	}
	return r.l.conns[fd]
}

// onRecv handles the receive completion at index i, with the data completions of the same
// request that follow it in this batch: bytes that arrived in several buffers reach OnData in
// one call, as one read(2) would have returned them. It returns the index of the last
// completion it consumed.
func (r *ringIO) onRecv(i, ready uint32, ud uint64, fd int, gen uint32, res int32, flags uint32) uint32 {
	c := r.conn(fd, gen)
	if flags&uring.CQEFBuffer != 0 {
		j := i
		for flags&uring.CQEFMore != 0 && j+1 < ready {
			n := r.r.Peek(j + 1)
			if n.UserData != ud || n.Flags&uring.CQEFBuffer == 0 {
				break
			}
			j++
			res, flags = n.Res, n.Flags
		}
		if c != nil {
			if j == i {
				first := r.r.Peek(i)
				c.received(r.br.Buf(first.BufferID(), int(first.Res)))
			} else {
				for k := i; k <= j; k++ {
					cq := r.r.Peek(k)
					c.gather(r.br.Buf(cq.BufferID(), int(cq.Res)))
				}
				c.gathered()
			}
			if c.flags&fClosed != 0 {
				c = nil // closed by its handler: forget has dealt with the request
			}
		}
		for k := i; k <= j; k++ {
			r.br.Recycle(r.r.Peek(k).BufferID())
		}
		r.recycle = true
		i = j
	}
	if flags&uring.CQEFMore != 0 {
		return i
	}
	// The request has ended: EOF (0), an error, our cancellation, out of buffers, or the
	// kernel ending it (a full completion queue).
	r.live--
	if res == -int32(unix.ENOBUFS) {
		// The batch needed more buffers than the loop has given the kernel so far (those
		// are back now): give it more before anything is armed again.
		r.growBufs()
	}
	if c == nil {
		return i
	}
	s := &r.slots[fd]
	s.st &^= sRecv | sRecvCancel
	switch {
	case res == 0 && flags&uring.CQEFBuffer == 0:
		switch {
		case c.flags&fClosing != 0:
			// Closing: input is discarded, and so is the EOF.
		case c.flags&(fPausedUser|fPausedBP) != 0:
			// Paused, its cancellation overtaken by the EOF: a readiness loop would not
			// see it before reading again, and neither does the handler here. It is
			// acted on when the receive would be armed again (syncRecv).
			s.st |= sEOF
			r.syncRecv(c)
		default:
			c.onEOF()
		}
	case res >= 0, res == -int32(unix.ECANCELED), res == -int32(unix.ENOBUFS):
		// Ended by its cap, our cancellation, a lack of buffers (more were given above), or
		// a full completion queue: armed again if the connection still reads.
		r.syncRecv(c)
	case res == -int32(unix.EINVAL) && r.recvCap != 0:
		// A kernel without the receive cap (before 6.15) refuses the field: do without.
		r.recvCap = 0
		r.syncRecv(c)
	default:
		c.closeNow(os.NewSyscallError("recv", unix.Errno(-res)))
	}
	return i
}

// growBufs doubles the provided buffers the kernel may use, up to ringBufs. Published with
// the buffers this dispatch recycles, before the next enter.
func (r *ringIO) growBufs() {
	if n := r.br.Provided(); n < ringBufs {
		r.br.Provide(2 * n)
	}
}

// syncRecv starts or stops the connection's receive as its state calls for, and the hang-up
// watch that stands in for it while it is off. A request whose cancellation is on its way is
// re-armed, if wanted, when its last completion arrives.
func (r *ringIO) syncRecv(c *Conn) {
	if c.flags&fClosed != 0 || r.stop {
		return
	}
	s := r.slot(int(c.fd))
	// Kept input waiting to be handed back (fRedeliver) does not stop the receive: what
	// arrives meanwhile joins it, behind it, so the order holds without a cancel-and-rearm
	// every time backpressure lets go.
	recv := c.flags&(fPausedUser|fPausedBP|fClosing|fEOF) == 0
	watch := !recv && c.flags&fClosing == 0
	switch {
	case recv && s.st&sEOF != 0:
		// The EOF that ended the receive while paused: acted on by the next dispatch, not
		// from inside whatever call resumed the connection (ResumeRead, Release, a drain).
		if s.st&sEOFQueued == 0 {
			s.st |= sEOFQueued
			r.eofs = append(r.eofs, ringEOF{c, s.gen})
		}
		recv = false
		watch = false
	case recv && s.st&sRecv == 0:
		q := r.sqe()
		q.PrepRecvMultishot(int(c.fd), ringGroup)
		q.LimitRecvMultishot(r.recvCap)
		q.UserData = rud(kRecv, s.gen, int(c.fd))
		r.named(s)
		s.st |= sRecv
		r.live++
	case !recv && s.st&(sRecv|sRecvCancel) == sRecv:
		r.cancel(rud(kRecv, s.gen, int(c.fd)))
		s.st |= sRecvCancel
	}
	switch {
	case watch && s.st&sWatch == 0:
		// Multishot, mask 0: the kernel adds POLLERR, POLLHUP and POLLRDHUP, and posts on
		// wake-ups only, so a half-closed peer (RDHUP, not acted on here) cannot make it spin.
		q := r.sqe()
		q.PrepPollAdd(int(c.fd), 0, true)
		q.UserData = rud(kWatch, s.gen, int(c.fd))
		r.named(s)
		s.st |= sWatch
		r.live++
	case !watch && s.st&(sWatch|sWatchCancel) == sWatch:
		r.cancel(rud(kWatch, s.gen, int(c.fd)))
		s.st |= sWatchCancel
	}
}

// onWatch handles the hang-up watch: a reset or a full hang-up is settled as the readiness
// path settles EPOLLERR and EPOLLHUP on a connection it is not reading.
func (r *ringIO) onWatch(fd int, gen uint32, res int32, flags uint32) {
	c := r.conn(fd, gen)
	if flags&uring.CQEFMore == 0 {
		r.live--
		if c != nil {
			r.slots[fd].st &^= sWatch | sWatchCancel
		}
	}
	if c == nil {
		return
	}
	var ev poller.Events
	if res < 0 {
		if res != -int32(unix.ECANCELED) {
			ev = poller.Error
		}
	} else {
		if res&(unix.POLLERR|unix.POLLNVAL) != 0 {
			ev |= poller.Error
		}
		if res&unix.POLLHUP != 0 {
			ev |= poller.Hangup
		}
	}
	if ev != 0 {
		c.hangup(ev)
		if c.flags&fClosed != 0 {
			return
		}
	}
	if flags&uring.CQEFMore == 0 {
		r.syncRecv(c)
	}
}

// flush starts sending the connection's pending output: one SEND of the bytes buffered, or,
// for a file queued by SendFile, a round of splices (or sendfile(2) now, for a small file).
// Output is never sent twice at once: with a send or splice in flight the completion
// continues.
func (r *ringIO) flush(c *Conn) {
	s := r.slot(int(c.fd))
	if s.st&(sSend|sRoom) != 0 || s.st&sPiped != 0 && r.flushPiped(c) {
		return
	}
	l := r.l
	before := c.Buffered()
	if s.sbuf == nil {
		for b := c.io; ; {
			if b == nil {
				c.flushed(before)
				return
			}
			if b.head < len(b.out) {
				// The buffer moves to the slot, where nothing appends to it (appending could
				// grow it away under the kernel); new output starts a buffer of its own.
				s.sbuf, s.shead = b.out, b.head
				b.out, b.head = nil, 0
				c.flags |= fSendBuf
				c.settleIO()
				break
			}
			if b.out != nil {
				l.pool.Put(b.out)
				b.out, b.head = nil, 0
			}
			if b.q == nil || len(b.q.segs) == 0 {
				b.q = nil
				c.settleIO()
				c.flushed(before)
				return
			}
			if seg := &b.q.segs[0]; seg.fd >= 0 && r.spliceFile(c, s, seg) {
				c.flushed(before)
				return
			}
			if !c.flushQueue() {
				if c.flags&fClosed != 0 {
					return
				}
				if c.flags&fWantWrite != 0 {
					// The socket took part of a file: the ring says when it has room.
					c.flags &^= fWantWrite
					q := r.sqe()
					q.PrepPollAdd(int(c.fd), unix.POLLOUT, false)
					q.UserData = rud(kRoom, s.gen, int(c.fd))
					r.named(s)
					s.st |= sRoom
					r.live++
				}
				c.flushed(before)
				return
			}
		}
	}
	if after := c.Buffered(); after < before {
		// A file went out on the way: the progress counts now, as in a readiness flush.
		c.active()
		if before > l.opt.low {
			c.flags |= fAboveLow
		}
	}
	q := r.sqe()
	q.PrepSend(int(c.fd), s.sbuf[s.shead:], unix.MSG_NOSIGNAL)
	q.UserData = rud(kSend, s.gen, int(c.fd))
	r.named(s)
	s.st |= sSend
	r.live++
	// deliver leaves a pause for output above the high-water mark to the end-of-iteration
	// flush, which in readiness mode applies it in afterFlush: here the send's completion
	// settles the rest, but the receive must stop now.
	r.syncRecv(c)
}

// hasWork reports whether the next dispatch has work without a completion (held-back EOFs),
// so the wait must not block.
func (r *ringIO) hasWork() bool { return len(r.eofs) > 0 }

// unsent returns the bytes of fd's send buffer not yet sent, and of its pipe (Buffered counts
// them).
func (r *ringIO) unsent(fd int) int {
	s := &r.slots[fd]
	n := len(s.sbuf) - s.shead
	if s.st&sPiped != 0 {
		n += r.files[fd].inPipe
	}
	return n
}

// onSend handles a send's completion: the output advances by what the kernel took, and the
// rest is settled as after a readiness flush (backpressure, OnWritable, a graceful close).
// More output, or the rest of a short send, goes out with this iteration's flush.
func (r *ringIO) onSend(ud uint64, fd int, gen uint32, res int32) {
	r.live--
	l := r.l
	c := r.conn(fd, gen)
	if c == nil {
		if b, ok := r.orphans[ud]; ok {
			delete(r.orphans, ud)
			l.pool.Put(b)
		}
		return
	}
	s := &r.slots[fd]
	s.st &^= sSend
	if res < 0 {
		c.closeNow(os.NewSyscallError("send", unix.Errno(-res)))
		return
	}
	before := c.Buffered()
	s.shead += int(res)
	l.st.bytesOut += uint64(res)
	if s.shead >= len(s.sbuf) {
		l.pool.Put(s.sbuf)
		s.sbuf, s.shead = nil, 0
		if s.st&sPiped == 0 {
			c.flags &^= fSendBuf
		}
	}
	c.flushed(before)
	if c.flags&fClosed == 0 && c.Buffered() > 0 {
		c.markDirty()
	}
}

// onRoom handles the poll for room in a socket that is sending a file.
func (r *ringIO) onRoom(fd int, gen uint32) {
	r.live--
	c := r.conn(fd, gen)
	if c == nil {
		return
	}
	r.slots[fd].st &^= sRoom
	c.markDirty() // sendfile(2) or the pipe's splice goes on, or reports the socket's error
}

// forget cancels a closing connection's requests and starts a new generation for its slot,
// so that their last completions, and whatever the old requests still post, are recognised
// as stale. A send in flight keeps its buffer until its completion says the kernel is done
// with it. It reports true when a splice in flight still names the socket (io-wq looks the
// descriptor up late, see uring_splice_linux.go): the ring closes it once the splice is done,
// and the caller must not.
func (r *ringIO) forget(c *Conn) (held bool) {
	s := r.slot(int(c.fd))
	if s.epoch == r.epoch && r.r.Pending() != 0 {
		r.closePending = true // see beforeClose
	}
	if s.st&(sRecv|sRecvCancel) == sRecv {
		r.cancel(rud(kRecv, s.gen, int(c.fd)))
	}
	if s.st&(sWatch|sWatchCancel) == sWatch {
		r.cancel(rud(kWatch, s.gen, int(c.fd)))
	}
	if s.st&sRoom != 0 {
		r.cancel(rud(kRoom, s.gen, int(c.fd)))
	}
	if s.st&sSend != 0 {
		ud := rud(kSend, s.gen, int(c.fd))
		r.cancel(ud)
		if r.orphans == nil {
			r.orphans = make(map[uint64][]byte)
		}
		r.orphans[ud] = s.sbuf
	} else if s.sbuf != nil {
		r.l.pool.Put(s.sbuf)
	}
	if s.st&sPiped != 0 {
		held = r.forgetFile(c, s)
	}
	s.sbuf, s.shead, s.st = nil, 0, 0
	s.gen = (s.gen + 1) & genMask
	c.flags &^= fSendBuf
	return held
}

// Accepting in the completion mode. A multishot accept empties the listener's whole queue
// in one go: the kernel accepts connection after connection inside one io_uring_enter, as
// long as the queue is not empty, before the loop sees the first completion; at the
// connection cap it would take every client queued (up to the listen backlog, 4096 by
// default) and run the process out of descriptors, the shedding reserve included (the static
// handler's files then fail with EMFILE: TestShedSlowAtFdLimit's 503s). Cancelling it at the
// cap comes too late for the batch that crossed it. So under a cap the kernel is only ever
// allowed to accept what there is room for, counted in credits (Server.acceptHeld): the
// server's open connections plus the credits every listener's armed accepts hold never
// exceed the cap.
//
//   - With room for the whole queue twice over (acceptQueueMax: the queue's bound, plus as
//     many arriving while the kernel empties it), the listener keeps its multishot accept,
//     which holds that many credits and tops them up after each connection; the common case
//     far below the cap costs what it cost before.
//   - Nearer the cap, up to maxOneShots one-shot accepts, one credit each: each takes at most
//     one connection. Their completions re-arm them while there is room.
//   - With no room, no accept at all: the clients wait in the kernel's queue, as they do in
//     the readiness mode when the loop stops accepting, and a one-shot POLLIN poll on the
//     listener stands for its readability there: when a client waits, the listener sheds
//     (WithShedding) or pauses, as listener.onEvent does at the cap, and once the shed
//     connections' descriptors are closed, there is room for accepts again.
//
// Without a cap (no WithMaxConns, no shedding) the multishot accept runs unbounded, as
// before, and running out of descriptors ends it with EMFILE (acceptFailed).
//
// A connection the kernel accepted is always served, even one that arrives over the cap
// (another loop's listener may have counted the same room between two loads; the queue may
// have grown faster than its bound while a multishot emptied it): the credits make that an
// overshoot of a few at most, which the reserve absorbs, where closing it would reset a
// client that did nothing wrong, and parking it unserved (as before) held a descriptor all the
// same, without bound.

// maxOneShots bounds the one-shot accepts a listener keeps in flight near the cap: enough to
// take a burst's worth of connections per enter, few enough that one listener's idle accepts
// do not hold much of the room other listeners of the server could use.
const maxOneShots = 8

// acceptQueueMax is the most a multishot accept can take from the listener's queue in one
// go: twice the queue's bound (what it holds when full, and as many more arriving while the
// kernel empties it). For TCP the kernel reports the bound of a listening socket in TCP_INFO
// (tcpi_sacked is its sk_max_ack_backlog; the queue holds one more); for other sockets, or
// if that fails, the largest listen backlog there is (65535, somaxconn's ceiling), which in
// effect keeps a listener of a capped server on one-shot accepts.
func acceptQueueMax(ln *listener) int64 {
	n := int64(1 << 16)
	if ln.kind == sockopt.TCP {
		if ti, err := unix.GetsockoptTCPInfo(ln.fd, unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			n = int64(ti.Sacked) + 1
		}
	}
	return 2 * n
}

// syncAccept arms or cancels the listener's accepts as its state and the server's room call
// for (see above): nothing while it is paused or the loop stops, the multishot accept when
// it holds credits for a whole queue, one-shot accepts for the credits there are, and the
// wait for a client when there are none. Requests being cancelled are counted until their
// last completion, which calls it again.
func (r *ringIO) syncAccept(ln *listener) {
	if ln.fd < 0 {
		return
	}
	s := r.slot(ln.fd)
	srv := ln.srv
	on := !ln.paused && !r.stop
	capped := srv.connCap > 0
	wantMulti := on && (!capped || s.st&sAcceptCancel == 0 && ln.holdMulti())
	switch {
	case wantMulti && s.st&sAccept == 0:
		r.queueAccept(ln, s, kAccept)
		s.st |= sAccept
	case !wantMulti && s.st&(sAccept|sAcceptCancel) == sAccept:
		r.cancel(rud(kAccept, s.gen, ln.fd))
		s.st |= sAcceptCancel
	}
	switch {
	case on && capped && !wantMulti:
		for ln.oneShots < maxOneShots && srv.reserveAccepts(1) {
			r.queueAccept(ln, s, kAccept1)
			ln.oneShots++
			// A cancellation still on its way was queued before this accept, and the
			// kernel takes them in order: it cannot end this one, the next pause must.
			s.st &^= sOnesCancel
		}
	case !on && ln.oneShots > 0 && s.st&sOnesCancel == 0:
		// They share their user data: one cancellation with CancelAll ends them all.
		q := r.sqe()
		q.PrepCancel(rud(kAccept1, s.gen, ln.fd), uring.CancelAll)
		q.UserData = rud(kCancel, 0, 0)
		q.Flags |= uring.SQECQESkipSuccess
		s.st |= sOnesCancel
	}
	wantWait := on && capped && s.st&sAccept == 0 && ln.oneShots == 0
	switch {
	case wantWait && s.st&sAcceptWait == 0:
		q := r.sqe()
		q.PrepPollAdd(ln.fd, unix.POLLIN, false)
		q.UserData = rud(kAcceptWait, s.gen, ln.fd)
		r.named(s)
		s.st |= sAcceptWait
		r.live++
	case !wantWait && s.st&(sAcceptWait|sAcceptWaitCancel) == sAcceptWait:
		r.cancel(rud(kAcceptWait, s.gen, ln.fd))
		s.st |= sAcceptWaitCancel
	}
}

// queueAccept queues an accept of kind kAccept (multishot) or kAccept1 (one-shot).
func (r *ringIO) queueAccept(ln *listener, s *ringSlot, kind uint64) {
	q := r.sqe()
	q.PrepAccept(ln.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, kind == kAccept)
	q.UserData = rud(kind, s.gen, ln.fd)
	r.named(s)
	r.live++
}

// holdMulti tops the credits of the listener's multishot accept up to a whole queue's worth
// and reports whether it holds them (all or none are taken).
func (ln *listener) holdMulti() bool {
	if ln.queueMax == 0 {
		ln.queueMax = acceptQueueMax(ln)
	}
	need := ln.queueMax - ln.heldMulti
	if need <= 0 {
		return true
	}
	if !ln.srv.reserveAccepts(need) {
		return false
	}
	ln.heldMulti += need
	return true
}

// dropListener cancels a listener's requests before its socket is closed, and waits for the
// cancellation: a request holds the socket, which would otherwise go on accepting connections
// nobody serves until the next enter. One system call; listeners close rarely. The credits
// its accepts held go back to the server. A connection they accepted before the cancellation
// took effect completes later, under the slot's old generation: it is served all the same
// (see onAccept), as one accepted just before the close would have been — after
// ReleaseListeners the server serves what it accepted, and Shutdown drains it — or, if the
// loop is stopping, closed at once (addConn), never left open.
func (r *ringIO) dropListener(ln *listener) {
	s := r.slot(ln.fd)
	live := ln.oneShots
	if s.st&sAccept != 0 {
		live++
	}
	if s.st&sAcceptWait != 0 {
		live++
	}
	if s.st&(sAccept|sAcceptCancel) == sAccept {
		r.cancel(rud(kAccept, s.gen, ln.fd))
	}
	if ln.oneShots > 0 && s.st&sOnesCancel == 0 {
		q := r.sqe()
		q.PrepCancel(rud(kAccept1, s.gen, ln.fd), uring.CancelAll)
		q.UserData = rud(kCancel, 0, 0)
		q.Flags |= uring.SQECQESkipSuccess
	}
	if s.st&(sAcceptWait|sAcceptWaitCancel) == sAcceptWait {
		r.cancel(rud(kAcceptWait, s.gen, ln.fd))
	}
	ln.srv.releaseAccepts(ln.heldMulti + int64(ln.oneShots))
	ln.heldMulti, ln.oneShots = 0, 0
	if live > 0 {
		if r.dropped == nil {
			r.dropped = make(map[uint64]*droppedListener)
		}
		r.dropped[droppedKey(ln.fd, s.gen)] = &droppedListener{ln, live}
	}
	s.st = 0
	s.gen = (s.gen + 1) & genMask
	if live > 0 {
		// GETEVENTS with nothing to wait for runs the completion work the cancellation
		// queued: the requests end and let go of the socket before close(2).
		r.r.SubmitAndWait(0, 0)
		r.submitted()
		if !r.stop && !r.l.stopping.Load() {
			// The kernel arms an accept's wait on the socket as an exclusive waiter
			// (EPOLLEXCLUSIVE): a new connection wakes one waiter. When another server or
			// process serves the same socket (a reload hands it over: ReleaseListeners,
			// then Shutdown), the wake-up of a connection that arrived just before the
			// cancellation may have gone to this accept, which, cancelled, took nothing:
			// the other waiter, never woken, would leave that client in the queue until
			// the next connection arrives (cmd/reactord's reload tests timed out on it).
			// So what the queue holds now is served here; whoever arrives after the
			// cancellation wakes the other owner. Not when the loop stops (Close): it
			// would only close them.
			ln.acceptQueued()
		}
	}
}

// droppedDone handles a completion of a closed listener's request (see dropListener): a
// connection it accepted (res ≥ 0) is served; ended says the request is over. It reports
// false if the completion belongs to no listener it knows.
func (r *ringIO) droppedDone(fd int, gen uint32, res int32, ended bool, accept bool) bool {
	k := droppedKey(fd, gen)
	d := r.dropped[k]
	if d == nil {
		return false
	}
	if accept && res >= 0 {
		var peer sockopt.Peer
		if ok, admitted := d.ln.admit(int(res), &peer); ok {
			d.ln.serve(int(res), peer, admitted)
		}
	}
	if ended {
		if d.live--; d.live == 0 {
			delete(r.dropped, k)
		}
	}
	return true
}

// onAccept handles a listener's accept completion: of its multishot accept, or of one of its
// one-shot accepts (one).
func (r *ringIO) onAccept(one bool, fd int, gen uint32, res int32, flags uint32) {
	ended := one || flags&uring.CQEFMore == 0
	if ended {
		r.live--
	}
	var ln *listener
	if fd < len(r.slots) && r.slots[fd].gen == gen {
		ln, _ = r.l.others[fd].(*listener)
	}
	if ln == nil {
		if !r.droppedDone(fd, gen, res, ended, true) && res >= 0 {
			unix.Close(int(res)) // nobody knows it (a kernel's stray): never left open
		}
		return
	}
	s := &r.slots[fd]
	var credits int64 // what this completion gives back
	switch {
	case one:
		ln.oneShots--
		credits = 1
		if ln.oneShots == 0 {
			s.st &^= sOnesCancel
		}
	case res >= 0 && ln.heldMulti > 0:
		ln.heldMulti--
		credits = 1
	}
	if ended && !one {
		s.st &^= sAccept | sAcceptCancel
		credits += ln.heldMulti
		ln.heldMulti = 0
	}
	var err error
	if res < 0 {
		err = unix.Errno(-res)
	}
	ln.acceptDone(int(res), err)
	// The credit goes back only now that serve has counted the connection as open, so that
	// another loop never sees room that is not there (see Server.reserveAccepts).
	ln.srv.releaseAccepts(credits)
	if ln.fd >= 0 {
		r.syncAccept(ln)
	}
}

// onAcceptWait handles the poll on a listener with no room to accept: a client waits in its
// queue (or the socket failed). Room may have been made since it was armed (connections
// closed): then syncAccept arms accepts for it; otherwise the listener sheds or pauses, as
// listener.onEvent does when it finds itself readable at the cap.
func (r *ringIO) onAcceptWait(fd int, gen uint32, res int32) {
	r.live--
	var ln *listener
	if fd < len(r.slots) && r.slots[fd].gen == gen {
		ln, _ = r.l.others[fd].(*listener)
	}
	if ln == nil {
		r.droppedDone(fd, gen, res, true, false)
		return
	}
	s := &r.slots[fd]
	s.st &^= sAcceptWait | sAcceptWaitCancel
	if res == -int32(unix.ECANCELED) || ln.paused {
		r.syncAccept(ln)
		return
	}
	r.syncAccept(ln)
	if s.st&sAcceptWait == 0 {
		return // room was made since the wait was armed: accepts are armed for the client
	}
	// No room: at the cap, or what is left of it is held by other listeners' accepts.
	if ln.srv.opt.shed {
		// Shed after this iteration's dispatch (runShed), which pauses the listener if
		// nothing could go. Otherwise the wait just armed again fires at the next enter
		// (the client still waits), after the shed connections' descriptors are closed.
		ln.shed(ErrTooManyConns)
		return
	}
	ln.pause(ErrTooManyConns) // cancels the wait
}

// quiesce ends every request before the loop's descriptors close and the ring goes: it
// cancels them all and reaps until none is left (the connections are closed by then, so every
// completion is stale and only releases what it held). Bounded: whatever a broken kernel
// keeps is cancelled by closing the ring.
func (r *ringIO) quiesce() {
	r.stop = true
	s := r.sqe()
	s.PrepCancel(0, uring.CancelAny|uring.CancelAll)
	s.UserData = rud(kCancel, 0, 0)
	s.Flags |= uring.SQECQESkipSuccess
	for tries := 0; r.live > 0 && tries < 100; tries++ {
		if err := r.wait(10 * time.Millisecond); err != nil {
			break
		}
		r.dispatch()
	}
}
