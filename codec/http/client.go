package http

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reactord/reactord/reactor"
)

// Client defaults.
const (
	// DefaultClientMaxIdle is the number of idle keep-alive connections a loop keeps per
	// upstream when ClientConfig.MaxIdle is 0.
	DefaultClientMaxIdle = 256
	// DefaultClientIdleTimeout closes a pooled connection idle that long.
	DefaultClientIdleTimeout = 60 * time.Second
	// DefaultClientHeaderTimeout bounds the wait for a response head.
	DefaultClientHeaderTimeout = 60 * time.Second
	// DefaultClientReadTimeout bounds the silence between two reads of a response.
	DefaultClientReadTimeout = 60 * time.Second
)

// ClientConfig configures a Client. Zero fields take the defaults; negative durations and
// counts are rejected by NewClient with ErrInvalidArgument.
type ClientConfig struct {
	// MaxConns caps the connections (established or being dialed) each loop opens to the
	// upstream; requests beyond it wait for a connection to be free. 0: no cap.
	MaxConns int
	// MaxIdle caps the idle keep-alive connections each loop keeps; more are closed as they
	// finish. 0: DefaultClientMaxIdle.
	MaxIdle int
	// IdleTimeout closes a connection that stayed idle in the pool that long (the upstream's
	// own keep-alive timeout should be longer). 0: DefaultClientIdleTimeout.
	IdleTimeout time.Duration
	// DialTimeout bounds the name lookup and connect of a new connection; when it expires the
	// requests waiting for it fail with an error wrapping reactor.ErrDialTimeout.
	// 0: reactor.DefaultDialTimeout.
	DialTimeout time.Duration
	// HeaderTimeout bounds the time from a request's turn on its connection (its bytes are
	// written, or the response before it is done) to its response head; ErrResponseTimeout.
	// 0: DefaultClientHeaderTimeout.
	HeaderTimeout time.Duration
	// ReadTimeout bounds the silence of a connection with a response in progress (time paused
	// by Exchange.Pause does not count); ErrResponseTimeout. 0: DefaultClientReadTimeout.
	ReadTimeout time.Duration
	// MaxPipeline is the number of requests Exchange.SendNext may have in flight on one
	// connection (HTTP/1.1 pipelining, for idempotent requests only). 0 or 1: no pipelining.
	MaxPipeline int
	// Limits bounds what the response parser accepts (see NewResponseParser: MaxBodyBytes 0
	// means no limit on a streamed body).
	Limits Limits
	// NoRetry turns off the one retry of an idempotent request whose reused connection the
	// upstream closed before answering it.
	NoRetry bool
}

// ErrClientClosed is returned by Send and Do after Client.Close.
var ErrClientClosed = errors.New("http: client closed")

// ErrUpstreamClosed is the OnResponseEnd error of a request whose connection the upstream
// closed (or reset) before the response was complete, when it could not be retried.
var ErrUpstreamClosed = newParseError(502, "upstream closed the connection")

// ErrUpstreamConnect is wrapped, together with the dial's own error (ECONNREFUSED, a
// *net.DNSError, reactor.ErrDialTimeout), around the OnResponseEnd error of a request whose
// connection could not be established: the request never reached the upstream, so a
// gateway may safely try another one.
var ErrUpstreamConnect = newParseError(502, "cannot connect to upstream")

// ErrResponseTimeout is the OnResponseEnd error of a request whose response head did not
// arrive within ClientConfig.HeaderTimeout, or whose upstream went silent for ReadTimeout.
var ErrResponseTimeout = newParseError(504, "upstream response timeout")

// ErrUnsolicitedResponse: the upstream sent bytes while no request was waiting on the
// connection (or more than the responses owed).
var ErrUnsolicitedResponse = newParseError(502, "upstream sent an unsolicited response")

// errCancelled closes a connection whose exchange was cancelled mid-response.
var errCancelled = errors.New("http: exchange cancelled")

// GatewayStatus returns the status a gateway answers for a failed upstream exchange: 504
// (Gateway Timeout) when err is, or wraps, ErrResponseTimeout or reactor.ErrDialTimeout, and
// 502 (Bad Gateway) otherwise.
func GatewayStatus(err error) int {
	if errors.Is(err, ErrResponseTimeout) || errors.Is(err, reactor.ErrDialTimeout) {
		return StatusGatewayTimeout
	}
	return StatusBadGateway
}

// Client sends HTTP/1.1 requests to one upstream — a TCP "host:port" or a Unix socket path —
// over keep-alive connections pooled per event loop. A request is sent from a loop goroutine,
// on a connection of that loop, and its response comes back on the same goroutine: no lock,
// no thread hand-off. A native Handler can therefore call an upstream and answer from the
// callback.
//
// Two ways in: Do sends a ClientRequest and calls back once with the whole response; Send
// writes a request the caller serialized itself and streams the response to a
// ResponseHandler, with backpressure (Exchange.Pause, Resume) so that a large body is never
// buffered whole — what a reverse proxy needs.
//
// Pooling: a finished connection goes back to its loop's idle list (at most MaxIdle, closed
// after IdleTimeout idle); a request takes the most recently used idle connection, else dials
// a new one, else (at MaxConns) waits for one. An idempotent request (GET, HEAD, OPTIONS,
// TRACE, PUT, DELETE) whose reused connection turns out to be closed by the upstream before
// any byte of its response is sent again once, on another connection (RFC 9112 §9.3.1).
//
// Client methods are safe from any goroutine except where noted: Send, Do and the Exchange
// methods run on the loop goroutine they name.
type Client struct {
	network, address string
	cfg              ClientConfig
	closed           atomic.Bool

	mu    sync.Mutex
	pools atomic.Pointer[map[*reactor.Loop]*clientPool]
}

// NewClient returns a client for the upstream at address on network ("tcp", "tcp4", "tcp6":
// "host:port"; "unix": a socket path). Nothing is opened until the first request. Errors:
// reactor.ErrUnsupportedNetwork, reactor.ErrBadAddress, ErrInvalidArgument for a negative
// ClientConfig field, ErrInvalidLimits.
func NewClient(network, address string, cfg ClientConfig) (*Client, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
		if _, port, err := net.SplitHostPort(address); err != nil || port == "" {
			return nil, fmt.Errorf("%w: upstream %q: want host:port", reactor.ErrBadAddress, address)
		}
	case "unix":
		if address == "" {
			return nil, fmt.Errorf("%w: empty unix socket path", reactor.ErrBadAddress)
		}
	default:
		return nil, fmt.Errorf("%w: %q", reactor.ErrUnsupportedNetwork, network)
	}
	if cfg.MaxConns < 0 || cfg.MaxIdle < 0 || cfg.MaxPipeline < 0 || cfg.IdleTimeout < 0 ||
		cfg.DialTimeout < 0 || cfg.HeaderTimeout < 0 || cfg.ReadTimeout < 0 {
		return nil, fmt.Errorf("%w: negative ClientConfig field: %+v", ErrInvalidArgument, cfg)
	}
	if err := cfg.Limits.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxIdle == 0 {
		cfg.MaxIdle = DefaultClientMaxIdle
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultClientIdleTimeout
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = reactor.DefaultDialTimeout
	}
	if cfg.HeaderTimeout == 0 {
		cfg.HeaderTimeout = DefaultClientHeaderTimeout
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = DefaultClientReadTimeout
	}
	if cfg.MaxPipeline == 0 {
		cfg.MaxPipeline = 1
	}
	return &Client{network: network, address: address, cfg: cfg}, nil
}

// Network and Address return the upstream the client was made for.
func (c *Client) Network() string { return c.network }

// Address returns the upstream address (see Network).
func (c *Client) Address() string { return c.address }

// Config returns the configuration with defaults filled in.
func (c *Client) Config() ClientConfig { return c.cfg }

// Close stops the client: Send and Do fail with ErrClientClosed from now on, idle
// connections are closed, and connections close as their last response completes. Requests
// in flight finish. Any goroutine; idempotent.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if m := c.pools.Load(); m != nil {
		for l, p := range *m {
			l.Post(p.closeIdle)
		}
	}
	return nil
}

// ClientStats is a snapshot of a client's counters, summed over loops.
type ClientStats struct {
	Requests   uint64 // requests sent (a retry counts once more)
	Responses  uint64 // responses completed
	Failed     uint64 // requests that ended with an error
	Retries    uint64 // requests sent again after their reused connection closed
	Dials      uint64 // connections dialed
	DialErrors uint64 // dials that failed
	Open       int64  // connections open or being dialed now
	Idle       int64  // idle connections in the pools now
	Waiting    int64  // requests waiting for a connection now
}

// Stats returns the counters. Any goroutine.
func (c *Client) Stats() ClientStats {
	var st ClientStats
	if m := c.pools.Load(); m != nil {
		for _, p := range *m {
			st.Requests += p.st.requests.Load()
			st.Responses += p.st.responses.Load()
			st.Failed += p.st.failed.Load()
			st.Retries += p.st.retries.Load()
			st.Dials += p.st.dials.Load()
			st.DialErrors += p.st.dialErrors.Load()
			st.Open += p.st.open.Load()
			st.Idle += p.st.idle.Load()
			st.Waiting += p.st.waiting.Load()
		}
	}
	return st
}

// poolFor returns the loop's pool, creating it on first use. Lookups take no lock: the map is
// replaced, never changed, when a loop is added.
func (c *Client) poolFor(l *reactor.Loop) *clientPool {
	if m := c.pools.Load(); m != nil {
		if p := (*m)[l]; p != nil {
			return p
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.pools.Load()
	if old != nil {
		if p := (*old)[l]; p != nil {
			return p
		}
	}
	m := make(map[*reactor.Loop]*clientPool, 1)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	p := &clientPool{c: c, loop: l, base: l.Now()}
	m[l] = p
	c.pools.Store(&m)
	return p
}

// ResponseHandler receives the response to a request sent with Client.Send, on the loop
// goroutine. The *Response, the body slices and the trailers are views valid only during the
// call; the Exchange is valid until OnResponseEnd returns.
type ResponseHandler interface {
	// OnResponse is called once, with the head of the final response. For a tunnel (101, or a
	// 2xx to CONNECT) the bytes that follow come as OnResponseBody, Exchange.Write sends bytes
	// the other way, and OnResponseEnd comes when the upstream closes.
	OnResponse(x *Exchange, r *Response)
	// OnResponseBody is called with each piece of the body as it arrives (decoded, for
	// chunked). Calling x.Pause stops reading the upstream until x.Resume.
	OnResponseBody(x *Exchange, body []byte)
	// OnResponseEnd is called exactly once: with nil once the response is complete (trailers
	// readable with x.NumTrailers and x.TrailerAt during the call), or with the error that
	// ended the exchange — before or after OnResponse. See GatewayStatus.
	OnResponseEnd(x *Exchange, err error)
}

// InterimHandler is optionally implemented by a ResponseHandler that wants the 1xx interim
// responses (100 Continue, 103 Early Hints) that precede the final one.
type InterimHandler interface {
	OnInterim(x *Exchange, r *Response)
}

// WritableHandler for exchanges: OnExchangeWritable is called when the upstream connection's
// output, having been above the high-water mark, drained (a tunnel or a streamed request body
// written with Exchange.Write continues then).
type ExchangeWritableHandler interface {
	OnExchangeWritable(x *Exchange)
}

// Send sends req — a complete request as it goes on the wire: request-line, header section
// and the framed body, if any — to the upstream on one of l's connections, and streams the
// response to h. It must be called on l's goroutine (inside a handler or a posted function).
// req is copied; the caller may reuse it at once. The method is read from the request-line: a
// HEAD response has no body, a 2xx to CONNECT is a tunnel, and idempotent methods may be
// retried once (ClientConfig.NoRetry).
//
// The outcome always arrives later, through h, never during Send. Errors (no callback then):
// ErrInvalidArgument for a nil l or h or a request that does not start with a method token
// and a space, ErrClientClosed, reactor.ErrLoopClosed.
func (c *Client) Send(l *reactor.Loop, req []byte, h ResponseHandler) (*Exchange, error) {
	if l == nil || h == nil {
		return nil, fmt.Errorf("%w: Send(%v, _, %v)", ErrInvalidArgument, l, h)
	}
	if c.closed.Load() {
		return nil, ErrClientClosed
	}
	m, idem, ok := requestMethod(req)
	if !ok {
		return nil, fmt.Errorf("%w: request does not start with a method", ErrInvalidArgument)
	}
	p := c.poolFor(l)
	x := p.newExchange(req, m, idem, h)
	if err := p.assign(x, nil); err != nil {
		p.freeExchange(x)
		return nil, err
	}
	return x, nil
}

// SendStream is Send for a request whose body the caller streams as it gets it (a reverse
// proxy forwarding an upload): head is the request-line and header section, ending with the
// empty line, and declares the body's framing — Content-Length, or Transfer-Encoding: chunked —
// which the caller then writes itself with Exchange.Write (chunk framing included), and ends
// with Exchange.EndBody. Loop goroutine; errors as Send.
//
// While the body is open: the request is neither retried nor pipelined (nothing is sent
// behind it on its connection); no header timeout runs (it starts at EndBody); ReadTimeout
// bounds instead how long the upstream may leave the output above the low-water mark without
// draining it (ErrResponseTimeout); a response that completes before EndBody is delivered,
// but its connection is not reused. Exchange.OutputFull tells the caller to pause its
// source, OnExchangeWritable (ExchangeWritableHandler) to continue — also when the request
// waited for a connection (ClientConfig.MaxConns), during which up to 64 KiB of body is held.
func (c *Client) SendStream(l *reactor.Loop, head []byte, h ResponseHandler) (*Exchange, error) {
	if l == nil || h == nil {
		return nil, fmt.Errorf("%w: SendStream(%v, _, %v)", ErrInvalidArgument, l, h)
	}
	if c.closed.Load() {
		return nil, ErrClientClosed
	}
	m, _, ok := requestMethod(head)
	if !ok {
		return nil, fmt.Errorf("%w: request does not start with a method", ErrInvalidArgument)
	}
	p := c.poolFor(l)
	// Not idempotent for the pool: its body cannot be sent again, and nothing may follow it on
	// the connection until it is complete.
	x := p.newExchange(head, m, false, h)
	x.stream = true
	if err := p.assign(x, nil); err != nil {
		p.freeExchange(x)
		return nil, err
	}
	return x, nil
}

// streamHold is the body a streamed request waiting for a connection holds before
// OutputFull reports true.
const streamHold = 64 << 10

// requestMethod reads the method of a serialized request: its kind for the response parser,
// and whether it is idempotent (RFC 9110 §9.2.2).
func requestMethod(req []byte) (methodKind, bool, bool) {
	i := 0
	for i < len(req) && tokenTable[req[i]] {
		i++
	}
	if i == 0 || i >= len(req) || req[i] != ' ' {
		return 0, false, false
	}
	switch string(req[:i]) {
	case "GET", "OPTIONS", "TRACE", "PUT", "DELETE":
		return methodOther, true, true
	case "HEAD":
		return methodHead, true, true
	case "CONNECT":
		return methodConnect, false, true
	}
	return methodOther, false, true
}

// clientPool is one loop's connections to the upstream. Loop goroutine only, except the
// counters.
type clientPool struct {
	c    *Client
	loop *reactor.Loop
	base time.Time // origin of the pool's nanosecond clock

	idle    []*upConn // most recently used last
	nconns  int       // open or being dialed
	waiting []*Exchange
	free    []*Exchange
	sweep   *reactor.Timer
	closing bool

	st struct {
		requests, responses, failed, retries, dials, dialErrors atomic.Uint64
		open, idle, waiting                                     atomic.Int64
	}
}

// now is the loop's cached clock, in nanoseconds since the pool was made.
func (p *clientPool) now() int64 { return int64(p.loop.Now().Sub(p.base)) }

// maxFreeExchanges bounds the exchanges a pool keeps for reuse.
const maxFreeExchanges = 1024

// exchangeReqKeep bounds the request buffer an exchange keeps across uses.
const exchangeReqKeep = 16 << 10

func (p *clientPool) newExchange(req []byte, m methodKind, idem bool, h ResponseHandler) *Exchange {
	var x *Exchange
	if n := len(p.free); n > 0 {
		x = p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
	} else {
		x = &Exchange{pool: p}
	}
	x.h = h
	x.req = append(x.req[:0], req...)
	x.method, x.idempotent = m, idem
	return x
}

func (p *clientPool) freeExchange(x *Exchange) {
	req := x.req[:0]
	if cap(req) > exchangeReqKeep {
		req = nil
	}
	*x = Exchange{pool: p, req: req}
	if len(p.free) < maxFreeExchanges {
		p.free = append(p.free, x)
	}
}

// assign puts x on a connection: pref if it can take one more pipelined request, else the
// most recently idle connection, else a new one, else the waiting list. The error is the
// dial's (the loop has stopped).
func (p *clientPool) assign(x *Exchange, pref *upConn) error {
	if pref != nil && pref.canPipeline(x) {
		pref.start(x)
		return nil
	}
	if n := len(p.idle); n > 0 {
		u := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.st.idle.Add(-1)
		u.start(x)
		return nil
	}
	if max := p.c.cfg.MaxConns; max > 0 && p.nconns >= max {
		p.waiting = append(p.waiting, x)
		p.st.waiting.Add(1)
		return nil
	}
	u, err := p.dial()
	if err != nil {
		return err
	}
	u.start(x)
	return nil
}

// dial opens a new connection to the upstream.
func (p *clientPool) dial() (*upConn, error) {
	c := p.c
	u := &upConn{pool: p}
	u.p.init(c.cfg.Limits)
	rc, err := p.loop.Dial(c.network, c.address, u, reactor.DialTimeout(c.cfg.DialTimeout))
	if err != nil {
		return nil, err
	}
	u.rc = rc
	p.nconns++
	p.st.open.Add(1)
	p.st.dials.Add(1)
	return u, nil
}

// release takes a connection whose responses are all done: to a waiting request, to the idle
// list, or closed.
func (p *clientPool) release(u *upConn) {
	if n := len(p.waiting); n > 0 && !p.closing {
		x := p.waiting[0]
		copy(p.waiting, p.waiting[1:])
		p.waiting[n-1] = nil
		p.waiting = p.waiting[:n-1]
		p.st.waiting.Add(-1)
		u.start(x)
		return
	}
	if p.closing || p.c.closed.Load() || len(p.idle) >= p.c.cfg.MaxIdle {
		u.retire()
		return
	}
	u.idleAt = p.now()
	p.idle = append(p.idle, u)
	p.st.idle.Add(1)
	if p.sweep == nil {
		// One timer per pool closes connections idle too long; it costs nothing per request.
		every := max(p.c.cfg.IdleTimeout/4, 10*time.Millisecond)
		p.sweep = p.loop.Every(every, p.sweepIdle)
	}
}

// dropIdle removes u from the idle list, if it is there.
func (p *clientPool) dropIdle(u *upConn) {
	for i, v := range p.idle {
		if v == u {
			copy(p.idle[i:], p.idle[i+1:])
			p.idle[len(p.idle)-1] = nil
			p.idle = p.idle[:len(p.idle)-1]
			p.st.idle.Add(-1)
			return
		}
	}
}

// sweepIdle closes connections idle longer than IdleTimeout. The oldest are first in the list.
func (p *clientPool) sweepIdle() {
	limit := p.now() - int64(p.c.cfg.IdleTimeout)
	k := 0
	for k < len(p.idle) && p.idle[k].idleAt <= limit {
		k++
	}
	if k == 0 {
		return
	}
	old := append([]*upConn(nil), p.idle[:k]...)
	n := copy(p.idle, p.idle[k:])
	clear(p.idle[n:])
	p.idle = p.idle[:n]
	p.st.idle.Add(-int64(k))
	for _, u := range old {
		u.retire()
	}
}

// closeIdle runs on the loop after Client.Close.
func (p *clientPool) closeIdle() {
	p.closing = true
	idle := p.idle
	p.idle = nil
	p.st.idle.Add(-int64(len(idle)))
	for _, u := range idle {
		u.retire()
	}
	waiting := p.waiting
	p.waiting = nil
	p.st.waiting.Add(-int64(len(waiting)))
	for _, x := range waiting {
		p.finish(x, ErrClientClosed)
	}
	if p.sweep != nil {
		p.sweep.Stop()
		p.sweep = nil
	}
}

// connGone accounts for a closed connection and lets a waiting request dial in its place.
func (p *clientPool) connGone(u *upConn) {
	p.nconns--
	p.st.open.Add(-1)
	p.dropIdle(u)
	for len(p.waiting) > 0 && !p.closing && !p.c.closed.Load() {
		if max := p.c.cfg.MaxConns; max > 0 && p.nconns >= max {
			return
		}
		x := p.waiting[0]
		p.waiting = p.waiting[1:]
		p.st.waiting.Add(-1)
		nu, err := p.dial()
		if err != nil {
			p.finish(x, err)
			continue
		}
		nu.start(x)
	}
}

// finish ends x: the handler's OnResponseEnd, then x goes back to the free list.
func (p *clientPool) finish(x *Exchange, err error) {
	if err != nil {
		p.st.failed.Add(1)
	} else {
		p.st.responses.Add(1)
	}
	if h := x.h; h != nil {
		x.h = nil
		h.OnResponseEnd(x, err)
	}
	p.freeExchange(x)
}

// retry sends x again on another connection, after its reused connection closed unanswered.
func (p *clientPool) retry(x *Exchange) {
	x.retried = true
	x.conn = nil
	x.gotHead = false
	p.st.retries.Add(1)
	if err := p.assign(x, nil); err != nil {
		p.finish(x, err)
	}
}

// Exchange is one request and its response on a Client. It belongs to the loop goroutine
// that sent it and is valid until its handler's OnResponseEnd returns; after that the Client
// reuses it.
type Exchange struct {
	pool       *clientPool
	conn       *upConn
	h          ResponseHandler
	req        []byte // the request, kept until its response starts (for a retry)
	method     methodKind
	idempotent bool
	retried    bool
	gotHead    bool
	stream     bool // SendStream: the body is still being written (until EndBody)
	full       bool // OutputFull reported true while waiting for a connection
	ctx        any
}

// SetContext attaches caller state to the exchange; Context returns it. Loop goroutine.
func (x *Exchange) SetContext(v any) { x.ctx = v }

// Context returns what SetContext stored.
func (x *Exchange) Context() any { return x.ctx }

// SendNext sends req right behind x on x's connection (HTTP/1.1 pipelining) when the client
// allows it (ClientConfig.MaxPipeline) and both requests are idempotent, and otherwise like
// Client.Send on x's loop. A batch of requests from one client thus leaves in one write and
// its responses come back in one read. Loop goroutine; errors as Send.
func (x *Exchange) SendNext(req []byte, h ResponseHandler) (*Exchange, error) {
	p := x.pool
	c := p.c
	if h == nil {
		return nil, fmt.Errorf("%w: SendNext with a nil handler", ErrInvalidArgument)
	}
	if c.closed.Load() {
		return nil, ErrClientClosed
	}
	m, idem, ok := requestMethod(req)
	if !ok {
		return nil, fmt.Errorf("%w: request does not start with a method", ErrInvalidArgument)
	}
	nx := p.newExchange(req, m, idem, h)
	if err := p.assign(nx, x.conn); err != nil {
		p.freeExchange(nx)
		return nil, err
	}
	return nx, nil
}

// Pause stops reading the response: the connection's reading pauses after the current
// OnResponseBody returns (the kept bytes wait), and its ReadTimeout stops running. Loop
// goroutine.
func (x *Exchange) Pause() {
	if u := x.conn; u != nil && u.q[0] == x && !u.paused {
		u.paused = true
		u.rc.PauseRead()
	}
}

// Resume undoes Pause: the bytes kept are handed over again early in the next loop
// iteration. Loop goroutine.
func (x *Exchange) Resume() {
	if u := x.conn; u != nil && u.paused && len(u.q) > 0 && u.q[0] == x {
		u.paused = false
		u.lastRead = u.pool.now()
		u.rc.ResumeRead()
	}
}

// Cancel abandons the exchange: no callback is made for it any more (not even
// OnResponseEnd) and it is invalid once Cancel returns. A request still waiting for a
// connection is dropped; one on a connection closes that connection (its response can no
// longer be told apart from the next one's), and requests pipelined behind it are retried or
// failed as if the upstream had closed. Loop goroutine.
func (x *Exchange) Cancel() {
	p := x.pool
	x.h = nil
	u := x.conn
	if u == nil {
		for i, w := range p.waiting {
			if w == x {
				p.waiting = append(p.waiting[:i], p.waiting[i+1:]...)
				p.st.waiting.Add(-1)
				break
			}
		}
		p.freeExchange(x)
		return
	}
	u.failErr = errCancelled
	u.rc.CloseNow()
}

// Write sends raw bytes to the upstream on x's connection: for a tunnel (after OnResponse
// with BodyTunnel), or a request body the caller frames itself after a Send whose request
// declared it (the bytes follow the request in order). It returns ErrConnClosed-like errors
// from the connection. Loop goroutine.
//
// For a streamed body (SendStream) the bytes written while the request waits for a connection
// are held and sent once it has one. Loop goroutine.
func (x *Exchange) Write(p []byte) (int, error) {
	u := x.conn
	if u == nil {
		if x.stream && x.h != nil {
			x.req = append(x.req, p...)
			return len(p), nil
		}
		return 0, ErrNotStarted
	}
	if x.stream {
		if u.rc.Buffered() == 0 {
			u.sendAt = u.pool.now() // the upstream's turn to take the body starts now
		}
		n, err := u.rc.Write(p)
		u.arm()
		return n, err
	}
	return u.rc.Write(p)
}

// EndBody marks the end of a streamed request body (SendStream): its last bytes — the final
// chunk of a chunked body — were written. The header timeout starts now. Loop goroutine.
func (x *Exchange) EndBody() {
	if !x.stream {
		return
	}
	x.stream = false
	if u := x.conn; u != nil && len(u.q) > 0 && u.q[0] == x && !x.gotHead {
		u.turn()
	}
}

// OutputFull reports whether the upstream connection's output is above its high-water mark:
// stop writing and wait for OnExchangeWritable. For a streamed body waiting for a connection,
// whether it holds streamHold bytes already. Loop goroutine.
func (x *Exchange) OutputFull() bool {
	if x.conn == nil {
		full := x.stream && len(x.req) >= streamHold
		if full {
			x.full = true
		}
		return full
	}
	return x.conn.rc.OutputFull()
}

// Response returns the response head during OnResponse; nil before. Loop goroutine.
func (x *Exchange) Response() *Response {
	if u := x.conn; u != nil && x.gotHead && len(u.q) > 0 && u.q[0] == x {
		return u.p.Response()
	}
	return nil
}

// NumTrailers returns the number of trailer fields, during OnResponseEnd of a chunked
// response.
func (x *Exchange) NumTrailers() int {
	if u := x.conn; u != nil {
		return u.p.NumTrailers()
	}
	return 0
}

// TrailerAt returns the i-th trailer field during OnResponseEnd (views valid during the call).
func (x *Exchange) TrailerAt(i int) (name, value []byte) {
	if u := x.conn; u != nil {
		return u.p.TrailerAt(i)
	}
	return nil, nil
}

// Retried reports whether the request was sent a second time (see Client).
func (x *Exchange) Retried() bool { return x.retried }
