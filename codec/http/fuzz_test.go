package http

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	nethttp "net/http"
	"reflect"
	"strings"
	"testing"
)

// fuzzSeeds are shared by the parser fuzz targets (the committed corpora under testdata/fuzz
// hold more).
var fuzzSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a?b HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=\"y\"\r\nhello\r\n0\r\nT: v\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"GET http://h:1/p?q HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
	"\r\nOPTIONS * HTTP/1.1\r\nHost: [::1]\r\n\r\n",
}

func FuzzParser(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), uint16(len(s)/2), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint16, bareLF bool) {
		lim := Limits{AllowBareLF: bareLF, MaxHeaderCount: 20, MaxBodyBytes: 1 << 16}
		one := feed(t, lim, [][]byte{in})
		k := int(split) % (len(in) + 1)
		two := feed(t, lim, [][]byte{in[:k], in[k:]})
		if !sameOutcome(one, two) {
			t.Fatalf("split at %d differs:\n%v\n%v", k, one, two)
		}
		if len(in) <= 2048 {
			if b := byteAtATime(t, lim, string(in)); !sameOutcome(one, b) {
				t.Fatalf("byte-at-a-time differs:\n%v\n%v", one, b)
			}
		}
		var pe *ParseError
		if one.Err != nil && (!errors.As(one.Err, &pe) || pe.Status < 400 || pe.Status > 599) {
			t.Fatalf("error %v is not a ParseError with a 4xx/5xx status", one.Err)
		}
		// Every request's body came from the input.
		total := 0
		for _, r := range one.Reqs {
			total += len(r.Body)
		}
		if total > len(in) {
			t.Fatalf("bodies (%d bytes) larger than input (%d)", total, len(in))
		}
		// Direct Parse invariants: consumed is within the input and never zero for a request.
		p, _ := NewParser(lim)
		rest := in
		for {
			n, req, err := p.Parse(rest)
			if err != nil || req == nil {
				break
			}
			if n <= 0 || n > len(rest) {
				t.Fatalf("consumed %d of %d", n, len(rest))
			}
			rest = rest[n:]
			if !req.KeepAlive() {
				break
			}
		}
	})
}

func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"5;a=b;c=\"d\\\"e\"\r\nhello\r\n6 ; x\r\n world\r\n0\r\nT: 1\r\nU: 2\r\n\r\n",
		"000\r\n\r\n",
		"a\n0123456789\n0\n\n",
		"FFFFFFFFFFFFFFFF0\r\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, bareLF bool) {
		lim := Limits{AllowBareLF: bareLF, MaxBodyBytes: 1 << 16, MaxChunkLineBytes: 256, MaxHeaderBytes: 512, MaxHeaderCount: 8}
		d, err := NewChunkedDecoder(lim)
		if err != nil {
			t.Fatal(err)
		}
		out, n, err := d.Decode(nil, in)
		if n < 0 || n > len(in) || len(out) > len(in) {
			t.Fatalf("n=%d decoded=%d input=%d", n, len(out), len(in))
		}
		if n > 0 && int64(len(out)) != d.Size() {
			t.Fatalf("Size %d, decoded %d", d.Size(), len(out))
		}
		var trailers [][2]string
		for i := 0; i < d.NumTrailers(); i++ {
			a, b := d.TrailerAt(in, i)
			trailers = append(trailers, [2]string{string(a), string(b)})
		}
		// Byte at a time, with the input reallocated each step, gives the same result.
		d2, _ := NewChunkedDecoder(lim)
		var out2 []byte
		var n2 int
		var err2 error
		var buf []byte
		for i := 0; i < len(in); i++ {
			buf = append(append([]byte(nil), buf...), in[i])
			out2, n2, err2 = d2.Decode(out2, buf)
			if err2 != nil || n2 > 0 {
				break
			}
		}
		if len(in) == 0 {
			out2, n2, err2 = d2.Decode(out2, in)
		}
		var trailers2 [][2]string
		for i := 0; i < d2.NumTrailers(); i++ {
			a, b := d2.TrailerAt(buf, i)
			trailers2 = append(trailers2, [2]string{string(a), string(b)})
		}
		if err != err2 || n != n2 || (err == nil && !bytes.Equal(out, out2)) || (n > 0 && !reflect.DeepEqual(trailers, trailers2)) {
			t.Fatalf("one-shot (%q,%d,%v,%q) != byte-at-a-time (%q,%d,%v,%q)", out, n, err, trailers, out2, n2, err2, trailers2)
		}
	})
}

// FuzzParserVsNetHTTP compares the first request with net/http's http.ReadRequest.
//
// Where both accept, method, target, headers, Host, persistence, body and the number of bytes the
// request occupied must agree. Where net/http rejects for a framing reason (Content-Length,
// Transfer-Encoding, chunked syntax) we must reject too. Where only we reject, we are stricter
// by design (see the package documentation): single SP in the request-line, strict target and
// Host syntax, bare LF, required Host, duplicate Content-Length, chunk-extension syntax.
func FuzzParserVsNetHTTP(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 0 && (in[0] == '\r' || in[0] == '\n') {
			// net/http's server skips leading empty lines itself, outside ReadRequest.
			return
		}
		p, _ := NewParser(Limits{MaxBodyBytes: 1 << 16})
		n, req, err := p.Parse(in)

		src := bytes.NewReader(in)
		br := bufio.NewReader(src)
		nreq, nerr := nethttp.ReadRequest(br)
		var nbody []byte
		var berr error
		if nerr == nil {
			nbody, berr = io.ReadAll(nreq.Body)
		}
		framing := func(e error) bool {
			m := strings.ToLower(e.Error())
			return strings.Contains(m, "content-length") || strings.Contains(m, "content length") ||
				strings.Contains(m, "transfer-encoding") || strings.Contains(m, "transfer encoding") ||
				strings.Contains(m, "chunk")
		}
		if req == nil {
			return // we reject or need more: stricter or equal, never looser
		}
		if err != nil {
			t.Fatalf("request and error: %v", err)
		}
		switch {
		case nerr != nil:
			if framing(nerr) {
				t.Fatalf("net/http rejects framing (%v), we accepted %q", nerr, req.Target())
			}
			return
		case berr != nil:
			if framing(berr) || errors.Is(berr, io.ErrUnexpectedEOF) {
				t.Fatalf("net/http body error (%v), we accepted a %d-byte body", berr, len(req.Body()))
			}
			return
		}
		if got, want := string(req.Method()), nreq.Method; got != want {
			t.Fatalf("method %q vs %q", got, want)
		}
		if got, want := string(req.Target()), nreq.RequestURI; got != want {
			t.Fatalf("target %q vs %q", got, want)
		}
		if got, want := string(req.Host()), nreq.Host; got != want {
			t.Fatalf("host %q vs %q", got, want)
		}
		if !bytes.Equal(req.Body(), nbody) {
			t.Fatalf("body %q vs %q", req.Body(), nbody)
		}
		if req.KeepAlive() == nreq.Close {
			t.Fatalf("keep-alive %v vs net/http Close %v", req.KeepAlive(), nreq.Close)
		}
		ours := map[string][]string{}
		for i := 0; i < req.NumHeaders(); i++ {
			name, value := req.HeaderAt(i)
			k := nethttp.CanonicalHeaderKey(string(name))
			switch k {
			case "Host", "Transfer-Encoding", "Trailer":
				continue // net/http moves these out of Header
			}
			ours[k] = append(ours[k], string(value))
		}
		theirs := map[string][]string{}
		for k, v := range nreq.Header {
			theirs[k] = v
		}
		if !reflect.DeepEqual(ours, theirs) {
			t.Fatalf("headers\n ours %q\n net/http %q", ours, theirs)
		}
		// Both framed the request identically: it ended at the same byte.
		if used := len(in) - src.Len() - br.Buffered(); used != n {
			t.Fatalf("request occupies %d bytes for us, %d for net/http", n, used)
		}
	})
}
