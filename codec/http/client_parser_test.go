package http

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// rparsed is a deep copy of one response as the parser reported it.
type rparsed struct {
	Interim      []int // statuses of the interim heads before it
	Status       int
	Reason       string
	Major, Minor int
	Headers      [][2]string
	Kind         BodyKind
	CL           int64
	KeepAlive    bool
	Body         string
	Trailers     [][2]string
	Done         bool
}

// routcome is the result of feeding a byte stream to a ResponseParser the way a client
// connection does.
type routcome struct {
	Resps   []rparsed
	Pending []int // interim statuses not yet followed by a final head
	Err     error
	Rest    int  // unconsumed bytes at the end
	Closed  bool // stopped after a response that ends the connection
}

func (o routcome) String() string {
	return fmt.Sprintf("err=%v rest=%d closed=%v pending=%v %+v", o.Err, o.Rest, o.Closed, o.Pending, o.Resps)
}

// feedResp delivers pieces one after another, reallocating the buffer each time (so the parser
// must not keep pointers), tells the parser the method of each response from methods (GET when
// they run out), and calls EOF at the end when eof is set.
func feedResp(t testing.TB, lim Limits, methods []string, pieces [][]byte, eof bool) routcome {
	t.Helper()
	p, err := NewResponseParser(lim)
	if err != nil {
		t.Fatal(err)
	}
	return feedRespParser(p, methods, pieces, eof)
}

func feedRespParser(p *ResponseParser, methods []string, pieces [][]byte, eof bool) routcome {
	var o routcome
	var cur *rparsed
	next := func() {
		if len(o.Resps) < len(methods) {
			p.SetRequestMethod([]byte(methods[len(o.Resps)]))
		}
	}
	next()
	var buf []byte
	finish := func() bool { // a response is complete; false: stop reading
		cur.Done = true
		o.Resps = append(o.Resps, *cur)
		keep := cur.KeepAlive
		cur = nil
		next()
		if !keep {
			o.Closed = true
		}
		return keep
	}
	for _, piece := range pieces {
		nb := make([]byte, len(buf)+len(piece))
		copy(nb, buf)
		copy(nb[len(buf):], piece)
		buf = nb
		for !o.Closed {
			n, ev, err := p.Parse(buf)
			if err != nil {
				o.Err = err
				if cur != nil {
					o.Resps = append(o.Resps, *cur)
				}
				return o
			}
			if n < 0 || n > len(buf) {
				panic(fmt.Sprintf("consumed %d of %d", n, len(buf)))
			}
			switch ev {
			case ResponseInterim:
				o.Pending = append(o.Pending, p.Response().Status())
			case ResponseHead:
				r := p.Response()
				maj, min := r.Proto()
				cur = &rparsed{Interim: o.Pending, Status: r.Status(), Reason: string(r.Reason()),
					Major: maj, Minor: min, Kind: r.BodyKind(), CL: r.ContentLength(), KeepAlive: r.KeepAlive()}
				o.Pending = nil
				for i := 0; i < r.NumHeaders(); i++ {
					k, v := r.HeaderAt(i)
					cur.Headers = append(cur.Headers, [2]string{string(k), string(v)})
				}
				if !bytes.Equal(r.Head(), buf[:n]) {
					panic("Head() is not the consumed head")
				}
			case ResponseBody:
				if len(p.Body()) == 0 {
					panic("empty body event")
				}
				cur.Body += string(p.Body())
			case ResponseDone:
				for i := 0; i < p.NumTrailers(); i++ {
					k, v := p.TrailerAt(i)
					cur.Trailers = append(cur.Trailers, [2]string{string(k), string(v)})
				}
			}
			buf = buf[n:]
			if ev == ResponseDone && !finish() {
				break // the connection is done: later bytes stay unread
			}
			if ev == ResponseNeedMore {
				break
			}
		}
	}
	o.Rest = len(buf)
	if eof && !o.Closed {
		ev, err := p.EOF()
		switch {
		case err != nil:
			o.Err = err
		case ev == ResponseDone && cur != nil:
			finish()
		}
	}
	if cur != nil {
		o.Resps = append(o.Resps, *cur)
	}
	return o
}

func respOneShot(t testing.TB, lim Limits, methods []string, in string, eof bool) routcome {
	return feedResp(t, lim, methods, [][]byte{[]byte(in)}, eof)
}

func respByteAtATime(t testing.TB, lim Limits, methods []string, in string, eof bool) routcome {
	pieces := make([][]byte, len(in))
	for i := 0; i < len(in); i++ {
		pieces[i] = []byte{in[i]}
	}
	return feedResp(t, lim, methods, pieces, eof)
}

// sameResp compares outcomes of different splits: the same responses, bodies and error. A
// partial last response may have streamed the same bytes in a different number of pieces,
// which the comparison does not see (bodies are concatenated).
func sameResp(a, b routcome) bool { return reflect.DeepEqual(a, b) }

var respGoodCases = []struct {
	name    string
	methods []string
	in      string // "\n" becomes CRLF
	eof     bool
	want    []rparsed
	rest    int
}{
	{"content-length", nil, "HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 5\n\nhello", false,
		[]rparsed{{Status: 200, Reason: "OK", Major: 1, Minor: 1, Headers: [][2]string{{"Content-Type", "text/plain"}, {"Content-Length", "5"}},
			Kind: BodyLength, CL: 5, KeepAlive: true, Body: "hello", Done: true}}, 0},
	{"no reason phrase", nil, "HTTP/1.1 204\n\n", false,
		[]rparsed{{Status: 204, Major: 1, Minor: 1, Kind: BodyNone, CL: -1, KeepAlive: true, Done: true}}, 0},
	{"empty reason phrase", nil, "HTTP/1.1 200 \nContent-Length: 0\n\n", false,
		[]rparsed{{Status: 200, Major: 1, Minor: 1, Headers: [][2]string{{"Content-Length", "0"}}, Kind: BodyLength, CL: 0, KeepAlive: true, Done: true}}, 0},
	{"reason with spaces and obs-text", nil, "HTTP/1.1 404 Not  Found \xe2\x9c\x93\nContent-Length: 0\n\n", false,
		[]rparsed{{Status: 404, Reason: "Not  Found \xe2\x9c\x93", Major: 1, Minor: 1, Headers: [][2]string{{"Content-Length", "0"}}, Kind: BodyLength, CL: 0, KeepAlive: true, Done: true}}, 0},
	{"chunked with extensions and trailers", nil, "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n5;a=b\nhello\n6 ; x=\"y\"\n world\n0\nX-Sum: 1\nX-Other: two\n\n", false,
		[]rparsed{{Status: 200, Reason: "OK", Major: 1, Minor: 1, Headers: [][2]string{{"Transfer-Encoding", "chunked"}}, Kind: BodyChunked, CL: -1,
			KeepAlive: true, Body: "hello world", Trailers: [][2]string{{"X-Sum", "1"}, {"X-Other", "two"}}, Done: true}}, 0},
	{"close-delimited", nil, "HTTP/1.1 200 OK\nServer: x\n\nabc\ndef", true,
		[]rparsed{{Status: 200, Reason: "OK", Major: 1, Minor: 1, Headers: [][2]string{{"Server", "x"}}, Kind: BodyUntilClose, CL: -1, Body: "abc\r\ndef", Done: true}}, 0},
	{"close-delimited without EOF yet", nil, "HTTP/1.1 200 OK\n\nabc", false,
		[]rparsed{{Status: 200, Reason: "OK", Major: 1, Minor: 1, Kind: BodyUntilClose, CL: -1, Body: "abc"}}, 0},
	{"HEAD has no body", []string{"HEAD", "GET"}, "HTTP/1.1 200 OK\nContent-Length: 10\n\nHTTP/1.1 200 OK\nContent-Length: 2\n\nok", false,
		[]rparsed{
			{Status: 200, Reason: "OK", Major: 1, Minor: 1, Headers: [][2]string{{"Content-Length", "10"}}, Kind: BodyNone, CL: 10, KeepAlive: true, Done: true},
			{Status: 200, Reason: "OK", Major: 1, Minor: 1, Headers: [][2]string{{"Content-Length", "2"}}, Kind: BodyLength, CL: 2, KeepAlive: true, Body: "ok", Done: true}}, 0},
	{"HEAD with chunked has no body", []string{"HEAD"}, "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n", false,
		[]rparsed{{Status: 200, Reason: "OK", Major: 1, Minor: 1, Headers: [][2]string{{"Transfer-Encoding", "chunked"}}, Kind: BodyNone, CL: -1, KeepAlive: true, Done: true}}, 0},
	{"304 ignores Content-Length", nil, "HTTP/1.1 304 Not Modified\nContent-Length: 99\n\n", false,
		[]rparsed{{Status: 304, Reason: "Not Modified", Major: 1, Minor: 1, Headers: [][2]string{{"Content-Length", "99"}}, Kind: BodyNone, CL: 99, KeepAlive: true, Done: true}}, 0},
	{"interim responses", nil, "HTTP/1.1 100 Continue\n\nHTTP/1.1 103 Early Hints\nLink: </s.css>\n\nHTTP/1.1 201 Created\nContent-Length: 1\n\nx", false,
		[]rparsed{{Interim: []int{100, 103}, Status: 201, Reason: "Created", Major: 1, Minor: 1, Headers: [][2]string{{"Content-Length", "1"}}, Kind: BodyLength, CL: 1, KeepAlive: true, Body: "x", Done: true}}, 0},
	{"101 is a tunnel", nil, "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: Upgrade\n\n\x81\x05hello", false,
		[]rparsed{{Status: 101, Reason: "Switching Protocols", Major: 1, Minor: 1, Headers: [][2]string{{"Upgrade", "websocket"}, {"Connection", "Upgrade"}}, Kind: BodyTunnel, CL: -1, Done: true}}, 7},
	{"CONNECT 200 is a tunnel", []string{"CONNECT"}, "HTTP/1.1 200 Connection established\n\nSSH-2.0", false,
		[]rparsed{{Status: 200, Reason: "Connection established", Major: 1, Minor: 1, Kind: BodyTunnel, CL: -1, Done: true}}, 7},
	{"CONNECT 407 has a body", []string{"CONNECT"}, "HTTP/1.1 407 Proxy Authentication Required\nContent-Length: 2\n\nno", false,
		[]rparsed{{Status: 407, Reason: "Proxy Authentication Required", Major: 1, Minor: 1, Headers: [][2]string{{"Content-Length", "2"}}, Kind: BodyLength, CL: 2, KeepAlive: true, Body: "no", Done: true}}, 0},
	{"HTTP/1.0 keep-alive", nil, "HTTP/1.0 200 OK\nConnection: Keep-Alive\nContent-Length: 1\n\nx", false,
		[]rparsed{{Status: 200, Reason: "OK", Major: 1, Minor: 0, Headers: [][2]string{{"Connection", "Keep-Alive"}, {"Content-Length", "1"}}, Kind: BodyLength, CL: 1, KeepAlive: true, Body: "x", Done: true}}, 0},
	{"HTTP/1.0 default close", nil, "HTTP/1.0 200 OK\nContent-Length: 1\n\nxHTTP", false,
		[]rparsed{{Status: 200, Reason: "OK", Major: 1, Minor: 0, Headers: [][2]string{{"Content-Length", "1"}}, Kind: BodyLength, CL: 1, Body: "x", Done: true}}, 4},
	{"HTTP/1.1 close", nil, "HTTP/1.1 200 OK\nConnection: keep-alive, close\nContent-Length: 0\n\n", false,
		[]rparsed{{Status: 200, Reason: "OK", Major: 1, Minor: 1, Headers: [][2]string{{"Connection", "keep-alive, close"}, {"Content-Length", "0"}}, Kind: BodyLength, CL: 0, Done: true}}, 0},
	{"HTTP/1.2 treated as 1.1", nil, "HTTP/1.2 200 OK\nContent-Length: 0\n\n", false,
		[]rparsed{{Status: 200, Reason: "OK", Major: 1, Minor: 2, Headers: [][2]string{{"Content-Length", "0"}}, Kind: BodyLength, CL: 0, KeepAlive: true, Done: true}}, 0},
	{"pipelined", []string{"GET", "HEAD", "GET"}, "HTTP/1.1 200 OK\nContent-Length: 1\n\naHTTP/1.1 200 OK\nContent-Length: 5\n\nHTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n1\nc\n0\n\nHTTP/1.1 2", false,
		[]rparsed{
			{Status: 200, Reason: "OK", Major: 1, Minor: 1, Headers: [][2]string{{"Content-Length", "1"}}, Kind: BodyLength, CL: 1, KeepAlive: true, Body: "a", Done: true},
			{Status: 200, Reason: "OK", Major: 1, Minor: 1, Headers: [][2]string{{"Content-Length", "5"}}, Kind: BodyNone, CL: 5, KeepAlive: true, Done: true},
			{Status: 200, Reason: "OK", Major: 1, Minor: 1, Headers: [][2]string{{"Transfer-Encoding", "chunked"}}, Kind: BodyChunked, CL: -1, KeepAlive: true, Body: "c", Done: true}}, 10},
	{"content-length leading zeros", nil, "HTTP/1.1 200 OK\nContent-Length: 002\n\nok", false,
		[]rparsed{{Status: 200, Reason: "OK", Major: 1, Minor: 1, Headers: [][2]string{{"Content-Length", "002"}}, Kind: BodyLength, CL: 2, KeepAlive: true, Body: "ok", Done: true}}, 0},
	{"OWS trimmed, empty value", nil, "HTTP/1.1 200 OK\nX-A: \t v \t\nX-B:\nContent-Length: 0\n\n", false,
		[]rparsed{{Status: 200, Reason: "OK", Major: 1, Minor: 1, Headers: [][2]string{{"X-A", "v"}, {"X-B", ""}, {"Content-Length", "0"}}, Kind: BodyLength, CL: 0, KeepAlive: true, Done: true}}, 0},
	{"clean close between responses", nil, "HTTP/1.1 200 OK\nContent-Length: 0\n\n", true,
		[]rparsed{{Status: 200, Reason: "OK", Major: 1, Minor: 1, Headers: [][2]string{{"Content-Length", "0"}}, Kind: BodyLength, CL: 0, KeepAlive: true, Done: true}}, 0},
}

func TestResponseParserGood(t *testing.T) {
	tests := respGoodCases
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := crlf(tc.in)
			one := respOneShot(t, Limits{}, tc.methods, in, tc.eof)
			if one.Err != nil {
				t.Fatalf("error %v", one.Err)
			}
			if !reflect.DeepEqual(one.Resps, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", one.Resps, tc.want)
			}
			if one.Rest != tc.rest {
				t.Fatalf("rest %d, want %d", one.Rest, tc.rest)
			}
			if b := respByteAtATime(t, Limits{}, tc.methods, in, tc.eof); !sameResp(one, b) {
				t.Fatalf("byte at a time differs:\n%v\n%v", one, b)
			}
		})
	}
}

var respBadCases = []struct {
	name string
	lim  Limits
	in   string // "\n" becomes CRLF unless raw
	raw  bool
	eof  bool
	want error
}{
	{"HTTP/2", Limits{}, "HTTP/2.0 200 OK\n\n", false, false, ErrResponseVersion},
	{"HTTP/0.9", Limits{}, "HTTP/0.9 200 OK\n\n", false, false, ErrResponseVersion},
	{"lower-case protocol", Limits{}, "http/1.1 200 OK\n\n", false, false, ErrStatusLine},
	{"not HTTP", Limits{}, "SSH-2.0-OpenSSH\n", false, false, ErrStatusLine},
	{"leading empty line", Limits{}, "\nHTTP/1.1 200 OK\n\n", false, false, ErrStatusLine},
	{"status 600", Limits{}, "HTTP/1.1 600 X\n\n", false, false, ErrStatusCode},
	{"status 099", Limits{}, "HTTP/1.1 099 X\n\n", false, false, ErrStatusCode},
	{"two-digit status", Limits{}, "HTTP/1.1 20 OK\n\n", false, false, ErrStatusCode},
	{"four-digit status", Limits{}, "HTTP/1.1 2000 OK\n\n", false, false, ErrStatusCode},
	{"two spaces", Limits{}, "HTTP/1.1  200 OK\n\n", false, false, ErrStatusCode},
	{"tab separator", Limits{}, "HTTP/1.1\t200 OK\n\n", false, false, ErrStatusLine},
	{"no space before reason", Limits{}, "HTTP/1.1 200OK\n\n", false, false, ErrStatusLine},
	{"short status line", Limits{}, "HTTP/1.1\n\n", false, false, ErrStatusLine},
	{"CR in reason", Limits{}, "HTTP/1.1 200 O\rK\r\n\r\n", true, false, ErrBareCR},
	{"NUL in reason", Limits{}, "HTTP/1.1 200 O\x00K\n\n", false, false, ErrStatusLine},
	{"bare LF status line", Limits{}, "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", true, false, ErrBareLF},
	{"bare LF header", Limits{}, "HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n", true, false, ErrBareLF},
	{"obs-fold", Limits{}, "HTTP/1.1 200 OK\nX-A: a\n b\n\n", false, false, ErrObsFold},
	{"space before colon", Limits{}, "HTTP/1.1 200 OK\nContent-Length : 0\n\n", false, false, ErrSpaceBeforeColon},
	{"bad header name", Limits{}, "HTTP/1.1 200 OK\nX(A): 1\n\n", false, false, ErrFieldName},
	{"control in value", Limits{}, "HTTP/1.1 200 OK\nX-A: a\x01b\n\n", false, false, ErrFieldValue},
	{"duplicate Content-Length", Limits{}, "HTTP/1.1 200 OK\nContent-Length: 1\nContent-Length: 1\n\nx", false, false, ErrDuplicateContentLength},
	{"Content-Length list", Limits{}, "HTTP/1.1 200 OK\nContent-Length: 1, 1\n\nx", false, false, ErrDuplicateContentLength},
	{"negative Content-Length", Limits{}, "HTTP/1.1 200 OK\nContent-Length: -1\n\n", false, false, ErrContentLength},
	{"Content-Length overflow", Limits{}, "HTTP/1.1 200 OK\nContent-Length: 99999999999999999999\n\n", false, false, ErrContentLength},
	{"Content-Length with TE", Limits{}, "HTTP/1.1 200 OK\nContent-Length: 3\nTransfer-Encoding: chunked\n\n0\n\n", false, false, ErrContentLengthWithTE},
	{"TE with CL in 204 still refused", Limits{}, "HTTP/1.1 204 No Content\nContent-Length: 0\nTransfer-Encoding: chunked\n\n", false, false, ErrContentLengthWithTE},
	{"TE in HTTP/1.0", Limits{}, "HTTP/1.0 200 OK\nTransfer-Encoding: chunked\n\n0\n\n", false, false, ErrResponseTEHTTP10},
	{"TE gzip", Limits{}, "HTTP/1.1 200 OK\nTransfer-Encoding: gzip\n\n", false, false, ErrUnknownTransferCoding},
	{"chunked not final", Limits{}, "HTTP/1.1 200 OK\nTransfer-Encoding: chunked, gzip\n\n", false, false, ErrChunkedNotFinal},
	{"chunked twice", Limits{}, "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nTransfer-Encoding: chunked\n\n", false, false, ErrTransferEncoding},
	{"empty TE element", Limits{}, "HTTP/1.1 200 OK\nTransfer-Encoding: ,chunked\n\n", false, false, ErrTransferEncoding},
	{"chunk size 0x", Limits{}, "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n0x5\nhello\n0\n\n", false, false, ErrChunkSize},
	{"chunk size junk", Limits{}, "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\nzz\n", false, false, ErrChunkSize},
	{"chunk data overrun", Limits{}, "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nhello\n0\n\n", false, false, ErrChunkData},
	{"chunk bad extension", Limits{}, "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3;=\nabc\n0\n\n", false, false, ErrChunkExtension},
	{"chunk line too long", Limits{MaxChunkLineBytes: 8}, "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3;aaaaaaaaaaa\nabc\n0\n\n", false, false, ErrChunkLineTooLong},
	{"trailer obs-fold", Limits{}, "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n0\nA: 1\n 2\n\n", false, false, ErrObsFold},
	{"status line too long", Limits{MaxRequestLineBytes: 20}, "HTTP/1.1 200 OKOKOKOKOKOK\n\n", false, false, ErrStatusLineTooLong},
	{"header section too large", Limits{MaxHeaderBytes: 16}, "HTTP/1.1 200 OK\nX-Long: 0123456789\n\n", false, false, ErrHeaderTooLarge},
	{"too many headers", Limits{MaxHeaderCount: 1}, "HTTP/1.1 200 OK\nA: 1\nB: 2\n\n", false, false, ErrTooManyHeaders},
	{"body limit, Content-Length", Limits{MaxBodyBytes: 4}, "HTTP/1.1 200 OK\nContent-Length: 5\n\nhello", false, false, ErrResponseTooLarge},
	{"body limit, chunked", Limits{MaxBodyBytes: 4}, "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n3\ndef\n0\n\n", false, false, ErrResponseTooLarge},
	{"body limit, until close", Limits{MaxBodyBytes: 4}, "HTTP/1.1 200 OK\n\nhello", false, false, ErrResponseTooLarge},
	{"truncated head", Limits{}, "HTTP/1.1 200 OK\nContent-Le", false, true, ErrTruncatedResponse},
	{"truncated Content-Length body", Limits{}, "HTTP/1.1 200 OK\nContent-Length: 5\n\nhel", false, true, ErrTruncatedResponse},
	{"truncated chunked body", Limits{}, "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n5\nhello\n", false, true, ErrTruncatedResponse},
	{"truncated after interim", Limits{}, "HTTP/1.1 100 Continue\n\n", false, true, ErrTruncatedResponse},
	{"parse after tunnel", Limits{}, "HTTP/1.1 101 Switching Protocols\n\nHTTP/1.1 200 OK\n\n", false, false, ErrTunnel},
}

func TestResponseParserBad(t *testing.T) {
	tests := respBadCases
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if !tc.raw {
				in = crlf(in)
			}
			if tc.name == "parse after tunnel" {
				// A caller that keeps parsing after a tunnel's Done gets ErrTunnel.
				p, _ := NewResponseParser(tc.lim)
				b := []byte(in)
				var err error
				for i := 0; i < 4 && err == nil; i++ {
					var n int
					n, _, err = p.Parse(b)
					b = b[n:]
				}
				if err != tc.want {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
				return
			}
			one := respOneShot(t, tc.lim, nil, in, tc.eof)
			if one.Err != tc.want {
				t.Fatalf("got %v, want %v (%v)", one.Err, tc.want, one)
			}
			if b := respByteAtATime(t, tc.lim, nil, in, tc.eof); !sameResp(one, b) {
				t.Fatalf("byte at a time differs:\n%v\n%v", one, b)
			}
			// Sticky: the same error again.
			p, _ := NewResponseParser(tc.lim)
			feedRespParser(p, nil, [][]byte{[]byte(in)}, tc.eof)
			if _, _, err := p.Parse([]byte(in)); err != tc.want {
				t.Fatalf("second Parse: %v", err)
			}
		})
	}
}

func TestResponseParserBareLFAllowed(t *testing.T) {
	in := "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\nT: v\n\n"
	o := respOneShot(t, Limits{AllowBareLF: true}, nil, in, false)
	if o.Err != nil || len(o.Resps) != 1 || o.Resps[0].Body != "abc" || len(o.Resps[0].Trailers) != 1 {
		t.Fatalf("%v", o)
	}
	if b := respByteAtATime(t, Limits{AllowBareLF: true}, nil, in, false); !sameResp(o, b) {
		t.Fatalf("byte at a time differs:\n%v\n%v", o, b)
	}
}

// TestResponseParserStreams: a body is handed out as it arrives, never accumulated: each
// ResponseBody holds only the bytes of that read, and the parser keeps nothing of it.
func TestResponseParserStreams(t *testing.T) {
	p, _ := NewResponseParser(Limits{})
	n, ev, err := p.Parse([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"))
	if err != nil || ev != ResponseHead || n != 44 {
		t.Fatalf("%d %v %v", n, ev, err)
	}
	piece := bytes.Repeat([]byte("x"), 4096)
	got := 0
	for got < 1000000 {
		in := piece[:min(len(piece), 1000000-got)]
		n, ev, err := p.Parse(in)
		if err != nil || ev != ResponseBody || n != len(in) || len(p.Body()) != len(in) {
			t.Fatalf("%d %v %v", n, ev, err)
		}
		if &p.Body()[0] != &in[0] {
			t.Fatal("body was copied")
		}
		got += n
	}
	if _, ev, _ := p.Parse(nil); ev != ResponseDone || p.BodyRead() != 1000000 {
		t.Fatalf("event %v after the body, %d read", ev, p.BodyRead())
	}
	if p.Phase() != PhaseIdle {
		t.Fatalf("phase %v", p.Phase())
	}
}

// TestResponseParserLinear: a head, a chunked body and trailers arriving one byte at a time
// are scanned in linear time.
func TestResponseParserLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n")
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&b, "X-H%d: %s\r\n", i, strings.Repeat("v", 100))
	}
	b.WriteString("\r\n1000;" + strings.Repeat("e", 1000) + "\r\n" + strings.Repeat("d", 4096) + "\r\n0\r\n")
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&b, "T%d: %s\r\n", i, strings.Repeat("t", 100))
	}
	b.WriteString("\r\n")
	in := b.String()
	p, _ := NewResponseParser(Limits{MaxChunkLineBytes: 2000})
	var buf []byte
	done := false
	for i := 0; i < len(in); i++ {
		buf = append(buf, in[i])
		for {
			n, ev, err := p.Parse(buf)
			if err != nil {
				t.Fatal(err)
			}
			buf = buf[n:]
			if ev == ResponseDone {
				done = true
			}
			if ev == ResponseNeedMore || ev == ResponseDone {
				break
			}
		}
	}
	if !done {
		t.Fatal("response not complete")
	}
	if p.work > 3*len(in) {
		t.Fatalf("examined %d bytes for %d of input: not linear", p.work, len(in))
	}
}

func TestResponseParserPhase(t *testing.T) {
	p, _ := NewResponseParser(Limits{})
	steps := []struct {
		in   string
		want Phase
	}{
		{"", PhaseIdle},
		{"HTTP/1.1 100 Continue\r\n", PhaseHead},
		{"\r\n", PhaseHead}, // interim returned: the final head is awaited
		{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", PhaseBody},
		{"o", PhaseBody},
		{"k", PhaseIdle},
	}
	var buf []byte
	for i, s := range steps {
		buf = append(buf, s.in...)
		for {
			n, ev, err := p.Parse(buf)
			if err != nil {
				t.Fatal(err)
			}
			buf = buf[n:]
			if ev == ResponseNeedMore {
				break
			}
		}
		if got := p.Phase(); got != s.want {
			t.Fatalf("step %d: phase %v, want %v", i, got, s.want)
		}
	}
}

func TestResponseParserLimitsValidated(t *testing.T) {
	if _, err := NewResponseParser(Limits{MaxHeaderBytes: -1}); !errors.Is(err, ErrInvalidLimits) {
		t.Fatalf("got %v", err)
	}
	p, _ := NewResponseParser(Limits{MaxBodyBytes: 7})
	if l := p.Limits(); l.MaxBodyBytes != 7 || l.MaxHeaderBytes != DefaultMaxHeaderBytes {
		t.Fatalf("%+v", l)
	}
	p, _ = NewResponseParser(Limits{})
	if l := p.Limits(); l.MaxBodyBytes != 0 {
		t.Fatalf("default body limit %d, want none", l.MaxBodyBytes)
	}
}

func TestResponseParserShrunkInput(t *testing.T) {
	p, _ := NewResponseParser(Limits{})
	if _, _, err := p.Parse([]byte("HTTP/1.1 200 OK\r\nA: b")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Parse([]byte("HTTP")); err != ErrInputShrank {
		t.Fatalf("got %v", err)
	}
}

// TestResponseParserZeroAlloc: a warm parser allocates nothing for a response with ten header
// fields and a body, Content-Length or chunked with trailers.
func TestResponseParserZeroAlloc(t *testing.T) {
	for _, in := range []string{
		"HTTP/1.1 200 OK\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nServer: upstream\r\nContent-Type: text/html\r\n" +
			"Cache-Control: no-cache\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\nX-D: 4\r\nVary: Accept-Encoding\r\nContent-Length: 13\r\n\r\nHello, World!",
		"HTTP/1.1 200 OK\r\nServer: upstream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n8\r\n, World!\r\n0\r\nX-Sum: 1\r\n\r\n",
	} {
		p, _ := NewResponseParser(Limits{})
		buf := []byte(in)
		run := func() {
			rest := buf
			for {
				n, ev, err := p.Parse(rest)
				if err != nil {
					panic(err)
				}
				rest = rest[n:]
				if ev == ResponseDone || ev == ResponseNeedMore {
					break
				}
			}
			if len(rest) != 0 {
				panic("not consumed")
			}
		}
		run()
		if a := testing.AllocsPerRun(1000, run); a != 0 {
			t.Fatalf("%.1f allocations per response, want 0", a)
		}
	}
}

func BenchmarkResponseParser(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"length", "HTTP/1.1 200 OK\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nServer: upstream\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"},
		{"chunked", "HTTP/1.1 200 OK\r\nServer: upstream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n8\r\n, World!\r\n0\r\n\r\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, _ := NewResponseParser(Limits{})
			buf := []byte(bc.in)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				rest := buf
				for {
					n, ev, err := p.Parse(rest)
					if err != nil {
						b.Fatal(err)
					}
					rest = rest[n:]
					if ev == ResponseDone {
						break
					}
				}
			}
		})
	}
}
