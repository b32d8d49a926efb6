package websocket

import (
	"crypto/sha1"
	"encoding/base64"

	rhttp "github.com/reactord/reactord/codec/http"
)

// acceptGUID is appended to the client's key before hashing (RFC 6455 §1.3).
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey returns Sec-WebSocket-Accept for a Sec-WebSocket-Key: the base64 of the SHA-1 of
// the key followed by the protocol's GUID (RFC 6455 §4.2.2). It is exported for tests and for
// clients; Upgrader.Upgrade computes it without allocating.
func AcceptKey(key string) string {
	var dst [28]byte
	return string(appendAccept(dst[:0], []byte(key)))
}

// appendAccept appends the accept key for key to dst.
func appendAccept(dst, key []byte) []byte {
	var buf [64 + len(acceptGUID)]byte
	in := append(buf[:0], key...)
	in = append(in, acceptGUID...)
	sum := sha1.Sum(in)
	var enc [28]byte
	base64.StdEncoding.Encode(enc[:], sum[:])
	return append(dst, enc[:]...)
}

// handshakeError is a refused opening handshake: the status to answer with and why.
type handshakeError struct {
	status int
	reason string
}

// Handshake refusals. The reason is sent as the response body and wrapped in ErrBadHandshake.
var (
	hsMethod      = &handshakeError{rhttp.StatusMethodNotAllowed, "the WebSocket handshake is a GET request"}
	hsVersion     = &handshakeError{rhttp.StatusBadRequest, "the WebSocket handshake needs HTTP/1.1 or later"}
	hsUpgrade     = &handshakeError{426, "Upgrade: websocket and Connection: Upgrade are required"}
	hsWSVersion   = &handshakeError{426, "Sec-WebSocket-Version must be 13"}
	hsKey         = &handshakeError{rhttp.StatusBadRequest, "Sec-WebSocket-Key must be one base64 value of 16 bytes"}
	hsOrigin      = &handshakeError{rhttp.StatusForbidden, "origin not allowed"}
	hsShutdown    = &handshakeError{rhttp.StatusServiceUnavailable, "server shutting down"}
	hsUnavailable = &handshakeError{rhttp.StatusServiceUnavailable, "connection cannot be upgraded"}
)

// checkRequest validates the opening handshake (RFC 6455 §4.2.1) and returns the client's key.
func checkRequest(r *rhttp.Request) ([]byte, *handshakeError) {
	if string(r.Method()) != "GET" {
		return nil, hsMethod
	}
	if major, minor := r.Proto(); major != 1 || minor < 1 {
		return nil, hsVersion
	}
	if !headerHasToken(r, "Upgrade", "websocket") || !headerHasToken(r, "Connection", "upgrade") {
		return nil, hsUpgrade
	}
	var key []byte
	nver, nkey := 0, 0
	for i := 0; i < r.NumHeaders(); i++ {
		name, value := r.HeaderAt(i)
		switch {
		case equalFold(name, "Sec-WebSocket-Version"):
			nver++
			if string(value) != "13" {
				return nil, hsWSVersion
			}
		case equalFold(name, "Sec-WebSocket-Key"):
			nkey++
			key = value
		}
	}
	if nver != 1 {
		return nil, hsWSVersion
	}
	if nkey != 1 || !validKey(key) {
		return nil, hsKey
	}
	return key, nil
}

// validKey reports whether key is the base64 encoding (with padding) of exactly 16 bytes.
func validKey(key []byte) bool {
	if len(key) != 24 {
		return false
	}
	var raw [18]byte
	n, err := base64.StdEncoding.Decode(raw[:], key)
	return err == nil && n == 16
}

// sameOrigin is the default origin check: no Origin header, or one whose host[:port] equals
// the Host header (ASCII case-insensitive).
func sameOrigin(r *rhttp.Request) bool {
	origin, ok := r.Header("Origin")
	if !ok {
		return true
	}
	// Origin is scheme "://" host [ ":" port ] (RFC 6454); "null" never matches.
	i := indexString(origin, "://")
	if i < 0 {
		return false
	}
	return equalFoldBytes(origin[i+3:], r.Host())
}

// selectSubprotocol returns the first of the server's subprotocols that the client offered.
func selectSubprotocol(r *rhttp.Request, server []string) string {
	for _, p := range server {
		if headerHasToken(r, "Sec-WebSocket-Protocol", p) {
			return p
		}
	}
	return ""
}

// headerHasToken reports whether any header line named name holds token in its
// comma-separated list (ASCII case-insensitive, optional whitespace around elements).
func headerHasToken(r *rhttp.Request, name, token string) bool {
	for i := 0; i < r.NumHeaders(); i++ {
		n, v := r.HeaderAt(i)
		if !equalFold(n, name) {
			continue
		}
		for len(v) > 0 {
			var elem []byte
			elem, v = cutByte(v, ',')
			if equalFold(trimOWS(elem), token) {
				return true
			}
		}
	}
	return false
}

func cutByte(b []byte, sep byte) (before, after []byte) {
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:]
		}
	}
	return b, nil
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFold compares b with s, ASCII case-insensitively.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func equalFoldBytes(a, b []byte) bool { return equalFold(a, string(b)) }

func indexString(b []byte, s string) int {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return i
		}
	}
	return -1
}

// isToken reports whether s is a non-empty HTTP token (RFC 9110 §5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if !tokenChar(s[i]) {
			return false
		}
	}
	return true
}

func tokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
