package http

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/reactor"
)

// Deferred responses: a native handler that cannot answer before it returns — it waits for an
// upstream, a timer, another connection of the loop — calls ResponseWriter.Defer and finishes
// the response later, on the loop, through the returned *Deferred. The connection keeps
// parsing and dispatching pipelined requests meanwhile (up to WithMaxPipeline owed responses);
// every response still leaves in request order: one produced while an earlier one is owed
// waits in the connection's queue. No thread is involved, so a deferred response costs no
// hand-off, and no timeout of the codec runs while one is owed (the request is being handled).

// DeferredHandler receives a deferred response's connection events, on the loop goroutine.
type DeferredHandler interface {
	// OnDeferredWritable is called once the output that made OutputFull report true has
	// drained: the client's connection below its low-water mark (or, for a response waiting
	// behind an earlier one, that response done). The producer continues writing.
	OnDeferredWritable(d *Deferred)
	// OnDeferredEnd is called once, when the response leaves the connection's queue: with nil
	// after it was handed to the connection and the Observer saw it, or with the reason the
	// connection closed first (ErrClientGone: the client went away, a timeout, the server
	// closing). d is invalid afterwards — with a non-nil err its methods return
	// ErrClientGone — and state the producer keeps for it (a Tag) may be released.
	OnDeferredEnd(d *Deferred, err error)
}

// Deferred is a response finished after its handler returned: it has the ResponseWriter's
// header and body methods, and writes into the connection in request order. It belongs to
// the loop goroutine of the request; every method must be called there. It is valid until
// OnDeferredEnd; after Finish or Abort only the end callback may still come. The codec reuses it afterwards.
type Deferred struct {
	cs *conn
	h  DeferredHandler
	w  ResponseWriter

	buf    []byte   // output produced while an earlier response is still owed
	file   *os.File // a file range queued behind buf (a ready inline response's SendFile)
	foff   int64
	fn     int64
	done   bool // Finish or Abort ran, or a ready response
	gone   bool // the connection closed first
	keep   bool // not to be reused: a panicking handler may still hold it
	tag    any  // for the Observer (SetTag)
	full   bool // OutputFull reported true: OnDeferredWritable is owed
	upH    reactor.Handler
	ready  bool  // produced inline or by the codec, not by a DeferredHandler
	err    error // the codec's error for a ready rejection
	status int
	total  int64 // a ready response's bytes, for the Observer

	// For the Observer, copied at Defer time (the request's views are gone later).
	method, path []byte
	minor        int
	start        int64
	bytesIn      int
	keepAlive    bool // the request allowed another one

	emitFn func([]byte)
}

// deferQueue is a connection's owed responses, in request order.
type deferQueue struct {
	slots []*Deferred
}

// maxFreeDeferred bounds the Deferred values a loop keeps for reuse.
const maxFreeDeferred = 1024

func (ls *loopState) getDeferred(cs *conn) *Deferred {
	var d *Deferred
	if n := len(ls.deferFree); n > 0 {
		d = ls.deferFree[n-1]
		ls.deferFree[n-1] = nil
		ls.deferFree = ls.deferFree[:n-1]
	} else {
		d = &Deferred{}
		d.emitFn = d.emit
	}
	d.cs = cs
	d.w.SetDateCache(&ls.date)
	d.w.server = ls.srv.cfg.serverName
	return d
}

func (ls *loopState) putDeferred(d *Deferred) {
	if d.file != nil {
		d.file.Close()
		d.file = nil
	}
	if d.keep {
		d.gone = true // whoever still holds it gets ErrClientGone
		return
	}
	buf := d.buf[:0]
	if cap(buf) > 64<<10 {
		buf = nil
	}
	d.w.shrink(64 << 10)
	w := d.w
	*d = Deferred{buf: buf, w: w, emitFn: d.emitFn, method: d.method[:0], path: d.path[:0]}
	if len(ls.deferFree) < maxFreeDeferred {
		ls.deferFree = append(ls.deferFree, d)
	}
}

// Defer makes the response to this request a deferred one, finished later through the returned
// *Deferred; the handler returns without finishing w (w refuses further use with ErrFinished).
// The status and header fields set on w so far carry over. h gets the connection's events for
// this response. Responses of earlier pipelined requests, answered already, leave first.
//
// Call it from a native Handler, before anything of the body was written. A request asking
// for a protocol upgrade (an Upgrade header, or CONNECT) stops the connection from reading
// further requests until it is answered: what follows may not be HTTP (see Deferred.Upgrade).
//
// Errors: ErrInvalidArgument for a nil h; ErrNotStarted, ErrFinished, ErrHeadersSent; and
// ErrDeferUnavailable when w does not serve a native Server connection, or body bytes were
// written.
func (w *ResponseWriter) Defer(h DeferredHandler) (*Deferred, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: Defer(nil)", ErrInvalidArgument)
	}
	if err := w.check(); err != nil {
		return nil, err
	}
	var cs *conn
	behind := false // the request is answered behind owed responses (serveBehind)
	switch s := w.sink.(type) {
	case *conn:
		cs = s
	case slotSink:
		cs, behind = s.d.cs, true
	}
	switch {
	case cs == nil:
		return nil, fmt.Errorf("%w: the writer does not serve a native Server connection", ErrDeferUnavailable)
	case len(w.pending) > 0 || w.pendingN > 0:
		return nil, fmt.Errorf("%w: body bytes were written", ErrDeferUnavailable)
	}
	ls := cs.ls
	req := ls.curReq
	d := ls.getDeferred(cs)
	d.h = h
	// The deferred writer starts where w stands: request facts, status, header lines, close.
	d.w.beginFacts(d.w.out[:0], w.head, w.http10, w.keepAlive)
	d.w.status, d.w.close, d.w.clen = w.status, w.close, w.clen
	d.w.hdr = append(d.w.hdr, w.hdr...)
	d.w.userDate, d.w.userSrv = w.userDate, w.userSrv
	d.w.SetFlushHook(d.emitFn)
	d.keepAlive = w.keepAlive
	if req != nil {
		d.method = append(d.method, req.Method()...)
		d.path = append(d.path, req.Path()...)
		d.minor = int(req.minor)
		if _, up := req.Header("Upgrade"); up || string(req.Method()) == "CONNECT" {
			// The bytes after this request may belong to another protocol: read no further
			// until it is answered.
			cs.flags |= csBarrier
		}
	}
	d.start, d.bytesIn = cs.reqStart, ls.curLen
	// Responses already produced in this batch precede this one on the wire: hand them to the
	// connection now, since d may write as soon as it is first in line. (Behind owed ones, w's
	// output is the unused slot's.)
	if len(w.out) > 0 && !behind {
		cs.write(w.out, ls.nowNs())
	}
	w.out, w.base = w.out[:0], 0
	w.finished, w.committed = true, true
	w.status = 0
	if !w.keepAlive || w.close {
		// The last response of the connection (the request said close, or the server is
		// draining or at MaxRequests): nothing after this request is read.
		cs.flags |= csDone
	}
	q := cs.queue()
	q.slots = append(q.slots, d)
	cs.ad.hold() // a connection with a response owed is busy: no idle timeout, Shutdown waits
	ls.deferred = true
	return d, nil
}

// ErrDeferUnavailable is returned (wrapped, with the reason) by ResponseWriter.Defer when the
// response cannot be deferred.
var ErrDeferUnavailable = fmt.Errorf("http: response cannot be deferred")

// queue returns the connection's owed responses. They live with the rarely-needed
// per-connection state (adConn), so an idle connection stays small.
func (cs *conn) queue() *deferQueue {
	if cs.ad == nil {
		cs.ad = &adConn{cs: cs}
	}
	return &cs.ad.df
}

// first reports whether d is at the head of its connection's queue.
func (d *Deferred) first() bool {
	ad := d.cs.ad
	return ad != nil && len(ad.df.slots) > 0 && ad.df.slots[0] == d
}

// emit is the deferred writer's flush hook: output goes to the connection when d is first in
// line, and waits in d.buf otherwise.
func (d *Deferred) emit(out []byte) {
	if d.gone {
		return
	}
	if d.first() {
		d.cs.write(out, d.cs.ls.nowNs())
		return
	}
	d.buf = append(d.buf, out...)
}

// check refuses use after the response ended.
func (d *Deferred) check() error {
	if d.gone {
		return ErrClientGone
	}
	return nil
}

// SetStatus sets the status code (see ResponseWriter.SetStatus).
func (d *Deferred) SetStatus(code int) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.w.SetStatus(code)
}

// Set sets a header field, replacing earlier ones of the name (see ResponseWriter.Set).
func (d *Deferred) Set(name, value string) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.w.Set(name, value)
}

// AddField appends a header field from bytes (a field of another message, say), validated
// as ResponseWriter.Add validates; no allocation for names up to 32 bytes.
func (d *Deferred) AddField(name, value []byte) error {
	if err := d.check(); err != nil {
		return err
	}
	return setHeader(&d.w, string(name), value, false)
}

// SetContentLength declares the body length (see ResponseWriter.SetContentLength).
func (d *Deferred) SetContentLength(n int64) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.w.SetContentLength(n)
}

// AddTrailer adds a trailer field (see ResponseWriter.AddTrailer).
func (d *Deferred) AddTrailer(name, value string) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.w.AddTrailer(name, value)
}

// Write appends body bytes (see ResponseWriter.Write). Call Flush to send them before Finish.
func (d *Deferred) Write(p []byte) (int, error) {
	if err := d.check(); err != nil {
		return 0, err
	}
	return d.w.Write(p)
}

// WriteString is Write for a string.
func (d *Deferred) WriteString(s string) (int, error) {
	if err := d.check(); err != nil {
		return 0, err
	}
	return d.w.WriteString(s)
}

// Flush sends the head and the body written so far (chunked for an HTTP/1.1 response of
// undeclared length, see ResponseWriter.Flush) — to the connection when every earlier
// response is done, into the queue otherwise.
func (d *Deferred) Flush() error {
	if err := d.check(); err != nil {
		return err
	}
	return d.w.Flush()
}

// OutputFull reports whether the producer should stop writing until OnDeferredWritable: the
// connection's output is above its high-water mark, or (while an earlier response is owed)
// this response has buffered more than behindMax.
func (d *Deferred) OutputFull() bool {
	if d.gone {
		return false
	}
	full := len(d.buf) >= behindMax
	if d.first() {
		full = d.cs.c.OutputFull()
	}
	if full {
		d.full = true
	}
	return full
}

// Finish completes the response (see ResponseWriter.Finish); d is invalid afterwards.
func (d *Deferred) Finish() error {
	if err := d.check(); err != nil {
		return err
	}
	err := d.w.Finish()
	d.done = true
	d.status = d.w.status
	if d.first() {
		d.cs.ad.df.advance(d.cs)
	}
	return err
}

// Abort ends a response that cannot be completed: if nothing of it was sent, the client gets
// a 502 (Bad Gateway) instead; otherwise its connection is closed after what was sent, so the
// client sees a cut message rather than a wrong one. d is invalid afterwards.
func (d *Deferred) Abort() {
	if d.gone || d.done {
		return
	}
	if d.w.handed == 0 && !d.w.committed {
		d.buf = d.buf[:0]
		d.w.abort(ErrUpstreamAborted, d.cs.ls.appendErr)
	} else {
		d.w.keepAlive, d.w.close, d.w.finished = false, true, true
	}
	d.hookOut()
	d.done = true
	d.status = d.w.status
	if d.first() {
		d.cs.ad.df.advance(d.cs)
	}
}

// ErrUpstreamAborted is the 502 a Deferred answers when aborted before anything was sent.
var ErrUpstreamAborted = newParseError(StatusBadGateway, "upstream failed")

// hookOut hands what the writer holds to emit (abort leaves it in the writer's buffer).
func (d *Deferred) hookOut() {
	if out := d.w.out; len(out) > 0 {
		d.emit(out)
		d.w.handed += int64(len(out))
		d.w.out = d.w.out[:0]
	}
}

// Upgrade answers "101 Switching Protocols" with the header fields set so far (Upgrade among
// them) and hands the connection to h, as ResponseWriter.Upgrade does, once every earlier
// response is done. The request must have asked for an upgrade (the connection has read no
// further since). d is invalid afterwards. Errors: ErrInvalidArgument, ErrClientGone,
// ErrUpgradeUnavailable (wrapped) as for ResponseWriter.Upgrade.
func (d *Deferred) Upgrade(h reactor.Handler) error {
	if h == nil {
		return fmt.Errorf("%w: Upgrade(nil)", ErrInvalidArgument)
	}
	if err := d.check(); err != nil {
		return err
	}
	w := &d.w
	switch {
	case d.cs.flags&csBarrier == 0 || d.cs.ad.df.slots[len(d.cs.ad.df.slots)-1] != d:
		return fmt.Errorf("%w: the request did not ask for an upgrade", ErrUpgradeUnavailable)
	case w.http10:
		return fmt.Errorf("%w: HTTP/1.0 has no 101 response", ErrUpgradeUnavailable)
	case w.head:
		return fmt.Errorf("%w: HEAD request", ErrUpgradeUnavailable)
	case w.close || !w.keepAlive:
		return fmt.Errorf("%w: the connection closes after this response", ErrUpgradeUnavailable)
	}
	if _, ok := w.Get("Upgrade"); !ok {
		return fmt.Errorf("%w: no Upgrade header set", ErrUpgradeUnavailable)
	}
	if err := w.commitSwitching(true); err != nil {
		return err
	}
	d.hookOut()
	d.upH = h
	d.done = true
	d.status = StatusSwitchingProtocols
	if d.first() {
		d.cs.ad.df.advance(d.cs)
	}
	return nil
}

// SetClose makes this response the last on its connection ("Connection: close"), as
// ResponseWriter.SetClose does; it has no effect once the head was sent.
func (d *Deferred) SetClose() error {
	if err := d.check(); err != nil {
		return err
	}
	d.w.SetClose()
	return nil
}

// PauseBody stops reading the request's body while it streams to a BodyReceiver that cannot
// keep up (a reverse proxy whose upstream's output is full): after the current Write returns,
// the connection reads nothing more — the client is paced by TCP, and memory stays bounded
// whatever the body's size — until ResumeBody, or until this response completes. The client's
// read timeout does not run meanwhile. It does nothing when no body is streaming. Loop
// goroutine.
func (d *Deferred) PauseBody() {
	if d.cs != nil && !d.gone && !d.done && d.first() {
		d.cs.holdBody()
	}
}

// ResumeBody undoes PauseBody: the input kept meanwhile is handed back early in the next loop
// iteration, and the body's Writes continue. Loop goroutine.
func (d *Deferred) ResumeBody() {
	if d.cs != nil && !d.gone && d.first() {
		d.cs.releaseBody()
	}
}

// SetTag attaches v to the response for the Observer (RequestInfo.Tag): the reverse proxy
// tells its access log which upstream answered. v must stay valid until OnDeferredEnd.
func (d *Deferred) SetTag(v any) { d.tag = v }

// Loop returns the loop the response belongs to.
func (d *Deferred) Loop() *reactor.Loop { return d.cs.c.Loop() }

// Conn returns the client's connection, to tell requests of one connection from others' (a
// proxy sends a client's pipelined batch over one upstream connection). It must not be
// written to or closed: the codec owns it.
func (d *Deferred) Conn() *reactor.Conn { return d.cs.c }

// RemoteAddr returns the client's address (read from the kernel once per connection).
func (d *Deferred) RemoteAddr() net.Addr { return d.cs.c.RemoteAddr() }

// RemoteAddrPort returns the client's IP address and port without allocating; the zero
// AddrPort for a Unix-socket client (see RequestInfo.RemoteAddrPort). Loop goroutine only.
func (d *Deferred) RemoteAddrPort() netip.AddrPort { return d.cs.c.RemoteAddrPort() }

// advance writes every finished response at the head of the queue, in order, then the
// buffered output of the first unfinished one; it completes an upgrade and lets the
// connection read again when room frees up.
func (q *deferQueue) advance(cs *conn) {
	ls := cs.ls
	now := ls.nowNs()
	for len(q.slots) > 0 && cs.flags&csClosed == 0 {
		d := q.slots[0]
		if len(d.buf) > 0 {
			cs.write(d.buf, now)
			d.buf = d.buf[:0]
		}
		if d.file != nil {
			cs.c.SendFile(d.file, d.foff, d.fn)
			d.file.Close()
			d.file = nil
		}
		if !d.done {
			if d.full && !cs.c.OutputFull() {
				d.full = false
				d.h.OnDeferredWritable(d)
			}
			break
		}
		n := copy(q.slots, q.slots[1:])
		q.slots[n] = nil
		q.slots = q.slots[:n]
		if cs.flags&csBodyHeld != 0 {
			// The response of a request whose body its receiver paused is complete: nobody
			// is left to resume it, and the rest of the body is read (and dropped by the
			// receiver) so the connection can carry the next request.
			cs.releaseBody()
		}
		ls.requests++
		if d.err != nil {
			ls.rejected++
		}
		cs.lastActive = now
		keep := d.w.KeepAlive() && d.err == nil
		if obs := cs.srv().cfg.observer; obs != nil {
			info := &ls.info
			*info = RequestInfo{
				Method: d.method, Path: d.path, ProtoMinor: d.minor, Status: d.status,
				BytesIn: int64(d.bytesIn), BytesOut: d.w.bytesOut(), Start: ls.timeAt(d.start),
				Duration: time.Duration(now - d.start), Err: d.err, KeepAlive: keep, conn: cs.c,
			}
			if d.ready {
				info.BytesOut = d.total
			}
			if d.err != nil {
				info.Method, info.Path, info.BytesIn = nil, nil, 0
			}
			info.Tag = d.tag
			obs(info)
			info.conn, info.Tag = nil, nil
		}
		if d.h != nil && !d.ready {
			d.h.OnDeferredEnd(d, nil)
		}
		if h := d.upH; h != nil {
			ls.putDeferred(d)
			cs.flags &^= csBarrier
			cs.ad.release()
			cs.completeUpgrade(h) // resumes reading: the kept input goes to h
			ls.publish()
			return
		}
		ls.putDeferred(d)
		if !keep {
			cs.flags |= csDone
			q.drop(ErrClientGone)
			cs.c.Close()
			break
		}
	}
	if len(q.slots) == 0 {
		cs.flags &^= csBarrier
		cs.ad.release()
		if cs.flags&csDone != 0 && cs.flags&csClosed == 0 {
			cs.c.Close()
		}
	}
	if cs.flags&(csDone|csBarrier|csClosed) == 0 && len(q.slots) < cs.srv().cfg.maxPipeline {
		cs.resume() // the reactor hands kept input (further pipelined requests) back
	}
	ls.publish()
	cs.arm()
}

// drop abandons every owed response (the connection closes): the producers hear of it.
func (q *deferQueue) drop(cause error) {
	slots := q.slots
	q.slots = nil
	for _, d := range slots {
		ls := d.cs.ls
		if !d.done && d.h != nil && !d.gone {
			// Its producer may still call it: it stays dead (ErrClientGone), never reused.
			d.gone, d.keep = true, true
		}
		if d.h != nil && !d.ready {
			d.h.OnDeferredEnd(d, cause)
		}
		ls.putDeferred(d)
	}
}

// serveBehind answers a request with the native handler while earlier responses are owed:
// its response goes into a queue slot of its own instead of the scratch output. A handler that
// defers it adds its own slot; SendFile is recorded in the slot and sent in turn.
func (cs *conn) serveBehind(req *Request, n int, now int64) {
	ls := cs.ls
	s := ls.srv
	slot := ls.getDeferred(cs)
	slot.ready, slot.done = true, true
	slot.method = append(slot.method, req.Method()...)
	slot.path = append(slot.path, req.Path()...)
	slot.minor, slot.start, slot.bytesIn = int(req.minor), cs.reqStart, n
	w := &ls.w
	w.Begin(slot.buf[:0], req)
	w.setSink(slotSink{slot})
	if cs.countRequest(s.cfg.maxRequests) || s.draining.Load() {
		w.SetClose()
	}
	ls.curReq, ls.curLen, ls.deferred = req, n, false
	if cs.callNative(s, s.h, w, req) {
		slot.err = ErrHandlerPanic
		w.abort(ErrHandlerPanic, ls.appendErr)
	} else if !w.finished {
		w.Finish()
	}
	w.setSink(nil)
	ls.curReq = nil
	if ls.deferred {
		// The handler deferred it after all: its own slot is queued; this one is unused.
		ls.deferred = false
		ls.putDeferred(slot)
		cs.reqStart = now
		return
	}
	if slot.file == nil {
		slot.buf = w.out
		w.out = nil // the buffer is the slot's now
	}
	slot.w.keepAlive, slot.w.close = w.keepAlive, w.close
	slot.total = w.bytesOut()
	slot.status = w.status
	if !w.KeepAlive() {
		cs.flags |= csDone
	}
	q := cs.queue()
	q.slots = append(q.slots, slot)
	cs.reqStart = now
}

// slotSink is the fileSink of a response produced behind owed ones: the file range waits in
// the slot, with the output before it, until the slot's turn.
type slotSink struct{ d *Deferred }

func (s slotSink) sendFile(out []byte, f *os.File, off, n int64) error {
	dup, err := dupFile(f)
	if err != nil {
		return err
	}
	// A copy: the writer reuses out's storage once this returns.
	s.d.buf = append([]byte(nil), out...)
	s.d.file, s.d.foff, s.d.fn = dup, off, n
	return nil
}

// queueReady queues a codec-generated response (a rejection, a 408) behind the owed ones.
func (q *deferQueue) queueReady(cs *conn, resp []byte, err error) {
	slot := cs.ls.getDeferred(cs)
	slot.ready, slot.done = true, true
	slot.buf = append(slot.buf, resp...)
	slot.err, slot.status, slot.total = err, statusFor(err), int64(len(resp))
	slot.start = cs.reqStart
	q.slots = append(q.slots, slot)
}

// dupCloexec duplicates fd, close-on-exec.
func dupCloexec(fd int) (int, error) {
	d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("dup", err)
	}
	return d, nil
}

// dupFile duplicates f's descriptor, so the caller may close f at once.
func dupFile(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nf *os.File
	var derr error
	if err := rc.Control(func(fd uintptr) {
		var d int
		d, derr = dupCloexec(int(fd))
		if derr == nil {
			nf = os.NewFile(uintptr(d), f.Name())
		}
	}); err != nil {
		return nil, err
	}
	return nf, derr
}
