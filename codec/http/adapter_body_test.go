package http

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

// TestAdapterBodyStreams: r.Body yields the first bytes of a large body while the client has
// not sent the rest (before, the codec read the whole body first: this would wait for ever).
func TestAdapterBodyStreams(t *testing.T) {
	const first = 100 << 10
	const total = 4 << 20
	var got atomic.Int64
	sum := make(chan string, 1)
	_, addr := startServer(t, Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		h := sha256.New()
		buf := make([]byte, 32<<10)
		var n64 int64
		for {
			n, err := r.Body.Read(buf)
			h.Write(buf[:n])
			n64 += int64(n)
			got.Store(n64)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Errorf("read: %v", err)
				return
			}
		}
		select {
		case sum <- fmt.Sprintf("%x", h.Sum(nil)):
		default:
		}
		fmt.Fprintf(w, "%d", n64)
	})))
	body := bytes.Repeat([]byte("0123456789abcdef"), total/16)
	cl := dialClient(t, addr)
	cl.send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(total) + "\r\n\r\n")
	cl.send(string(body[:first]))
	testsupport.Eventually(t, 0, "the handler to read the first part", func() bool { return got.Load() >= first })
	cl.send(string(body[first:]))
	resp, rb := cl.read("POST")
	if resp.StatusCode != 200 || rb != strconv.Itoa(total) {
		t.Fatalf("%d %q", resp.StatusCode, rb)
	}
	if want := fmt.Sprintf("%x", sha256.Sum256(body)); <-sum != want {
		t.Fatal("body corrupted")
	}
	// The connection is in step for the next request.
	cl.send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
	if _, rb := cl.read("POST"); rb != "3" {
		t.Fatalf("next request: %q", rb)
	}
}

// TestAdapterBodyBackpressure: while the handler does not read, the server stops reading the
// upload once a bounded amount is buffered; then the handler reads it all.
func TestAdapterBodyBackpressure(t *testing.T) {
	const total = 32 << 20
	start := make(chan struct{})
	s, addr := startServer(t, Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		<-start
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d %v", n, err)
	})), WithReactorOptions(reactor.WithLoops(1)))
	cl := dialClient(t, addr)
	go func() {
		cl.c.Write([]byte("PUT /up HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(total) + "\r\n\r\n"))
		cl.c.Write(make([]byte, total)) // blocks while the server does not read
	}()
	var buffered int
	testsupport.Eventually(t, 0, "reading to pause with the pipe full", func() bool {
		return onLoop(t, s, func(ls *loopState) bool {
			cs := ls.active
			if cs == nil || cs.ad == nil || cs.ad.body == nil || cs.flags&csPaused == 0 {
				return false
			}
			p := cs.ad.body
			p.mu.Lock()
			buffered = len(p.buf) - p.r
			p.mu.Unlock()
			return true
		})
	})
	if buffered > pipeMax+64<<10 { // one read past the mark at most (the read buffer is 64 KiB)
		t.Fatalf("%d bytes buffered before reading paused", buffered)
	}
	close(start)
	if _, rb := cl.read("PUT"); rb != fmt.Sprintf("%d <nil>", total) {
		t.Fatalf("handler: %q", rb)
	}
}

// TestAdapterBodyChunkedTrailers: a chunked body streams, and its trailers are in r.Trailer
// once the body has been read to EOF.
func TestAdapterBodyChunkedTrailers(t *testing.T) {
	_, addr := startServer(t, Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		before := r.Trailer.Get("Check")
		b, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d %v before=%q after=%q", len(b), err, before, r.Trailer.Get("Check"))
	})))
	cl := dialClient(t, addr)
	var sb strings.Builder
	sb.WriteString("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: Check\r\n\r\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&sb, "%x\r\n%s\r\n", 1000, strings.Repeat("z", 1000))
	}
	sb.WriteString("0\r\nCheck: 42\r\n\r\n")
	cl.send(sb.String())
	if _, rb := cl.read("POST"); rb != `100000 <nil> before="" after="42"` {
		t.Fatalf("%q", rb)
	}
}

// TestAdapterBodyUnread: a handler that never reads its body. A small body (read whole before
// dispatch) leaves the connection in step; a streamed one that has not fully arrived closes
// the connection after the response, so the next request is never read from the middle of a
// body.
func TestAdapterBodyUnread(t *testing.T) {
	_, addr := startServer(t, Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		io.WriteString(w, "ignored")
	})))
	cl := dialClient(t, addr)
	cl.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
	cl.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	for i := 0; i < 2; i++ {
		if _, rb := cl.read("GET"); rb != "ignored" {
			t.Fatalf("%d: %q", i, rb)
		}
	}
	cl.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n" + strings.Repeat("x", 1000))
	resp, rb := cl.read("POST")
	if rb != "ignored" || !resp.Close {
		t.Fatalf("%q close=%v", rb, resp.Close)
	}
	if !cl.closed() {
		t.Fatal("connection open after a response that left its body unread")
	}
}

// TestAdapterBodyLimit: Limits.MaxBodyBytes, when set, bounds streamed bodies: a
// Content-Length above it is refused with 413 before the handler runs, and a chunked body that
// grows past it fails the handler's read.
func TestAdapterBodyLimit(t *testing.T) {
	_, addr := startServer(t, Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		var pe *ParseError
		if errors.As(err, &pe) {
			w.WriteHeader(pe.Status)
		}
		fmt.Fprint(w, err)
	})), WithLimits(Limits{MaxBodyBytes: 1 << 20}))
	cl := dialClient(t, addr)
	cl.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n")
	if resp, _ := cl.read("POST"); resp.StatusCode != 413 || !cl.closed() {
		t.Fatalf("Content-Length above the limit: %d", resp.StatusCode)
	}
	cl = dialClient(t, addr)
	go func() {
		cl.c.Write([]byte("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"))
		chunk := fmt.Sprintf("%x\r\n%s\r\n", 64<<10, strings.Repeat("c", 64<<10))
		for i := 0; i < 20; i++ {
			if _, err := cl.c.Write([]byte(chunk)); err != nil {
				return
			}
		}
	}()
	if resp, rb := cl.read("POST"); resp.StatusCode != 413 || !strings.Contains(rb, "too large") {
		t.Fatalf("chunked above the limit: %d %q", resp.StatusCode, rb)
	}
}

// TestAdapterBodyUploadConstantMemory: a large upload through a handler that reads it runs in
// constant memory. 256 MiB by default; REACTORD_TEST_UPLOAD_MIB=1024 runs issue 20's 1 GiB.
func TestAdapterBodyUploadConstantMemory(t *testing.T) {
	mib := 256
	if v, err := strconv.Atoi(os.Getenv("REACTORD_TEST_UPLOAD_MIB")); err == nil && v > 0 {
		mib = v
	}
	if testing.Short() {
		mib = 32
	}
	total := int64(mib) << 20
	_, addr := startServer(t, Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d %v", n, err)
	})))
	runtime.GC()
	base := heapInUse()
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if h := heapInUse(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond): // a sampling period, not a synchronisation
			}
		}
	}()
	cl := dialClient(t, addr)
	cl.c.SetDeadline(time.Now().Add(testsupport.Scale(5 * time.Minute)))
	go func() {
		cl.c.Write([]byte("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.FormatInt(total, 10) + "\r\n\r\n"))
		buf := make([]byte, 1<<20)
		for sent := int64(0); sent < total; sent += int64(len(buf)) {
			if _, err := cl.c.Write(buf); err != nil {
				return
			}
		}
	}()
	_, rb := cl.read("POST")
	close(stop)
	<-sampled
	if rb != fmt.Sprintf("%d <nil>", total) {
		t.Fatalf("handler: %q", rb)
	}
	growth := int64(peak.Load()) - int64(base)
	t.Logf("%d MiB upload: peak Go heap growth %d KiB", mib, growth>>10)
	if growth > 4<<20 {
		t.Fatalf("heap grew by %d KiB during a %d MiB upload, want at most 4 MiB", growth>>10, mib)
	}
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
