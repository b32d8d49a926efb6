package http

import (
	"context"
	"fmt"
	"io"
	nethttp "net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/reactord/reactord/reactor"
)

// Adapter runs a net/http Handler (a ServeMux, a router, any http.Handler) unchanged on the
// reactor. Given to NewServer, it makes the server dispatch every request to a worker pool
// (WithWorkers): the loop only frames the request and copies its bytes, a worker builds the
// *http.Request and runs the handler, and the response goes back to the loop, which writes
// responses strictly in request order, even when pipelined requests finish out of order.
//
// What handlers see, compared with net/http's server:
//   - r.Body is an io.ReadCloser over the complete body (the codec reads a whole request,
//     within Limits.MaxBodyBytes, before dispatching it); reading it after ServeHTTP returned
//     fails. r.ContentLength is -1 and r.TransferEncoding ["chunked"] for a chunked body, whose
//     trailers are already in r.Trailer. "Expect: 100-continue" is answered by the codec.
//   - r.Context() is cancelled when the client connection closes and when ServeHTTP returns;
//     its parent is WithBaseContext. r.TLS is nil; r.RemoteAddr is the peer's address.
//   - The http.ResponseWriter implements http.Flusher (and FlushError, for
//     http.ResponseController): a flush before the handler returns switches the response to
//     chunked encoding and sends what was written; Flush blocks while the connection's output
//     is above the reactor's high-water mark, so a streaming handler is paced by its client.
//     A body that grows past 32 KiB without a declared Content-Length streams the same way.
//     Content-Type is sniffed from the first write when the handler did not set one.
//     Hijacker, response trailers and 101 Switching Protocols are not supported. Header fields
//     with invalid names or values (CR, LF, NUL) are dropped, never sent.
//   - Pipelined requests with safe methods (GET, HEAD, OPTIONS, TRACE) run in parallel, up to
//     WithMaxPipeline per connection; any other method waits until the earlier ones are
//     answered and runs alone (RFC 9112 §9.3.2).
//   - A panic is recovered: 500 and close if nothing was sent yet, else the connection is
//     closed; it is logged with WithLogger's logger unless it is http.ErrAbortHandler.
//
// The adapted handler may block: only its worker waits. Writes after the client has gone fail
// with ErrClientGone.
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
// encoding; the bytes leave when the loop iteration ends.
func (a *Adapter) Handle(w *ResponseWriter, r *Request) {
	remote := ""
	if cs, ok := w.sink.(*conn); ok {
		if addr := cs.c.RemoteAddr(); addr != nil {
			remote = addr.String()
		}
	}
	rw := &adapterRW{w: w, log: zap.NewNop()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	body := &bodyReader{b: r.Body()}
	defer body.invalidate()
	hr, err := buildRequest(ctx, r, remote, body)
	if err != nil {
		w.SetStatus(StatusBadRequest)
		w.SetClose()
		w.WriteString("400 Bad Request: " + err.Error() + "\n")
		return
	}
	a.h.ServeHTTP(rw, hr)
	if !rw.wroteHeader {
		rw.WriteHeader(nethttp.StatusOK)
	}
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

// errUnavailable answers requests that arrive after the worker pool stopped.
var errUnavailable = newParseError(StatusServiceUnavailable, "server shutting down")

// job is one adapter request, from the loop to a worker and back. Jobs are pooled; the fields
// above the line are written by the loop before submit and read by the worker; the results
// are written by the worker before it posts finalFn; the rest belongs to the loop.
type job struct {
	cs                                  *conn
	loop                                *reactor.Loop
	ctx                                 context.Context
	remote                              string
	raw                                 []byte // the request's bytes, parsed again on the worker
	isHead, http10, reqKeep, forceClose bool
	minor                               int
	start                               int64
	bytesIn                             int
	method, path                        []byte // copies for the Observer

	w    ResponseWriter
	rw   adapterRW
	dc   DateCache
	body *bodyReader

	status    int
	keepAlive bool
	bytesOut  int64
	err       error

	segs    [][]byte // flushed output waiting for the job to reach the head of the queue
	done    bool     // the worker finished; its last output is w.Bytes() (or ready)
	orphan  bool     // the connection went away; release when done
	waiting bool     // the worker waits for ack until the output drains
	ready   []byte   // a codec-generated response queued in order (no worker)

	gone    atomic.Bool   // the connection closed: worker writes fail
	ack     chan struct{} // loop → worker: a flushed segment was taken
	finalFn func()
	emitFn  func([]byte)
}

var jobPool sync.Pool

func getJob() *job {
	j, _ := jobPool.Get().(*job)
	if j == nil {
		j = &job{ack: make(chan struct{}, 1)}
		j.finalFn = j.onFinal
		j.emitFn = j.rw.emit
	}
	j.gone.Store(false)
	return j
}

func releaseJob(j *job) {
	j.cs, j.loop, j.ctx, j.body, j.err = nil, nil, nil, nil, nil
	j.segs = j.segs[:0]
	j.done, j.orphan, j.waiting, j.ready = false, false, false, nil
	j.rw.r = nil
	if cap(j.raw) > 64<<10 {
		j.raw = nil
	}
	if cap(j.w.out) > 64<<10 {
		j.w.out = nil
	}
	jobPool.Put(j)
}

// signal hands the worker its ack (at most one is ever outstanding).
func (j *job) signal() {
	select {
	case j.ack <- struct{}{}:
	default:
	}
}

// adConn is a connection's adapter state: the queue of its requests in order.
type adConn struct {
	cs           *conn
	prevA, nextA *conn // loopState.active list
	queue        []*job
	ctx          context.Context
	cancel       context.CancelFunc
	remote       string
}

// dispatch sends a request to the worker pool. It reports false, consuming nothing, when the
// request must wait for earlier ones (an unsafe method, or the pipeline is full).
func (cs *conn) dispatch(req *Request, raw []byte, now int64) bool {
	s := cs.srv()
	ad := cs.ad
	if ad == nil {
		ad = &adConn{cs: cs}
		ad.ctx, ad.cancel = context.WithCancel(s.cfg.baseCtx)
		if addr := cs.c.RemoteAddr(); addr != nil {
			ad.remote = addr.String()
		}
		cs.ad = ad
	}
	safe := safeMethod(req.Method())
	if cs.flags&csBarrier != 0 || !safe && len(ad.queue) > 0 || len(ad.queue) >= s.cfg.maxPipeline {
		cs.pause()
		return false
	}
	j := getJob()
	j.cs, j.loop, j.ctx, j.remote = cs, cs.c.Loop(), ad.ctx, ad.remote
	j.raw = append(j.raw[:0], raw...)
	j.isHead, j.http10, j.reqKeep, j.minor = req.IsHead(), req.minor == 0, req.KeepAlive(), int(req.minor)
	j.forceClose = cs.countRequest(s.cfg.maxRequests) || s.draining.Load()
	if !j.reqKeep || j.forceClose {
		cs.flags |= csDone
	}
	if !safe {
		cs.flags |= csBarrier
	}
	j.start, j.bytesIn = cs.reqStart, len(raw)
	if s.cfg.observer != nil {
		j.method = append(j.method[:0], req.Method()...)
		j.path = append(j.path[:0], req.Path()...)
	}
	if cs.flags&csActive == 0 {
		cs.flags |= csActive
		cs.ls().addActive(cs)
	}
	ad.queue = append(ad.queue, j)
	if !s.pool.submit(j) {
		j.ready = s.cfg.appendError(nil, errUnavailable, cs.ls().date.Bytes(), nil)
		j.err, j.status, j.done = errUnavailable, errUnavailable.Status, true
		cs.flags |= csDone
		ad.advance()
	}
	cs.reqStart = now
	return true
}

// enqueueReady queues a codec-generated response (copied) behind the requests in flight.
func (ad *adConn) enqueueReady(resp []byte, err error, now int64) {
	j := getJob()
	j.cs = ad.cs
	j.ready = append([]byte(nil), resp...)
	j.err, j.status, j.done = err, statusFor(err), true
	j.start = ad.cs.reqStart
	j.bytesOut = int64(len(resp))
	ad.queue = append(ad.queue, j)
}

// maybePause stops reading the connection while its requests would pile up: the pipeline is
// full, an unsafe request runs, the connection is closing, the pool is saturated, or the
// server is draining.
func (ad *adConn) maybePause() {
	cs := ad.cs
	if len(ad.queue) == 0 {
		return
	}
	if len(ad.queue) >= cs.srv().cfg.maxPipeline || cs.flags&(csBarrier|csDone) != 0 ||
		cs.srv().pool.saturated() || cs.srv().draining.Load() {
		cs.pause()
	}
}

// onFinal runs on the loop when the worker has finished the job.
func (j *job) onFinal() {
	j.done = true
	cs := j.cs
	if j.orphan || cs == nil || cs.flags&csClosed != 0 || cs.ad == nil {
		releaseJob(j)
		return
	}
	cs.ad.advance()
}

// onSegment runs on the loop with output the handler flushed.
func (j *job) onSegment(seg []byte) {
	cs := j.cs
	if j.orphan || cs == nil || cs.flags&csClosed != 0 {
		j.signal()
		return
	}
	ad := cs.ad
	if ad.queue[0] != j {
		j.segs = append(j.segs, seg) // an earlier response is still being produced
		j.signal()
		return
	}
	cs.write(seg, cs.ls().nowNs())
	if cs.c.OutputFull() {
		j.waiting = true // acked from OnWritable once the client has read enough
		return
	}
	j.signal()
}

// onWritable releases a streaming worker that waits for the output to drain.
func (ad *adConn) onWritable() {
	if len(ad.queue) > 0 && ad.queue[0].waiting {
		ad.queue[0].waiting = false
		ad.queue[0].signal()
	}
}

// advance writes every finished response at the head of the queue, in order.
func (ad *adConn) advance() {
	cs := ad.cs
	ls := cs.ls()
	now := ls.nowNs()
	for len(ad.queue) > 0 {
		j := ad.queue[0]
		for i, seg := range j.segs {
			cs.write(seg, now)
			j.segs[i] = nil
		}
		j.segs = j.segs[:0]
		if !j.done {
			break
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
		releaseJob(j)
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
	}
	if cs.flags&(csDone|csBarrier) == 0 && len(ad.queue) < cs.srv().cfg.maxPipeline {
		// Kept input (further pipelined requests) is handed back by the reactor.
		cs.resume()
	}
	ls.publish()
	cs.arm()
}

// dropQueue abandons the queued requests (the connection closes): running ones are orphaned
// and released when their worker finishes.
func (ad *adConn) dropQueue() {
	for i, j := range ad.queue {
		ad.queue[i] = nil
		j.gone.Store(true)
		if j.done {
			releaseJob(j)
			continue
		}
		j.orphan = true
		if j.waiting {
			j.waiting = false
		}
		j.signal()
	}
	ad.queue = ad.queue[:0]
}

func (ad *adConn) onClose() {
	ad.cancel()
	ad.dropQueue()
	cs := ad.cs
	if cs.flags&csActive != 0 {
		cs.flags &^= csActive
		cs.ls().removeActive(cs)
	}
}

// worker is one goroutine of the pool, with its own parser.
type worker struct {
	pool *workerPool
	p    *Parser
}

// run handles one job on the worker goroutine and posts the result to the loop.
func (wk *worker) run(j *job) {
	s := wk.pool.srv
	if wk.p == nil {
		wk.p = &Parser{lim: s.cfg.limits.withDefaults()}
		wk.p.chunk.init(wk.p.lim)
	}
	p := wk.p
	p.Reset()
	j.dc.Update(time.Now())
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
	rw.srv = s
	_, req, err := p.Parse(j.raw)
	if err == nil && req == nil {
		err = ErrRequestLine // cannot happen: the loop framed these bytes as one request
	}
	if err == nil {
		ctx, cancel := context.WithCancel(j.ctx)
		j.body = &bodyReader{b: req.Body()}
		var hr *nethttp.Request
		hr, err = buildRequest(ctx, req, j.remote, j.body)
		if err == nil {
			rw.r = hr
			w.SetFlushHook(j.emitFn)
			rw.finish(s.callNetHTTP(rw, hr))
		}
		j.body.invalidate()
		cancel()
	}
	if err != nil {
		// The target passed the parser but not net/url (a bad percent-escape, say).
		w.out = s.cfg.appendError(w.out[:w.base], ErrTarget, j.dc.Bytes(), nil)
		w.status, w.keepAlive, w.finished = StatusBadRequest, false, true
		j.err = ErrTarget
	}
	j.status = w.status
	j.keepAlive = w.KeepAlive()
	j.bytesOut = w.bytesOut()
	w.SetFlushHook(nil)
	// After this Post the job belongs to the loop again. If the loop is gone, so is the
	// connection: nothing is left to do.
	j.loop.Post(j.finalFn)
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

// buildRequest makes the *http.Request for req; everything is copied except the body, which
// body reads from the request's buffer.
func buildRequest(ctx context.Context, req *Request, remote string, body *bodyReader) (*nethttp.Request, error) {
	method := req.MethodString()
	target := string(req.Target())
	var u *url.URL
	if method == "CONNECT" && !strings.HasPrefix(target, "/") {
		u = &url.URL{Host: target}
	} else {
		var err error
		if u, err = url.ParseRequestURI(target); err != nil {
			return nil, err
		}
	}
	proto := "HTTP/1.1"
	if req.minor == 0 {
		proto = "HTTP/1.0"
	}
	h := make(nethttp.Header, req.NumHeaders())
	for i := 0; i < req.NumHeaders(); i++ {
		name, value := req.HeaderAt(i)
		key := nethttp.CanonicalHeaderKey(string(name))
		if key == "Host" {
			continue // net/http keeps it in r.Host only
		}
		h[key] = append(h[key], string(value))
	}
	r := &nethttp.Request{
		Method:     method,
		URL:        u,
		Proto:      proto,
		ProtoMajor: 1,
		ProtoMinor: int(req.minor),
		Header:     h,
		Host:       string(req.Host()),
		RemoteAddr: remote,
		RequestURI: target,
		Close:      !req.KeepAlive(),
	}
	switch {
	case req.Chunked():
		r.ContentLength = -1
		r.TransferEncoding = []string{"chunked"}
		r.Body = body
	case len(body.b) == 0:
		r.Body = nethttp.NoBody
	default:
		r.ContentLength = int64(len(body.b))
		r.Body = body
	}
	if n := req.NumTrailers(); n > 0 {
		r.Trailer = make(nethttp.Header, n)
		for i := 0; i < n; i++ {
			name, value := req.TrailerAt(i)
			key := nethttp.CanonicalHeaderKey(string(name))
			r.Trailer[key] = append(r.Trailer[key], string(value))
		}
	}
	return r.WithContext(ctx), nil
}

// bodyReader reads a request body that lives in the connection's (or worker's) buffers; it
// stops working once the handler has returned, since the buffer is then reused.
type bodyReader struct {
	b    []byte
	off  int
	dead atomic.Bool
}

// errBodyAfterHandler is returned by reads of a body after its handler returned.
var errBodyAfterHandler = fmt.Errorf("http: invalid Read on a request body after its handler returned")

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.dead.Load() {
		return 0, errBodyAfterHandler
	}
	if b.off >= len(b.b) {
		return 0, io.EOF
	}
	n := copy(p, b.b[b.off:])
	b.off += n
	return n, nil
}

// Close marks the body consumed; further reads return io.EOF.
func (b *bodyReader) Close() error {
	b.off = len(b.b)
	return nil
}

func (b *bodyReader) invalidate() {
	b.dead.Store(true)
}

// adapterRW is the http.ResponseWriter given to net/http handlers. It serializes into a codec
// ResponseWriter: the job's own on a worker (output handed to the loop on Flush and at the end),
// or the loop's in Adapter.Handle.
type adapterRW struct {
	j           *job    // nil in Adapter.Handle
	srv         *Server // nil in Adapter.Handle
	w           *ResponseWriter
	r           *nethttp.Request
	log         *zap.Logger
	hdr         nethttp.Header
	keys        []string
	wroteHeader bool
	sniff       bool
	status      int
	err         error
}

func (rw *adapterRW) reset(j *job, w *ResponseWriter, log *zap.Logger) {
	hdr, keys := rw.hdr, rw.keys[:0]
	clear(hdr)
	*rw = adapterRW{j: j, w: w, log: log, hdr: hdr, keys: keys}
}

// Header returns the header map the response will carry (http.ResponseWriter).
func (rw *adapterRW) Header() nethttp.Header {
	if rw.hdr == nil {
		rw.hdr = make(nethttp.Header)
	}
	return rw.hdr
}

// WriteHeader sends the status and the header map as it is now (http.ResponseWriter). 1xx
// codes other than 101 send an informational response at once; later calls are ignored.
func (rw *adapterRW) WriteHeader(code int) {
	if rw.wroteHeader {
		rw.log.Debug("http: superfluous WriteHeader call", zap.Int("code", code))
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code)) // as net/http does
	}
	w := rw.w
	if code < 200 {
		if code == StatusSwitchingProtocols {
			rw.log.Debug("http: 101 Switching Protocols is not supported; ignored")
			return
		}
		rw.copyHeader()
		if err := w.WriteInformational(code); err == nil {
			w.hook()
		}
		return
	}
	rw.wroteHeader, rw.status = true, code
	w.SetStatus(code)
	rw.copyHeader()
	_, hasType := rw.hdr["Content-Type"]
	rw.sniff = !hasType && !bodyless(code) && len(rw.hdr["Transfer-Encoding"]) == 0
}

// copyHeader replaces the codec writer's header lines with the map's, in sorted order as
// net/http sends them. Fields the codec refuses (invalid bytes, managed fields) are dropped.
func (rw *adapterRW) copyHeader() {
	w := rw.w
	w.hdr = w.hdr[:0]
	w.userDate, w.userSrv = false, false
	rw.keys = rw.keys[:0]
	for k := range rw.hdr {
		rw.keys = append(rw.keys, k)
	}
	slices.Sort(rw.keys)
	for _, k := range rw.keys {
		if k == "Trailer" || strings.HasPrefix(k, nethttp.TrailerPrefix) {
			continue
		}
		for _, v := range rw.hdr[k] {
			if err := w.Add(k, v); err != nil {
				rw.log.Debug("http: response header dropped", zap.String("name", k), zap.Error(err))
			}
		}
	}
}

// Write writes body bytes (http.ResponseWriter).
func (rw *adapterRW) Write(p []byte) (int, error) { return adapterWrite(rw, p) }

// WriteString writes body bytes without converting s (io.StringWriter).
func (rw *adapterRW) WriteString(s string) (int, error) { return adapterWrite(rw, s) }

func adapterWrite[V string | []byte](rw *adapterRW, p V) (int, error) {
	if rw.err != nil {
		return 0, rw.err
	}
	if rw.j != nil && rw.j.gone.Load() {
		return 0, ErrClientGone
	}
	if !rw.wroteHeader {
		rw.WriteHeader(nethttp.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if bodyless(rw.status) {
		return 0, nethttp.ErrBodyNotAllowed
	}
	w := rw.w
	if rw.sniff {
		rw.sniff = false
		w.Set("Content-Type", nethttp.DetectContentType([]byte(p[:min(len(p), 512)])))
	}
	n, err := writeBody(w, p)
	switch {
	case err == ErrContentLengthMismatch:
		return n, nethttp.ErrContentLength
	case err != nil:
		return n, err
	}
	if rw.j != nil && !w.committed && len(w.pending) > adapterBufferMax {
		rw.closeIfDraining()
		w.Flush()
	}
	if rw.err != nil {
		return n, rw.err
	}
	return n, nil
}

// Flush sends what was written so far (http.Flusher).
func (rw *adapterRW) Flush() { rw.FlushError() }

// FlushError is Flush reporting ErrClientGone once the client has gone (used by
// http.ResponseController).
func (rw *adapterRW) FlushError() error {
	if rw.err != nil {
		return rw.err
	}
	if !rw.wroteHeader {
		rw.WriteHeader(nethttp.StatusOK)
	}
	rw.closeIfDraining()
	if err := rw.w.Flush(); err != nil {
		return err
	}
	return rw.err
}

// emit is the job writer's flush hook, on the worker: hand a copy of out to the loop and wait
// until the loop has taken it (and, for the response being sent, until the output is below
// the high-water mark).
func (rw *adapterRW) emit(out []byte) {
	j := rw.j
	if j == nil || rw.err != nil {
		return
	}
	if j.gone.Load() {
		rw.err = ErrClientGone
		return
	}
	seg := append([]byte(nil), out...)
	if err := j.loop.Post(func() { j.onSegment(seg) }); err != nil {
		rw.err = ErrClientGone
		return
	}
	<-j.ack
	if j.gone.Load() {
		rw.err = ErrClientGone
	}
}

// finish completes the response after the handler returned.
func (rw *adapterRW) finish(panicked bool) {
	w := rw.w
	w.SetFlushHook(nil)
	if panicked {
		w.out = w.out[:w.base]
		if w.handed == 0 {
			w.out = rw.srv.cfg.appendError(w.out, ErrHandlerPanic, rw.j.dc.Bytes(), nil)
			w.status = StatusInternalServerError
		}
		w.keepAlive, w.finished = false, true
		rw.j.err = ErrHandlerPanic
		return
	}
	if !rw.wroteHeader {
		rw.WriteHeader(nethttp.StatusOK)
	}
	rw.closeIfDraining()
	w.Finish()
}

// closeIfDraining makes a response whose head is not yet written the connection's last when
// the server is shutting down.
func (rw *adapterRW) closeIfDraining() {
	if rw.srv != nil && !rw.w.committed && rw.srv.draining.Load() {
		rw.w.SetClose()
	}
}
