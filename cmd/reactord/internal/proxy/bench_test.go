package proxy

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	codec "github.com/reactord/reactord/codec/http"
	"github.com/reactord/reactord/reactor"
)

// cannedServer answers every request head with resp from a goroutine per connection,
// allocating nothing per request.
func cannedServer(b *testing.B, resp string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				out := make([]byte, 0, 64<<10)
				held := 0
				for {
					k, err := c.Read(buf[held:])
					if err != nil {
						return
					}
					held += k
					out = out[:0]
					start := 0
					for {
						i := bytes.Index(buf[start:held], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						start += i + 4
						out = append(out, resp...)
					}
					held = copy(buf, buf[start:held])
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkProxy: the whole proxy path in one process — a codec Server whose handler calls
// Handle, an upstream answering from a canned buffer, and C client connections in a closed
// loop sending P pipelined requests. With -cpuprofile it shows where a proxied request goes.
func BenchmarkProxy(b *testing.B) {
	for _, bc := range []struct {
		name  string
		conns int
		pipe  int
	}{{"c64p1", 64, 1}, {"c64p16", 64, 16}} {
		b.Run(bc.name, func(b *testing.B) {
			up := cannedServer(b, "HTTP/1.1 200 OK\r\nServer: canned\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")
			p, err := New(Options{Routes: []RouteConfig{{Prefix: "/", Upstreams: []string{up}, Pipeline: 16}}, Loops: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			g := p.groups[0]
			srv, err := codec.NewServer(codec.HandlerFunc(func(w *codec.ResponseWriter, r *codec.Request) { p.Handle(w, r, g) }),
				codec.WithReactorOptions(reactor.WithLoops(1)))
			if err != nil {
				b.Fatal(err)
			}
			addr, _ := srv.Listen("tcp", "127.0.0.1:0")
			srv.Start()
			defer srv.Close()
			req := bytes.Repeat([]byte("GET /plaintext HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"), bc.pipe)
			// Learn the response size once.
			c0, _ := net.Dial("tcp", addr.String())
			c0.Write(req[:len(req)/bc.pipe])
			c0.SetReadDeadline(time.Now().Add(5 * time.Second))
			one := make([]byte, 4096)
			n, _ := c0.Read(one)
			c0.Close()
			respLen := n
			per := b.N/(bc.conns*bc.pipe) + 1
			var wg sync.WaitGroup
			b.ResetTimer()
			for i := 0; i < bc.conns; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := net.Dial("tcp", addr.String())
					if err != nil {
						return
					}
					defer c.Close()
					buf := make([]byte, respLen*bc.pipe)
					for j := 0; j < per; j++ {
						if _, err := c.Write(req); err != nil {
							return
						}
						if _, err := io.ReadFull(c, buf); err != nil {
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}
