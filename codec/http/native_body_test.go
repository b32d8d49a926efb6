package http

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/reactord/reactord/internal/testsupport"
)

// hashingHandler streams bodies of /stream requests into a SHA-256 and answers with the sum
// and the byte count; other paths decline (the body is buffered as usual).
type hashingHandler struct {
	h     hash.Hash
	n     int64
	got   atomic.Int64 // bytes received so far, read by the test
	abort bool
}

func (hh *hashingHandler) StreamBody(r *Request) io.Writer {
	if string(r.Path()) != "/stream" {
		return nil
	}
	hh.h, hh.n = sha256.New(), 0
	hh.got.Store(0)
	return hh
}

func (hh *hashingHandler) Write(p []byte) (int, error) {
	if hh.abort && hh.n > 0 {
		return 0, errors.New("refused")
	}
	hh.h.Write(p)
	hh.n += int64(len(p))
	hh.got.Store(hh.n)
	return len(p), nil
}

func (hh *hashingHandler) Handle(w *ResponseWriter, r *Request) {
	if r.Streamed() {
		fmt.Fprintf(w, "streamed %d %x %s", hh.n, hh.h.Sum(nil), r.Path())
		if v, ok := r.Trailer("Check"); ok {
			fmt.Fprintf(w, " trailer=%s", v)
		}
		return
	}
	fmt.Fprintf(w, "buffered %d %x", len(r.Body()), sha256.Sum256(r.Body()))
}

// TestNativeBodyStreamer: a native handler gets a large body piece by piece as it arrives (the
// first part before the client has sent the rest), then Handle runs with the head intact; a
// declined body is buffered; a chunked body's trailers reach Handle; the connection stays in
// step.
func TestNativeBodyStreamer(t *testing.T) {
	hh := &hashingHandler{}
	_, addr := startServer(t, hh)
	const total, first = 1 << 20, 200 << 10
	body := bytes.Repeat([]byte("native!!"), total/8)
	cl := dialClient(t, addr)
	cl.send("PUT /stream HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(total) + "\r\n\r\n" + string(body[:first]))
	testsupport.Eventually(t, 0, "the first part to be streamed", func() bool { return hh.got.Load() >= first })
	cl.send(string(body[first:]))
	want := fmt.Sprintf("streamed %d %x /stream", total, sha256.Sum256(body))
	if _, rb := cl.read("PUT"); rb != want {
		t.Fatalf("%q, want %q", rb, want)
	}
	// Declined: buffered, Handle sees r.Body().
	cl.send("PUT /other HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(total) + "\r\n\r\n" + string(body))
	if _, rb := cl.read("PUT"); rb != fmt.Sprintf("buffered %d %x", total, sha256.Sum256(body)) {
		t.Fatalf("declined: %q", rb)
	}
	// Chunked with a trailer.
	var sb strings.Builder
	sb.WriteString("POST /stream HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
	for i := 0; i < 4; i++ {
		fmt.Fprintf(&sb, "%x\r\n%s\r\n", 3000, strings.Repeat("k", 3000))
	}
	sb.WriteString("0\r\nCheck: 5\r\n\r\n")
	cl.send(sb.String())
	want = fmt.Sprintf("streamed 12000 %x /stream trailer=5", sha256.Sum256([]byte(strings.Repeat("k", 12000))))
	if _, rb := cl.read("POST"); rb != want {
		t.Fatalf("chunked: %q", rb)
	}
	// And a plain request after them.
	cl.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, rb := cl.read("GET"); !strings.HasPrefix(rb, "buffered 0") {
		t.Fatalf("next: %q", rb)
	}
}

// TestNativeBodyStreamerError: a writer error stops the body: 400 and close.
func TestNativeBodyStreamerError(t *testing.T) {
	_, addr := startServer(t, &hashingHandler{abort: true})
	cl := dialClient(t, addr)
	cl.send("PUT /stream HTTP/1.1\r\nHost: a\r\nContent-Length: 300000\r\n\r\n" + strings.Repeat("z", 300000))
	if resp, _ := cl.read("PUT"); resp.StatusCode != 400 || !cl.closed() {
		t.Fatalf("%d", resp.StatusCode)
	}
}
