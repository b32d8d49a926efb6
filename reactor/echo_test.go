package reactor

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

func TestEchoEachBackend(t *testing.T) {
	for _, b := range backends(t) {
		for _, lb := range []LoadBalancing{RoundRobin, LeastConnections, PerLoopListeners} {
			t.Run(b.Name+"/"+lb.String(), func(t *testing.T) {
				s, addr := startServer(t, echoHandler(), WithPoller(b.Name), WithLoops(2), WithLoadBalancing(lb))
				if s.PollerName() != b.Name {
					t.Fatalf("PollerName = %q, want %q", s.PollerName(), b.Name)
				}
				for i := 0; i < 4; i++ {
					c := dial(t, "tcp", addr)
					msg := bytes.Repeat([]byte{byte('a' + i)}, 100000+i)
					go c.Write(msg)
					got := make([]byte, len(msg))
					if _, err := io.ReadFull(c, got); err != nil {
						t.Fatalf("read echo: %v", err)
					}
					if !bytes.Equal(got, msg) {
						t.Fatal("echo mismatch")
					}
				}
				// Loop counters are published at the end of an iteration: poll for them.
				testsupport.Eventually(t, 5*time.Second, "stats", func() bool {
					st := s.Stats()
					return st.ConnsAccepted == 4 && st.BytesIn >= 4*100000 && st.BytesOut == st.BytesIn
				})
			})
		}
	}
}
