package proxy

import (
	"errors"
	"strconv"

	codec "github.com/reactord/reactord/codec/http"
)

// Request bodies streamed to the upstream as they arrive. A request whose body the codec does
// not buffer (chunked, or longer than 64 KiB: r.Streamed) is handed to the proxy as soon as
// its head is complete, through codec/http's BodyReceiver: the Exchange is the receiver. Its
// head goes upstream at once (Client.SendStream), re-framed with the client's Content-Length
// or, for a chunked body, chunked; each decoded piece of the body is then written to the
// upstream connection as the loop reads it, in the proxy's own chunk framing if chunked. When
// the upstream's output is above its high-water mark the client's body is paused
// (Deferred.PauseBody: its connection stops reading, so TCP paces the client) until the
// upstream drains it (OnExchangeWritable). A large upload thus costs the proxy a socket's
// worth of buffers, never the body.
//
// Faults: an upstream that fails before answering gets the client a 502 (504 on a timeout)
// and the client's connection closes, since the rest of its body has nowhere to go; a client
// that goes away, or sends a malformed body, aborts the upstream request — its connection is
// closed, never pooled, so the upstream never takes half a body for a whole one.

// bodyState is where a streamed request body stands.
type bodyState uint8

const (
	bodyNone  bodyState = iota // no streamed body: it was buffered with the head, or there is none
	bodyOpen                   // arriving from the client
	bodyEnded                  // complete, or broken off (EndBody ran)
)

// StreamBody is the proxy's answer to codec/http's BodyStreamer for a request routed to g:
// the Exchange that will forward it, which the codec hands the request (Handle) as soon as its
// head is complete, then its body (Write, EndBody) as it arrives. closeAfter makes the
// response the last on the client's connection (the server is retiring). Loop goroutine.
func (p *Proxy) StreamBody(g *Group, closeAfter bool) codec.BodyReceiver {
	e := exchanges.Get().(*Exchange)
	e.pooled, e.p, e.g = true, p, g
	e.body, e.closeAfter = bodyOpen, closeAfter
	return e
}

// Handle starts forwarding a request whose body streams (see StreamBody): the response is
// deferred, and the head goes upstream now.
func (e *Exchange) Handle(w *codec.ResponseWriter, r *codec.Request) {
	if e.closeAfter {
		w.SetClose()
	}
	d, err := w.Defer(e)
	if err != nil {
		// Not a Server connection (cannot happen for the daemon): answer now; the body is
		// read and dropped.
		e.done, e.ended = true, true
		w.SetStatus(codec.StatusBadGateway)
		w.WriteString("502 Bad Gateway\n")
		return
	}
	d.SetTag(e)
	e.ip = appendIP(e.ip[:0], d.RemoteAddrPort())
	e.bodyChunked = r.Chunked()
	e.p.start(e, d, r, e.g)
}

var (
	chunkEnd  = []byte("\r\n")
	lastChunk = []byte("0\r\n\r\n")
)

// Write forwards a piece of the client's body (decoded by the codec) to the upstream, and
// pauses the client while the upstream's output is full. Once the upstream side is over
// (answered early, failed, abandoned) the rest of the body is dropped.
func (e *Exchange) Write(b []byte) (int, error) {
	x := e.x
	if e.done || x == nil || len(b) == 0 {
		return len(b), nil
	}
	// Errors of the upstream connection (it closed) come back through OnResponseEnd.
	if e.bodyChunked {
		var size [20]byte
		h := append(strconv.AppendUint(size[:0], uint64(len(b)), 16), '\r', '\n')
		x.Write(h)
		x.Write(b)
		x.Write(chunkEnd)
		e.bodyOut += int64(len(h) + len(b) + 2)
	} else {
		x.Write(b)
		e.bodyOut += int64(len(b))
	}
	if !e.bodyHeld && x.OutputFull() {
		e.bodyHeld = true
		e.resp.PauseBody()
	}
	return len(b), nil
}

// bodyWritable resumes the client's body once the upstream drained its output.
func (e *Exchange) bodyWritable() {
	if e.bodyHeld && !e.done && e.x != nil && !e.x.OutputFull() {
		e.bodyHeld = false
		e.resp.ResumeBody()
	}
}

// EndBody ends the client's body: the last chunk goes upstream and the response is awaited; or
// the body broke off, and the upstream request is abandoned.
func (e *Exchange) EndBody(r *codec.Request, err error) {
	e.body = bodyEnded
	e.bodyHeld = false
	if err == nil {
		if x := e.x; x != nil && !e.done {
			if e.bodyChunked {
				x.Write(lastChunk) // trailers are not forwarded (RFC 9110 §6.5.1 lets us drop them)
			}
			x.EndBody()
		}
		e.release()
		return
	}
	if !e.done {
		e.abandon(errClient)
		var pe *codec.ParseError
		switch {
		case errors.Is(err, codec.ErrClientGone):
			// The connection is closing: OnDeferredEnd follows, nothing can be answered.
		case e.head:
			e.resp.Abort()
		case errors.As(err, &pe):
			e.resp.SetClose()
			e.p.answer(e.resp, pe.Status, strconv.Itoa(pe.Status)+" "+codec.StatusText(pe.Status)+"\n")
		default:
			e.resp.Abort()
		}
	}
	e.release()
}
