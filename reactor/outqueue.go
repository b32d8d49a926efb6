package reactor

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/bufpool"
)

// outQueue holds output queued behind Conn.out once SendFile has been used: segments of
// bytes and of file ranges, sent in order. Connections that never send files never have one.
type outQueue struct {
	segs  []outSeg
	bytes int64 // pending bytes in segs, data and file
}

// outSeg is either bytes (fd < 0) or a range of a file, by a descriptor the queue owns.
// ring: the completion mode has started sending the file through its pipe (splices), and
// sends the rest that way too.
type outSeg struct {
	data []byte
	fd   int
	off  int64
	n    int64
	ring bool
}

// errShortFile is the cause reported when a file queued by SendFile ends early.
var errShortFile = fmt.Errorf("reactor: SendFile: file ended before the requested range: %w", io.ErrUnexpectedEOF)

// sendfileChunk bounds one sendfile(2); the kernel caps a call near 2 GiB anyway.
const sendfileChunk = 1 << 30

func (q *outQueue) appendData(p []byte, pool *bufpool.Pool) {
	if k := len(q.segs); k > 0 && q.segs[k-1].fd < 0 {
		last := &q.segs[k-1]
		last.data = append(pool.Grow(last.data, len(p)), p...)
	} else {
		q.segs = append(q.segs, outSeg{data: append(pool.Get(len(p)), p...), fd: -1})
	}
	q.bytes += int64(len(p))
}

func (q *outQueue) pop() {
	copy(q.segs, q.segs[1:])
	q.segs[len(q.segs)-1] = outSeg{}
	q.segs = q.segs[:len(q.segs)-1]
}

func (q *outQueue) release(pool *bufpool.Pool) {
	for _, s := range q.segs {
		if s.fd >= 0 {
			unix.Close(s.fd)
		} else {
			pool.Put(s.data)
		}
	}
	q.segs = nil
	q.bytes = 0
}

// appendFile queues a file range (fd is a duplicate the queue now owns).
func (c *Conn) appendFile(fd int, off, n int64) {
	b := c.bufs()
	if b.q == nil {
		b.q = &outQueue{}
	}
	b.q.segs = append(b.q.segs, outSeg{fd: fd, off: off, n: n})
	b.q.bytes += n
	c.markDirty()
}

// flushQueue advances to the next queued segment: a data segment becomes Conn.out, a file
// range is sent with sendfile(2). It reports whether flush should go round again.
func (c *Conn) flushQueue() bool {
	b := c.io
	q := b.q
	seg := &q.segs[0]
	if seg.fd < 0 {
		b.out, b.head = seg.data, 0
		q.bytes -= int64(len(seg.data))
		q.pop()
		return true
	}
	for {
		n, err := sendFile(int(c.fd), seg.fd, &seg.off, int(min(seg.n, sendfileChunk)))
		if err == unix.EINTR {
			continue
		}
		if n > 0 {
			seg.n -= int64(n)
			q.bytes -= int64(n)
			c.loop.st.bytesOut += uint64(n)
		}
		switch {
		case err == unix.EAGAIN:
			c.flags |= fWantWrite
			return false
		case err != nil:
			c.closeNow(os.NewSyscallError("sendfile", err))
			return false
		case seg.n == 0:
			unix.Close(seg.fd)
			q.pop()
			return true
		case n == 0:
			c.closeNow(errShortFile)
			return false
		default:
			// A short transfer: the socket buffer is full.
			c.flags |= fWantWrite
			return false
		}
	}
}
