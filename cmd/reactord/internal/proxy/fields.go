package proxy

// Which header fields a proxy forwards (RFC 9110 §7.6.1). Connection-specific fields describe
// one hop, not the message: the proxy removes them, and every field the Connection header
// names, before forwarding in either direction. Framing fields are not copied either: the
// proxy re-frames every message it forwards (Content-Length for a request body; the codec's
// writer chooses the framing of a response), so no framing a peer might read differently
// ever crosses it.

// maxConnTokens bounds the field names a Connection header may list for removal; a message
// naming more gets the excess fields forwarded (harmless: they are end-to-end to us) rather
// than an allocation.
const maxConnTokens = 16

// connTokens holds the names listed by a message's Connection fields, as views into the
// message buffer.
type connTokens struct {
	names   [maxConnTokens][]byte
	n       int
	upgrade bool // "upgrade" was listed
	close   bool // "close" was listed
}

// add records the tokens of one Connection field value.
func (t *connTokens) add(v []byte) {
	for len(v) > 0 {
		var tok []byte
		if c := indexByte(v, ','); c >= 0 {
			tok, v = v[:c], v[c+1:]
		} else {
			tok, v = v, nil
		}
		tok = trimOWS(tok)
		switch {
		case len(tok) == 0:
			continue
		case equalFold(tok, "upgrade"):
			t.upgrade = true
		case equalFold(tok, "close"):
			t.close = true
		}
		if t.n < maxConnTokens {
			t.names[t.n] = tok
			t.n++
		}
	}
}

// has reports whether name was listed.
func (t *connTokens) has(name []byte) bool {
	for i := 0; i < t.n; i++ {
		if equalFoldBytes(t.names[i], name) {
			return true
		}
	}
	return false
}

// fieldKind classifies a header field name for forwarding.
type fieldKind uint8

const (
	fieldCopy          fieldKind = iota // end-to-end: forwarded as received
	fieldHop                            // connection-specific: never forwarded
	fieldFraming                        // Content-Length, Transfer-Encoding: re-framed
	fieldHost                           // Host: written by the proxy
	fieldXFF                            // X-Forwarded-For: extended
	fieldXForwardedOwn                  // X-Forwarded-Proto, X-Forwarded-Host: replaced
	fieldVia                            // Via: extended
	fieldUpgrade                        // Upgrade: forwarded only with an upgrade
	fieldExpect                         // Expect: the codec answered 100-continue itself
	fieldTrailer                        // Trailer: announces trailers we may not forward
)

// classify returns how a field named name is forwarded. Names are matched ASCII
// case-insensitively, by length first so the common fields cost a couple of comparisons.
func classify(name []byte) fieldKind {
	switch len(name) {
	case 2:
		if equalFold(name, "te") {
			return fieldHop
		}
	case 3:
		if equalFold(name, "via") {
			return fieldVia
		}
	case 4:
		if equalFold(name, "host") {
			return fieldHost
		}
	case 6:
		if equalFold(name, "expect") {
			return fieldExpect
		}
	case 7:
		switch {
		case equalFold(name, "upgrade"):
			return fieldUpgrade
		case equalFold(name, "trailer"):
			return fieldTrailer
		}
	case 10:
		switch {
		case equalFold(name, "connection"), equalFold(name, "keep-alive"):
			return fieldHop
		}
	case 14:
		if equalFold(name, "content-length") {
			return fieldFraming
		}
	case 15:
		if equalFold(name, "x-forwarded-for") {
			return fieldXFF
		}
	case 16:
		if equalFold(name, "proxy-connection") {
			return fieldHop
		}
		if equalFold(name, "x-forwarded-host") {
			return fieldXForwardedOwn
		}
	case 17:
		switch {
		case equalFold(name, "transfer-encoding"):
			return fieldFraming
		case equalFold(name, "x-forwarded-proto"):
			return fieldXForwardedOwn
		}
	case 18:
		if equalFold(name, "proxy-authenticate") {
			return fieldHop
		}
	case 19:
		if equalFold(name, "proxy-authorization") {
			return fieldHop
		}
	}
	return fieldCopy
}

// ASCII helpers for header names, compared with string constants: bytes.EqualFold would need
// each constant as a []byte and decodes UTF-8 the names never hold.

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
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

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}
