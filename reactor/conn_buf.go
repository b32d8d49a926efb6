package reactor

// connIO is a connection's buffered input and output: the unconsumed input tail, the pending
// output and the files queued behind it. A connection borrows one from its loop when it first
// has bytes to keep or to send and gives it back as soon as it has none, so an idle
// connection — most of them, on a server with many keep-alive clients — holds a nil pointer
// instead of three slice headers, an offset and a queue pointer (56 bytes), and a busy one
// reuses a connIO another connection gave back instead of allocating.
type connIO struct {
	in   []byte    // unconsumed input tail, nil when none
	out  []byte    // pending output is out[head:]; nil when none
	head int       // bytes of out already written
	q    *outQueue // output queued behind out (SendFile); nil normally
}

// maxFreeIO bounds the connIOs a loop keeps for reuse: enough for the connections with I/O in
// flight in one iteration of a busy loop; beyond it a released connIO goes to the GC.
const maxFreeIO = 4096

// bufs returns the connection's I/O state, borrowing one from the loop if it has none.
func (c *Conn) bufs() *connIO {
	if c.io == nil {
		l := c.loop
		if n := len(l.ioFree); n > 0 {
			c.io = l.ioFree[n-1]
			l.ioFree[n-1] = nil
			l.ioFree = l.ioFree[:n-1]
		} else {
			c.io = new(connIO)
		}
	}
	return c.io
}

// settleIO gives the connection's I/O state back to the loop once it holds nothing.
func (c *Conn) settleIO() {
	b := c.io
	if b == nil || b.in != nil || b.out != nil || b.q != nil {
		return
	}
	c.io = nil
	b.head = 0
	if l := c.loop; len(l.ioFree) < maxFreeIO {
		l.ioFree = append(l.ioFree, b)
	}
}

// kept returns the unconsumed input tail, nil when there is none.
func (c *Conn) kept() []byte {
	if c.io == nil {
		return nil
	}
	return c.io.in
}

// hasKept reports whether input is waiting for OnData without a read: a kept tail, or, on a
// TLS connection, decrypted input crypto/tls still holds.
func (c *Conn) hasKept() bool {
	return c.io != nil && len(c.io.in) > 0 || c.flags&fTLSMore != 0
}

// dropKept returns the kept input's storage to the pool.
func (c *Conn) dropKept() {
	if b := c.io; b != nil && b.in != nil {
		c.loop.pool.Put(b.in)
		b.in = nil
		c.settleIO()
	}
}
