package proxy

import (
	"errors"
	"net/netip"
	"sync"
	"time"

	codec "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/reactor"
)

// Responder is the client side of one forwarded request: a response the HTTP server lets the
// proxy finish later, on the loop (codec/http's *Deferred). Every method runs on the loop
// goroutine that read the request.
type Responder interface {
	SetStatus(code int) error
	// AddField appends a response header field; name and value come from a parsed upstream
	// response (already valid) and are copied.
	AddField(name, value []byte) error
	SetContentLength(n int64) error
	Write(p []byte) (int, error)
	// Flush sends what is buffered: the head and the body so far (chunked, for a body of
	// unknown length).
	Flush() error
	Finish() error
	// Abort ends a response that cannot be completed: a 502 if nothing was sent, else the
	// client's connection closes, so the client sees a cut message rather than a wrong one.
	Abort()
	// SetClose makes the response the last on the client's connection.
	SetClose() error
	// PauseBody stops reading the client's streamed request body until ResumeBody (or the
	// end of the response): the upstream does not take it as fast as it comes.
	PauseBody()
	ResumeBody()
	// OutputFull reports whether the client's side is full: the proxy stops reading the
	// upstream until it is told the output drained.
	OutputFull() bool
	// Upgrade answers "101 Switching Protocols" with the fields added so far and hands the
	// client's connection to h.
	Upgrade(h reactor.Handler) error
	// Loop is the loop the request runs on.
	Loop() *reactor.Loop
	// Conn is the client's connection (identity only: requests of one connection's
	// pipelined batch share an upstream connection); nil when unknown.
	Conn() *reactor.Conn
}

// Exchange is one request being forwarded, from the client's request to the end of the
// upstream's response. It is the codec's DeferredHandler for the client side and the
// client's ResponseHandler for the upstream side, and lives until both sides are done.
type Exchange struct {
	p       *Proxy
	g       *Group
	u       *Upstream
	resp    Responder
	x       *codec.Exchange
	req     []byte // the request as forwarded, for a second upstream after a connect error
	ip      []byte // the client's address, for X-Forwarded-For
	start   time.Time
	upTime  time.Duration // until the upstream's response ended
	tried   bool          // sent to a second upstream already
	head    bool          // the response head went to the client
	chunked bool          // the response body is written in pieces of unknown total length
	status  int           // the upstream's status, 0 if none came
	tunnel  *tunnel
	done    bool   // the upstream side is over (response ended, failed or abandoned)
	pooled  bool   // from exchanges: back there once both sides are over
	ended   bool   // the client side is over (OnDeferredEnd)
	gen     uint32 // incremented on release: tells a reused exchange from the one remembered
	slot    *batch // the loop's batch slot that remembers this exchange, if one does

	// A request body streamed from the client as it arrives (body.go).
	body        bodyState
	bodyChunked bool  // re-framed chunked (the client sent chunked): length unknown
	bodyHeld    bool  // the client's body is paused until the upstream's output drains
	bodyOut     int64 // body bytes handed to the upstream connection, framing included
	closeAfter  bool  // the response closes the client's connection (the server is retiring)
}

// batch remembers, per loop, the last request forwarded and its client connection: the next
// request of the same connection's pipelined batch follows it on the same upstream connection
// (Exchange.SendNext), so a batch leaves in one write and its answers come back in one read.
type batch struct {
	conn *reactor.Conn
	e    *Exchange
	gen  uint32
	_    [40]byte // one cache line per loop
}

var exchanges = sync.Pool{New: func() any { return new(Exchange) }}

// release returns a pooled exchange once both its sides are over.
func (e *Exchange) release() {
	if !e.pooled || !e.done || !e.ended || e.body == bodyOpen || e.tunnel != nil && !e.tunnel.finished() {
		return
	}
	// The pool is shared by every loop: an exchange put back here may be taken and filled by
	// another loop's goroutine at once, so its loop's batch slot must stop pointing at it
	// first (release runs on that loop, the only one that reads the slot).
	if b := e.slot; b != nil && b.e == e {
		b.conn, b.e = nil, nil
	}
	req, ip := e.req[:0], e.ip[:0]
	if cap(req) > 64<<10 {
		req = nil
	}
	*e = Exchange{req: req, ip: ip, gen: e.gen + 1}
	exchanges.Put(e)
}

// Upstream returns the upstream the request went to (the last one tried); "" if none.
// For the access log: valid during the server's Observer call.
func (e *Exchange) Upstream() string {
	if e.u == nil {
		return ""
	}
	return e.u.Name
}

// UpstreamStatus returns the status of the upstream's response, 0 when none came.
func (e *Exchange) UpstreamStatus() int { return e.status }

// UpstreamTime returns the time from sending the request to the end of the upstream's
// response (or its failure).
func (e *Exchange) UpstreamTime() time.Duration { return e.upTime }

// Handle forwards r through g, answering with a deferred response (codec/http's
// ResponseWriter.Defer): the native handler returns at once and the response is written on
// the loop as the upstream's arrives. No allocation in the steady state.
func (p *Proxy) Handle(w *codec.ResponseWriter, r *codec.Request, g *Group) {
	e := exchanges.Get().(*Exchange)
	e.pooled = true
	d, err := w.Defer(e)
	if err != nil {
		// A writer that cannot defer (not a Server connection): answer now.
		e.pooled = false
		w.SetStatus(codec.StatusBadGateway)
		w.WriteString("502 Bad Gateway\n")
		return
	}
	d.SetTag(e)
	e.ip = appendIP(e.ip[:0], d.RemoteAddrPort())
	p.start(e, d, r, g)
}

// appendIP appends the address of a TCP peer without allocating; other peers add nothing.
func appendIP(dst []byte, a netip.AddrPort) []byte {
	if !a.IsValid() {
		return dst // a Unix-socket client: no address to forward
	}
	return a.Addr().Unmap().AppendTo(dst)
}

// Serve is Handle for any Responder (the tests' fakes): it forwards r to an upstream of g and
// answers through resp. clientIP is the client's address for X-Forwarded-For (may be nil). It
// returns the Exchange, whose Writable and Gone the responder's owner calls.
func (p *Proxy) Serve(resp Responder, r *codec.Request, g *Group, clientIP []byte) *Exchange {
	e := &Exchange{ip: clientIP}
	p.start(e, resp, r, g)
	return e
}

func (p *Proxy) start(e *Exchange, resp Responder, r *codec.Request, g *Group) {
	e.p, e.g, e.resp, e.start = p, g, resp, timeNow()
	if string(r.Method()) == "CONNECT" {
		// A reverse proxy does not open tunnels to arbitrary authorities.
		e.done = true
		p.answer(resp, codec.StatusMethodNotAllowed, "CONNECT is not served here\n")
		return
	}
	idx := resp.Loop().Index()
	var prev *Exchange
	var b *batch
	if conn := resp.Conn(); conn != nil && idx < len(p.batches) && e.body == bodyNone {
		b = &p.batches[idx]
		if pe := b.e; b.conn == conn && pe != nil && pe.gen == b.gen && pe.x != nil && !pe.done && pe.g == g && pe.tunnel == nil {
			prev = pe // the same client's batch, to the same group: follow it
		}
	}
	var u *Upstream
	if prev != nil {
		u = prev.u
	} else if u = g.pick(idx, e.start, nil); u == nil {
		e.done = true
		p.answer(resp, codec.StatusBadGateway, "no upstream available\n")
		return
	}
	fw := forward{clientIP: e.ip, proto: "http", emptyHost: u.Name}
	e.req, _ = appendRequest(e.req[:0], r, &fw)
	if prev != nil {
		e.sendAfter(prev)
	} else {
		e.send(u)
	}
	if b != nil {
		b.conn, b.e, b.gen = resp.Conn(), e, e.gen
		e.slot = b
	}
}

// sendAfter forwards the request behind prev's on prev's upstream connection when the
// client allows pipelining it there, and like send otherwise.
func (e *Exchange) sendAfter(prev *Exchange) {
	u := prev.u
	e.u = u
	u.active.Add(1)
	x, err := prev.x.SendNext(e.req, e)
	if err != nil {
		u.active.Add(-1)
		e.done = true
		e.p.answer(e.resp, codec.StatusBadGateway, "upstream unavailable\n")
		return
	}
	e.x = x
}

// send forwards the request to u; a refusal by the client (the loop is stopping) answers 502.
// A request whose body streams goes with SendStream: the body follows as it arrives.
func (e *Exchange) send(u *Upstream) {
	e.u = u
	u.active.Add(1)
	var x *codec.Exchange
	var err error
	if e.body != bodyNone {
		x, err = u.client.SendStream(e.resp.Loop(), e.req, e)
	} else {
		x, err = u.client.Send(e.resp.Loop(), e.req, e)
	}
	if err != nil {
		u.active.Add(-1)
		e.done = true
		e.p.answer(e.resp, codec.StatusBadGateway, "upstream unavailable\n")
		return
	}
	e.x = x
}

// answer sends a short text response of the proxy's own. It finishes the response: the
// caller must not touch e afterwards.
func (p *Proxy) answer(resp Responder, status int, body string) {
	resp.SetStatus(status)
	resp.AddField(hContentType, textPlain)
	resp.SetContentLength(int64(len(body)))
	if _, err := resp.Write([]byte(body)); err == nil {
		resp.Finish()
	}
}

var (
	hContentType = []byte("Content-Type")
	textPlain    = []byte("text/plain; charset=utf-8")
	hVia         = []byte("Via")
	viaValue     = []byte(via)
)

// OnResponse copies the upstream's head to the client, without its connection-specific and
// framing fields, with Via extended; the codec's writer frames the body.
func (e *Exchange) OnResponse(x *codec.Exchange, r *codec.Response) {
	e.u.succeeded()
	e.status = r.Status()
	resp := e.resp
	tunnel := r.BodyKind() == codec.BodyTunnel
	if !tunnel {
		if err := resp.SetStatus(e.status); err != nil {
			e.abandon(errProtocol)
			resp.Abort() // nothing was sent: the client gets a 502
			return
		}
	}
	var conn connTokens
	n := r.NumHeaders()
	for i := 0; i < n; i++ {
		if name, value := r.HeaderAt(i); len(name) == 10 && equalFold(name, "connection") {
			conn.add(value)
		}
	}
	var viaPrev [4][]byte
	nvia := 0
	for i := 0; i < n; i++ {
		name, value := r.HeaderAt(i)
		switch classify(name) {
		case fieldHop, fieldFraming, fieldTrailer:
			continue
		case fieldUpgrade:
			if !tunnel {
				continue
			}
		case fieldVia:
			if nvia < len(viaPrev) {
				viaPrev[nvia] = value
				nvia++
			}
			continue
		default:
			if conn.n > 0 && conn.has(name) {
				continue
			}
		}
		resp.AddField(name, value)
	}
	e.addVia(viaPrev[:nvia])
	if tunnel {
		e.startTunnel(x)
		return
	}
	switch kind := r.BodyKind(); {
	case kind == codec.BodyLength:
		resp.SetContentLength(r.ContentLength())
	case kind == codec.BodyNone && r.ContentLength() >= 0 && e.status != 204 && e.status != 304 && e.status >= 200:
		// A HEAD response: the length a GET would have.
		resp.SetContentLength(r.ContentLength())
	case kind == codec.BodyChunked || kind == codec.BodyUntilClose:
		e.chunked = true
		resp.Flush() // the head goes now; the body follows in pieces
	}
	e.head = true
}

// addVia writes the Via field: the upstream's entries, then ours.
func (e *Exchange) addVia(prev [][]byte) {
	if len(prev) == 0 {
		e.resp.AddField(hVia, viaValue)
		return
	}
	var buf [256]byte
	v := buf[:0]
	for _, p := range prev {
		v = append(v, p...)
		v = append(v, ", "...)
	}
	v = append(v, via...)
	e.resp.AddField(hVia, v)
}

// OnResponseBody forwards a piece of the body and pauses the upstream while the client's
// output is full.
func (e *Exchange) OnResponseBody(x *codec.Exchange, b []byte) {
	if e.tunnel != nil {
		e.tunnel.toClient(b)
		return
	}
	if _, err := e.resp.Write(b); err != nil {
		e.abandon(errClient)
		return
	}
	// Every piece goes on to the connection at once (a chunk when the length is unknown):
	// held in the writer, a large body would never show as output to pause for.
	e.resp.Flush()
	if e.resp.OutputFull() {
		x.Pause()
	}
}

// Writable resumes reading the upstream once the client's output drained.
func (e *Exchange) Writable() {
	if e.tunnel != nil {
		return // the tunnel's own OnWritable resumes it
	}
	if e.x != nil && !e.done {
		e.x.Resume()
	}
}

// OnDeferredWritable is the codec's Writable.
func (e *Exchange) OnDeferredWritable(d *codec.Deferred) { e.Writable() }

// OnDeferredEnd: the client side is over — written and observed, or the client went away
// first (then the upstream exchange is abandoned).
func (e *Exchange) OnDeferredEnd(d *codec.Deferred, err error) {
	e.ended = true
	if err != nil {
		e.Gone()
		return
	}
	e.release()
}

// Gone abandons the upstream exchange after the client went away (its connection closes).
func (e *Exchange) Gone() {
	e.ended = true
	e.abandon(errClient)
	e.release()
}

// abandon ends the upstream side early, counting kind.
func (e *Exchange) abandon(kind string) {
	if e.done {
		return
	}
	e.done = true
	e.upTime = timeNow().Sub(e.start)
	e.u.m.error(kind)
	e.u.active.Add(-1)
	if x := e.x; x != nil {
		e.x = nil
		x.Cancel()
	}
}

// OnResponseEnd completes the response, or answers the failure: 502/504 before the head,
// a cut connection after it. A connect error tries another upstream of the group once.
func (e *Exchange) OnResponseEnd(x *codec.Exchange, err error) {
	if e.done {
		return
	}
	u := e.u
	e.x = nil
	now := timeNow()
	if err == nil {
		u.active.Add(-1)
		e.upTime = now.Sub(e.start)
		u.m.status(e.status)
		u.m.duration.Observe(e.upTime.Seconds())
		if e.tunnel != nil {
			e.tunnel.upstreamEnded()
			return
		}
		e.done = true
		e.resp.Finish() // last: the exchange may be released inside
		return
	}
	kind := errorKind(err)
	u.m.error(kind)
	u.failed(now)
	u.active.Add(-1)
	if errors.Is(err, codec.ErrUpstreamConnect) && !e.tried && !e.head && e.tunnel == nil && e.bodyOut == 0 {
		if next := e.g.pick(e.resp.Loop().Index(), now, u); next != nil {
			e.tried = true
			u.m.retries.Inc()
			e.send(next)
			return
		}
	}
	e.upTime = now.Sub(e.start)
	e.done = true
	if e.tunnel != nil {
		e.tunnel.upstreamEnded()
		return
	}
	if e.head {
		e.resp.Abort()
		return
	}
	if e.body == bodyOpen {
		// The client is still sending a body no upstream will take: the connection closes
		// after the answer (the rest of the body is not read).
		e.resp.SetClose()
	}
	status := codec.GatewayStatus(err)
	body := "502 Bad Gateway\n"
	if status == codec.StatusGatewayTimeout {
		body = "504 Gateway Timeout\n"
	}
	e.p.answer(e.resp, status, body)
}

// errorKind sorts an exchange's error for the metrics.
func errorKind(err error) string {
	switch {
	case errors.Is(err, codec.ErrUpstreamConnect):
		return errConnect
	case errors.Is(err, codec.ErrResponseTimeout):
		return errTimeout
	case errors.Is(err, codec.ErrUpstreamClosed), errors.Is(err, codec.ErrTruncatedResponse):
		return errClosed
	}
	var pe *codec.ParseError
	if errors.As(err, &pe) {
		return errProtocol
	}
	return errClosed
}
