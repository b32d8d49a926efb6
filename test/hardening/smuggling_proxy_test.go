//go:build linux

package hardening_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// recordingUpstream is the application behind the proxy: net/http's request reader on every
// connection (a lenient, typical upstream), recording each request it reads and answering
// each with 200. A request whose body never completes — the proxy streams bodies as they
// arrive, and closes the upstream connection when the client's body turns out malformed or
// cut — is not a request read: it is counted apart (cut), and its connection is over.
type recordingUpstream struct {
	addr string
	ln   net.Listener
	mu   sync.Mutex
	seen []string // "METHOD target host"
	cut  int      // requests whose body the proxy broke off
	wg   sync.WaitGroup
}

func startRecordingUpstream(t *testing.T) *recordingUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &recordingUpstream{addr: ln.Addr().String(), ln: ln}
	t.Cleanup(func() {
		ln.Close()
		u.wg.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if _, err := io.Copy(io.Discard, req.Body); err != nil {
						u.mu.Lock()
						u.cut++
						u.mu.Unlock()
						return
					}
					u.mu.Lock()
					u.seen = append(u.seen, req.Method+" "+req.RequestURI+" "+req.Host)
					u.mu.Unlock()
					resp := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
					if req.Method == "HEAD" {
						resp = resp[:len(resp)-2]
					}
					if _, err := io.WriteString(c, resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return u
}

func (u *recordingUpstream) take() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.seen
	u.seen = nil
	return s
}

// streamThroughProxy sends stream on a new connection and reads until the daemon closes it
// (or the deadline), returning the responses.
func streamThroughProxy(t *testing.T, name, addr, stream string) []response {
	t.Helper()
	c, err := dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetWriteDeadline(testsupport.Deadline(5 * time.Second))
	c.Write([]byte(stream))
	c.CloseWrite() // the stream is complete: an incomplete request ends here
	data, closed, err := readToClose(c, testsupport.Deadline(5*time.Second))
	if err != nil || !closed {
		t.Fatalf("%s: closed=%v err=%v after %q (got %q)", name, closed, err, stream, data)
	}
	resps, err := parseResponses(data)
	if err != nil {
		t.Fatalf("%s: stream is not exactly whole responses: %v\n%q", name, err, data)
	}
	return resps
}

// TestSmugglingThroughProxy sends every smuggling vector, and every request stream of the
// shared conformance corpora, to the daemon proxying everything to a net/http upstream: the
// upstream must read exactly one request per response the client got from it, and never the
// smuggled request (Host: victim). Whatever framing trick a client tries, the proxy forwards
// only the requests it parsed itself, re-framed.
func TestSmugglingThroughProxy(t *testing.T) {
	up := startRecordingUpstream(t)
	d := startDaemon(t, daemonOpts{args: []string{"-proxy", "/=" + up.addr, "-loops", "1"}})
	type stream struct{ name, bytes string }
	var streams []stream
	for _, v := range smuggleVectors() {
		streams = append(streams, stream{"vector " + v.name, v.stream})
	}
	for _, s := range sharedCorpusStreams(t) {
		streams = append(streams, s)
	}
	forwarded, skipped := 0, 0
	for _, s := range streams {
		if strings.Contains(s.bytes, "HEAD ") {
			// parseResponses reads every response as a GET's (a HEAD's has no body).
			skipped++
			continue
		}
		resps := streamThroughProxy(t, s.name, d.addr, s.bytes)
		seen := up.take()
		fromUpstream := 0
		for _, r := range resps {
			if r.status == 200 && string(r.body) == "ok" {
				fromUpstream++
			}
		}
		if len(seen) != fromUpstream {
			t.Fatalf("%s: the upstream read %d requests %q, the client got %d answers from it\nstream %q",
				s.name, len(seen), seen, fromUpstream, s.bytes)
		}
		for _, r := range seen {
			if strings.HasSuffix(r, " victim") {
				t.Fatalf("%s: the smuggled request reached the upstream: %q", s.name, seen)
			}
		}
		forwarded += len(seen)
	}
	up.mu.Lock()
	cut := up.cut
	up.mu.Unlock()
	t.Logf("FIGURE: smuggling through the proxy: %d streams (%d with HEAD left out), %d requests forwarded, each exactly once, none smuggled; %d streamed bodies broken off (the upstream connection closed mid-body)",
		len(streams)-skipped, skipped, forwarded, cut)
	if st := d.stop(15 * time.Second); st != 0 {
		t.Fatalf("daemon exit status %d; log:\n%s", st, d.logs.String())
	}
}

// sharedCorpusStreams reads the request streams of ../shared/conformance (optional here; the
// codec's conformance tests require the material under CI).
func sharedCorpusStreams(t *testing.T) (out []struct{ name, bytes string }) {
	dir := os.Getenv("REACTORD_CONFORMANCE_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "conformance")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Logf("no conformance material at %s: vectors only", dir)
		return nil
	}
	type rawCase struct {
		ID       string `json:"id"`
		Name     string `json:"name"`
		Raw      string `json:"raw_bytes"`
		Followup string `json:"followup_bytes"`
	}
	for _, f := range []string{"http11probe_cases.json", "llhttp_requests.json", "pico_cases.json"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		var cases []rawCase
		if err := json.Unmarshal(b, &cases); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, c := range cases {
			raw, _ := base64.StdEncoding.DecodeString(c.Raw)
			fu, _ := base64.StdEncoding.DecodeString(c.Followup)
			if len(raw) == 0 {
				continue
			}
			out = append(out, struct{ name, bytes string }{f + " " + c.ID + c.Name, string(raw) + string(fu)})
		}
	}
	return out
}
