package http

import (
	"math"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/reactord/reactord/reactor"
)

// connHandler is the codec as a reactor.Handler (and WritableHandler, ReadEOFHandler). It is a separate type so
// the reactor callbacks do not appear in Server's API.
type connHandler struct{ s *Server }

func (h connHandler) OnOpen(c *reactor.Conn) {
	ls := h.s.loopStateOf(c.Loop())
	cs := &conn{c: c}
	now := ls.nowNs()
	cs.opened, cs.lastActive = now, now
	c.SetContext(cs)
	cfg := &h.s.cfg
	if cfg.readHeaderTimeout > 0 || cfg.readTimeout > 0 || cfg.idleTimeout > 0 || cfg.writeTimeout > 0 {
		// One timer per connection, created once and re-armed lazily (see arm).
		cs.tm = c.Loop().AfterFunc(time.Hour, cs.onTimer)
		cs.armedAt = now + int64(time.Hour)
		cs.arm()
	}
	if h.s.draining.Load() {
		c.Close()
	}
}

func (h connHandler) OnData(c *reactor.Conn, in []byte) int {
	return c.Context().(*conn).onData(in)
}

func (h connHandler) OnClose(c *reactor.Conn, err error) {
	if cs, ok := c.Context().(*conn); ok {
		cs.onClose()
	}
}

// OnReadEOF keeps a half-closed connection open while adapter requests are still on the
// worker pool, so their responses reach a client that shut its writing side after sending
// (curl and load balancers do). Nothing more is read; the connection closes once the queue has
// drained (see adConn.advance); the requests' context is cancelled as net/http does on EOF.
// Native requests are answered inside OnData, so for them there
// is nothing left to wait for and the reactor closes after flushing.
func (h connHandler) OnReadEOF(c *reactor.Conn) bool {
	cs, ok := c.Context().(*conn)
	if !ok || cs.ad == nil || len(cs.ad.queue) == 0 {
		return false
	}
	cs.flags |= csDone
	// A read EOF cannot tell a half-close from a client that went away, so do what net/http
	// does: cancel the requests' context (handlers watching it stop early) but still deliver
	// whatever they write; a gone client then resets the connection and it closes.
	cs.ad.cancel()
	return true
}

func (h connHandler) OnWritable(c *reactor.Conn) {
	if cs, ok := c.Context().(*conn); ok && cs.ad != nil {
		cs.ad.onWritable()
	}
}

// conn is the codec state of one connection. It lives on the connection's loop goroutine; an
// idle connection holds no parser (it goes back to the loop between requests), only this
// struct and its timer.
type conn struct {
	// Fields are ordered and sized so the struct fits the 80-byte allocation class: every idle
	// keep-alive connection holds one (the target is at most 400 bytes per idle connection for
	// the whole stack). The Server and the loopState are not stored: they are reached through
	// the reactor connection (see ls), and the adapter's state lives behind ad.
	c  *reactor.Conn
	p  *Parser
	tm *reactor.Timer
	ad *adConn // adapter state, allocated with the first adapter request

	// Loop-clock stamps (nanoseconds, see loopState.nowNs).
	armedAt    int64 // when tm is due; 0 when it is not armed
	opened     int64
	lastActive int64 // last input or completed response
	reqStart   int64 // first byte of the request being received
	writeDL    int64 // output pending since before writeDL-WriteTimeout; 0 when none

	nreq  uint32 // requests begun (saturates; compared with MaxRequests)
	flags connFlags
}

// ls returns the codec state of the connection's loop (stored as the loop's context by
// loopStateOf before any connection of the loop opens).
func (cs *conn) ls() *loopState { return cs.c.Loop().Context().(*loopState) }

// srv returns the Server the connection belongs to.
func (cs *conn) srv() *Server { return cs.ls().srv }

// countRequest counts a request begun and reports whether MaxRequests is reached with it.
func (cs *conn) countRequest(maxRequests int) bool {
	if cs.nreq < math.MaxUint32 {
		cs.nreq++
	}
	return maxRequests > 0 && int64(cs.nreq) >= int64(maxRequests)
}

type connFlags uint8

const (
	csDone    connFlags = 1 << iota // a response closes the connection: read nothing more
	csInReq                         // bytes of a request have been received (reqStart is set)
	csPaused                        // we called PauseRead
	csBarrier                       // an unsafe request is on the worker pool: dispatch nothing else
	csClosed                        // OnClose ran
	csActive                        // in loopState.active
)

// timeoutKind says what a due deadline does.
type timeoutKind uint8

const (
	toNone   timeoutKind = iota
	toSilent             // idle: close without a response
	to408                // a request is incomplete: answer 408, close
	toWrite              // output stuck: close at once
)

// onData is OnData: parse every complete request in, answer it, and return what was consumed.
func (cs *conn) onData(in []byte) int {
	if cs.flags&csDone != 0 {
		return len(in) // after a closing response nothing more is read
	}
	c := cs.c
	ls := cs.ls()
	s := ls.srv
	now := ls.nowNs()
	cs.lastActive = now
	if cs.flags&csInReq == 0 {
		cs.flags |= csInReq
		cs.reqStart = now
	}
	if cs.p == nil {
		cs.p = ls.getParser()
	}
	p := cs.p
	if s.cfg.writeTimeout > 0 && c.Buffered() == 0 {
		cs.writeDL = 0
	}
	out := ls.out[:0]
	consumed := 0
	for consumed < len(in) {
		if len(out) >= scratchFlush {
			cs.write(out, now)
			out = out[:0]
		}
		if c.OutputFull() {
			// Backpressure: keep the rest; the reactor hands it back once the client has
			// read enough of the output.
			break
		}
		rest := in[consumed:]
		n, req, err := p.Parse(rest)
		if err != nil {
			out = cs.reject(out, err, now)
			consumed = len(in)
			break
		}
		if req == nil {
			if p.wantsContinue() {
				if cs.ad != nil && len(cs.ad.queue) > 0 {
					// The interim response must follow the responses still being produced.
					cs.pause()
					break
				}
				p.ExpectContinue()
				out = AppendContinue(out)
			}
			break
		}
		if s.ad != nil {
			if !cs.dispatch(req, rest[:n], now) {
				break // not consumed: parsed again once the blocking requests are done
			}
		} else {
			out = cs.serve(out, req, n, now)
		}
		consumed += n
		if cs.flags&csDone != 0 {
			consumed = len(in)
			break
		}
	}
	if len(out) > 0 {
		cs.write(out, now)
	}
	if cap(out) > scratchKeep {
		out = make([]byte, 0, 4096)
	}
	ls.out = out[:0]
	switch {
	case cs.flags&csDone != 0:
		if cs.ad == nil || len(cs.ad.queue) == 0 {
			c.Close()
		} else {
			cs.pause()
		}
	case cs.ad != nil:
		cs.ad.maybePause()
	}
	if consumed == len(in) && p.Phase() == PhaseIdle {
		// Nothing of a next request yet: the parser goes back to the loop.
		cs.flags &^= csInReq
		cs.p = nil
		ls.putParser(p)
	} else if consumed > 0 {
		// The rest starts a new request now.
		cs.reqStart = now
	}
	ls.publish()
	cs.arm()
	return consumed
}

// write hands output to the connection, noting when it started to wait for the client.
func (cs *conn) write(out []byte, now int64) {
	if wt := cs.srv().cfg.writeTimeout; wt > 0 && cs.writeDL == 0 {
		cs.writeDL = now + int64(wt)
	}
	cs.c.Write(out)
}

// serve answers one request with the native handler, appending the response to out.
func (cs *conn) serve(out []byte, req *Request, n int, now int64) []byte {
	ls := cs.ls()
	s := ls.srv
	w := &ls.w
	w.Begin(out, req)
	w.sink = cs
	if cs.countRequest(s.cfg.maxRequests) || s.draining.Load() {
		w.SetClose()
	}
	var rerr error
	if cs.call(s, w, req) {
		rerr = ErrHandlerPanic
		w.out = w.out[:w.base]
		if w.handed == 0 {
			w.out = s.cfg.appendError(w.out, ErrHandlerPanic, ls.date.Bytes(), &ls.ebuf)
			w.status = StatusInternalServerError
		}
		w.keepAlive, w.finished = false, true
	} else {
		w.Finish()
	}
	w.sink = nil
	keep := w.KeepAlive()
	if !keep {
		cs.flags |= csDone
	}
	ls.requests++
	if obs := s.cfg.observer; obs != nil {
		info := &ls.info
		*info = RequestInfo{
			Method: req.Method(), Path: req.Path(), ProtoMinor: int(req.minor),
			Status: w.status, BytesIn: int64(n), BytesOut: w.bytesOut(),
			Start: ls.timeAt(cs.reqStart), Duration: time.Duration(now - cs.reqStart),
			Err: rerr, KeepAlive: keep, conn: cs.c,
		}
		obs(info)
		info.conn = nil
	}
	cs.reqStart = now
	return w.out
}

// call runs the handler, reporting a recovered panic.
func (cs *conn) call(s *Server, w *ResponseWriter, req *Request) (panicked bool) {
	// recover is only called when Handle did not return normally: it is not free, and the
	// deferred function runs on every request.
	returned := false
	defer func() {
		if returned {
			return
		}
		if v := recover(); v != nil {
			panicked = true
			s.cfg.logger.Error("http handler panic", zap.Any("panic", v),
				zap.ByteString("method", req.Method()), zap.ByteString("path", req.Path()), zap.StackSkip("stack", 2))
		}
	}()
	s.h.Handle(w, req)
	returned = true
	return false
}

// sendFile is the fileSink of the loop's ResponseWriter: out (earlier pipelined responses and
// this head) goes first, then the file range.
func (cs *conn) sendFile(out []byte, f *os.File, off, n int64) error {
	if len(out) > 0 {
		if _, err := cs.c.Write(out); err != nil {
			return err
		}
	}
	return cs.c.SendFile(f, off, n)
}

// reject answers a malformed request (or a timeout) and marks the connection done.
func (cs *conn) reject(out []byte, err error, now int64) []byte {
	ls := cs.ls()
	start := len(out)
	resp := cs.srv().cfg.appendError(out, err, ls.date.Bytes(), &ls.ebuf)
	cs.flags |= csDone
	ls.rejected++
	ls.requests++
	if cs.ad != nil && len(cs.ad.queue) > 0 {
		// Responses of earlier requests are still being produced: this one waits its turn.
		cs.ad.enqueueReady(resp[start:], err, now)
		return resp[:start]
	}
	if obs := cs.srv().cfg.observer; obs != nil {
		info := &ls.info
		*info = RequestInfo{
			Status: statusFor(err), BytesIn: 0, BytesOut: int64(len(resp) - start),
			Start: ls.timeAt(cs.reqStart), Duration: time.Duration(now - cs.reqStart),
			Err: err, conn: cs.c,
		}
		if cs.p != nil {
			info.BytesIn = int64(cs.p.line)
		}
		obs(info)
		info.conn = nil
	}
	return resp
}

// statusFor returns the status AppendError sends for err.
func statusFor(err error) int {
	if pe, ok := err.(*ParseError); ok {
		return pe.Status
	}
	if pe := asParseError(err); pe != nil {
		return pe.Status
	}
	return StatusBadRequest
}

func (cs *conn) pause() {
	if cs.flags&(csPaused|csClosed) == 0 {
		cs.flags |= csPaused
		cs.c.PauseRead()
	}
}

func (cs *conn) resume() {
	if cs.flags&csPaused != 0 && cs.flags&csClosed == 0 {
		cs.flags &^= csPaused
		cs.c.ResumeRead()
	}
}

func (cs *conn) onClose() {
	cs.flags |= csClosed | csDone
	if cs.tm != nil {
		cs.tm.Stop()
		cs.armedAt = 0
	}
	if cs.p != nil {
		cs.ls().putParser(cs.p)
		cs.p = nil
	}
	if cs.ad != nil {
		cs.ad.onClose()
	}
}

// deadline returns the connection's next deadline and what it does. Deadlines are loop-clock
// stamps derived from plain fields, so keeping them current costs no timer operation.
func (cs *conn) deadline() (int64, timeoutKind) {
	cfg := &cs.srv().cfg
	var when int64
	kind := toNone
	consider := func(t int64, k timeoutKind) {
		if when == 0 || t < when {
			when, kind = t, k
		}
	}
	if cfg.writeTimeout > 0 && cs.writeDL != 0 {
		consider(cs.writeDL, toWrite)
	}
	if cs.flags&csDone != 0 || cs.ad != nil && len(cs.ad.queue) > 0 {
		// Closing, or requests are being handled: no read deadline runs.
		return when, kind
	}
	phase := PhaseIdle
	if cs.p != nil {
		phase = cs.p.Phase()
	}
	switch {
	case phase == PhaseIdle && cs.nreq == 0 && cs.flags&csInReq == 0 && cfg.readHeaderTimeout > 0:
		consider(cs.opened+int64(cfg.readHeaderTimeout), toSilent)
	case phase == PhaseIdle:
		if cfg.idleTimeout > 0 {
			consider(cs.lastActive+int64(cfg.idleTimeout), toSilent)
		}
	case phase == PhaseHead && cfg.readHeaderTimeout > 0:
		consider(cs.reqStart+int64(cfg.readHeaderTimeout), to408)
	case cfg.readTimeout > 0:
		consider(cs.reqStart+int64(cfg.readTimeout), to408)
	case cfg.idleTimeout > 0:
		consider(cs.lastActive+int64(cfg.idleTimeout), to408)
	}
	return when, kind
}

// arm makes sure the timer fires no later than the current deadline. A timer due earlier is
// left alone: when it fires, onTimer moves it to the real deadline (lazy re-arming), so the
// per-request cost is a few comparisons.
func (cs *conn) arm() {
	if cs.tm == nil || cs.flags&csClosed != 0 {
		return
	}
	when, _ := cs.deadline()
	if when == 0 || cs.armedAt != 0 && cs.armedAt <= when {
		return
	}
	cs.armedAt = when
	cs.tm.Reset(time.Duration(when - cs.ls().nowNs()))
}

func (cs *conn) onTimer() {
	cs.armedAt = 0
	if cs.flags&csClosed != 0 {
		return
	}
	now := cs.ls().nowNs()
	if cs.writeDL != 0 && cs.c.Buffered() == 0 {
		cs.writeDL = 0 // the output drained since it was written
	}
	when, kind := cs.deadline()
	if when == 0 {
		return
	}
	if when > now {
		cs.armedAt = when
		cs.tm.Reset(time.Duration(when - now))
		return
	}
	switch kind {
	case toSilent:
		cs.flags |= csDone
		cs.c.Close()
	case to408:
		ls := cs.ls()
		out := cs.reject(ls.out[:0], ErrRequestTimeout, now)
		cs.c.Write(out)
		ls.out = out[:0]
		ls.publish()
		cs.c.Close()
	case toWrite:
		cs.c.CloseNow()
	}
}
