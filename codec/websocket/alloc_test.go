package websocket

import (
	"bytes"
	"io"
	"testing"
)

// TestZeroAllocPerMessage: an uncompressed message read, handed to OnMessage and echoed with
// Send costs no allocation end to end through the reactor once the buffers are warm.
// AllocsPerRun counts every goroutine's mallocs, the client's included, so the client only
// writes pre-encoded frames and reads into a fixed buffer.
func TestZeroAllocPerMessage(t *testing.T) {
	tests := []struct {
		name  string
		frame func(rc *rawClient) []byte // what the client sends per round trip
		reply int                        // bytes it reads back
	}{
		{"text 64 B", func(rc *rawClient) []byte {
			return rc.frame(true, 0, opText, bytes.Repeat([]byte("t"), 64), true)
		}, 2 + 64},
		{"binary 4 KiB", func(rc *rawClient) []byte {
			return rc.frame(true, 0, opBinary, bytes.Repeat([]byte{1}, 4096), true)
		}, 4 + 4096},
		{"16 messages per write", func(rc *rawClient) []byte {
			return bytes.Repeat(rc.frame(true, 0, opText, bytes.Repeat([]byte("t"), 64), true), 16)
		}, 16 * (2 + 64)},
		{"fragmented text with a ping between", func(rc *rawClient) []byte {
			b := rc.frame(false, 0, opText, bytes.Repeat([]byte("a"), 1000), true)
			b = append(b, rc.frame(true, 0, opPing, []byte("p"), true)...)
			return append(b, rc.frame(true, 0, opContinuation, bytes.Repeat([]byte("b"), 1000), true)...)
		}, 3 + 4 + 2000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startWS(t, echoHandler, nil)
			rc, _ := dialRaw(t, ts.addr, "")
			out := tc.frame(rc)
			buf := make([]byte, tc.reply)
			round := func() {
				if _, err := rc.c.Write(out); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(rc.br, buf); err != nil {
					t.Fatal(err)
				}
			}
			for range 50 {
				round()
			}
			if a := testing.AllocsPerRun(300, round); a != 0 {
				t.Fatalf("%.2f allocations per round trip, want 0", a)
			}
		})
	}
}

// TestZeroAllocBroadcastPerMember: a Group broadcast allocates per message (the encoded frame
// and one task per loop), never per member.
func TestZeroAllocBroadcastPerMember(t *testing.T) {
	lr := newLoopRunner(t)
	u, err := NewUpgrader(echoHandler)
	if err != nil {
		t.Fatal(err)
	}
	g := NewGroup()
	var fakes []*fakeConn
	lr.run(t, func() {
		for range 1000 {
			c, f := openFake(u, lr.loop, deflateMode{})
			f.keep = false
			fakes = append(fakes, f)
			if err := g.Add(c); err != nil {
				t.Error(err)
			}
		}
	})
	msg := bytes.Repeat([]byte("b"), 64)
	broadcast := func() {
		if err := g.Broadcast(Text, msg); err != nil {
			t.Fatal(err)
		}
		lr.run(t, func() {}) // the broadcast task ran before this one
	}
	for range 10 {
		broadcast()
	}
	// Per broadcast: the frame, the task's closure and its run (lr.run's own closure and
	// channel count here too). Anything proportional to the 1000 members would show.
	if a := testing.AllocsPerRun(100, broadcast); a > 8 {
		t.Fatalf("%.1f allocations per broadcast to 1000 members, want a few per message", a)
	}
	lr.run(t, func() {
		for _, f := range fakes {
			f.finishClose()
		}
	})
}
