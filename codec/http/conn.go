package http

import (
	"math"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/reactord/reactord/reactor"
)

// The connection layer has three parts, each in its own file:
//
//   - framing (this file): the reactor callbacks; parsing the input into requests; codec
//     rejections (400, 408, ...); 100-continue; backpressure; handing a connection over to
//     another protocol (upgrade.go);
//   - deadlines (deadline.go): which timeout applies in which phase, on one per-connection
//     deadline;
//   - dispatch (dispatch.go): what is done with a complete request — answered inline on the
//     loop by a native Handler, or queued on the worker pool by the net/http adapter — behind
//     the dispatcher interface.
//
// The ResponseWriter (response.go) serializes responses and is changed only by its own methods.

// connHandler is the codec as a reactor.Handler (and WritableHandler, ReadEOFHandler,
// DeadlineHandler). It is a separate type so the reactor callbacks do not appear in Server's
// API.
type connHandler struct{ s *Server }

func (h connHandler) OnOpen(c *reactor.Conn) {
	ls := h.s.loopStateOf(c.Loop())
	cs := &conn{c: c, ls: ls}
	now := ls.nowNs()
	cs.opened, cs.lastActive = now, now
	c.SetContext(cs)
	cs.startDeadlines()
	// Opened while the server drains: the reactor's Shutdown accepts what was queued on the
	// listeners before closing them (closing would reset it). The connection is served like
	// the others: its first request, if already sent, gets a response marked as the last
	// (draining sets Connection: close); if it has sent nothing, Shutdown closes it as idle.
	// Closing it here instead would drop a request that is already in its socket, with a reset.
}

func (h connHandler) OnData(c *reactor.Conn, in []byte) int {
	if cs, ok := c.Context().(*conn); ok && cs.flags&csUpgraded == 0 {
		return cs.onData(in)
	}
	if u := h.upgradedOf(c); u != nil {
		return u.h.OnData(c, in)
	}
	return len(in)
}

func (h connHandler) OnClose(c *reactor.Conn, err error) {
	if cs, ok := c.Context().(*conn); ok && cs.flags&csUpgraded == 0 {
		cs.onClose()
		return
	}
	if u := h.upgradedOf(c); u != nil {
		delete(u.cs.ls.upgraded, c)
		u.cs.onClose()
		u.h.OnClose(c, err)
	}
}

// OnReadEOF keeps a half-closed connection open while responses are still owed (requests on
// the worker pool), so they reach a client that shut its writing side after sending (curl and
// load balancers do). Nothing more is read; the connection closes once the last owed response
// is written. Native requests are answered inside OnData, so for them there is nothing left to
// wait for and the reactor closes after flushing.
func (h connHandler) OnReadEOF(c *reactor.Conn) bool {
	if cs, ok := c.Context().(*conn); ok && cs.flags&csUpgraded == 0 {
		return cs.ls.srv.disp.readEOF(cs)
	}
	if u := h.upgradedOf(c); u != nil && u.eh != nil {
		return u.eh.OnReadEOF(c)
	}
	return false
}

func (h connHandler) OnWritable(c *reactor.Conn) {
	if cs, ok := c.Context().(*conn); ok && cs.flags&csUpgraded == 0 {
		cs.ls.srv.disp.writable(cs)
		return
	}
	if u := h.upgradedOf(c); u != nil && u.wh != nil {
		u.wh.OnWritable(c)
	}
}

func (h connHandler) OnDeadline(c *reactor.Conn) {
	if cs, ok := c.Context().(*conn); ok && cs.flags&csUpgraded == 0 {
		cs.onDeadline()
		return
	}
	if u := h.upgradedOf(c); u != nil {
		if u.dh != nil {
			u.dh.OnDeadline(c)
		} else {
			c.CloseNow() // what the reactor does for a handler without OnDeadline
		}
	}
}

// conn is the codec state of one connection. It lives on the connection's loop goroutine; an
// idle connection holds no parser (it goes back to the loop between requests), only this
// struct (its deadline is on the reactor connection's timer).
type conn struct {
	c  *reactor.Conn
	ls *loopState
	p  *Parser
	ad *adConn // adapter state (or a streamed native body), allocated when first needed

	// Loop-clock stamps (nanoseconds, see loopState.nowNs).
	armedAt    int64 // when the connection's deadline is set for; 0 when it is not
	opened     int64
	lastActive int64 // last input or completed response
	reqStart   int64 // first byte of the request being received
	writeDL    int64 // output pending since before writeDL-WriteTimeout; 0 when none

	nreq  uint32 // requests begun (saturates; compared with MaxRequests)
	flags connFlags
}

// srv returns the Server the connection belongs to.
func (cs *conn) srv() *Server { return cs.ls.srv }

// countRequest counts a request begun and reports whether MaxRequests is reached with it.
func (cs *conn) countRequest(maxRequests int) bool {
	if cs.nreq < math.MaxUint32 {
		cs.nreq++
	}
	return maxRequests > 0 && int64(cs.nreq) >= int64(maxRequests)
}

type connFlags uint16

const (
	csDone     connFlags = 1 << iota // a response closes the connection: read nothing more
	csInReq                          // bytes of a request have been received (reqStart is set)
	csPaused                         // we called PauseRead
	csBarrier                        // an unsafe request is on the worker pool: dispatch nothing else
	csClosed                         // OnClose ran
	csActive                         // in loopState.active
	csUpgraded                       // handed to another protocol's handler (see upgrade.go)
	csEOF                            // the client shut its writing side; close once nothing is owed
	csTimed                          // a timeout is configured: the deadline is kept (deadline.go)
	csBodyHeld                       // a streamed body's receiver paused it (Deferred.PauseBody)
)

// onData is OnData: parse every complete request in, hand each to the dispatcher, and return
// what was consumed.
func (cs *conn) onData(in []byte) int {
	if cs.flags&csDone != 0 && !cs.streamingBody() {
		return len(in) // after a closing response nothing more is read
	}
	c := cs.c
	ls := cs.ls
	s := ls.srv
	d := s.disp
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
		if cs.ad != nil && cs.ad.nb != nil {
			// A request body streamed to a native BodyStreamer.
			var k int
			var stop bool
			k, out, stop = cs.feedNative(in[consumed:], out, now)
			consumed += k
			if stop || k == 0 {
				break
			}
			continue
		}
		if ad := cs.ad; ad != nil && ad.body != nil {
			// A streamed request body: its bytes go to the handler's r.Body.
			k, stop := cs.feedBody(in[consumed:], now)
			consumed += k
			if stop || k == 0 {
				break
			}
			continue
		}
		if cs.flags&csDone != 0 {
			consumed = len(in) // after a closing response nothing more is read
			break
		}
		if cs.flags&csBarrier != 0 {
			// A request that runs alone (an unsafe method, or one that may switch
			// protocols) is out: what follows is not even parsed until it is answered — it
			// may not be HTTP at all.
			cs.pause()
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
				if d.owed(cs) > 0 {
					// The interim response must follow the responses still being produced:
					// wait for them (the kept input is handed back after resume).
					cs.pause()
					break
				}
				p.ExpectContinue()
				out = AppendContinue(out)
			}
			break
		}
		if req.streaming && req.expect100 && !p.continueSent && n == len(rest) && d.owed(cs) == 0 {
			// The body is wanted: the client may send it.
			p.continueSent = true
			out = AppendContinue(out)
		}
		var ok bool
		if out, ok = d.serve(cs, out, req, rest[:n], now); !ok {
			// The request must wait for earlier ones (see adConn.admit). Reading pauses only
			// now that bytes have actually arrived while requests are out ("lazy" pausing):
			// a client that waits for each response never costs an epoll_ctl.
			cs.pause()
			break
		}
		consumed += n
		if h := ls.upPending; h != nil {
			// The handler switched protocols (Upgrade): the 101 goes out first, then what
			// follows it belongs to the new handler.
			ls.upPending = nil
			d.dispatch(cs)
			cs.flushScratch(out, now)
			ls.publish()
			cs.completeUpgrade(h)
			if consumed < len(in) && cs.flags&csClosed == 0 {
				consumed += h.OnData(c, in[consumed:])
			}
			return consumed
		}
	}
	d.dispatch(cs)
	cs.flushScratch(out, now)
	if cs.flags&csDone != 0 && !cs.streamingBody() {
		// (A body still streaming to a receiver that answered early is read to its end first.)
		if d.owed(cs) == 0 {
			c.Close()
		} else {
			cs.pause()
		}
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

// streamingBody reports whether a request body is being streamed to a handler: its bytes
// must still be read, even when the response will close the connection.
func (cs *conn) streamingBody() bool { return cs.ad != nil && (cs.ad.nb != nil || cs.ad.body != nil) }

// flushScratch hands the scratch output to the connection and gives the scratch buffer back to
// the loop (shrunk if one response grew it).
func (cs *conn) flushScratch(out []byte, now int64) {
	if len(out) > 0 {
		cs.write(out, now)
	}
	if cap(out) > scratchKeep {
		out = make([]byte, 0, 4096)
	}
	cs.ls.out = out[:0]
}

// write hands output to the connection, noting when it started to wait for the client.
func (cs *conn) write(out []byte, now int64) {
	if wt := cs.srv().cfg.writeTimeout; wt > 0 && cs.writeDL == 0 {
		cs.writeDL = now + int64(wt)
	}
	cs.c.Write(out)
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
	ls := cs.ls
	start := len(out)
	resp := ls.appendErr(out, err, ls.date.Bytes())
	cs.flags |= csDone
	ls.rejected++
	ls.requests++
	if d := cs.srv().disp; d.owed(cs) > 0 {
		// Responses of earlier requests are still being produced: this one waits its turn.
		d.queueReady(cs, resp[start:], err, now)
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
	if cs.flags&(csPaused|csClosed|csBodyHeld) == csPaused {
		cs.flags &^= csPaused
		cs.c.ResumeRead()
	}
}

func (cs *conn) onClose() {
	cs.flags |= csClosed | csDone
	cs.endNativeBody()
	cs.stopDeadlines()
	if cs.p != nil {
		cs.ls.putParser(cs.p)
		cs.p = nil
	}
	cs.srv().disp.closed(cs)
}

// callNative runs the native handler, reporting a recovered panic.
func (cs *conn) callNative(s *Server, h Handler, w *ResponseWriter, req *Request) (panicked bool) {
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
	h.Handle(w, req)
	returned = true
	return false
}
