package reactor

import "iter"

// Handshakes on the loop, as coroutines.
//
// crypto/tls's handshake is straight-line code that blocks in its transport's Read, with its
// state on the stack of the goroutine that runs it: it cannot return "would block" and be
// called again (an error during the handshake is final). It can, however, run on a goroutine
// of its own that the loop switches to and from without the scheduler: iter.Pull's runtime
// coroutines. The loop resumes the handshake (next) when input has arrived; the transport's
// Read, finding no input, switches back to the loop (yield) with the handshake's state intact
// on the coroutine's stack. The runtime runs a coroutine on the thread of the goroutine that
// switches to it, passing on LockOSThread, so the handshake runs on the loop's own thread:
// no thread hand-off, no scheduler wake-up, and its records go straight to the connection's
// output. What it costs: the handshake's CPU time (the key exchange and the signature, a
// fraction of a millisecond to a few milliseconds for RSA) runs inside the loop's iteration,
// and so do the tls.Config callbacks (GetCertificate, GetConfigForClient, VerifyPeerCertificate):
// they must not block. A server whose callbacks block (fetching certificates over the network)
// uses the pool instead (WithTLSHandshakeOnLoop(false)).
//
// Each loop runs at most hsMax handshakes at once (its share of WithTLSHandshakeLimit); the
// others wait in the loop's FIFO queue with no goroutine.

// startHandshakeOnLoop starts ts's handshake, or queues it behind the loop's limit.
func (l *Loop) startHandshakeOnLoop(ts *tlsSession) {
	if l.hsLive >= l.hsMax {
		l.hsQueue = append(l.hsQueue, ts)
		l.srv.tlsPool.queued.Add(1)
		return
	}
	l.runHandshake(ts)
}

// runHandshake creates ts's coroutine and runs it until it waits for input or ends.
func (l *Loop) runHandshake(ts *tlsSession) {
	l.hsLive++
	l.srv.tlsPool.active.Add(1)
	hs := ts.hs
	hs.next, hs.stop = iter.Pull(func(yield func(struct{}) bool) {
		hs.yield = yield
		hs.err = ts.tc.Handshake()
		hs.yield = nil
	})
	ts.c.stepHandshake()
}

// stepHandshake resumes the handshake with the input received so far. When it ends, the
// connection is done with its coroutine and handshakeDone runs.
func (c *Conn) stepHandshake() {
	hs := c.tls.hs
	if _, more := hs.next(); more {
		if c.flags&fTLSFull != 0 {
			c.resumeHandshakeInput() // the handshake took the input that had filled up
		}
		return
	}
	c.endCoroutine()
	c.handshakeDone(hs.err)
}

// endCoroutine releases a finished or abandoned handshake coroutine's slot and starts the next
// queued handshake of the loop.
func (c *Conn) endCoroutine() {
	l := c.loop
	hs := c.tls.hs
	hs.next, hs.stop = nil, nil
	l.hsLive--
	l.srv.tlsPool.active.Add(-1)
	if l.stopping.Load() || l.draining {
		return // the queued connections are being closed
	}
	for l.hsLive < l.hsMax && len(l.hsQueue) > 0 {
		next := l.hsQueue[0]
		l.hsQueue[0] = nil
		l.hsQueue = l.hsQueue[1:]
		if len(l.hsQueue) == 0 {
			l.hsQueue = nil
		}
		l.srv.tlsPool.queued.Add(-1)
		if next.c.flags&fClosed != 0 {
			continue
		}
		l.runHandshake(next)
	}
}

// abandonCoroutine ends the handshake of a connection that is closing: a running coroutine is
// resumed with yield reporting false, which fails its read and so the handshake; a queued one
// leaves the queue.
func (c *Conn) abandonCoroutine() {
	ts := c.tls
	if stop := ts.hs.stop; stop != nil {
		stop()
		c.endCoroutine()
		return
	}
	l := c.loop
	for i, q := range l.hsQueue {
		if q == ts {
			l.hsQueue = append(l.hsQueue[:i], l.hsQueue[i+1:]...)
			l.srv.tlsPool.queued.Add(-1)
			return
		}
	}
}

// readCoro is the transport's read inside a handshake coroutine: take the input received, or
// switch back to the loop until more arrives. It fails once the connection is closing.
func (ts *tlsSession) readCoro(p []byte) (int, error) {
	hs := ts.hs
	in := &hs.in
	for len(in.buf) == 0 {
		if in.closed || hs.yield == nil || !hs.yield(struct{}{}) {
			return 0, errHandshakeAbandoned
		}
	}
	n := copy(p, in.buf)
	in.buf = in.buf[n:]
	return n, nil
}
