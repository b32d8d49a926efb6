package http

import (
	"context"
	"crypto/tls"
	"io"
	nethttp "net/http"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/reactord/reactord/reactor"
)

// Adapter runs a net/http Handler (a ServeMux, a router, any http.Handler) unchanged on the
// reactor. Given to NewServer, it makes the server dispatch every request to a worker pool:
// the loop parses the request once and builds the *http.Request, a worker runs the handler,
// and the response goes back to the loop, which writes responses strictly in request order,
// even when pipelined requests finish out of order.
//
// What handlers see, compared with net/http's server:
//   - r.Body streams: a body that is chunked or longer than 64 KiB is dispatched as soon as
//     the head is complete and r.Body yields its bytes as they arrive; while 256 KiB of it wait
//     unread the connection is not read (backpressure), so an upload of any size runs in
//     constant memory. Limits.MaxBodyBytes bounds such bodies only when it is set (a
//     Content-Length above it is answered 413; a chunked body that grows past it fails the
//     read with ErrBodyTooLarge); smaller bodies are read whole first, within MaxBodyBytes or
//     its default. A chunked body's trailers are in r.Trailer once r.Body returned io.EOF.
//     Reading r.Body after ServeHTTP returned fails. A streamed body the handler did not read
//     to its end is discarded by the loop, and the connection closes after the response
//     unless the body had fully arrived (as net/http does past its own small limit).
//     "Expect: 100-continue" is answered by the codec as soon as the head is complete (net/http
//     waits for the handler's first body read).
//   - r.Context() is cancelled when the client connection closes (or shuts its writing side)
//     and when ServeHTTP returns; its parent is WithBaseContext; it carries
//     http.LocalAddrContextKey but not http.ServerContextKey (there is no *http.Server).
//     r.TLS is the connection's TLS state on a listener opened with ListenTLS (shared by the
//     connection's requests, as net/http shares it), nil otherwise; r.RemoteAddr is the peer's
//     address.
//   - The http.ResponseWriter implements http.Flusher, http.Hijacker and the methods
//     http.ResponseController looks for (FlushError, SetReadDeadline, SetWriteDeadline,
//     EnableFullDuplex). A flush before the handler returns switches the response to chunked
//     encoding and sends what was written; Flush blocks while the connection's output is above
//     the reactor's high-water mark (and a response waiting behind an earlier pipelined one
//     blocks once 64 KiB of it is buffered), so a streaming handler is paced by its client. A
//     body that grows past 32 KiB without a declared Content-Length streams the same way.
//     Content-Type is sniffed from the first write when the handler did not set one. 1xx codes
//     other than 101 send an informational response at once (repeatable: 103 Early Hints).
//     Response trailers work as in net/http (a "Trailer" header declared before writing, or
//     http.TrailerPrefix keys). Header fields with invalid names or values (CR, LF, NUL) are
//     dropped, never sent.
//   - Hijack hands the connection to the caller as a net.Conn served by the loop (Read, Write,
//     Close, deadlines, addresses); bytes the client sent after the request are read from it.
//     WriteHeader(101) before Hijack sends the 101 head first. A request whose pipelined
//     successors were already dispatched cannot be hijacked (ErrHijackPipelined): requests
//     with an Upgrade header, CONNECT and unsafe methods are never run in parallel with later
//     ones, so protocol upgrades always can.
//   - Pipelined requests with safe methods (GET, HEAD, OPTIONS, TRACE) run in parallel, up to
//     WithMaxPipeline per connection; any other method, and any request asking for a protocol
//     upgrade, waits until the earlier ones are answered and runs alone (RFC 9112 §9.3.2).
//   - Bad handlers get defined results, and the connection is never left out of step: a panic
//     is recovered (500 and close if nothing was sent yet, else the response is cut short and
//     the connection closed; logged with WithLogger's logger unless it is
//     http.ErrAbortHandler); writes after the client left fail with ErrClientGone; a body the
//     handler never read is discarded (small ones are read before dispatch; a streamed one
//     closes the connection after the response unless it had fully arrived); a handler that
//     hijacks and returns without closing leaves the connection to the net.Conn's holder
//     (open until it, the client or Server.Close closes it). No goroutine outlives its
//     request except a hijacker's own.
//
// The adapted handler may block: only its worker waits, and the pool starts more workers (up
// to WithWorkers) so other requests are not held up. Writes after the client has gone fail
// with ErrClientGone.
//
// Differences from net/http's Server that a client can see, as found by the differential
// suite (TestDifferentialNetHTTP: the same handler under both servers, the same raw requests —
// handwritten ones and the shared conformance corpora — compared field by field):
//   - Framing: a response without Content-Length that the handler does not flush is sent with
//     a Content-Length up to 32 KiB, chunked beyond; net/http switches to chunked after 2 KiB.
//     The decoded body is the same.
//   - 100 Continue: sent by the codec when a head with "Expect: 100-continue" is complete and
//     the body has not arrived; net/http sends it when the handler first reads the body, even
//     one already received.
//   - Empty lines before a request-line are ignored (RFC 9112 §2.2); net/http answers 400.
//   - The codec refuses, with the status its package doc lists, requests net/http accepts:
//     bare LF or CR line ends, obsolete line folding, whitespace before a colon, invalid
//     chunk extensions or sizes, duplicate Content-Length, Content-Length with
//     Transfer-Encoding, targets with raw bytes outside the URI set. For a streamed (chunked)
//     body, a framing error reaches the handler as a failed r.Body read, as in net/http.
//   - Error responses the server generates (400, 408, 413, 431, 503, ...) have the codec's
//     text, not net/http's.
//   - A handler panic before anything was sent gives the client a 500 and a close; net/http
//     closes the connection without a response.
type Adapter struct {
	h nethttp.Handler
}

// Adapt wraps h for NewServer. A nil h means http.DefaultServeMux, as with net/http's Server.
func Adapt(h nethttp.Handler) *Adapter {
	if h == nil {
		h = nethttp.DefaultServeMux
	}
	return &Adapter{h: h}
}

// Handle runs the net/http handler synchronously on the calling goroutine, writing into w.
// NewServer never calls it for an *Adapter it is given (that goes through the worker pool); it
// is for a native handler that delegates some requests to an adapted handler and accepts that
// the delegated handler blocks its loop while it runs. Flush only moves the response to chunked
// encoding; the bytes leave when the loop iteration ends. Hijack is not supported there.
func (a *Adapter) Handle(w *ResponseWriter, r *Request) {
	remote := ""
	var state *tls.ConnectionState
	if cs, ok := w.sink.(*conn); ok {
		if addr := cs.c.RemoteAddr(); addr != nil {
			remote = addr.String()
		}
		state = cs.c.TLS()
	}
	rs := &reqState{}
	rs.ctx.init(context.Background(), nil)
	defer rs.ctx.cancel()
	rs.body.b = r.Body()
	defer rs.body.invalidate()
	hr, err := buildRequest(r, rs, remote, state)
	if err != nil {
		w.SetStatus(StatusBadRequest)
		w.SetClose()
		w.WriteString("400 Bad Request: " + err.Error() + "\n")
		return
	}
	addTrailers(hr, r)
	rw := &adapterRW{w: w, log: zap.NewNop()}
	a.h.ServeHTTP(rw, hr)
	rw.finish(false)
}

// safeMethod reports whether pipelined requests with this method may run in parallel.
func safeMethod(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}

// adapterBufferMax is the body buffered before an adapter response without Content-Length
// switches to streaming (chunked).
const adapterBufferMax = 32 << 10

// behindMax bounds the flushed output of a response waiting behind an earlier pipelined one:
// once that much is buffered its handler's Flush (or Write) blocks until it is first in line.
const behindMax = 64 << 10

// errUnavailable answers requests that arrive after the worker pool stopped.
var errUnavailable = newParseError(StatusServiceUnavailable, "server shutting down")

// job is one adapter request, from the loop to a worker and back. Jobs are kept for reuse by
// their loop (loopState.getJob/putJob). The fields in the first group are written by the loop
// before the batch is submitted and read by the worker; the results are written by the worker
// before it sets fin; the rest belongs to the loop.
type job struct {
	cs                                  *conn
	loop                                *reactor.Loop
	srv                                 *Server
	hr                                  *nethttp.Request
	rs                                  *reqState
	isHead, http10, reqKeep, forceClose bool
	minor                               int
	start                               int64
	bytesIn                             int
	method, path                        []byte // copies for the Observer
	dc                                  DateCache

	w  ResponseWriter
	rw adapterRW

	status    int
	keepAlive bool
	bytesOut  int64
	err       error

	b        *batch   // the batch that runs it, until it leaves the queue (job.leave)
	segs     [][]byte // flushed output waiting for the job to reach the head of the queue
	segBytes int
	done     bool   // the loop saw the response complete (fin), or it is ready
	orphan   bool   // the connection went away: the job is dropped, never reused
	waiting  bool   // the worker waits for ack until the output drains / the job is first
	ready    []byte // a codec-generated response queued in order (no worker)
	hj       *hijackReq
	pipe     *bodyPipe // a streamed request body (set by the loop before submit)

	fin  atomic.Bool   // worker → loop: the handler returned; the response is in w
	segq atomic.Int32  // segments posted by emit that onSegment has not taken yet
	gone atomic.Bool   // the connection closed: worker writes fail
	ack  chan struct{} // loop → worker: a flushed segment was taken

	emitFn func([]byte)
}

// getJob returns a reset job (loop goroutine).
func (ls *loopState) getJob() *job {
	if n := len(ls.jobs); n > 0 {
		j := ls.jobs[n-1]
		ls.jobs[n-1] = nil
		ls.jobs = ls.jobs[:n-1]
		return j
	}
	j := &job{ack: make(chan struct{}, 1)}
	j.emitFn = j.rw.emit
	return j
}

// maxIdleJobs bounds the jobs a loop keeps for reuse.
const maxIdleJobs = 4096

// putJob resets j and keeps it for reuse (loop goroutine). Only a job no worker will touch
// again may be put: a finished one (fin), or one that never ran.
func (ls *loopState) putJob(j *job) {
	j.cs, j.loop, j.hr, j.rs, j.err, j.hj, j.pipe, j.b = nil, nil, nil, nil, nil, nil, nil, nil
	if len(j.segs) > 0 {
		clear(j.segs)
		j.segs = j.segs[:0]
	}
	j.segBytes = 0
	j.done, j.orphan, j.waiting, j.ready = false, false, false, nil
	j.rw.release()
	j.w.shrink(64 << 10)
	if len(j.ack) > 0 {
		<-j.ack // an ack the worker did not wait for (a write deadline passed)
	}
	j.fin.Store(false)
	j.gone.Store(false)
	if len(ls.jobs) < maxIdleJobs {
		ls.jobs = append(ls.jobs, j)
	}
}

// signal hands the worker its ack (at most one is ever outstanding).
func (j *job) signal() {
	select {
	case j.ack <- struct{}{}:
	default:
	}
}

// pooled is the dispatcher of an adapted net/http handler: requests go to the worker pool and
// their responses are written in order as they complete.
type pooled struct {
	s    *Server
	pool *workerPool
}

// adConn is the state a connection needs only sometimes, kept out of conn so an idle
// keep-alive connection stays small: the adapter's queue of requests in order, and a native
// handler's streamed body.
type adConn struct {
	cs           *conn
	prevA, nextA *conn  // loopState.active list
	queue        []*job // requests in order: running, finished, or ready responses
	open         []*job // requests dispatched by the current OnData, submitted at its end
	progress     func() // ad.advanceAfterWork, bound once: what a batch posts to the loop
	remote       string
	local        nethttpAddr
	tls          *tls.ConnectionState // the connection's, shared by its requests as net/http does
	body         *bodyPipe            // the streamed body being received, if any (adapter)
	nb           *nativeBody          // a request body streamed to a native BodyStreamer
	df           deferQueue           // deferred native responses owed (deferred.go)
	held         bool                 // the reactor connection is held (Conn.Hold) while responses are owed
	heldAt       int64                // loop clock when a streamed body was paused (csBodyHeld)
}

// hold marks the connection busy for the reactor while requests are being handled elsewhere:
// its idle and read timeouts (including one passed with WithReactorOptions) do not run,
// Shutdown waits for it, and a peer's EOF closes it only after the last response. One rule
// for "idle" in the reactor and the codec: a connection with a request out is not idle.
func (ad *adConn) hold() {
	if !ad.held {
		ad.held = true
		ad.cs.c.Hold()
	}
}

// release ends hold once nothing is owed.
func (ad *adConn) release() {
	if ad.held {
		ad.held = false
		ad.cs.c.Release()
	}
}

// nethttpAddr is the local address given to handlers through http.LocalAddrContextKey.
type nethttpAddr = interface {
	Network() string
	String() string
}

func (d *pooled) owed(cs *conn) int {
	if cs.ad == nil {
		return 0
	}
	return len(cs.ad.queue)
}

// admit reports whether a request may be dispatched now: not while an unsafe (or upgrading)
// request runs, not an unsafe one while others run, and not beyond WithMaxPipeline.
func (d *pooled) admit(cs *conn, exclusive bool) bool {
	n := len(cs.ad.queue)
	return cs.flags&csBarrier == 0 && !(exclusive && n > 0) && n < d.s.cfg.maxPipeline
}

// exclusiveRequest reports whether req must run alone: an unsafe method (RFC 9112 §9.3.2), or
// a request that may switch protocols (an Upgrade header, CONNECT), after which nothing the
// client sent can be read as HTTP until the handler has decided.
func exclusiveRequest(req *Request) bool {
	if !safeMethod(req.Method()) {
		return true
	}
	_, up := req.Header("Upgrade")
	return up
}

func (d *pooled) serve(cs *conn, out []byte, req *Request, raw []byte, now int64) ([]byte, bool) {
	s := d.s
	ad := cs.ad
	if ad == nil {
		ad = &adConn{cs: cs}
		ad.progress = ad.advanceAfterWork
		if addr := cs.c.RemoteAddr(); addr != nil {
			ad.remote = addr.String()
		}
		if addr := cs.c.LocalAddr(); addr != nil {
			ad.local = addr
		}
		ad.tls = cs.c.TLS()
		cs.ad = ad
	}
	exclusive := exclusiveRequest(req) || req.streaming
	if !d.admit(cs, exclusive) {
		return out, false
	}
	rs := &reqState{}
	rs.ctx.init(s.cfg.baseCtx, ad.local)
	hr, err := buildRequest(req, rs, ad.remote, ad.tls)
	if err != nil {
		// The target passed the parser but not net/url (a bad percent-escape, say).
		rs.ctx.cancel()
		return cs.reject(out, ErrTarget, now), true
	}
	var pipe *bodyPipe
	if req.streaming {
		pipe = newBodyPipe(cs.c.Loop().Post, func() {
			if cs.flags&csClosed == 0 {
				cs.resume()
			}
		})
		pipe.hr = hr
		hr.Body = pipe
		ad.body = pipe
	} else if len(req.Body()) > 0 {
		rs.body.b = append([]byte(nil), req.Body()...)
		addTrailers(hr, req)
	}
	ls := cs.ls
	j := ls.getJob()
	j.pipe = pipe
	j.cs, j.loop, j.srv, j.hr, j.rs = cs, cs.c.Loop(), s, hr, rs
	j.isHead, j.http10, j.reqKeep, j.minor = req.IsHead(), req.minor == 0, req.KeepAlive(), int(req.minor)
	j.forceClose = cs.countRequest(s.cfg.maxRequests) || s.draining.Load()
	j.dc = ls.date
	if !j.reqKeep || j.forceClose {
		cs.flags |= csDone
	}
	if exclusive {
		cs.flags |= csBarrier
	}
	j.start, j.bytesIn = cs.reqStart, len(raw)
	if s.cfg.observer != nil {
		j.method = append(j.method[:0], req.Method()...)
		j.path = append(j.path[:0], req.Path()...)
	}
	if cs.flags&csActive == 0 {
		cs.flags |= csActive
		ls.addActive(cs)
	}
	ad.hold()
	ad.queue = append(ad.queue, j)
	// The requests of this OnData go to the pool together, at its end (dispatch).
	ad.open = append(ad.open, j)
	cs.reqStart = now
	return out, true
}

// dispatch submits the requests serve took during this OnData as one batch (see batch.go):
// one hand-off to a worker however many pipelined requests the read brought.
func (d *pooled) dispatch(cs *conn) {
	ad := cs.ad
	if ad == nil || len(ad.open) == 0 {
		return
	}
	b := newBatch()
	b.jobs = append(b.jobs, ad.open...)
	clear(ad.open)
	ad.open = ad.open[:0]
	b.loop, b.notify, b.left = cs.c.Loop(), ad.progress, len(b.jobs)
	b.refs.Store(2) // the loop's, and the submission's
	for _, j := range b.jobs {
		j.b = b
	}
	ls := cs.ls
	handed, err := d.pool.submit(b, ls)
	if handed {
		ls.yieldSoon()
	}
	if err != nil {
		b.refs.Add(-1) // never the last: the loop holds one
		b.jobs[0].refuse(err)
	}
}

// refuse answers j, the first request of a batch the pool did not take, with err's error
// response (the pool is stopped or its queue full) and ends the connection after it; the
// batch's other requests are dropped with it. Loop goroutine.
func (j *job) refuse(err error) {
	cs := j.cs
	j.rs.ctx.cancel()
	j.ready = cs.ls.appendErr(nil, err, cs.ls.date.Bytes())
	j.err, j.status, j.done = err, statusFor(err), true
	j.bytesOut = int64(len(j.ready))
	cs.flags |= csDone
	cs.ad.advance()
}

func (d *pooled) queueReady(cs *conn, resp []byte, err error, now int64) {
	ad := cs.ad
	j := cs.ls.getJob()
	j.cs = cs
	j.ready = append([]byte(nil), resp...)
	j.err, j.status, j.done = err, statusFor(err), true
	j.start = cs.reqStart
	j.bytesOut = int64(len(resp))
	ad.queue = append(ad.queue, j)
}

// readEOF keeps a half-closed connection open while responses are owed. A read EOF cannot
// tell a half-close from a client that went away, so it does what net/http does: the
// requests' contexts are cancelled (handlers watching them stop early) but whatever they write
// is still delivered; a gone client then resets the connection and it closes.
func (d *pooled) readEOF(cs *conn) bool {
	if d.owed(cs) == 0 {
		return false
	}
	cs.flags |= csDone | csEOF
	if ad := cs.ad; ad.body != nil {
		ad.body.finish(io.ErrUnexpectedEOF, nil) // the client stopped sending mid-body
		ad.body = nil
	}
	for _, j := range cs.ad.queue {
		if j.rs != nil {
			j.rs.ctx.cancel()
		}
	}
	return true
}

// writable releases a streaming worker that waits for the output to drain.
func (d *pooled) writable(cs *conn) {
	if ad := cs.ad; ad != nil && len(ad.queue) > 0 {
		if j := ad.queue[0]; j.waiting {
			j.waiting = false
			j.signal()
		}
	}
}

func (d *pooled) closed(cs *conn) {
	ad := cs.ad
	if ad == nil {
		return
	}
	if ad.body != nil {
		ad.body.finish(io.ErrUnexpectedEOF, nil)
		ad.body = nil
	}
	ad.dropQueue()
	if cs.flags&csActive != 0 {
		cs.flags &^= csActive
		cs.ls.removeActive(cs)
	}
}

// advanceAfterWork is what a batch posts to the loop when requests of the connection finished
// (ad.progress). It may run after the connection closed or changed protocols.
func (ad *adConn) advanceAfterWork() {
	if ad.cs.flags&(csClosed|csUpgraded) != 0 {
		return
	}
	ad.advance()
}

// onSegment runs on the loop with output the handler flushed. The worker waits for the ack;
// it gets it at once unless that would let the output grow without bound: above the
// high-water mark for the response being sent, above behindMax for one waiting its turn.
func (j *job) onSegment(seg []byte) {
	j.segq.Add(-1)
	cs := j.cs
	if j.orphan || cs == nil || cs.flags&csClosed != 0 {
		j.signal()
		return
	}
	ad := cs.ad
	if ad.queue[0] != j {
		j.segs = append(j.segs, seg) // an earlier response is still being produced
		j.segBytes += len(seg)
		if j.segBytes >= behindMax {
			j.waiting = true // acked by advance once this job is first in line
			return
		}
		j.signal()
		return
	}
	cs.write(seg, cs.ls.nowNs())
	if cs.c.OutputFull() {
		j.waiting = true // acked from OnWritable once the client has read enough
		return
	}
	j.signal()
}

// advance writes every finished response at the head of the queue, in order, and the
// buffered output of the first unfinished one.
func (ad *adConn) advance() {
	cs := ad.cs
	ls := cs.ls
	now := ls.nowNs()
	for len(ad.queue) > 0 && cs.flags&csClosed == 0 {
		j := ad.queue[0]
		for i, seg := range j.segs {
			cs.write(seg, now)
			j.segs[i] = nil
		}
		j.segs, j.segBytes = j.segs[:0], 0
		if j.hj != nil {
			ad.completeHijack(j)
			return
		}
		if !j.done {
			// A segment still on its way (emit gave up waiting for its ack) goes first: the
			// worker's announcement that follows it brings the loop back here.
			if !j.fin.Load() || j.segq.Load() != 0 {
				if j.waiting && !cs.c.OutputFull() {
					j.waiting = false
					j.signal()
				}
				break
			}
			j.done = true
		}
		final := j.ready
		if final == nil {
			final = j.w.Bytes()
		}
		if len(final) > 0 {
			cs.write(final, now)
		}
		n := copy(ad.queue, ad.queue[1:])
		ad.queue[n] = nil
		ad.queue = ad.queue[:n]
		ls.requests++
		if j.ready != nil {
			ls.rejected++
		}
		cs.lastActive = now
		keep := j.keepAlive && j.ready == nil
		if obs := cs.srv().cfg.observer; obs != nil {
			info := &ls.info
			*info = RequestInfo{
				Method: j.method, Path: j.path, ProtoMinor: j.minor, Status: j.status,
				BytesIn: int64(j.bytesIn), BytesOut: j.bytesOut, Start: ls.timeAt(j.start),
				Duration: time.Duration(now - j.start), Err: j.err, KeepAlive: keep, conn: cs.c,
			}
			if j.ready != nil {
				info.Method, info.Path, info.BytesIn = nil, nil, 0
			}
			obs(info)
			info.conn = nil
		}
		j.leave()
		ls.putJob(j)
		if !keep {
			cs.flags |= csDone
			ad.dropQueue()
			cs.c.Close()
			break
		}
	}
	if len(ad.queue) == 0 {
		cs.flags &^= csBarrier
		if cs.flags&csActive != 0 {
			cs.flags &^= csActive
			ls.removeActive(cs)
		}
		if cs.flags&csDone != 0 && cs.flags&csClosed == 0 {
			cs.c.Close()
		}
		ad.release()
	}
	if cs.flags&(csDone|csBarrier) == 0 && len(ad.queue) < cs.srv().cfg.maxPipeline {
		// Kept input (further pipelined requests) is handed back by the reactor.
		cs.resume()
	}
	ls.publish()
	cs.arm()
}

// dropQueue abandons the queued requests (the connection closes): their contexts are
// cancelled, running ones are orphaned and released when their worker finishes.
func (ad *adConn) dropQueue() {
	for i, j := range ad.queue {
		ad.queue[i] = nil
		j.gone.Store(true)
		if j.rs != nil {
			j.rs.ctx.cancel()
		}
		if j.hj != nil {
			j.hj.reply <- hijackReply{err: ErrClientGone}
			j.hj = nil
		}
		j.leave()
		if j.done || j.fin.Load() && j.segq.Load() == 0 {
			ad.cs.ls.putJob(j)
			continue
		}
		// Still running (or never started: the pool refused its batch, or the batch is
		// abandoned with the connection): the job is dropped, not reused.
		j.orphan = true
		j.waiting = false
		j.signal()
	}
	ad.queue = ad.queue[:0]
}

// run handles the job on a worker goroutine and publishes the result with fin (the batch
// announces it to the loop). It reports false when the handler hijacked the connection: the
// loop forgot the job then, and nothing of it is published.
func (j *job) run(wk *worker) bool {
	s := j.srv
	w := &j.w
	w.SetDateCache(&j.dc)
	w.server = s.cfg.serverName
	w.SetFlushHook(nil)
	w.beginFacts(w.out[:0], j.isHead, j.http10, j.reqKeep && !j.forceClose)
	if j.forceClose {
		w.SetClose()
	}
	rw := &j.rw
	rw.reset(j, w, s.cfg.logger)
	rw.wk = wk
	w.SetFlushHook(j.emitFn)
	panicked := s.callNetHTTP(rw, j.hr)
	if pipe := j.pipe; pipe != nil {
		// The rest of a body the handler did not read to its end is discarded by the loop
		// as it arrives; the connection closes after this response unless the body is
		// complete already (then the next request is found where it starts).
		if !pipe.complete() {
			w.SetClose()
		}
		pipe.Close()
	}
	rw.finish(panicked)
	j.rs.body.invalidate()
	j.rs.ctx.cancel()
	if rw.hijacked {
		return false
	}
	j.status = w.Status()
	j.keepAlive = w.KeepAlive()
	j.bytesOut = w.bytesOut()
	// From here the job belongs to the loop again.
	j.fin.Store(true)
	return true
}

// callNetHTTP runs the handler and reports a recovered panic.
func (s *Server) callNetHTTP(rw *adapterRW, r *nethttp.Request) (panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			panicked = true
			if v != nethttp.ErrAbortHandler {
				s.cfg.logger.Error("http handler panic", zap.Any("panic", v),
					zap.String("method", r.Method), zap.String("uri", r.RequestURI), zap.StackSkip("stack", 2))
			}
		}
	}()
	s.ad.h.ServeHTTP(rw, r)
	return false
}
