package reactor

import "net"

// Handler receives a connection's life events. Every method runs on the connection's loop
// goroutine, so a handler needs no locks for per-connection state, and must not block: a
// blocked callback stalls every connection of that loop.
type Handler interface {
	// OnOpen is called once, when the connection has been accepted and registered, before
	// any OnData. It may Write (a greeting), set timeouts, set a context, or Close.
	OnOpen(c *Conn)

	// OnData is called with the connection's input: the unconsumed tail kept from earlier
	// calls followed by the bytes just read. in is only valid during the call (it usually
	// points into the loop's shared read buffer); copy what must outlive it.
	//
	// It returns how many leading bytes it consumed. The rest, in[consumed:], is kept and
	// handed back at the start of in on the next call, with new bytes appended: a codec
	// returns the length of the complete messages it handled and leaves a partial one for
	// later. A value below zero or above len(in) closes the connection with ErrBadConsumed.
	//
	// A handler producing output should stop consuming when c.OutputFull() reports true and
	// return what it consumed so far: the loop then stops reading the connection until the
	// peer has drained the output, and calls OnData again with the kept tail (without waiting
	// for new bytes). That is what bounds memory against a client that pipelines requests but
	// never reads the responses.
	OnData(c *Conn, in []byte) (consumed int)

	// OnClose is called exactly once, after the connection has left the poller and before its
	// descriptor is closed. err is nil after a local Close or CloseNow, io.EOF when the peer
	// closed cleanly, ErrIdleTimeout or ErrReadTimeout for timeouts, ErrServerClosed when the
	// server was closed, and otherwise the cause (a wrapped ECONNRESET, EPIPE, ...).
	OnClose(c *Conn, err error)
}

// WritableHandler is optionally implemented by a Handler. OnWritable is called on the loop
// goroutine when a connection's pending output, having been above the low-water mark (see
// WithWatermarks), drains to or below it: a codec streaming a large body writes until
// OutputFull and continues from OnWritable.
type WritableHandler interface {
	OnWritable(c *Conn)
}

// ReadEOFHandler is optionally implemented by a Handler that answers requests asynchronously
// (on other goroutines) and so may still owe a response when the peer shuts its writing side.
// OnReadEOF is called on the loop goroutine once a read has returned end-of-file and the input
// kept before it has been handed back to OnData (see Half-close in the package doc). Returning
// true keeps the connection open for writing: reading stops for good, and the handler must call
// Close (from any goroutine) once it has written what it owes; pending output is flushed first
// as usual, and the connection counts as busy until then. Returning false (or not implementing
// the interface) closes the connection once it is not busy and pending output is flushed, with
// OnClose(c, io.EOF).
type ReadEOFHandler interface {
	OnReadEOF(c *Conn) (keepOpen bool)
}

// DeadlineHandler is optionally implemented by a Handler that sets deadlines with
// Conn.SetDeadline (a codec timing out a request, say). OnDeadline is called on the loop
// goroutine once the connection's deadline is reached; the deadline is then cleared, and the
// handler may set the next one, write, or close. It is not called after OnClose.
type DeadlineHandler interface {
	OnDeadline(c *Conn)
}

// HandlerFuncs adapts plain functions to Handler. Nil fields are allowed: a nil Data consumes
// and discards all input, nil Open and Close do nothing.
type HandlerFuncs struct {
	Open  func(c *Conn)
	Data  func(c *Conn, in []byte) int
	Close func(c *Conn, err error)
}

// OnOpen calls h.Open if it is set.
func (h HandlerFuncs) OnOpen(c *Conn) {
	if h.Open != nil {
		h.Open(c)
	}
}

// OnData calls h.Data if it is set, and otherwise consumes everything.
func (h HandlerFuncs) OnData(c *Conn, in []byte) int {
	if h.Data != nil {
		return h.Data(c, in)
	}
	return len(in)
}

// OnClose calls h.Close if it is set.
func (h HandlerFuncs) OnClose(c *Conn, err error) {
	if h.Close != nil {
		h.Close(c, err)
	}
}

// PacketHandler receives datagrams of a ListenPacket socket on the socket's loop goroutine.
// data is only valid during the call (it points into the loop's read buffer); from is the
// sender, a *net.UDPAddr, and may be kept.
type PacketHandler interface {
	OnDatagram(pc *PacketConn, data []byte, from net.Addr)
}

// PacketHandlerFunc adapts a function to PacketHandler.
type PacketHandlerFunc func(pc *PacketConn, data []byte, from net.Addr)

// OnDatagram calls f.
func (f PacketHandlerFunc) OnDatagram(pc *PacketConn, data []byte, from net.Addr) {
	f(pc, data, from)
}
