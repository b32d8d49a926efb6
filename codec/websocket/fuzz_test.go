package websocket

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"unicode/utf8"
)

// clientFrame encodes a masked client frame (first = FIN|RSV|opcode) for the seeds and tests
// that do without a network.
func clientFrame(first byte, payload []byte, key uint32) []byte {
	b := []byte{first}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, bitMask|byte(n))
	case n <= 0xFFFF:
		b = append(b, bitMask|126, byte(n>>8), byte(n))
	default:
		b = append(b, bitMask|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = binary.LittleEndian.AppendUint32(b, key)
	start := len(b)
	b = append(b, payload...)
	mask(key, 0, b[start:])
	return b
}

// frameSeeds are inputs covering every branch of the frame code, for the fuzzers' corpus.
func frameSeeds() [][]byte {
	const k = 0x11223344
	cat := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	return [][]byte{
		clientFrame(bitFin|opText, []byte("hello"), k),
		cat(clientFrame(opText, []byte("frag"), k), clientFrame(bitFin|opPing, []byte("x"), k), clientFrame(bitFin|opContinuation, []byte("ment"), k)),
		cat(clientFrame(opText, []byte{0xE2, 0x82}, k), clientFrame(bitFin|opContinuation, []byte{0xAC}, k)),
		clientFrame(bitFin|opText, []byte{0xED, 0xA0, 0x80}, k),
		clientFrame(bitFin|opBinary, bytes.Repeat([]byte{7}, 300), k),
		clientFrame(bitFin|opClose, closePayload(CloseNormal, "bye"), k),
		clientFrame(bitFin|opClose, []byte{3, 0xe8, 0xff}, k),
		clientFrame(bitFin|opClose, closePayload(999, ""), k),
		clientFrame(bitFin|0x3, nil, k),
		clientFrame(bitFin|bitRsv2|opText, nil, k),
		clientFrame(opPing, nil, k),
		clientFrame(bitFin|opPing, bytes.Repeat([]byte{1}, 126), k),
		clientFrame(bitFin|opContinuation, []byte("x"), k),
		{bitFin | opBinary, 127, 0x80, 0, 0, 0, 0, 0, 0, 0},
		{bitFin | opText, 2, 'h', 'i'},
		// "hello" compressed (RSV1), as a client with permessage-deflate sends it.
		clientFrame(bitFin|bitRsv1|opText, []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, k),
		cat(clientFrame(bitRsv1|opText, []byte{0xf2, 0x48}, k), clientFrame(bitFin|opContinuation, []byte{0xcd, 0xc9, 0xc9, 0x07, 0x00}, k)),
		cat(clientFrame(bitFin|opClose, nil, k), clientFrame(bitFin|opText, []byte("after close"), k)),
	}
}

// frameRun is what one pass of input through a connection produced.
type frameRun struct {
	msgs []recMsg
	out  []byte
	end  string // the error OnClose reported, or "open"
}

// runFrames feeds data to a fresh connection (compressed when deflate) in chunks of chunk
// bytes, on the loop.
func runFrames(lr *loopRunner, tb testing.TB, u *Upgrader, rec *recorder, data []byte, chunk int, deflate bool) (frameRun, bool) {
	var r frameRun
	ok := true
	lr.run(tb, func() {
		rec.mu.Lock()
		rec.msgs = nil
		rec.mu.Unlock()
		for len(rec.opened) > 0 {
			<-rec.opened
		}
		c, f := openFake(u, lr.loop, deflateMode{on: deflate})
		ok = feed(c, f, data, chunk)
		r.end = "open"
		f.finishClose()
		select {
		case err := <-rec.closed:
			r.end = fmt.Sprint(err)
		default:
		}
		r.out = f.out
		r.msgs = rec.messages()
	})
	return r, ok
}

// FuzzReadFrames feeds arbitrary bytes to a connection whole and in small pieces. Nothing may
// panic, the consumed-count contract must hold, text delivered must be UTF-8 within the size
// limit, and the result (messages, bytes sent back, how it ended) must not depend on how the
// input was split: the incremental parser keeps no state that a split can change.
func FuzzReadFrames(f *testing.F) {
	for _, s := range frameSeeds() {
		f.Add(s, uint8(1), false)
		f.Add(s, uint8(3), true)
	}
	lr := newLoopRunner(f)
	rec := newRecorder(true)
	u, err := NewUpgrader(rec, WithMaxMessageSize(4096), WithCompression(Compression{MinSize: -1}))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, deflate bool) {
		whole, ok1 := runFrames(lr, t, u, rec, data, len(data)+1, deflate)
		split, ok2 := runFrames(lr, t, u, rec, data, int(chunk%16)+1, deflate)
		if !ok1 || !ok2 {
			t.Fatal("OnData returned a consumed count outside 0..len(in)")
		}
		for _, m := range whole.msgs {
			if m.typ == Text && !utf8.ValidString(m.data) {
				t.Fatalf("invalid UTF-8 delivered: %q", m.data)
			}
			if len(m.data) > 4096 {
				t.Fatalf("message of %d bytes over the 4096 limit delivered", len(m.data))
			}
		}
		if fmt.Sprint(whole.msgs) != fmt.Sprint(split.msgs) || !bytes.Equal(whole.out, split.out) || whole.end != split.end {
			t.Fatalf("whole and split input differ:\nwhole: %v %x %s\nsplit: %v %x %s",
				whole.msgs, whole.out, whole.end, split.msgs, split.out, split.end)
		}
	})
}

// FuzzUTF8 checks the incremental validator against unicode/utf8: the verdict on the whole,
// the verdict with the input split anywhere (state carried across), and fail-fast soundness
// (a rejected prefix means the whole is invalid).
func FuzzUTF8(f *testing.F) {
	for _, s := range []string{"", "hello", "κόσμε", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\xc0\xaf", "a\xf0\x9f\x98\x80b"} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, p []byte, at uint8) {
		want := utf8.Valid(p)
		if got := validUTF8(p); got != want {
			t.Fatalf("validUTF8(%x) = %v, utf8.Valid says %v", p, got, want)
		}
		i := int(at) % (len(p) + 1)
		s := validateUTF8(utf8Accept, p[:i])
		if s == utf8Reject && want {
			t.Fatalf("prefix %x of valid %x rejected", p[:i], p)
		}
		if got := validateUTF8(s, p[i:]) == utf8Accept; got != want {
			t.Fatalf("split at %d: %v, want %v", i, got, want)
		}
	})
}
