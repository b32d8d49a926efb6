package reactor

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/bufpool"
	"github.com/reactord/reactord/internal/sockopt"
	"github.com/reactord/reactord/poller"
)

// onEvent handles one readiness report for the connection.
func (c *Conn) onEvent(ev poller.Events) {
	if c.flags&fConnecting != 0 && !c.onConnect(ev) {
		return
	}
	if ev&poller.Writable != 0 && c.flags&fWantWrite != 0 {
		c.flags &^= fWantWrite // set again by flush if the socket is still full
		c.flush()
		if c.flags&fClosed != 0 {
			return
		}
	}
	if ev&(poller.Readable|poller.Hangup|poller.Error) == 0 {
		return
	}
	if c.reading() {
		// Hangup and Error are read too: the read returns the buffered data, then EOF or the
		// pending error (ECONNRESET), which is the most precise cause to report.
		c.read()
		return
	}
	// Not reading (paused, or closing), yet the kernel reports a condition it reports even
	// without read interest: EPOLLERR, or EPOLLHUP/POLLHUP meaning both directions are shut
	// (a reset, typically). Level-triggered, it would be reported on every Wait: settle it now.
	c.hangup(ev)
}

// reading reports whether the connection wants input now. Kept input queued for redelivery
// (fRedeliver) comes first: nothing is read until OnData has had it back, so new bytes, and
// above all a peer's EOF, are never seen before the input that preceded them.
func (c *Conn) reading() bool {
	return c.flags&(fPausedUser|fPausedBP|fClosing|fClosed|fEOF|fRedeliver|fTLSFull) == 0
}

// read performs one read(2) and hands the input to OnData. Level-triggered readiness brings
// the loop back if more is waiting; one read per connection per iteration keeps loops fair.
func (c *Conn) read() {
	if c.tls != nil {
		// The TLS seam: ciphertext in, plaintext to OnData (tls_conn.go).
		if c.flags&fHandshake != 0 {
			c.readHandshake()
		} else {
			c.readTLS(1)
		}
		return
	}
	l := c.loop
	data, tail, inConn := c.inputSpace()
	n, err := readFd(int(c.fd), data[tail:])
	if err != nil {
		if err == unix.EAGAIN {
			// Spurious readiness (another thread of the kernel took the data, or a stale
			// level report); nothing to do.
			return
		}
		c.closeNow(os.NewSyscallError("read", err))
		return
	}
	if n == 0 {
		c.onEOF()
		return
	}
	l.st.bytesIn += uint64(n)
	if c.flags&fTimeouts != 0 {
		c.x.Load().to.lastActive, c.x.Load().to.lastRead = l.nowNs, l.nowNs
	}
	c.deliver(data[:tail+n], inConn)
}

// inputSpace returns where the next input goes: data, with the kept tail in data[:tail] and
// room after it. inConn says whether data is the connection's own storage (io.in) rather
// than the loop's shared buffer.
func (c *Conn) inputSpace() (data []byte, tail int, inConn bool) {
	l := c.loop
	buf := l.readBuf
	kept := c.kept()
	tail = len(kept)
	switch {
	case tail == 0:
		return buf, 0, false
	case tail <= len(buf)/2:
		// A small tail is staged in front of the shared buffer and the read lands right
		// after it: OnData sees one contiguous slice and the tail storage is reused.
		copy(buf, kept)
		return buf, tail, false
	default:
		// A large tail (a big message arriving in pieces) grows in the connection's own
		// storage, and the read lands there directly instead of being copied twice.
		b := c.io
		b.in = l.pool.Grow(b.in, len(buf)/2)
		return b.in[:cap(b.in)], tail, true
	}
}

// readFd is read(2) retried on EINTR. The fd is non-blocking, so the read is a raw system
// call (rawRead): it cannot block, and the scheduler hand-off would be pure cost.
func readFd(fd int, p []byte) (int, error) {
	for {
		n, err := rawRead(fd, p)
		if err != unix.EINTR {
			if n < 0 {
				n = 0
			}
			return n, err
		}
	}
}

// deliver calls OnData and keeps what it did not consume. inConn says whether data lives in
// the connection's own input storage (io.in) rather than in the loop's shared buffer.
func (c *Conn) deliver(data []byte, inConn bool) {
	paused := c.flags & fPausedUser
	c.flags |= fInData
	consumed := c.hs.h.OnData(c, data)
	c.flags &^= fInData
	if c.flags&fClosed != 0 {
		return // CloseNow inside OnData; storage is released already
	}
	if consumed < 0 || consumed > len(data) {
		c.closeNow(fmt.Errorf("%w: %d of %d bytes", ErrBadConsumed, consumed, len(data)))
		return
	}
	if consumed > 0 {
		c.flags |= fProgress
	}
	sync := c.flags&fPausedUser != paused || c.flags&fResumed != 0
	if c.Buffered() >= c.loop.opt.high {
		// Output-bound: read nothing more until it drains. Whatever input is kept is handed
		// back before the next read (see afterFlush), so kept input stays within one read of
		// what the handler left, however fast the peer pipelines.
		c.flags |= fPausedBP | fAboveLow
		sync = sync || c.flags&fDirty == 0 // the end-of-iteration flush syncs a dirty one
	}
	rest := data[consumed:]
	if c.flags&fClosing != 0 {
		rest = nil // closing: later input is discarded anyway
	}
	pool := &c.loop.pool
	switch {
	case len(rest) == 0:
		c.dropKept()
	case inConn:
		b := c.io
		if consumed >= len(rest) {
			// Slide the tail to the front of its own storage (memmove handles the overlap):
			// it moves no more bytes than OnData took, so each byte moves O(1) times.
			b.in = b.in[:copy(b.in[:cap(b.in)], rest)]
		} else {
			// A tail larger than what was taken (a big message arriving in pieces, or many
			// small ones taken one per call) stays where it is, and the storage before it is
			// left unused until the buffer grows or goes back: sliding it every time would
			// be quadratic in its size.
			b.in = rest
		}
	default:
		b := c.bufs()
		if cap(b.in) < len(rest) {
			pool.Put(b.in)
			b.in = pool.Get(len(rest))
		}
		b.in = append(b.in[:0], rest...)
	}
	if c.flags&fResumed != 0 {
		c.flags &^= fResumed
		c.scheduleRedeliver()
	}
	if sync {
		// PauseRead or ResumeRead ran inside OnData: one interest change for both.
		c.syncInterest()
		if c.flags&fClosed != 0 {
			return
		}
	}
	if c.flags&(fEOF|fEOFSettled) == fEOF {
		c.eofProgress(consumed)
	}
}

// onEOF handles the peer's half-close (read returned 0). Nothing more will arrive, but the
// input the handler kept is still its to answer: it is handed back first, and the EOF is acted
// on only once that input is dealt with (eofProgress, settleEOF).
func (c *Conn) onEOF() {
	c.flags |= fEOF
	// Read interest must go: a level-triggered poller reports EOF as readable for ever.
	c.syncInterest()
	if c.flags&fClosed != 0 {
		return
	}
	if c.hasKept() {
		c.scheduleRedeliver()
		return
	}
	c.settleEOF()
}

// eofProgress runs after OnData was handed input kept past the peer's EOF, and decides between
// handing the rest back again and acting on the EOF. No new bytes will ever join the rest, so
// it is handed back as long as the handler makes progress on it, or is busy (it will be handed
// back when the handler resumes), and dropped once OnData takes nothing of it.
func (c *Conn) eofProgress(consumed int) {
	switch {
	case !c.hasKept():
		c.settleEOF()
	case c.flags&(fPausedUser|fPausedBP) != 0:
		// ResumeRead, or the output draining (afterFlush), hands the rest back.
	case consumed > 0:
		c.scheduleRedeliver()
	case c.holds > 0:
		// The last Release hands the rest back.
	default:
		// Not busy and nothing taken: the rest is an incomplete message for good.
		c.settleEOF()
	}
}

// settleEOF acts on the peer's half-close once the input kept before it is dealt with: what is
// left of it is dropped, OnReadEOF is asked, and unless it keeps the connection open, the
// connection closes with io.EOF once it is not busy and its output is flushed.
func (c *Conn) settleEOF() {
	c.flags |= fEOFSettled
	c.flags &^= fTLSMore
	c.dropKept()
	if eh := c.hs.eh; eh != nil && eh.OnReadEOF(c) {
		if c.flags&(fClosed|fClosing) == 0 {
			// The handler still owes output and will Close when done. A later full hang-up
			// or error is still reported and settled by onEvent.
			c.flags |= fKeepOpen
		}
		return
	}
	c.closeAfterEOF()
}

// closeAfterEOF closes a connection whose EOF is settled once it is not busy: at once when no
// output is pending, otherwise after the flush. ResumeRead calls it again.
func (c *Conn) closeAfterEOF() {
	if c.flags&(fClosed|fClosing|fKeepOpen) != 0 || c.busy() {
		return
	}
	if c.Buffered() == 0 {
		c.closeNow(io.EOF)
		return
	}
	c.flags |= fClosing | fCloseEOF
	c.markDirty()
}

// closeGracefully runs a Close on the loop: stop reading, flush, then close.
func (c *Conn) closeGracefully() {
	if c.flags&(fClosed|fClosing) != 0 {
		if c.flags&fClosing != 0 {
			c.flags &^= fCloseEOF // a local Close was asked for: report it as such
		}
		return
	}
	c.flags |= fClosing
	c.flags &^= fTLSMore
	if c.hasKept() {
		c.flags |= fDropped // its peer may still be sending: see lingers
	}
	c.dropKept()
	if c.Buffered() == 0 {
		c.closeNow(nil)
		return
	}
	c.syncInterest()
	c.markDirty()
}

// closeNow closes the connection at once: off the poller, buffers released, OnClose called,
// and the fd closed at the end of the iteration.
func (c *Conn) closeNow(err error) {
	if c.flags&fClosed != 0 {
		return
	}
	c.flags |= fClosed
	c.state.Store(connClosed)
	l := c.loop
	if c.hs.dial != nil {
		c.endDial() // a dial that never got established
	}
	fd := int(c.fd)
	linger := fd >= 0 && err == nil && c.lingers()
	if fd >= 0 && l.removeConn(c, linger) { // a dialed connection has no descriptor before its name lookup
		linger = false // the ring's splice still names it, and the ring closes it after
	}
	if c.tmi != 0 {
		l.timers.Remove(int(c.tmi))
	}
	c.dropKept()
	if c.tls != nil {
		c.closeTLS(err) // before the output goes: close_notify follows a complete stream only
	}
	c.releaseOutput()
	if linger && !l.linger(fd) { // after closeTLS: its close_notify goes before the FIN
		l.closeFd(fd)
		l.closedConns++
	}
	if pc := c.pacerIfAny(); pc != nil {
		pc.wake() // AsyncWriteContext waiters return ErrConnClosed
	}
	if c.flags&fHandshake != 0 {
		return // the Handler never had it (no OnOpen)
	}
	c.hs.h.OnClose(c, err)
}

// lingers reports whether a graceful local close (Close, its output drained) should keep the
// descriptor to read what the peer still sends (lingerer): a TCP connection whose peer has
// not ended its stream, and that had input discarded by the close or has input waiting in the
// socket — the signs that the peer is still sending, whose unread bytes would turn the close
// into a reset.
func (c *Conn) lingers() bool {
	return c.kind == sockopt.TCP && c.flags&(fClosing|fEOF|fCloseEOF) == fClosing &&
		(c.flags&fDropped != 0 || c.inputWaiting())
}

// busy reports whether the connection's handler owes it work (see the package doc): it holds
// it, paused reading, or OnReadEOF kept it open.
func (c *Conn) busy() bool {
	return c.holds > 0 || c.flags&(fPausedUser|fKeepOpen) != 0
}

// idle reports whether the connection has nothing in flight: not busy, no kept input, no
// pending output. Shutdown closes idle connections.
func (c *Conn) idle() bool {
	return c.flags&fClosed == 0 && !c.busy() && !c.hasKept() && c.Buffered() == 0
}

// inputWaiting reports whether bytes the loop has not read yet sit in the socket's receive
// buffer. Shutdown asks before closing a connection it takes for idle: a request that reached the
// kernel just before the drain (a keep-alive client's next request, sent while the loop was busy
// with other work) would otherwise be answered with a reset, and its client could not know
// whether it was processed. Such a connection is read and served as usual (a codec answers
// "Connection: close" while draining) and closed once idle. recv(MSG_PEEK) leaves the bytes in
// place; it is a system call per connection, but Shutdown is rare. A peer that sent only a FIN
// (zero bytes) or an error counts as no input.
func (c *Conn) inputWaiting() bool {
	n, _, err := unix.Recvfrom(int(c.fd), c.loop.readBuf[:1], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err == nil && n > 0
}

// scheduleRedeliver queues kept input to be handed back to OnData in the next iteration.
func (c *Conn) scheduleRedeliver() {
	if !c.hasKept() || c.flags&(fRedeliver|fPausedUser|fClosing|fClosed) != 0 {
		return
	}
	c.flags |= fRedeliver
	c.loop.redeliver = append(c.loop.redeliver, c)
}

// syncInterest registers the interest the connection's state calls for, if it changed. In the
// completion mode that is the ring's receive, on or off (uring_linux.go).
func (c *Conn) syncInterest() {
	if c.flags&fRing != 0 {
		c.loop.ring.syncRecv(c)
		return
	}
	var want poller.Events
	if c.reading() {
		want |= poller.Readable
	}
	if c.flags&fWantWrite != 0 {
		want |= poller.Writable
	}
	if want == poller.Events(c.reg) || c.flags&fClosed != 0 || c.fd < 0 {
		return
	}
	if err := c.loop.poll.Modify(int(c.fd), want); err != nil {
		c.closeNow(err)
		return
	}
	c.reg = uint8(want)
}

// markDirty queues the connection for the end-of-iteration flush. A connection waiting for
// Writable is not queued: the socket is full and the poller will say when it is not.
func (c *Conn) markDirty() {
	if c.flags&(fDirty|fWantWrite|fClosed) != 0 {
		return
	}
	c.flags |= fDirty
	c.loop.dirty = append(c.loop.dirty, c)
}

// appendOut copies p to the end of the pending output.
func (c *Conn) appendOut(p []byte) {
	b := c.bufs()
	if b.q != nil {
		b.q.appendData(p, &c.loop.pool)
	} else {
		b.out = appendBuf(&c.loop.pool, b.out, &b.head, p)
	}
	c.markDirty()
}

// appendBuf appends p to b (pending bytes b[*head:]), borrowing, compacting or growing storage.
//
// Either way of making room copies the unsent bytes, so each must be paid for by bytes
// appended since the last copy, or a buffer that fills again and again behind a slow client
// would be copied in full for every few kilobytes it takes (quadratic in its size). Compacting
// (moving the unsent bytes to the front) is done only when at least as many bytes were written
// already as are unsent, and growing is geometric (bufpool.Size) and moves only the unsent
// bytes.
func appendBuf(pool *bufpool.Pool, b []byte, head *int, p []byte) []byte {
	switch {
	case b == nil:
		b = pool.Get(len(p))
	case cap(b)-len(b) >= len(p):
	case *head >= len(b)-*head && cap(b)-(len(b)-*head) >= len(p):
		b = b[:copy(b, b[*head:])]
		*head = 0
	default:
		unsent := b[*head:]
		nb := pool.Get(bufpool.Size(cap(b), len(unsent)+len(p)))
		nb = append(nb, unsent...)
		pool.Put(b)
		b, *head = nb, 0
	}
	return append(b, p...)
}

// flush writes pending output: one write(2) for the buffered bytes, then sendfile(2) for
// queued files. EAGAIN (or a short write, which means the socket buffer is full) turns
// Writable interest on until the poller reports room; it is turned off once output drains.
func (c *Conn) flush() {
	if c.flags&fRing != 0 {
		c.loop.ring.flush(c) // the seam: a SEND queued with the next enter (uring_linux.go)
		return
	}
	if c.tls != nil {
		// The TLS seam: plaintext sealed into records, then written (tls_conn.go). Never
		// fRing: the ring does not drive TLS connections (Loop.ringDrives).
		c.flushTLS()
		return
	}
	l := c.loop
	before := c.Buffered()
	for b := c.io; b != nil; {
		if b.head < len(b.out) {
			// A raw write (rawWrite): the socket is non-blocking, so it cannot block.
			n, err := rawWrite(int(c.fd), b.out[b.head:])
			if err == unix.EINTR {
				continue
			}
			if n > 0 {
				b.head += n
				l.st.bytesOut += uint64(n)
			}
			if err == unix.EAGAIN || err == nil && b.head < len(b.out) {
				c.flags |= fWantWrite
				break
			}
			if err != nil {
				c.closeNow(os.NewSyscallError("write", err))
				return
			}
		}
		if b.out != nil {
			l.pool.Put(b.out)
			b.out, b.head = nil, 0
		}
		if b.q == nil || len(b.q.segs) == 0 {
			b.q = nil
			c.flags &^= fWantWrite
			c.settleIO()
			break
		}
		if !c.flushQueue() {
			if c.flags&fClosed != 0 {
				return
			}
			break
		}
	}
	if c.io == nil {
		c.flags &^= fWantWrite // nothing pending (it drained, or there was none)
	}
	c.flushed(before)
}

// flushed runs after a flush that started with before bytes pending: activity, and the
// backpressure and close decisions of afterFlush.
func (c *Conn) flushed(before int) {
	l := c.loop
	after := c.Buffered()
	if after < before {
		c.active()
	}
	if before > l.opt.low {
		// Output written outside OnData (by OnWritable, a timer, a posted task) can rise
		// above the low-water mark and drain in this one write; OnWritable is still owed.
		c.flags |= fAboveLow
	}
	c.afterFlush(after)
}

// afterFlush applies backpressure and completes a graceful close.
func (c *Conn) afterFlush(pending int) {
	opt := c.loop.opt
	if pc := c.pacerIfAny(); pc != nil {
		pc.publish(pending, opt.low)
	}
	if pending == 0 && c.flags&fClosing != 0 {
		var cause error
		if c.flags&fCloseEOF != 0 {
			cause = io.EOF
		}
		c.closeNow(cause)
		return
	}
	switch {
	case pending >= opt.high:
		c.flags |= fPausedBP | fAboveLow
	case pending > opt.low:
		c.flags |= fAboveLow
	default:
		if c.flags&fPausedBP != 0 {
			c.readNow()
			if c.hasKept() && c.flags&(fPausedUser|fClosing) == 0 {
				// Kept input first: reading resumes only once the handler has worked
				// through it without filling the output again (redeliverTails).
				c.scheduleRedeliver()
			} else {
				c.flags &^= fPausedBP
			}
		}
		if c.flags&fAboveLow != 0 {
			c.flags &^= fAboveLow
			if wh := c.hs.wh; wh != nil && c.flags&fClosing == 0 {
				wh.OnWritable(c)
				if c.flags&fClosed != 0 {
					return
				}
			}
		}
	}
	c.syncInterest()
}

// releaseOutput drops pending output and queued files.
func (c *Conn) releaseOutput() {
	b := c.io
	if b == nil {
		return
	}
	if b.out != nil {
		c.loop.pool.Put(b.out)
		b.out, b.head = nil, 0
	}
	if b.q != nil {
		b.q.release(&c.loop.pool)
		b.q = nil
	}
	c.settleIO()
}
