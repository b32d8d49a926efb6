package http

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/reactord/reactord/reactor"
)

// upConn is one pooled connection to the upstream: the reactor Handler of a dialed
// connection. Requests written on it wait in q, in order; q[0] is the one whose response is
// being read. Loop goroutine only.
type upConn struct {
	pool *clientPool
	rc   *reactor.Conn
	p    ResponseParser
	q    []*Exchange

	served   int   // responses completed on this connection
	idleAt   int64 // pool clock when it went idle
	lastRead int64 // pool clock of the last input, or of the wait for it starting
	sendAt   int64 // pool clock when a streamed body's output last drained or began waiting
	hdrDL    int64 // q[0]'s head is due by then; 0 once it arrived
	armedAt  int64 // when tm fires; 0 when not armed
	tm       *reactor.Timer
	unsafe   int   // non-idempotent requests in q
	failErr  error // why we closed it: reported instead of the close's own cause
	open     bool
	closed   bool
	noReuse  bool // a response said close, or the connection is being retired
	paused   bool // an exchange paused reading (Exchange.Pause)
	tunnel   bool // q[0] turned the connection into a tunnel
}

// canPipeline reports whether x may be sent behind the requests already on u.
func (u *upConn) canPipeline(x *Exchange) bool {
	return !u.closed && !u.noReuse && !u.tunnel && len(u.q) > 0 && len(u.q) < u.pool.c.cfg.MaxPipeline &&
		x.idempotent && u.unsafe == 0
}

// start writes x's request on u. Bytes written before the connection is established leave
// once it is.
func (u *upConn) start(x *Exchange) {
	p := u.pool
	x.conn = u
	if !x.idempotent {
		u.unsafe++
	}
	u.q = append(u.q, x)
	if len(u.q) == 1 {
		u.p.expect(x.method)
		if x.stream {
			// The body is still to come: no header deadline until EndBody (see SendStream).
			u.hdrDL, u.lastRead, u.sendAt = 0, p.now(), p.now()
		} else {
			u.turn()
		}
	}
	p.st.requests.Add(1)
	// A connection is only given requests while open (or connecting): the pool drops it as
	// soon as it closes. Output written before it is established leaves once it is.
	u.rc.Write(x.req)
	if x.stream {
		u.arm()
		if x.full && !u.rc.OutputFull() {
			// The producer paused while the request waited for a connection: it may go on.
			x.full = false
			if wh, ok := x.h.(ExchangeWritableHandler); ok {
				wh.OnExchangeWritable(x)
			}
		}
	}
}

// turn starts the clock of the response now first in line.
func (u *upConn) turn() {
	now := u.pool.now()
	u.hdrDL = now + int64(u.pool.c.cfg.HeaderTimeout)
	u.lastRead = now
	u.arm()
}

// retire closes a connection that will not be used again.
func (u *upConn) retire() {
	u.noReuse = true
	u.rc.Close()
}

// OnOpen: the connection is established; requests written meanwhile are on their way.
func (u *upConn) OnOpen(rc *reactor.Conn) { u.open = true }

// OnData parses responses and hands them to their exchanges, in order.
func (u *upConn) OnData(rc *reactor.Conn, in []byte) int {
	p := u.pool
	u.lastRead = p.now()
	off := 0
	for {
		if u.closed {
			return len(in)
		}
		if len(u.q) == 0 {
			if off < len(in) {
				u.abort(ErrUnsolicitedResponse)
				return len(in)
			}
			return off
		}
		x := u.q[0]
		if u.tunnel {
			if u.paused || off == len(in) {
				return off // paused: the tunnel's other side is full; kept until Resume
			}
			if x.h != nil {
				x.h.OnResponseBody(x, in[off:])
			}
			return len(in)
		}
		n, ev, err := u.p.Parse(in[off:])
		if err != nil {
			u.abort(err)
			return len(in)
		}
		off += n
		switch ev {
		case ResponseNeedMore:
			return off
		case ResponseInterim:
			if ih, ok := x.h.(InterimHandler); ok {
				ih.OnInterim(x, u.p.Response())
			}
		case ResponseHead:
			x.gotHead = true
			u.hdrDL = 0
			r := u.p.Response()
			if !r.KeepAlive() {
				u.noReuse = true
			}
			if r.BodyKind() == BodyTunnel {
				u.tunnel, u.noReuse = true, true
			}
			if x.h != nil {
				x.h.OnResponse(x, r)
			}
			if u.paused {
				return off
			}
		case ResponseBody:
			if x.h != nil {
				x.h.OnResponseBody(x, u.p.Body())
			}
			if u.paused {
				return off
			}
		case ResponseDone:
			if u.tunnel {
				continue // the bytes after the head belong to the tunnel
			}
			u.done(x)
		}
	}
}

// done completes q[0] and moves the connection on: to the next pipelined response, back to
// the pool, or closed.
func (u *upConn) done(x *Exchange) {
	p := u.pool
	if x.stream {
		// Answered before its body was all sent: the rest cannot be told from a next request.
		u.noReuse = true
	}
	copy(u.q, u.q[1:])
	u.q[len(u.q)-1] = nil
	u.q = u.q[:len(u.q)-1]
	if !x.idempotent {
		u.unsafe--
	}
	u.served++
	if u.paused {
		// Paused for an exchange that is now complete: the next one starts unpaused.
		u.paused = false
		u.rc.ResumeRead()
	}
	p.finish(x, nil)
	if u.closed {
		return // the handler closed the connection (Cancel of a pipelined exchange)
	}
	switch {
	case u.noReuse:
		// The upstream closes after this response: requests pipelined behind it were not
		// answered and go elsewhere (RFC 9112 §9.3.2) or fail.
		u.failErr = ErrUpstreamClosed
		u.rc.CloseNow()
	case len(u.q) > 0:
		u.p.expect(u.q[0].method)
		u.turn()
	default:
		u.hdrDL = 0
		p.release(u)
	}
}

// abort closes the connection because of a protocol error or a timeout; the exchanges on it
// fail with err (see OnClose).
func (u *upConn) abort(err error) {
	u.failErr = err
	u.rc.CloseNow()
}

// OnClose settles every exchange still on the connection: completes a body delimited by the
// close, retries idempotent requests the upstream never answered on a reused connection, and
// fails the rest.
func (u *upConn) OnClose(rc *reactor.Conn, err error) {
	p := u.pool
	u.closed = true
	if u.tm != nil {
		u.tm.Stop()
		u.armedAt = 0
	}
	if !u.open && err != nil && u.failErr == nil {
		p.st.dialErrors.Add(1)
	}
	cause := err
	if u.failErr != nil {
		cause = u.failErr
	} else if !u.open && err != nil {
		cause = fmt.Errorf("%w: %w", ErrUpstreamConnect, err)
	}
	q := u.q
	u.q = nil
	p.connGone(u)
	for i, x := range q {
		if x.h == nil {
			p.freeExchange(x) // cancelled
			continue
		}
		if i == 0 && (x.gotHead || u.p.Phase() == PhaseHead || u.p.Phase() == PhaseBody) {
			// The response had started: a close can only end a body delimited by it.
			if u.failErr == nil && (err == nil || err == io.EOF) {
				if ev, perr := u.p.EOF(); perr == nil && ev == ResponseDone && x.gotHead {
					p.finish(x, nil)
					continue
				}
				p.finish(x, ErrTruncatedResponse)
				continue
			}
			p.finish(x, upstreamErr(cause))
			continue
		}
		if u.retryable(x, cause) {
			p.retry(x)
			continue
		}
		p.finish(x, upstreamErr(cause))
	}
	u.p.Release()
}

// retryable reports whether x, never answered, may be sent again after its connection
// closed with cause: it is idempotent and was not retried yet, the connection had served a
// response before (so the upstream likely closed it as idle), and the cause is a close, not a
// timeout or a protocol error of ours.
func (u *upConn) retryable(x *Exchange, cause error) bool {
	if u.pool.c.cfg.NoRetry || !x.idempotent || x.retried || u.served == 0 {
		return false
	}
	return cause == nil || cause == io.EOF || cause == ErrUpstreamClosed ||
		errors.Is(cause, syscall.ECONNRESET) || errors.Is(cause, syscall.EPIPE)
}

// upstreamErr maps a connection's close cause to what an exchange reports.
func upstreamErr(cause error) error {
	switch {
	case cause == nil, cause == io.EOF:
		return ErrUpstreamClosed
	case errors.Is(cause, reactor.ErrReadTimeout), errors.Is(cause, reactor.ErrIdleTimeout):
		return ErrResponseTimeout
	case errors.Is(cause, os.ErrDeadlineExceeded):
		return ErrResponseTimeout
	}
	return cause
}

// OnWritable passes the drain of the upstream's output on to q[0]'s handler.
func (u *upConn) OnWritable(rc *reactor.Conn) {
	u.sendAt = u.pool.now() // a streamed body's output drained: the upstream takes it
	if len(u.q) > 0 {
		if wh, ok := u.q[0].h.(ExchangeWritableHandler); ok {
			wh.OnExchangeWritable(u.q[0])
		}
	}
}

// deadline returns when the response in progress times out (pool clock), 0 for never.
func (u *upConn) deadline() int64 {
	if len(u.q) == 0 || u.closed || u.tunnel {
		return 0
	}
	if x := u.q[0]; x.stream && !x.gotHead {
		// A body being sent: the upstream is awaited only while output waits for it.
		if u.rc.Buffered() == 0 {
			return 0
		}
		return u.sendAt + int64(u.pool.c.cfg.ReadTimeout)
	}
	when := u.hdrDL
	if !u.paused {
		if r := u.lastRead + int64(u.pool.c.cfg.ReadTimeout); when == 0 || r < when {
			when = r
		}
	}
	return when
}

// arm makes sure the timer fires no later than the current deadline. A timer due earlier is
// left alone: onTimer moves it on (lazy re-arming), so a request costs no timer operation in
// steady state.
func (u *upConn) arm() {
	when := u.deadline()
	if when == 0 || u.armedAt != 0 && u.armedAt <= when {
		return
	}
	d := time.Duration(when - u.pool.now())
	if u.tm == nil {
		u.tm = u.pool.loop.AfterFunc(d, u.onTimer)
	} else {
		u.tm.Reset(d)
	}
	u.armedAt = when
}

func (u *upConn) onTimer() {
	u.armedAt = 0
	when := u.deadline()
	if when == 0 {
		return
	}
	if now := u.pool.now(); when > now {
		u.arm()
		return
	}
	u.abort(ErrResponseTimeout)
}
