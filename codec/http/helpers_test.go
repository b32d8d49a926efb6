package http

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// parsed is a deep copy of everything a Request exposes, for comparisons across feeding modes.
type parsed struct {
	Method, Target, Path, Query, Host string
	Major, Minor                      int
	Headers                           [][2]string
	Body                              string
	Trailers                          [][2]string
	KeepAlive, Chunked, Expect100     bool
	ContentLength                     int64
}

func snapshot(r *Request) parsed {
	maj, min := r.Proto()
	p := parsed{
		Method: string(r.Method()), Target: string(r.Target()), Path: string(r.Path()),
		Query: string(r.Query()), Host: string(r.Host()), Major: maj, Minor: min,
		Body: string(r.Body()), KeepAlive: r.KeepAlive(), Chunked: r.Chunked(),
		Expect100: r.Expect100(), ContentLength: r.ContentLength(),
	}
	for i := 0; i < r.NumHeaders(); i++ {
		n, v := r.HeaderAt(i)
		p.Headers = append(p.Headers, [2]string{string(n), string(v)})
	}
	for i := 0; i < r.NumTrailers(); i++ {
		n, v := r.TrailerAt(i)
		p.Trailers = append(p.Trailers, [2]string{string(n), string(v)})
	}
	return p
}

// outcome is the result of feeding a byte stream to a Parser the way the reactor does.
type outcome struct {
	Reqs      []parsed
	Err       error // first error, nil if none
	Rest      int   // unconsumed bytes at the end (0 after an error or a close)
	Closed    bool  // stopped after a request without keep-alive
	Continues int   // times ExpectContinue fired
}

func (o outcome) String() string {
	return fmt.Sprintf("reqs=%d err=%v rest=%d closed=%v continues=%d %+v", len(o.Reqs), o.Err, o.Rest, o.Closed, o.Continues, o.Reqs)
}

// feed delivers pieces one after another, keeping unconsumed bytes like the reactor: after each
// piece the buffer is reallocated (so the parser must not hold pointers), every complete request
// is taken, and reading stops after a request that does not keep the connection alive.
func feed(t testing.TB, lim Limits, pieces [][]byte) outcome {
	t.Helper()
	p, err := NewParser(lim)
	if err != nil {
		t.Fatal(err)
	}
	return feedParser(p, pieces)
}

func feedParser(p *Parser, pieces [][]byte) outcome {
	var o outcome
	var buf []byte
	for _, piece := range pieces {
		nb := make([]byte, len(buf)+len(piece))
		copy(nb, buf)
		copy(nb[len(buf):], piece)
		buf = nb
		for {
			n, req, err := p.Parse(buf)
			if err != nil {
				o.Err = err
				return o
			}
			if req == nil {
				if p.ExpectContinue() {
					o.Continues++
				}
				break
			}
			if n <= 0 || n > len(buf) {
				panic(fmt.Sprintf("consumed %d of %d", n, len(buf)))
			}
			o.Reqs = append(o.Reqs, snapshot(req))
			buf = buf[n:]
			if !req.KeepAlive() {
				o.Closed = true
				return o
			}
		}
	}
	o.Rest = len(buf)
	return o
}

func oneShot(t testing.TB, lim Limits, in string) outcome {
	return feed(t, lim, [][]byte{[]byte(in)})
}

func byteAtATime(t testing.TB, lim Limits, in string) outcome {
	pieces := make([][]byte, len(in))
	for i := 0; i < len(in); i++ {
		pieces[i] = []byte{in[i]}
	}
	return feed(t, lim, pieces)
}

func statusOf(err error) int {
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe.Status
	}
	return 0
}

// crlf turns "\n" into "\r\n" so tables stay readable.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
