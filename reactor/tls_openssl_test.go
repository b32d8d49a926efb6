package reactor

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// sClient is a running `openssl s_client`, fed through its standard input, its output kept.
type sClient struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	out   bytes.Buffer
	done  chan struct{} // closed when the process has exited
}

// lockedWriter collects a process's output for sClient.
type lockedWriter struct{ s *sClient }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.out.Write(p)
}

func startSClient(t *testing.T, addr string, args ...string) *sClient {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed (apt-get install openssl; .ci/run installs it)")
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, testCerts(t).caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	// Interactive mode (no -quiet): lines "R" and "K" are commands.
	all := append([]string{"s_client", "-connect", addr, "-CAfile", ca, "-verify_return_error"}, args...)
	s := &sClient{cmd: exec.Command(bin, all...), done: make(chan struct{})}
	s.cmd.Stdout = lockedWriter{s}
	s.cmd.Stderr = lockedWriter{s}
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
	return s
}

func (s *sClient) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

func (s *sClient) waitFor(t *testing.T, what string) {
	t.Helper()
	testsupport.Eventually(t, 0, fmt.Sprintf("openssl output %q", what), func() bool { return strings.Contains(s.output(), what) })
}

// TestTLSOpenSSLClient: openssl s_client over TLS 1.2 and 1.3 with SNI and ALPN: the handshake
// and the negotiated values, seen from both ends, and an echo.
func TestTLSOpenSSLClient(t *testing.T) {
	for _, v := range []struct {
		flag  string
		vers  uint16
		label string
	}{{"-tls1_2", tls.VersionTLS12, "TLSv1.2"}, {"-tls1_3", tls.VersionTLS13, "TLSv1.3"}} {
		t.Run(v.label, func(t *testing.T) {
			var o openState
			cfg := serverTLS(t)
			cfg.NextProtos = []string{"http/1.1", "echo/1"}
			_, addr := startTLSServer(t, o.handler(echoData), cfg, WithLoops(1))
			sc := startSClient(t, addr, v.flag, "-servername", "example.test", "-alpn", "echo/1")
			sc.waitFor(t, "Verify return code: 0 (ok)")
			io.WriteString(sc.stdin, "ping from openssl\n")
			sc.waitFor(t, "ping from openssl") // s_client prints only what it receives
			out := sc.output()
			if !strings.Contains(out, "New, "+v.label) || !strings.Contains(out, "ALPN protocol: echo/1") {
				t.Fatalf("openssl output lacks the version or ALPN:\n%s", out)
			}
			_, _, states := o.snapshot()
			if len(states) != 1 || states[0].Version != v.vers || states[0].ServerName != "example.test" ||
				states[0].NegotiatedProtocol != "echo/1" {
				t.Fatalf("server saw %+v", states)
			}
			sc.stdin.Close() // s_client closes the connection at end of input
			select {
			case <-sc.done:
			case <-time.After(testsupport.Scale(10 * time.Second)):
				t.Fatal("s_client did not exit")
			}
			testsupport.Eventually(t, 0, "OnClose", func() bool { _, c, _ := o.snapshot(); return len(c) == 1 })
		})
	}
}

// TestTLSRenegotiationRefused: a TLS 1.2 client asking to renegotiate (a ClientHello after the
// handshake) is refused with an alert and the connection closes promptly with an error.
func TestTLSRenegotiationRefused(t *testing.T) {
	var o openState
	_, addr := startTLSServer(t, o.handler(echoData), serverTLS(t), WithLoops(1))
	sc := startSClient(t, addr, "-tls1_2", "-servername", "example.test")
	sc.waitFor(t, "Verify return code: 0 (ok)")
	io.WriteString(sc.stdin, "R\n")
	sc.waitFor(t, "RENEGOTIATING")
	testsupport.Eventually(t, 0, "connection closed", func() bool { _, c, _ := o.snapshot(); return len(c) == 1 })
	_, closed, _ := o.snapshot()
	if closed[0] == nil || closed[0] == io.EOF {
		t.Fatalf("OnClose err = %v, want the refusal", closed[0])
	}
	select {
	case <-sc.done:
	case <-time.After(testsupport.Scale(10 * time.Second)):
		t.Fatalf("s_client still connected:\n%s", sc.output())
	}
}

// TestTLSKeyUpdate: a TLS 1.3 KeyUpdate that requests one back is answered by crypto/tls from
// inside the loop's read (its record goes out with the next flush), and the connection goes on.
func TestTLSKeyUpdate(t *testing.T) {
	var o openState
	_, addr := startTLSServer(t, o.handler(echoData), serverTLS(t), WithLoops(1))
	sc := startSClient(t, addr, "-tls1_3", "-servername", "example.test", "-msg")
	sc.waitFor(t, "Verify return code: 0 (ok)")
	io.WriteString(sc.stdin, "before\n")
	sc.waitFor(t, "before\n")
	io.WriteString(sc.stdin, "K\n")
	// The server's own KeyUpdate arrives with nothing else to send: crypto/tls wrote it
	// during the loop's read, and the loop flushed it.
	sc.waitFor(t, "<<< TLS 1.3, Handshake [length 0005], KeyUpdate")
	io.WriteString(sc.stdin, "after the key update\n")
	sc.waitFor(t, "after the key update\n")
	if _, closed, _ := o.snapshot(); len(closed) != 0 {
		t.Fatalf("connection closed: %v\n%s", closed, sc.output())
	}
}
