package reactor

import (
	"io"
	"testing"
)

// TestSteadyStateAllocations checks that reading, keeping a tail, writing and flushing do not
// allocate once the loop's buffer pool is warm. AllocsPerRun counts every goroutine's mallocs,
// the client's included, so the client side uses only allocation-free calls.
func TestSteadyStateAllocations(t *testing.T) {
	tests := []struct {
		name string
		h    Handler
		msg  []byte
		want int // reply length
	}{
		{"echo", echoHandler(), make([]byte, 512), 512},
		// Consumes whole 100-byte records and keeps the rest: exercises the kept tail.
		{"tail", HandlerFuncs{Data: func(c *Conn, in []byte) int {
			n := len(in) / 100 * 100
			c.Write(in[:n])
			return n
		}}, make([]byte, 150), 100},
	}
	for _, b := range backends(t) {
		for _, tc := range tests {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				_, addr := startServer(t, tc.h, WithPoller(b.Name), WithLoops(1))
				c := dial(t, "tcp", addr)
				buf := make([]byte, 4096)
				round := func() {
					if _, err := c.Write(tc.msg); err != nil {
						t.Fatal(err)
					}
					if _, err := io.ReadFull(c, buf[:tc.want]); err != nil {
						t.Fatal(err)
					}
				}
				if tc.name == "tail" {
					// 150 bytes per round, 100 consumed: after two rounds the tail is back
					// to 100 bytes, and every other round consumes two records.
					round = func() {
						c.Write(tc.msg)
						c.Write(tc.msg)
						if _, err := io.ReadFull(c, buf[:300]); err != nil {
							t.Fatal(err)
						}
					}
				}
				for i := 0; i < 20; i++ {
					round()
				}
				if a := testing.AllocsPerRun(200, round); a != 0 {
					t.Fatalf("%.2f allocations per round trip, want 0", a)
				}
			})
		}
	}
}
