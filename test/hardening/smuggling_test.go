//go:build linux

package hardening_test

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// smuggled is the request an attacker hides behind an ambiguous frame. If the daemon ever
// answered it, the stream would hold a second response.
const smuggled = "GET /small.txt HTTP/1.1\r\nHost: victim\r\n\r\n"

// chunk frames s as one chunk followed by the last chunk.
func chunk(s string) string { return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(s), s) }

// smuggleVector is one request stream and the statuses a strict server may answer it with.
// A stream the daemon rejects gets 400/501/… and a close; a stream that is valid under the
// strict reading (the smuggled bytes are inside its body, or come after "Connection: close")
// gets its one answer — 405 for a POST to the static tree, 200 for a GET — and a close.
type smuggleVector struct {
	name   string
	stream string
	want   []int
}

func smuggleVectors() []smuggleVector {
	post := "POST / HTTP/1.1\r\nHost: test\r\n"
	body0 := "0\r\n\r\n" + smuggled // the chunked reading ends early, the rest is "next"
	rej := []int{400}
	return []smuggleVector{
		// Content-Length and Transfer-Encoding together, either order and spelling.
		{"CL.TE", post + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n" + body0, rej},
		{"TE.CL", post + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + chunk(smuggled), rej},
		{"TE.CL zero", post + "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n" + body0, rej},
		{"CL.TE mixed-case names", post + "content-LENGTH: 6\r\ntRaNsFeR-eNcOdInG: chunked\r\n\r\n" + body0, rej},
		{"CL.TE-xchunked", post + "Content-Length: 6\r\nTransfer-Encoding: xchunked\r\n\r\n" + body0, []int{400, 501}},
		// Content-Length values.
		{"CL duplicate same", post + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello" + smuggled, rej},
		{"CL duplicate different", post + "Content-Length: 5\r\nContent-Length: 41\r\n\r\nhello" + smuggled, rej},
		{"CL list same", post + "Content-Length: 5, 5\r\n\r\nhello" + smuggled, rej},
		{"CL list different", post + "Content-Length: 5, 41\r\n\r\nhello" + smuggled, rej},
		{"CL plus sign", post + "Content-Length: +5\r\n\r\nhello" + smuggled, rej},
		{"CL minus sign", post + "Content-Length: -5\r\n\r\nhello" + smuggled, rej},
		{"CL hex", post + "Content-Length: 0x5\r\n\r\nhello" + smuggled, rej},
		{"CL decimal point", post + "Content-Length: 5.0\r\n\r\nhello" + smuggled, rej},
		{"CL overflow uint64", post + "Content-Length: 99999999999999999999\r\n\r\nhello" + smuggled, rej},
		{"CL int64 max+1", post + "Content-Length: 9223372036854775808\r\n\r\nhello" + smuggled, rej},
		{"CL empty", post + "Content-Length: \r\n\r\nhello" + smuggled, rej},
		{"CL inner space", post + "Content-Length: 1 5\r\n\r\nhello" + smuggled, rej},
		{"CL trailing junk", post + "Content-Length: 5a\r\n\r\nhello" + smuggled, rej},
		{"CL space before colon", post + "Content-Length : 5\r\n\r\nhello" + smuggled, rej},
		{"CL vertical tab", post + "Content-Length:\x0b5\r\n\r\nhello" + smuggled, rej},
		// Transfer-Encoding values.
		{"TE chunked, identity", post + "Transfer-Encoding: chunked, identity\r\n\r\n" + body0, []int{400, 501}},
		{"TE identity, chunked", post + "Transfer-Encoding: identity, chunked\r\n\r\n" + body0, []int{400, 501}},
		{"TE xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n" + body0, []int{501}},
		{"TE chunkedx", post + "Transfer-Encoding: chunkedx\r\n\r\n" + body0, []int{501}},
		{"TE two header lines", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + body0, rej},
		{"TE chunked twice in list", post + "Transfer-Encoding: chunked, chunked\r\n\r\n" + body0, rej},
		{"TE second line identity", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n" + body0, []int{400, 501}},
		{"TE empty", post + "Transfer-Encoding: \r\n\r\n" + body0, rej},
		{"TE chunked with parameter", post + "Transfer-Encoding: chunked;q=1\r\n\r\n" + body0, rej},
		{"TE space before colon", post + "Transfer-Encoding : chunked\r\n\r\n" + body0, rej},
		{"TE vertical tab", post + "Transfer-Encoding:\x0bchunked\r\n\r\n" + body0, rej},
		{"TE NUL after value", post + "Transfer-Encoding: chunked\x00\r\n\r\n" + body0, rej},
		{"TE obs-fold", post + "Transfer-Encoding: identity\r\n chunked\r\n\r\n" + body0, rej},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + body0, rej},
		{"TE in HTTP/1.0 with CL", "POST / HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + body0, rej},
		// Valid under the strict reading: the smuggled bytes are body, never a request.
		{"TE uppercase CHUNKED", post + "Transfer-Encoding: CHUNKED\r\nConnection: close\r\n\r\n" + chunk(smuggled), []int{405}},
		{"TE trailing whitespace", post + "Transfer-Encoding: chunked \t\r\nConnection: close\r\n\r\n" + chunk(smuggled), []int{405}},
		{"CL leading whitespace", post + fmt.Sprintf("Content-Length: \t %d\r\nConnection: close\r\n\r\n", len(smuggled)) + smuggled, []int{405}},
		{"CL leading zeros", post + fmt.Sprintf("Content-Length: 000%d\r\nConnection: close\r\n\r\n", len(smuggled)) + smuggled, []int{405}},
		{"pipelined after Connection: close", "GET /small.txt HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n" + smuggled, []int{200}},
		{"pipelined after HTTP/1.0", "GET /small.txt HTTP/1.0\r\n\r\n" + smuggled, []int{200}},
		// Line syntax: folding, whitespace, bare CR/LF, NUL and controls.
		{"obs-fold", "GET / HTTP/1.1\r\nHost: test\r\nX-A: a\r\n b\r\n\r\n" + smuggled, rej},
		{"whitespace before first field", "GET / HTTP/1.1\r\n Host: test\r\n\r\n" + smuggled, rej},
		{"space in field name", "GET / HTTP/1.1\r\nHost: test\r\nX A: b\r\n\r\n" + smuggled, rej},
		{"bare LF in header", "GET / HTTP/1.1\r\nHost: test\nX-A: b\r\n\r\n" + smuggled, rej},
		{"bare LF everywhere", "GET / HTTP/1.1\nHost: test\n\n" + smuggled, rej},
		{"bare CR in value", "GET / HTTP/1.1\r\nHost: test\r\nX-A: a\rb\r\n\r\n" + smuggled, rej},
		{"bare CR line end", "GET / HTTP/1.1\r\nHost: test\r\r\n\r\n" + smuggled, rej},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: test\r\nX-A: a\x00b\r\n\r\n" + smuggled, rej},
		{"NUL in target", "GET /a\x00b HTTP/1.1\r\nHost: test\r\n\r\n" + smuggled, rej},
		{"control in value", "GET / HTTP/1.1\r\nHost: test\r\nX-A: a\x01b\r\n\r\n" + smuggled, rej},
		{"DEL in name", "GET / HTTP/1.1\r\nHost: test\r\nX-\x7fA: b\r\n\r\n" + smuggled, rej},
		{"double space in request line", "GET  / HTTP/1.1\r\nHost: test\r\n\r\n" + smuggled, rej},
		{"lowercase version", "GET / http/1.1\r\nHost: test\r\n\r\n" + smuggled, rej},
		{"HTTP/2.0 version", "GET / HTTP/2.0\r\nHost: test\r\n\r\n" + smuggled, []int{505}},
		{"duplicate Host", "GET / HTTP/1.1\r\nHost: test\r\nHost: victim\r\n\r\n" + smuggled, rej},
		{"missing Host", "GET / HTTP/1.1\r\n\r\n" + smuggled, rej},
		// Chunked framing.
		{"chunk size overflow", post + "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n" + smuggled, rej},
		{"chunk size above body limit", post + "Transfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\n" + smuggled, []int{400, 413}},
		{"chunk size negative", post + "Transfer-Encoding: chunked\r\n\r\n-1\r\n" + body0, rej},
		{"chunk size 0x prefix", post + "Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n" + body0, rej},
		{"chunk size leading space", post + "Transfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n" + body0, rej},
		{"chunk data longer than size", post + "Transfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n" + body0, rej},
		{"chunk data shorter than size", post + "Transfer-Encoding: chunked\r\n\r\n8\r\nabc\r\n" + body0, rej},
		{"chunk data without CRLF", post + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc0\r\n\r\n" + smuggled, rej},
		{"chunk extension empty", post + "Transfer-Encoding: chunked\r\n\r\n3;\r\nabc\r\n" + body0, rej},
		{"chunk size bare LF", post + "Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n" + body0, rej},
		{"chunk trailer obs-fold", post + "Transfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\r\n b\r\n\r\n" + smuggled, rej},
	}
}

// TestSmuggling sends every vector to the daemon on its own connection and reads until the
// daemon closes: the stream must hold exactly one response with an expected status, an
// error status must announce the close, and the connection must end.
func TestSmuggling(t *testing.T) {
	vectors := smuggleVectors()
	if len(vectors) < 40 {
		t.Fatalf("corpus has %d vectors, want at least 40", len(vectors))
	}
	d := startDaemon(t, daemonOpts{})
	var rejected, accepted atomic.Int64
	t.Run("vectors", func(t *testing.T) {
		for _, v := range vectors {
			t.Run(v.name, func(t *testing.T) {
				t.Parallel()
				c, err := dial(d.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				_ = c.SetWriteDeadline(testsupport.Deadline(5 * time.Second))
				if _, err := c.Write([]byte(v.stream)); err != nil {
					t.Fatalf("write: %v", err)
				}
				data, closed, err := readToClose(c, testsupport.Deadline(5*time.Second))
				if err != nil {
					t.Fatalf("read: %v (got %q)", err, data)
				}
				if !closed {
					t.Fatalf("connection still open 5s after the request; got %q", data)
				}
				resps, err := parseResponses(data)
				if err != nil {
					t.Fatalf("stream is not exactly whole responses: %v\n%q", err, data)
				}
				if len(resps) != 1 {
					t.Fatalf("got %d responses, want exactly 1 (smuggled request answered?)\n%q", len(resps), data)
				}
				r := resps[0]
				if !slices.Contains(v.want, r.status) {
					t.Fatalf("status %d, want one of %v\n%q", r.status, v.want, data)
				}
				if r.status >= 400 && r.status != 405 {
					if !r.close {
						t.Fatalf("error response %d without Connection: close\n%q", r.status, data)
					}
					rejected.Add(1)
				} else {
					accepted.Add(1)
				}
				if strings.Contains(string(r.body), string(smallBody)) && !strings.HasPrefix(v.stream, "GET /small.txt") {
					t.Fatalf("response carries the smuggled request's body\n%q", data)
				}
			})
		}
	})
	t.Logf("FIGURE: smuggling vectors=%d rejected(4xx/5xx+close)=%d accepted-strictly(one response+close)=%d second-responses=0",
		len(vectors), rejected.Load(), accepted.Load())
	if st := d.stop(15 * time.Second); st != 0 {
		t.Fatalf("daemon exit status %d; log:\n%s", st, d.logs.String())
	}
}

// TestSmugglingOracle checks the oracle itself: two honest pipelined requests must be seen as
// two responses, so a daemon that answered a smuggled request could not pass TestSmuggling.
func TestSmugglingOracle(t *testing.T) {
	d := startDaemon(t, daemonOpts{})
	c, err := dial(d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stream := getReq(smallPath) + "GET /small.txt HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
	if _, err := c.Write([]byte(stream)); err != nil {
		t.Fatal(err)
	}
	data, closed, err := readToClose(c, testsupport.Deadline(5*time.Second))
	if err != nil || !closed {
		t.Fatalf("closed=%v err=%v", closed, err)
	}
	resps, err := parseResponses(data)
	if err != nil || len(resps) != 2 || resps[0].status != 200 || resps[1].status != 200 {
		t.Fatalf("pipelined pair: %d responses, err %v\n%q", len(resps), err, data)
	}
}
