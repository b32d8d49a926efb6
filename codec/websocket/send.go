package websocket

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"unsafe"
)

// The send path. A frame sent from any goroutine is encoded into the connection's stage, a
// buffer under the connection's mutex. The loop moves the stage into the reactor connection's
// output: right after the callback it is dispatching returns (a Send from OnMessage costs no
// task and no wake-up), or in a task the sender posts when the loop is not dispatching this
// connection. Frames therefore leave in the order their Send calls took the mutex, whole, and
// the reactor writes them with the rest of the iteration's output in one system call.

// stageBuf is a stage's storage, borrowed from stagePool while frames are pending.
type stageBuf struct{ b []byte }

var stagePool = sync.Pool{New: func() any { return &stageBuf{b: make([]byte, 0, 4096)} }}

// maxPooledStage bounds the stage storage returned to the pool; larger stages (a big
// message) are left to the garbage collector.
const maxPooledStage = 256 << 10

func putStage(s *stageBuf) {
	if cap(s.b) > maxPooledStage {
		return
	}
	s.b = s.b[:0]
	stagePool.Put(s)
}

// errFull is send's answer when the send limit is reached and the caller waits instead of
// applying the policy.
var errFull = errors.New("websocket: send limit reached")

// Send queues a data message: one frame, compressed when permessage-deflate was negotiated and
// the message is at least Compression.MinSize long. data is copied before Send returns. Text
// must be valid UTF-8. Safe from any goroutine and never blocks; the frame leaves with the
// loop's next write.
//
// When the connection's pending output has reached the send limit (WithSendLimit) the
// slow-consumer policy applies and ErrOutputFull is returned: the message is dropped
// (SlowConsumerDrop) or the connection is closed (SlowConsumerClose). Other errors:
// ErrInvalidArgument for a type other than Text or Binary, ErrInvalidUTF8, ErrClosed once
// Close was called or the connection closed.
func (c *Conn) Send(typ MessageType, data []byte) error {
	if err := checkMessage(typ, data); err != nil {
		return err
	}
	return c.send(byte(typ), data, false)
}

// SendText is Send(Text, []byte(s)) without converting s. Any goroutine.
func (c *Conn) SendText(s string) error {
	return c.Send(Text, unsafe.Slice(unsafe.StringData(s), len(s)))
}

// SendWait is Send for producers on other goroutines that would rather wait than lose
// messages: when the send limit is reached it waits until the peer has read enough, or until
// ctx is done (ctx.Err() is returned). It must not be called on the connection's loop
// goroutine, which is the one that drains the output: it returns ErrCalledOnLoop there rather
// than deadlock. Errors otherwise as Send.
func (c *Conn) SendWait(ctx context.Context, typ MessageType, data []byte) error {
	if ctx == nil {
		return fmt.Errorf("%w: nil context", ErrInvalidArgument)
	}
	if err := checkMessage(typ, data); err != nil {
		return err
	}
	for {
		err := c.send(byte(typ), data, true)
		if err != errFull {
			return err
		}
		c.mu.Lock()
		if c.rc != nil && c.ls != nil && c.ls.gid == goroutineID() {
			c.mu.Unlock()
			return ErrCalledOnLoop
		}
		// The room may have come between send's answer and this lock (the loop cleared
		// outFull and found no waiter to wake): check again under the lock the loop wakes
		// waiters under, or the wake-up is lost.
		if c.sendShut || !c.overLimitLocked(headerLen(len(data))+len(data)) {
			c.mu.Unlock()
			continue
		}
		if c.waiters == nil {
			c.waiters = make(chan struct{})
		}
		ch := c.waiters
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func checkMessage(typ MessageType, data []byte) error {
	switch typ {
	case Text:
		if !validUTF8(data) {
			return ErrInvalidUTF8
		}
	case Binary:
	default:
		return fmt.Errorf("%w: message type %v", ErrInvalidArgument, typ)
	}
	return nil
}

// send encodes one data frame into the stage. wait makes it return errFull at the limit
// instead of applying the policy.
func (c *Conn) send(op byte, data []byte, wait bool) error {
	first := bitFin | op
	body := data
	var pooled *deflater
	var pool *deflaterPool
	compress := c.dfl != nil && len(data) >= c.u.cfg.compress.MinSize
	if compress && !c.dfl.mode.serverTakeover {
		// Stateless compression needs no order: it runs before taking the mutex.
		pool = &c.u.defl
		if c.dfl.mode.huffman {
			pool = &c.u.huff
		}
		pooled = pool.get()
		body = pooled.compress(data, true)
		first |= bitRsv1
	}
	c.mu.Lock()
	if c.sendShut {
		c.mu.Unlock()
		if pooled != nil {
			pool.put(pooled)
		}
		return ErrClosed
	}
	n := headerLen(len(body)) + len(body)
	over := c.overLimitLocked(n)
	if compress && pooled == nil && !over {
		// Context takeover: the connection's own compressor, in stage order, and only for a
		// message that will be sent (it enters the compressor's history). The limit was
		// checked against the uncompressed size.
		if c.dfl.own == nil {
			c.dfl.own = newDeflater(c.u.cfg.compress.Level)
		}
		body = c.dfl.own.compress(data, false)
		first |= bitRsv1
	}
	if over {
		if pooled != nil {
			pool.put(pooled)
		}
		if wait {
			c.mu.Unlock()
			return errFull
		}
		return c.slowConsumerLocked() // unlocks
	}
	c.stageFrameLocked(first, body)
	if pooled != nil {
		pool.put(pooled)
	}
	post := c.needPostLocked()
	c.mu.Unlock()
	if post != nil {
		return c.post(post)
	}
	return nil
}

// overLimitLocked reports whether the connection cannot take n more bytes: its reactor output
// is at the high-water mark, or the stage would grow past the send limit. A message alone may
// exceed the limit: otherwise it could never be sent. Pending output is thus bounded by the
// high-water mark plus the send limit plus one message.
func (c *Conn) overLimitLocked(n int) bool {
	if c.outFull {
		return true
	}
	staged := int(c.staged.Load())
	return staged > 0 && staged+n > c.u.cfg.sendLimit
}

// slowConsumerLocked applies the policy to a message over the limit, unlocks mu and returns
// ErrOutputFull.
func (c *Conn) slowConsumerLocked() error {
	var post func()
	if c.u.cfg.policy == SlowConsumerClose {
		c.sendShut = true
		c.appendCloseLocked(ClosePolicyViolation, "slow consumer")
		c.closeQ = &CloseError{Code: ClosePolicyViolation, Reason: "slow consumer"}
		c.closeReq.Store(true)
		post = c.needPostLocked()
	} else {
		c.u.dropped.Add(1)
	}
	c.mu.Unlock()
	if post != nil {
		c.post(post)
	}
	return ErrOutputFull
}

// stageFrameLocked appends a whole frame to the stage.
func (c *Conn) stageFrameLocked(first byte, payload []byte) {
	if c.stage == nil {
		c.stage = stagePool.Get().(*stageBuf)
	}
	c.stage.b = appendFrame(c.stage.b, first, payload)
	c.staged.Store(int64(len(c.stage.b)))
}

// appendCloseLocked stages a close frame with code (none when 0) and reason.
func (c *Conn) appendCloseLocked(code StatusCode, reason string) {
	var buf [maxControlPayload]byte
	p := buf[:0]
	if code != 0 {
		p = binary.BigEndian.AppendUint16(p, uint16(code))
		p = append(p, reason...)
	}
	c.stageFrameLocked(bitFin|opClose, p)
}

// needPostLocked says whether the caller must post the flush task (and returns it): not
// while the loop is dispatching this connection (it flushes when the callback returns), nor
// when a task is queued already, nor before the connection has opened (open flushes).
func (c *Conn) needPostLocked() func() {
	if c.inLoop || c.posted || c.rc == nil {
		return nil
	}
	c.posted = true
	if c.flushFn == nil {
		c.flushFn = c.flushTask
	}
	return c.flushFn
}

func (c *Conn) post(f func()) error {
	if err := c.Loop().Post(f); err != nil {
		return ErrClosed
	}
	return nil
}

// Ping sends a ping with payload (at most 125 bytes, copied); the peer's pong arrives
// unannounced (a keepalive is WithKeepalive). Any goroutine. Errors: ErrInvalidArgument for a
// payload over 125 bytes, ErrClosed.
func (c *Conn) Ping(payload []byte) error {
	if len(payload) > maxControlPayload {
		return fmt.Errorf("%w: ping payload of %d bytes (at most 125)", ErrInvalidArgument, len(payload))
	}
	c.mu.Lock()
	if c.sendShut {
		c.mu.Unlock()
		return ErrClosed
	}
	c.stageFrameLocked(bitFin|opPing, payload)
	post := c.needPostLocked()
	c.mu.Unlock()
	if post != nil {
		return c.post(post)
	}
	return nil
}

// Close starts the close handshake: a close frame with code and reason is queued after what
// was sent before, nothing more may be sent, messages that arrive meanwhile are discarded, and
// the connection closes once the peer answers with its close frame (OnClose then gets a
// *CloseError with this code) or after the close timeout (ErrCloseTimeout). Safe from any
// goroutine; calls after the first return nil.
//
// code must be one a close frame may carry: 1000-1003, 1007-1014, or 3000-4999. reason is at
// most 123 bytes of UTF-8. Errors: ErrInvalidArgument, ErrInvalidUTF8.
func (c *Conn) Close(code StatusCode, reason string) error {
	if !validWireCode(code) {
		return fmt.Errorf("%w: close code %d", ErrInvalidArgument, code)
	}
	if len(reason) > maxControlPayload-2 {
		return fmt.Errorf("%w: close reason of %d bytes (at most 123)", ErrInvalidArgument, len(reason))
	}
	if !validUTF8(unsafe.Slice(unsafe.StringData(reason), len(reason))) {
		return ErrInvalidUTF8
	}
	c.mu.Lock()
	if c.sendShut {
		c.mu.Unlock()
		return nil
	}
	c.sendShut = true
	c.appendCloseLocked(code, reason)
	c.closeQ = &CloseError{Code: code, Reason: reason}
	c.closeReq.Store(true)
	post := c.needPostLocked()
	c.mu.Unlock()
	if post != nil {
		c.post(post)
	}
	return nil
}

// loopControl stages a control frame from the loop (a pong, a keepalive ping), past the send
// limit, and flushes it unless a dispatch will.
func (c *Conn) loopControl(op byte, payload []byte) {
	c.mu.Lock()
	if !c.sendShut {
		c.stageFrameLocked(bitFin|op, payload)
		if !c.inLoop {
			c.flushLocked()
		}
	}
	c.mu.Unlock()
}

// prepared is one broadcast message, encoded once for all its recipients: plain, and
// compressed (at most once per compression kind) for connections that use permessage-deflate
// without server context takeover, for whom a message compressed on its own is valid.
type prepared struct {
	u       *Upgrader
	op      byte
	payload []byte // a copy of the message
	plain   []byte // the uncompressed frame

	deflOnce, huffOnce sync.Once
	defl, huff         []byte // the compressed frames, made on first need
}

func newPrepared(u *Upgrader, typ MessageType, data []byte) (*prepared, error) {
	if err := checkMessage(typ, data); err != nil {
		return nil, err
	}
	p := &prepared{u: u, op: byte(typ)}
	p.plain = appendFrame(make([]byte, 0, maxHeaderLen+len(data)), bitFin|byte(typ), data)
	p.payload = p.plain[len(p.plain)-len(data):]
	return p, nil
}

func (p *prepared) compressed(huffman bool) []byte {
	once, dst, pool := &p.deflOnce, &p.defl, &p.u.defl
	if huffman {
		once, dst, pool = &p.huffOnce, &p.huff, &p.u.huff
	}
	once.Do(func() {
		d := pool.get()
		body := d.compress(p.payload, true)
		*dst = appendFrame(make([]byte, 0, maxHeaderLen+len(body)), bitFin|bitRsv1|p.op, body)
		pool.put(d)
	})
	return *dst
}

// sendPrepared writes a broadcast frame to the connection. Loop goroutine, in the broadcast's
// task.
func (c *Conn) sendPrepared(p *prepared) {
	if c.st != stOpen {
		return
	}
	frame := p.plain
	if d := c.dfl; d != nil && len(p.payload) >= c.u.cfg.compress.MinSize {
		if d.mode.serverTakeover {
			// The connection's compressor has a history the message must enter.
			c.send(p.op, p.payload, false)
			c.flushNow()
			return
		}
		frame = p.compressed(d.mode.huffman)
	}
	c.mu.Lock()
	if c.sendShut {
		c.mu.Unlock()
		return
	}
	if c.overLimitLocked(len(frame)) {
		c.slowConsumerLocked()
		return
	}
	if c.stage != nil {
		c.rc.Write(c.stage.b)
		putStage(c.stage)
		c.stage = nil
		c.staged.Store(0)
	}
	c.rc.Write(frame)
	c.outFull = c.rc.OutputFull()
	c.mu.Unlock()
}
