package proxy

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	nethttp "net/http"
	"os"
	"path/filepath"
	"testing"

	codec "github.com/reactord/reactord/codec/http"
)

// checkReframed parses every request the codec accepts from in, forwards it with
// appendRequest, and checks that each forwarded message is exactly one request for both the
// codec and net/http (a typical upstream), with the same method, target and body: whatever
// framing trick the client tried, the upstream sees one request per request the proxy read.
func checkReframed(t *testing.T, in []byte) int {
	t.Helper()
	p, _ := codec.NewParser(codec.Limits{MaxBodyBytes: 1 << 20})
	fw := &forward{clientIP: []byte("192.0.2.1"), proto: "http", emptyHost: "up:1"}
	forwarded := 0
	rest := in
	for len(rest) > 0 {
		n, r, err := p.Parse(rest)
		if err != nil || r == nil {
			break
		}
		out, _ := appendRequest(nil, r, fw)
		method, body := string(r.Method()), string(r.Body())
		var target bytes.Buffer
		target.Write(appendOriginTarget(nil, r))
		q, _ := codec.NewParser(codec.Limits{MaxBodyBytes: 1 << 20})
		m, fr, ferr := q.Parse(out)
		if ferr != nil || fr == nil || m != len(out) {
			t.Fatalf("forwarded bytes are not one request for the codec (n=%d/%d, %v):\n%q\nfrom %q", m, len(out), ferr, out, in)
		}
		if string(fr.Method()) != method || string(fr.Body()) != body {
			t.Fatalf("forwarded request changed: %q %q", fr.Method(), fr.Body())
		}
		br := bufio.NewReader(bytes.NewReader(out))
		nr, nerr := nethttp.ReadRequest(br)
		if nerr != nil {
			t.Fatalf("net/http rejects the forwarded request: %v\n%q", nerr, out)
		}
		nb, _ := io.ReadAll(nr.Body)
		if string(nb) != body || nr.Method != method || nr.RequestURI != target.String() || br.Buffered() != 0 {
			t.Fatalf("net/http reads %s %s body %q with %d bytes left\n%q", nr.Method, nr.RequestURI, nb, br.Buffered(), out)
		}
		forwarded++
		rest = rest[n:]
		if !r.KeepAlive() {
			break
		}
	}
	return forwarded
}

// TestReframeSharedCorpora runs every request of ../shared/conformance through the check. The
// corpora are optional here (the codec's conformance tests require them under CI).
func TestReframeSharedCorpora(t *testing.T) {
	// ../shared/conformance next to the module root, as the codec's conformance tests look
	// for it; REACTORD_CONFORMANCE_DIR points elsewhere (a worktree's own parent has none).
	dir := filepath.Join("..", "..", "..", "..", "..", "shared", "conformance")
	if d := os.Getenv("REACTORD_CONFORMANCE_DIR"); d != "" {
		dir = d
	}
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("REACTORD_REQUIRE_CONFORMANCE") == "1" {
			t.Fatalf("conformance material required but %s is missing", dir)
		}
		t.Skipf("no %s: skipping", dir)
	}
	type rawCase struct {
		Raw      string `json:"raw_bytes"`
		Followup string `json:"followup_bytes"`
	}
	total, accepted := 0, 0
	for _, f := range []string{"http11probe_cases.json", "llhttp_requests.json", "pico_cases.json"} {
		var cases []rawCase
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &cases); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, c := range cases {
			raw, err := base64.StdEncoding.DecodeString(c.Raw)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			fu, _ := base64.StdEncoding.DecodeString(c.Followup)
			total++
			accepted += checkReframed(t, append(raw, fu...))
		}
	}
	t.Logf("%d corpus streams, %d requests accepted and forwarded as exactly one request each", total, accepted)
	if total < 300 {
		t.Fatalf("only %d cases read", total)
	}
}

// FuzzReframe: any request the codec accepts is forwarded as exactly one request.
func FuzzReframe(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: x-a\r\nX-A: 1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: v\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
		"GET http://h/x?y HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"GET / HTTP/1.0\r\nX-Forwarded-For: 1.1.1.1\r\nVia: 1.0 a\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkReframed(t, in) })
}
