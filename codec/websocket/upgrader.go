package websocket

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	rhttp "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/internal/bufpool"
	"github.com/reactord/reactord/reactor"
)

// MessageType is the type of a data message: Text (UTF-8, validated on receipt and on send)
// or Binary.
type MessageType uint8

// Message types; the values are the frame opcodes.
const (
	Text   MessageType = opText
	Binary MessageType = opBinary
)

// String returns "text" or "binary".
func (t MessageType) String() string {
	switch t {
	case Text:
		return "text"
	case Binary:
		return "binary"
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// Handler receives the life events of the Upgrader's connections. Every method runs on the
// connection's loop goroutine: a handler needs no locks for per-connection state and must not
// block, since a blocked callback stalls every connection of that loop (hand slow work to
// another goroutine and Send the answer from there). A panic is recovered and logged, and
// fails the connection with CloseInternalError.
type Handler interface {
	// OnOpen is called once the 101 response is queued, before any OnMessage. It may Send
	// (a greeting), join Groups, set a context, or Close.
	OnOpen(c *Conn)
	// OnMessage is called for every complete data message, fragments joined and
	// decompressed; text is valid UTF-8. data is a view valid only during the call (it points
	// into the loop's read buffer or a reused buffer): copy what must outlive it. Send copies.
	OnMessage(c *Conn, typ MessageType, data []byte)
	// OnClose is called exactly once, when the connection has closed. err is a *CloseError
	// when a close frame was exchanged (the peer's or the server's: see CloseError.Remote);
	// otherwise the cause: io.EOF when the peer dropped the connection without a close frame
	// (what RFC 6455 reports as 1006), ErrPongTimeout, ErrCloseTimeout,
	// reactor.ErrServerClosed, or a wrapped system error such as ECONNRESET.
	OnClose(c *Conn, err error)
}

// WritableHandler is optionally implemented by a Handler that produces output on the loop at
// its own pace (a stream, a replay): OnWritable is called on the loop goroutine when a
// connection's pending output, having been above the reactor's low-water mark, has drained to
// it. Such a handler sends until Conn.Send returns ErrOutputFull (with SlowConsumerDrop) and
// continues from OnWritable.
type WritableHandler interface {
	OnWritable(c *Conn)
}

// HandlerFuncs adapts plain functions to Handler. Nil fields do nothing.
type HandlerFuncs struct {
	Open    func(c *Conn)
	Message func(c *Conn, typ MessageType, data []byte)
	Close   func(c *Conn, err error)
}

// OnOpen calls h.Open if it is set.
func (h HandlerFuncs) OnOpen(c *Conn) {
	if h.Open != nil {
		h.Open(c)
	}
}

// OnMessage calls h.Message if it is set.
func (h HandlerFuncs) OnMessage(c *Conn, typ MessageType, data []byte) {
	if h.Message != nil {
		h.Message(c, typ, data)
	}
}

// OnClose calls h.Close if it is set.
func (h HandlerFuncs) OnClose(c *Conn, err error) {
	if h.Close != nil {
		h.Close(c, err)
	}
}

// Upgrader turns HTTP requests of codec/http's native handler into WebSocket connections
// served on the same event loop, and keeps track of them for Broadcast, Shutdown and Stats.
// One Upgrader serves any number of connections (and servers). Its methods are safe from any
// goroutine; Upgrade is called from a native rhttp.Handler, on the loop.
type Upgrader struct {
	cfg  config
	h    Handler
	wh   WritableHandler // h as a WritableHandler, or nil
	defl deflaterPool    // stateless compressors at the configured level
	huff deflaterPool    // Huffman-only compressors (server_max_window_bits < 15)

	mu      sync.Mutex
	loops   map[*reactor.Loop]*loopState
	list    []*loopState
	drained chan struct{} // closed once shutting down and no connection is left

	shutting atomic.Bool
	open     atomic.Int64
	upgrades atomic.Uint64
	rejected atomic.Uint64
	failed   atomic.Uint64
	dropped  atomic.Uint64
}

// NewUpgrader returns an Upgrader whose connections are served by h. Errors:
// ErrInvalidArgument for a nil h, and ErrInvalidOption (joined, one per bad option).
func NewUpgrader(h Handler, opts ...Option) (*Upgrader, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil Handler", ErrInvalidArgument)
	}
	u := &Upgrader{cfg: defaultConfig(), h: h, loops: make(map[*reactor.Loop]*loopState)}
	for _, o := range opts {
		if o == nil {
			u.cfg.fail("nil Option")
			continue
		}
		o(&u.cfg)
	}
	if err := u.cfg.err(); err != nil {
		return nil, err
	}
	if u.cfg.maxFrame == 0 || u.cfg.maxFrame > u.cfg.maxMessage {
		u.cfg.maxFrame = u.cfg.maxMessage
	}
	u.wh, _ = h.(WritableHandler)
	if cc := u.cfg.compress; cc != nil {
		u.defl.level = cc.Level
	}
	u.huff.level = -2 // flate.HuffmanOnly
	return u, nil
}

// Upgrade validates the request as a WebSocket opening handshake (RFC 6455 §4.2.1) and, if
// it is acceptable, answers "101 Switching Protocols" with the accept key, the selected
// subprotocol and the negotiated extension, and returns the connection. The connection opens
// (Handler.OnOpen) once the calling Handle returns; before that c may be given a context
// (SetContext) and may Send, which is queued behind the 101.
//
// A request that is not acceptable is answered by Upgrade itself and an error wrapping
// ErrBadHandshake is returned: 405 (not GET), 400 (HTTP/1.0, a missing or malformed
// Sec-WebSocket-Key), 426 with "Sec-WebSocket-Version: 13" (another or no version), 426
// with "Upgrade: websocket" (no Upgrade: websocket or Connection: Upgrade), 403 (refused
// by the origin check), 503 (the Upgrader is shutting down, or the connection cannot switch
// protocols: the server is draining). The handler must not write more after an error.
//
// Loop goroutine only, inside a native rhttp.Handler's Handle; w and r are the call's. Errors
// besides ErrBadHandshake: ErrInvalidArgument for a nil w or r.
func (u *Upgrader) Upgrade(w *rhttp.ResponseWriter, r *rhttp.Request) (*Conn, error) {
	if w == nil || r == nil {
		return nil, fmt.Errorf("%w: Upgrade(%p, %p)", ErrInvalidArgument, w, r)
	}
	if u.shutting.Load() {
		return nil, u.refuse(w, hsShutdown)
	}
	key, he := checkRequest(r)
	if he != nil {
		return nil, u.refuse(w, he)
	}
	check := u.cfg.checkOrigin
	if check == nil {
		check = sameOrigin
	}
	if !check(r) {
		return nil, u.refuse(w, hsOrigin)
	}
	c := &Conn{u: u}
	if len(u.cfg.subprotocols) > 0 {
		c.proto = selectSubprotocol(r, u.cfg.subprotocols)
	}
	var buf [160]byte
	w.Set("Upgrade", "websocket")
	w.SetBytes("Sec-WebSocket-Accept", appendAccept(buf[:0], key))
	if c.proto != "" {
		w.Set("Sec-WebSocket-Protocol", c.proto)
	}
	if cc := u.cfg.compress; cc != nil {
		if mode, ext := negotiateDeflate(r, cc, buf[:0]); mode.on {
			c.dfl = &connDeflate{mode: mode}
			w.SetBytes("Sec-WebSocket-Extensions", ext)
		}
	}
	if err := w.Upgrade(connHandler{c}); err != nil {
		for _, h := range [...]string{"Upgrade", "Sec-WebSocket-Accept", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"} {
			w.Del(h)
		}
		return nil, fmt.Errorf("%w (%w)", u.refuse(w, hsUnavailable), err)
	}
	u.upgrades.Add(1)
	return c, nil
}

// refuse answers a refused handshake and returns the error for the caller.
func (u *Upgrader) refuse(w *rhttp.ResponseWriter, he *handshakeError) error {
	u.rejected.Add(1)
	w.SetStatus(he.status)
	switch he {
	case hsWSVersion:
		w.Set("Sec-WebSocket-Version", "13")
		w.Set("Upgrade", "websocket")
	case hsUpgrade:
		w.Set("Upgrade", "websocket")
	case hsMethod:
		w.Set("Allow", "GET")
	}
	w.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteString(he.reason)
	w.WriteString("\n")
	return fmt.Errorf("%w: %s", ErrBadHandshake, he.reason)
}

// Broadcast sends one message to every open connection of the Upgrader. The frame is encoded
// once (and compressed at most once per compression kind), and each loop writes it to its
// connections in one task, so the cost per connection is one copy into its output buffer.
// Connections at their send limit get the slow-consumer policy. Safe from any goroutine; data
// is copied before Broadcast returns. Errors: ErrInvalidArgument for a bad type,
// ErrInvalidUTF8 for bad text.
func (u *Upgrader) Broadcast(typ MessageType, data []byte) error {
	p, err := newPrepared(u, typ, data)
	if err != nil {
		return err
	}
	u.mu.Lock()
	loops := append([]*loopState(nil), u.list...)
	u.mu.Unlock()
	for _, ls := range loops {
		ls.loop.Post(func() {
			for _, c := range ls.conns {
				c.sendPrepared(p)
			}
		})
	}
	return nil
}

// Shutdown closes every connection with CloseGoingAway and waits until the peers have
// answered (or the close timeout closed them), or until ctx is done: then the remaining
// connections are closed at once and ctx.Err() is returned. New handshakes are refused with
// 503 from the start. Call it before the HTTP server's Shutdown, which would otherwise close
// the WebSocket connections without a close frame. Any goroutine but a loop goroutine.
func (u *Upgrader) Shutdown(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("%w: nil context", ErrInvalidArgument)
	}
	u.mu.Lock()
	u.shutting.Store(true)
	if u.drained == nil {
		u.drained = make(chan struct{})
		if u.open.Load() == 0 {
			close(u.drained)
		}
	}
	drained := u.drained
	loops := append([]*loopState(nil), u.list...)
	u.mu.Unlock()
	for _, ls := range loops {
		ls.loop.Post(func() {
			for _, c := range append([]*Conn(nil), ls.conns...) {
				c.Close(CloseGoingAway, "server shutting down")
			}
		})
	}
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
	}
	for _, ls := range loops {
		ls.loop.Post(func() {
			for _, c := range append([]*Conn(nil), ls.conns...) {
				c.rc.CloseNow()
			}
		})
	}
	return ctx.Err()
}

// connClosed counts a connection gone and completes a Shutdown waiting for the last one.
func (u *Upgrader) connClosed() {
	if u.open.Add(-1) == 0 && u.shutting.Load() {
		u.mu.Lock()
		if u.drained != nil && u.open.Load() == 0 {
			select {
			case <-u.drained:
			default:
				close(u.drained)
			}
		}
		u.mu.Unlock()
	}
}

// Stats is a snapshot of an Upgrader's counters.
type Stats struct {
	// Open is the number of connections open now.
	Open int64
	// Upgrades counts handshakes accepted; Rejected those refused.
	Upgrades, Rejected uint64
	// MessagesIn counts data messages delivered to OnMessage.
	MessagesIn uint64
	// Failed counts connections failed by the server for a protocol violation, invalid
	// UTF-8, a size limit or a handler panic.
	Failed uint64
	// Dropped counts messages refused by SlowConsumerDrop (Send and broadcasts).
	Dropped uint64
}

// Stats returns the counters. Any goroutine; MessagesIn may lag by one loop iteration.
func (u *Upgrader) Stats() Stats {
	st := Stats{
		Open:     u.open.Load(),
		Upgrades: u.upgrades.Load(),
		Rejected: u.rejected.Load(),
		Failed:   u.failed.Load(),
		Dropped:  u.dropped.Load(),
	}
	u.mu.Lock()
	for _, ls := range u.list {
		st.MessagesIn += ls.pubIn.Load()
	}
	u.mu.Unlock()
	return st
}

// loopState is the Upgrader's state for one loop: its connections (for Broadcast and
// Shutdown), the storage fragmented messages are joined in, and the decompressor. Loop
// goroutine only, except pubIn.
type loopState struct {
	u     *Upgrader
	loop  *reactor.Loop
	base  time.Time // origin of nowNs
	gid   int64     // the loop's goroutine (see Conn.SendWait)
	conns []*Conn
	pool  bufpool.Pool

	infl     inflater
	inflated []byte // decompressed message, reused

	msgsIn uint64
	pubIn  atomic.Uint64
}

// maxKeptInflated bounds the decompression buffer a loop keeps between messages.
const maxKeptInflated = 256 << 10

// loopStateOf returns the state of l, creating it on l's goroutine (from OnOpen).
func (u *Upgrader) loopStateOf(l *reactor.Loop) *loopState {
	u.mu.Lock()
	defer u.mu.Unlock()
	if ls := u.loops[l]; ls != nil {
		return ls
	}
	ls := &loopState{u: u, loop: l, base: l.Now(), gid: goroutineID()}
	u.loops[l] = ls
	u.list = append(u.list, ls)
	return ls
}

// nowNs is the loop's cached clock in nanoseconds since base.
func (ls *loopState) nowNs() int64 { return int64(ls.loop.Now().Sub(ls.base)) }

func (ls *loopState) add(c *Conn) {
	c.slot = int32(len(ls.conns))
	ls.conns = append(ls.conns, c)
}

func (ls *loopState) remove(c *Conn) {
	i := int(c.slot)
	if i < 0 || i >= len(ls.conns) || ls.conns[i] != c {
		return
	}
	last := len(ls.conns) - 1
	ls.conns[i] = ls.conns[last]
	ls.conns[i].slot = int32(i)
	ls.conns[last] = nil
	ls.conns = ls.conns[:last]
	c.slot = -1
}

func (ls *loopState) grow(b []byte, extra int) []byte { return ls.pool.Grow(b, extra) }

func (ls *loopState) publish() { ls.pubIn.Store(ls.msgsIn) }
