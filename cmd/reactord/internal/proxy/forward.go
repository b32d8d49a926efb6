package proxy

import (
	"errors"
	"time"

	codec "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/reactor"
)

// Responder is the client side of one forwarded request: a response the HTTP server lets the
// proxy finish later, on the loop (the codec's deferred response). Every method runs on the
// loop goroutine that read the request.
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
	// Abort ends a response that cannot be completed (its head is out): the client's
	// connection closes, so the client sees a truncated message rather than a wrong one.
	Abort()
	// OutputFull reports whether the client's connection is above its high-water mark: the
	// proxy stops reading the upstream until Writable.
	OutputFull() bool
	// Upgrade answers "101 Switching Protocols" with the fields added so far and hands the
	// client's connection to h.
	Upgrade(h reactor.Handler) error
	// Loop is the loop the request runs on.
	Loop() *reactor.Loop
}

// Exchange is one request being forwarded. The server side calls Writable when the client's
// output has drained (after OutputFull) and Gone when the client's connection closed before
// the response was complete.
type Exchange struct {
	p       *Proxy
	g       *Group
	u       *Upstream
	resp    Responder
	x       *codec.Exchange
	req     []byte // the request as forwarded, for a second upstream after a connect error
	start   time.Time
	tried   bool // sent to a second upstream already
	upgrade bool // the request asked for a protocol upgrade
	head    bool // the response head went to the client
	chunked bool // the response body is written in pieces of unknown total length
	status  int
	tunnel  *tunnel
	done    bool
}

// Serve forwards r to an upstream of g and answers through resp, later, on resp's loop. The
// request is serialized at once (r is not used after Serve returns). clientIP is the
// client's address for X-Forwarded-For (may be nil). It returns the Exchange the server side
// reports Writable and Gone to, or nil when the request was answered at once (502: every
// upstream avoided; 405 for CONNECT).
func (p *Proxy) Serve(resp Responder, r *codec.Request, g *Group, clientIP []byte) *Exchange {
	if string(r.Method()) == "CONNECT" {
		// A reverse proxy does not open tunnels to arbitrary authorities.
		p.answer(resp, codec.StatusMethodNotAllowed, "CONNECT is not served here\n")
		return nil
	}
	e := &Exchange{p: p, g: g, resp: resp, start: timeNow()}
	u := g.pick(resp.Loop().Index(), e.start, nil)
	if u == nil {
		p.answer(resp, codec.StatusBadGateway, "no upstream available\n")
		return nil
	}
	fw := forward{clientIP: clientIP, proto: "http", emptyHost: u.Name}
	e.req, e.upgrade = appendRequest(nil, r, &fw)
	if !e.send(u) {
		return nil
	}
	return e
}

// send forwards the request to u. It reports false when the exchange ended at once.
func (e *Exchange) send(u *Upstream) bool {
	e.u = u
	u.active.Add(1)
	x, err := u.client.Send(e.resp.Loop(), e.req, e)
	if err != nil {
		u.active.Add(-1)
		e.p.answer(e.resp, codec.StatusBadGateway, "upstream unavailable\n")
		e.done = true
		return false
	}
	e.x = x
	return true
}

// answer sends a short text response of the proxy's own.
func (p *Proxy) answer(resp Responder, status int, body string) {
	resp.SetStatus(status)
	resp.AddField(hContentType, textPlain)
	resp.SetContentLength(int64(len(body)))
	resp.Write([]byte(body))
	resp.Finish()
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
	if err := resp.SetStatus(e.status); err != nil {
		e.fail(errors.New("unsendable status"))
		return
	}
	var conn connTokens
	n := r.NumHeaders()
	for i := 0; i < n; i++ {
		if name, value := r.HeaderAt(i); len(name) == 10 && equalFold(name, "connection") {
			conn.add(value)
		}
	}
	tunnel := r.BodyKind() == codec.BodyTunnel
	var viaPrev [][]byte
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
			viaPrev = append(viaPrev, value)
			continue
		default:
			if conn.n > 0 && conn.has(name) {
				continue
			}
		}
		resp.AddField(name, value)
	}
	e.addVia(viaPrev)
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
		e.clientGone()
		return
	}
	if e.chunked {
		e.resp.Flush()
	}
	if e.resp.OutputFull() {
		x.Pause()
	}
}

// Writable is called by the server side when the client's output drained: reading the
// upstream resumes.
func (e *Exchange) Writable() {
	if e.tunnel != nil {
		e.tunnel.clientWritable()
		return
	}
	if e.x != nil && !e.done {
		e.x.Resume()
	}
}

// Gone is called by the server side when the client's connection closed before the response
// was complete: the upstream exchange is abandoned (its connection closes).
func (e *Exchange) Gone() { e.clientGone() }

func (e *Exchange) clientGone() {
	if e.done {
		return
	}
	e.done = true
	e.u.m.error(errClient)
	e.u.active.Add(-1)
	if e.x != nil {
		e.x.Cancel()
		e.x = nil
	}
}

// OnResponseEnd completes the response, or answers the failure: 502/504 before the head,
// a cut connection after it. A connect error tries another upstream of the group once.
func (e *Exchange) OnResponseEnd(x *codec.Exchange, err error) {
	if e.done {
		return
	}
	u := e.u
	u.active.Add(-1)
	e.x = nil
	elapsed := timeNow().Sub(e.start)
	if err == nil {
		e.done = true
		u.m.status(e.status)
		u.m.duration.Observe(elapsed.Seconds())
		if e.tunnel != nil {
			e.tunnel.upstreamEnded()
			return
		}
		e.resp.Finish()
		return
	}
	kind := errorKind(err)
	u.m.error(kind)
	if kind != errClient {
		u.failed(timeNow())
	}
	if errors.Is(err, codec.ErrUpstreamConnect) && !e.tried && !e.head {
		if next := e.g.pick(e.resp.Loop().Index(), timeNow(), u); next != nil {
			e.tried = true
			u.m.retries.Inc()
			e.send(next)
			return
		}
	}
	e.done = true
	e.fail(err)
}

// fail answers a failed exchange: the gateway status when nothing was sent yet, else a cut.
func (e *Exchange) fail(err error) {
	e.done = true
	if e.tunnel != nil {
		e.tunnel.upstreamEnded()
		return
	}
	if e.head {
		e.resp.Abort()
		return
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
