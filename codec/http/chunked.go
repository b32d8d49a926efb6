package http

import (
	"bytes"
	"math"
)

type chunkState uint8

const (
	chunkSizeLine chunkState = iota // reading chunk-size [chunk-ext] CRLF
	chunkData                       // copying chunk-data
	chunkDataEnd                    // expecting the CRLF after chunk-data
	chunkTrailer                    // reading trailer field lines up to the empty line
	chunkDone
)

// ChunkedDecoder decodes a chunked message body (RFC 9112 §7.1) incrementally: chunk-size lines
// with strict extension syntax, chunk data, the last-chunk and the trailer section.
//
// Input contract: Decode is called with the whole unconsumed body region each time — the bytes of
// the previous call, unchanged, with new bytes appended — and resumes where it stopped, so a body
// arriving one byte at a time costs linear time. Decoded data is appended to dst; nothing else is
// copied. Trailer spans refer to that same input.
//
// A ChunkedDecoder is not safe for concurrent use; it belongs to one connection's loop.
type ChunkedDecoder struct {
	lim      Limits
	state    chunkState
	off      int // next unprocessed input byte
	scan     int // LF search resumes here while in a line state
	remain   int64
	total    int64
	tstart   int // start of the trailer section
	trailers []field
	work     int // bytes examined by line searches (linearity test)
}

// NewChunkedDecoder returns a decoder enforcing l (zero fields take defaults): MaxBodyBytes on
// the decoded size, MaxChunkLineBytes per chunk-size line, MaxHeaderBytes and MaxHeaderCount on
// the trailer section, AllowBareLF for line ends. It returns ErrInvalidLimits for bad limits.
func NewChunkedDecoder(l Limits) (*ChunkedDecoder, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	d := &ChunkedDecoder{}
	d.init(l.withDefaults())
	return d, nil
}

func (d *ChunkedDecoder) init(l Limits) {
	d.lim = l
	d.Reset()
}

// Reset prepares the decoder for a new body, keeping its limits and trailer storage.
func (d *ChunkedDecoder) Reset() {
	*d = ChunkedDecoder{lim: d.lim, trailers: d.trailers[:0]}
}

// Decode continues decoding in (see the input contract on ChunkedDecoder) and appends decoded
// chunk data to dst, returning the extended slice.
//
// It returns n > 0 once the body is complete, n being the number of input bytes the body used
// up to and including the trailer section's final CRLF; further calls return the same result.
// n == 0 with a nil error means more input is needed. Errors are *ParseError values
// (ErrChunkSize, ErrChunkExtension, ErrChunkLineTooLong, ErrChunkData, ErrBodyTooLarge, the
// field errors for trailers) or ErrInputShrank when in is shorter than already processed.
func (d *ChunkedDecoder) Decode(dst, in []byte) (out []byte, n int, err error) {
	if d.off > len(in) || d.scan > len(in) {
		return dst, 0, ErrInputShrank
	}
	for {
		switch d.state {
		case chunkSizeLine:
			// Fail fast on a line that cannot become a chunk-size, before any other check so
			// the verdict does not depend on how the input was split.
			if d.off < len(in) && !isHex(in[d.off]) {
				return dst, 0, ErrChunkSize
			}
			start, end, lf, perr := d.nextLine(in, d.off, d.lim.MaxChunkLineBytes, ErrChunkLineTooLong)
			if perr != nil {
				return dst, 0, perr
			}
			if lf < 0 {
				return dst, 0, nil
			}
			size, perr := parseChunkLine(in[start:end])
			if perr != nil {
				return dst, 0, perr
			}
			d.off = lf + 1
			if size == 0 {
				d.state, d.tstart = chunkTrailer, d.off
				continue
			}
			if size > d.lim.MaxBodyBytes-d.total {
				return dst, 0, ErrBodyTooLarge
			}
			d.total += size
			d.remain, d.state = size, chunkData
		case chunkData:
			avail := len(in) - d.off
			if avail == 0 {
				return dst, 0, nil
			}
			k := d.remain
			if int64(avail) < k {
				k = int64(avail)
			}
			dst = append(dst, in[d.off:d.off+int(k)]...)
			d.off += int(k)
			d.remain -= k
			if d.remain > 0 {
				return dst, 0, nil
			}
			d.state = chunkDataEnd
		case chunkDataEnd:
			// Exactly CRLF must follow the data; anything else means the sender wrote more
			// (or less) than it declared — the classic chunk smuggling shape.
			if d.off >= len(in) {
				return dst, 0, nil
			}
			switch in[d.off] {
			case '\r':
				if d.off+1 >= len(in) {
					return dst, 0, nil
				}
				if in[d.off+1] != '\n' {
					return dst, 0, ErrChunkData
				}
				d.off += 2
			case '\n':
				if !d.lim.AllowBareLF {
					return dst, 0, ErrChunkData
				}
				d.off++
			default:
				return dst, 0, ErrChunkData
			}
			d.state = chunkSizeLine
		case chunkTrailer:
			if d.off > math.MaxInt32-d.lim.MaxHeaderBytes-2 {
				// Trailer spans are int32 offsets from the start of the body region.
				return dst, 0, ErrBodyTooLarge
			}
			start, end, lf, perr := d.nextLine(in, d.tstart, d.lim.MaxHeaderBytes, ErrHeaderTooLarge)
			if perr != nil {
				return dst, 0, perr
			}
			if lf < 0 {
				return dst, 0, nil
			}
			if end == start {
				d.off, d.state = lf+1, chunkDone
				continue
			}
			if len(d.trailers) >= d.lim.MaxHeaderCount {
				return dst, 0, ErrTooManyHeaders
			}
			f, perr := parseField(in, start, end, len(d.trailers) == 0)
			if perr != nil {
				return dst, 0, perr
			}
			d.trailers = append(d.trailers, f)
			d.off = lf + 1
		default: // chunkDone
			return dst, d.off, nil
		}
	}
}

// nextLine finds the line starting at d.off. It returns lf < 0 when no LF has arrived yet,
// after checking that the bytes since base stay within limit. Otherwise [start,end) is the
// line content without its terminator and lf the LF's offset.
func (d *ChunkedDecoder) nextLine(in []byte, base, limit int, tooLong *ParseError) (start, end, lf int, err *ParseError) {
	if d.scan < d.off {
		d.scan = d.off
	}
	i := bytes.IndexByte(in[d.scan:], '\n')
	if i < 0 {
		d.work += len(in) - d.scan
		d.scan = len(in)
		seen := len(in)
		if seen > d.off && in[seen-1] == '\r' {
			seen-- // may start the CRLF: not line content (yet)
		}
		if seen-base > limit {
			return 0, 0, -1, tooLong
		}
		return 0, 0, -1, nil
	}
	lf = d.scan + i
	d.work += i + 1
	d.scan = lf + 1
	end = lf
	crlf := end > d.off && in[end-1] == '\r'
	if crlf {
		end--
	}
	// Same order as for a partial line (length first), so the verdict does not depend on
	// how the input was split.
	if end-base > limit {
		return 0, 0, 0, tooLong
	}
	if !crlf && !d.lim.AllowBareLF {
		return 0, 0, 0, ErrBareLF
	}
	return d.off, end, lf, nil
}

// spent returns how many leading input bytes the decoder no longer needs: everything before the
// line or data it is working on, or 0 once it reads the trailer section (whose fields must stay
// addressable until the body is complete).
func (d *ChunkedDecoder) spent() int {
	if d.state == chunkTrailer || d.state == chunkDone {
		return 0
	}
	return d.off
}

// rebase forgets the first k input bytes (k <= spent()): the next Decode gets the input
// without them.
func (d *ChunkedDecoder) rebase(k int) {
	d.off -= k
	d.scan -= k
	if d.scan < 0 {
		d.scan = 0
	}
}

// Size returns the number of body bytes decoded so far.
func (d *ChunkedDecoder) Size() int64 { return d.total - d.remain }

// NumTrailers returns the number of trailer field lines parsed so far.
func (d *ChunkedDecoder) NumTrailers() int { return len(d.trailers) }

// TrailerAt returns the i-th trailer field, resolved against in (the input given to Decode).
// Out-of-range i, or an in shorter than the decoded body region, returns nil, nil.
func (d *ChunkedDecoder) TrailerAt(in []byte, i int) (name, value []byte) {
	if i < 0 || i >= len(d.trailers) || d.off > len(in) {
		return nil, nil
	}
	f := d.trailers[i]
	return f.name.of(in), f.value.of(in)
}

// parseChunkLine parses chunk-size [ chunk-ext ] (RFC 9112 §7.1.1):
//
//	chunk-size = 1*HEXDIG
//	chunk-ext  = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//	chunk-ext-val = token / quoted-string
//
// Extensions are validated and ignored. Signs, "0x", underscores, whitespace not followed by
// ";", and sizes above 2^59 are all ErrChunkSize.
func parseChunkLine(line []byte) (int64, *ParseError) {
	var n int64
	i := 0
	for i < len(line) && isHex(line[i]) {
		if n > math.MaxInt64>>4 {
			return 0, ErrChunkSize
		}
		n = n<<4 | unhex(line[i])
		i++
	}
	if i == 0 {
		return 0, ErrChunkSize
	}
	rest := line[i:]
	for j := 0; j < len(rest); {
		k := skipWS(rest, j)
		if k == len(rest) || rest[k] != ';' {
			if j == 0 {
				return 0, ErrChunkSize
			}
			return 0, ErrChunkExtension
		}
		j = skipWS(rest, k+1)
		s := j
		for j < len(rest) && tokenTable[rest[j]] {
			j++
		}
		if j == s {
			return 0, ErrChunkExtension
		}
		k = skipWS(rest, j)
		if k < len(rest) && rest[k] == '=' {
			j = skipWS(rest, k+1)
			if j < len(rest) && rest[j] == '"' {
				var ok bool
				if j, ok = skipQuoted(rest, j); !ok {
					return 0, ErrChunkExtension
				}
			} else {
				s = j
				for j < len(rest) && tokenTable[rest[j]] {
					j++
				}
				if j == s {
					return 0, ErrChunkExtension
				}
			}
		}
	}
	return n, nil
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

// skipQuoted skips the quoted-string starting at b[i] == '"' and returns the index after the
// closing quote. qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text;
// quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ).
func skipQuoted(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, true
		case c == '\\':
			i++
			if i >= len(b) || !fieldValueTable[b[i]] {
				return 0, false
			}
		case !fieldValueTable[c]:
			return 0, false
		}
	}
	return 0, false
}
