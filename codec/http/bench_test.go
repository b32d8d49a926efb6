package http

import (
	"bufio"
	"bytes"
	"io"
	nethttp "net/http"
	"testing"
	"time"
)

var benchInputs = []struct {
	name string
	in   []byte
}{
	{"GET10Headers", getTenHeaders},
	{"POSTSmallBody", []byte("POST /api/items HTTP/1.1\r\nHost: server.example.com\r\nContent-Type: application/json\r\n" +
		"Content-Length: 27\r\nUser-Agent: bench\r\n\r\n{\"name\":\"widget\",\"qty\":12}\n")},
	{"Chunked", []byte("POST /upload HTTP/1.1\r\nHost: server.example.com\r\nTransfer-Encoding: chunked\r\n" +
		"Content-Type: text/plain\r\n\r\n10\r\n0123456789abcdef\r\n10;ext=1\r\nfedcba9876543210\r\n5\r\nhello\r\n0\r\n\r\n")},
}

// BenchmarkParse runs our parser and net/http's http.ReadRequest (bufio.Reader over a
// bytes.Reader, reset per iteration, body read to the end) on the same bytes.
func BenchmarkParse(b *testing.B) {
	for _, bi := range benchInputs {
		in := bi.in
		b.Run(bi.name+"/reactord", func(b *testing.B) {
			p, _ := NewParser(Limits{})
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				n, req, err := p.Parse(in)
				if err != nil || req == nil || n != len(in) {
					b.Fatal(err)
				}
			}
		})
		b.Run(bi.name+"/net_http", func(b *testing.B) {
			rd := bytes.NewReader(in)
			br := bufio.NewReader(rd)
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				rd.Reset(in)
				br.Reset(rd)
				req, err := nethttp.ReadRequest(br)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, req.Body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkResponse serializes a "Hello, World!" response with Date, Server and Content-Type,
// buffered (automatic Content-Length) and streamed (chunked).
func BenchmarkResponse(b *testing.B) {
	p, _ := NewParser(Limits{})
	_, req, _ := p.Parse(getTenHeaders)
	var dc DateCache
	dc.Update(time.Now())
	body := []byte("Hello, World!")
	b.Run("Buffered", func(b *testing.B) {
		var w ResponseWriter
		w.SetDateCache(&dc)
		w.SetServer("reactord")
		out := make([]byte, 0, 4096)
		b.ReportAllocs()
		for b.Loop() {
			w.Begin(out[:0], req)
			w.Set("Content-Type", "text/plain")
			w.Write(body)
			w.Finish()
			out = w.Bytes()
		}
	})
	b.Run("Chunked", func(b *testing.B) {
		var w ResponseWriter
		w.SetDateCache(&dc)
		out := make([]byte, 0, 4096)
		b.ReportAllocs()
		for b.Loop() {
			w.Begin(out[:0], req)
			w.Write(body)
			w.Flush()
			w.Write(body)
			w.Finish()
			out = w.Bytes()
		}
	})
	b.Run("Error", func(b *testing.B) {
		out := make([]byte, 0, 512)
		b.ReportAllocs()
		for b.Loop() {
			out = AppendError(out[:0], ErrMissingHost, dc.Bytes())
		}
	})
}
