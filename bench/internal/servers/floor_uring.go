package servers

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/uring"
)

// The floor-uring server is floor's completion-level twin: how far below the epoll floor a Go
// responder goes when the kernel does the reads and writes. It exists to measure the design
// before it is built into the reactor (issue 16). Per loop, one locked OS thread owns one
// io_uring (SINGLE_ISSUER and DEFER_TASKRUN: completion work runs only when the loop asks for
// it, never by interrupting it) and:
//
//   - one multishot ACCEPT on the listener: every connection arrives as a completion;
//   - one multishot RECV per connection into a provided-buffer ring shared by all of them, so
//     memory is committed only while data waits to be scanned, never per idle connection;
//   - the responses of an iteration queued as SEND SQEs and handed to the kernel by the same
//     io_uring_enter that waits for the next completions (GETEVENTS): one system call per
//     iteration, however many connections it served, and no other system call on the
//     request path.
//
// Like floor it scans for CRLFCRLF, answers each with the canned response, does not parse
// HTTP and times nothing out. It is not a server anyone should deploy.
func floorUringServer() Server {
	return Server{
		Name:        "floor-uring",
		Description: "minimal io_uring completion responder (multishot accept/recv, provided buffers, sends batched with the wait)",
		available:   uringAvailable,
		start:       startFloorUring,
	}
}

// floorUringConfig is what the prototype needs from the kernel: DEFER_TASKRUN (6.1) implies
// multishot accept (5.19), multishot recv and provided-buffer rings (6.0).
var floorUringConfig = uring.Config{
	Entries:   512,
	CQEntries: 8192,
	Flags:     uring.SetupSingleIssuer | uring.SetupDeferTaskrun,
	Optional:  uring.SetupSubmitAll,
	Features:  uring.FeatNoDrop | uring.FeatExtArg | uring.FeatFastPoll,
	Ops:       []uint8{uring.OpAccept, uring.OpRecv, uring.OpSend, uring.OpPollAdd},
}

// Buffer ring per loop: 512 buffers of 4 KiB (2 MiB, touched as the ring cycles).
const (
	fuBufCount = 512
	fuBufSize  = 4096
	fuGroup    = 1
)

func uringAvailable() error {
	errc := make(chan error, 1)
	go func() {
		// SINGLE_ISSUER binds the ring to the creating thread: check on a thread of its own.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		r, err := uring.New(floorUringConfig)
		if err == nil {
			r.Close()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

type floorUringInstance struct {
	addr    string
	wakeFD  int
	loops   []*fuLoop
	wg      sync.WaitGroup
	closeMu sync.Mutex
	closed  bool
}

// User data: kind in the top 8 bits, connection generation in the next 24, fd in the low 32.
const (
	fuAccept = 1
	fuRecv   = 2
	fuSend   = 3
	fuWake   = 4
)

func fuData(kind uint64, gen uint32, fd int) uint64 {
	return kind<<56 | uint64(gen&(1<<24-1))<<32 | uint64(uint32(fd))
}

type fuLoop struct {
	lfd    int
	wakeFD int
	r      *uring.Ring
	br     *uring.BufRing
	conns  []fuConn // indexed by fd
	dirty  []int32  // conns with output queued this iteration
	accept bool     // the multishot accept is in flight
}

type fuConn struct {
	open    bool
	gen     uint32
	scan    crlfScanner
	recv    bool   // the multishot recv is in flight
	sending []byte // what the SEND in flight reads; kept reachable until it completes
	out     []byte // queued for the next SEND
	// own are the connection's two buffers for output that is more than one canned slice:
	// one may be in flight while the other fills. outOwn says out is own[cur].
	own    [2][]byte
	cur    int
	outOwn bool
	queued bool // in dirty
}

func startFloorUring(_ context.Context, o Options) (Instance, error) {
	tcp, err := net.ResolveTCPAddr("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("floor-uring: %w: %w", ErrBadOptions, err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("floor-uring: eventfd: %w", err)
	}
	f := &floorUringInstance{wakeFD: wake}
	fail := func(err error) (Instance, error) {
		for _, l := range f.loops {
			unix.Close(l.lfd)
		}
		unix.Close(wake)
		return nil, err
	}
	reuse := o.Loops > 1
	for i := 0; i < o.Loops; i++ {
		lfd, bound, err := listenRaw(tcp, reuse)
		if err != nil {
			return fail(fmt.Errorf("floor-uring: %w", err))
		}
		if i == 0 {
			f.addr = bound.String()
			tcp = bound
		}
		// Accepted sockets inherit TCP_NODELAY from the listener on Linux, so the loop
		// makes no setsockopt per connection (floor makes one; it matches Go's net).
		if err := unix.SetsockoptInt(lfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			unix.Close(lfd)
			return fail(fmt.Errorf("floor-uring: TCP_NODELAY: %w", err))
		}
		f.loops = append(f.loops, &fuLoop{lfd: lfd, wakeFD: wake})
	}
	clock.acquire()
	// Each loop creates its ring on its own locked thread (SINGLE_ISSUER); start reports
	// whether that worked.
	started := make(chan error, len(f.loops))
	for _, l := range f.loops {
		f.wg.Go(func() { l.run(started) })
	}
	var firstErr error
	for range f.loops {
		if err := <-started; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		f.Close()
		return nil, fmt.Errorf("floor-uring: %w", firstErr)
	}
	return f, nil
}

func (f *floorUringInstance) Addr() string { return f.addr }
func (f *floorUringInstance) PID() int     { return os.Getpid() }

func (f *floorUringInstance) Close() error {
	f.closeMu.Lock()
	defer f.closeMu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	var one [8]byte
	one[0] = 1
	if _, err := unix.Write(f.wakeFD, one[:]); err != nil {
		return fmt.Errorf("floor-uring: wake: %w", err)
	}
	f.wg.Wait()
	clock.release()
	return unix.Close(f.wakeFD)
}

func (l *fuLoop) run(started chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var err error
	if l.r, err = uring.New(floorUringConfig); err != nil {
		unix.Close(l.lfd)
		started <- err
		return
	}
	defer l.shut()
	if l.br, err = l.r.NewBufRing(fuGroup, fuBufCount, fuBufSize); err != nil {
		started <- err
		return
	}
	w := l.sqe()
	w.PrepPollAdd(l.wakeFD, unix.POLLIN, false)
	w.UserData = fuData(fuWake, 0, 0)
	l.armAccept()
	if _, err := l.r.Submit(); err != nil {
		started <- err
		return
	}
	started <- nil
	for {
		l.flush()
		// The one system call of an iteration: submit the sends (and any re-armed multishot
		// requests) and wait for at least one completion. With DEFER_TASKRUN the kernel runs
		// the completion work queued since the last call right here, so under load this
		// returns at once with a batch; only an idle loop sleeps in it. (floor's pattern, a
		// non-blocking raw enter first and a blocking one only when it found nothing, costs
		// up to two calls per iteration; three alternations on the loaded 2-core VM showed
		// no CPU difference beyond the noise, and fewer calls this way.)
		if _, err := l.r.SubmitAndWait(1, -1); err != nil && err != unix.EINTR && err != unix.ETIME {
			return
		}
		if !l.reap() {
			return
		}
	}
}

func (l *fuLoop) shut() {
	for fd := range l.conns {
		if l.conns[fd].open {
			unix.Close(fd)
		}
	}
	unix.Close(l.lfd)
	// Closing the ring cancels every request; the buffer ring's memory is unmapped after.
	l.r.Close()
	if l.br != nil {
		l.br.Close()
	}
}

// sqe returns a free SQE, submitting what is queued first if the queue is full.
func (l *fuLoop) sqe() *uring.SQE {
	for {
		if s := l.r.NextSQE(); s != nil {
			return s
		}
		l.r.Submit()
	}
}

func (l *fuLoop) armAccept() {
	s := l.sqe()
	s.PrepAccept(l.lfd, unix.SOCK_CLOEXEC, true)
	s.UserData = fuData(fuAccept, 0, 0)
	l.accept = true
}

func (l *fuLoop) armRecv(fd int, c *fuConn) {
	s := l.sqe()
	s.PrepRecvMultishot(fd, fuGroup)
	s.UserData = fuData(fuRecv, c.gen, fd)
	c.recv = true
}

// flush queues one SEND per connection with output and none in flight.
func (l *fuLoop) flush() {
	for _, fd32 := range l.dirty {
		fd := int(fd32)
		c := &l.conns[fd]
		c.queued = false
		if !c.open || c.sending != nil || len(c.out) == 0 {
			continue
		}
		c.sending, c.out = c.out, nil
		if c.outOwn {
			c.cur ^= 1 // the kernel reads this buffer now: fill the other one
			c.outOwn = false
		}
		s := l.sqe()
		s.PrepSend(fd, c.sending, unix.MSG_NOSIGNAL)
		s.UserData = fuData(fuSend, c.gen, fd)
	}
	l.dirty = l.dirty[:0]
}

// reap handles every completion ready now. It returns false when the loop must stop.
func (l *fuLoop) reap() bool {
	n := l.r.Ready()
	recycled := false
	for i := uint32(0); i < n; i++ {
		c := l.r.Peek(i)
		kind, gen, fd := c.UserData>>56, uint32(c.UserData>>32)&(1<<24-1), int(uint32(c.UserData))
		switch kind {
		case fuWake:
			l.r.Advance(i + 1)
			return false
		case fuAccept:
			if c.Flags&uring.CQEFMore == 0 {
				l.accept = false
			}
			if c.Res >= 0 {
				l.opened(int(c.Res))
			}
		case fuRecv:
			if c.Flags&uring.CQEFBuffer != 0 {
				// The data is scanned in place and the buffer goes straight back.
				if conn := l.conn(fd, gen); conn != nil && c.Res > 0 {
					l.received(fd, conn, l.br.Buf(c.BufferID(), int(c.Res)))
				}
				l.br.Recycle(c.BufferID())
				recycled = true
			}
			conn := l.conn(fd, gen)
			if conn == nil || c.Flags&uring.CQEFMore != 0 {
				break
			}
			conn.recv = false
			switch {
			case c.Res == 0, c.Res < 0 && c.Res != -int32(unix.ENOBUFS):
				l.closeConn(fd, conn) // EOF or an error
			default:
				// Out of buffers (ENOBUFS), or the kernel ended the request: arm again.
				l.armRecv(fd, conn)
			}
		case fuSend:
			conn := l.conn(fd, gen)
			if conn == nil {
				break
			}
			sent := conn.sending
			conn.sending = nil
			if c.Res < 0 {
				l.closeConn(fd, conn)
				break
			}
			if rest := sent[c.Res:]; len(rest) > 0 {
				// A short send: what is left goes first, ahead of newer output (rare: a
				// fresh buffer is fine).
				conn.out = append(append([]byte(nil), rest...), conn.out...)
				conn.outOwn = false
			}
			if len(conn.out) > 0 {
				l.markDirty(fd, conn)
			}
		}
	}
	l.r.Advance(n)
	if recycled {
		l.br.Publish()
	}
	if !l.accept {
		l.armAccept()
	}
	return true
}

func (l *fuLoop) conn(fd int, gen uint32) *fuConn {
	if fd < len(l.conns) && l.conns[fd].open && l.conns[fd].gen == gen {
		return &l.conns[fd]
	}
	return nil
}

func (l *fuLoop) opened(fd int) {
	for fd >= len(l.conns) {
		l.conns = append(l.conns, fuConn{})
	}
	c := &l.conns[fd]
	*c = fuConn{open: true, gen: (c.gen + 1) & (1<<24 - 1), own: c.own}
	l.armRecv(fd, c)
}

// received answers every request that ends in p.
func (l *fuLoop) received(fd int, c *fuConn, p []byte) {
	k := c.scan.count(p)
	if k == 0 {
		return
	}
	resp := clock.responses(k)
	switch {
	case len(c.out) == 0:
		c.out = resp // the canned set is immutable: the send may read it in place
	case !c.outOwn:
		c.own[c.cur] = append(append(c.own[c.cur][:0], c.out...), resp...)
		c.out, c.outOwn = c.own[c.cur], true
	default:
		c.own[c.cur] = append(c.own[c.cur], resp...)
		c.out = c.own[c.cur]
	}
	l.markDirty(fd, c)
}

func (l *fuLoop) markDirty(fd int, c *fuConn) {
	if !c.queued {
		c.queued = true
		l.dirty = append(l.dirty, int32(fd))
	}
}

// closeConn closes fd. A send still in flight holds its own reference to the socket and
// completes (or fails) later; its completion carries the old generation and is ignored.
func (l *fuLoop) closeConn(fd int, c *fuConn) {
	unix.Close(fd)
	c.open = false
	c.out, c.sending = nil, nil
}
