package websocket

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// The conformance suite follows the case sections of the Autobahn testsuite (the field's
// reference for RFC 6455, which needs Python 2.7 and cannot run here): 1 framing, 2 ping/pong,
// 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close handling, 9 limits and
// performance, 12-13 compression. These cases drive the echo handler with a raw client that
// can send what real clients never do (the bad input each section is about);
// clients_test.go drives the same handler with gorilla/websocket, coder/websocket, node's ws
// and Python's websockets. Numbers in case names are Autobahn's where a case matches one.

// autobahnCase is one case: what the client does and what it must see.
type autobahnCase struct {
	name string
	run  func(rc *rawClient)
}

// runSection runs cases against one echo server configured by opts, each on its own
// connection, and requires every connection to be gone afterwards: whatever the case did, the
// server closed (or the client closed) and released it.
func runSection(t *testing.T, opts []Option, cases []autobahnCase) {
	t.Helper()
	ts := startWS(t, echoHandler, opts)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc, _ := dialRaw(t, ts.addr, "")
			c.run(rc)
			rc.c.Close()
		})
	}
	ts.waitOpen(t, 0)
}

// Helpers for the cases.

func (rc *rawClient) sendRaw(first byte, payload []byte) {
	rc.t.Helper()
	rc.write(rc.frame(first&bitFin != 0, first&0x70, first&0x0F, payload, true))
}

// sendChunked writes b in chunks of n bytes (separate writes: separate segments on loopback,
// so the server sees frames split across reads).
func (rc *rawClient) sendChunked(b []byte, n int) {
	rc.t.Helper()
	for len(b) > 0 {
		k := min(n, len(b))
		rc.write(b[:k])
		b = b[k:]
	}
}

// closeNormally does the client side of a clean close and requires the server's echo.
func (rc *rawClient) closeNormally() {
	rc.t.Helper()
	rc.send(true, opClose, closePayload(CloseNormal, ""))
	f := rc.mustRead()
	if f.op != opClose || !bytes.Equal(f.payload, closePayload(CloseNormal, "")) {
		rc.t.Fatalf("close answer: op %d %q, want close 1000", f.op, f.payload)
	}
	rc.expectEOF()
}

// failsWith requires the server to fail the connection with code (after the frames it sends
// before, which are checked by the caller).
func (rc *rawClient) failsWith(code StatusCode) { rc.t.Helper(); rc.expectClose(code) }

func echoCase(name string, op byte, payload []byte) autobahnCase {
	return autobahnCase{name, func(rc *rawClient) {
		rc.send(true, op, payload)
		rc.expectMessage(op, payload)
		rc.closeNormally()
	}}
}

func TestAutobahn1Framing(t *testing.T) {
	var cases []autobahnCase
	for i, n := range []int{0, 125, 126, 127, 128, 65535, 65536} {
		cases = append(cases, echoCase(fmt.Sprintf("1.1.%d text %d bytes", i+1, n), opText, bytes.Repeat([]byte("*"), n)))
		cases = append(cases, echoCase(fmt.Sprintf("1.2.%d binary %d bytes", i+1, n), opBinary, bytes.Repeat([]byte{0xfe}, n)))
	}
	cases = append(cases,
		autobahnCase{"1.1.8 text 65536 bytes in chunks of 997", func(rc *rawClient) {
			p := bytes.Repeat([]byte("*"), 65536)
			rc.sendChunked(rc.frame(true, 0, opText, p, true), 997)
			rc.expectMessage(opText, p)
			rc.closeNormally()
		}},
		autobahnCase{"many frames in one write", func(rc *rawClient) {
			var b []byte
			for i := range 100 {
				b = append(b, rc.frame(true, 0, opText, []byte(fmt.Sprint(i)), true)...)
			}
			rc.write(b)
			for i := range 100 {
				rc.expectMessage(opText, []byte(fmt.Sprint(i)))
			}
			rc.closeNormally()
		}},
		autobahnCase{"header split byte by byte", func(rc *rawClient) {
			rc.sendChunked(rc.frame(true, 0, opBinary, bytes.Repeat([]byte{1}, 70000), true), 1<<20)
			rc.expectMessage(opBinary, bytes.Repeat([]byte{1}, 70000))
			rc.sendChunked(rc.frame(true, 0, opBinary, []byte("xyz"), true), 1)
			rc.expectMessage(opBinary, []byte("xyz"))
			rc.closeNormally()
		}},
		autobahnCase{"unmasked client frame fails with 1002", func(rc *rawClient) {
			rc.write(rc.frame(true, 0, opText, []byte("hello"), false))
			rc.failsWith(CloseProtocolError)
		}},
		autobahnCase{"64-bit length with the top bit set (2^63) fails with 1002", func(rc *rawClient) {
			rc.write([]byte{bitFin | opBinary, bitMask | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4})
			rc.failsWith(CloseProtocolError)
		}},
	)
	runSection(t, []Option{WithMaxMessageSize(1 << 20)}, cases)
}

func TestAutobahn2PingPong(t *testing.T) {
	runSection(t, nil, []autobahnCase{
		{"2.1 ping without payload", func(rc *rawClient) {
			rc.send(true, opPing, nil)
			rc.expectMessage(opPong, nil)
			rc.closeNormally()
		}},
		{"2.2 ping with text payload", func(rc *rawClient) {
			rc.send(true, opPing, []byte("Hello, world!"))
			rc.expectMessage(opPong, []byte("Hello, world!"))
			rc.closeNormally()
		}},
		{"2.3 ping with binary payload", func(rc *rawClient) {
			rc.send(true, opPing, []byte{0, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0})
			rc.expectMessage(opPong, []byte{0, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0})
			rc.closeNormally()
		}},
		{"2.4 ping with 125 bytes", func(rc *rawClient) {
			rc.send(true, opPing, bytes.Repeat([]byte{0xfe}, 125))
			rc.expectMessage(opPong, bytes.Repeat([]byte{0xfe}, 125))
			rc.closeNormally()
		}},
		{"2.5 ping with 126 bytes fails with 1002", func(rc *rawClient) {
			rc.send(true, opPing, bytes.Repeat([]byte{0xfe}, 126))
			rc.failsWith(CloseProtocolError)
		}},
		{"2.6 ping with 125 bytes sent byte by byte", func(rc *rawClient) {
			rc.sendChunked(rc.frame(true, 0, opPing, bytes.Repeat([]byte{0xfe}, 125), true), 1)
			rc.expectMessage(opPong, bytes.Repeat([]byte{0xfe}, 125))
			rc.closeNormally()
		}},
		{"2.7 unsolicited pong without payload", func(rc *rawClient) {
			rc.send(true, opPong, nil)
			rc.closeNormally()
		}},
		{"2.8 unsolicited pong with payload", func(rc *rawClient) {
			rc.send(true, opPong, []byte("unsolicited pong payload"))
			rc.closeNormally()
		}},
		{"2.9 unsolicited pong, then ping", func(rc *rawClient) {
			rc.send(true, opPong, []byte("unsolicited pong payload"))
			rc.send(true, opPing, []byte("ping payload"))
			rc.expectMessage(opPong, []byte("ping payload"))
			rc.closeNormally()
		}},
		{"2.10 ten pings in one write", func(rc *rawClient) {
			var b []byte
			for i := range 10 {
				b = append(b, rc.frame(true, 0, opPing, []byte(fmt.Sprint("payload-", i)), true)...)
			}
			rc.write(b)
			for i := range 10 {
				rc.expectMessage(opPong, []byte(fmt.Sprint("payload-", i)))
			}
			rc.closeNormally()
		}},
		{"2.11 ten pings byte by byte", func(rc *rawClient) {
			var b []byte
			for i := range 10 {
				b = append(b, rc.frame(true, 0, opPing, []byte(fmt.Sprint("payload-", i)), true)...)
			}
			rc.sendChunked(b, 1)
			for i := range 10 {
				rc.expectMessage(opPong, []byte(fmt.Sprint("payload-", i)))
			}
			rc.closeNormally()
		}},
	})
}

func TestAutobahn3ReservedBits(t *testing.T) {
	cases := []struct {
		name  string
		first byte
		valid bool // a valid message goes first, and must be echoed before the failure
	}{
		{"3.1 RSV1 on text", bitFin | bitRsv1 | opText, false},
		{"3.2 RSV2 on text after a valid message", bitFin | bitRsv2 | opText, true},
		{"3.3 RSV3 on text after a valid message", bitFin | bitRsv3 | opText, true},
		{"3.4 RSV1+RSV3 on text", bitFin | bitRsv1 | bitRsv3 | opText, true},
		{"3.5 RSV1+RSV2 on binary", bitFin | bitRsv1 | bitRsv2 | opBinary, false},
		{"3.6 RSV2+RSV3 on ping", bitFin | bitRsv2 | bitRsv3 | opPing, false},
		{"3.7 all RSV on close", bitFin | bitRsv1 | bitRsv2 | bitRsv3 | opClose, false},
		{"RSV1 on ping", bitFin | bitRsv1 | opPing, false},
	}
	var acs []autobahnCase
	for _, c := range cases {
		acs = append(acs, autobahnCase{c.name + " fails with 1002", func(rc *rawClient) {
			if c.valid {
				rc.send(true, opText, []byte("Hello, world!"))
				rc.expectMessage(opText, []byte("Hello, world!"))
			}
			rc.sendRaw(c.first, []byte("Hello, world!"))
			rc.failsWith(CloseProtocolError)
		}})
	}
	runSection(t, nil, acs)
}

func TestAutobahn4Opcodes(t *testing.T) {
	var cases []autobahnCase
	for i, op := range []byte{3, 4, 5, 6, 7} {
		cases = append(cases, autobahnCase{fmt.Sprintf("4.1.%d reserved data opcode %d fails with 1002", i+1, op), func(rc *rawClient) {
			rc.send(true, opText, []byte("Hello, world!"))
			rc.expectMessage(opText, []byte("Hello, world!"))
			rc.sendRaw(bitFin|op, []byte("reserved"))
			rc.failsWith(CloseProtocolError)
		}})
	}
	for i, op := range []byte{11, 12, 13, 14, 15} {
		cases = append(cases, autobahnCase{fmt.Sprintf("4.2.%d reserved control opcode %d fails with 1002", i+1, op), func(rc *rawClient) {
			rc.sendRaw(bitFin|op, nil)
			rc.failsWith(CloseProtocolError)
		}})
	}
	runSection(t, nil, cases)
}

func TestAutobahn5Fragmentation(t *testing.T) {
	frag := func(rc *rawClient, parts ...string) []byte {
		var b []byte
		for i, p := range parts {
			op := byte(opContinuation)
			if i == 0 {
				op = opText
			}
			b = append(b, rc.frame(i == len(parts)-1, 0, op, []byte(p), true)...)
		}
		return b
	}
	runSection(t, nil, []autobahnCase{
		{"5.1 ping in 2 fragments fails with 1002", func(rc *rawClient) {
			rc.send(false, opPing, []byte("frag"))
			rc.send(true, opContinuation, []byte("ment"))
			rc.failsWith(CloseProtocolError)
		}},
		{"5.2 pong in 2 fragments fails with 1002", func(rc *rawClient) {
			rc.send(false, opPong, []byte("frag"))
			rc.send(true, opContinuation, []byte("ment"))
			rc.failsWith(CloseProtocolError)
		}},
		{"5.3 text in 2 fragments, one write", func(rc *rawClient) {
			rc.write(frag(rc, "fragment1", "fragment2"))
			rc.expectMessage(opText, []byte("fragment1fragment2"))
			rc.closeNormally()
		}},
		{"5.5 text in 2 fragments, byte by byte", func(rc *rawClient) {
			rc.sendChunked(frag(rc, "fragment1", "fragment2"), 1)
			rc.expectMessage(opText, []byte("fragment1fragment2"))
			rc.closeNormally()
		}},
		{"5.6 text in 2 fragments with a ping between", func(rc *rawClient) {
			b := rc.frame(false, 0, opText, []byte("fragment1"), true)
			b = append(b, rc.frame(true, 0, opPing, []byte("pong, please"), true)...)
			b = append(b, rc.frame(true, 0, opContinuation, []byte("fragment2"), true)...)
			rc.write(b)
			rc.expectMessage(opPong, []byte("pong, please"))
			rc.expectMessage(opText, []byte("fragment1fragment2"))
			rc.closeNormally()
		}},
		{"5.8 same, byte by byte", func(rc *rawClient) {
			b := rc.frame(false, 0, opText, []byte("fragment1"), true)
			b = append(b, rc.frame(true, 0, opPing, []byte("pong, please"), true)...)
			b = append(b, rc.frame(true, 0, opContinuation, []byte("fragment2"), true)...)
			rc.sendChunked(b, 1)
			rc.expectMessage(opPong, []byte("pong, please"))
			rc.expectMessage(opText, []byte("fragment1fragment2"))
			rc.closeNormally()
		}},
		{"5.9 continuation (FIN) without a message fails with 1002", func(rc *rawClient) {
			rc.send(true, opContinuation, []byte("non-continuation payload"))
			rc.failsWith(CloseProtocolError)
		}},
		{"5.10 continuation without a message, fragmented", func(rc *rawClient) {
			rc.send(false, opContinuation, []byte("non-continuation payload"))
			rc.failsWith(CloseProtocolError)
		}},
		{"5.15 a new text message inside a fragmented one fails with 1002", func(rc *rawClient) {
			rc.send(false, opText, []byte("fragment1"))
			rc.send(true, opContinuation, []byte("fragment2"))
			rc.expectMessage(opText, []byte("fragment1fragment2"))
			rc.send(false, opText, []byte("fragment3"))
			rc.send(false, opText, []byte("fragment4"))
			rc.failsWith(CloseProtocolError)
		}},
		{"5.16 text (FIN) inside a fragmented message fails with 1002", func(rc *rawClient) {
			rc.send(false, opText, []byte("fragment1"))
			rc.send(true, opText, []byte("fragment2"))
			rc.failsWith(CloseProtocolError)
		}},
		{"5.19 text in 5 fragments with pings between", func(rc *rawClient) {
			for i := range 5 {
				op := byte(opContinuation)
				if i == 0 {
					op = opText
				}
				rc.send(true, opPing, []byte(fmt.Sprint("pongme ", i+1)))
				rc.expectMessage(opPong, []byte(fmt.Sprint("pongme ", i+1)))
				rc.send(i == 4, op, []byte(fmt.Sprint("fragment", i+1)))
			}
			rc.expectMessage(opText, []byte("fragment1fragment2fragment3fragment4fragment5"))
			rc.closeNormally()
		}},
		{"binary in 100 fragments of 1000 bytes", func(rc *rawClient) {
			var b, want []byte
			for i := range 100 {
				p := bytes.Repeat([]byte{byte(i)}, 1000)
				want = append(want, p...)
				op := byte(opContinuation)
				if i == 0 {
					op = opBinary
				}
				b = append(b, rc.frame(i == 99, 0, op, p, true)...)
			}
			rc.sendChunked(b, 4093)
			rc.expectMessage(opBinary, want)
			rc.closeNormally()
		}},
		{"empty fragments", func(rc *rawClient) {
			rc.write(frag(rc, "", "", "x", ""))
			rc.expectMessage(opText, []byte("x"))
			rc.closeNormally()
		}},
		{"RSV1 on a continuation frame fails with 1002", func(rc *rawClient) {
			rc.send(false, opText, []byte("a"))
			rc.sendRaw(bitFin|bitRsv1|opContinuation, []byte("b"))
			rc.failsWith(CloseProtocolError)
		}},
	})
}

// utf8Invalid are byte sequences that are not UTF-8, by kind (after Autobahn 6.3-6.21 and
// Markus Kuhn's decoder stress test).
var utf8Invalid = []struct {
	name string
	b    string
}{
	{"lone continuation byte", "\x80"},
	{"continuation bytes", "\x80\xbf\x80\xbf"},
	{"lone lead byte", "\xc2"},
	{"lead byte then ASCII", "\xe2\x82a"},
	{"truncated at the end", "abc\xf0\x9f\x98"},
	{"C0 (always overlong)", "\xc0\xaf"},
	{"C1 (always overlong)", "\xc1\xbf"},
	{"overlong 3-byte", "\xe0\x80\xaf"},
	{"overlong 4-byte", "\xf0\x80\x80\xaf"},
	{"UTF-16 surrogate (high)", "\xed\xa0\x80"},
	{"UTF-16 surrogate (low)", "\xed\xbf\xbf"},
	{"surrogate pair", "\xed\xa0\x80\xed\xb0\x80"},
	{"above U+10FFFF", "\xf4\x90\x80\x80"},
	{"F5 lead byte", "\xf5\x80\x80\x80"},
	{"FE", "\xfe"},
	{"FF", "\xff"},
	{"5-byte sequence", "\xf8\x88\x80\x80\x80"},
	{"κόσμε then invalid", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"},
}

func TestAutobahn6UTF8(t *testing.T) {
	hello := "Hello-µ@ßöäüàá-UTF-8!!" // multi-byte code points
	kosme := "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
	var cases []autobahnCase
	cases = append(cases,
		echoCase("6.1.1 empty text", opText, nil),
		autobahnCase{"6.1.2 empty fragments", func(rc *rawClient) {
			rc.send(false, opText, nil)
			rc.send(false, opContinuation, nil)
			rc.send(true, opContinuation, nil)
			rc.expectMessage(opText, nil)
			rc.closeNormally()
		}},
		echoCase("6.2.1 valid multi-byte text in one frame", opText, []byte(hello)),
		autobahnCase{"6.2.2 valid text fragmented on code point boundaries", func(rc *rawClient) {
			rc.send(false, opText, []byte("Hello-µ@ßöä"))
			rc.send(true, opContinuation, []byte("üàá-UTF-8!!"))
			rc.expectMessage(opText, []byte(hello))
			rc.closeNormally()
		}},
		autobahnCase{"6.2.3 valid text, one byte per fragment (code points split across fragments)", func(rc *rawClient) {
			p := []byte(hello)
			for i := range p {
				op := byte(opContinuation)
				if i == 0 {
					op = opText
				}
				rc.send(i == len(p)-1, op, p[i:i+1])
			}
			rc.expectMessage(opText, p)
			rc.closeNormally()
		}},
		autobahnCase{"6.2.4 κόσμε, one byte per fragment", func(rc *rawClient) {
			p := []byte(kosme)
			for i := range p {
				op := byte(opContinuation)
				if i == 0 {
					op = opText
				}
				rc.send(i == len(p)-1, op, p[i:i+1])
			}
			rc.expectMessage(opText, p)
			rc.closeNormally()
		}},
		echoCase("6.5.5 4-byte code point U+10FFFF", opText, []byte("\xf4\x8f\xbf\xbf")),
		echoCase("U+FFFF and U+FEFF are valid", opText, []byte("\xef\xbf\xbf\xef\xbb\xbf")),
	)
	for _, inv := range utf8Invalid {
		cases = append(cases,
			autobahnCase{"invalid in one frame: " + inv.name + " fails with 1007", func(rc *rawClient) {
				rc.send(true, opText, []byte(inv.b))
				rc.failsWith(CloseInvalidPayload)
			}},
			autobahnCase{"invalid one byte per fragment: " + inv.name + " fails with 1007", func(rc *rawClient) {
				p := []byte(inv.b)
				for i := range p {
					op := byte(opContinuation)
					if i == 0 {
						op = opText
					}
					rc.c.Write(rc.frame(i == len(p)-1, 0, op, p[i:i+1], true))
				}
				rc.failsWith(CloseInvalidPayload)
			}},
		)
	}
	cases = append(cases,
		autobahnCase{"code point split inside, invalid continuation in the next fragment fails with 1007", func(rc *rawClient) {
			rc.send(false, opText, []byte("ok \xe2\x82")) // the first two bytes of €
			rc.send(true, opContinuation, []byte("\x28rest"))
			rc.failsWith(CloseInvalidPayload)
		}},
		autobahnCase{"code point split inside, completed in the next fragment", func(rc *rawClient) {
			rc.send(false, opText, []byte("ok \xe2\x82"))
			rc.send(true, opContinuation, []byte("\xac"))
			rc.expectMessage(opText, []byte("ok €"))
			rc.closeNormally()
		}},
		autobahnCase{"message ends inside a code point fails with 1007", func(rc *rawClient) {
			rc.send(false, opText, []byte("ok \xe2"))
			rc.send(true, opContinuation, []byte("\x82"))
			rc.failsWith(CloseInvalidPayload)
		}},
		autobahnCase{"6.4.1 fail fast: invalid bytes in the first part of a frame, before the rest is sent", func(rc *rawClient) {
			// One frame announced with 4 KiB of payload; only its start, which is already
			// invalid, is sent. The server must fail the connection without waiting.
			f := rc.frame(true, 0, opText, append([]byte("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80"), bytes.Repeat([]byte("a"), 4096)...), true)
			rc.write(f[:8+15])
			rc.failsWith(CloseInvalidPayload)
		}},
		autobahnCase{"6.4.3 fail fast in the second fragment of a message", func(rc *rawClient) {
			rc.send(false, opText, []byte(kosme))
			f := rc.frame(true, 0, opContinuation, append([]byte("\xf4\x90\x80\x80"), bytes.Repeat([]byte("a"), 4096)...), true)
			rc.write(f[:8+4])
			rc.failsWith(CloseInvalidPayload)
		}},
		autobahnCase{"binary messages are not validated", func(rc *rawClient) {
			rc.send(true, opBinary, []byte("\xff\xfe\xed\xa0\x80"))
			rc.expectMessage(opBinary, []byte("\xff\xfe\xed\xa0\x80"))
			rc.closeNormally()
		}},
	)
	runSection(t, nil, cases)
}

func TestAutobahn7Close(t *testing.T) {
	cases := []autobahnCase{
		{"7.1.1 echo, then a clean close", func(rc *rawClient) {
			rc.send(true, opText, []byte("Hello World!"))
			rc.expectMessage(opText, []byte("Hello World!"))
			rc.closeNormally()
		}},
		{"7.1.2 close twice: the second is not answered", func(rc *rawClient) {
			rc.write(append(rc.frame(true, 0, opClose, closePayload(CloseNormal, ""), true), rc.frame(true, 0, opClose, closePayload(CloseNormal, ""), true)...))
			f := rc.mustRead()
			if f.op != opClose {
				rc.t.Fatalf("op %d, want close", f.op)
			}
			rc.expectEOF()
		}},
		{"7.1.3 ping after close is not answered", func(rc *rawClient) {
			rc.write(append(rc.frame(true, 0, opClose, closePayload(CloseNormal, ""), true), rc.frame(true, 0, opPing, []byte("after close"), true)...))
			if f := rc.mustRead(); f.op != opClose {
				rc.t.Fatalf("op %d, want close", f.op)
			}
			rc.expectEOF()
		}},
		{"7.1.4 text after close is not echoed", func(rc *rawClient) {
			rc.write(append(rc.frame(true, 0, opClose, closePayload(CloseNormal, ""), true), rc.frame(true, 0, opText, []byte("after close"), true)...))
			if f := rc.mustRead(); f.op != opClose {
				rc.t.Fatalf("op %d, want close", f.op)
			}
			rc.expectEOF()
		}},
		{"7.1.5 fragment, close, continuation", func(rc *rawClient) {
			b := rc.frame(false, 0, opText, []byte("fragment1"), true)
			b = append(b, rc.frame(true, 0, opClose, closePayload(CloseNormal, ""), true)...)
			b = append(b, rc.frame(true, 0, opContinuation, []byte("fragment2"), true)...)
			rc.write(b)
			if f := rc.mustRead(); f.op != opClose {
				rc.t.Fatalf("op %d, want close", f.op)
			}
			rc.expectEOF()
		}},
		{"7.1.6 large messages, then close", func(rc *rawClient) {
			p := bytes.Repeat([]byte("BAsd7&jh23"), 26214)
			var b []byte
			for range 5 {
				b = append(b, rc.frame(true, 0, opText, p, true)...)
			}
			b = append(b, rc.frame(true, 0, opClose, closePayload(CloseNormal, ""), true)...)
			go rc.c.Write(b) // the server echoes while this is being written
			for range 5 {
				rc.expectMessage(opText, p)
			}
			if f := rc.mustRead(); f.op != opClose {
				rc.t.Fatalf("op %d, want close", f.op)
			}
			rc.expectEOF()
		}},
		{"7.3.1 close without payload is answered without payload", func(rc *rawClient) {
			rc.send(true, opClose, nil)
			f := rc.mustRead()
			if f.op != opClose || len(f.payload) != 0 {
				rc.t.Fatalf("answer op %d payload %q, want an empty close", f.op, f.payload)
			}
			rc.expectEOF()
		}},
		{"7.3.2 close with a 1-byte payload fails with 1002", func(rc *rawClient) {
			rc.send(true, opClose, []byte{0x03})
			rc.failsWith(CloseProtocolError)
		}},
		{"7.3.5 close with a 123-byte reason", func(rc *rawClient) {
			rc.send(true, opClose, closePayload(CloseNormal, strings.Repeat("*", 123)))
			if f := rc.mustRead(); f.op != opClose || binary.BigEndian.Uint16(f.payload) != 1000 {
				rc.t.Fatalf("answer %+v", f)
			}
			rc.expectEOF()
		}},
		{"7.3.6 close with a 124-byte reason (payload 126) fails with 1002", func(rc *rawClient) {
			rc.send(true, opClose, closePayload(CloseNormal, strings.Repeat("*", 124)))
			rc.failsWith(CloseProtocolError)
		}},
		{"7.5.1 close reason with invalid UTF-8 fails with 1007", func(rc *rawClient) {
			rc.send(true, opClose, closePayload(CloseNormal, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"))
			rc.failsWith(CloseInvalidPayload)
		}},
	}
	for _, code := range []StatusCode{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		cases = append(cases, autobahnCase{fmt.Sprintf("7.7 valid close code %d is echoed", code), func(rc *rawClient) {
			rc.send(true, opClose, closePayload(code, "reason"))
			f := rc.mustRead()
			if f.op != opClose || len(f.payload) < 2 || StatusCode(binary.BigEndian.Uint16(f.payload)) != code {
				rc.t.Fatalf("answer op %d %q, want close %d", f.op, f.payload, code)
			}
			rc.expectEOF()
		}})
	}
	for _, code := range []StatusCode{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cases = append(cases, autobahnCase{fmt.Sprintf("7.9 invalid close code %d fails with 1002", code), func(rc *rawClient) {
			rc.send(true, opClose, binary.BigEndian.AppendUint16(nil, uint16(code)))
			rc.failsWith(CloseProtocolError)
		}})
	}
	cases = append(cases, autobahnCase{"a frame after a failure is ignored, then the client's close ends it", func(rc *rawClient) {
		rc.send(true, opPing, bytes.Repeat([]byte{1}, 126))
		// The client keeps talking before it reads the failure.
		rc.send(true, opText, []byte("ignored"))
		rc.failsWith(CloseProtocolError)
	}})
	runSection(t, nil, cases)
}

func TestAutobahn9Limits(t *testing.T) {
	const limit = 1 << 20
	var cases []autobahnCase
	for i, n := range []int{64 << 10, 256 << 10, 1 << 20} {
		cases = append(cases, echoCase(fmt.Sprintf("9.1.%d text %d bytes", i+1, n), opText, bytes.Repeat([]byte("*"), n)))
		cases = append(cases, echoCase(fmt.Sprintf("9.2.%d binary %d bytes", i+1, n), opBinary, bytes.Repeat([]byte{0xfe}, n)))
	}
	for i, frag := range []int{64, 256, 4 << 10, 64 << 10, 1 << 20} {
		cases = append(cases, autobahnCase{fmt.Sprintf("9.3.%d text of 1 MiB in fragments of %d", i+1, frag), func(rc *rawClient) {
			msg := bytes.Repeat([]byte("*"), limit)
			var b []byte
			for off := 0; off < len(msg); off += frag {
				op := byte(opContinuation)
				if off == 0 {
					op = opText
				}
				b = append(b, rc.frame(off+frag >= len(msg), 0, op, msg[off:min(off+frag, len(msg))], true)...)
			}
			go rc.c.Write(b)
			rc.expectMessage(opText, msg)
			rc.closeNormally()
		}})
	}
	cases = append(cases,
		autobahnCase{"9.7 1000 text messages of 16 bytes, round trip each", func(rc *rawClient) {
			for i := range 1000 {
				p := []byte(fmt.Sprintf("%016d", i))
				rc.send(true, opText, p)
				rc.expectMessage(opText, p)
			}
			rc.closeNormally()
		}},
		autobahnCase{"frame over the limit: 1009 on its header alone", func(rc *rawClient) {
			rc.write(rc.frame(true, 0, opBinary, make([]byte, limit+1), true)[:14])
			rc.failsWith(CloseMessageTooBig)
		}},
		autobahnCase{"fragmented message over the limit fails with 1009", func(rc *rawClient) {
			rc.send(false, opBinary, make([]byte, limit/2))
			rc.send(false, opContinuation, make([]byte, limit/2))
			rc.write(rc.frame(true, 0, opContinuation, make([]byte, 10), true))
			rc.failsWith(CloseMessageTooBig)
		}},
		autobahnCase{"2^62 length fails with 1009", func(rc *rawClient) {
			rc.write([]byte{bitFin | opBinary, bitMask | 127, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4})
			rc.failsWith(CloseMessageTooBig)
		}},
	)
	runSection(t, []Option{WithMaxMessageSize(limit)}, cases)
}

// deflateClient compresses like a permessage-deflate client (no context takeover unless kept).
type deflateClient struct {
	w   *flate.Writer
	buf bytes.Buffer
}

func newDeflateClient() *deflateClient {
	d := &deflateClient{}
	d.w, _ = flate.NewWriter(&d.buf, flate.BestSpeed)
	return d
}

// compress returns p compressed as a message, the trailing 00 00 ff ff removed; takeover
// keeps the window from the previous message.
func (d *deflateClient) compress(p []byte, takeover bool) []byte {
	d.buf.Reset()
	if !takeover {
		d.w.Reset(&d.buf)
	}
	d.w.Write(p)
	d.w.Flush()
	b := d.buf.Bytes()
	return append([]byte(nil), b[:len(b)-4]...)
}

// inflateServer decompresses a server message compressed without context takeover.
func inflateServer(t testing.TB, p []byte) []byte {
	t.Helper()
	var f inflater
	out, res := f.inflate(nil, p, nil, 1<<26, func(b []byte, n int) []byte { return append(b, make([]byte, n)...)[:len(b)] })
	if res != inflateOK {
		t.Fatalf("server message does not inflate: %v", res)
	}
	return out
}

func TestAutobahn12And13Compression(t *testing.T) {
	const ext = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
	text := []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 100))
	tests := []struct {
		name string
		opts []Option
		run  func(t *testing.T, rc *rawClient)
	}{
		{"12.1 compressed text is echoed compressed", []Option{WithCompression(Compression{})}, func(t *testing.T, rc *rawClient) {
			d := newDeflateClient()
			rc.write(rc.frame(true, bitRsv1, opText, d.compress(text, false), true))
			f := rc.mustRead()
			if f.rsv != bitRsv1 || f.op != opText || !bytes.Equal(inflateServer(t, f.payload), text) {
				t.Fatalf("echo: rsv %x op %d, %d bytes", f.rsv, f.op, len(f.payload))
			}
			if len(f.payload) >= len(text)/4 {
				t.Fatalf("echo of %d bytes compressed to %d: not compressed", len(text), len(f.payload))
			}
			rc.closeNormally()
		}},
		{"12.2 many compressed messages of many sizes", []Option{WithCompression(Compression{})}, func(t *testing.T, rc *rawClient) {
			d := newDeflateClient()
			for _, n := range []int{0, 1, 16, 64, 128, 256, 1024, 4096, 65536, 131072} {
				p := bytes.Repeat([]byte("Hello, world! "), n/14+1)[:n]
				rc.write(rc.frame(true, bitRsv1, opBinary, d.compress(p, false), true))
				f := rc.mustRead()
				got := f.payload
				if f.rsv == bitRsv1 {
					got = inflateServer(t, got)
				}
				if !bytes.Equal(got, p) {
					t.Fatalf("%d bytes: echo differs", n)
				}
				if n < DefaultCompressMinSize && f.rsv != 0 {
					t.Fatalf("%d-byte message compressed (below the minimum size)", n)
				}
			}
			rc.closeNormally()
		}},
		{"13 client context takeover: the server keeps the client's window", []Option{WithCompression(Compression{ClientContextTakeover: true})}, func(t *testing.T, rc *rawClient) {
			d := newDeflateClient()
			for i := range 20 {
				p := []byte(fmt.Sprintf("%s #%d", text[:200], i))
				rc.write(rc.frame(true, bitRsv1, opText, d.compress(p, i > 0), true))
				f := rc.mustRead()
				if !bytes.Equal(inflateServer(t, f.payload), p) {
					t.Fatalf("message %d differs", i)
				}
			}
			rc.closeNormally()
		}},
		{"compressed message in fragments", []Option{WithCompression(Compression{})}, func(t *testing.T, rc *rawClient) {
			z := newDeflateClient().compress(text, false)
			rc.write(rc.frame(false, bitRsv1, opText, z[:10], true))
			rc.send(true, opPing, []byte("between"))
			rc.write(rc.frame(false, 0, opContinuation, z[10:20], true))
			rc.write(rc.frame(true, 0, opContinuation, z[20:], true))
			rc.expectMessage(opPong, []byte("between"))
			if f := rc.mustRead(); !bytes.Equal(inflateServer(t, f.payload), text) {
				t.Fatal("echo differs")
			}
			rc.closeNormally()
		}},
		{"uncompressed message on a deflate connection", []Option{WithCompression(Compression{})}, func(t *testing.T, rc *rawClient) {
			rc.send(true, opText, []byte("plain"))
			rc.expectMessage(opText, []byte("plain"))
			rc.closeNormally()
		}},
		{"invalid deflate data fails with 1007", []Option{WithCompression(Compression{})}, func(t *testing.T, rc *rawClient) {
			rc.write(rc.frame(true, bitRsv1, opText, []byte{0xff, 0xff, 0xff, 0xff, 0x00}, true))
			rc.expectClose(CloseInvalidPayload)
		}},
		{"compressed invalid UTF-8 fails with 1007", []Option{WithCompression(Compression{})}, func(t *testing.T, rc *rawClient) {
			rc.write(rc.frame(true, bitRsv1, opText, newDeflateClient().compress([]byte("ok \xed\xa0\x80"), false), true))
			rc.expectClose(CloseInvalidPayload)
		}},
		{"decompression bomb fails with 1009", []Option{WithCompression(Compression{}), WithMaxMessageSize(64 << 10)}, func(t *testing.T, rc *rawClient) {
			z := newDeflateClient().compress(make([]byte, 1<<20), false) // 1 MiB of zeros: ~1 KiB
			rc.write(rc.frame(true, bitRsv1, opBinary, z, true))
			rc.expectClose(CloseMessageTooBig)
		}},
		{"RSV1 on a continuation of a compressed message fails with 1002", []Option{WithCompression(Compression{})}, func(t *testing.T, rc *rawClient) {
			z := newDeflateClient().compress(text, false)
			rc.write(rc.frame(false, bitRsv1, opText, z[:10], true))
			rc.write(rc.frame(true, bitRsv1, opContinuation, z[10:], true))
			rc.expectClose(CloseProtocolError)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startWS(t, echoHandler, tc.opts)
			rc, resp := dialRaw(t, ts.addr, ext)
			if got := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(got, "permessage-deflate") {
				t.Fatalf("extension not negotiated: %q", got)
			}
			tc.run(t, rc)
			ts.waitOpen(t, 0)
		})
	}
}

// TestFailureClosesWithoutPeer: after a failure the server waits for the peer's close frame
// only up to the close timeout, then closes the TCP connection itself.
func TestFailureClosesWithoutPeer(t *testing.T) {
	rec := newRecorder(true)
	ts := startWS(t, rec, []Option{WithCloseTimeout(testsupport.Scale(200 * time.Millisecond))})
	rc, _ := dialRaw(t, ts.addr, "")
	rc.write(rc.frame(true, 0, opText, []byte("x"), false))
	f := rc.mustRead()
	if f.op != opClose || binary.BigEndian.Uint16(f.payload) != uint16(CloseProtocolError) {
		t.Fatalf("got %+v, want close 1002", f)
	}
	// No answer from the client: the server must still let go.
	rc.expectEOF()
	err := rec.waitClosed(t)
	if ce, ok := err.(*CloseError); !ok || ce.Code != CloseProtocolError || ce.Remote {
		t.Fatalf("OnClose(%v), want the server's 1002", err)
	}
	ts.waitOpen(t, 0)
}
