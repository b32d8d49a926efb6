//go:build linux

package hardening_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// faultRounds is how many times each fault is repeated.
const faultRounds = 20

// faults are client misbehaviours; each returns an error if the daemon's visible behaviour
// is wrong (for faults where the client gives up, nothing is visible and only the leak
// check after them can fail).
var faults = []struct {
	name string
	run  func(addr string) error
}{
	{"RST mid-response (SO_LINGER 0)", func(addr string) error {
		c, err := dial(addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := io.WriteString(c, getReq(hugePath)); err != nil {
			return err
		}
		_ = c.SetReadDeadline(testsupport.Deadline(5 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 64<<10)); err != nil {
			return fmt.Errorf("start of the response: %w", err)
		}
		// Abortive close: the kernel sends RST while the daemon is in the middle of
		// sendfile-ing 16 MiB.
		_ = c.SetLinger(0)
		return c.Close()
	}},
	{"FIN mid-response", func(addr string) error {
		c, err := dial(addr)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(c, getReq(hugePath)); err != nil {
			return err
		}
		_ = c.SetReadDeadline(testsupport.Deadline(5 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			return err
		}
		return c.Close()
	}},
	{"RST with pipelined requests queued", func(addr string) error {
		c, err := dial(addr)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(c, strings.Repeat(getReq(bigPath), 50)); err != nil {
			return err
		}
		_ = c.SetLinger(0)
		return c.Close()
	}},
	{"half-close after request", func(addr string) error {
		c, err := dial(addr)
		if err != nil {
			return err
		}
		defer c.Close()
		// Keep-alive request, then shutdown(SHUT_WR): the response must still arrive
		// in full, and then the daemon closes.
		if _, err := io.WriteString(c, getReq(bigPath)); err != nil {
			return err
		}
		if err := c.CloseWrite(); err != nil {
			return err
		}
		return expectResponses(c, 1, bigSize)
	}},
	{"half-close after pipelined requests", func(addr string) error {
		c, err := dial(addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := io.WriteString(c, strings.Repeat(getReq(bigPath), 3)); err != nil {
			return err
		}
		if err := c.CloseWrite(); err != nil {
			return err
		}
		return expectResponses(c, 3, bigSize)
	}},
	{"peer closes mid-body (Content-Length)", func(addr string) error {
		c, err := dial(addr)
		if err != nil {
			return err
		}
		_, err = io.WriteString(c, "POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n"+strings.Repeat("x", 100))
		c.Close()
		return err
	}},
	{"peer closes mid-body (chunked)", func(addr string) error {
		c, err := dial(addr)
		if err != nil {
			return err
		}
		_, err = io.WriteString(c, "POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nabc")
		c.Close()
		return err
	}},
	{"half-close mid-body", func(addr string) error {
		c, err := dial(addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\nxyz"); err != nil {
			return err
		}
		if err := c.CloseWrite(); err != nil {
			return err
		}
		// The request can never complete: the daemon may answer 400 or just close, but it
		// must close, and must not answer anything else.
		data, closed, err := readToClose(c, testsupport.Deadline(5*time.Second))
		if err != nil || !closed {
			return fmt.Errorf("closed=%v err=%v data=%q", closed, err, data)
		}
		if resps, err := parseResponses(data); err != nil || len(resps) > 1 || len(resps) == 1 && resps[0].status != 400 {
			return fmt.Errorf("after a truncated body: %q", data)
		}
		return nil
	}},
	{"peer closes mid-head", func(addr string) error {
		c, err := dial(addr)
		if err != nil {
			return err
		}
		_, err = io.WriteString(c, "GET /small.txt HTTP/1.1\r\nHo")
		c.Close()
		return err
	}},
	{"connect and close (zero-length read)", func(addr string) error {
		c, err := dial(addr)
		if err != nil {
			return err
		}
		return c.Close()
	}},
	{"half-close without a request (zero-length read)", func(addr string) error {
		c, err := dial(addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.CloseWrite(); err != nil {
			return err
		}
		data, closed, err := readToClose(c, testsupport.Deadline(5*time.Second))
		if err != nil || !closed || len(data) != 0 {
			return fmt.Errorf("closed=%v err=%v data=%q", closed, err, data)
		}
		return nil
	}},
	{"empty writes between request pieces", func(addr string) error {
		c, err := dial(addr)
		if err != nil {
			return err
		}
		defer c.Close()
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		// write(2) with a zero length on the socket sends nothing; the daemon must not
		// mistake anything about it for a request or an end of stream.
		req := getReq(smallPath) + "GET /small.txt HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
		for i := 0; i < len(req); i += 7 {
			var werr error
			if err := rc.Write(func(fd uintptr) bool {
				_, werr = unix.Write(int(fd), nil)
				return true
			}); err != nil {
				return err
			}
			if werr != nil {
				return fmt.Errorf("zero-length write: %w", werr)
			}
			if _, err := io.WriteString(c, req[i:min(i+7, len(req))]); err != nil {
				return err
			}
		}
		// A zero-length read on our side returns at once and consumes nothing.
		if n, err := c.Read(nil); n != 0 || err != nil {
			return fmt.Errorf("zero-length read: %d %v", n, err)
		}
		return expectResponses(c, 2, int64(len(smallBody)))
	}},
}

// expectResponses reads until the daemon closes and wants exactly n 200 responses of size
// bytes each.
func expectResponses(c interface {
	io.Reader
	SetReadDeadline(time.Time) error
}, n int, size int64) error {
	_ = c.SetReadDeadline(testsupport.Deadline(10 * time.Second))
	br := bufio.NewReaderSize(c, 64<<10)
	for i := range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return fmt.Errorf("response %d of %d: %w", i+1, n, err)
		}
		got, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || got != size {
			return fmt.Errorf("response %d of %d: status %d, %d of %d bytes, %v", i+1, n, resp.StatusCode, got, size, err)
		}
	}
	if _, err := br.Peek(1); err != io.EOF {
		return fmt.Errorf("after %d responses: want the daemon to close, got %v", n, err)
	}
	return nil
}

func TestFaults(t *testing.T) {
	opts := daemonOpts{args: []string{"-header-timeout", "3s", "-idle-timeout", "3s"}}
	idle := idleGoroutines(t, opts)
	d := startDaemon(t, opts)
	// Baselines, taken after one request of each kind has warmed the daemon up.
	if st, _, err := fetch(d.addr, smallPath); err != nil || st != 200 {
		t.Fatalf("warm-up: %d %v", st, err)
	}
	fds0, fdList0 := d.quiescentFds(t)

	start := time.Now()
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			for i := range faultRounds {
				if err := f.run(d.addr); err != nil {
					t.Fatalf("round %d: %v", i, err)
				}
			}
		})
	}
	took := time.Since(start)

	// Nothing leaks: descriptors come back to the baseline, and the goroutines are an idle
	// daemon's (the check ends the daemon: see goroutines_test.go).
	d.waitFds(t, fds0, fdList0, 15*time.Second)
	fds1 := d.fds()
	if strings.Contains(d.logs.String(), "panic") {
		t.Errorf("daemon log mentions a panic:\n%s", d.logs.String())
	}
	g1 := d.checkGoroutines(t, idle)
	t.Logf("FIGURE: faults %d kinds x %d rounds in %v; daemon fds before=%d after=%d; goroutines idle daemon=%d after=%d",
		len(faults), faultRounds, took.Round(time.Millisecond), fds0, fds1, idle.total(), g1)
}
