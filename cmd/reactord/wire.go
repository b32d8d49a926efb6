package main

import (
	"bytes"
	"io"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/reactord/reactord/cmd/reactord/internal/accesslog"
	"github.com/reactord/reactord/cmd/reactord/internal/metrics"
	"github.com/reactord/reactord/cmd/reactord/internal/proxy"
	"github.com/reactord/reactord/cmd/reactord/internal/static"
	codec "github.com/reactord/reactord/codec/http"
)

// responder is what one of the daemon's HTTP servers serves: an app, and where its requests are
// counted and logged. Its methods run on the server's loops.
type responder struct {
	app     *app
	log     *zap.Logger
	metrics *metrics.Metrics  // nil: requests are not counted
	access  *accesslog.Logger // nil: not logged
	proxy   *proxy.Proxy      // nil: no proxy routes
	// closing makes every response the last on its connection ("Connection: close"): set
	// while the server is retired (a reload or an upgrade replaced it, or a shutdown began),
	// so keep-alive clients reconnect, to the successor, at a moment they choose, between
	// requests, instead of finding their connection closed under a request they just sent.
	closing atomic.Bool
	// hsts is the Strict-Transport-Security value added to responses over TLS ("" = none).
	hsts string
	// redirectPort, when set (-redirect-http), sends requests that did not come over TLS to
	// https on this port with 301, the probes and /metrics excepted.
	redirectPort string
}

// wireHandler is the responder as the codec's native handler: Handle, and StreamBody
// (codec.BodyStreamer) so a request body bound for a proxy route streams to its upstream as it
// arrives instead of being read whole first.
type wireHandler struct{ s *responder }

func (h wireHandler) Handle(w *codec.ResponseWriter, r *codec.Request) { h.s.handle(w, r) }

// StreamBody is called for a request whose body is chunked or longer than 64 KiB, once its
// head is complete. A proxied one gets the proxy's receiver; any other body is buffered as
// before (nil), within max-body-bytes — which bounds a streamed body too.
func (h wireHandler) StreamBody(r *codec.Request) io.Writer {
	s := h.s
	if p := s.proxy; p != nil && !s.app.answersItself(r.Path()) {
		if g := p.Table().Match(r.Host(), r.Path()); g != nil {
			return p.StreamBody(g, s.closing.Load())
		}
	}
	return nil
}

// handle is the native codec handler: it runs on the connection's loop, turns the request
// view into a static.Request, lets the app decide, and writes the decision. A file body is
// queued with SendFile (sendfile(2) under the reactor's backpressure), so no file byte passes
// through user space and a slow client only pauses its own connection.
func (s *responder) handle(w *codec.ResponseWriter, r *codec.Request) {
	if p := s.proxy; p != nil && !s.app.answersItself(r.Path()) {
		if g := p.Table().Match(r.Host(), r.Path()); g != nil {
			if s.closing.Load() {
				w.SetClose()
			}
			p.Handle(w, r, g)
			return
		}
	}
	req := static.Request{Method: r.MethodString(), Target: requestTarget(r)}
	// One pass over the header fields; a field sent on several lines is joined with ", "
	// (RFC 9110 §5.3), which is how the static layer expects lists.
	for i := 0; i < r.NumHeaders(); i++ {
		name, value := r.HeaderAt(i)
		var dst *string
		switch {
		case bytes.EqualFold(name, hIfNoneMatch):
			dst = &req.IfNoneMatch
		case bytes.EqualFold(name, hIfModifiedSince):
			dst = &req.IfModifiedSince
		case bytes.EqualFold(name, hRange):
			dst = &req.Range
		case bytes.EqualFold(name, hIfRange):
			dst = &req.IfRange
		case bytes.EqualFold(name, hIfMatch):
			dst = &req.IfMatch
		case bytes.EqualFold(name, hIfUnmodifiedSince):
			dst = &req.IfUnmodifiedSince
		default:
			continue
		}
		if *dst == "" {
			*dst = string(value)
		} else {
			*dst += ", " + string(value)
		}
	}
	var resp static.Response
	overTLS := (s.hsts != "" || s.redirectPort != "") && w.TLS() != nil
	if s.redirectPort != "" && !overTLS && !s.app.isOps(req.Target) {
		resp = s.redirect(r, &req)
	} else {
		resp = s.app.handle(&req)
	}
	defer resp.Close() // SendFile dup'd the descriptor; ours can go
	if s.closing.Load() {
		w.SetClose()
	}
	if overTLS && s.hsts != "" {
		resp.Header = append(resp.Header, static.Field{Name: "Strict-Transport-Security", Value: s.hsts})
	}
	s.write(w, &resp)
}

var (
	hIfNoneMatch       = []byte("If-None-Match")
	hIfModifiedSince   = []byte("If-Modified-Since")
	hRange             = []byte("Range")
	hIfRange           = []byte("If-Range")
	hIfMatch           = []byte("If-Match")
	hIfUnmodifiedSince = []byte("If-Unmodified-Since")
)

// requestTarget rebuilds an origin-form target from the path and query, so an absolute-form
// request ("GET http://host/a.txt") is served like "GET /a.txt".
func requestTarget(r *codec.Request) string {
	p, q := r.Path(), r.Query()
	if q == nil {
		return string(p)
	}
	b := make([]byte, 0, len(p)+1+len(q))
	b = append(append(append(b, p...), '?'), q...)
	return string(b)
}

// write sends a decision through the codec's writer. The header values come from the static
// layer (extensions, escaped paths, numbers), so a refusal by Set would be a bug: it is
// logged, and the response goes out without that field.
func (s *responder) write(w *codec.ResponseWriter, resp *static.Response) {
	if err := w.SetStatus(resp.Status); err != nil {
		s.log.Error("response status", zap.Int("status", resp.Status), zap.Error(err))
		return
	}
	for _, f := range resp.Header {
		if err := w.Set(f.Name, f.Value); err != nil {
			s.log.Error("response header", zap.String("name", f.Name), zap.Error(err))
		}
	}
	switch {
	case resp.File != nil:
		if err := w.SendFile(resp.File, resp.Offset, resp.ContentLength); err != nil {
			// The connection failed (peer gone, dup failed): the codec closes it.
			s.log.Debug("sendfile", zap.Error(err))
		}
	case resp.Body != nil:
		if err := w.SetContentLength(int64(len(resp.Body))); err == nil {
			_, _ = w.Write(resp.Body)
		}
	case resp.ContentLength >= 0:
		// HEAD, or an empty body: the length a GET would carry, no bytes.
		_ = w.SetContentLength(resp.ContentLength)
	}
}

// observe runs on the loop after every response, the codec's own error responses included:
// one metrics update and, when enabled, one access log line.
func (s *responder) observe(info *codec.RequestInfo) {
	s.metrics.Observe(info.Method, info.Status, info.Duration)
	if !s.access.Enabled() {
		return
	}
	if e, ok := info.Tag.(*proxy.Exchange); ok {
		s.access.LogUpstream(info.Method, info.Path, info.Status, info.BytesOut, info.Duration, info.RemoteAddrPort(),
			accesslog.Upstream{Addr: e.Upstream(), Status: e.UpstreamStatus(), Duration: e.UpstreamTime()})
		return
	}
	s.access.Log(info.Method, info.Path, info.Status, info.BytesOut, info.Duration, info.RemoteAddrPort())
}

var movedBody = []byte("301 Moved Permanently: use https\n")

// redirect is -redirect-http's answer to a request that came in without TLS: 301 to the same
// target over https, or 400 when the request names no usable host.
func (s *responder) redirect(r *codec.Request, req *static.Request) static.Response {
	loc := redirectTarget(string(r.Host()), req.Target, s.redirectPort)
	if loc == "" {
		return simple(400, textPlain, []byte("400 Bad Request: no Host to redirect to\n"), req.Method)
	}
	return simple(301, textPlain, movedBody, req.Method, static.Field{Name: "Location", Value: loc})
}
