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
)

// TestLimitsAndTimeouts checks that the size and timeout flags reach the codec: 431 for a
// header over -max-header-bytes, 413 for a body over -max-body-bytes, 408 for a header that
// does not complete within -header-timeout, and an idle keep-alive connection closed after
// -idle-timeout. The codec's own answers are counted as rejected in /metrics.
func TestLimitsAndTimeouts(t *testing.T) {
	d := start(t, "-listen", "127.0.0.1:0", "-access-log", "off", "-max-header-bytes", "1KiB",
		"-max-body-bytes", "100", "-header-timeout", "300ms", "-idle-timeout", "300ms")

	big := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2048) + "\r\n\r\n"
	if r := raw(t, d.addr, "GET", big); r.status != 431 {
		t.Errorf("2 KiB header: %d, want 431", r.status)
	}
	body := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n" + strings.Repeat("b", 101)
	if r := raw(t, d.addr, "POST", body); r.status != 413 {
		t.Errorf("101-byte body: %d, want 413", r.status)
	}

	// A header that never completes: the server answers 408 once -header-timeout passes.
	conn, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("slow header: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 408 {
		t.Errorf("slow header: %d, want 408", resp.StatusCode)
	}

	// An idle keep-alive connection is closed by the server after -idle-timeout.
	idle, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(idle)
	resp, err = http.ReadResponse(br, nil)
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
