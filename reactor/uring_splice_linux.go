//go:build linux

package reactor

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/uring"
)

// Files through the ring: in the completion mode a file segment queued by SendFile, from
// ringSpliceMin bytes, goes out as two linked splices per round, file → pipe → socket
// (IORING_OP_SPLICE), queued by the flush and submitted with the iteration's enter like a
// SEND, instead of sendfile(2) on the loop. The copy (and the disk read of a file not in the
// page cache, which sendfile(2) would do on the loop, stalling every connection of it) runs
// in the kernel's io-wq workers.
//
// Kernel facts this rests on (internal/uring's TestSpliceFileThroughPipe and
// TestSpliceLinkedLooksUpLate check them):
//   - io_uring runs every splice in an io-wq worker (REQ_F_FORCE_ASYNC), and looks up the
//     descriptors there, when the worker gets to it, not when the SQE is submitted. So the
//     file, the pipe and the socket must all stay open until the chain's last completion,
//     even when the connection closes meanwhile (forget hands them to an orphan record).
//   - A pipe holds pages, not bytes: a splice from a file at an offset inside a page fills a
//     pipe of P bytes with P - off%page bytes at most. A round asks for no more than that, so
//     the first splice is short only at the file's end or on an error.
//   - A short or failed first splice fails the link: the second completes with -ECANCELED and
//     what the first produced waits in the pipe (sent by the next round).
//   - The socket is non-blocking, so the splice into it does not wait for room: it moves what
//     fits (the rest waits in the pipe) or fails with EAGAIN. io_uring does not poll for room
//     before a splice as it does before a SEND, so the loop polls (kRoom, as for sendfile) and
//     sends the pipe's bytes when the socket has room.
//
// A connection holds a pipe from the loop's pool only while a round is in flight or bytes
// wait in it; an empty pipe goes back to the pool, one that may hold bytes (the connection
// closed) is closed.

// ringFile is a connection's file transfer through a pipe (its slot has sPiped).
type ringFile struct {
	pipe    ringPipe
	inPipe  int  // bytes in the pipe, not yet in the socket
	fd      int  // the file the splice in flight reads (in), to hand over at close
	in, out bool // in flight: the splice file → pipe, the splice pipe → socket
}

// ringPipe is one pipe: r is the read end, w the write end, size its capacity in bytes.
type ringPipe struct {
	r, w int
	size int
}

func (p ringPipe) close() {
	unix.Close(p.r)
	unix.Close(p.w)
}

// ringFileOrphan holds what a closed connection's splice chain still names, closed when the
// chain's last completion (the socket splice's) arrives.
type ringFileOrphan struct {
	sock, file int
	pipe       ringPipe
}

const (
	// ringPipeSize is what a pipe is grown to (F_SETPIPE_SZ; 1 MiB is fs.pipe-max-size's
	// default, the most an unprivileged process may ask): one round moves up to that much,
	// and fewer rounds mean fewer io-wq hand-offs and loop wake-ups (measured against 256 KiB
	// in docs/IO_URING.md). A pipe's pages are the file's page-cache pages, not copies, but
	// its size counts against the user's fs.pipe-user-pages-soft (64 MiB by default); past
	// it the kernel refuses to grow pipes of unprivileged users.
	ringPipeSize = 1 << 20
	// ringPipeMin is the least a pipe must hold to be used: a smaller one (the kernel refused
	// to grow it) would mean many small rounds, so the file goes out with sendfile(2) instead.
	ringPipeMin = 64 << 10
	// ringPipesKept bounds the idle pipes a loop keeps for the next file (their size counts
	// against the user's pipe budget while idle too).
	ringPipesKept = 4
)

// ringSpliceMin is the smallest file segment sent through the ring; a shorter one goes out
// with sendfile(2) on the loop, which costs less CPU in all up to 256 KiB (two io-wq
// hand-offs per round cost more than the copy saved on the loop; docs/IO_URING.md). A
// variable only so that BenchmarkSendFile can measure splicing every file; never changed
// while a server runs.
var ringSpliceMin int64 = 512 << 10

var pageSize = int64(os.Getpagesize())

// takePipe returns a pipe from the pool, or a new one. ok is false when none can be had (out
// of descriptors): the file then goes out with sendfile(2).
func (r *ringIO) takePipe() (ringPipe, bool) {
	if n := len(r.pipes); n > 0 {
		p := r.pipes[n-1]
		r.pipes = r.pipes[:n-1]
		return p, true
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return ringPipe{}, false
	}
	p := ringPipe{r: fds[0], w: fds[1]}
	size, err := unix.FcntlInt(uintptr(p.w), unix.F_SETPIPE_SZ, ringPipeSize)
	if err != nil {
		// Refused (EPERM above the user's pipe page budget): the pipe has what the kernel gave.
		size, err = unix.FcntlInt(uintptr(p.w), unix.F_GETPIPE_SZ, 0)
	}
	if err != nil || size < ringPipeMin {
		p.close()
		return ringPipe{}, false
	}
	p.size = size
	return p, true
}

// putPipe gives an empty pipe back to the pool.
func (r *ringIO) putPipe(p ringPipe) {
	if len(r.pipes) < ringPipesKept && !r.stop {
		r.pipes = append(r.pipes, p)
		return
	}
	p.close()
}

// flushPiped runs first in the flush of a connection that holds a pipe, and reports whether
// the flush ends there: a round is in flight (its completion continues), or the bytes waiting
// in the pipe were just queued for the socket (they go before anything else pending: they
// came from the head of the queue).
func (r *ringIO) flushPiped(c *Conn) bool {
	fd := int(c.fd)
	f := r.files[fd]
	if f.in || f.out {
		return true
	}
	if f.inPipe == 0 {
		return false
	}
	s := &r.slots[fd]
	q := r.sqe()
	q.PrepSplice(f.pipe.r, ^uint64(0), fd, ^uint64(0), uint32(f.inPipe), 0)
	q.UserData = rud(kSpliceOut, s.gen, fd)
	r.named(s)
	f.out = true
	r.live++
	return true
}

// spliceFile starts a round of the file segment at the head of c's queue: the file's next
// bytes into the connection's (empty) pipe, linked to the pipe into the socket. It reports
// false when the segment is not for the ring (small, or no pipe to be had): the caller sends
// it with sendfile(2).
func (r *ringIO) spliceFile(c *Conn, s *ringSlot, seg *outSeg) bool {
	if !r.splice || !seg.ring && seg.n < ringSpliceMin {
		return false
	}
	fd := int(c.fd)
	f := r.files[fd]
	if f == nil {
		p, ok := r.takePipe()
		if !ok {
			return false
		}
		if r.files == nil {
			r.files = make(map[int]*ringFile)
		}
		f = &ringFile{pipe: p}
		r.files[fd] = f
		s.st |= sPiped
	}
	n := min(seg.n, int64(f.pipe.size)-seg.off%pageSize)
	f.fd = seg.fd
	seg.ring = true // its rest goes through the ring too, however small
	q := r.sqe()
	q.PrepSplice(seg.fd, uint64(seg.off), f.pipe.w, ^uint64(0), uint32(n), 0)
	q.Flags |= uring.SQEIOLink
	q.UserData = rud(kSpliceIn, s.gen, fd)
	q = r.sqe()
	q.PrepSplice(f.pipe.r, ^uint64(0), fd, ^uint64(0), uint32(n), 0)
	q.UserData = rud(kSpliceOut, s.gen, fd)
	r.named(s)
	f.in, f.out = true, true
	r.live += 2
	r.rounds++
	return true
}

// onSpliceIn handles the file → pipe splice: the file's bytes now in the pipe leave the
// queue's segment and count as the slot's (Buffered does not change).
func (r *ringIO) onSpliceIn(fd int, gen uint32, res int32) {
	r.live--
	c := r.conn(fd, gen)
	if c == nil {
		return // the socket splice's completion, always the chain's last, releases all
	}
	f := r.files[fd]
	f.in = false
	switch {
	case res > 0:
		q := c.io.q
		seg := &q.segs[0]
		seg.off += int64(res)
		seg.n -= int64(res)
		q.bytes -= int64(res)
		f.inPipe += int(res)
		c.flags |= fSendBuf
		if seg.n == 0 {
			// No request names the file any more: it can go.
			unix.Close(seg.fd)
			q.pop()
		}
	case res == 0:
		c.closeNow(errShortFile)
	case res == -int32(unix.EINTR), res == -int32(unix.ECANCELED):
		// Interrupted before it moved anything; the next round asks again.
	default:
		c.closeNow(os.NewSyscallError("splice", unix.Errno(-res)))
	}
}

// onSpliceOut handles the pipe → socket splice, the chain's last completion: the output
// advances by what the socket took, and the rest is settled as after a send.
func (r *ringIO) onSpliceOut(ud uint64, fd int, gen uint32, res int32) {
	r.live--
	l := r.l
	c := r.conn(fd, gen)
	if c == nil {
		if o, ok := r.fileOrphans[ud]; ok {
			delete(r.fileOrphans, ud)
			o.pipe.close() // it may hold bytes: never reused
			if o.file >= 0 {
				unix.Close(o.file)
			}
			l.closeFd(o.sock)
			l.closedConns++
		}
		return
	}
	s := &r.slots[fd]
	f := r.files[fd]
	f.out = false
	before := c.Buffered()
	switch {
	case res > 0:
		f.inPipe -= int(res)
		l.st.bytesOut += uint64(res)
	case res == -int32(unix.ECANCELED):
		// The first splice was short (the bytes it moved wait in the pipe) or failed (and
		// closed the connection, whose completions are stale by now).
	case res == -int32(unix.EAGAIN) || res == 0 && f.inPipe > 0:
		// The socket is full: the ring says when it has room (onRoom), then the pipe's bytes go.
		q := r.sqe()
		q.PrepPollAdd(fd, unix.POLLOUT, false)
		q.UserData = rud(kRoom, s.gen, fd)
		r.named(s)
		s.st |= sRoom
		r.live++
	case res < 0:
		c.closeNow(os.NewSyscallError("splice", unix.Errno(-res)))
		return
	}
	if f.inPipe == 0 && !f.in {
		delete(r.files, fd)
		s.st &^= sPiped
		r.putPipe(f.pipe)
		if s.sbuf == nil {
			c.flags &^= fSendBuf
		}
	}
	c.flushed(before)
	if c.flags&fClosed == 0 && s.st&sRoom == 0 && c.Buffered() > 0 {
		c.markDirty()
	}
}

// forgetFile releases a closing connection's file transfer. With a round in flight the
// descriptors it names are handed to an orphan record, closed by its last completion, and it
// reports true: the caller must not close the socket either.
func (r *ringIO) forgetFile(c *Conn, s *ringSlot) bool {
	fd := int(c.fd)
	f := r.files[fd]
	delete(r.files, fd)
	if !f.in && !f.out {
		f.pipe.close() // it may hold bytes: never reused
		return false
	}
	o := ringFileOrphan{sock: fd, file: -1, pipe: f.pipe}
	if f.in {
		r.cancel(rud(kSpliceIn, s.gen, fd))
		if q := c.io.q; q != nil && len(q.segs) > 0 && q.segs[0].fd == f.fd {
			// The worker may not have looked the file up yet: it stays open, out of the queue.
			o.file = f.fd
			q.bytes -= q.segs[0].n
			q.pop()
		}
	}
	// Cancelling the socket splice finds it only once the first has completed; before that,
	// cancelling the first cancels it through the link.
	ud := rud(kSpliceOut, s.gen, fd)
	r.cancel(ud)
	if r.fileOrphans == nil {
		r.fileOrphans = make(map[uint64]ringFileOrphan)
	}
	r.fileOrphans[ud] = o
	return true
}

// closeFiles releases the pool's pipes and what orphan records a broken kernel left (the
// ring is closed, so no request names them any more).
func (r *ringIO) closeFiles() {
	for _, p := range r.pipes {
		p.close()
	}
	r.pipes = nil
	for ud, o := range r.fileOrphans {
		delete(r.fileOrphans, ud)
		o.pipe.close()
		if o.file >= 0 {
			unix.Close(o.file)
		}
		unix.Close(o.sock)
		r.l.srv.open.Add(-1) // as closeDeferred counts a connection's descriptor
	}
}
