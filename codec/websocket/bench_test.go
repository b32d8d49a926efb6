package websocket

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Benchmarks of the frame code without system calls (a fake connection on a real loop), of the
// echo over TCP, and of compression. Run with -benchmem:
//
//	go test -run '^$' -bench . -benchmem ./codec/websocket
//
// The cross-library comparison lives in the bench harness (bench ws).

// BenchmarkReadFrames: one op is one read of input holding `batch` masked messages, parsed,
// unmasked, validated, delivered to an echo handler, and the echoes staged and handed to the
// connection.
func BenchmarkReadFrames(b *testing.B) {
	for _, bc := range []struct {
		name  string
		op    byte
		size  int
		batch int
	}{
		{"text-64B", opText, 64, 1},
		{"text-64B-x16", opText, 64, 16},
		{"binary-1KiB", opBinary, 1024, 1},
		{"text-16KiB", opText, 16 << 10, 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			lr := newLoopRunner(b)
			u, err := NewUpgrader(echoHandler)
			if err != nil {
				b.Fatal(err)
			}
			one := clientFrame(bitFin|bc.op, bytes.Repeat([]byte("x"), bc.size), 0x5a5a1234)
			in := bytes.Repeat(one, bc.batch)
			work := make([]byte, len(in))
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			lr.run(b, func() {
				c, f := openFake(u, lr.loop, deflateMode{})
				f.keep = false
				h := connHandler{c}
				b.ResetTimer()
				for range b.N {
					copy(work, in) // unmasking is in place
					if h.OnData(nil, work) != len(work) {
						b.Fatal("not all consumed")
					}
				}
				b.StopTimer()
				f.finishClose()
			})
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*bc.batch), "ns/msg")
		})
	}
}

// BenchmarkEchoTCP: one op is a round trip of one 64-byte message over loopback TCP through
// the reactor (the client's system calls included).
func BenchmarkEchoTCP(b *testing.B) {
	ts := startWS(b, echoHandler, nil)
	rc, _ := dialRaw(b, ts.addr, "")
	out := rc.frame(true, 0, opText, bytes.Repeat([]byte("t"), 64), true)
	buf := make([]byte, 66)
	b.ReportAllocs()
	for range b.N {
		if _, err := rc.c.Write(out); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(rc.br, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBroadcast: one op is a Group broadcast of a 64-byte message to 1000 members on one
// loop (fake connections: the cost without the system calls, which are one write per member).
func BenchmarkBroadcast(b *testing.B) {
	lr := newLoopRunner(b)
	u, _ := NewUpgrader(echoHandler)
	g := NewGroup()
	var fakes []*fakeConn
	lr.run(b, func() {
		for range 1000 {
			c, f := openFake(u, lr.loop, deflateMode{})
			f.keep = false
			fakes = append(fakes, f)
			g.Add(c)
		}
	})
	msg := bytes.Repeat([]byte("b"), 64)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		g.Broadcast(Text, msg)
		lr.run(b, func() {})
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/member")
	lr.run(b, func() {
		for _, f := range fakes {
			f.finishClose()
		}
	})
}

// chatCorpus is a stream of JSON chat messages: similar to each other, the case context
// takeover is for.
func chatCorpus(n int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	users := []string{"alice", "bob", "carol", "dave", "erin"}
	words := strings.Fields("the quick brown fox jumps over the lazy dog hello world meeting tomorrow at noon please review the document and send feedback thanks")
	msgs := make([][]byte, n)
	for i := range msgs {
		var sb strings.Builder
		for range 8 + r.IntN(30) {
			sb.WriteString(words[r.IntN(len(words))])
			sb.WriteByte(' ')
		}
		msgs[i] = fmt.Appendf(nil, `{"type":"message","room":"general","user":%q,"ts":%d,"text":%q}`,
			users[r.IntN(len(users))], 1700000000000+int64(i)*1337, sb.String())
	}
	return msgs
}

// BenchmarkCompress measures the permessage-deflate trade-off on a chat-like stream: CPU per
// message (ns/op) against the compressed share of the bytes (ratio, lower is better), for the
// levels and for context takeover. docs/BENCHMARKS.md quotes it.
func BenchmarkCompress(b *testing.B) {
	corpus := chatCorpus(1000)
	total := 0
	for _, m := range corpus {
		total += len(m)
	}
	for _, bc := range []struct {
		name     string
		level    int
		takeover bool
	}{
		{"huffman-only", flate.HuffmanOnly, false},
		{"level1", 1, false},
		{"level1-takeover", 1, true},
		{"level6", 6, false},
		{"level6-takeover", 6, true},
		{"level9-takeover", 9, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d := newDeflater(bc.level)
			out := 0
			b.ReportAllocs()
			cpu0 := cpuTime()
			for i := range b.N {
				m := corpus[i%len(corpus)]
				out += len(d.compress(m, !bc.takeover))
				if i%len(corpus) == len(corpus)-1 && bc.takeover {
					d.compress(nil, true) // start the stream over with the corpus
				}
			}
			// CPU time, unlike ns/op, does not grow when other processes take the CPU.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			in := 0
			for i := range b.N {
				in += len(corpus[i%len(corpus)])
			}
			b.ReportMetric(float64(out)/float64(in), "ratio")
			b.ReportMetric(float64(in)/float64(b.N), "B/msg")
		})
	}
}

// BenchmarkInflate: decompressing one chat message (per-loop decompressor, reset per message).
func BenchmarkInflate(b *testing.B) {
	corpus := chatCorpus(100)
	d := newDeflater(1)
	var zs [][]byte
	for _, m := range corpus {
		zs = append(zs, append([]byte(nil), d.compress(m, true)...))
	}
	var f inflater
	var dst []byte
	grow := func(p []byte, n int) []byte { return append(p, make([]byte, n)...)[:len(p)] }
	b.ReportAllocs()
	cpu0 := cpuTime()
	for i := range b.N {
		var res inflateResult
		dst, res = f.inflate(dst, zs[i%len(zs)], nil, 1<<20, grow)
		if res != inflateOK {
			b.Fatal(res)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime returns the process's user and system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func BenchmarkMask(b *testing.B) {
	p := make([]byte, 4096)
	b.SetBytes(int64(len(p)))
	for range b.N {
		mask(0x12345678, 1, p)
	}
}

func BenchmarkValidateUTF8(b *testing.B) {
	for _, bc := range []struct{ name, s string }{
		{"ascii", strings.Repeat("hello world ", 400)},
		{"mixed", strings.Repeat("Hello-µ@ßöäüàá-κόσμε-", 200)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := []byte(bc.s)
			b.SetBytes(int64(len(p)))
			for range b.N {
				if validateUTF8(utf8Accept, p) != utf8Accept {
					b.Fatal("invalid")
				}
			}
		})
	}
}
