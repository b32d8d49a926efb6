package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/cmd/reactord/internal/static"
	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/poller"
	"github.com/reactord/reactord/reactor"
)

// scrape fetches /metrics and parses it with Prometheus's own text parser.
func scrape(t *testing.T, d *proc) map[string]*dto.MetricFamily {
	t.Helper()
	return scrapeURL(t, d.url("/metrics"))
}

// scrapeURL is scrape for any /metrics URL (an admin listener's).
func scrapeURL(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	r := do(t, client(t), "GET", url)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %v", r.status, r.header)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(r.body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return mfs
}

// sample returns the value of name's sample whose labels include want (0 if there is none;
// missing families fail the test).
func sample(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	mf, ok := mfs[name]
	if !ok {
		t.Fatalf("no metric family %s", name)
	}
	total := 0.0
next:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

func TestMetricsMoveWithTraffic(t *testing.T) {
	root, _ := webRoot(t)
	d := start(t, "-listen", "127.0.0.1:0", "-root", root, "-loops", "2", "-access-log", "off")
	before := scrape(t, d)
	c := client(t)
	const n = 40
	for i := 0; i < n; i++ {
		do(t, c, "GET", d.url("/hello.txt"))
	}
	do(t, c, "GET", d.url("/missing"))
	do(t, c, "POST", d.url("/hello.txt"))
	do(t, c, "HEAD", d.url("/hello.txt"))
	// Raw connections add accepted/closed connections beyond the keep-alive client's.
	for i := 0; i < 3; i++ {
		raw(t, d.addr, "GET", "GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	}
	var after map[string]*dto.MetricFamily
	// The loops publish their counters once per iteration: poll briefly for them to land.
	testsupport.Eventually(t, 5*time.Second, "connection counters", func() bool {
		after = scrape(t, d)
		return sample(t, after, "reactord_connections_closed_total", nil)-sample(t, before, "reactord_connections_closed_total", nil) >= 3
	})
	delta := func(name string, labels map[string]string) float64 {
		return sample(t, after, name, labels) - sample(t, before, name, labels)
	}
	checks := []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"reactord_http_requests_total", map[string]string{"method": "GET", "code": "2xx"}, n + 3},
		{"reactord_http_requests_total", map[string]string{"method": "GET", "code": "4xx"}, 1},
		{"reactord_http_requests_total", map[string]string{"method": "POST", "code": "4xx"}, 1},
		{"reactord_http_requests_total", map[string]string{"method": "HEAD", "code": "2xx"}, 1},
		{"reactord_http_request_duration_seconds", nil, n + 6},
		{"reactord_connections_accepted_total", nil, 4},
		{"reactord_received_bytes_total", nil, float64(n * len("GET /hello.txt HTTP/1.1\r\n"))},
		{"reactord_sent_bytes_total", nil, float64(n * len("hello, world\n"))},
		{"reactord_loop_iterations_total", nil, 1},
		{"reactord_loop_waits_total", nil, 1},
		{"reactord_loop_events_total", nil, 1},
	}
	for _, ch := range checks {
		if got := delta(ch.name, ch.labels); got < ch.min {
			t.Errorf("%s%v moved by %v, want ≥ %v", ch.name, ch.labels, got, ch.min)
		}
	}
	if got := sample(t, after, "reactord_connections_open", nil); got < 1 {
		t.Errorf("connections_open = %v with a keep-alive client connected", got)
	}
	if got := len(after["reactord_loop_iterations_total"].GetMetric()); got != 2 {
		t.Errorf("%d loops reported, want 2", got)
	}
	auto, _ := reactor.CheckPoller("auto") // the first backend, or REACTOR_POLLER's
	if got := sample(t, after, "reactord_poller_info", map[string]string{"poller": auto}); got != 1 {
		t.Errorf("poller_info{poller=%q} = %v", auto, got)
	}
	for _, name := range []string{"reactord_loop_wakeups_total", "reactord_loop_events_per_wait", "reactord_build_info", "go_goroutines", "process_open_fds"} {
		if _, ok := after[name]; !ok {
			t.Errorf("missing %s", name)
		}
	}
	d.stop()
}

// TestEveryPoller runs the daemon on each compiled backend and checks the page and metrics
// name it (or the fallback, for a backend this machine refuses: io_uring in some containers).
func TestEveryPoller(t *testing.T) {
	for _, name := range reactor.Pollers() {
		t.Run(name, func(t *testing.T) {
			want := name
			if _, err := reactor.CheckPoller(name); errors.Is(err, poller.ErrUnsupported) {
				want = reactor.Pollers()[0]
				t.Logf("%s unavailable here, expecting the fallback %s: %v", name, want, err)
			}
			d := start(t, "-listen", "127.0.0.1:0", "-poller", name, "-loops", "1", "-access-log", "off")
			r := do(t, client(t), "GET", d.url("/"))
			if !strings.Contains(r.body, `<td id="poller">`+want+`</td>`) {
				t.Errorf("page does not name %s", want)
			}
			if got := sample(t, scrape(t, d), "reactord_poller_info", map[string]string{"poller": want}); got != 1 {
				t.Errorf("poller_info = %v", got)
			}
			d.stop()
		})
	}
}

// TestGracefulShutdown sends SIGTERM while 50 large responses are in flight to clients that
// have read only the head, with idle keep-alive connections open too. Every response must
// arrive complete, the idle connections must be closed, new connections refused, exit 0.
func TestGracefulShutdown(t *testing.T) {
	root := t.TempDir()
	const size = 8 << 20
	data := pattern(size)
	want := sha256.Sum256(data)
	if err := os.WriteFile(filepath.Join(root, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	d := start(t, "-listen", "127.0.0.1:0", "-root", root, "-access-log", "off",
		"-shutdown-timeout", testsupport.Scale(60*time.Second).String(), "-loops", "2")

	const inflight = 50
	type slow struct {
		conn net.Conn
		br   *bufio.Reader
		clen int64
	}
	slows := make([]slow, inflight)
	for i := range slows {
		conn, err := net.Dial("tcp", d.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// A small receive buffer keeps most of the body on the server's side of the socket.
		conn.(*net.TCPConn).SetReadBuffer(16 << 10)
		if _, err := io.WriteString(conn, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		slows[i] = slow{conn: conn, br: bufio.NewReaderSize(conn, 4096)}
	}
	// Read each status line and header: the server has answered and is now sending.
	for i := range slows {
		s := &slows[i]
		s.conn.SetDeadline(testsupport.Deadline(30 * time.Second))
		line, err := s.br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
			t.Fatalf("conn %d: status line %q %v", i, line, err)
		}
		for {
			h, err := s.br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if h == "\r\n" {
				break
			}
			if v, ok := strings.CutPrefix(strings.ToLower(h), "content-length:"); ok {
				s.clen, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
		if s.clen != size {
			t.Fatalf("conn %d: Content-Length %d", i, s.clen)
		}
	}
	// Idle keep-alive connections: one request done, nothing pending.
	idle := make([]*bufio.Reader, 5)
	for i := range idle {
		conn, err := net.Dial("tcp", d.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(testsupport.Deadline(60 * time.Second))
		io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(conn)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if l == "ok\n" {
				break
			}
		}
		idle[i] = br
	}

	// Prove the responses are in flight: far less than their total has left the server.
	if sent := sample(t, scrape(t, d), "reactord_sent_bytes_total", nil); sent >= inflight*size/2 {
		t.Fatalf("server already sent %v of %d bytes: nothing would be in flight", sent, inflight*size)
	}

	d.signal(unix.SIGTERM)

	// The listener closes: new connections are refused (poll; the loops act on their own time).
	testsupport.Eventually(t, 10*time.Second, "listener to close", func() bool {
		c, err := net.DialTimeout("tcp", d.addr, testsupport.Scale(time.Second))
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	// Idle connections are closed by the server.
	for i, br := range idle {
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("idle conn %d: %v, want EOF", i, err)
		}
	}
	// Every in-flight response arrives whole.
	var wg sync.WaitGroup
	errs := make(chan error, inflight)
	for i := range slows {
		wg.Add(1)
		go func(i int, s slow) {
			defer wg.Done()
			h := sha256.New()
			n, err := io.Copy(h, io.LimitReader(s.br, s.clen))
			if err != nil || n != s.clen {
				errs <- fmt.Errorf("conn %d: read %d of %d: %v", i, n, s.clen, err)
				return
			}
			var got [32]byte
			copy(got[:], h.Sum(nil))
			if got != want {
				errs <- fmt.Errorf("conn %d: body differs", i)
				return
			}
			// After the response the server closes the connection (it is draining).
			if _, err := s.br.ReadByte(); err != io.EOF {
				errs <- fmt.Errorf("conn %d: after body: %v, want EOF", i, err)
			}
		}(i, slows[i])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if code := d.wait(60 * time.Second); code != 0 {
		t.Fatalf("exit code %d\nstderr:\n%s", code, d.stderr.String())
	}
	if !strings.Contains(d.stderr.String(), `"msg":"stopped"`) {
		t.Errorf("no stopped log line:\n%s", d.stderr.String())
	}
}

// TestSIGHUPReopensAccessLog does what logrotate does: rename the file, send SIGHUP, and
// expect later lines in a new file under the old name.
func TestSIGHUPReopensAccessLog(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	d := start(t, "-listen", "127.0.0.1:0", "-access-log", logPath)
	c := client(t)
	do(t, c, "GET", d.url("/before-rotation"))
	testsupport.Eventually(t, 10*time.Second, "first access line", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "/before-rotation")
	})
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	d.signal(unix.SIGHUP)
	testsupport.Eventually(t, 10*time.Second, "reopened file", func() bool {
		_, err := os.Stat(logPath)
		return err == nil
	})
	do(t, c, "GET", d.url("/after-rotation"))
	testsupport.Eventually(t, 10*time.Second, "line in the new file", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "/after-rotation")
	})
	old, _ := os.ReadFile(logPath + ".1")
	if !strings.Contains(string(old), "/before-rotation") || strings.Contains(string(old), "after-rotation") {
		t.Errorf("rotated file got a line logged after SIGHUP:\n%s", old)
	}
	// The line has every field the access log promises.
	b, _ := os.ReadFile(logPath)
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(string(b), "\n", 2)[0]), &line); err != nil {
		t.Fatalf("access line %q: %v", b, err)
	}
	if line["method"] != "GET" || line["path"] != "/after-rotation" || line["status"] != 404.0 ||
		line["bytes"] == nil || line["duration"] == nil || !strings.HasPrefix(fmt.Sprint(line["remote"]), "127.0.0.1:") {
		t.Errorf("access line fields: %v", line)
	}
	d.stop()
	if !strings.Contains(d.stderr.String(), "reopened access log") {
		t.Errorf("no reopen log line:\n%s", d.stderr.String())
	}
}

// TestCurl drives the daemon with curl where it is installed: a full GET, a range, and a
// conditional request.
func TestCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	root, mtime := webRoot(t)
	d := start(t, "-listen", "127.0.0.1:0", "-root", root, "-access-log", "off")
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(curl, append([]string{"-sS", "--max-time", "10"}, args...)...).Output()
		if err != nil {
			t.Fatalf("curl %v: %v", args, err)
		}
		return string(out)
	}
	if got := run(d.url("/hello.txt")); got != "hello, world\n" {
		t.Errorf("curl GET: %q", got)
	}
	if got := run("-r", "0-4", d.url("/hello.txt")); got != "hello" {
		t.Errorf("curl range: %q", got)
	}
	if got := run("-o", "/dev/null", "-w", "%{http_code}", "-z", mtime.Add(time.Hour).Format(static.TimeFormat), d.url("/hello.txt")); got != "304" {
		t.Errorf("curl If-Modified-Since: %q", got)
	}
	if got := run("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", d.url("/docs")); got != "301 "+d.url("/docs/") {
		t.Errorf("curl redirect: %q", got)
	}
	if got := run("--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", d.url("/../secret.txt")); got != "400" {
		t.Errorf("curl traversal: %q", got)
	}
	d.stop()
}

// TestShutdownTimeout leaves a response stuck behind a client that never reads: the graceful
// shutdown gives up after -shutdown-timeout, closes it, and exits 1 saying so.
func TestShutdownTimeout(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "big.bin"), pattern(16<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	d := start(t, "-listen", "127.0.0.1:0", "-root", root, "-access-log", "off", "-shutdown-timeout", "300ms")
	conn, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(16 << 10)
	io.WriteString(conn, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(testsupport.Deadline(10 * time.Second))
	if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	d.signal(unix.SIGTERM)
	if code := d.wait(30 * time.Second); code != 1 {
		t.Fatalf("exit code %d, want 1\nstderr:\n%s", code, d.stderr.String())
	}
	if !strings.Contains(d.stderr.String(), "shutdown timed out") {
		t.Errorf("no timeout log line:\n%s", d.stderr.String())
	}
}
