// Package frame turns a reactor connection's byte stream into messages: it implements the
// consumed-count rule of reactor.Handler.OnData once, for line-delimited and length-prefixed
// protocols, so a protocol handler sees one complete frame at a time.
//
// The rule (see reactor.Handler): OnData gets the kept tail of earlier reads followed by the
// new bytes, handles every complete message at the front, and returns how many bytes those
// took; the partial message after them is kept by the reactor and handed back with the next
// bytes appended. Handler does exactly that with a Framer, and adds what every protocol needs
// around it:
//
//   - a bound on the message size, checked as soon as the bytes seen prove it is exceeded (a
//     line longer than Lines.Max without its newline, a length prefix above
//     LengthPrefixed.Max), so a peer cannot make the reactor keep an unbounded tail;
//   - backpressure: it stops handing out frames when the connection's output reaches the
//     high-water mark (Conn.OutputFull) and leaves the rest kept, so a peer that pipelines
//     without reading holds at most one read of input and the watermark of output;
//   - a defined end for bad input: a framing error (ErrTooLong) or an error returned by the
//     frame function stops reading, calls Funcs.Error so the protocol can write a last reply,
//     and closes the connection once its pending output is flushed.
//
// Frames passed to Funcs.Frame alias the reactor's input buffer: valid only during the call.
// Everything runs on the connection's loop goroutine; a Handler holds no per-connection state,
// so one Handler serves every connection of every loop (Conn.SetContext stays free for the
// protocol's own state).
package frame

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/reactord/reactord/reactor"
)

// ErrTooLong is the framing error (wrapped with the limit) for a message above the Framer's
// maximum: a line without a newline within Lines.Max bytes, or a length prefix above
// LengthPrefixed.Max.
var ErrTooLong = errors.New("frame: message too long")

// ErrClose may be returned by a frame function to end the connection without an error (a
// QUIT command): Handler flushes the pending output and closes, and does not call
// Funcs.Error for it.
var ErrClose = errors.New("frame: close the connection")

// ErrStop may be returned by a frame function to stop handing out frames from the input at
// hand: the frame counts as consumed, the rest stays kept by the reactor and is handed back on
// the next OnData — after Conn.ResumeRead if the function paused reading (one request at a time
// while a worker answers it with AsyncWrite, say). The connection stays open.
var ErrStop = errors.New("frame: stop reading frames for now")

// ErrInvalidArgument is reactor.ErrInvalidArgument: NewHandler's error for a nil Framer or
// frame function, or a Framer whose Validate fails.
var ErrInvalidArgument = reactor.ErrInvalidArgument

// Framer finds the first frame in a connection's input.
//
// Next examines in (which starts at a frame boundary) and returns the frame's payload (a
// sub-slice of in), and n, the bytes the frame takes on the wire (delimiter or prefix
// included); n == 0 means the frame is not complete yet. A non-nil err means in can never
// start a valid frame (the connection is then closed). Next must not keep in, and must return
// 0 < n <= len(in) for a complete frame.
type Framer interface {
	Next(in []byte) (payload []byte, n int, err error)
}

// Lines frames newline-delimited text: each line ends in "\n" or "\r\n", and the payload is
// the line without its terminator. Max bounds the payload's length (required, > 0): a line
// that has not ended within Max bytes is ErrTooLong, detected as soon as Max+2 bytes without a
// newline have arrived (Max+1 when the last of them is not '\r'), so at most Max+1 bytes of a
// partial line are ever kept.
type Lines struct {
	Max int
}

// Validate reports a Max that is not positive.
func (l Lines) Validate() error {
	if l.Max <= 0 {
		return fmt.Errorf("%w: frame.Lines{Max: %d}: want Max > 0", ErrInvalidArgument, l.Max)
	}
	return nil
}

// Next implements Framer.
func (l Lines) Next(in []byte) ([]byte, int, error) {
	window := in
	if len(window) > l.Max+2 {
		window = window[:l.Max+2]
	}
	for i, b := range window {
		if b != '\n' {
			continue
		}
		line := in[:i]
		if i > 0 && line[i-1] == '\r' {
			line = line[:i-1]
		}
		if len(line) > l.Max {
			return nil, 0, l.tooLong()
		}
		return line, i + 1, nil
	}
	// No newline yet. Past Max+1 bytes the line cannot end in time; at exactly Max+1, only a
	// '\r' (of a "\r\n" still on its way) can.
	if len(in) > l.Max+1 || len(in) == l.Max+1 && in[l.Max] != '\r' {
		return nil, 0, l.tooLong()
	}
	return nil, 0, nil
}

func (l Lines) tooLong() error {
	return fmt.Errorf("%w: line longer than %d bytes", ErrTooLong, l.Max)
}

// LengthPrefixed frames binary messages preceded by their payload length: an unsigned integer
// of Size bytes (1, 2, 4 or 8), big-endian unless LittleEndian. The payload passed on excludes
// the prefix. Max bounds the payload length (required, > 0); a prefix above it is ErrTooLong
// as soon as the prefix has arrived, before any of the payload is kept.
type LengthPrefixed struct {
	Size         int
	Max          int
	LittleEndian bool
}

// Validate reports a Size other than 1, 2, 4 or 8, or a Max that is not positive.
func (f LengthPrefixed) Validate() error {
	switch {
	case f.Size != 1 && f.Size != 2 && f.Size != 4 && f.Size != 8:
		return fmt.Errorf("%w: frame.LengthPrefixed{Size: %d}: want 1, 2, 4 or 8", ErrInvalidArgument, f.Size)
	case f.Max <= 0:
		return fmt.Errorf("%w: frame.LengthPrefixed{Max: %d}: want Max > 0", ErrInvalidArgument, f.Max)
	}
	return nil
}

// Next implements Framer.
func (f LengthPrefixed) Next(in []byte) ([]byte, int, error) {
	if len(in) < f.Size {
		return nil, 0, nil
	}
	var order binary.ByteOrder = binary.BigEndian
	if f.LittleEndian {
		order = binary.LittleEndian
	}
	var n uint64
	switch f.Size {
	case 1:
		n = uint64(in[0])
	case 2:
		n = uint64(order.Uint16(in))
	case 4:
		n = uint64(order.Uint32(in))
	case 8:
		n = order.Uint64(in)
	default:
		return nil, 0, f.Validate()
	}
	if n > uint64(f.Max) {
		return nil, 0, fmt.Errorf("%w: length prefix %d above the maximum %d", ErrTooLong, n, f.Max)
	}
	total := f.Size + int(n)
	if len(in) < total {
		return nil, 0, nil
	}
	return in[f.Size:total], total, nil
}

// Funcs are a framed protocol's callbacks, all run on the connection's loop goroutine. Frame is
// required; the others may be nil.
type Funcs struct {
	// Open is called when a connection opens (a greeting, SetContext, timeouts).
	Open func(c *reactor.Conn)
	// Frame is called once per complete frame, in order. payload aliases the input buffer:
	// valid only during the call (Conn.Write copies). ErrStop pauses the hand-out (see
	// ErrStop). Any other non-nil error stops reading for good: no further frame is handed
	// out, pending output is flushed and the connection closed; ErrClose does that quietly,
	// any other error is passed to Error first.
	Frame func(c *reactor.Conn, payload []byte) error
	// Error is called before the close for a framing error (ErrTooLong, wrapped) or an error
	// returned by Frame other than ErrClose: the place for a last error reply, or a log line.
	Error func(c *reactor.Conn, err error)
	// Close is called once when the connection has closed, with the reactor's reason (nil
	// after the close that Handler itself requested).
	Close func(c *reactor.Conn, err error)
}

// Handler is a reactor.Handler that hands out frames; build it with NewHandler. It holds no
// per-connection state and is safe for every loop of a server at once.
type Handler struct {
	f  Framer
	fn Funcs
}

// NewHandler returns a reactor.Handler that splits each connection's input with f and calls
// fn.Frame for every frame. Errors (wrapping ErrInvalidArgument): a nil f or fn.Frame, or an f
// whose Validate method (if it has one, as Lines and LengthPrefixed do) fails.
func NewHandler(f Framer, fn Funcs) (*Handler, error) {
	if f == nil {
		return nil, fmt.Errorf("%w: nil Framer", ErrInvalidArgument)
	}
	if fn.Frame == nil {
		return nil, fmt.Errorf("%w: nil Funcs.Frame", ErrInvalidArgument)
	}
	if v, ok := f.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	return &Handler{f: f, fn: fn}, nil
}

// OnOpen implements reactor.Handler.
func (h *Handler) OnOpen(c *reactor.Conn) {
	if h.fn.Open != nil {
		h.fn.Open(c)
	}
}

// OnClose implements reactor.Handler.
func (h *Handler) OnClose(c *reactor.Conn, err error) {
	if h.fn.Close != nil {
		h.fn.Close(c, err)
	}
}

// OnData implements reactor.Handler: every complete frame at the front of in goes to
// Funcs.Frame until the output is full; the partial frame after them is left to the reactor.
func (h *Handler) OnData(c *reactor.Conn, in []byte) int {
	consumed := 0
	for consumed < len(in) && !c.OutputFull() {
		payload, n, err := h.f.Next(in[consumed:])
		if err == nil && (n < 0 || n > len(in)-consumed) {
			err = fmt.Errorf("frame: Framer.Next returned n=%d for %d bytes", n, len(in)-consumed)
		}
		if err == nil && n == 0 {
			break // the frame is still on its way
		}
		if err == nil {
			consumed += n
			err = h.fn.Frame(c, payload)
			if err == ErrStop {
				return consumed
			}
		}
		if err != nil {
			if !errors.Is(err, ErrClose) && h.fn.Error != nil {
				h.fn.Error(c, err)
			}
			c.Close()
			return len(in) // nothing after this is read
		}
	}
	return consumed
}
