package websocket

import (
	"encoding/binary"
	"math/bits"
)

// Opcodes (RFC 6455 §5.2). 3-7 and 11-15 are reserved: a frame carrying one fails the
// connection with 1002.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Bits of the first header byte.
const (
	bitFin  = 0x80
	bitRsv1 = 0x40 // "per-message compressed" under permessage-deflate (RFC 7692 §6)
	bitRsv2 = 0x20
	bitRsv3 = 0x10
	bitMask = 0x80 // in the second byte
)

// maxControlPayload is the largest payload of a control frame (RFC 6455 §5.5).
const maxControlPayload = 125

// maxHeaderLen is the longest frame header: 2 bytes, 8 of extended length, 4 of mask key.
const maxHeaderLen = 14

// header is one parsed frame header. It is a plain value: parsing allocates nothing.
type header struct {
	fin    bool
	rsv    byte // the three reserved bits, as in the first byte (bitRsv1|bitRsv2|bitRsv3)
	op     byte
	masked bool
	length uint64 // payload length as declared; checked against the limits before use
	key    uint32 // mask key, in the byte order it has on the wire (little-endian load)
}

// headerError says why a header cannot be parsed at all, before any semantic check.
type headerError uint8

const (
	hdrOK       headerError = iota
	hdrLength63             // the 64-bit length has its most significant bit set
)

// parseHeader parses the frame header at the start of b. It returns the header and its length
// in bytes, or n = 0 when b does not hold the whole header yet (the sticky-packet rule: the
// caller keeps the bytes and tries again with more). Only the length's top bit is checked
// here; everything that depends on the connection's state is checked by the caller.
func parseHeader(b []byte) (h header, n int, err headerError) {
	if len(b) < 2 {
		return h, 0, hdrOK
	}
	b0, b1 := b[0], b[1]
	h.fin = b0&bitFin != 0
	h.rsv = b0 & (bitRsv1 | bitRsv2 | bitRsv3)
	h.op = b0 & 0x0F
	h.masked = b1&bitMask != 0
	n = 2
	switch l := b1 & 0x7F; l {
	case 126:
		if len(b) < 4 {
			return h, 0, hdrOK
		}
		h.length = uint64(binary.BigEndian.Uint16(b[2:4]))
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, hdrOK
		}
		h.length = binary.BigEndian.Uint64(b[2:10])
		if h.length>>63 != 0 {
			return h, 10, hdrLength63
		}
		n = 10
	default:
		h.length = uint64(l)
	}
	if h.masked {
		if len(b) < n+4 {
			return h, 0, hdrOK
		}
		h.key = binary.LittleEndian.Uint32(b[n : n+4])
		n += 4
	}
	return h, n, hdrOK
}

// appendHeader appends an unmasked (server-to-client) frame header for a payload of n bytes.
// first is the first byte: FIN, RSV1 and the opcode.
func appendHeader(dst []byte, first byte, n int) []byte {
	switch {
	case n <= 125:
		return append(dst, first, byte(n))
	case n <= 0xFFFF:
		return append(dst, first, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, first, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

// headerLen returns the length of the header appendHeader writes for a payload of n bytes.
func headerLen(n int) int {
	switch {
	case n <= 125:
		return 2
	case n <= 0xFFFF:
		return 4
	default:
		return 10
	}
}

// appendFrame appends a whole unmasked frame.
func appendFrame(dst []byte, first byte, payload []byte) []byte {
	return append(appendHeader(dst, first, len(payload)), payload...)
}

// mask XORs b in place with the mask key, starting at position pos of the payload (so a
// payload can be unmasked in pieces as it arrives), and returns the position after b. The
// key is in wire order, loaded little-endian; eight bytes are done at a time.
func mask(key uint32, pos int, b []byte) int {
	if key == 0 {
		return pos + len(b)
	}
	// Rotate the key so that its first byte lines up with b[0].
	k := bits.RotateLeft32(key, -8*(pos&3))
	i := 0
	if len(b) >= 8 {
		k64 := uint64(k) | uint64(k)<<32
		for ; i+32 <= len(b); i += 32 {
			v := b[i : i+32 : i+32]
			binary.LittleEndian.PutUint64(v[0:8], binary.LittleEndian.Uint64(v[0:8])^k64)
			binary.LittleEndian.PutUint64(v[8:16], binary.LittleEndian.Uint64(v[8:16])^k64)
			binary.LittleEndian.PutUint64(v[16:24], binary.LittleEndian.Uint64(v[16:24])^k64)
			binary.LittleEndian.PutUint64(v[24:32], binary.LittleEndian.Uint64(v[24:32])^k64)
		}
		for ; i+8 <= len(b); i += 8 {
			v := b[i : i+8 : i+8]
			binary.LittleEndian.PutUint64(v, binary.LittleEndian.Uint64(v)^k64)
		}
	}
	for ; i < len(b); i++ {
		b[i] ^= byte(k >> (8 * (i & 3)))
	}
	return pos + len(b)
}
