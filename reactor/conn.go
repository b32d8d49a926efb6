package reactor

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/sockopt"
)

// Conn is one stream connection (TCP or Unix): accepted by a listener, opened by Dial, or
// handed over by Adopt or AdoptFd. It belongs to one Loop, and every
// method must be called on that loop's goroutine (inside a Handler callback, a timer or a
// posted function) except AsyncWrite, AsyncWriteContext, Close and Loop, which are safe from
// any goroutine.
//
// An idle Conn owns no buffers: input is read into the loop's shared buffer and only an
// unconsumed tail is copied into storage of the connection's own; output storage is borrowed
// while bytes are pending and returned once they are written.
//
// Conn is an io.Writer (Write copies into the output buffer, flushed at the end of the loop
// iteration), so fmt.Fprintf(c, ...) works on the loop goroutine.
//
// Its layout is kept small on purpose (one idle connection is this struct, a timer heap entry
// and a slot in two fd-indexed tables): what few connections need lives in connExtra, buffered
// I/O in a connIO borrowed only while there is any, and the fields are ordered so that
// nothing is padding. Adding a field? Prefer connExtra; check the size with TestConnSize.
type Conn struct {
	loop *Loop
	hs   *handlerSet               // the loop's for accepted connections; the caller's for dialed ones
	io   *connIO                   // buffered input and output, borrowed from the loop while there is any (conn_buf.go)
	ctx  any                       // SetContext
	x    atomic.Pointer[connExtra] // rarely needed state, made on first use; nil for most connections
	dl   int64                     // SetDeadline deadline, loop clock; 0 = none (conn_timer.go)
	tls  *tlsSession               // nil without TLS (tls_conn.go)

	fd    int32
	flags connFlags     // loop-goroutine state
	state atomic.Uint32 // connOpen, connClosing or connClosed: what other goroutines see
	tmi   int32         // position of the connection's entry in the loop's timer heap + 1; 0 = none
	born  uint32        // when it was added, in ms of the loop clock (wrapping): its age, for shedding
	seq   uint16        // the loop's addSeq when it was added: orders those born in the same ms
	holds uint16        // Hold calls not yet Released
	port  uint16        // the peer's port, with peer (fPeer)
	reg   uint8         // poller.Events registered with the poller (Readable|Writable)
	kind  sockopt.Kind
	peer  [16]byte // the peer's IP address as accept reported it, IPv4 mapped (fPeer)
}

// connExtra is the per-connection state few connections need, kept out of Conn so that an
// idle connection stays small: it is made by the first call that needs it (extra) and lives
// as long as the connection. The pointer to it is atomic because AsyncWriteContext, on any
// goroutine, may be the one that makes it (for pace); every other field is the loop
// goroutine's.
type connExtra struct {
	pace   atomic.Pointer[pacer] // set by the first AsyncWriteContext (any goroutine)
	to     connTimeouts          // valid when fTimeouts is set
	remote net.Addr              // RemoteAddr's result, once asked for (or a link-local peer's, with its zone)
}

// extra returns the connection's rarely needed state, making it on first use.
// Any goroutine.
func (c *Conn) extra() *connExtra {
	if x := c.x.Load(); x != nil {
		return x
	}
	c.x.CompareAndSwap(nil, new(connExtra))
	return c.x.Load()
}

// pacerIfAny returns the connection's pacer, nil before the first AsyncWriteContext. Any
// goroutine.
func (c *Conn) pacerIfAny() *pacer {
	if x := c.x.Load(); x != nil {
		return x.pace.Load()
	}
	return nil
}

type connFlags uint32

const (
	fPausedUser connFlags = 1 << iota // PauseRead
	fPausedBP                         // output above the high-water mark
	fClosing                          // close once output drains (Close, or EOF with output)
	fClosed                           // closed; OnClose has run
	fWantWrite                        // Writable interest on: the last write hit EAGAIN
	fDirty                            // queued in loop.dirty
	fRedeliver                        // queued in loop.redeliver: kept input goes back to OnData before any read
	fAboveLow                         // output exceeded the low-water mark since OnWritable
	fEOF                              // the peer shut its writing side (a read returned 0): nothing more is read
	fEOFSettled                       // the EOF was acted on: the kept input is dealt with, OnReadEOF asked
	fKeepOpen                         // OnReadEOF kept the connection open: the handler closes it
	fInData                           // OnData is running for this connection
	fResumed                          // ResumeRead ran inside OnData: hand the kept input back
	fConnecting                       // a dialed connection not established yet (see dial.go)
	fRing                             // the io_uring completion mode does its I/O (conn_ring.go)
	fSendBuf                          // completion mode: output in flight in the ring's send buffer
	fHandshake                        // TLS handshake not completed: no Handler call yet
	fTLSFull                          // handshake input at its cap: reading waits for the worker
	fTLSMore                          // crypto/tls holds input not yet handed to OnData
	fTimeouts                         // an idle or read timeout was set: x.to holds them
	fPeer                             // peer and port hold the peer's address (from accept)
	fCloseEOF                         // a graceful close after the peer's EOF: OnClose gets io.EOF
	fProgress                         // OnData has consumed input at least once (shedding ranks by it)
	fDropped                          // a graceful close discarded input the handler had not consumed
	fAdmitted                         // the Admitter admitted it: Release is due (releaseAdmission)
)

// State values of Conn.state.
const (
	connOpen uint32 = iota
	connClosing
	connClosed
)

// newConn makes the Conn of an accepted socket; peer is what accept reported.
func newConn(l *Loop, fd int, kind sockopt.Kind, peer sockopt.Peer) *Conn {
	c := &Conn{loop: l, hs: &l.hs, fd: int32(fd), kind: kind}
	if ap := peer.Addr; ap.IsValid() {
		c.peer, c.port = ap.Addr().As16(), ap.Port()
		c.flags |= fPeer
		if peer.Scope != 0 {
			// A link-local IPv6 peer: its zone names the interface, looked up once here.
			c.extra().remote = sockopt.ToAddr(kind, &unix.SockaddrInet6{Port: int(ap.Port()), ZoneId: peer.Scope, Addr: c.peer})
		}
	}
	return c
}

// Write appends a copy of p to the connection's output and returns len(p). Nothing is
// written to the socket until the end of the loop iteration, when all output written during it
// goes out in one write(2): many small writes cost one system call. Loop goroutine only. It
// returns ErrConnClosed once Close was requested or the connection closed.
func (c *Conn) Write(p []byte) (int, error) {
	if c.flags&fClosed != 0 || c.state.Load() != connOpen {
		return 0, ErrConnClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	c.appendOut(p)
	return len(p), nil
}

// AsyncWrite copies p and has the loop append it to the output, then flush it. It is safe from
// any goroutine; the bytes of one call stay contiguous in the stream, and calls from one
// goroutine keep their order. It never waits, and so does not bound what it buffers: a
// goroutine producing faster than the client reads should use AsyncWriteContext, which waits
// for the output to drain below the watermarks. It returns ErrConnClosed once Close was
// requested or the connection closed, and ErrLoopClosed once the loop has stopped; bytes
// accepted just before the connection closes are dropped.
func (c *Conn) AsyncWrite(p []byte) error {
	if c.state.Load() != connOpen {
		return ErrConnClosed
	}
	if len(p) == 0 {
		return nil
	}
	return c.asyncWrite(p, c.pacerIfAny())
}

// Close closes the connection after its pending output (including AsyncWrites that were
// called before it) has been written. Input arriving meanwhile is discarded. OnClose then
// runs with a nil error. A TCP peer still sending at that point (a request body the handler
// refused) gets a lingering close: the writing side is shut, so the peer sees the end of the
// output, and what it still sends is read and dropped for up to 2 s before the descriptor
// closes, so the close cannot turn into a reset that destroys the end of the output. It is safe from any goroutine and idempotent: later calls, and calls
// after the connection closed, return nil. It returns ErrLoopClosed if the loop has stopped.
func (c *Conn) Close() error {
	if !c.state.CompareAndSwap(connOpen, connClosing) {
		return nil
	}
	if pc := c.pacerIfAny(); pc != nil {
		pc.wake() // AsyncWriteContext waiters return ErrConnClosed
	}
	return c.loop.post(task{op: opClose, c: c})
}

// CloseNow closes the connection at once, discarding pending output, and calls OnClose with a
// nil error before returning. Loop goroutine only; idempotent.
func (c *Conn) CloseNow() error {
	c.closeNow(nil)
	return nil
}

// SendFile queues n bytes of f starting at offset off, to be sent with sendfile(2) after the
// output already buffered, without copying them through user space (in the io_uring completion
// mode a file from 512 KiB goes through a pipe with the ring's splices instead, run by the
// kernel's io-wq workers rather than on the loop; see docs/IO_URING.md). The reactor duplicates
// the descriptor, so the caller may close f as soon as SendFile returns. Queued file bytes
// count in Buffered and OutputFull like written bytes, so reading pauses while a large file is
// being sent. Loop goroutine only. Errors: ErrInvalidArgument for a nil f, negative off or n
// (n = 0 does nothing), ErrConnClosed, or the dup(2) error. A file shorter than off+n closes
// the connection with io.ErrUnexpectedEOF once the end is reached.
//
// On a TLS connection the kernel cannot encrypt (no kTLS), so the file is read with pread(2)
// on the loop, in chunks of 64 KiB sealed into records as the socket takes them, at most
// 256 KiB per connection per loop iteration: memory stays within one chunk of ciphertext, and
// the watermarks pace it as they pace sendfile.
func (c *Conn) SendFile(f *os.File, off, n int64) error {
	if f == nil || off < 0 || n < 0 {
		return fmt.Errorf("%w: SendFile(%v, %d, %d)", ErrInvalidArgument, f, off, n)
	}
	if c.flags&fClosed != 0 || c.state.Load() != connOpen {
		return ErrConnClosed
	}
	if n == 0 {
		return nil
	}
	// Errors name the file: "sendfile /srv/a.txt: use of closed file".
	rc, err := f.SyscallConn()
	if err != nil {
		return &os.PathError{Op: "sendfile", Path: f.Name(), Err: err}
	}
	dup := -1
	var dupErr error
	if err := rc.Control(func(fd uintptr) {
		dup, dupErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return &os.PathError{Op: "sendfile", Path: f.Name(), Err: err}
	}
	if dupErr != nil {
		return &os.PathError{Op: "sendfile", Path: f.Name(), Err: os.NewSyscallError("dup", dupErr)}
	}
	c.appendFile(dup, off, n)
	return nil
}

// PauseRead stops reading the connection (its kept input stays kept) until ResumeRead. A codec
// pauses while a request is being served elsewhere. A paused connection is busy (see the
// package doc): idle and read timeouts do not run, Shutdown waits for it, and a peer's EOF is
// acted on only once it resumes. Loop goroutine only.
func (c *Conn) PauseRead() {
	if c.flags&(fClosed|fPausedUser) != 0 {
		return
	}
	c.flags |= fPausedUser
	if c.flags&fInData == 0 {
		c.syncInterest() // inside OnData, deliver does it once OnData returns
	}
}

// ResumeRead undoes PauseRead. Kept input, if any, is handed to OnData again early in the
// next loop iteration, without waiting for new bytes, and before anything more is read (so
// before a peer's EOF is seen). Loop goroutine only.
func (c *Conn) ResumeRead() {
	if c.flags&fClosed != 0 || c.flags&fPausedUser == 0 {
		return
	}
	c.flags &^= fPausedUser
	c.unbusied()
}

// Hold marks the connection busy because its handler owes it work done elsewhere (a request
// handed to a worker goroutine, say), without pausing reading. Holds are counted: each Hold
// needs one Release. While held, the connection is busy (see the package doc): idle and read
// timeouts do not run, Server.Shutdown waits for it, and a peer's EOF closes it only after the
// last Release. A hold ends with the connection (Close, CloseNow, errors, Server.Close); a
// deadline set with SetDeadline still fires while held. Loop goroutine only: from the worker,
// c.Loop().Post(c.Release). It panics past 65535 holds at once, which means Releases are
// missing.
func (c *Conn) Hold() {
	if c.flags&fClosed != 0 {
		return
	}
	if c.holds == maxHolds {
		panic("reactor: Conn.Hold: 65535 holds outstanding (missing Release calls)")
	}
	c.holds++
}

// maxHolds bounds Conn.holds.
const maxHolds = 1<<16 - 1

// Release ends one Hold. When the last hold ends and reading is not paused, kept input is
// handed back to OnData (as after ResumeRead), idle and read timeouts count from now, and a
// connection whose peer has shut its writing side closes once its output is flushed. A Release
// without a Hold outstanding does nothing. Loop goroutine only.
func (c *Conn) Release() {
	if c.flags&fClosed != 0 || c.holds == 0 {
		return
	}
	c.holds--
	if c.holds == 0 {
		c.unbusied()
	}
}

// Held reports how many Holds are outstanding. Loop goroutine only.
func (c *Conn) Held() int { return int(c.holds) }

// unbusied runs after ResumeRead or the last Release: if reading is on, kept input goes back to
// OnData; if the connection is no longer busy at all, its timeouts count from now and a settled
// EOF closes it.
func (c *Conn) unbusied() {
	if c.flags&fPausedUser == 0 {
		if c.flags&fInData != 0 {
			// The input left by the running OnData is stored only after it returns; deliver
			// queues it for redelivery then.
			c.flags |= fResumed
		} else {
			c.scheduleRedeliver()
			c.syncInterest()
		}
	}
	if c.busy() || c.flags&fClosed != 0 {
		return
	}
	if c.flags&fTimeouts != 0 {
		c.x.Load().to.lastActive, c.x.Load().to.lastRead = c.loop.nowNs, c.loop.nowNs
		c.arm()
	}
	if c.flags&fEOFSettled != 0 && c.flags&fInData == 0 {
		c.closeAfterEOF()
	}
}

// Buffered returns the number of output bytes not yet written to the socket, including bytes
// of files queued by SendFile and, on a TLS connection, records sealed but not yet written.
// Loop goroutine only.
func (c *Conn) Buffered() int {
	n := 0
	if b := c.io; b != nil {
		n = len(b.out) - b.head
		if b.q != nil {
			n += int(b.q.bytes)
		}
	}
	if c.flags&fSendBuf != 0 {
		n += c.loop.ring.unsent(int(c.fd)) // older than io.out: handed to a send, not yet all taken
	}
	if ts := c.tls; ts != nil {
		n += len(ts.cout) - ts.chead
	}
	return n
}

// OutputFull reports whether the pending output has reached the high-water mark (see
// WithWatermarks): a handler should stop producing output, and stop consuming input, until
// OnWritable or the next OnData. Loop goroutine only.
func (c *Conn) OutputFull() bool { return c.Buffered() >= c.loop.opt.high }

// Fd returns the connection's file descriptor. The number belongs to the reactor: do not close
// it, and do not use it after OnClose, when it may already name another file. On a TLS
// connection the socket carries records: reading or writing it directly corrupts the stream.
func (c *Conn) Fd() int { return int(c.fd) }

// LocalAddr returns the local address (getsockname), or nil if it cannot be read. It is not
// cached (an idle connection stays small) and allocates. Loop goroutine only.
func (c *Conn) LocalAddr() net.Addr {
	sa, err := unix.Getsockname(int(c.fd))
	if err != nil {
		return nil
	}
	return sockopt.ToAddr(c.kind, sa)
}

// RemoteAddr returns the peer's address: a *net.TCPAddr for TCP, a *net.UnixAddr for a Unix
// socket. For an accepted TCP connection it is the address accept reported; otherwise it is
// read with getpeername, and nil if the peer is already gone before the first call. The first
// call makes the value (it allocates), later calls return the same one. RemoteAddrPort gives
// the same address without allocating. Loop goroutine only.
func (c *Conn) RemoteAddr() net.Addr {
	if x := c.x.Load(); x != nil && x.remote != nil {
		return x.remote
	}
	var a net.Addr
	switch {
	case c.flags&fPeer != 0:
		ap := c.RemoteAddrPort()
		a = &net.TCPAddr{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
	case c.flags&fClosed == 0:
		sa, err := unix.Getpeername(int(c.fd))
		if err != nil {
			return nil
		}
		a = sockopt.ToAddr(c.kind, sa)
	default:
		return nil
	}
	c.extra().remote = a
	return a
}

// RemoteAddrPort returns the peer's IP address (IPv4 in its 4-byte form) and port, without
// allocating once known: for an accepted TCP connection from what accept reported, otherwise
// from RemoteAddr. It is the zero AddrPort (IsValid false) for a Unix socket, or when the peer
// is gone before the address could be read. The zone of a link-local IPv6 peer is left out
// (RemoteAddr has it). Loop goroutine only.
func (c *Conn) RemoteAddrPort() netip.AddrPort {
	if c.flags&fPeer != 0 {
		return netip.AddrPortFrom(netip.AddrFrom16(c.peer).Unmap(), c.port)
	}
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok && ta != nil {
		ap := ta.AddrPort()
		c.peer, c.port = ap.Addr().As16(), ap.Port()
		c.flags |= fPeer
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// Context returns the value set by SetContext. Loop goroutine only.
func (c *Conn) Context() any { return c.ctx }

// SetContext attaches handler state (a codec's parser, say) to the connection. Loop goroutine
// only.
func (c *Conn) SetContext(v any) { c.ctx = v }

// Loop returns the loop the connection belongs to. Any goroutine.
func (c *Conn) Loop() *Loop { return c.loop }
