package reactor

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/sockopt"
)

// tlsSession is a TLS connection's state besides the Conn: the tls.Conn that protects its
// records, and the buffers between it and the socket. See tls.go for the design.
//
// Ownership: until the handshake has completed (Conn flag fHandshake), a worker of the
// handshake pool runs tc and calls the transport methods below from its goroutine; the loop
// touches only in (under its mutex) and cout. From the moment the loop has the worker's
// result (handshakeDone), everything here is the loop goroutine's.
//
// tlsSession is the net.Conn under tc (the transport). Its methods are crypto/tls's door to
// the socket, not for anyone else.
type tlsSession struct {
	c      *Conn
	tc     *tls.Conn
	hs     *tlsHandshake // the handshake's state; nil once it has completed
	onLoop bool          // the loop drives tc (the handshake is over)

	notified bool // close_notify sent

	// Input after the handshake: tc's reads take rin first (ciphertext already received),
	// then make at most pull read(2) calls, and otherwise report errWouldBlock.
	rin    []byte
	pull   int
	pulled int // bytes read(2) returned during the current pass

	// Output: records sealed by tc and not yet written, cout[chead:]. Plaintext waits in
	// Conn.out (and Conn.q) and is sealed only when cout has been written, so records are as
	// large as the output of an iteration allows and at most one chunk of ciphertext waits.
	cout  []byte
	chead int

	state *tls.ConnectionState // Conn.TLS, computed on first use
}

// tlsHandshake is what a TLS connection needs only until its handshake has completed; it is
// dropped then, so an established connection keeps none of it.
type tlsHandshake struct {
	ln      *tlsListen
	in      hsInput // the handshake's input; closed once the handshake is over
	queued  bool    // the handshake was started or queued
	pending []byte  // records a pool worker wrote, not yet handed to the loop

	// A handshake on the loop (tls_coro.go): the coroutine's controls, set while it exists.
	coro  bool
	next  func() (struct{}, bool)
	stop  func()
	yield func(struct{}) bool
	err   error
}

// errHandshakeAbandoned is what a handshake coroutine's read returns once its connection is
// closing (timeout, peer gone, server stopping): it ends the handshake.
var errHandshakeAbandoned = errors.New("reactor: TLS handshake abandoned: connection closing")

// hsInput carries the ciphertext the loop receives during a handshake to the worker that
// runs it. The loop appends; the worker's reads take from the front, waiting while it is
// empty, until close.
type hsInput struct {
	mu     sync.Mutex
	cond   sync.Cond
	buf    []byte
	closed bool
	full   bool // the loop stopped reading at hsInputCap; the worker's next take resumes it
}

// hsInputCap bounds the ciphertext held for a handshake: reading pauses there until the
// worker has taken some. A client may send its first requests right behind its Finished
// message, before the worker has processed it.
const hsInputCap = 64 << 10

// sealChunk bounds the plaintext sealed into records at once (four full records): at most
// this much ciphertext waits in a connection's buffer.
const sealChunk = 64 << 10

// tlsFileBudget bounds the file bytes one flush reads for a TLS connection (SendFile), so a
// fast client downloading a large file cannot hold the loop: the rest continues in later
// iterations, when the poller reports the socket writable.
const tlsFileBudget = 4 * sealChunk

// startTLS begins a TLS connection's handshake on its loop: the loop reads until a whole
// ClientHello has arrived (readHandshake), under the handshake timeout. No Handler call until
// the handshake completes.
func (c *Conn) startTLS() {
	l := c.loop
	ts := c.tls
	c.flags |= fHandshake
	hs := ts.hs
	hs.in.cond.L = &hs.in.mu
	hs.coro = l.opt.tlsOnLoop
	ts.tc = tls.Server(ts, hs.ln.cfg)
	when := l.nowNs + int64(l.opt.tlsTimeout)
	c.dl = when // the handler owns the deadline only from OnOpen on
	c.armAt(when)
}

// readHandshake reads during the handshake: the bytes go to the worker (hsInput). Before a
// worker is involved, the loop checks that they begin a ClientHello and hands the connection
// to the pool once the whole hello is there.
func (c *Conn) readHandshake() {
	l := c.loop
	ts := c.tls
	n, err := readFd(int(c.fd), l.readBuf)
	switch {
	case err == unix.EAGAIN:
		return
	case err != nil:
		c.closeNow(os.NewSyscallError("read", err))
		return
	case n == 0:
		c.closeNow(io.EOF)
		return
	}
	l.st.bytesIn += uint64(n)
	hs := ts.hs
	in := &hs.in
	in.mu.Lock()
	in.buf = append(in.buf, l.readBuf[:n]...)
	full := len(in.buf) >= hsInputCap
	in.full = full
	var complete, plain bool
	var herr error
	if !hs.queued {
		complete, plain, herr = clientHelloComplete(in.buf)
		if !complete && herr == nil && full {
			herr = errHelloSize
		}
	}
	in.cond.Signal()
	in.mu.Unlock()
	switch {
	case herr != nil:
		if plain && hs.ln.plain != nil {
			rawWrite(int(c.fd), hs.ln.plain) // best effort, like the close below
		}
		c.closeNow(herr)
		return
	case complete:
		hs.queued = true
		if hs.coro {
			l.startHandshakeOnLoop(ts)
			if c.flags&fClosed != 0 || c.flags&fHandshake == 0 {
				return // failed, or done already and handed to the Handler
			}
		} else {
			l.srv.tlsPool.submit(ts)
		}
	case hs.next != nil:
		c.stepHandshake() // the handshake was waiting for this input
		if c.flags&fClosed != 0 || c.flags&fHandshake == 0 {
			return
		}
	}
	if full {
		c.flags |= fTLSFull
		c.syncInterest()
	}
}

// resumeHandshakeInput runs on the loop when the worker has taken input that had reached
// hsInputCap.
func (c *Conn) resumeHandshakeInput() {
	if c.flags&(fClosed|fHandshake) != fHandshake {
		return
	}
	c.flags &^= fTLSFull
	c.syncInterest()
}

// handshakeDone runs on the loop with the worker's result. On success the connection becomes
// an ordinary one for the Handler: OnOpen, then any input that arrived behind the handshake.
func (c *Conn) handshakeDone(err error) {
	if c.flags&fClosed != 0 {
		return // timed out or closed meanwhile, counted then
	}
	l := c.loop
	ts := c.tls
	in := &ts.hs.in
	in.mu.Lock()
	rest := in.buf
	in.buf, in.closed = nil, true
	in.mu.Unlock()
	if err != nil {
		c.tlsAbort(err)
		return
	}
	ts.hs = nil // nothing of the handshake stays with an established connection
	ts.onLoop = true
	ts.rin = rest
	c.flags &^= fHandshake | fTLSFull
	l.st.tlsDone++
	c.dl = 0 // the handshake deadline
	if l.opt.idleTimeout > 0 {
		// The queued entry finds nothing due when it fires and moves to the idle deadline.
		to := c.timeouts()
		to.lastActive, to.lastRead = l.nowNs, l.nowNs
		c.SetIdleTimeout(l.opt.idleTimeout)
	} else if c.tmi != 0 {
		// The handshake deadline was the entry's only use: an established connection keeps
		// none until the handler sets a timeout or a deadline, as on plain TCP.
		l.timers.Remove(int(c.tmi))
	}
	c.hs.h.OnOpen(c)
	if c.flags&fClosed != 0 {
		return
	}
	if c.reading() {
		// Requests the client sent right behind its Finished message: no readiness report
		// will announce them, they were read already.
		c.readTLS(0)
		if c.flags&fClosed != 0 {
			return
		}
	}
	c.syncInterest()
}

// tlsAbort closes a TLS connection after a protocol error: the alert crypto/tls queued is
// written if the socket takes it at once, and the connection closes with err.
func (c *Conn) tlsAbort(err error) {
	ts := c.tls
	if ts.chead < len(ts.cout) {
		rawWrite(int(c.fd), ts.cout[ts.chead:])
	}
	c.closeNow(err)
}

// readTLS is read for an established TLS connection: decrypt what can be decrypted with at
// most pull read(2) calls into the space read would use, and hand it to OnData.
func (c *Conn) readTLS(pull int) {
	l := c.loop
	ts := c.tls
	data, tail, inConn := c.inputSpace()
	ts.pull, ts.pulled = pull, 0
	n, err := ts.open(data[tail:])
	ts.pull = 0
	if ts.pulled > 0 {
		l.st.bytesIn += uint64(ts.pulled)
		if c.flags&fTimeouts != 0 {
			c.x.Load().to.lastActive, c.x.Load().to.lastRead = l.nowNs, l.nowNs
		}
	}
	if err == nil {
		c.flags |= fTLSMore // stopped because the space was full: crypto/tls holds more
	} else {
		c.flags &^= fTLSMore
	}
	if ts.chead < len(ts.cout) {
		c.markDirty() // crypto/tls answered something itself: a KeyUpdate, an alert
	}
	if n > 0 {
		c.deliver(data[:tail+n], inConn)
		if c.flags&(fClosed|fClosing) != 0 {
			return
		}
	}
	switch {
	case err == nil:
		if c.flags&fPausedBP == 0 {
			c.scheduleRedeliver()
		}
	case err == errWouldBlock:
	case err == io.EOF:
		// A close_notify, or the end of the stream at a record boundary: the peer's
		// half-close, handled as on plain TCP.
		if c.flags&fEOF == 0 {
			c.onEOF()
		}
	default:
		// A protocol error (bad record, unexpected message such as a renegotiation
		// attempt, a fatal alert from the peer), a stream cut inside a record
		// (io.ErrUnexpectedEOF) or the socket's error.
		c.tlsAbort(err)
	}
}

// open decrypts into p until crypto/tls would have to wait for the socket, or p is full (nil
// error: more may be buffered in tc).
func (ts *tlsSession) open(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := ts.tc.Read(p[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// flushTLS is flush for a TLS connection: write the sealed records, then seal the next chunk
// of pending output, until the socket is full or nothing is left.
func (c *Conn) flushTLS() {
	l := c.loop
	ts := c.tls
	before := c.Buffered()
	budget := tlsFileBudget
	for {
		if ts.chead < len(ts.cout) {
			n, err := rawWrite(int(c.fd), ts.cout[ts.chead:])
			if err == unix.EINTR {
				continue
			}
			if n > 0 {
				ts.chead += n
				l.st.bytesOut += uint64(n)
			}
			if err == unix.EAGAIN || err == nil && ts.chead < len(ts.cout) {
				c.flags |= fWantWrite
				break
			}
			if err != nil {
				c.closeNow(os.NewSyscallError("write", err))
				return
			}
		}
		if ts.cout != nil {
			l.pool.Put(ts.cout)
			ts.cout, ts.chead = nil, 0
		}
		if !ts.onLoop {
			c.flags &^= fWantWrite // handshaking: only the worker's records are written
			break
		}
		sealed, err := c.sealNext(&budget)
		if err != nil {
			c.tlsAbort(err)
			return
		}
		if !sealed {
			if c.Buffered() > 0 {
				// The file budget is spent and the socket still had room: the poller
				// reports it writable at once, and the next iteration goes on.
				c.flags |= fWantWrite
			} else {
				c.flags &^= fWantWrite
			}
			break
		}
	}
	c.flushed(before)
}

// sealNext seals the next chunk of pending output into cout: buffered bytes first, then the
// queued segments in order, a file range by chunks read with pread(2) (sendfile(2) cannot
// encrypt). It reports false when nothing is left, or when the file budget is spent.
func (c *Conn) sealNext(budget *int) (bool, error) {
	l := c.loop
	ts := c.tls
	b := c.io
	if b == nil {
		return false, nil
	}
	for {
		if b.head < len(b.out) {
			end := min(len(b.out), b.head+sealChunk)
			if _, err := ts.tc.Write(b.out[b.head:end]); err != nil {
				return false, err
			}
			b.head = end
			if b.head == len(b.out) {
				l.pool.Put(b.out)
				b.out, b.head = nil, 0
				c.settleIO()
			}
			return true, nil
		}
		q := b.q
		if q == nil || len(q.segs) == 0 {
			b.q = nil
			c.settleIO()
			return false, nil
		}
		seg := &q.segs[0]
		if seg.fd < 0 {
			if b.out != nil {
				l.pool.Put(b.out)
			}
			b.out, b.head = seg.data, 0
			q.bytes -= int64(len(seg.data))
			q.pop()
			continue
		}
		if *budget <= 0 {
			return false, nil
		}
		buf := l.sealScratch()
		k := int(min(seg.n, int64(len(buf)), int64(*budget)))
		n, err := preadFile(seg.fd, buf[:k], seg.off)
		if err != nil {
			return false, os.NewSyscallError("pread", err)
		}
		if n == 0 {
			return false, errShortFile
		}
		if _, err := ts.tc.Write(buf[:n]); err != nil {
			return false, err
		}
		seg.off += int64(n)
		seg.n -= int64(n)
		q.bytes -= int64(n)
		*budget -= n
		if seg.n == 0 {
			unix.Close(seg.fd)
			q.pop()
		}
		return true, nil
	}
}

// preadFile is pread(2) retried on EINTR. It may block on a disk read (the page cache
// usually has the file), so it goes through the scheduler like any blocking call; the chunk
// bounds how long.
func preadFile(fd int, p []byte, off int64) (int, error) {
	for {
		n, err := unix.Pread(fd, p, off)
		if err != unix.EINTR {
			if n < 0 {
				n = 0
			}
			return n, err
		}
	}
}

// sealScratch returns the loop's buffer for file chunks being sealed, made on first use.
func (l *Loop) sealScratch() []byte {
	if l.sealBuf == nil {
		l.sealBuf = make([]byte, sealChunk)
	}
	return l.sealBuf
}

// closeTLS runs in closeNow. A handshake in progress is abandoned (its worker wakes and
// fails) and counted; an established connection closed for a reason other than an error,
// with nothing left to write, says close_notify if the socket takes it at once, so the peer
// can tell the end of the stream from a truncation.
func (c *Conn) closeTLS(err error) {
	l := c.loop
	ts := c.tls
	if hs := ts.hs; hs != nil {
		hs.in.close()
		if hs.coro {
			c.abandonCoroutine()
		}
	}
	if c.flags&fHandshake != 0 {
		l.st.countHandshakeFailure(err)
	} else if ts.onLoop && !ts.notified && c.Buffered() == 0 && politeClose(err) {
		ts.notified = true
		if ts.tc.CloseWrite() == nil && len(ts.cout) > 0 {
			rawWrite(int(c.fd), ts.cout)
		}
	}
	if ts.cout != nil {
		l.pool.Put(ts.cout)
		ts.cout, ts.chead = nil, 0
	}
	ts.rin = nil
}

// politeClose reports whether a connection closed with err ends its stream normally (a local
// close, the peer's end, a timeout), as opposed to a protocol or socket error.
func politeClose(err error) bool {
	switch err {
	case nil, io.EOF, ErrIdleTimeout, ErrReadTimeout, ErrDeadline, ErrServerClosed:
		return true
	}
	return false
}

// countHandshakeFailure classifies why a handshake did not complete.
func (s *loopCounters) countHandshakeFailure(err error) {
	var se *os.SyscallError
	switch {
	case errors.Is(err, ErrTLSHandshakeTimeout):
		s.tlsTimeout++
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, ErrServerClosed), errors.As(err, &se):
		s.tlsAborted++ // the peer left, or the server is stopping
	default:
		s.tlsFailed++ // not TLS, or refused by crypto/tls
	}
}

func (in *hsInput) close() {
	in.mu.Lock()
	in.closed = true
	in.buf = nil
	in.cond.Broadcast()
	in.mu.Unlock()
}

// readPool is a pool worker's read during the handshake: it waits for the loop's input. The
// records the handshake wrote since its last wait go to the loop first (the client is waiting
// for them): one task per flight.
func (hs *tlsHandshake) readPool(c *Conn, p []byte) (int, error) {
	in := &hs.in
	in.mu.Lock()
	if len(in.buf) == 0 && len(hs.pending) > 0 {
		in.mu.Unlock()
		out := hs.pending
		hs.pending = nil
		if err := c.loop.post(task{op: opTLSOut, c: c, data: out}); err != nil {
			return 0, err
		}
		in.mu.Lock()
	}
	for len(in.buf) == 0 && !in.closed {
		in.cond.Wait()
	}
	if in.closed {
		in.mu.Unlock()
		return 0, net.ErrClosed
	}
	n := copy(p, in.buf)
	in.buf = in.buf[n:]
	resume := in.full && len(in.buf) < hsInputCap
	if resume {
		in.full = false
	}
	in.mu.Unlock()
	if resume {
		c.loop.post(task{op: opFunc, f: c.resumeHandshakeInput})
	}
	return n, nil
}

// wouldBlock is the transport's "no input now": a temporary net.Error, which crypto/tls
// returns from Read without recording it, keeping any partial record for the next Read.
type wouldBlock struct{}

func (wouldBlock) Error() string   { return "reactor: TLS transport: no input now" }
func (wouldBlock) Timeout() bool   { return false }
func (wouldBlock) Temporary() bool { return true }

var errWouldBlock net.Error = wouldBlock{}

// Read is the transport's read, called by tc: during the handshake on the worker (waiting for
// the loop's input), afterwards on the loop (never waiting).
func (ts *tlsSession) Read(p []byte) (int, error) {
	if !ts.onLoop {
		if ts.hs.coro {
			return ts.readCoro(p)
		}
		return ts.hs.readPool(ts.c, p)
	}
	if len(ts.rin) > 0 {
		n := copy(p, ts.rin)
		ts.rin = ts.rin[n:]
		if len(ts.rin) == 0 {
			ts.rin = nil
		}
		return n, nil
	}
	if ts.pull == 0 {
		return 0, errWouldBlock
	}
	ts.pull--
	n, err := readFd(int(ts.c.fd), p)
	switch {
	case err == unix.EAGAIN:
		return 0, errWouldBlock
	case err != nil:
		return 0, os.NewSyscallError("read", err)
	case n == 0:
		return 0, io.EOF
	}
	ts.pulled += n
	return n, nil
}

// Write is the transport's write, called by tc with whole records: on the loop (and in a
// handshake coroutine, which runs on the loop's thread) they are appended to cout; a pool
// worker keeps them until it waits or ends, then hands them to the loop, which owns the socket.
func (ts *tlsSession) Write(p []byte) (int, error) {
	c := ts.c
	if ts.onLoop {
		ts.cout = appendBuf(&c.loop.pool, ts.cout, &ts.chead, p)
		return len(p), nil
	}
	if ts.hs.coro {
		// A handshake coroutine runs on the loop's thread while the loop waits for it.
		c.appendSealed(p)
		return len(p), nil
	}
	// A pool worker: the loop owns the socket and the output. The records wait until the
	// worker waits for input or ends (readPool, handshakePool.run), so that a failed
	// handshake's alert and its outcome reach the loop together.
	ts.hs.pending = append(ts.hs.pending, p...)
	return len(p), nil
}

// appendSealed appends records a handshake worker wrote (opTLSOut). Loop goroutine.
func (c *Conn) appendSealed(p []byte) {
	if c.flags&fClosed != 0 {
		return
	}
	ts := c.tls
	ts.cout = appendBuf(&c.loop.pool, ts.cout, &ts.chead, p)
	c.markDirty()
}

// Close does nothing: the loop closes the socket. crypto/tls calls it only from tls.Conn.Close,
// which the reactor does not use.
func (ts *tlsSession) Close() error { return nil }

// LocalAddr and RemoteAddr serve crypto/tls's ClientHelloInfo.Conn, which a GetCertificate or
// GetConfigForClient callback may consult on the worker. The descriptor is read under the
// input's lock while the handshake is open: the loop closes it only after closing the input.
func (ts *tlsSession) LocalAddr() net.Addr {
	return ts.sockAddr(unix.Getsockname)
}

// RemoteAddr: see LocalAddr.
func (ts *tlsSession) RemoteAddr() net.Addr {
	return ts.sockAddr(unix.Getpeername)
}

func (ts *tlsSession) sockAddr(get func(int) (unix.Sockaddr, error)) net.Addr {
	if !ts.onLoop {
		in := &ts.hs.in
		in.mu.Lock()
		defer in.mu.Unlock()
		if in.closed {
			return nil
		}
	}
	sa, err := get(int(ts.c.fd))
	if err != nil {
		return nil
	}
	return sockopt.ToAddr(ts.c.kind, sa)
}

// SetDeadline and its two forms do nothing: the loop's timers bound the handshake and the
// connection, and the transport never waits after the handshake. crypto/tls sets a write
// deadline around close_notify.
func (ts *tlsSession) SetDeadline(time.Time) error { return nil }

// SetReadDeadline: see SetDeadline.
func (ts *tlsSession) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline: see SetDeadline.
func (ts *tlsSession) SetWriteDeadline(time.Time) error { return nil }
