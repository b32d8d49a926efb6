package http

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net"
	nethttp "net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// The differential suite: the same net/http handler served by net/http's Server and by Adapt,
// the same raw bytes sent to both, the responses compared field by field (status, headers
// except Date, decoded body, whether the connection closed). What may differ is the list in
// the Adapter doc; the test fails on anything else.

// diffHandler exercises what a handler can see and do.
func diffHandler() nethttp.Handler {
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b, err := io.ReadAll(r.Body)
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fmt.Fprintf(w, "method=%q uri=%q path=%q rawpath=%q query=%q host=%q proto=%q cl=%d te=%q close=%v\n",
			r.Method, r.RequestURI, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.Host, r.Proto,
			r.ContentLength, r.TransferEncoding, r.Close)
		for _, k := range keys {
			fmt.Fprintf(w, "h %s=%q\n", k, r.Header[k])
		}
		fmt.Fprintf(w, "body %d %x readerr=%v trailer=%q\n", len(b), sha256.Sum256(b), err != nil, r.Trailer)
	})
	mux.HandleFunc("/stream", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "part %d\n", i)
			w.(nethttp.Flusher).Flush()
		}
	})
	mux.HandleFunc("/trailers", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "body")
		w.Header().Set("X-Sum", "42")
		w.Header().Set(nethttp.TrailerPrefix+"X-Late", "7")
	})
	mux.HandleFunc("/hints", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Add("Link", "</a.css>; rel=preload")
		w.WriteHeader(nethttp.StatusEarlyHints)
		w.Header().Add("Link", "</b.js>; rel=preload")
		w.WriteHeader(nethttp.StatusEarlyHints)
		io.WriteString(w, "final")
	})
	mux.HandleFunc("/empty", func(w nethttp.ResponseWriter, r *nethttp.Request) {})
	mux.HandleFunc("/nocontent", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.WriteHeader(nethttp.StatusNoContent)
	})
	mux.HandleFunc("/notmodified", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("ETag", `"x"`)
		w.WriteHeader(nethttp.StatusNotModified)
	})
	mux.HandleFunc("/big", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Write(bytes.Repeat([]byte("b"), 100<<10))
	})
	mux.HandleFunc("/setlen", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "exact")
	})
	mux.HandleFunc("/redirect", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		nethttp.Redirect(w, r, "/target?x=1", nethttp.StatusFound)
	})
	mux.HandleFunc("/error", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		nethttp.Error(w, "teapot", nethttp.StatusTeapot)
	})
	mux.HandleFunc("/close", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	mux.HandleFunc("/html", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		io.WriteString(w, "<!DOCTYPE html><html><body>x</body></html>")
	})
	mux.HandleFunc("/cookie", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		nethttp.SetCookie(w, &nethttp.Cookie{Name: "a", Value: "b", Path: "/"})
		w.Header().Add("X-Multi", "1")
		w.Header().Add("X-Multi", "2")
	})
	return mux
}

// diffResp is one response as compared.
type diffResp struct {
	Status  int
	Header  nethttp.Header // without Date
	Body    string
	Trailer nethttp.Header
	Err     string
}

// exchangeRaw sends raw, then a sentinel request that closes the connection, and returns every
// response read until the server closes (the sentinel's included, last).
func exchangeRaw(addr string, raw []byte) ([]diffResp, bool) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return []diffResp{{Err: err.Error()}}, false
	}
	defer c.Close()
	// A bound for requests neither server can answer (a body that never comes).
	c.SetDeadline(time.Now().Add(testsupport.Scale(3 * time.Second)))
	sentinel := "GET /__end HTTP/1.1\r\nHost: end\r\nConnection: close\r\n\r\n"
	c.Write(append(append([]byte(nil), raw...), sentinel...))
	br := bufio.NewReader(c)
	methods := requestMethods(raw)
	var out []diffResp
	for i := 0; ; i++ {
		method := "GET"
		if i < len(methods) {
			method = methods[i]
		}
		resp, err := nethttp.ReadResponse(br, &nethttp.Request{Method: method})
		if err != nil {
			switch {
			case isTimeout(err):
				out = append(out, diffResp{Err: "timeout"})
			case err != io.EOF && !strings.Contains(err.Error(), "reset"):
				out = append(out, diffResp{Err: "read: " + err.Error()})
			}
			return out, true
		}
		b, err := io.ReadAll(resp.Body)
		d := diffResp{Status: resp.StatusCode, Header: resp.Header.Clone(), Body: string(b), Trailer: resp.Trailer}
		if err != nil {
			d.Err = "body: " + err.Error()
		}
		d.Header.Del("Date")
		out = append(out, d)
		if resp.Close {
			return out, true
		}
	}
}

// requestMethods guesses the method of each pipelined request in raw (for HEAD framing).
func requestMethods(raw []byte) []string {
	var m []string
	for _, line := range strings.Split(string(raw), "\r\n") {
		if f := strings.Fields(line); len(f) == 3 && strings.HasPrefix(f[2], "HTTP/") {
			m = append(m, f[0])
		}
	}
	return m
}

// framingFields are header fields whose presence and values depend on how each server frames
// a body (net/http switches to chunked after 2 KiB without a Content-Length, the adapter after
// 32 KiB): listed in the Adapter doc, not compared.
var framingFields = []string{"Content-Length", "Transfer-Encoding"}

func normalize(rs []diffResp) []diffResp {
	for i := range rs {
		for _, f := range framingFields {
			rs[i].Header.Del(f)
		}
		if len(rs[i].Trailer) == 0 {
			rs[i].Trailer = nil
		}
	}
	return rs
}

// differential cases written for the handler's routes.
var diffCases = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /x/y?q=1&r=%20 HTTP/1.1\r\nHost: a:8080\r\nUser-Agent: t\r\nAccept: */*\r\nX-Dup: 1\r\nX-Dup: 2\r\n\r\n",
	"GET /a%2Fb/c HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /p!$'()*,;= HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /q? HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET http://other.example/abs?z HTTP/1.1\r\nHost: a\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /post HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world",
	"POST /post HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: Check\r\n\r\n5\r\nhello\r\n0\r\nCheck: 9\r\n\r\n",
	"PUT /put HTTP/1.1\r\nHost: a\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat("p", 70000),
	"GET / HTTP/1.0\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
	"HEAD /big HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /stream HTTP/1.0\r\n\r\n",
	"GET /trailers HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /hints HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /empty HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /nocontent HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /notmodified HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /big HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /setlen HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /redirect HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /error HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /close HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /html HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /cookie HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /missing/route HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\nHEAD /c HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
}

// knownDifference names a difference listed in the Adapter doc, or "".
func knownDifference(raw string, ours, theirs []diffResp) string {
	switch {
	case strings.Contains(raw, "Expect: 100-continue"):
		return "100 Continue: the codec sends it when the head is complete and the body has not arrived; net/http when the handler first reads the body, even one already received"
	case strings.HasPrefix(raw, "\r\n") || strings.HasPrefix(raw, "\n"):
		return "empty lines before the request-line: ignored (RFC 9112 §2.2), net/http answers 400"
	}
	return ""
}

// TestDifferentialNetHTTP runs the handwritten cases and the shared conformance corpora
// against net/http's Server and the adapter, and compares the responses.
func TestDifferentialNetHTTP(t *testing.T) {
	h := diffHandler()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ns := &nethttp.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	go ns.Serve(ln)
	t.Cleanup(func() { ns.Close() })
	_, addr := startServer(t, Adapt(h))

	type result struct{ same, known, bothRefuse, stricter int }
	var res result
	var unexpected []string
	known := map[string]int{}
	// refused: a server-generated error response (not the handler's 404 or 418).
	refused := func(r diffResp) bool { return r.Status >= 400 && r.Status != 404 && r.Status != 418 }
	// failedRead: the echo route saw its body read fail.
	failedRead := func(r diffResp) bool { return strings.Contains(r.Body, "readerr=true") }
	first := func(rs []diffResp) diffResp {
		if len(rs) == 0 {
			return diffResp{}
		}
		return rs[0]
	}
	compare := func(name string, raw []byte) {
		var theirs []diffResp
		done := make(chan struct{})
		go func() {
			defer close(done)
			theirs, _ = exchangeRaw(ln.Addr().String(), raw)
		}()
		ours, _ := exchangeRaw(addr, raw)
		<-done
		theirs, ours = normalize(theirs), normalize(ours)
		same := len(theirs) == len(ours)
		for i := 0; same && i < len(ours); i++ {
			// Two refusals count as the same answer: statuses and texts of error responses
			// are each server's own (the codec's are listed in the package doc).
			same = fmt.Sprint(theirs[i]) == fmt.Sprint(ours[i]) || refused(theirs[i]) && refused(ours[i])
		}
		o, n := first(ours), first(theirs)
		switch {
		case same && refused(o):
			res.bothRefuse++
		case same:
			res.same++
		case refused(o) && !refused(n), failedRead(o) && !failedRead(n):
			// The codec refuses what net/http lets through (its documented strictness:
			// chunk extensions, bare LF and CR, obs-fold, ...); for a streamed body the
			// handler's read fails instead of a 400.
			res.stricter++
		default:
			if why := knownDifference(string(raw), ours, theirs); why != "" {
				res.known++
				known[why]++
				return
			}
			unexpected = append(unexpected, fmt.Sprintf("%s: %q\n  net/http: %+v\n  adapter:  %+v", name, raw, theirs, ours))
		}
	}
	for i, c := range diffCases {
		compare(fmt.Sprintf("case %d", i), []byte(c))
	}
	corpora := 0
	if dir := conformanceDirOrEmpty(t); dir != "" {
		var probe []struct {
			ID  string `json:"id"`
			Raw string `json:"raw_bytes"`
		}
		loadJSON(t, dir, "http11probe_cases.json", &probe)
		var ll []struct {
			Name string `json:"name"`
			Type string `json:"type"`
			Raw  string `json:"raw_bytes"`
		}
		loadJSON(t, dir, "llhttp_requests.json", &ll)
		for _, c := range probe {
			if raw, err := base64.StdEncoding.DecodeString(c.Raw); err == nil && len(raw) > 0 {
				compare(c.ID, raw)
				corpora++
			}
		}
		for _, c := range ll {
			if c.Type != "request" {
				continue
			}
			if raw, err := base64.StdEncoding.DecodeString(c.Raw); err == nil && len(raw) > 0 {
				compare(c.Name, raw)
				corpora++
			}
		}
	}
	t.Logf("%d handwritten + %d corpus cases: %d identical, %d known differences, %d refused by both, %d refused by the codec only (stricter)",
		len(diffCases), corpora, res.same, res.known, res.bothRefuse, res.stricter)
	for why, n := range known {
		t.Logf("known difference (%d cases): %s", n, why)
	}
	for _, u := range unexpected {
		t.Error(u)
	}
}

// conformanceDirOrEmpty is conformanceDir without the skip: the handwritten cases run anyway.
func conformanceDirOrEmpty(t *testing.T) (dir string) {
	ok := t.Run("conformance-material", func(t *testing.T) { dir = conformanceDir(t) })
	if !ok {
		t.FailNow()
	}
	return dir
}
