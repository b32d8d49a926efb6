package proxy

import (
	codec "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/reactor"
)

// tunnel joins a client connection and an upstream connection after the upstream accepted a
// protocol upgrade (101): bytes flow both ways unchanged, each direction paused while the
// other side's output is full, and either side's close ends both. It is the reactor Handler of
// the client connection from the upgrade on.
type tunnel struct {
	e       *Exchange
	x       *codec.Exchange
	client  *reactor.Conn
	pending []byte // upstream bytes that arrived before the client connection was handed over
	ended   bool   // the upstream side is gone
	closed  bool   // the client side is gone
}

// finished reports whether both sides of the tunnel are gone.
func (t *tunnel) finished() bool { return t.ended && t.closed }

// startTunnel answers 101 to the client and hands its connection to a tunnel.
func (e *Exchange) startTunnel(x *codec.Exchange) {
	t := &tunnel{e: e, x: x}
	e.tunnel = t
	e.head = true
	if err := e.resp.Upgrade(t); err != nil {
		// The client cannot switch (it did not ask, or it is gone): the upstream's 101 is an
		// answer to no question, and nothing was sent to the client yet.
		e.tunnel = nil
		e.head = false
		e.abandon(errProtocol)
		e.resp.Abort()
	}
}

// OnOpen: the client connection is ours; what the upstream sent meanwhile goes first.
func (t *tunnel) OnOpen(c *reactor.Conn) {
	t.client = c
	if len(t.pending) > 0 {
		c.Write(t.pending)
		t.pending = nil
	}
	if t.ended {
		c.Close()
	}
}

// OnData forwards client bytes upstream.
func (t *tunnel) OnData(c *reactor.Conn, in []byte) int {
	if t.ended || t.x == nil {
		return len(in)
	}
	if _, err := t.x.Write(in); err != nil {
		c.Close()
		return len(in)
	}
	if t.x.OutputFull() {
		c.PauseRead() // resumed by upstreamWritable
	}
	return len(in)
}

// OnWritable: the client drained; the upstream may be read again.
func (t *tunnel) OnWritable(c *reactor.Conn) {
	if t.x != nil && !t.ended {
		t.x.Resume()
	}
}

// OnClose: the client is gone; so is the upstream side.
func (t *tunnel) OnClose(c *reactor.Conn, err error) {
	t.closed = true
	e := t.e
	if !t.ended {
		t.ended = true
		t.x = nil
		e.abandon(errClient) // cancels the upstream exchange
	}
	e.release()
}

// toClient forwards upstream bytes to the client.
func (t *tunnel) toClient(b []byte) {
	if t.client == nil {
		t.pending = append(t.pending, b...)
		return
	}
	if t.closed {
		return
	}
	t.client.Write(b)
	if t.client.OutputFull() && t.x != nil {
		t.x.Pause()
	}
}

// upstreamWritable: the upstream drained; the client may be read again.
func (t *tunnel) upstreamWritable() {
	if t.client != nil && !t.closed {
		t.client.ResumeRead()
	}
}

// upstreamEnded: the upstream closed; the client's connection closes after what it was sent.
func (t *tunnel) upstreamEnded() {
	t.ended = true
	t.x = nil
	t.e.done = true
	if t.client != nil && !t.closed {
		t.client.Close()
	}
}

// OnExchangeWritable relays the upstream's drain to the tunnel.
func (e *Exchange) OnExchangeWritable(x *codec.Exchange) {
	if e.tunnel != nil {
		e.tunnel.upstreamWritable()
		return
	}
	e.bodyWritable()
}
