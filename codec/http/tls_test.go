package http

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
	"github.com/reactord/reactord/reactor"
)

// startTLS runs a Server with one HTTPS listener on 127.0.0.1:0.
func startTLS(t testing.TB, h Handler, cfg *tls.Config, opts ...Option) (*Server, string) {
	t.Helper()
	s, err := NewServer(h, opts...)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	addr, err := s.ListenTLS("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatalf("ListenTLS: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, addr.String()
}

// httpsClient is a net/http client trusting the test CA, with its own transport (closed at the
// end of the test) and the given TLS version bounds. Every host name reaches addr, so URLs
// name example.test (the certificate's name, sent by SNI).
func httpsClient(t testing.TB, addr string, minV, maxV uint16, certs ...tls.Certificate) *nethttp.Client {
	cfg := testsupport.TestPKI(t).ClientConfig()
	cfg.MinVersion, cfg.MaxVersion = minV, maxV
	cfg.Certificates = certs
	d := &net.Dialer{Timeout: testsupport.Scale(5 * time.Second)}
	tr := &nethttp.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}}
	t.Cleanup(tr.CloseIdleConnections)
	return &nethttp.Client{Transport: tr, Timeout: testsupport.Scale(20 * time.Second)}
}

// stateSeen records what handlers saw of the connection's TLS state.
type stateSeen struct {
	mu sync.Mutex
	st []*tls.ConnectionState
}

func (s *stateSeen) add(st *tls.ConnectionState) {
	s.mu.Lock()
	s.st = append(s.st, st)
	s.mu.Unlock()
}

func (s *stateSeen) all() []*tls.ConnectionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*tls.ConnectionState(nil), s.st...)
}

// TestTLSNativeAndAdapter: Go's http.Client over TLS 1.2 and 1.3 against a native handler and
// an adapted net/http handler: keep-alive requests on one connection, HTTP/1.1 by ALPN
// although the client offers h2, and the negotiated state in w.TLS() and r.TLS.
func TestTLSNativeAndAdapter(t *testing.T) {
	for _, vers := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, kind := range []string{"native", "adapter"} {
			t.Run(tls.VersionName(vers)+"/"+kind, func(t *testing.T) {
				var seen stateSeen
				var h Handler = HandlerFunc(func(w *ResponseWriter, r *Request) {
					seen.add(w.TLS())
					w.WriteString("native " + string(r.Path()))
				})
				if kind == "adapter" {
					h = Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
						seen.add(r.TLS)
						io.WriteString(w, "adapter "+r.URL.Path)
					}))
				}
				cfg := testsupport.TestPKI(t).ServerConfig()
				cfg.NextProtos = []string{"h2", "http/1.1"} // as a net/http config would have it
				_, addr := startTLS(t, h, cfg)
				cl := httpsClient(t, addr, vers, vers)
				for i := 0; i < 3; i++ {
					resp, err := cl.Get(fmt.Sprintf("https://example.test:%s/p%d", port(addr), i))
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if want := fmt.Sprintf("%s /p%d", kind, i); string(body) != want || resp.ProtoMajor != 1 {
						t.Fatalf("got %s %q, want HTTP/1.1 %q", resp.Proto, body, want)
					}
					if resp.TLS == nil || resp.TLS.NegotiatedProtocol != "http/1.1" {
						t.Fatalf("client state %+v, want ALPN http/1.1", resp.TLS)
					}
				}
				states := seen.all()
				if len(states) != 3 {
					t.Fatalf("%d requests seen", len(states))
				}
				for _, st := range states {
					if st == nil || st != states[0] {
						t.Fatalf("requests of one connection saw %v, want one shared state", states)
					}
				}
				st := states[0]
				if st.Version != vers || st.ServerName != "example.test" || st.NegotiatedProtocol != "http/1.1" ||
					!st.HandshakeComplete || st.CipherSuite == 0 {
					t.Fatalf("state: %+v", st)
				}
			})
		}
	}
}

// port returns the port of a host:port address.
func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// TestTLSClientCertificate: with client authentication the handlers see the client's chain.
func TestTLSClientCertificate(t *testing.T) {
	pki := testsupport.TestPKI(t)
	var seen stateSeen
	h := Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		seen.add(r.TLS)
	}))
	cfg := pki.ServerConfig()
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = pki.Pool
	_, addr := startTLS(t, h, cfg)
	cl := httpsClient(t, addr, 0, 0, pki.Client)
	resp, err := cl.Get("https://example.test:" + port(addr) + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	st := seen.all()
	if len(st) != 1 || len(st[0].PeerCertificates) == 0 || st[0].PeerCertificates[0].Subject.CommonName != "client.test" {
		t.Fatalf("r.TLS = %+v", st)
	}
}

// TestTLSPlaintextGets400: plain HTTP on the HTTPS port is answered with net/http's 400 and
// the connection closed; the handler never runs.
func TestTLSPlaintextGets400(t *testing.T) {
	ran := false
	_, addr := startTLS(t, HandlerFunc(func(w *ResponseWriter, r *Request) { ran = true }), testsupport.TestPKI(t).ServerConfig())
	cl := dialClient(t, addr)
	cl.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	got, _ := io.ReadAll(cl.c)
	if string(got) != PlaintextOnTLSReply {
		t.Fatalf("got %q", got)
	}
	if ran {
		t.Fatal("handler ran for a plaintext request")
	}
}

// TestTLSConfigALPN: TLSConfig keeps only the protocols the codec speaks, and leaves a config
// that is right untouched.
func TestTLSConfigALPN(t *testing.T) {
	cases := []struct {
		in, want []string
	}{
		{nil, []string{"http/1.1"}},
		{[]string{"h2"}, []string{"http/1.1"}},
		{[]string{"h2", "http/1.1"}, []string{"http/1.1"}},
		{[]string{"http/1.1", "http/1.0", "http/1.1"}, []string{"http/1.1", "http/1.0"}},
	}
	for _, c := range cases {
		in := &tls.Config{NextProtos: c.in}
		out := TLSConfig(in)
		if !slicesEqual(out.NextProtos, c.want) {
			t.Errorf("TLSConfig(%q).NextProtos = %q, want %q", c.in, out.NextProtos, c.want)
		}
		if !slicesEqual(in.NextProtos, c.in) {
			t.Errorf("TLSConfig modified its argument: %q", in.NextProtos)
		}
	}
	right := &tls.Config{NextProtos: []string{"http/1.1"}}
	if TLSConfig(right) != right {
		t.Error("a config with the right protocols was cloned")
	}
	if TLSConfig(nil) != nil {
		t.Error("TLSConfig(nil) != nil")
	}
	s, err := NewServer(HandlerFunc(func(*ResponseWriter, *Request) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, cfg := range []*tls.Config{nil, {}} {
		if _, err := s.ListenTLS("tcp", "127.0.0.1:0", cfg); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ListenTLS(%v) err = %v, want ErrInvalidArgument", cfg, err)
		}
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// TestTLSSendFile: a file sent with SendFile arrives intact over TLS (the reactor streams it
// through the loop in sealed chunks), with a slow reader pacing it.
func TestTLSSendFile(t *testing.T) {
	content := make([]byte, 3<<20+17)
	rand.Read(content)
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	h := HandlerFunc(func(w *ResponseWriter, r *Request) {
		f, err := os.Open(path)
		if err != nil {
			w.SetStatus(500)
			return
		}
		defer f.Close()
		w.Set("Content-Type", "application/octet-stream")
		w.SetContentLength(int64(len(content)))
		if err := w.SendFile(f, 0, int64(len(content))); err != nil {
			t.Errorf("SendFile: %v", err)
		}
	})
	_, addr := startTLS(t, h, testsupport.TestPKI(t).ServerConfig(),
		WithReactorOptions(reactor.WithWatermarks(128<<10, 0)))
	conn, err := tls.Dial("tcp", addr, testsupport.TestPKI(t).ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(testsupport.Deadline(30 * time.Second))
	io.WriteString(conn, "GET /blob HTTP/1.1\r\nHost: x\r\n\r\nGET /blob HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReaderSize(conn, 4096)
	for i := 0; i < 2; i++ {
		resp, err := nethttp.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("response %d: %d bytes, err %v (want %d identical bytes)", i, len(got), err, len(content))
		}
	}
}

// TestTLSHijackState: a hijacked connection over TLS reports the TLS state through
// ConnectionState, as net/http's *tls.Conn does, and carries plaintext.
func TestTLSHijackState(t *testing.T) {
	h := Adapt(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		c, brw, err := w.(nethttp.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		st := c.(interface{ ConnectionState() tls.ConnectionState }).ConnectionState()
		fmt.Fprintf(brw, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n%s %s", tls.VersionName(st.Version), st.ServerName)
		brw.Flush()
	}))
	_, addr := startTLS(t, h, testsupport.TestPKI(t).ServerConfig())
	resp, err := httpsClient(t, addr, tls.VersionTLS13, 0).Get("https://example.test:" + port(addr) + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "TLS 1.3 example.test" {
		t.Fatalf("body %q", body)
	}
}

// TestTLSObserver: RequestInfo.TLS gives the observer the connection's state.
func TestTLSObserver(t *testing.T) {
	var mu sync.Mutex
	var vers uint16
	obs := func(info *RequestInfo) {
		if st := info.TLS(); st != nil {
			mu.Lock()
			vers = st.Version
			mu.Unlock()
		}
	}
	_, addr := startTLS(t, HandlerFunc(func(w *ResponseWriter, r *Request) {}), testsupport.TestPKI(t).ServerConfig(), WithObserver(obs))
	resp, err := httpsClient(t, addr, tls.VersionTLS12, tls.VersionTLS12).Get("https://example.test:" + port(addr) + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	testsupport.Eventually(t, 0, "observer saw TLS 1.2", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return vers == tls.VersionTLS12
	})
}

// TestTLSCurl: curl over HTTPS (it offers h2 and http/1.1 by ALPN and settles on HTTP/1.1),
// TLS 1.2 and 1.3, SNI by --resolve.
func TestTLSCurl(t *testing.T) {
	bin, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed (apt-get install curl; .ci/run installs it)")
	}
	pki := testsupport.TestPKI(t)
	ca, _, _ := pki.WriteFiles(t, t.TempDir())
	var seen stateSeen
	_, addr := startTLS(t, HandlerFunc(func(w *ResponseWriter, r *Request) {
		seen.add(w.TLS())
		w.WriteString("hello over tls\n")
	}), pki.ServerConfig())
	for _, v := range []struct {
		flags []string
		vers  uint16
	}{
		{[]string{"--tlsv1.2", "--tls-max", "1.2"}, tls.VersionTLS12},
		{[]string{"--tlsv1.3"}, tls.VersionTLS13},
	} {
		url := "https://example.test:" + port(addr) + "/"
		args := append([]string{"-sS", "--cacert", ca, "--resolve", "example.test:" + port(addr) + ":127.0.0.1",
			"-w", "\n%{http_version} %{response_code}", "--max-time", "20"}, v.flags...)
		out, err := exec.Command(bin, append(args, url)...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", v.flags, err, out)
		}
		if string(out) != "hello over tls\n\n1.1 200" {
			t.Fatalf("curl %v: %q", v.flags, out)
		}
		st := seen.all()
		if last := st[len(st)-1]; last.Version != v.vers || last.ServerName != "example.test" || last.NegotiatedProtocol != "http/1.1" {
			t.Fatalf("curl %v: server saw %+v", v.flags, last)
		}
	}
}
