package reactor

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand"
	"net"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// frameHandler implements a length-prefixed protocol: each frame is a 4-byte big-endian length
// and that many bytes; the reply to a frame is the frame with its payload reversed. It is the
// sticky-packet case: frames arrive split and coalesced arbitrarily.
func frameHandler() Handler {
	return HandlerFuncs{Data: func(c *Conn, in []byte) int {
		consumed := 0
		for len(in)-consumed >= 4 {
			n := int(binary.BigEndian.Uint32(in[consumed:]))
			if len(in)-consumed-4 < n {
				break
			}
			frame := in[consumed : consumed+4+n]
			out := make([]byte, len(frame))
			copy(out, frame[:4])
			for i := 0; i < n; i++ {
				out[4+i] = frame[4+n-1-i]
			}
			c.Write(out)
			consumed += 4 + n
		}
		return consumed
	}}
}

func TestFramingFragmentation(t *testing.T) {
	type split func(rng *rand.Rand, stream []byte) [][]byte
	splits := []struct {
		name string
		fn   split
	}{
		{"one-byte-writes", func(_ *rand.Rand, s []byte) [][]byte {
			var out [][]byte
			for i := range s[:3000] { // keep it quick: the first few frames byte by byte
				out = append(out, s[i:i+1])
			}
			return append(out, s[3000:])
		}},
		{"random-splits", func(rng *rand.Rand, s []byte) [][]byte {
			var out [][]byte
			for len(s) > 0 {
				n := 1 + rng.Intn(min(len(s), 9000))
				out = append(out, s[:n])
				s = s[n:]
			}
			return out
		}},
		{"coalesced", func(_ *rand.Rand, s []byte) [][]byte { return [][]byte{s} }},
	}
	for _, b := range backends(t) {
		for _, sp := range splits {
			t.Run(b.Name+"/"+sp.name, func(t *testing.T) {
				rng := rand.New(rand.NewSource(42))
				_, addr := startServer(t, frameHandler(), WithPoller(b.Name), WithLoops(1),
					WithReadBufferSize(4096)) // small buffer: tails grow past it too
				var stream, want bytes.Buffer
				for i := 0; i < 300; i++ {
					n := rng.Intn(3000)
					if i%50 == 0 {
						n = 20000 // larger than the read buffer
					}
					payload := make([]byte, n)
					rng.Read(payload)
					var hdr [4]byte
					binary.BigEndian.PutUint32(hdr[:], uint32(n))
					stream.Write(hdr[:])
					stream.Write(payload)
					want.Write(hdr[:])
					for j := n - 1; j >= 0; j-- {
						want.WriteByte(payload[j])
					}
				}
				c := dial(t, "tcp", addr)
				c.(*net.TCPConn).SetNoDelay(true)
				errc := make(chan error, 1)
				go func() {
					for _, part := range sp.fn(rng, stream.Bytes()) {
						if _, err := c.Write(part); err != nil {
							errc <- err
							return
						}
					}
					errc <- nil
				}()
				got := make([]byte, want.Len())
				c.SetReadDeadline(testsupport.Deadline(30 * time.Second))
				if _, err := io.ReadFull(c, got); err != nil {
					t.Fatalf("read replies: %v", err)
				}
				if err := <-errc; err != nil {
					t.Fatalf("write: %v", err)
				}
				if !bytes.Equal(got, want.Bytes()) {
					t.Fatal("replies differ from expected")
				}
			})
		}
	}
}
