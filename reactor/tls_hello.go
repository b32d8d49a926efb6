package reactor

import "errors"

// The loop looks at a TLS connection's first bytes itself, before any handshake worker is
// involved: it waits until the whole ClientHello has arrived, and refuses at once what cannot
// be one. So a client that connects and sends nothing, or half a hello, or plaintext, costs no
// goroutine, only its descriptor until the handshake timeout; crypto/tls does the real
// validation once a worker runs the handshake.

// TLS record and handshake constants (RFC 8446 §5.1, §4).
const (
	recordHeaderLen     = 5
	recordTypeHandshake = 22
	handshakeHeaderLen  = 4
	typeClientHello     = 1
	// maxHelloRecord is the largest record length accepted while waiting for the hello: a
	// plaintext record carries at most 2^14 bytes (RFC 8446 §5.1); TLS 1.2 allows 2048 more
	// for a ciphertext, and crypto/tls checks the exact bound.
	maxHelloRecord = 1<<14 + 2048
	// maxClientHello bounds the ClientHello message (crypto/tls reads at most 64 KiB of one
	// handshake message; real hellos, with post-quantum key shares, are a few KiB).
	maxClientHello = 1 << 16
)

var (
	errNotTLS    = errors.New("reactor: TLS: the client's first bytes are not a TLS handshake record")
	errBadHello  = errors.New("reactor: TLS: the first handshake message is not a ClientHello")
	errHelloSize = errors.New("reactor: TLS: ClientHello larger than 64 KiB")
)

// clientHelloComplete reports whether b, the bytes received so far on a TLS connection,
// begins with a complete ClientHello message, possibly spread over several handshake records,
// ending at a record boundary. It returns an error as soon as b cannot be the start of one.
// plain reports whether the error is for bytes that look like plaintext (an ASCII letter
// first: an HTTP request, say), which a listener may answer before closing.
func clientHelloComplete(b []byte) (complete, plain bool, err error) {
	var hdr [handshakeHeaderLen]byte
	have := 0  // handshake bytes seen so far, across records
	need := -1 // 4 + the ClientHello's length, once its header has been seen
	for off := 0; off < len(b); {
		rec := b[off:]
		// Check what has arrived of the record header, byte by byte, so garbage is refused
		// on its first byte rather than after five.
		if rec[0] != recordTypeHandshake {
			return false, off == 0 && isASCIILetter(rec[0]), errNotTLS
		}
		if len(rec) >= 2 && rec[1] != 3 {
			return false, false, errNotTLS // major version 3 in every SSL 3 / TLS record
		}
		if len(rec) < recordHeaderLen {
			return false, false, nil
		}
		n := int(rec[3])<<8 | int(rec[4])
		if n == 0 || n > maxHelloRecord {
			return false, false, errNotTLS
		}
		payload := rec[recordHeaderLen:min(len(rec), recordHeaderLen+n)]
		i := 0
		for ; have < handshakeHeaderLen && i < len(payload); i++ {
			hdr[have] = payload[i]
			have++
			if have == handshakeHeaderLen {
				if hdr[0] != typeClientHello {
					return false, false, errBadHello
				}
				need = handshakeHeaderLen + (int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3]))
				if need > maxClientHello {
					return false, false, errHelloSize
				}
			}
		}
		have += len(payload) - i
		if len(rec) < recordHeaderLen+n {
			return false, false, nil // the record is not complete yet
		}
		off += recordHeaderLen + n
		if need >= 0 && have >= need {
			return true, false, nil
		}
	}
	return false, false, nil
}

func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
