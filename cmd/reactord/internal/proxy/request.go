package proxy

import (
	"strconv"

	codec "github.com/reactord/reactord/codec/http"
)

// via is this proxy's Via entry (RFC 9110 §7.6.3): the protocol it received and a pseudonym.
const via = "1.1 reactord"

// forward describes the hop a request takes, for the fields the proxy adds.
type forward struct {
	clientIP  []byte // the client's address, for X-Forwarded-For; empty if unknown
	proto     string // scheme the client used: "http"
	emptyHost string // Host for a request that came without one (HTTP/1.0): the upstream's
}

// appendRequest appends to dst the request to send upstream for r, and reports whether it asks
// for a protocol upgrade (which the upstream may accept with 101).
//
// It is r re-framed: an origin-form request-line in HTTP/1.1; the client's Host (or the
// authority of an absolute-form target); every end-to-end field as received; none of the
// connection-specific fields, nor those named by Connection; X-Forwarded-For extended with the
// client's address, X-Forwarded-Proto and X-Forwarded-Host set, Via extended; and the body —
// decoded already by the codec whatever its framing — with a Content-Length of its own. A body
// that streams (r.Streamed: chunked, or longer than the codec buffers) is not in r: only the
// head is appended, with the framing the proxy writes the body in as it arrives (body.go) —
// the client's Content-Length, or chunked when the client sent chunked (its chunk boundaries
// and extensions are not kept: the proxy writes its own). An Upgrade request keeps its Upgrade
// field and gets "Connection: Upgrade" (not one whose body streams: the connection cannot
// switch protocols while a body is still on its way). Expect is not forwarded: the codec
// answers 100-continue itself. No allocation.
func appendRequest(dst []byte, r *codec.Request, fw *forward) ([]byte, bool) {
	dst = append(dst, r.Method()...)
	dst = append(dst, ' ')
	dst = appendOriginTarget(dst, r)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	host := r.Host()
	if len(host) == 0 {
		host = []byte(fw.emptyHost)
	}
	dst = append(dst, host...)
	dst = append(dst, "\r\n"...)

	var conn connTokens
	hasUpgrade := false
	n := r.NumHeaders()
	for i := 0; i < n; i++ {
		name, value := r.HeaderAt(i)
		switch classify(name) {
		case fieldHop:
			if equalFold(name, "connection") {
				conn.add(value)
			}
		case fieldUpgrade:
			hasUpgrade = true
		}
	}
	upgrade := conn.upgrade && hasUpgrade && !r.Streamed()
	for i := 0; i < n; i++ {
		name, value := r.HeaderAt(i)
		switch classify(name) {
		case fieldCopy:
			if conn.n > 0 && conn.has(name) {
				continue
			}
		case fieldUpgrade:
			if !upgrade {
				continue
			}
		default:
			// Hop-by-hop, framing, Host, Expect, Trailer (the body goes with a Content-Length,
			// which carries no trailers), and the forwarding fields rewritten below.
			continue
		}
		dst = append(dst, name...)
		dst = append(dst, ": "...)
		dst = append(dst, value...)
		dst = append(dst, "\r\n"...)
	}
	dst = appendXFF(dst, r, fw.clientIP)
	dst = append(dst, "X-Forwarded-Proto: "...)
	dst = append(dst, fw.proto...)
	dst = append(dst, "\r\nX-Forwarded-Host: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\n"...)
	dst = appendVia(dst, r)
	if upgrade {
		dst = append(dst, "Connection: Upgrade\r\n"...)
	}
	body := r.Body()
	switch {
	case r.Streamed() && r.Chunked():
		return append(dst, "Transfer-Encoding: chunked\r\n\r\n"...), false
	case r.Streamed():
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, r.ContentLength(), 10)
		return append(dst, "\r\n\r\n"...), false
	}
	if len(body) > 0 || r.ContentLength() > 0 || r.Chunked() || requestHasContent(r) {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, int64(len(body)), 10)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	return append(dst, body...), upgrade
}

// appendXFF appends X-Forwarded-For: the values received, in order (several lines form one
// list, RFC 9110 §5.3), then the client's address.
func appendXFF(dst []byte, r *codec.Request, clientIP []byte) []byte {
	start := len(dst)
	dst = append(dst, "X-Forwarded-For: "...)
	empty := len(dst)
	for i := 0; i < r.NumHeaders(); i++ {
		name, value := r.HeaderAt(i)
		if len(value) == 0 || classify(name) != fieldXFF {
			continue
		}
		if len(dst) > empty {
			dst = append(dst, ", "...)
		}
		dst = append(dst, value...)
	}
	if len(clientIP) > 0 {
		if len(dst) > empty {
			dst = append(dst, ", "...)
		}
		dst = append(dst, clientIP...)
	}
	if len(dst) == empty {
		return dst[:start]
	}
	return append(dst, "\r\n"...)
}

// requestHasContent reports whether the client declared a body (even an empty one): such a
// request keeps a Content-Length, as methods like POST expect one.
func requestHasContent(r *codec.Request) bool {
	_, ok := r.Header("Content-Length")
	return ok
}

// appendOriginTarget appends the request-target in origin form: an absolute-form target
// ("GET http://host/a?b") becomes "/a?b"; "*" (OPTIONS) and the authority-form of CONNECT
// (which Serve refuses before forwarding) stay as they are.
func appendOriginTarget(dst []byte, r *codec.Request) []byte {
	t := r.Target()
	if len(t) > 0 && (t[0] == '/' || len(t) == 1 && t[0] == '*') || string(r.Method()) == "CONNECT" {
		return append(dst, t...)
	}
	dst = append(dst, r.Path()...)
	if q := r.Query(); q != nil {
		dst = append(dst, '?')
		dst = append(dst, q...)
	}
	return dst
}

// appendVia appends the Via field: the values received, then this proxy.
func appendVia(dst []byte, r *codec.Request) []byte {
	dst = append(dst, "Via: "...)
	for i := 0; i < r.NumHeaders(); i++ {
		name, value := r.HeaderAt(i)
		if len(name) == 3 && equalFold(name, "via") {
			dst = append(dst, value...)
			dst = append(dst, ", "...)
		}
	}
	dst = append(dst, via...)
	return append(dst, "\r\n"...)
}
