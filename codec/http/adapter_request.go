package http

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	nethttp "net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// buildRequest makes the *http.Request for req on the loop, from the loop's own parse: the
// worker never parses the request again. Every string of the request (target, path, query,
// host, header names and values) is a substring of one copy of the head, so the request
// costs a handful of allocations whatever its header count: rs (the http.Request itself, its
// URL, context and body reader), the copy of the head, and the Header map. state is the
// connection's TLS state (r.TLS), nil without TLS.
func buildRequest(req *Request, rs *reqState, remote string, state *tls.ConnectionState) (*nethttp.Request, error) {
	head := string(req.buf)
	sub := func(s span) string { return head[s.off : s.off+s.n] }
	method := req.MethodString()
	target := sub(req.target)
	var u *url.URL
	switch {
	case method == "CONNECT" && !strings.HasPrefix(target, "/"):
		u = &url.URL{Host: target}
	case target[0] == '/' && plainPath(req.Path()):
		// What url.ParseRequestURI returns for an origin-form target whose path needs no
		// unescaping and no re-escaping, without the parse (and in rs: no allocation).
		u = &rs.url
		u.Path = sub(req.path)
		if req.query.n > 0 {
			u.RawQuery = sub(req.query)
		} else if req.path.n < req.target.n {
			u.ForceQuery = true // the target ends with its only "?"
		}
	default:
		var err error
		if u, err = url.ParseRequestURI(target); err != nil {
			return nil, err
		}
	}
	proto := "HTTP/1.1"
	if req.minor == 0 {
		proto = "HTTP/1.0"
	} else if req.minor > 1 {
		proto = "HTTP/1." + string('0'+req.minor)
	}
	n := len(req.fields)
	var trailer nethttp.Header
	h := make(nethttp.Header, n)
	var vals []string // one backing array for the values of every field
	if n <= len(rs.vals) {
		vals = rs.vals[:n]
	} else {
		vals = make([]string, n)
	}
	for i, f := range req.fields {
		key := nethttp.CanonicalHeaderKey(sub(f.name))
		switch {
		case key == "Host":
			continue // net/http keeps it in r.Host only
		case key == "Trailer":
			if req.Chunked() {
				declareTrailers(&trailer, sub(f.value))
			}
			continue // net/http moves it to r.Trailer (chunked) or drops it
		case key == "Transfer-Encoding" && req.Chunked():
			continue // net/http keeps it in r.TransferEncoding only
		}
		vals[i] = sub(f.value)
		if prev, ok := h[key]; ok {
			h[key] = append(prev, vals[i])
		} else {
			h[key] = vals[i : i+1 : i+1]
		}
	}
	r := nethttp.Request{
		Method:     method,
		URL:        u,
		Proto:      proto,
		ProtoMajor: 1,
		ProtoMinor: int(req.minor),
		Header:     h,
		Host:       sub(req.host),
		RemoteAddr: remote,
		TLS:        state,
		RequestURI: target,
		Close:      !req.KeepAlive(),
	}
	if req.host.n == 0 {
		r.Host = ""
	}
	switch {
	case req.Chunked():
		r.ContentLength = -1
		r.TransferEncoding = []string{"chunked"}
		r.Body = &rs.body
	case req.ContentLength() == 0:
		r.Body = nethttp.NoBody
	default:
		r.ContentLength = req.ContentLength()
		r.Body = &rs.body
	}
	r.Trailer = trailer
	// The request's context field is unexported: WithContext sets it on a copy. Inlined,
	// that copy stays on the stack and lands in rs, so the request costs no allocation of
	// its own.
	rs.req = *r.WithContext(&rs.ctx)
	return &rs.req, nil
}

// declareTrailers adds the names of a Trailer header value to *t (values come after the
// body), as net/http does before the body is read.
func declareTrailers(t *nethttp.Header, v string) {
	for name := range strings.SplitSeq(v, ",") {
		if name = strings.TrimSpace(name); name != "" {
			if *t == nil {
				*t = make(nethttp.Header)
			}
			(*t)[nethttp.CanonicalHeaderKey(name)] = nil
		}
	}
}

// plainPath reports whether p consists only of bytes url.URL keeps as they are in a path
// (unreserved and the sub-delimiters it does not escape), so Path is p and RawPath is empty.
func plainPath(p []byte) bool {
	for _, c := range p {
		if !plainPathTable[c] {
			return false
		}
	}
	return true
}

var plainPathTable = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_.~$&+,/:;=@" {
		t[c] = true
	}
	return t
}()

// addTrailers copies the request's trailer fields (a complete chunked body) into hr.Trailer.
func addTrailers(hr *nethttp.Request, req *Request) {
	n := req.NumTrailers()
	if n == 0 {
		return
	}
	if hr.Trailer == nil {
		hr.Trailer = make(nethttp.Header, n)
	}
	for i := 0; i < n; i++ {
		name, value := req.TrailerAt(i)
		key := nethttp.CanonicalHeaderKey(string(name))
		hr.Trailer[key] = append(hr.Trailer[key], string(value))
	}
}

// reqState is one allocation holding what an adapter request needs besides the copy of its
// head and its Header map: the *http.Request itself, its URL, its context and its body reader.
// It is never reused (net/http lets a handler keep the request, its URL, Header and context
// after it returned, say for a goroutine it started), so a handler that keeps r.Context() or
// r.Body after it returned sees a cancelled context and a dead body, never another request's.
// vals covers the header fields of most requests (browsers send about ten) without another
// allocation; the whole is 768 bytes, one allocation size class.
type reqState struct {
	req  nethttp.Request
	url  url.URL
	ctx  reqCtx
	body bodyReader
	vals [12]string // header values of a request with up to 12 fields (the Host included)
}

// reqCtx is an adapter request's context: cancelled by the loop when the client goes away and
// by the worker when ServeHTTP returns. It costs no allocation beyond reqState unless a
// handler asks for Done (the channel is made lazily), and derived contexts register with
// AfterFunc instead of starting a goroutine each.
type reqCtx struct {
	parent context.Context
	local  net.Addr // for http.LocalAddrContextKey

	mu       sync.Mutex
	done     chan struct{}
	funcs    []func()
	stop     func() bool // parent AfterFunc registration, if the parent can be cancelled
	canceled bool        // Err is context.Canceled
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *reqCtx) init(parent context.Context, local net.Addr) {
	c.parent, c.local = parent, local
	if parent.Done() != nil {
		c.stop = context.AfterFunc(parent, c.cancel)
	}
}

// Deadline is the parent's (WithBaseContext).
func (c *reqCtx) Deadline() (time.Time, bool) { return c.parent.Deadline() }

// Done returns a channel closed once the request is cancelled.
func (c *reqCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.canceled {
			c.done = closedChan
		} else {
			c.done = make(chan struct{})
		}
	}
	return c.done
}

// Err is nil until the request is cancelled, then context.Canceled.
func (c *reqCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.canceled {
		return context.Canceled
	}
	return nil
}

// Value answers http.LocalAddrContextKey, and asks the parent for anything else.
func (c *reqCtx) Value(key any) any {
	if key == nethttp.LocalAddrContextKey && c.local != nil {
		return c.local
	}
	return c.parent.Value(key)
}

// AfterFunc runs f once the request is cancelled (at once if it is). The context package uses
// it for contexts derived from this one, so deriving starts no goroutine.
func (c *reqCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.canceled {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	c.funcs = append(c.funcs, f)
	i := len(c.funcs) - 1
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.canceled || c.funcs[i] == nil {
			return false
		}
		c.funcs[i] = nil
		return true
	}
}

func (c *reqCtx) cancel() {
	c.mu.Lock()
	if c.canceled {
		c.mu.Unlock()
		return
	}
	c.canceled = true
	if c.done != nil {
		close(c.done)
	} else {
		c.done = closedChan
	}
	funcs := c.funcs
	c.funcs = nil
	stop := c.stop
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	for _, f := range funcs {
		if f != nil {
			f()
		}
	}
}

func (c *reqCtx) String() string { return "reactord/http.requestContext" }

// bodyReader reads a complete request body copied for the worker; it stops working once the
// handler has returned, since the buffer is then reused.
type bodyReader struct {
	b    []byte
	off  int
	dead atomic.Bool
}

// errBodyAfterHandler is returned by reads of a body after its handler returned.
var errBodyAfterHandler = errBody("http: invalid Read on a request body after its handler returned")

type errBody string

func (e errBody) Error() string { return string(e) }

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

// WriteTo copies the rest of the body to w in one call (io.Copy uses it).
func (b *bodyReader) WriteTo(w io.Writer) (int64, error) {
	if b.dead.Load() {
		return 0, errBodyAfterHandler
	}
	n, err := w.Write(b.b[b.off:])
	b.off += n
	return int64(n), err
}

func (b *bodyReader) invalidate() { b.dead.Store(true) }
