package websocket

import (
	"encoding/binary"
	"math"
)

// flushEvery is the staged output at which the read loop hands what handlers sent so far to
// the reactor connection before parsing on, so that OutputFull sees it.
const flushEvery = 32 << 10

// readFrames handles every complete frame at the start of in and returns how many bytes it
// consumed; an incomplete frame is left for the next call (the reactor keeps it and appends
// what arrives next). Loop goroutine, inside a dispatch.
func (c *Conn) readFrames(in []byte) int {
	pos := 0
	for pos < len(in) {
		if c.st >= stClosing {
			return len(in)
		}
		if c.st == stOpen {
			if c.staged.Load() >= flushEvery {
				c.flushNow()
			}
			if c.rc.OutputFull() {
				// Backpressure: the peer is not reading what we answer. Keep the rest; the
				// reactor stops reading and hands it back once the output has drained.
				break
			}
		}
		h, n, herr := parseHeader(in[pos:])
		if c.st == stFailed {
			skip, done := c.scanForClose(in[pos:], &h, n, herr)
			if done {
				return len(in)
			}
			if skip == 0 {
				break
			}
			pos += skip
			continue
		}
		if herr != hdrOK {
			c.fail(CloseProtocolError, "payload length with the most significant bit set")
			return len(in)
		}
		if n == 0 {
			break // an incomplete header
		}
		if code, reason := c.checkHeader(&h); code != 0 {
			c.fail(code, reason)
			return len(in)
		}
		plen := int(h.length) // checkHeader bounded it by the frame limit
		payload := in[pos+n:]
		text := c.validates(&h)
		if len(payload) < plen {
			// Incomplete payload. A text frame is unmasked and validated as far as it has
			// arrived, so invalid UTF-8 fails the connection without waiting for the rest.
			if text && len(payload) > c.partial {
				if !c.unmask(&h, payload, text) {
					return len(in)
				}
			}
			break
		}
		payload = payload[:plen:plen]
		if !c.unmask(&h, payload, text) {
			return len(in)
		}
		c.partial = 0
		pos += n + plen
		c.onFrame(&h, payload)
	}
	return pos
}

// validates reports whether the frame's payload is part of an uncompressed text message,
// whose UTF-8 is validated as it is unmasked.
func (c *Conn) validates(h *header) bool {
	switch h.op {
	case opText:
		return h.rsv&bitRsv1 == 0
	case opContinuation:
		return c.msgOp == opText && !c.msgZ
	}
	return false
}

// unmask unmasks p[c.partial:] in place and, for text, advances the UTF-8 validator over it.
// It reports false after failing the connection for invalid UTF-8. The reactor keeps an
// incomplete frame's bytes exactly as left here, so the work is never redone.
func (c *Conn) unmask(h *header, p []byte, text bool) bool {
	fresh := p[c.partial:]
	mask(h.key, c.partial, fresh)
	c.partial = len(p)
	if text {
		c.u8 = validateUTF8(c.u8, fresh)
		if c.u8 == utf8Reject {
			c.fail(CloseInvalidPayload, "invalid UTF-8 in a text message")
			return false
		}
	}
	return true
}

// checkHeader applies RFC 6455 §5 to a frame header given the connection's state, returning
// the close code and reason that fail the connection, or 0.
func (c *Conn) checkHeader(h *header) (StatusCode, string) {
	if !h.masked {
		return CloseProtocolError, "client frames must be masked"
	}
	if h.rsv&(bitRsv2|bitRsv3) != 0 {
		return CloseProtocolError, "reserved bits set"
	}
	switch h.op {
	case opText, opBinary:
		if c.msgOp != 0 {
			return CloseProtocolError, "new message before the fragmented one ended"
		}
		if h.rsv&bitRsv1 != 0 && c.dfl == nil {
			return CloseProtocolError, "RSV1 set without a negotiated extension"
		}
	case opContinuation:
		if c.msgOp == 0 {
			return CloseProtocolError, "continuation frame without a message"
		}
		if h.rsv&bitRsv1 != 0 {
			return CloseProtocolError, "RSV1 set on a continuation frame"
		}
	case opClose, opPing, opPong:
		if !h.fin {
			return CloseProtocolError, "fragmented control frame"
		}
		if h.length > maxControlPayload {
			return CloseProtocolError, "control frame payload over 125 bytes"
		}
		if h.rsv != 0 {
			return CloseProtocolError, "RSV1 set on a control frame"
		}
		return 0, ""
	default:
		return CloseProtocolError, "reserved opcode"
	}
	cfg := &c.u.cfg
	if h.length > uint64(cfg.maxFrame) {
		return CloseMessageTooBig, "frame over the size limit"
	}
	limit := uint64(cfg.maxMessage)
	if c.msgZ || h.rsv&bitRsv1 != 0 {
		// Compressed bytes: deflate can expand incompressible data a little.
		limit += limit>>8 + 64
	}
	if uint64(len(c.msg))+h.length > limit {
		return CloseMessageTooBig, "message over the size limit"
	}
	return 0, ""
}

// onFrame handles one complete, unmasked frame. Loop goroutine, inside a dispatch.
func (c *Conn) onFrame(h *header, payload []byte) {
	switch h.op {
	case opPing:
		if c.st == stOpen {
			c.loopControl(opPong, payload)
		}
	case opPong:
		c.pingAt = 0
	case opClose:
		c.onCloseFrame(payload)
	case opText, opBinary:
		if h.fin {
			if h.rsv&bitRsv1 != 0 {
				c.deliverCompressed(MessageType(h.op), payload)
				return
			}
			if h.op == opText && c.u8 != utf8Accept {
				c.fail(CloseInvalidPayload, "text message ends inside a UTF-8 sequence")
				return
			}
			c.u8 = utf8Accept
			c.deliver(MessageType(h.op), payload)
			return
		}
		c.msgOp, c.msgZ = h.op, h.rsv&bitRsv1 != 0
		c.appendFragment(payload)
	case opContinuation:
		c.appendFragment(payload)
		if !h.fin {
			return
		}
		typ, z := MessageType(c.msgOp), c.msgZ
		if typ == Text && !z && c.u8 != utf8Accept {
			c.fail(CloseInvalidPayload, "text message ends inside a UTF-8 sequence")
			return
		}
		msg := c.msg
		c.msg = nil
		c.msgOp, c.msgZ, c.u8 = 0, false, utf8Accept
		if z {
			c.deliverCompressed(typ, msg)
		} else {
			c.deliver(typ, msg)
		}
		if msg != nil {
			c.ls.pool.Put(msg)
		}
	}
}

// appendFragment adds a data frame's payload to the message being joined.
func (c *Conn) appendFragment(p []byte) {
	if len(p) == 0 {
		return
	}
	if c.msg == nil {
		c.msg = c.ls.pool.Get(len(p))
	} else if cap(c.msg)-len(c.msg) < len(p) {
		c.msg = c.ls.pool.Grow(c.msg, len(p))
	}
	c.msg = append(c.msg, p...)
}

// deliver hands a complete message to the handler, unless the connection is closing.
func (c *Conn) deliver(typ MessageType, data []byte) {
	if c.st != stOpen || c.closeReq.Load() {
		return
	}
	c.ls.msgsIn++
	c.u.h.OnMessage(c, typ, data)
}

// deliverCompressed inflates a compressed message (bounded by the message limit), validates
// its text and delivers it.
func (c *Conn) deliverCompressed(typ MessageType, data []byte) {
	if c.st != stOpen || c.closeReq.Load() {
		return
	}
	ls := c.ls
	var dict []byte
	if c.dfl.mode.clientTakeover {
		dict = c.dfl.win.b
	}
	out, res := ls.infl.inflate(ls.inflated, data, dict, c.u.cfg.maxMessage, ls.grow)
	if cap(out) > maxKeptInflated {
		ls.inflated = nil
	} else {
		ls.inflated = out[:0]
	}
	switch res {
	case inflateTooBig:
		c.fail(CloseMessageTooBig, "message over the size limit")
		return
	case inflateCorrupt:
		c.fail(CloseInvalidPayload, "invalid compressed data")
		return
	}
	if typ == Text && !validUTF8(out) {
		c.fail(CloseInvalidPayload, "invalid UTF-8 in a text message")
		return
	}
	if c.dfl.mode.clientTakeover {
		c.dfl.win.add(out)
	}
	c.deliver(typ, out)
}

// onCloseFrame handles the peer's close frame (RFC 6455 §5.5.1, §7.4).
func (c *Conn) onCloseFrame(p []byte) {
	var code StatusCode
	var reason []byte
	switch {
	case len(p) == 1:
		c.fail(CloseProtocolError, "close frame with a 1-byte payload")
		return
	case len(p) >= 2:
		code = StatusCode(binary.BigEndian.Uint16(p))
		reason = p[2:]
		if !validWireCode(code) {
			c.fail(CloseProtocolError, "invalid close code")
			return
		}
		if !validUTF8(reason) {
			c.fail(CloseInvalidPayload, "invalid UTF-8 in the close reason")
			return
		}
	}
	if c.st == stOpen {
		// The peer closes: answer with the same code (none if it sent none).
		report := code
		if code == 0 {
			report = CloseNoStatus
		}
		c.closeErr = &CloseError{Code: report, Reason: string(reason), Remote: true}
		c.mu.Lock()
		if !c.sendShut {
			c.sendShut = true
			c.appendCloseLocked(code, "")
		}
		c.closeQ = nil
		c.mu.Unlock()
		c.closeReq.Store(true)
	}
	c.finish()
}

// scanForClose handles input after the server failed the connection: frames are skipped until
// the peer's close frame arrives, so that the TCP connection can close as soon as the peer
// has answered. Input that cannot be framed any more (the failure was a framing error, or the
// peer sends garbage) is discarded until the peer goes away or the close timeout passes. It
// returns the bytes to skip (0: wait for more), and done when everything is consumed.
func (c *Conn) scanForClose(in []byte, h *header, n int, herr headerError) (skip int, done bool) {
	if !c.scan || herr != hdrOK || n > 0 && (!h.masked || h.length > uint64(c.u.cfg.maxFrame)) {
		c.scan = false
		return 0, true
	}
	if n == 0 || uint64(len(in)-n) < h.length {
		if len(in) > c.u.cfg.maxFrame+maxHeaderLen {
			c.scan = false
			return 0, true
		}
		return 0, false
	}
	if h.op == opClose {
		c.finish()
		return 0, true
	}
	if h.length > math.MaxInt32 {
		c.scan = false
		return 0, true
	}
	return n + int(h.length), false
}
