package http

import (
	"bytes"
	"io"
	"net"
	nethttp "net/http"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// BenchmarkServerPlaintext measures "Hello, World!" end to end through one reactor loop over
// loopback TCP, with the request of TestServerZeroAllocPerRequest (10 headers). One op is one
// round trip of batch requests; ns/req divides by the batch. The client runs in-process, so the
// figures include its cost too: compare the variants with each other, not with other servers.
func BenchmarkServerPlaintext(b *testing.B) {
	native := HandlerFunc(func(w *ResponseWriter, r *Request) {
		w.Set("Content-Type", "text/plain")
		w.WriteString("Hello, World!")
	})
	adapted := Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "Hello, World!")
	}))
	for _, h := range []struct {
		name string
		h    Handler
	}{{"native", native}, {"adapter", adapted}} {
		for _, batch := range []int{1, 16} {
			name := h.name + "/keepalive"
			if batch > 1 {
				name = h.name + "/pipelined16"
			}
			b.Run(name, func(b *testing.B) {
				benchServer(b, h.h, batch)
			})
		}
	}
}

func benchServer(b *testing.B, h Handler, batch int) {
	_, addr := startServer(b, h, WithReactorOptions(reactor.WithLoops(1)))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(testsupport.Deadline(10 * time.Minute))
	// Learn one response's length (a single request in flight: nothing else is read).
	cr := &countingReader{r: c}
	if _, err := c.Write(getTenHeaders); err != nil {
		b.Fatal(err)
	}
	if _, _, err := readResponse(newBufReader(cr), "GET"); err != nil {
		b.Fatal(err)
	}
	req := bytes.Repeat(getTenHeaders, batch)
	buf := make([]byte, cr.n*batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/req")
}
