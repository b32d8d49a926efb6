package websocket

import (
	"compress/flate"
	"io"
	"strconv"
	"sync"

	rhttp "github.com/reactord/reactord/codec/http"
)

// permessage-deflate (RFC 7692): negotiation, and the compressors and decompressors behind it.

// windowSize is deflate's largest LZ77 window (window bits 15), the one compress/flate uses.
const windowSize = 1 << 15

// deflateTail is what RFC 7692 §7.2.2 has the receiver append to a message's payload before
// inflating: the empty stored block the sender removed. A final empty stored block follows,
// so the decompressor ends with io.EOF instead of waiting for a block that never comes.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// deflateOffer is one permessage-deflate offer of the client, parsed.
type deflateOffer struct {
	serverNoTakeover bool
	clientNoTakeover bool
	serverMaxBits    int // 0 when not offered
	clientMaxBits    int // 0 when not offered or offered without a value
	clientMaxOffered bool
}

// deflateMode is what a connection negotiated.
type deflateMode struct {
	on             bool
	serverTakeover bool // our compressor keeps its window across messages
	clientTakeover bool // the client keeps its window: we keep its last 32 KiB
	huffman        bool // server_max_window_bits < 15: Huffman coding only, no back-references
}

// negotiateDeflate picks the first acceptable permessage-deflate offer among the request's
// Sec-WebSocket-Extensions and appends the response's extension value to dst. An offer that
// breaks RFC 7692 §7 (an unknown or repeated parameter, a bad value) is declined, as is every
// other extension, which the server does not know.
func negotiateDeflate(r *rhttp.Request, cc *Compression, dst []byte) (deflateMode, []byte) {
	for i := 0; i < r.NumHeaders(); i++ {
		name, value := r.HeaderAt(i)
		if !equalFold(name, "Sec-WebSocket-Extensions") {
			continue
		}
		for len(value) > 0 {
			var ext []byte
			ext, value = splitQuoted(value, ',')
			offer, ok := parseDeflateOffer(ext)
			if !ok {
				continue
			}
			m := deflateMode{
				on:             true,
				serverTakeover: cc.ServerContextTakeover && !offer.serverNoTakeover,
				clientTakeover: cc.ClientContextTakeover && !offer.clientNoTakeover,
				huffman:        offer.serverMaxBits != 0 && offer.serverMaxBits < 15 || cc.Level == flate.HuffmanOnly,
			}
			if m.huffman {
				m.serverTakeover = false // Huffman-only output never refers back: nothing to keep
			}
			dst = append(dst, "permessage-deflate"...)
			if !m.serverTakeover {
				dst = append(dst, "; server_no_context_takeover"...)
			}
			if !m.clientTakeover {
				dst = append(dst, "; client_no_context_takeover"...)
			}
			if offer.serverMaxBits != 0 {
				// Accepting the parameter means echoing it with the same or a smaller value.
				dst = append(dst, "; server_max_window_bits="...)
				dst = strconv.AppendInt(dst, int64(offer.serverMaxBits), 10)
			}
			return m, dst
		}
	}
	return deflateMode{}, dst
}

// parseDeflateOffer parses one extension of the list; ok is false unless it is a valid
// permessage-deflate offer.
func parseDeflateOffer(ext []byte) (o deflateOffer, ok bool) {
	name, params := splitQuoted(ext, ';')
	if !equalFold(trimOWS(name), "permessage-deflate") {
		return o, false
	}
	var seen uint8
	for len(params) > 0 {
		var p []byte
		p, params = splitQuoted(params, ';')
		pname, pval := cutByte(p, '=')
		pname = trimOWS(pname)
		hasVal := pval != nil
		var bit uint8
		switch {
		case equalFold(pname, "server_no_context_takeover"):
			bit = 1
			o.serverNoTakeover = true
		case equalFold(pname, "client_no_context_takeover"):
			bit = 2
			o.clientNoTakeover = true
		case equalFold(pname, "server_max_window_bits"):
			bit = 4
			bits, ok := windowBits(pval)
			if !hasVal || !ok {
				return o, false
			}
			o.serverMaxBits = bits
		case equalFold(pname, "client_max_window_bits"):
			bit = 8
			o.clientMaxOffered = true
			if hasVal {
				bits, ok := windowBits(pval)
				if !ok {
					return o, false
				}
				o.clientMaxBits = bits
			}
		default:
			return o, false
		}
		if seen&bit != 0 {
			return o, false
		}
		seen |= bit
		if (bit == 1 || bit == 2) && hasVal {
			return o, false
		}
	}
	return o, true
}

// windowBits parses a window-bits value: a token or quoted-string holding an integer 8..15
// without a leading zero.
func windowBits(v []byte) (int, bool) {
	v = trimOWS(v)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	switch {
	case len(v) == 1 && v[0] >= '8' && v[0] <= '9':
		return int(v[0] - '0'), true
	case len(v) == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5':
		return 10 + int(v[1]-'0'), true
	}
	return 0, false
}

// splitQuoted splits b at the first sep outside a quoted-string.
func splitQuoted(b []byte, sep byte) (before, after []byte) {
	quoted := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			return b[:i], b[i+1:]
		}
	}
	return b, nil
}

// sliceWriter is an io.Writer appending to a slice: the compressors' output.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// deflater is a compressor with its output buffer. Stateless connections take one from a pool
// per message; a connection with server context takeover owns one.
type deflater struct {
	fw  *flate.Writer
	out sliceWriter
}

// maxKeptOutput bounds the output buffer a pooled deflater keeps between messages.
const maxKeptOutput = 64 << 10

func newDeflater(level int) *deflater {
	d := &deflater{}
	d.fw, _ = flate.NewWriter(&d.out, level) // the level was validated by WithCompression
	return d
}

// compress compresses p as one message: the deflate blocks ending in a sync flush, with the
// flush's empty stored block (00 00 ff ff) removed (RFC 7692 §7.2.1). The result lives in the
// deflater's buffer until the next call. reset starts from an empty window (no context
// takeover).
func (d *deflater) compress(p []byte, reset bool) []byte {
	d.out.b = d.out.b[:0]
	if reset {
		d.fw.Reset(&d.out)
	}
	d.fw.Write(p) // writes to a sliceWriter cannot fail
	d.fw.Flush()
	b := d.out.b
	if len(b) >= 4 {
		b = b[:len(b)-4]
	}
	return b
}

// deflaterPool holds stateless compressors of one level, shared by every goroutine that sends.
type deflaterPool struct {
	level int
	p     sync.Pool
}

func (dp *deflaterPool) get() *deflater {
	if d, ok := dp.p.Get().(*deflater); ok {
		return d
	}
	return newDeflater(dp.level)
}

func (dp *deflaterPool) put(d *deflater) {
	if cap(d.out.b) > maxKeptOutput {
		d.out.b = nil
	}
	dp.p.Put(d)
}

// msgSource feeds a compressed message and deflateTail to the decompressor. It is an
// io.ByteReader, so compress/flate reads it directly instead of wrapping it in a bufio.Reader
// (which would allocate).
type msgSource struct {
	b    []byte
	tail int // bytes of deflateTail already read
}

func (s *msgSource) ReadByte() (byte, error) {
	if len(s.b) > 0 {
		c := s.b[0]
		s.b = s.b[1:]
		return c, nil
	}
	if s.tail < len(deflateTail) {
		c := deflateTail[s.tail]
		s.tail++
		return c, nil
	}
	return 0, io.EOF
}

func (s *msgSource) Read(p []byte) (int, error) {
	if len(s.b) > 0 {
		n := copy(p, s.b)
		s.b = s.b[n:]
		return n, nil
	}
	if s.tail < len(deflateTail) {
		n := copy(p, deflateTail[s.tail:])
		s.tail += n
		return n, nil
	}
	return 0, io.EOF
}

// inflater is a loop's decompressor, reset for every message (with the connection's window
// as the dictionary when the client keeps its context).
type inflater struct {
	fr  io.ReadCloser
	src msgSource
}

// inflateResult says how inflating a message ended.
type inflateResult uint8

const (
	inflateOK inflateResult = iota
	inflateTooBig
	inflateCorrupt
)

// inflate decompresses payload into dst (reusing its storage, growing it through grow) and
// stops as soon as the output would exceed limit: a small message cannot expand into unbounded
// memory.
func (f *inflater) inflate(dst, payload, dict []byte, limit int, grow func([]byte, int) []byte) ([]byte, inflateResult) {
	f.src = msgSource{b: payload}
	if f.fr == nil {
		f.fr = flate.NewReader(&f.src)
	}
	f.fr.(flate.Resetter).Reset(&f.src, dict)
	dst = dst[:0]
	for {
		if len(dst) == cap(dst) {
			if len(dst) > limit {
				return dst, inflateTooBig
			}
			dst = grow(dst, min(max(len(dst), 4096), limit+1-len(dst)))
		}
		n, err := f.fr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > limit {
			return dst, inflateTooBig
		}
		switch {
		case err == io.EOF:
			return dst, inflateOK
		case err != nil:
			return dst, inflateCorrupt
		}
	}
}

// window keeps the last 32 KiB a client with context takeover sent: the dictionary for its
// next message.
type window struct{ b []byte }

func (w *window) add(p []byte) {
	if w.b == nil {
		w.b = make([]byte, 0, windowSize)
	}
	if len(p) >= windowSize {
		w.b = append(w.b[:0], p[len(p)-windowSize:]...)
		return
	}
	if over := len(w.b) + len(p) - windowSize; over > 0 {
		w.b = w.b[:copy(w.b, w.b[over:])]
	}
	w.b = append(w.b, p...)
}
