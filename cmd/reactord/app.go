package main

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/reactord/reactord/cmd/reactord/internal/metrics"
	"github.com/reactord/reactord/cmd/reactord/internal/static"
)

// app decides the answer to every request, independently of the transport: the method
// check, "OPTIONS *", the probes (/healthz, /readyz, /livez) and /metrics, then the static
// files under -root, or the built-in page when there is no root. Every 2xx it gives goes
// through the static package's rules (preconditions, HEAD, OPTIONS), so /healthz answers
// If-None-Match: * with 304 like a file. It is safe for concurrent use by all loops.
//
// Each configuration generation has its own app (its root, its page); the admin listener has
// one that serves only the probes and /metrics (noContent), and with -admin-listen the public
// one serves only content (noOps).
type app struct {
	files   *static.FS // nil without -root
	page    []byte     // the built-in page, rendered once at start
	pageTag string     // its ETag, computed with it (see setPage)
	metrics *metrics.Metrics
	// status is the process's lifecycle as the probes report it; nil reads as serving.
	status *status
	// noOps leaves the probes and /metrics to the admin listener (they are content paths
	// then); noContent answers 404 for everything but them.
	noOps, noContent bool

	bufs sync.Pool // *bytes.Buffer for /metrics bodies
}

// status is what the probes report, shared by every app of the process.
type status struct {
	// stopping turns /healthz and /readyz to 503 once a shutdown starts, so a load balancer
	// or Kubernetes stops sending new requests while the in-flight ones finish. A process
	// that hands its sockets to a new binary does not set it: the service goes on.
	stopping atomic.Bool
}

func (s *status) isStopping() bool { return s != nil && s.stopping.Load() }

var (
	okBody       = []byte("ok\n")
	drainingBody = []byte("shutting down\n")
	aliveBody    = []byte("alive\n")
	notFound     = []byte("404 Not Found\n")
	internalErr  = []byte("500 Internal Server Error\n")
)

const textPlain = "text/plain; charset=utf-8"

// Reserved paths, answered before the static files (on the admin listener instead, with
// -admin-listen). /healthz and /readyz are the same readiness check (/healthz predates the
// others); /livez only says the process answers, so a liveness probe does not fail while a
// shutdown drains.
const (
	healthPath  = "/healthz"
	readyPath   = "/readyz"
	livePath    = "/livez"
	metricsPath = "/metrics"
)

// health is /healthz while serving: no validators (If-None-Match: * still gives 304, and
// If-Match with a tag 412), never stored by a cache.
var health = static.Content{Type: textPlain, Body: okBody, CacheControl: "no-store"}

// alive is /livez, at every stage.
var alive = static.Content{Type: textPlain, Body: aliveBody, CacheControl: "no-store"}

// answersItself reports whether path is one of the operational paths this app answers
// whatever else is configured (a proxy route for "/" included): /healthz, /readyz, /livez and
// /metrics, unless the admin listener has them.
func (a *app) answersItself(path []byte) bool {
	if a.noOps {
		return false
	}
	switch string(path) {
	case healthPath, readyPath, livePath, metricsPath:
		return true
	}
	return false
}

// setPage installs the built-in page and its entity-tag.
func (a *app) setPage(page []byte) {
	a.page, a.pageTag = page, static.ContentETag(page)
}

// isOps reports whether target is one of the reserved paths this app answers itself (the
// probes and /metrics), which -redirect-http leaves on plain HTTP so probes and scrapers need
// no certificate.
func (a *app) isOps(target string) bool {
	if a.noOps {
		return false
	}
	if i := strings.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	switch target {
	case healthPath, readyPath, livePath, metricsPath:
		return true
	}
	return false
}

// handle answers one request. A Response with a File must be closed by the caller once sent.
func (a *app) handle(r *static.Request) static.Response {
	// Methods first, whatever the path: a refused method never reveals what exists.
	if resp, ok := static.CheckMethod(r.Method); !ok {
		return resp
	}
	path := r.Target
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if path == "*" {
		// The codec accepts the asterisk-form for OPTIONS only: a question about the server
		// as a whole (RFC 9110 §9.3.7).
		return static.OptionsResponse()
	}
	if !a.noOps {
		switch path {
		case healthPath, readyPath:
			if a.status.isStopping() {
				// Not a 2xx, so preconditions do not apply (RFC 9110 §13.2.1).
				return simple(503, textPlain, drainingBody, r.Method, static.Field{Name: "Cache-Control", Value: "no-store"})
			}
			return static.ServeContent(r, &health)
		case livePath:
			return static.ServeContent(r, &alive)
		case metricsPath:
			return a.metricsResponse(r)
		}
	}
	if a.noContent {
		return simple(404, textPlain, notFound, r.Method)
	}
	if a.files != nil {
		return a.files.Serve(r)
	}
	if path == "/" || path == "/index.html" {
		return static.ServeContent(r, &static.Content{
			Type: "text/html; charset=utf-8", Body: a.page, ETag: a.pageTag, CacheControl: "no-cache", Ranges: true,
		})
	}
	return simple(404, textPlain, notFound, r.Method)
}

func (a *app) metricsResponse(r *static.Request) static.Response {
	c := static.Content{Type: metrics.ContentType, CacheControl: "no-store"}
	if r.Method == "OPTIONS" {
		return static.ServeContent(r, &c) // no need to render the body
	}
	buf, _ := a.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	defer a.bufs.Put(buf)
	if err := a.metrics.WriteText(buf); err != nil {
		return simple(500, textPlain, internalErr, r.Method)
	}
	// The body outlives this call (the transport sends it later), so it is copied out of the
	// pooled buffer.
	c.Body = bytes.Clone(buf.Bytes())
	return static.ServeContent(r, &c)
}

// simple builds an in-memory response that is not a 2xx (no preconditions apply); HEAD gets
// the headers and length without the body.
func simple(status int, ctype string, body []byte, method string, extra ...static.Field) static.Response {
	h := make([]static.Field, 0, 1+len(extra))
	h = append(h, static.Field{Name: "Content-Type", Value: ctype})
	h = append(h, extra...)
	r := static.Response{Status: status, Header: h, ContentLength: int64(len(body)), Body: body}
	if method == "HEAD" {
		r.Body = nil
	}
	return r
}
