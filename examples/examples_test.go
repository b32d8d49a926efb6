package examples_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
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

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Bounds on how long a step may take. They are generous (a race-enabled binary on a busy
// 2-core machine), only ever reached when something is broken, and scaled with
// REACTORD_TEST_TIMESCALE like every bound in the tests.
var (
	startTimeout = testsupport.Scale(20 * time.Second)
	stepTimeout  = testsupport.Scale(10 * time.Second)
)

// buildExamples compiles the named example directories into one temporary directory with a
// single go build (the packages compile in parallel) and returns that directory.
func buildExamples(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	for _, n := range names {
		args = append(args, "./"+n)
	}
	cmd := exec.Command("go", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return dir
}

// proc is a running example program.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	addr   string // from the "listening on ADDR" line
	stdout *lineLog
	stderr *lineLog
	done   chan struct{} // closed once the process has exited and its output is read
}

// start runs the example binary with args, waits for its "listening on ADDR" line and
// registers a cleanup that kills it if the test has not stopped it.
func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{
		t:      t,
		name:   filepath.Base(bin),
		cmd:    exec.Command(bin, args...),
		stdout: newLineLog(),
		stderr: newLineLog(),
		done:   make(chan struct{}),
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait() // the exit status is read from ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	line := p.expect(startTimeout, "listening on ")
	fields := strings.Fields(strings.TrimPrefix(line, "listening on "))
	if len(fields) == 0 {
		t.Fatalf("%s: no address in %q", p.name, line)
	}
	p.addr = fields[0]
	return p
}

// expect waits until the program prints a line containing want (a line not seen by an
// earlier expect) and returns it.
func (p *proc) expect(timeout time.Duration, want string) string {
	p.t.Helper()
	return p.expectFunc(timeout, fmt.Sprintf("a line containing %q", want), func(l string) bool {
		return strings.Contains(l, want)
	})
}

// expectExact waits until the program prints exactly the line want.
func (p *proc) expectExact(timeout time.Duration, want string) {
	p.t.Helper()
	p.expectFunc(timeout, fmt.Sprintf("the line %q", want), func(l string) bool { return l == want })
}

func (p *proc) expectFunc(timeout time.Duration, what string, match func(string) bool) string {
	p.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		line, changed, ok := p.stdout.next(match)
		if ok {
			return line
		}
		select {
		case <-changed:
		case <-p.done:
			if line, _, ok := p.stdout.next(match); ok {
				return line
			}
			p.t.Fatalf("%s exited (%v) before printing %s\n%s", p.name, p.cmd.ProcessState, what, p.output())
		case <-deadline.C:
			p.t.Fatalf("%s did not print %s within %v\n%s", p.name, what, timeout, p.output())
		}
	}
}

// stop sends sig and requires the program to exit with status 0 (Run returned nil: every
// connection finished within the drain).
func (p *proc) stop(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(startTimeout):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("%s did not exit within %v of %v\n%s", p.name, startTimeout, sig, p.output())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Fatalf("%s: exit status %d after %v, want 0\n%s", p.name, code, sig, p.output())
	}
}

func (p *proc) output() string {
	return "--- stdout:\n" + p.stdout.String() + "--- stderr:\n" + p.stderr.String()
}

// lineLog collects a process's output and lets tests wait for lines as they are printed.
type lineLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer // everything written
	lines   []string     // complete lines
	partial []byte
	seen    int           // lines[:seen] were examined by next already
	changed chan struct{} // closed and replaced whenever a line arrives
}

func newLineLog() *lineLog { return &lineLog{changed: make(chan struct{})} }

func (l *lineLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(b)
	l.partial = append(l.partial, b...)
	added := false
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
		added = true
	}
	if added {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(b), nil
}

// next returns the first unexamined line that matches, marking it and the lines before it as
// examined; otherwise it marks every line examined and returns a channel closed on the next
// line.
func (l *lineLog) next(match func(string) bool) (string, <-chan struct{}, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.seen < len(l.lines) {
		line := l.lines[l.seen]
		l.seen++
		if match(line) {
			return line, nil, true
		}
	}
	return "", l.changed, false
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// dial connects to addr with a deadline for the whole exchange.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, stepTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c.SetDeadline(time.Now().Add(2 * stepTimeout))
	t.Cleanup(func() { c.Close() })
	return c
}

// TestExamples builds every example, starts each on an ephemeral loopback port, drives it
// once the way a user would, and stops it with a signal, requiring a clean exit.
func TestExamples(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		sig   os.Signal
		drive func(t *testing.T, p *proc)
	}{
		{"echo", []string{"-addr", "127.0.0.1:0", "-loops", "2"}, unix.SIGINT, driveEcho},
		{"framing", []string{"-addr", "127.0.0.1:0"}, unix.SIGTERM, driveFraming},
		// The receiver binds the loopback broadcast address: one bound to 127.0.0.1 would
		// not see broadcasts.
		{"udp-broadcast", []string{"-addr", "127.255.255.255:0", "-every", "20ms", "-count", "2"}, unix.SIGTERM, driveUDPBroadcast},
		{"timers", []string{"-addr", "127.0.0.1:0", "-idle", "10s", "-tick", "50ms"}, unix.SIGTERM, driveTimers},
		{"http-hello", []string{"-addr", "127.0.0.1:0", "-loops", "2"}, unix.SIGTERM, driveHTTPHello},
		{"http-mux", []string{"-addr", "127.0.0.1:0", "-workers", "4"}, unix.SIGTERM, driveHTTPMux},
		// The three programs of docs/EMBEDDING.md's "first hour", each next to its version
		// written without the embedder helpers (examples/before): one client drives both.
		{"kv", []string{"-addr", "127.0.0.1:0"}, unix.SIGTERM, driveKV},
		{"before/kv", []string{"-addr", "127.0.0.1:0"}, unix.SIGTERM, driveKV},
		{"jsonapi", []string{"-addr", "127.0.0.1:0"}, unix.SIGTERM, driveJSONAPI(true, true)},
		{"before/jsonapi", []string{"-addr", "127.0.0.1:0"}, unix.SIGTERM, driveJSONAPI(true, false)},
		{"jsonapi-mux", []string{"-addr", "127.0.0.1:0"}, unix.SIGTERM, driveJSONAPI(false, true)},
		{"before/jsonapi-mux", []string{"-addr", "127.0.0.1:0"}, unix.SIGTERM, driveJSONAPI(false, false)},
		{"ws-echo", []string{"-addr", "127.0.0.1:0", "-loops", "2"}, unix.SIGTERM, driveWSEcho},
		{"ws-chat", []string{"-addr", "127.0.0.1:0", "-loops", "2"}, unix.SIGINT, driveWSChat},
	}
	// Binaries are named after the last path element, so before/kv and kv build into
	// different directories (one go build each, packages compiled in parallel).
	var names, before []string
	for _, c := range cases {
		if strings.HasPrefix(c.name, "before/") {
			before = append(before, c.name)
		} else {
			names = append(names, c.name)
		}
	}
	bin, binBefore := buildExamples(t, names...), buildExamples(t, before...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := bin
			if strings.HasPrefix(c.name, "before/") {
				dir = binBefore
			}
			p := start(t, filepath.Join(dir, filepath.Base(c.name)), c.args...)
			c.drive(t, p)
			p.stop(c.sig)
			if strings.HasPrefix(c.name, "http-") || strings.Contains(c.name, "jsonapi") {
				// After Shutdown the HTTP examples report how many requests they answered.
				var n int
				line := p.expect(0, "served ")
				if _, err := fmt.Sscanf(line, "served %d requests", &n); err != nil || n < 4 {
					t.Fatalf("final line %q: want at least 4 requests served", line)
				}
			}
			if strings.HasPrefix(c.name, "ws-") {
				// The WebSocket examples report the messages they handled.
				var n, m int
				line := p.expect(0, " messages ")
				_, err1 := fmt.Sscanf(line, "echoed %d messages on %d connections", &n, &m)
				_, err2 := fmt.Sscanf(line, "relayed %d messages from %d members", &n, &m)
				if err1 != nil && err2 != nil || n < 2 || m < 2 {
					t.Fatalf("final line %q: want at least 2 messages on 2 connections", line)
				}
			}
		})
	}
}

func driveEcho(t *testing.T, p *proc) {
	c := dial(t, p.addr)
	// Larger than one read (64 KiB), so it arrives in several OnData calls.
	msg := bytes.Repeat([]byte("echo, echo, echo\n"), 10000)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		errc <- err
	}()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("echo differs from what was sent")
	}
}

// frame encodes one frame of the framing example's protocol.
func frame(payload string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(payload))), payload...)
}

func readFrame(t *testing.T, c net.Conn) string {
	t.Helper()
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatalf("reading a frame header: %v", err)
	}
	payload := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(c, payload); err != nil {
		t.Fatalf("reading a frame payload: %v", err)
	}
	return string(payload)
}

func driveFraming(t *testing.T, p *proc) {
	c := dial(t, p.addr)
	write := func(b []byte) {
		t.Helper()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	onData := func(in, frames, consumed int) string {
		return fmt.Sprintf("OnData: %d bytes in, %d frame(s), consumed %d, kept %d", in, frames, consumed, in-consumed)
	}

	// Split: one byte per write. Waiting for the server's line after each byte makes every
	// byte its own read; each OnData then sees the kept bytes plus the new one.
	f := frame("hello")
	for i := range f {
		write(f[i : i+1])
		if i < len(f)-1 {
			p.expectExact(stepTimeout, onData(i+1, 0, 0))
		} else {
			p.expectExact(stepTimeout, onData(len(f), 1, len(f)))
		}
	}
	if got := readFrame(t, c); got != "HELLO" {
		t.Fatalf("answer %q, want HELLO", got)
	}

	// Coalesced: two frames in one write (one segment on loopback), handled in one call.
	write(append(frame("one"), frame("two")...))
	p.expectExact(stepTimeout, onData(10, 2, 10))
	for _, want := range []string{"ONE", "TWO"} {
		if got := readFrame(t, c); got != want {
			t.Fatalf("answer %q, want %q", got, want)
		}
	}

	// Both: a whole frame and the start of the next; the rest comes later and is appended to
	// the kept tail.
	next := frame("tail!")
	write(append(frame("abc"), next[:3]...))
	p.expectExact(stepTimeout, onData(8, 1, 5))
	if got := readFrame(t, c); got != "ABC" {
		t.Fatalf("answer %q, want ABC", got)
	}
	write(next[3:])
	p.expectExact(stepTimeout, onData(len(next), 1, len(next)))
	if got := readFrame(t, c); got != "TAIL!" {
		t.Fatalf("answer %q, want TAIL!", got)
	}
}

// broadcastSocket opens a UDP socket on 127.0.0.1 allowed to send to broadcast addresses.
func broadcastSocket(t *testing.T) *net.UDPConn {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
	}); err != nil || serr != nil {
		t.Fatalf("SO_BROADCAST: %v %v", err, serr)
	}
	return conn
}

func driveUDPBroadcast(t *testing.T, p *proc) {
	// The example's own sender and receiver.
	p.expect(stepTimeout, `received "hello 1" from 127.0.0.1:`)
	p.expect(stepTimeout, `sender got "ack hello 1" from `)

	// A sender of our own: broadcast to the receiver's port and wait for its unicast ack.
	// UDP may drop, so resend until the ack arrives or the step times out.
	_, port, err := net.SplitHostPort(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := net.ResolveUDPAddr("udp4", net.JoinHostPort("127.255.255.255", port))
	if err != nil {
		t.Fatal(err)
	}
	conn := broadcastSocket(t)
	deadline := time.Now().Add(stepTimeout)
	buf := make([]byte, 1500)
	for {
		if _, err := conn.WriteToUDP([]byte("from the test"), dst); err != nil {
			t.Fatalf("broadcast: %v", err)
		}
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond)) // retry interval, bounded by deadline
		n, _, err := conn.ReadFromUDP(buf)
		if err == nil {
			if got := string(buf[:n]); got != "ack from the test" {
				t.Fatalf("answer %q, want %q", got, "ack from the test")
			}
			break
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || time.Now().After(deadline) {
			t.Fatalf("waiting for the ack: %v\n%s", err, p.output())
		}
	}
	p.expect(stepTimeout, fmt.Sprintf("received %q from %s", "from the test", conn.LocalAddr()))
}

func driveTimers(t *testing.T, p *proc) {
	p.expect(stepTimeout, "tick 1 on loop ")
	c := dial(t, p.addr)
	me := c.LocalAddr().String()
	r := bufio.NewReader(c)
	readLine := func(want string) {
		t.Helper()
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading %q: %v\n%s", want, err, p.output())
		}
		if line = strings.TrimSuffix(line, "\n"); !strings.Contains(line, want) {
			t.Fatalf("got %q, want a line containing %q", line, want)
		}
	}
	send := func(s string) {
		t.Helper()
		if _, err := io.WriteString(c, s); err != nil {
			t.Fatal(err)
		}
	}
	readLine("idle timeout 10s")
	p.expect(stepTimeout, "open "+me+" (idle timeout 10s)")
	send("ping\r\n")
	readLine("echo: ping")

	// A one-shot timer on the connection's loop.
	send("later 20ms\n")
	readLine("reminder in 20ms")
	readLine("reminder after 20ms")

	// A per-connection idle timeout: the server closes the connection once it has been
	// silent that long, and reports why.
	send("idle 200ms\n")
	readLine("idle timeout now 200ms")
	if line, err := r.ReadString('\n'); err != io.EOF {
		t.Fatalf("after the idle timeout: got %q, %v; want EOF", line, err)
	}
	p.expectExact(stepTimeout, "closed "+me+": idle timeout (200ms)")
}

// httpClient is a client without keep-alive (no idle connection outlives the test) and with
// a bound on every request.
func httpClient(t *testing.T) *http.Client {
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: stepTimeout}
}

// get sends a request and returns the status and the whole body.
func get(t *testing.T, c *http.Client, method, url, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
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
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func driveHTTPHello(t *testing.T, p *proc) {
	c := httpClient(t)
	base := "http://" + p.addr
	cases := []struct {
		path, ua   string
		status     int
		body       string
		serverHdr  string
		wantLength string
	}{
		{"/", "", 200, "Hello, World!\n", "http-hello", "14"},
		{"/hello?name=gopher", "", 200, "Hello, gopher!\n", "http-hello", ""},
		{"/hello", "", 200, "Hello, stranger!\n", "http-hello", ""},
		{"/agent", "examples-test/1", 200, "Your User-Agent: examples-test/1\n", "http-hello", ""},
		{"/missing", "", 404, "not found\n", "http-hello", ""},
	}
	for _, tc := range cases {
		status, hdr, body := get(t, c, "GET", base+tc.path, "", "User-Agent", tc.ua)
		if status != tc.status || body != tc.body {
			t.Errorf("GET %s = %d %q, want %d %q", tc.path, status, body, tc.status, tc.body)
		}
		if got := hdr.Get("Server"); got != tc.serverHdr {
			t.Errorf("GET %s: Server %q, want %q", tc.path, got, tc.serverHdr)
		}
		if tc.wantLength != "" && hdr.Get("Content-Length") != tc.wantLength {
			t.Errorf("GET %s: Content-Length %q, want %q", tc.path, hdr.Get("Content-Length"), tc.wantLength)
		}
	}
}

func driveHTTPMux(t *testing.T, p *proc) {
	c := httpClient(t)
	base := "http://" + p.addr
	if status, _, body := get(t, c, "GET", base+"/", ""); status != 200 || body != "Hello from net/http on the reactor!\n" {
		t.Fatalf("GET / = %d %q", status, body)
	}

	// Park one request in the blocking handler: it holds a worker for up to a minute.
	slow := dial(t, p.addr)
	if _, err := io.WriteString(slow, "GET /slow?d=1m HTTP/1.1\r\nHost: example\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	p.expect(stepTimeout, "slow: blocking a worker for 1m0s")

	// Meanwhile the loop and the other workers keep serving: a fast handler, another
	// blocking one that finishes, and a request body.
	if status, _, body := get(t, c, "GET", base+"/fast", ""); status != 200 || body != "fast\n" {
		t.Fatalf("GET /fast = %d %q", status, body)
	}
	if status, _, body := get(t, c, "GET", base+"/slow?d=20ms", ""); status != 200 || body != "slept 20ms\n" {
		t.Fatalf("GET /slow?d=20ms = %d %q", status, body)
	}
	if status, _, body := get(t, c, "POST", base+"/echo", "a body\n"); status != 200 || body != "a body\n" {
		t.Fatalf("POST /echo = %d %q", status, body)
	}
	if status, _, _ := get(t, c, "GET", base+"/slow?d=forever", ""); status != 400 {
		t.Fatalf("GET /slow?d=forever = %d, want 400", status)
	}

	// The parked request is still running; the client leaving cancels its context.
	slow.Close()
	p.expect(stepTimeout, "slow: client gone")
}

// driveKV drives the Redis-like line server: pipelined commands in one write, a command split
// over several writes, QUIT, and a line over the 4 KiB limit.
func driveKV(t *testing.T, p *proc) {
	c := dial(t, p.addr)
	r := bufio.NewReader(c)
	expect := func(want ...string) {
		t.Helper()
		for _, w := range want {
			line, err := r.ReadString('\n')
			if err != nil || line != w+"\r\n" {
				t.Fatalf("reply %q, %v; want %q\n%s", line, err, w, p.output())
			}
		}
	}
	io.WriteString(c, "PING\r\nSET greeting hello\r\nGET greeting\nGET missing\r\nDEL greeting other\r\nNOPE\r\n")
	expect("+PONG", "+OK", "$5", "hello", "$-1", ":1", `-ERR unknown command or wrong number of arguments for "NOPE"`)
	for _, part := range []string{"SE", "T k ", "v\r", "\nGET k\r\n"} {
		io.WriteString(c, part)
	}
	expect("+OK", "$1", "v")
	io.WriteString(c, "QUIT\r\nPING\r\n")
	expect("+OK")
	if b, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("after QUIT: %q %v, want EOF", b, err)
	}

	long := dial(t, p.addr)
	lr := bufio.NewReader(long)
	io.WriteString(long, "PING\r\nSET k "+strings.Repeat("x", 5000)+"\r\n")
	for _, want := range []string{"+PONG\r\n", "-ERR line too long\r\n"} {
		if line, err := lr.ReadString('\n'); line != want {
			t.Fatalf("long line: %q, %v; want %q", line, err, want)
		}
	}
	if _, err := lr.ReadByte(); err != io.EOF {
		t.Fatalf("after the long line: %v, want EOF", err)
	}
}

// driveJSONAPI drives the to-do API. native: the router's 404/405 bodies are JSON (the
// ServeMux's are text). hook: the codec's own errors are JSON (WithErrorBody; the versions
// without it answer text/plain).
func driveJSONAPI(native, hook bool) func(t *testing.T, p *proc) {
	return func(t *testing.T, p *proc) {
		c := httpClient(t)
		base := "http://" + p.addr
		steps := []struct {
			method, path, body string
			status             int
			want               string
		}{
			{"POST", "/todos", `{"title":"write docs"}`, 201, `{"id":1,"title":"write docs","done":false}`},
			{"POST", "/todos", `{"title":"ship"}`, 201, `{"id":2,"title":"ship","done":false}`},
			{"POST", "/todos", `not json`, 400, `{"error":"want a JSON object with a non-empty title"}`},
			{"GET", "/todos", "", 200, `[{"id":1,"title":"write docs","done":false},{"id":2,"title":"ship","done":false}]`},
			{"GET", "/todos/2", "", 200, `{"id":2,"title":"ship","done":false}`},
			{"DELETE", "/todos/1", "", 204, ""},
			{"GET", "/todos/1", "", 404, `{"error":"not found"}`},
			{"GET", "/todos/abc", "", 404, `{"error":"not found"}`},
			{"HEAD", "/todos/2", "", 200, ""},
		}
		for _, s := range steps {
			status, hdr, body := get(t, c, s.method, base+s.path, s.body)
			if status != s.status || strings.TrimSpace(body) != s.want {
				t.Errorf("%s %s = %d %q; want %d %q", s.method, s.path, status, body, s.status, s.want)
			}
			if s.want != "" && hdr.Get("Content-Type") != "application/json" {
				t.Errorf("%s %s: Content-Type %q", s.method, s.path, hdr.Get("Content-Type"))
			}
		}
		// 405 with Allow from both routers; the body is JSON only from the native router.
		status, hdr, body := get(t, c, "PUT", base+"/todos/2", "")
		if status != 405 || !strings.Contains(hdr.Get("Allow"), "DELETE") || !strings.Contains(hdr.Get("Allow"), "GET") {
			t.Errorf("PUT /todos/2 = %d Allow %q", status, hdr.Get("Allow"))
		}
		if native && strings.TrimSpace(body) != `{"error":"method not allowed"}` {
			t.Errorf("PUT /todos/2 body %q", body)
		}
		if status, _, body := get(t, c, "GET", base+"/nowhere", ""); status != 404 || native != (strings.TrimSpace(body) == `{"error":"not found"}`) {
			t.Errorf("GET /nowhere = %d %q (native router: %v)", status, body, native)
		}
		// A request the codec refuses itself (no Host): JSON with the hook, text/plain without.
		raw := dial(t, p.addr)
		io.WriteString(raw, "GET /todos HTTP/1.1\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(raw), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantType, wantBody := "text/plain; charset=utf-8", "Bad Request: missing Host header\n"
		if hook {
			wantType, wantBody = "application/json", `{"error":"missing Host header"}`
		}
		if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != wantType || string(b) != wantBody {
			t.Errorf("no Host: %d %q %q; want 400 %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), b, wantType, wantBody)
		}
	}
}
