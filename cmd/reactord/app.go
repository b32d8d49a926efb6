package main

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/reactord/reactord/internal/metrics"
	"github.com/reactord/reactord/internal/static"
)

// app decides the answer to every request, independently of the transport: /healthz,
// /metrics, then the static files under -root, or the built-in page when there is no root.
// It is safe for concurrent use by all loops.
type app struct {
	files   *static.FS // nil without -root
	page    []byte     // the built-in page, rendered once at start
	metrics *metrics.Metrics

	// draining turns /healthz to 503 once shutdown starts, so a load balancer that probes
	// it stops sending new requests while the in-flight ones finish.
	draining atomic.Bool

	bufs sync.Pool // *bytes.Buffer for /metrics bodies
}

var (
	okBody       = []byte("ok\n")
	drainingBody = []byte("shutting down\n")
	notFound     = []byte("404 Not Found\n")
	noAllow      = []byte("405 Method Not Allowed\n")
	internalErr  = []byte("500 Internal Server Error\n")
)

const textPlain = "text/plain; charset=utf-8"

// Reserved paths, answered before the static files.
const (
	healthPath  = "/healthz"
	metricsPath = "/metrics"
)

// handle answers one request. A Response with a File must be closed by the caller once sent.
func (a *app) handle(r *static.Request) static.Response {
	path := r.Target
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	switch path {
	case healthPath:
		if !getOrHead(r.Method) {
			return simple(405, textPlain, noAllow, r.Method, static.Field{Name: "Allow", Value: "GET, HEAD"})
		}
		if a.draining.Load() {
			return simple(503, textPlain, drainingBody, r.Method, static.Field{Name: "Cache-Control", Value: "no-store"})
		}
		return simple(200, textPlain, okBody, r.Method, static.Field{Name: "Cache-Control", Value: "no-store"})
	case metricsPath:
		if !getOrHead(r.Method) {
			return simple(405, textPlain, noAllow, r.Method, static.Field{Name: "Allow", Value: "GET, HEAD"})
		}
		return a.metricsResponse(r.Method)
	}
	if a.files != nil {
		return a.files.Serve(r)
	}
	if path == "/" || path == "/index.html" {
		if !getOrHead(r.Method) {
			return simple(405, textPlain, noAllow, r.Method, static.Field{Name: "Allow", Value: "GET, HEAD"})
		}
		return simple(200, "text/html; charset=utf-8", a.page, r.Method, static.Field{Name: "Cache-Control", Value: "no-cache"})
	}
	return simple(404, textPlain, notFound, r.Method)
}

func (a *app) metricsResponse(method string) static.Response {
	buf, _ := a.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	defer a.bufs.Put(buf)
	if err := a.metrics.WriteText(buf); err != nil {
		return simple(500, textPlain, internalErr, method)
	}
	// The body outlives this call (the transport sends it later), so it is copied out of the
	// pooled buffer.
	body := bytes.Clone(buf.Bytes())
	return simple(200, metrics.ContentType, body, method, static.Field{Name: "Cache-Control", Value: "no-store"})
}

func getOrHead(m string) bool { return m == "GET" || m == "HEAD" }

// simple builds an in-memory response; HEAD gets the headers and length without the body.
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
