//go:build linux

package hardening_test

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// The daemon has no watermark flag: it runs with the reactor's default high-water mark.
const highWater = 1 << 20 // reactor.DefaultHighWater

// rssSlack is the "small constant" of the slow-reader bound, 8 MiB: what the daemon may grow
// by for reasons that do not scale with the attack — one 64 KiB read buffer per loop, the Go
// heap's GC headroom (GOGC=100 lets the heap reach twice the live data before collecting,
// and each served request leaves a little garbage behind), and runtime/thread stacks touched
// for the first time. A leak proportional to the pipelined requests (one response buffered
// per request, 64 KiB each) would pass it within the first 150 requests.
const rssSlack = 8 << 20

func TestSlowReader(t *testing.T) {
	dur := 10 * time.Second
	if os.Getenv("REACTORD_LONG") != "" {
		dur = 60 * time.Second
	}
	if testing.Short() {
		dur = 3 * time.Second
	}
	d := startDaemon(t, daemonOpts{args: []string{"-idle-timeout", "5m", "-read-timeout", "5m"}})
	// Warm up the paths the attack uses, then take the baseline.
	for range 20 {
		if st, body, err := fetch(d.addr, bigPath); err != nil || st != 200 || len(body) != bigSize {
			t.Fatalf("warm-up: %d %d %v", st, len(body), err)
		}
	}
	fds0, fdList0 := d.quiescentFds(t)
	rss0 := d.rssKiB()

	c, err := dial(d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	batch := []byte(strings.Repeat(getReq(bigPath), 16))
	var pending []byte
	var sent, written int64
	var maxRSS int64
	maxFds := 0
	start := time.Now()
	nextSample := start
	for time.Since(start) < dur {
		if len(pending) == 0 {
			pending = batch
			sent += 16
		}
		// A short write deadline: the daemon stops reading once its output passes the
		// high-water mark, so this write blocks until the kernel buffers on both sides are
		// full; the deadline brings us back to sample memory.
		_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := c.Write(pending)
		pending = pending[n:]
		written += int64(n)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write after %v: %v", time.Since(start), err)
		}
		if now := time.Now(); !now.Before(nextSample) {
			maxRSS = max(maxRSS, d.rssKiB())
			maxFds = max(maxFds, d.fds())
			nextSample = now.Add(250 * time.Millisecond)
			// The loop is not blocked by the stalled connection: others are served.
			if st, body, err := fetch(d.addr, smallPath); err != nil || st != 200 || string(body) != string(smallBody) {
				t.Fatalf("other client during the slow reader: %d %v", st, err)
			}
		}
	}
	growth := (maxRSS - rss0) << 10
	completeReqs := written / int64(len(getReq(bigPath)))

	// Now read: the responses the daemon produced must be intact and in order. The kernel
	// buffers hold over a hundred thousand of these small requests (7 GiB of responses), so
	// the check stops after readBack responses and then drops the connection with all that
	// work pending, which must free everything too.
	const readBack = 512
	br := bufio.NewReaderSize(c, 64<<10)
	var got int64
	_ = c.SetReadDeadline(testsupport.Deadline(60 * time.Second))
	for got < readBack {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			rest, _ := io.ReadAll(br)
			t.Fatalf("response %d of %d complete requests (%d bytes written): %v; %d bytes follow: %q", got+1, completeReqs, written, err, len(rest), rest[:min(len(rest), 300)])
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || n != bigSize {
			t.Fatalf("response %d of %d complete requests: status %d, %d bytes, %v", got+1, completeReqs, resp.StatusCode, n, err)
		}
		got++
	}
	c.Close()
	d.waitFds(t, fds0, fdList0, 15*time.Second)

	t.Logf("FIGURE: slow reader %v: pipelined %d requests (%d KiB written, %d whole), read back the first %d responses x 64 KiB intact, then dropped the connection; daemon RSS %d KiB -> max %d KiB (growth %d KiB; bound high-water %d KiB + %d KiB); fds %d -> max %d",
		dur, sent, written>>10, completeReqs, got, rss0, maxRSS, growth>>10, highWater>>10, rssSlack>>10, fds0, maxFds)
	if growth > highWater+rssSlack {
		t.Errorf("RSS grew by %d KiB, more than high-water %d KiB + %d KiB", growth>>10, highWater>>10, rssSlack>>10)
	}
	// Each queued file response holds a dup'd descriptor until sent: they must be bounded
	// by the watermark too (16 x 64 KiB), not grow with the pipelined requests.
	if maxFds-fds0 > 64 {
		t.Errorf("daemon fds grew from %d to %d during the slow reader", fds0, maxFds)
	}
	if st := d.stop(15 * time.Second); st != 0 {
		t.Fatalf("daemon exit status %d; log:\n%s", st, d.logs.String())
	}
}
