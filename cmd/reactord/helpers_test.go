package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// binary is the reactord executable built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	if os.Getenv(envActivate) != "" {
		os.Exit(execActivated())
	}
	// Processes started by an upgrade outlive their parent daemon: as a subreaper, this test
	// process becomes their parent then, and reaps them (see pidProc).
	becomeSubreaper()
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

// outFile collects a process's output in a file, for inspection while it runs. A file, not a
// pipe: a process started by an upgrade inherits the daemon's stdout and stderr and outlives
// it, and with a pipe exec.Cmd.Wait would wait for that successor too (and closing the pipe
// would kill it with SIGPIPE at its next log line).
type outFile struct{ f *os.File }

func newOutFile(t *testing.T, name string) *outFile {
	f, err := os.Create(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &outFile{f}
}

// String returns everything written so far.
func (o *outFile) String() string {
	b, _ := os.ReadFile(o.f.Name())
	return string(b)
}

// proc is a running reactord process.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	addrs  []string // bound public addresses, from -addr-file
	addr   string   // the first TCP one
	admin  string   // the admin listener's address ("admin=" line of the addr file), if any
	tls    []string // the HTTPS listeners' addresses ("tls=" lines), if any
	stdout *outFile
	stderr *outFile
	done   chan struct{}
	err    error // Wait's result, valid after done is closed
}

// start runs reactord with args plus -addr-file, waits until the addresses are published and
// registers a cleanup that kills the process if the test has not stopped it.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startWith(t, startOpts{}, args...)
}

// startOpts are what startWith adds to a plain start.
type startOpts struct {
	env      []string   // added to the environment
	files    []*os.File // descriptors 3, 4, ...
	activate bool       // play systemd: LISTEN_PID=<the daemon's pid>, LISTEN_FDS=len(files)
	names    string     // LISTEN_FDNAMES, with activate
	exe      string     // the binary to run instead of the one TestMain built
}

// startWith is start with an environment, inherited descriptors, or socket activation.
func startWith(t *testing.T, o startOpts, args ...string) *proc {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addrs")
	args = append([]string{"-addr-file", addrFile, "-log-format", "json"}, args...)
	d := &proc{t: t, stdout: newOutFile(t, "stdout"), stderr: newOutFile(t, "stderr"), done: make(chan struct{})}
	d.cmd = daemonCmd(t, o, args)
	d.cmd.Stdout, d.cmd.Stderr = d.stdout.f, d.stderr.f
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
			for _, f := range strings.Fields(string(b)) {
				if a, ok := strings.CutPrefix(f, "admin="); ok {
					d.admin = a
				} else if a, ok := strings.CutPrefix(f, "tls="); ok {
					d.tls = append(d.tls, a)
				} else {
					d.addrs = append(d.addrs, f)
				}
			}
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

// daemonCmd builds the command that runs reactord with o's environment, descriptors and
// socket activation.
func daemonCmd(t *testing.T, o startOpts, args []string) *exec.Cmd {
	t.Helper()
	exe := binary
	if o.exe != "" {
		exe = o.exe
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), o.env...)
	if o.activate {
		// systemd sets LISTEN_PID in the child between fork and exec; Go cannot run code
		// there, so the test binary runs in between instead (execActivated).
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(self, args...)
		cmd.Env = append(os.Environ(), o.env...)
		cmd.Env = append(cmd.Env, envActivate+"="+exe, fmt.Sprintf("LISTEN_FDS=%d", len(o.files)))
		if o.names != "" {
			cmd.Env = append(cmd.Env, "LISTEN_FDNAMES="+o.names)
		}
	}
	cmd.ExtraFiles = o.files
	return cmd
}

// runBinaryWith runs reactord to completion and returns stdout, stderr and the exit code.
func runBinaryWith(t *testing.T, o startOpts, args ...string) (string, string, int) {
	t.Helper()
	var out, errb strings.Builder
	cmd := daemonCmd(t, o, args)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// envActivate makes the test binary a stand-in for systemd's last step: set LISTEN_PID to its
// own pid and exec the daemon named by the variable, with the same arguments and descriptors.
const envActivate = "REACTORD_TEST_ACTIVATE"

func execActivated() int {
	bin := os.Getenv(envActivate)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envActivate+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, fmt.Sprintf("LISTEN_PID=%d", os.Getpid()))
	err := unix.Exec(bin, append([]string{bin}, os.Args[1:]...), env)
	fmt.Fprintln(os.Stderr, "exec", bin, err)
	return 2
}

// pidProc is a daemon process the test did not start itself: one started by an upgrade. Once
// the process that started it exits, it is reparented to this test process (a subreaper),
// which waits for it with wait4.
type pidProc struct {
	t    *testing.T
	pid  int
	done chan struct{}
	ws   unix.WaitStatus
}

// adopt follows pid and registers a cleanup that kills it if the test has not stopped it.
func adopt(t *testing.T, pid int) *pidProc {
	p := &pidProc{t: t, pid: pid, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			_, err := unix.Wait4(pid, &p.ws, 0, nil)
			switch err {
			case unix.EINTR:
				continue
			case unix.ECHILD:
				// Not ours yet: its parent (the old daemon) still runs, or has just exited
				// and the kernel is reparenting it. Ask again shortly.
				if unix.Kill(pid, 0) == unix.ESRCH {
					return
				}
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return
		}
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			unix.Kill(pid, unix.SIGKILL)
			<-p.done
		}
	})
	return p
}

func (p *pidProc) signal(sig unix.Signal) {
	p.t.Helper()
	if err := unix.Kill(p.pid, sig); err != nil {
		p.t.Fatalf("kill %d: %v", p.pid, err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *pidProc) wait(timeout time.Duration) int {
	p.t.Helper()
	timeout = testsupport.Scale(timeout)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("process %d did not exit within %v", p.pid, timeout)
	}
	return p.ws.ExitStatus()
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
