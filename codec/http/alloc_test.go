package http

import (
	"bytes"
	"io"
	"testing"

	"github.com/reactord/reactord/reactor"
)

// TestServerZeroAllocPerRequest: a GET with 10 headers answered by a native handler costs no
// allocation end to end through the reactor once the buffers are warm. AllocsPerRun counts
// every goroutine's mallocs, the client's included, so the client uses allocation-free calls.
func TestServerZeroAllocPerRequest(t *testing.T) {
	tests := []struct {
		name  string
		batch int // pipelined requests per round trip
		opts  []Option
	}{
		{"keepalive", 1, nil},
		{"pipelined16", 16, nil},
		{"observer", 1, []Option{WithObserver(func(i *RequestInfo) {
			if i.Status != 200 || len(i.Path) == 0 {
				panic("bad info")
			}
		})}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]Option{WithServerName("reactord"), WithReactorOptions(reactor.WithLoops(1))}, tc.opts...)
			_, addr := startServer(t, HandlerFunc(func(w *ResponseWriter, r *Request) {
				if v, ok := r.Header("user-agent"); !ok || len(v) == 0 {
					w.SetStatus(400)
				}
				w.Set("Content-Type", "text/plain")
				w.WriteString("Hello, World!")
			}), opts...)
			cl := dialClient(t, addr)
			req := bytes.Repeat(getTenHeaders, tc.batch)
			// Learn the response length (the Date header has a fixed width).
			cl.send(string(getTenHeaders))
			resp, _ := cl.read("GET")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			one := len("HTTP/1.1 200 OK\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nServer: reactord\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")
			buf := make([]byte, one*tc.batch)
			round := func() {
				if _, err := cl.c.Write(req); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(cl.c, buf); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < 50; i++ {
				round()
			}
			if !bytes.HasSuffix(buf, []byte("Hello, World!")) {
				t.Fatalf("unexpected response %q", buf)
			}
			if a := testing.AllocsPerRun(300, round); a != 0 {
				t.Fatalf("%.2f allocations per round trip of %d requests, want 0", a, tc.batch)
			}
		})
	}
}
