//go:build linux

package hardening_test

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

const (
	shutdownClients    = 8
	requestsBeforeKill = 1500 // completed responses before SIGTERM
)

// loadTally counts what the load generator saw, request by request.
type loadTally struct {
	complete      atomic.Int64 // whole, correct response
	notWritten    atomic.Int64 // the request could not be written (connection already closed)
	closedUnread  atomic.Int64 // written, then the connection ended before any response byte
	unreadReset   atomic.Int64 // … of which by a reset (the daemon closed with it unread)
	lost          atomic.Int64 // some response bytes, then the connection ended: must be 0
	refused       atomic.Int64 // dials refused once the listener was closed
	reconnections atomic.Int64
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// loadClient sends keep-alive GETs (alternating a small and a 64 KiB file) and reconnects
// whenever the daemon closes, until a dial fails or stop is closed.
func loadClient(addr string, tally *loadTally, stop <-chan struct{}, lostDetail chan<- string) {
	paths := []string{smallPath, bigPath}
	sizes := []int64{int64(len(smallBody)), bigSize}
	for i := 0; ; {
		select {
		case <-stop:
			return
		default:
		}
		c, err := dial(addr)
		if err != nil {
			tally.refused.Add(1)
			return
		}
		tally.reconnections.Add(1)
		cr := &countingReader{r: c}
		br := bufio.NewReaderSize(cr, 64<<10)
		for open := true; open; i++ {
			select {
			case <-stop:
				c.Close()
				return
			default:
			}
			_ = c.SetDeadline(testsupport.Deadline(20 * time.Second))
			if _, err := io.WriteString(c, getReq(paths[i%2])); err != nil {
				tally.notWritten.Add(1)
				break
			}
			before := cr.n - int64(br.Buffered())
			resp, err := http.ReadResponse(br, nil)
			var n int64
			if err == nil {
				n, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			switch {
			case err == nil && resp.StatusCode == 200 && n == sizes[i%2]:
				tally.complete.Add(1)
				open = !resp.Close
			case err != nil && cr.n-int64(br.Buffered()) == before && br.Buffered() == 0 && isEndErr(err):
				// Nothing of a response arrived: the daemon closed the connection
				// without reading this request (an idle keep-alive connection closed by
				// the shutdown while the request was in flight).
				tally.closedUnread.Add(1)
				if errors.Is(err, unix.ECONNRESET) {
					tally.unreadReset.Add(1)
				}
				open = false
			default:
				tally.lost.Add(1)
				select {
				case lostDetail <- describe(resp, n, err):
				default:
				}
				open = false
			}
		}
		c.Close()
	}
}

// isEndErr: the connection ended (http.ReadResponse turns a clean EOF into
// io.ErrUnexpectedEOF).
func isEndErr(err error) bool {
	return isClosedErr(err) || errors.Is(err, io.ErrUnexpectedEOF)
}

func describe(resp *http.Response, n int64, err error) string {
	if resp == nil {
		return "no response: " + err.Error()
	}
	msg := resp.Status
	if err != nil {
		msg += ", " + err.Error()
	}
	return msg + ", body bytes " + strconv.FormatInt(n, 10)
}

func TestGracefulShutdownUnderLoad(t *testing.T) {
	accessLog := filepath.Join(t.TempDir(), "access.log")
	d := startDaemon(t, daemonOpts{args: []string{"-access-log", accessLog, "-shutdown-timeout", testsupport.Scale(20 * time.Second).String()}})

	var tally loadTally
	stop := make(chan struct{})
	lostDetail := make(chan string, 8)
	var wg sync.WaitGroup
	for range shutdownClients {
		wg.Go(func() { loadClient(d.addr, &tally, stop, lostDetail) })
	}
	testsupport.Eventually(t, 30*time.Second, "load to reach its pre-shutdown count", func() bool {
		return tally.complete.Load() >= requestsBeforeKill
	})
	atTerm := tally.complete.Load()
	if err := d.cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	status := d.wait(30 * time.Second)
	// The clients stop by themselves once the listener is gone (dial refused); stop is the
	// backstop if a client were stuck.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(testsupport.Scale(30 * time.Second)):
		close(stop)
		<-done
		t.Error("load clients still running 30 s after the daemon exited")
	}
	close(lostDetail)
	for s := range lostDetail {
		t.Errorf("lost response: %s", s)
	}

	b, err := os.ReadFile(accessLog)
	if err != nil {
		t.Fatal(err)
	}
	logged := int64(strings.Count(string(b), `"status":200`))
	complete := tally.complete.Load()
	t.Logf("FIGURE: shutdown under load: %d clients, SIGTERM after %d responses; complete=%d (daemon logged %d x 200) lost=%d closed-before-any-response-byte=%d (by RST %d) not-written=%d; exit status %d",
		shutdownClients, atTerm, complete, logged, tally.lost.Load(), tally.closedUnread.Load(), tally.unreadReset.Load(), tally.notWritten.Load(), status)
	if status != 0 {
		t.Errorf("daemon exit status %d, want 0; log:\n%s", status, d.logs.String())
	}
	if n := tally.lost.Load(); n != 0 {
		t.Errorf("%d responses lost", n)
	}
	// A request can go unanswered only by racing the close of an idle keep-alive connection
	// (RFC 9112 §9.3.1: no byte of a response arrived, so the client knows it may retry).
	// Every listener is closed before any idle connection (and what was queued on a listener
	// is served, not reset), so each client meets that race at most once: its next dial is
	// refused.
	if n := tally.closedUnread.Load(); n > shutdownClients {
		t.Errorf("%d requests closed without a response byte, more than the %d connections open at SIGTERM", n, shutdownClients)
	}
	// Every request the daemon answered (its access log) reached the client whole.
	if logged != complete {
		t.Errorf("daemon logged %d responses, clients received %d whole: %d accepted requests lost", logged, complete, logged-complete)
	}
}
