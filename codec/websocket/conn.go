package websocket

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/reactord/reactord/reactor"
)

// Conn is one WebSocket connection, served on the event loop of the TCP connection it was
// upgraded from.
//
// Threading: Send, SendText, SendWait, Ping, Close, Subprotocol, Compressed and Loop are safe
// from any goroutine (Loop once OnOpen has run). Context, SetContext and RemoteAddr are for the
// connection's loop goroutine: inside Handler callbacks, or a function posted to Loop().
//
// Memory: an idle connection holds no buffer. Output is queued in storage borrowed while bytes
// are pending; a fragmented message is joined in storage borrowed from the loop until it is
// complete; an unfragmented message is handed to OnMessage straight from the read buffer.
type Conn struct {
	u     *Upgrader
	rc    netConn // the reactor connection; set (under mu) when the connection opens
	ls    *loopState
	dfl   *connDeflate // nil unless permessage-deflate was negotiated
	proto string

	// Loop goroutine only.
	st       connState
	msgOp    byte      // opcode of the fragmented message being received; 0 when none
	msgZ     bool      // that message is compressed (RSV1 on its first frame)
	u8       utf8State // validator state over the text message being received
	scan     bool      // stFailed: input is still parsed, looking for the peer's close frame
	slot     int32     // index in ls.conns
	partial  int       // bytes of the incomplete frame at the start of the kept input already unmasked
	msg      []byte    // fragments received so far (loop pool storage); nil when none
	tm       *reactor.Timer
	timerAt  int64 // when tm is due (loop clock), 0 when not armed
	lastRead int64 // loop clock of the last input
	pingAt   int64 // when the unanswered keepalive ping went out; 0 when none
	closeBy  int64 // deadline of the close handshake (stCloseSent, stFailed)
	closeErr error // what OnClose reports, once decided
	ctx      any

	closeReq atomic.Bool  // Close was called: no more messages are delivered
	staged   atomic.Int64 // len(stage.b), readable without mu

	// Shared with other goroutines, under mu.
	mu       sync.Mutex
	stage    *stageBuf   // frames sent and not yet handed to the reactor connection
	posted   bool        // a flush task is queued on the loop
	inLoop   bool        // the loop is dispatching this connection and flushes the stage after
	sendShut bool        // a close frame was queued (or the connection closed): nothing more goes out
	gone     bool        // OnClose ran
	closeQ   *CloseError // a close frame queued by Close, for the loop to take note of
	outFull  bool        // the reactor connection's output was at its high-water mark when the loop last wrote
	waiters  chan struct{}
	flushFn  func()
	groups   []*Group
}

// netConn is what a Conn uses of its *reactor.Conn; the fuzz and allocation tests drive the
// frame code through a fake that lives on a real loop.
type netConn interface {
	Write(p []byte) (int, error)
	Buffered() int
	OutputFull() bool
	Close() error
	CloseNow() error
	Loop() *reactor.Loop
	RemoteAddr() net.Addr
}

// connState is where a connection is in its life, as the loop sees it.
type connState uint8

const (
	stNew       connState = iota // upgraded; OnOpen has not run
	stOpen                       // messages flow
	stCloseSent                  // the server sent a close frame and waits for the peer's
	stFailed                     // the server failed the connection: waiting for the peer to go
	stClosing                    // the close handshake is over: the TCP connection is closing
	stClosed                     // OnClose ran
)

// connDeflate is a connection's permessage-deflate state.
type connDeflate struct {
	mode deflateMode
	own  *deflater // the compressor kept across messages (server context takeover)
	win  window    // the client's last 32 KiB (client context takeover)
}

// connHandler is a Conn as the reactor.Handler that codec/http hands the upgraded connection
// to. It is a separate type so that the reactor callbacks are not part of Conn's API, and a
// single-pointer struct, so storing it in an interface does not allocate.
type connHandler struct{ c *Conn }

func (h connHandler) OnOpen(rc *reactor.Conn)                { h.c.open(rc) }
func (h connHandler) OnData(rc *reactor.Conn, in []byte) int { return h.c.onData(in) }
func (h connHandler) OnClose(rc *reactor.Conn, err error)    { h.c.closed(err) }
func (h connHandler) OnWritable(rc *reactor.Conn)            { h.c.writable() }

// Subprotocol returns the subprotocol selected in the handshake ("" for none). Any goroutine.
func (c *Conn) Subprotocol() string { return c.proto }

// Compressed reports whether permessage-deflate was negotiated. Any goroutine.
func (c *Conn) Compressed() bool { return c.dfl != nil }

// Context returns the value set by SetContext. Loop goroutine only.
func (c *Conn) Context() any { return c.ctx }

// SetContext attaches application state to the connection (a user, a room). Loop goroutine
// only: from OnOpen, OnMessage, or right after Upgrade in the HTTP handler.
func (c *Conn) SetContext(v any) { c.ctx = v }

// RemoteAddr returns the peer's address, or nil before OnOpen or once it cannot be read. Loop
// goroutine only; the first call allocates.
func (c *Conn) RemoteAddr() net.Addr {
	if c.rc == nil {
		return nil
	}
	return c.rc.RemoteAddr()
}

// Loop returns the event loop the connection lives on (to Post work that touches it), or nil
// before OnOpen. Any goroutine that got c from OnOpen or later.
func (c *Conn) Loop() *reactor.Loop {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rc == nil {
		return nil
	}
	return c.rc.Loop()
}

// open is OnOpen: the 101 is queued and the connection belongs to its loop.
func (c *Conn) open(rc netConn) {
	ls := c.u.loopStateOf(rc.Loop())
	c.ls = ls
	ls.add(c)
	c.u.open.Add(1)
	c.st = stOpen
	c.lastRead = ls.nowNs()
	c.mu.Lock()
	c.rc = rc
	c.inLoop = true // anything sent before OnOpen, or in it, leaves when it returns
	c.mu.Unlock()
	if c.u.cfg.pingEvery > 0 {
		c.arm()
	}
	if c.u.shutting.Load() {
		c.Close(CloseGoingAway, "server shutting down")
	} else {
		c.callOpen()
	}
	c.endDispatch()
}

// onData is OnData: parse and handle every complete frame of in, returning what was consumed.
func (c *Conn) onData(in []byte) (consumed int) {
	if c.st >= stClosing {
		return len(in)
	}
	c.lastRead = c.ls.nowNs()
	c.mu.Lock()
	c.inLoop = true
	c.mu.Unlock()
	defer func() {
		if v := recover(); v != nil {
			c.handlerPanicked("OnMessage", v)
			consumed = len(in)
		}
		c.endDispatch()
		c.ls.publish()
	}()
	return c.readFrames(in)
}

// closed is OnClose.
func (c *Conn) closed(err error) {
	opened := c.st != stNew
	c.st = stClosed
	c.closeReq.Store(true)
	if c.tm != nil {
		c.tm.Stop()
		c.timerAt = 0
	}
	c.dropMessage()
	c.mu.Lock()
	c.sendShut, c.gone = true, true
	if c.stage != nil {
		putStage(c.stage)
		c.stage = nil
		c.staged.Store(0)
	}
	c.wakeWaitersLocked()
	groups := c.groups
	c.groups = nil
	c.mu.Unlock()
	for _, g := range groups {
		g.Remove(c)
	}
	if c.dfl != nil && c.dfl.own != nil {
		c.dfl.own = nil
	}
	if c.ls != nil {
		c.ls.remove(c)
	}
	report := c.closeErr
	if report == nil {
		report = err
	}
	if opened {
		c.u.connClosed()
		c.callClose(report)
	}
}

// writable is OnWritable: the reactor's output drained to its low-water mark.
func (c *Conn) writable() {
	c.mu.Lock()
	c.outFull = c.rc.OutputFull()
	c.wakeWaitersLocked()
	c.mu.Unlock()
	if c.st != stOpen || c.u.wh == nil {
		return
	}
	c.mu.Lock()
	c.inLoop = true
	c.mu.Unlock()
	defer func() {
		if v := recover(); v != nil {
			c.handlerPanicked("OnWritable", v)
		}
		c.endDispatch()
	}()
	c.u.wh.OnWritable(c)
}

// callOpen runs Handler.OnOpen, turning a panic into a failed connection.
func (c *Conn) callOpen() {
	defer func() {
		if v := recover(); v != nil {
			c.handlerPanicked("OnOpen", v)
		}
	}()
	c.u.h.OnOpen(c)
}

// callClose runs Handler.OnClose; a panic is logged (the connection is gone already).
func (c *Conn) callClose(err error) {
	defer func() {
		if v := recover(); v != nil {
			c.u.cfg.logger.Error("websocket handler panic", zap.String("in", "OnClose"),
				zap.Any("panic", v), zap.StackSkip("stack", 2))
		}
	}()
	c.u.h.OnClose(c, err)
}

func (c *Conn) handlerPanicked(in string, v any) {
	c.u.cfg.logger.Error("websocket handler panic", zap.String("in", in),
		zap.Any("panic", v), zap.StackSkip("stack", 3))
	c.fail(CloseInternalError, "internal error")
}

// endDispatch ends a callback run on the loop: what was sent meanwhile goes to the reactor
// connection, and a Close called meanwhile takes effect.
func (c *Conn) endDispatch() {
	c.mu.Lock()
	c.inLoop = false
	q := c.flushLocked()
	c.mu.Unlock()
	if q != nil {
		c.closeSent(q)
	}
}

// flushTask is the task a Send from outside a dispatch posts to the loop.
func (c *Conn) flushTask() {
	c.mu.Lock()
	c.posted = false
	q := c.flushLocked()
	c.mu.Unlock()
	if q != nil {
		c.closeSent(q)
	}
}

// flushNow hands the stage to the reactor connection at once. Loop goroutine only.
func (c *Conn) flushNow() {
	c.mu.Lock()
	q := c.flushLocked()
	c.mu.Unlock()
	if q != nil {
		c.closeSent(q)
	}
}

// flushLocked writes the stage to the reactor connection (loop goroutine, mu held) and returns
// the close frame it carried that the loop has not taken note of yet.
func (c *Conn) flushLocked() *CloseError {
	if c.rc == nil {
		return nil // not open yet: open flushes
	}
	if s := c.stage; s != nil {
		if c.st < stClosed {
			c.rc.Write(s.b)
		}
		putStage(s)
		c.stage = nil
		c.staged.Store(0)
	}
	// Above the high-water mark the reactor stops reading the connection and, once the
	// output has drained to the low-water mark, calls OnWritable (writable), which clears
	// outFull: the flag can never stay set for an output that has drained.
	c.outFull = c.rc.OutputFull()
	if c.waiters != nil && !c.outFull {
		c.wakeWaitersLocked()
	}
	q := c.closeQ
	c.closeQ = nil
	return q
}

func (c *Conn) wakeWaitersLocked() {
	if c.waiters != nil {
		close(c.waiters)
		c.waiters = nil
	}
}

// closeSent takes note, on the loop, that a close frame queued by Close has been handed to
// the reactor connection: the close handshake is under way.
func (c *Conn) closeSent(q *CloseError) {
	if c.st != stOpen {
		return // the peer's close or a failure got there first
	}
	c.st = stCloseSent
	c.closeErr = q
	c.dropMessage()
	c.closeBy = c.ls.nowNs() + int64(c.u.cfg.closeWait)
	c.arm()
}

// fail fails the connection (RFC 6455 §7.1.7): a close frame with code goes out, messages stop,
// and the connection closes once the peer answers or goes away, or the close timeout passes.
// Loop goroutine only.
func (c *Conn) fail(code StatusCode, reason string) {
	if c.st >= stFailed {
		return
	}
	c.u.failed.Add(1)
	if c.st == stOpen {
		c.closeErr = &CloseError{Code: code, Reason: reason}
	}
	c.mu.Lock()
	if !c.sendShut {
		c.sendShut = true
		c.appendCloseLocked(code, reason)
	}
	c.closeQ = nil
	if !c.inLoop {
		c.flushLocked()
	}
	c.mu.Unlock()
	c.closeReq.Store(true)
	c.st = stFailed
	c.scan = true
	c.partial = 0
	c.dropMessage()
	c.closeBy = c.ls.nowNs() + int64(c.u.cfg.closeWait)
	c.arm()
}

// finish ends the close handshake: the TCP connection closes once the output is written.
func (c *Conn) finish() {
	c.st = stClosing
	c.dropMessage()
	c.mu.Lock()
	c.flushLocked()
	c.mu.Unlock()
	c.rc.Close()
}

// dropMessage forgets a partly received message.
func (c *Conn) dropMessage() {
	if c.msg != nil {
		c.ls.pool.Put(c.msg)
		c.msg = nil
	}
	c.msgOp, c.msgZ, c.u8 = 0, false, utf8Accept
}

// Deadlines: one loop timer per connection, for the keepalive ping, the pong it waits for,
// and the close handshake. It is created on first need and re-armed lazily: input only moves
// lastRead, and the timer, when it fires early, goes back to sleep until the real deadline.

type deadlineKind uint8

const (
	dlNone deadlineKind = iota
	dlPing
	dlPong
	dlClose
)

func (c *Conn) deadline() (int64, deadlineKind) {
	switch c.st {
	case stCloseSent, stFailed:
		return c.closeBy, dlClose
	case stOpen:
		cfg := &c.u.cfg
		switch {
		case cfg.pingEvery <= 0:
		case c.pingAt != 0:
			return c.pingAt + int64(cfg.pongWait), dlPong
		default:
			return c.lastRead + int64(cfg.pingEvery), dlPing
		}
	}
	return 0, dlNone
}

// arm makes sure the timer fires no later than the current deadline.
func (c *Conn) arm() {
	when, kind := c.deadline()
	if kind == dlNone || c.timerAt != 0 && c.timerAt <= when {
		return
	}
	d := time.Duration(when - c.ls.nowNs())
	if c.tm == nil {
		c.tm = c.rc.Loop().AfterFunc(d, c.onTimer)
	} else {
		c.tm.Reset(d)
	}
	c.timerAt = when
}

func (c *Conn) onTimer() {
	c.timerAt = 0
	if c.st >= stClosing {
		return
	}
	when, kind := c.deadline()
	if kind == dlNone {
		return
	}
	now := c.ls.nowNs()
	if when > now {
		c.arm()
		return
	}
	switch kind {
	case dlPing:
		c.pingAt = now
		c.loopControl(opPing, nil)
		c.arm()
	case dlPong:
		c.closeErr = ErrPongTimeout
		c.rc.CloseNow()
	case dlClose:
		if c.closeErr == nil || c.st == stCloseSent {
			c.closeErr = ErrCloseTimeout
		}
		c.rc.CloseNow()
	}
}

// String returns "websocket 127.0.0.1:54321" (the peer's address when known). Loop goroutine.
func (c *Conn) String() string {
	if a := c.RemoteAddr(); a != nil {
		return fmt.Sprintf("websocket %s", a)
	}
	return "websocket"
}
