package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// bodySource is a deterministic pseudo-random body, hashed as it is produced.
type bodySource struct {
	rng  *rand.ChaCha8
	left int64
}

func newBodySource(seed byte, n int64) *bodySource {
	return &bodySource{rng: rand.NewChaCha8([32]byte{seed}), left: n}
}

func (b *bodySource) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	b.rng.Read(p)
	b.left -= int64(len(p))
	return len(p), nil
}

// bodySum returns the SHA-256 of the body newBodySource(seed, n) produces.
func bodySum(seed byte, n int64) string {
	h := sha256.New()
	io.Copy(h, newBodySource(seed, n))
	return hex.EncodeToString(h.Sum(nil))
}

// peakRSS returns the daemon's peak resident set (VmHWM), in bytes; 0 where /proc has none.
func peakRSS(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// kernelQueued sums the bytes the kernel holds in the send and receive queues of the TCP
// sockets (IPv4 and IPv6, from /proc/net/tcp*) with an end on one of ports: the bytes in
// flight between processes, which are in no process's memory.
func kernelQueued(t *testing.T, ports ...int) int64 {
	var total int64
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 5 {
				continue
			}
			mine := false
			for _, addr := range fs[1:3] {
				i := strings.LastIndexByte(addr, ':')
				port, _ := strconv.ParseInt(addr[i+1:], 16, 32)
				for _, p := range ports {
					mine = mine || int(port) == p
				}
			}
			if !mine || fs[3] == "0A" { // 0A: listening
				continue
			}
			tx, rx, _ := strings.Cut(fs[4], ":")
			a, _ := strconv.ParseInt(tx, 16, 64)
			r, _ := strconv.ParseInt(rx, 16, 64)
			total += a + r
		}
	}
	return total
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// hashingUpstream answers every request with what it read of the body: its SHA-256, length,
// the framing it came with, and the read error if any. Reading stops after gateAt bytes until
// gate is closed (a slow upstream); reached is closed when it gets there.
type hashingUpstream struct {
	gateAt  int64
	reached chan struct{}
	gate    chan struct{}
	results chan string
}

func (h *hashingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sum := sha256.New()
	n, err := io.CopyN(sum, r.Body, h.gateAt)
	if err == nil && h.gate != nil {
		close(h.reached)
		<-h.gate
	}
	if err == nil {
		var m int64
		m, err = io.Copy(sum, r.Body)
		n += m
	} else if err == io.EOF {
		err = nil
	}
	res := fmt.Sprintf("%x %d cl=%d te=%s err=%v", sum.Sum(nil), n, r.ContentLength, strings.Join(r.TransferEncoding, ","), err)
	if h.results != nil {
		h.results <- res
	}
	io.WriteString(w, res)
}

// TestProxyStreamsUpload: a 64 MiB upload goes through the proxy to an upstream that stops
// reading after 1 MiB (until the test lets it go on). The proxy forwards the body as it
// arrives and, while the upstream does not take it, stops reading the client: the client's
// writes block long before it has sent the body (an unbounded proxy reads all 64 MiB), the
// daemon's peak RSS stays far below the body's size, and the upstream gets the body intact.
func TestProxyStreamsUpload(t *testing.T) {
	const total = 64 << 20
	const gateAt = 1 << 20
	hu := &hashingUpstream{gateAt: gateAt, reached: make(chan struct{}), gate: make(chan struct{})}
	up := startHTTPUpstream(t, hu)
	d := start(t, "-listen", "127.0.0.1:0", "-proxy", "/="+up.addr, "-max-body-bytes", "1GiB")
	conn, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(testsupport.Deadline(120 * time.Second))
	fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: up\r\nContent-Length: %d\r\n\r\n", total)

	var written atomic.Int64
	blocked := make(chan int64, 1) // bytes written when a write first blocked
	werr := make(chan error, 1)
	go func() {
		src := newBodySource(1, total)
		buf := make([]byte, 256<<10)
		for {
			n, err := src.Read(buf)
			if err == io.EOF {
				werr <- nil
				return
			}
			p := buf[:n]
			for len(p) > 0 {
				// A write that makes no progress for a while means the proxy stopped reading.
				conn.SetWriteDeadline(time.Now().Add(testsupport.Scale(time.Second)))
				k, err := conn.Write(p)
				written.Add(int64(k))
				p = p[k:]
				if errors.Is(err, os.ErrDeadlineExceeded) {
					select {
					case blocked <- written.Load():
					default:
					}
					continue
				}
				if err != nil {
					werr <- err
					return
				}
			}
		}
	}()
	select {
	case <-hu.reached:
	case <-time.After(testsupport.Scale(60 * time.Second)):
		t.Fatal("the upstream never got the first MiB")
	}
	// While the upstream reads nothing, the client must be held back: its writes block. What
	// it wrote is then in the upstream (1 MiB), in the kernel's socket queues on the way
	// (loopback autotuning lets them grow to tens of MiB here), or in the proxy: that last
	// part — written, less the upstream's, less the kernel's — must stay within the proxy's
	// watermarks (1 MiB of upstream output, a read's worth of kept input), whatever the
	// body's size.
	select {
	case n := <-blocked:
		queued := int64(-1)
		if runtime.GOOS == "linux" {
			queued = kernelQueued(t, portOf(d.addr), portOf(up.addr))
			held := written.Load() - gateAt - queued
			t.Logf("the client's writes blocked after %.1f MiB: %.1f MiB in kernel socket queues, %.2f MiB in the proxy",
				float64(n)/(1<<20), float64(queued)/(1<<20), float64(held)/(1<<20))
			if held > 4<<20 {
				t.Fatalf("the proxy holds %d bytes of the body", held)
			}
		}
		if n >= total {
			t.Fatalf("the client wrote %d bytes before being held back", n)
		}
	case err := <-werr:
		t.Fatalf("the client sent the whole body (%v) while the upstream had read 1 MiB: the proxy buffers it", err)
	case <-time.After(testsupport.Scale(60 * time.Second)):
		t.Fatalf("the client's writes never blocked (%d bytes written)", written.Load())
	}
	close(hu.gate)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	want := fmt.Sprintf("%s %d cl=%d te= err=<nil>", bodySum(1, total), total, total)
	if resp.StatusCode != 200 || string(body) != want {
		t.Fatalf("status %d, upstream saw %q, want %q", resp.StatusCode, body, want)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" {
		// The exact bound is the one above; the peak RSS shows it in the process's terms
		// (not under the race detector, whose shadow memory multiplies it).
		peak := peakRSS(t, d.cmd.Process.Pid)
		t.Logf("daemon peak RSS %.1f MiB for a %d MiB upload", float64(peak)/(1<<20), total>>20)
		if peak > 48<<20 && !raceEnabled {
			t.Fatalf("daemon peak RSS %d bytes: the body was buffered", peak)
		}
	}
}

// TestProxyStreamsChunked: a chunked upload (chunk sizes of all kinds, extensions, a trailer)
// reaches the upstream chunked, re-framed by the proxy, with the body intact; the connection
// then serves the next request.
func TestProxyStreamsChunked(t *testing.T) {
	hu := &hashingUpstream{gateAt: 1 << 62}
	up := startHTTPUpstream(t, hu)
	d := start(t, "-listen", "127.0.0.1:0", "-proxy", "/="+up.addr, "-max-body-bytes", "64MiB")
	conn, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(testsupport.Deadline(60 * time.Second))
	const total = 3<<20 + 12345
	body, _ := io.ReadAll(newBodySource(2, total))
	go func() {
		bw := bufio.NewWriter(conn)
		fmt.Fprintf(bw, "PUT /chunked HTTP/1.1\r\nHost: up\r\nTransfer-Encoding: chunked\r\n\r\n")
		sizes := []int{1, 7, 4096, 65536, 100000, 300000, 1 << 20}
		for off, i := 0, 0; off < total; i++ {
			n := min(sizes[i%len(sizes)], total-off)
			fmt.Fprintf(bw, "%x;n=%d\r\n", n, i)
			bw.Write(body[off : off+n])
			bw.WriteString("\r\n")
			off += n
		}
		bw.WriteString("0\r\nX-Check: 1\r\n\r\nGET /after HTTP/1.1\r\nHost: up\r\n\r\n")
		bw.Flush()
	}()
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	sum := sha256.Sum256(body)
	want := fmt.Sprintf("%x %d cl=-1 te=chunked err=<nil>", sum, total)
	if resp.StatusCode != 200 || string(got) != want {
		t.Fatalf("status %d, upstream saw %q, want %q", resp.StatusCode, got, want)
	}
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.HasPrefix(got, []byte(fmt.Sprintf("%x 0 ", sha256.Sum256(nil)))) {
		t.Fatalf("the next request: %d %q", resp.StatusCode, got)
	}
}

// TestProxyClientAbortsUpload: a client that goes away in the middle of its body aborts the
// upstream request — the upstream reads a cut body (its connection closed), and that
// connection is not reused: the next request opens a new one.
func TestProxyClientAbortsUpload(t *testing.T) {
	hu := &hashingUpstream{gateAt: 1 << 62, results: make(chan string, 4)}
	up := startHTTPUpstream(t, hu)
	d := start(t, "-listen", "127.0.0.1:0", "-proxy", "/="+up.addr, "-max-body-bytes", "64MiB")
	for _, mode := range []string{"close", "half-close"} {
		conn, err := net.Dial("tcp", d.addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /abort HTTP/1.1\r\nHost: up\r\nContent-Length: %d\r\n\r\n", 8<<20)
		io.Copy(conn, newBodySource(3, 1<<20))
		if mode == "close" {
			conn.Close()
		} else {
			conn.(*net.TCPConn).CloseWrite()
		}
		select {
		case res := <-hu.results:
			if !strings.Contains(res, "err=unexpected EOF") {
				t.Fatalf("%s: the upstream read %q, want a cut body", mode, res)
			}
		case <-time.After(testsupport.Scale(20 * time.Second)):
			t.Fatalf("%s: the upstream request was not aborted", mode)
		}
		if mode == "half-close" {
			conn.SetReadDeadline(testsupport.Deadline(10 * time.Second))
			if b, err := io.ReadAll(conn); err != nil || len(b) != 0 {
				t.Fatalf("half-close: got %q, %v; want the connection closed without an answer", b, err)
			}
			conn.Close()
		}
	}
	c := client(t)
	if r := do(t, c, "GET", d.url("/next")); r.status != 200 {
		t.Fatalf("next request: %d", r.status)
	}
	<-hu.results
	if n := up.conns.Load(); n != 3 {
		t.Fatalf("upstream connections %d, want 3 (the aborted ones not reused)", n)
	}
}

// TestProxyUpstreamFailsMidUpload: an upstream that resets (or closes) while the body is
// still coming gets the client a 502 and the client's connection closes.
func TestProxyUpstreamFailsMidUpload(t *testing.T) {
	for _, reset := range []bool{true, false} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			if _, err := http.ReadRequest(br); err == nil {
				io.CopyN(io.Discard, br, 100000)
			}
			if reset {
				c.(*net.TCPConn).SetLinger(0)
			}
			c.Close()
		}()
		d := start(t, "-listen", "127.0.0.1:0", "-proxy", "/="+ln.Addr().String(), "-max-body-bytes", "64MiB")
		conn, err := net.Dial("tcp", d.addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(testsupport.Deadline(20 * time.Second))
		fmt.Fprintf(conn, "POST /x HTTP/1.1\r\nHost: up\r\nContent-Length: %d\r\n\r\n", 8<<20)
		io.Copy(conn, newBodySource(4, 256<<10))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reset=%v: %v", reset, err)
		}
		io.ReadAll(resp.Body)
		if resp.StatusCode != 502 || !resp.Close {
			t.Fatalf("reset=%v: status %d close %v, want 502 and close", reset, resp.StatusCode, resp.Close)
		}
		// Closed: an end of file, or a reset when body bytes the proxy never read were
		// still queued at its end.
		if _, err := br.ReadByte(); err != io.EOF && !errors.Is(err, unix.ECONNRESET) {
			t.Fatalf("reset=%v: the connection stayed open (%v)", reset, err)
		}
		conn.Close()
	}
}
