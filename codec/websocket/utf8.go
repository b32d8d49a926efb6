package websocket

import "encoding/binary"

// utf8State is the state of the incremental UTF-8 validator: utf8Accept between whole code
// points, utf8Reject once the input can no longer be valid, otherwise how much of a multi-byte
// sequence is still owed and which ranges the next byte may take. A text message arriving in
// fragments (or a frame arriving in pieces) is validated piece by piece by carrying the state,
// so a code point split across fragments is checked exactly like an unsplit one, and invalid
// input is found as soon as its first wrong byte arrives (fail fast, RFC 6455 §8.1).
type utf8State uint8

const (
	utf8Accept  utf8State = iota // between code points
	utf8Need1                    // one continuation byte (80..BF) owed
	utf8Need2                    // two owed
	utf8Need3                    // three owed
	utf8AfterE0                  // E0: next A0..BF (no overlong 3-byte forms), then one more
	utf8AfterED                  // ED: next 80..9F (no surrogates), then one more
	utf8AfterF0                  // F0: next 90..BF (no overlong 4-byte forms), then two more
	utf8AfterF4                  // F4: next 80..8F (nothing above U+10FFFF), then two more
	utf8Reject                   // invalid; stays so
	utf8States
)

// Byte classes, following the well-formed byte sequences table of the Unicode Standard
// (Table 3-7): the continuation ranges that differ between lead bytes get classes of their own.
const (
	clASCII = iota // 00..7F
	clCont1        // 80..8F
	clCont2        // 90..9F
	clCont3        // A0..BF
	clBad          // C0, C1, F5..FF: never valid
	clLead2        // C2..DF
	clE0           // E0
	clLead3        // E1..EC, EE, EF
	clED           // ED
	clF0           // F0
	clLead4        // F1..F3
	clF4           // F4
	classes
)

var (
	utf8Class [256]uint8
	utf8Next  [utf8States][classes]utf8State
)

func init() {
	for b := 0; b < 256; b++ {
		var c uint8
		switch {
		case b < 0x80:
			c = clASCII
		case b < 0x90:
			c = clCont1
		case b < 0xA0:
			c = clCont2
		case b < 0xC0:
			c = clCont3
		case b < 0xC2:
			c = clBad
		case b < 0xE0:
			c = clLead2
		case b == 0xE0:
			c = clE0
		case b == 0xED:
			c = clED
		case b < 0xF0:
			c = clLead3
		case b == 0xF0:
			c = clF0
		case b < 0xF4:
			c = clLead4
		case b == 0xF4:
			c = clF4
		default:
			c = clBad
		}
		utf8Class[b] = c
	}
	for s := range utf8Next {
		for c := range utf8Next[s] {
			utf8Next[s][c] = utf8Reject
		}
	}
	t := &utf8Next
	t[utf8Accept][clASCII] = utf8Accept
	t[utf8Accept][clLead2] = utf8Need1
	t[utf8Accept][clE0] = utf8AfterE0
	t[utf8Accept][clLead3] = utf8Need2
	t[utf8Accept][clED] = utf8AfterED
	t[utf8Accept][clF0] = utf8AfterF0
	t[utf8Accept][clLead4] = utf8Need3
	t[utf8Accept][clF4] = utf8AfterF4
	for _, c := range []int{clCont1, clCont2, clCont3} {
		t[utf8Need1][c] = utf8Accept
		t[utf8Need2][c] = utf8Need1
		t[utf8Need3][c] = utf8Need2
	}
	t[utf8AfterE0][clCont3] = utf8Need1
	t[utf8AfterED][clCont1] = utf8Need1
	t[utf8AfterED][clCont2] = utf8Need1
	t[utf8AfterF0][clCont2] = utf8Need2
	t[utf8AfterF0][clCont3] = utf8Need2
	t[utf8AfterF4][clCont1] = utf8Need2
}

// validateUTF8 advances the validator over p from state s and returns the new state. A result
// of utf8Accept after the last piece of a message means the message is valid; utf8Reject at any
// point means it cannot be. Runs of ASCII are skipped eight bytes at a time.
func validateUTF8(s utf8State, p []byte) utf8State {
	i := 0
	for i < len(p) {
		if s == utf8Accept {
			for i+8 <= len(p) && binary.LittleEndian.Uint64(p[i:i+8])&0x8080808080808080 == 0 {
				i += 8
			}
			for i < len(p) && p[i] < 0x80 {
				i++
			}
			if i == len(p) {
				break
			}
		}
		s = utf8Next[s][utf8Class[p[i]]]
		if s == utf8Reject {
			return s
		}
		i++
	}
	return s
}

// validUTF8 reports whether p is entirely valid UTF-8.
func validUTF8(p []byte) bool { return validateUTF8(utf8Accept, p) == utf8Accept }
