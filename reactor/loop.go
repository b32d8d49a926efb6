package reactor

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/bufpool"
	"github.com/reactord/reactord/internal/timerheap"
	"github.com/reactord/reactord/poller"
)

// Loop is one event loop: one Poller, one goroutine locked to its OS thread, and the
// connections, listeners, timers and posted tasks that belong to it. Everything a Loop owns
// is touched only from that goroutine; the doors in from other goroutines are Post,
// Conn.AsyncWrite and Conn.Close.
type Loop struct {
	srv  *Server
	idx  int
	poll poller.Poller
	ring *ringIO    // the io_uring completion mode (WithPoller("uring")), or nil
	hs   handlerSet // the Server's Handler, for accepted connections
	opt  *options
	log  *zap.Logger

	events  []poller.Event
	conns   []*Conn // indexed by fd; most fds of a loop are connections
	others  map[int]eventHandler
	nconns  int
	readBuf []byte
	pool    bufpool.Pool
	sealBuf []byte        // file chunks being sealed for TLS connections (sealScratch), made on first use
	hsLive  int           // TLS handshake coroutines of this loop (tls_coro.go)
	hsMax   int           // the loop's share of WithTLSHandshakeLimit
	hsQueue []*tlsSession // complete ClientHellos waiting for a slot
	ioFree  []*connIO     // connIOs given back by connections, for reuse (conn_buf.go)

	timers timerheap.Heap[timerRef]
	base   time.Time // monotonic origin of the loop's nanosecond clock
	now    time.Time
	nowNs  int64

	dirty     []*Conn // output written this iteration, flushed at its end
	redeliver []*Conn // kept input to hand to OnData again without a read
	spare     []*Conn
	dialing   map[*Conn]struct{} // dialed connections waiting for a name lookup (dial.go)
	toClose   []int              // fds closed at the end of the iteration (see closeFd)
	// afterClose, when set (by tests, from the loop goroutine), runs right after the
	// iteration's descriptors are closed: the moment a closed number is free for reuse.
	afterClose func(closed []int)
	// closedConns counts the connections among toClose, for the server's open count.
	closedConns int

	shedCands []shedCand // scratch for shed
	addSeq    uint16     // connections added so far (wrapping): Conn.seq
	iterSeq   uint16     // addSeq when this iteration began: later ones are too new to shed
	// shedLowest is the lowest shedding group among this loop's connections at its last
	// shed (3: none), read by the server's other loops (see Loop.shed).
	shedLowest atomic.Uint32
	shedWant   int       // connections a listener of this loop wants shed after dispatch
	shedBy     *listener // that listener
	shedCause  error     // and why

	// Posted tasks, the only state shared with other goroutines.
	mu        sync.Mutex
	tasks     []task
	running   []task
	ntasks    atomic.Int32
	sleeping  atomic.Bool // set while the loop may block in Wait: posters must Wake it
	tasksShut bool        // under mu: Post refuses new tasks
	stopping  atomic.Bool
	done      chan struct{}
	tid       int

	busy     bool // the last Wait reported events (see wait)
	draining bool
	drained  chan struct{} // closed once draining and no connection is left
	ctx      any

	st        loopCounters
	pub       loopPublished
	openConns atomic.Int64 // open connections, for LeastConnections and Stats
}

// eventHandler is anything besides a Conn that owns an fd on the loop: listeners and packet
// sockets.
type eventHandler interface {
	onEvent(ev poller.Events)
	shut() // called on the loop when it stops
}

// maxEvents bounds the events taken from one Wait: enough to amortise the system call, small
// enough that one iteration's work stays fair to timers and posted tasks.
const maxEvents = 256

func newLoop(s *Server, idx int, p poller.Poller) *Loop {
	l := &Loop{
		srv:     s,
		idx:     idx,
		poll:    p,
		hs:      newHandlerSet(s.h),
		opt:     &s.opt,
		log:     s.opt.logger.With(zap.Int("loop", idx)),
		events:  make([]poller.Event, maxEvents),
		others:  make(map[int]eventHandler),
		readBuf: make([]byte, s.opt.readBufSize),
		base:    time.Now(),
		done:    make(chan struct{}),
		drained: make(chan struct{}),
	}
	l.hsMax = (s.opt.tlsLimit + s.opt.loops - 1) / s.opt.loops
	l.now = l.base
	return l
}

// run is the loop goroutine. One iteration reads top-down in iterate.
func (l *Loop) run(started chan<- struct{}) {
	// Locked to a thread: the poller's fd, the read buffer and the connections stay hot in one
	// CPU's caches, and a blocked epoll_wait never strands other goroutines' work.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	l.tid = selfID()
	defer close(l.done)
	loopThreads.add(l)
	// Deferred after close(l.done), so it runs before it: once done is closed (and the thread
	// unlocked, free to run other goroutines), the id names no loop.
	defer loopThreads.remove(l)
	close(started)
	if l.ring != nil {
		// The ring becomes this thread's (SINGLE_ISSUER): only it may submit and reap.
		if err := l.ring.start(); err != nil {
			err = fmt.Errorf("reactor: start io_uring: %w", err)
			l.log.Error("event loop failed", zap.Error(err))
			l.srv.loopFailed(err)
		}
	}
	for !l.stopping.Load() {
		if err := l.iterate(); err != nil {
			l.log.Error("event loop failed", zap.Error(err))
			l.srv.loopFailed(err)
			break
		}
	}
	l.teardown()
}

// iterate runs one turn of the loop: wait, dispatch, timers, tasks, flush.
func (l *Loop) iterate() error {
	// 1. Wait for readiness, at most until the next timer is due.
	n, err := l.wait()
	if err != nil {
		return err
	}
	l.tick()
	l.st.iterations++
	l.iterSeq = l.addSeq

	// 2. Dispatch ready fds, then connections whose kept input must be handed back. In the
	// completion mode the ring's completions come first (accepts, received bytes, sends
	// done); the descriptors it does not drive report readiness as usual.
	if l.ring != nil {
		if n, err = l.ring.dispatch(); err != nil {
			return err
		}
	}
	for i := 0; i < n; i++ {
		ev := l.events[i]
		if ev.FD < len(l.conns) {
			if c := l.conns[ev.FD]; c != nil {
				c.onEvent(ev.Events)
				continue
			}
		}
		if h, ok := l.others[ev.FD]; ok {
			h.onEvent(ev.Events)
		}
		// Otherwise the fd was closed earlier in this iteration: a stale event, dropped.
	}
	l.redeliverTails()
	if l.shedWant > 0 {
		// A listener asked for room (shed.go): decided now that this iteration's input has
		// been read, so a connection admitted in the last iteration whose request has just
		// arrived counts as having made progress.
		l.runShed()
	}

	// 3. Expired timers.
	l.runTimers()

	// 4. Posted tasks (AsyncWrite, Close, Post, connections handed over by the acceptor).
	l.runTasks()

	// 5. Flush every connection written to during this iteration: one write each.
	l.flushDirty()

	if l.draining {
		l.drainIdle()
	}
	l.closeDeferred()
	l.publish()
	return nil
}

// wait blocks in the poller until something is ready or the next timer is due.
func (l *Loop) wait() (int, error) {
	if l.ring != nil {
		return 0, l.waitRing()
	}
	timeout := l.nextTimeout()
	if timeout != 0 && l.busy {
		// The last iteration handled events: under load more are likely ready already, and a
		// zero-timeout Wait is a raw system call (see poller's epoll backend) that costs no
		// scheduler hand-off. Only when it finds nothing does the loop pay for a blocking one,
		// whose entersyscall/exitsyscall, P hand-off and sleep/wake-up are the dear part.
		// Measured on the 2-core VM with the bench harness (server pinned, GOMAXPROCS=1, 64
		// connections, three alternations of 2 rounds with this look-ahead on and off): server
		// CPU per request, median, 10.31 vs 10.80 µs at P=1 and 0.96 vs 1.03 µs at P=16; and
		// 0.09 vs 0.11-0.22 context switches per request at P=1 (perf stat). The empty
		// zero-timeout wait it sometimes adds costs less than the blocking waits it saves.
		n, err := l.poll.Wait(l.events, 0)
		l.st.waits++
		if err != nil || n > 0 || l.stopping.Load() {
			// stopping: stop's Wake may be the one this Wait just drained (it reports a
			// wake-up as zero events), so the blocking Wait below would never return.
			// Posted tasks need no such care: the sleeping handshake below finds them.
			return l.waited(n, err)
		}
	}
	// The sleeping flag and the task counter form a handshake with Post: the loop announces
	// it may sleep and then looks for tasks; a poster adds its task and then looks at the
	// flag. Either the loop sees the task (and does not block) or the poster sees the flag
	// (and wakes the loop), so a task is never stranded, and posts made while the loop is
	// busy cost no system call at all.
	if timeout != 0 {
		l.sleeping.Store(true)
		if l.ntasks.Load() > 0 {
			timeout = 0
		}
	}
	n, err := l.poll.Wait(l.events, timeout)
	l.sleeping.Store(false)
	l.st.waits++
	return l.waited(n, err)
}

// waitRing is wait in the completion mode: one io_uring_enter submits what the iteration
// queued (sends, receives armed or cancelled) and waits for completions, or the next timer.
// With DEFER_TASKRUN the kernel runs the completion work queued since the last call right
// there, so under load it returns at once with a batch and the look-ahead of the readiness
// wait has nothing to save. The sleeping handshake with Post is the same: Wake writes the
// epoll poller's eventfd, whose readiness the ring watches.
func (l *Loop) waitRing() error {
	timeout := l.nextTimeout()
	if timeout != 0 {
		l.sleeping.Store(true)
		if l.ntasks.Load() > 0 {
			timeout = 0
		}
	}
	err := l.ring.wait(timeout)
	l.sleeping.Store(false)
	l.st.waits++
	return err
}

// waited records the outcome of a Wait.
func (l *Loop) waited(n int, err error) (int, error) {
	l.busy = n > 0
	if err != nil {
		if errors.Is(err, poller.ErrClosed) && l.stopping.Load() {
			return 0, nil
		}
		return 0, err
	}
	l.st.events += uint64(n)
	return n, nil
}

// nextTimeout returns how long Wait may block: 0 when work is already queued, until the
// earliest timer otherwise, or -1 (forever) when there is neither.
func (l *Loop) nextTimeout() time.Duration {
	if len(l.redeliver) > 0 || len(l.dirty) > 0 || l.ring != nil && l.ring.hasWork() {
		return 0
	}
	if l.shedWant > 0 {
		// A shed asked for outside dispatch (a timer, in the completion mode: no readable
		// listener brings the loop back) runs after the next dispatch.
		return 0
	}
	e, ok := l.timers.Min()
	if !ok {
		return -1
	}
	d := time.Duration(e.When - l.clock())
	if d < 0 {
		return 0
	}
	return d
}

// tick caches the time once per iteration: Now, timers and timeouts all read it.
func (l *Loop) tick() {
	l.now = time.Now()
	l.nowNs = int64(l.now.Sub(l.base))
}

// clock reads the monotonic clock afresh (used only to compute the Wait timeout, after the
// iteration's work may have taken a while).
func (l *Loop) clock() int64 { return int64(time.Since(l.base)) }

// redeliverTails hands kept input back to connections whose reading resumed.
func (l *Loop) redeliverTails() {
	if len(l.redeliver) == 0 {
		return
	}
	// Work on a snapshot: a handler resuming again during OnData queues for the next
	// iteration instead of looping here for ever.
	list := l.redeliver
	l.redeliver = l.spare[:0]
	for i, c := range list {
		list[i] = nil
		c.flags &^= fRedeliver
		switch {
		case c.flags&(fClosed|fClosing) != 0:
			continue
		case c.flags&fPausedUser != 0 || !c.hasKept():
			// Paused again before its turn (ResumeRead queues it again), or the input was
			// dropped meanwhile: only the interest may need to follow.
		case c.Buffered() >= l.opt.high:
			// Output written since it was queued: afterFlush queues it again once drained.
			c.flags |= fPausedBP | fAboveLow
		case c.flags&fTLSMore != 0:
			// crypto/tls holds more input: decrypt it behind the kept tail, reading nothing.
			c.flags &^= fPausedBP
			c.readTLS(0)
		default:
			c.flags &^= fPausedBP
			c.deliver(c.io.in, true)
		}
		if c.flags&fClosed == 0 {
			c.syncInterest()
		}
	}
	l.spare = list[:0]
}

// flushDirty writes out every connection that got output this iteration. OnWritable may add
// connections while it runs; they are flushed in the same pass.
func (l *Loop) flushDirty() {
	for i := 0; i < len(l.dirty); i++ {
		c := l.dirty[i]
		l.dirty[i] = nil
		c.flags &^= fDirty
		if c.flags&(fClosed|fWantWrite) == 0 {
			c.flush()
		}
	}
	l.dirty = l.dirty[:0]
}

// closeFd queues fd for close(2) at the end of the iteration. Until then its number cannot be
// reused by an accept in this iteration, so a later event of this Wait that names the same
// number cannot reach a new connection by mistake.
func (l *Loop) closeFd(fd int) { l.toClose = append(l.toClose, fd) }

func (l *Loop) closeDeferred() {
	if l.ring != nil && !l.ring.beforeClose() {
		return // requests naming these descriptors are still queued: next iteration
	}
	for _, fd := range l.toClose {
		// close(2) is never retried on EINTR on Linux: the fd is released either way.
		unix.Close(fd)
	}
	if l.afterClose != nil {
		l.afterClose(l.toClose)
	}
	if n := l.closedConns; n > 0 {
		// Counted down only now, so that the connection cap (and shedding's descriptor
		// reserve) counts descriptors still held: a shed on another loop must not let the
		// acceptor take more than the process has.
		l.srv.open.Add(-int64(n))
		l.closedConns = 0
	}
	l.toClose = l.toClose[:0]
}

// addConn registers a connection handed to this loop and calls OnOpen.
func (l *Loop) addConn(c *Conn) {
	fd := int(c.fd)
	if l.stopping.Load() || l.draining {
		unix.Close(fd)
		l.srv.open.Add(-1)
		c.releaseAdmission()
		return
	}
	if l.ringDrives(c) {
		// The ring receives for it (syncRecv, below); a readiness registration it has not.
		l.place(c)
		c.flags |= fRing
	} else if err := l.track(c, poller.Readable); err != nil {
		l.log.Warn("register connection", zap.Error(err))
		unix.Close(fd)
		l.srv.open.Add(-1)
		c.releaseAdmission()
		return
	}
	l.nconns++
	l.openConns.Add(1)
	l.st.accepted++
	if c.flags&fRing != 0 {
		l.ring.syncRecv(c)
	}
	if c.tls != nil {
		c.startTLS() // OnOpen once the handshake has completed (handshakeDone)
		return
	}
	if l.opt.idleTimeout > 0 {
		c.SetIdleTimeout(l.opt.idleTimeout)
	}
	c.hs.h.OnOpen(c)
}

// ringDrives reports whether, in the completion mode, the ring does the I/O of c, an accepted
// connection. Connections it does not drive stay on the loop's epoll poller, which the ring
// watches, and are served by the readiness path: so do, today, connections from Dial (whose
// connect(2) completes as writability) and Adopt, which register through track. A connection
// whose bytes are not the handler's verbatim (a protocol layer between socket and OnData, such
// as TLS, reads and writes the socket itself) belongs there too: a TLS connection (c.tls set
// by the listener before addConn) is registered with the poller and its handshake and records
// go through read(2)/write(2) as in the readiness modes (tls_conn.go).
func (l *Loop) ringDrives(c *Conn) bool { return l.ring != nil && c.tls == nil }

// removeConn takes a closing connection off the poller and the fd table. Its descriptor is
// closed at the end of the iteration, unless keepFd (a lingering close: closeNow hands it to
// a lingerer, which closes it later) or the ring keeps it: it reports true when a request of
// the completion mode that looks the descriptor up late (a splice) is still in flight, and the
// ring closes it once that request is done.
func (l *Loop) removeConn(c *Conn, keepFd bool) (ringHeld bool) {
	// Remove before close: an fd closed while registered may linger in epoll's interest list
	// when a dup of it is open, and poll would report POLLNVAL for it. In the completion
	// mode the ring's requests hold the socket: they are cancelled, and the kernel releases
	// it (the FIN goes out) once they are gone, at the next enter.
	fd := int(c.fd)
	if c.flags&fRing != 0 {
		ringHeld = l.ring.forget(c)
	} else {
		l.poll.Remove(fd)
	}
	l.conns[fd] = nil
	l.nconns--
	l.openConns.Add(-1)
	l.st.closed++
	c.releaseAdmission()
	if !keepFd && !ringHeld {
		l.closeFd(fd)
		l.closedConns++ // the server's open count drops when the descriptor is closed
	}
	if l.draining && l.nconns == 0 {
		l.signalDrained()
	}
	return ringHeld
}

// drainIdle closes connections that have nothing in flight, during Shutdown.
func (l *Loop) drainIdle() {
	for _, c := range l.conns {
		if c != nil && c.idle() && !c.inputWaiting() {
			c.closeNow(nil)
		}
	}
	if l.nconns == 0 {
		l.signalDrained()
	}
}

func (l *Loop) signalDrained() {
	select {
	case <-l.drained:
	default:
		close(l.drained)
	}
}

// teardown runs on the loop goroutine when it stops: it closes what the loop owns and runs
// the tasks posted before Post started refusing.
func (l *Loop) teardown() {
	for _, c := range l.conns {
		if c != nil {
			c.closeNow(ErrServerClosed)
		}
	}
	l.abortDials()
	for _, h := range l.others {
		h.shut()
	}
	l.mu.Lock()
	l.tasksShut = true
	l.mu.Unlock()
	l.runTasks()
	if l.ring != nil {
		// Every request ends before the descriptors close, so the sockets are released
		// (and the peers see their FINs) by the time Close returns.
		l.ring.quiesce()
	}
	l.closeDeferred()
	if l.ring != nil {
		l.ring.close()
	}
	l.poll.Close()
	l.signalDrained()
	l.publish()
}

// stop asks the loop to finish its iteration and tear down. Any goroutine.
func (l *Loop) stop() {
	if !l.stopping.Swap(true) {
		l.poll.Wake()
	}
}

// loopThreads maps the selfID of every running loop goroutine, of every Server in the
// process, to its loop. Server methods consult it to never wait for a loop from a loop: a loop
// that waited for another (or for itself) could deadlock with it, and stalls its own
// connections meanwhile.
var loopThreads = threadTable{m: map[int]*Loop{}}

type threadTable struct {
	mu sync.RWMutex
	m  map[int]*Loop
}

func (t *threadTable) add(l *Loop) {
	t.mu.Lock()
	t.m[l.tid] = l
	t.mu.Unlock()
}

func (t *threadTable) remove(l *Loop) {
	t.mu.Lock()
	delete(t.m, l.tid)
	t.mu.Unlock()
}

// currentLoop returns the loop whose goroutine calls it, of any Server, or nil. It costs a
// system call on Linux (gettid): only rare operations ask.
func currentLoop() *Loop {
	id := selfID()
	loopThreads.mu.RLock()
	l := loopThreads.m[id]
	loopThreads.mu.RUnlock()
	return l
}

// Index returns the loop's position in Server.Loops, from 0. Any goroutine.
func (l *Loop) Index() int { return l.idx }

// Now returns the time cached at the start of the current loop iteration. Codecs use it
// instead of time.Now for per-request timestamps. Loop goroutine only.
func (l *Loop) Now() time.Time { return l.now }

// Context returns the value set by SetContext. Loop goroutine only.
func (l *Loop) Context() any { return l.ctx }

// SetContext stores per-loop state for handlers, such as a codec's scratch buffers or a
// cached Date header. Loop goroutine only (set it from OnOpen, a timer or a posted task).
func (l *Loop) SetContext(v any) { l.ctx = v }
