package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// binary is the reactord executable built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "reactord-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "reactord")
	args := []string{"build", "-ldflags", "-X main.version=v0.0.0-test", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building reactord:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// syncBuffer collects a process's output for inspection while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a running reactord process.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	addrs  []string // bound addresses, from -addr-file
	addr   string   // the first TCP one
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{}
	err    error // Wait's result, valid after done is closed
}

// start runs reactord with args plus -addr-file, waits until the addresses are published and
// registers a cleanup that kills the process if the test has not stopped it.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addrs")
	args = append([]string{"-addr-file", addrFile, "-log-format", "json"}, args...)
	d := &proc{t: t, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(binary, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.stdout, d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Kill()
			<-d.done
		}
	})
	deadline := testsupport.Deadline(20 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil {
			d.addrs = strings.Fields(string(b))
			break
		}
		select {
		case <-d.done:
			t.Fatalf("reactord exited before listening: %v\nstderr:\n%s", d.err, d.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("reactord did not publish its addresses\nstderr:\n%s", d.stderr.String())
		}
	}
	for _, a := range d.addrs {
		if !strings.HasPrefix(a, "unix:") {
			d.addr = a
			break
		}
	}
	return d
}

// openFDs counts the process's open descriptors (Linux /proc).
func (d *proc) openFDs() int {
	d.t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.cmd.Process.Pid))
	if err != nil {
		d.t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}

// url returns http://addr/path for the first TCP address.
func (d *proc) url(path string) string { return "http://" + d.addr + path }

// signal sends sig to the process.
func (d *proc) signal(sig os.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (d *proc) wait(timeout time.Duration) int {
	d.t.Helper()
	timeout = testsupport.Scale(timeout)
	select {
	case <-d.done:
	case <-time.After(timeout):
		d.cmd.Process.Kill()
		<-d.done
		d.t.Fatalf("reactord did not exit within %v\nstderr:\n%s", timeout, d.stderr.String())
	}
	return d.cmd.ProcessState.ExitCode()
}

// stop sends SIGTERM and requires a clean exit.
func (d *proc) stop() {
	d.t.Helper()
	d.signal(unix.SIGTERM)
	if code := d.wait(30 * time.Second); code != 0 {
		d.t.Fatalf("exit code %d after SIGTERM\nstderr:\n%s", code, d.stderr.String())
	}
}

// client is an HTTP client that never follows redirects and never adds Accept-Encoding, so
// responses are seen as sent.
// Its idle connections are closed when the test ends, so no client goroutine outlives it.
func client(t *testing.T) *http.Client {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Timeout:       testsupport.Scale(30 * time.Second),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     tr,
	}
}

// response is a fully read HTTP response.
type response struct {
	status int
	header http.Header
	body   string
}

// do sends one request built from method, url and header pairs.
func do(t *testing.T, c *http.Client, method, url string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

// raw sends request bytes exactly as given on a new connection and reads one response, so
// that paths reach the server without the client's normalisation.
func raw(t *testing.T, addr, method, request string) response {
	t.Helper()
	return rawNet(t, "tcp", addr, method, request)
}

// rawNet is raw over any stream network ("tcp", "unix").
func rawNet(t *testing.T, network, addr, method, request string) response {
	t.Helper()
	conn, err := net.DialTimeout(network, addr, testsupport.Scale(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(testsupport.Deadline(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%q: %v", request, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%q: body: %v", request, err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}
