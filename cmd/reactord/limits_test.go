package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/reactord/reactord/internal/testsupport"
)

// TestLimitsAndTimeouts checks that the size and timeout flags reach the codec: 431 for a
// header over -max-header-bytes, 413 for a body over -max-body-bytes, 408 for a header that
// does not complete within -header-timeout, and an idle keep-alive connection closed after
// -idle-timeout. The codec's own answers are counted as rejected in /metrics.
func TestLimitsAndTimeouts(t *testing.T) {
	const timeout = 300 * time.Millisecond
	d := start(t, "-listen", "127.0.0.1:0", "-access-log", "off", "-max-header-bytes", "1KiB",
		"-max-body-bytes", "100", "-header-timeout", timeout.String(), "-idle-timeout", timeout.String())
	roundTrip := func(method, request string) *http.Response {
		t.Helper()
		conn := dialPrompt(t, d.addr, request, timeout)
		resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
		if err != nil {
			t.Fatalf("%.40q: %v", request, err)
		}
		resp.Body.Close()
		return resp
	}

	big := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2048) + "\r\n\r\n"
	if r := roundTrip("GET", big); r.StatusCode != 431 {
		t.Errorf("2 KiB header: %d, want 431", r.StatusCode)
	}
	body := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n" + strings.Repeat("b", 101)
	if r := roundTrip("POST", body); r.StatusCode != 413 {
		t.Errorf("101-byte body: %d, want 413", r.StatusCode)
	}

	// A header that never completes: the server answers 408 once -header-timeout passes.
	if r := roundTrip("GET", "GET / HTTP/1.1\r\nHost: x\r\n"); r.StatusCode != 408 {
		t.Errorf("slow header: %d, want 408", r.StatusCode)
	}

	// An idle keep-alive connection is closed by the server after -idle-timeout.
	idle := dialPrompt(t, d.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout)
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("keep-alive request: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: %v, want EOF from the server", err)
	}

	if got := sample(t, scrape(t, d), "reactord_http_rejected_total", nil); got < 3 {
		t.Errorf("rejected_total = %v, want ≥ 3", got)
	}
	d.stop()
}

// TestConfigFileRun starts the daemon from a TOML file, with a flag overriding one key.
func TestConfigFileRun(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "reactord.toml")
	os.WriteFile(cfg, []byte("listen = [\"127.0.0.1:0\"]\nloops = 3\naccess-log = \"off\"\nlog-level = \"warn\"\n"), 0o644)
	d := start(t, "-config", cfg, "-loops", "1")
	r := do(t, client(t), "GET", d.url("/"))
	if !strings.Contains(r.body, `<td id="loops">1</td>`) {
		t.Errorf("-loops 1 did not override the file's loops = 3")
	}
	d.stop()
	// log-level = "warn" from the file: the info lines are not written.
	if strings.Contains(d.stderr.String(), `"msg":"listening"`) {
		t.Errorf("log-level from the file ignored:\n%s", d.stderr.String())
	}
}

// TestReusePortHandover runs two processes on one port with -reuseport, stops the first, and
// checks that the port keeps answering: the zero-downtime upgrade docs/OPERATIONS.md describes.
func TestReusePortHandover(t *testing.T) {
	a := start(t, "-listen", "127.0.0.1:0", "-reuseport", "-loops", "2", "-access-log", "off")
	b := start(t, "-listen", a.addr, "-reuseport", "-loops", "1", "-access-log", "off")
	if b.addr != a.addr {
		t.Fatalf("second process bound %s, want %s", b.addr, a.addr)
	}
	a.stop()
	for i := 0; i < 20; i++ {
		r := raw(t, a.addr, "GET", "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if r.status != 200 {
			t.Fatalf("request %d after the first process stopped: %d", i, r.status)
		}
	}
	b.stop()
}

// dialPrompt opens a connection to addr and writes first on it, soon enough that the daemon,
// whose -header-timeout (silent) runs from its accept, cannot have given up on the connection
// before the bytes arrived. A busy machine can deschedule the test between the dial and the
// write for longer than that: such a connection is closed and dialled again (a few times),
// because a silent close would fail the test for a reason that is not the one it checks.
// The connection is closed at the end of the test; its deadline is 10 s, scaled.
func dialPrompt(t *testing.T, addr, first string, silentAfter time.Duration) net.Conn {
	t.Helper()
	const attempts = 5
	for i := 0; i < attempts; i++ {
		conn, err := net.DialTimeout("tcp", addr, testsupport.Scale(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		// The daemon accepts after the handshake completed, so its timer starts no
		// earlier than dialled; bytes written before dialled+silentAfter are in its socket
		// before the timeout, and a loop reads ready sockets before it runs timers.
		dialled := time.Now()
		conn.SetDeadline(testsupport.Deadline(10 * time.Second))
		if _, err := io.WriteString(conn, first); err != nil {
			t.Fatal(err)
		}
		if time.Since(dialled) < silentAfter {
			t.Cleanup(func() { conn.Close() })
			return conn
		}
		conn.Close()
		t.Logf("write came %v after the dial (≥ %v): dialling again", time.Since(dialled), silentAfter)
	}
	t.Fatalf("%d attempts to write within %v of dialling failed: too slow a machine; raise %s", attempts, silentAfter, testsupport.EnvTimeScale)
	return nil
}

// TestMaxConnsPerIP runs the daemon with -max-conns-per-ip 3: three keep-alive connections
// from 127.0.0.1 are served, a fourth is closed without a response, a connection from
// 127.0.0.2 is still served, and the admin listener's /metrics counts the refusal and the
// two client addresses; the refusal burst is logged (start, then end after a quiet second),
// and once the clients close the address gauge returns to 0 and 127.0.0.1 is served again.
func TestMaxConnsPerIP(t *testing.T) {
	needLoopback2(t)
	d := start(t, "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0", "-access-log", "off",
		"-max-conns-per-ip", "3")
	metrics := func() map[string]*dto.MetricFamily { return scrapeURL(t, "http://"+d.admin+"/metrics") }
	get := func(src string) (net.Conn, int, error) { return getFrom(t, d.addr, src) }

	var open []net.Conn
	for i := range 3 {
		c, status, err := get("127.0.0.1")
		if status != 200 {
			t.Fatalf("connection %d from 127.0.0.1: status %d, %v; want 200", i+1, status, err)
		}
		open = append(open, c)
	}
	if _, status, err := get("127.0.0.1"); status != 0 || err == nil {
		t.Fatalf("4th connection from 127.0.0.1: status %d, %v; want closed unanswered", status, err)
	}
	other, status, err := get("127.0.0.2")
	if status != 200 {
		t.Fatalf("connection from 127.0.0.2: status %d, %v; want 200", status, err)
	}
	open = append(open, other)

	mfs := metrics()
	if got := sample(t, mfs, "reactord_connections_refused_total", map[string]string{"reason": "per_ip"}); got != 1 {
		t.Errorf("connections_refused_total{reason=per_ip} = %v, want 1", got)
	}
	if got := sample(t, mfs, "reactord_client_addresses", nil); got != 2 {
		t.Errorf("client_addresses = %v, want 2", got)
	}
	testsupport.Eventually(t, 5*time.Second, "the refusal burst logged, start and end", func() bool {
		s := d.stderr.String()
		return strings.Contains(s, `"refusing connections over the per-address limit"`) &&
			strings.Contains(s, `"refusing connections stopped"`) && strings.Contains(s, `"refused":1`)
	})

	for _, c := range open {
		c.Close()
	}
	testsupport.Eventually(t, 10*time.Second, "client_addresses back to 0", func() bool {
		return sample(t, metrics(), "reactord_client_addresses", nil) == 0
	})
	for i := range 3 {
		if _, status, err := get("127.0.0.1"); status != 200 {
			t.Fatalf("connection %d from 127.0.0.1 after the others closed: status %d, %v", i+1, status, err)
		}
	}
	d.stop()
}

// dialFrom connects to addr from the local IP src (127.0.0.2 is a second client on loopback).
func dialFrom(t *testing.T, addr, src string) net.Conn {
	t.Helper()
	dl := net.Dialer{Timeout: testsupport.Scale(5 * time.Second), LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := dl.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(testsupport.Deadline(10 * time.Second))
	return conn
}

// getFrom sends a keep-alive request for / on a new connection from src and returns the
// connection, open, with the response's status; 0 and the error when the server closed it
// without answering.
func getFrom(t *testing.T, addr, src string) (net.Conn, int, error) {
	t.Helper()
	conn := dialFrom(t, addr, src)
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return conn, 0, err // refused before the request was written: reset
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		if br.Buffered() > 0 {
			t.Fatalf("from %s: %d bytes of a broken response", src, br.Buffered())
		}
		return conn, 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return conn, resp.StatusCode, nil
}

// needLoopback2 skips the test where 127.0.0.2 cannot be bound (macOS configures only
// 127.0.0.1 on lo0); Linux routes all of 127.0.0.0/8 to the loopback interface.
func needLoopback2(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no second loopback address for a second client: %v", err)
	}
	ln.Close()
}
