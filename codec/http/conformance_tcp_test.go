package http

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reactord/reactord/internal/testsupport"
)

// Black-box runs of the external suites in ../shared/conformance against a real Server over
// TCP: each case's bytes are written to a fresh connection and the responses read back with a
// deadline. Http11Probe's Must-level cases are required to pass; the rest, and the llhttp and
// picohttpparser request cases, are scored and their failures listed.

// conformanceServer answers the resources the suites probe: echo of a body, 405 + Allow for
// DELETE/TRACE, 204 + Allow for OPTIONS, cookies echoed, text/plain otherwise.
func conformanceServer(t *testing.T) string {
	_, addr := startServer(t, HandlerFunc(func(w *ResponseWriter, r *Request) {
		w.Set("X-Handled", "1") // tells the judge the codec accepted the request
		switch m := string(r.Method()); {
		case m == "GET" || m == "HEAD" || m == "POST" || m == "PUT" || m == "PATCH":
		case m == "DELETE" || m == "TRACE" || m == "CONNECT":
			w.Set("Allow", "GET, HEAD, POST, OPTIONS")
			w.SetStatus(StatusMethodNotAllowed)
			return
		case m == "OPTIONS":
			w.Set("Allow", "GET, HEAD, POST, OPTIONS")
			w.SetStatus(StatusNoContent)
			return
		default:
			// The codec accepts any method token; the application answers unknown ones.
			w.SetStatus(StatusNotImplemented)
			return
		}
		w.Set("Content-Type", "text/plain")
		if len(r.Body()) > 0 {
			w.Write(r.Body())
			return
		}
		for i := 0; i < r.NumHeaders(); i++ {
			if n, v := r.HeaderAt(i); equalFold(n, "cookie") {
				w.Write(v)
				w.WriteString("\n")
			}
		}
		w.WriteString("ok")
	}), WithReadHeaderTimeout(conformanceTimeout), WithReadTimeout(conformanceTimeout))
	return addr
}

// conformanceTimeout is the conformance server's header and read timeout. A connection whose
// first bytes arrive later than that after it opened is closed as silent, so roundTrip dials
// again when its write came that late (a busy machine descheduled it): the case would
// otherwise be judged on a close that has nothing to do with its bytes.
const conformanceTimeout = 500 * time.Millisecond

// exchange is what a client saw on one connection.
type exchange struct {
	statuses []int
	handled  []bool // the response came from the handler (not a codec rejection)
	first    *nethttp.Response
	body     string // of the first final response
	closed   bool   // the server closed the connection
	timedOut bool   // waited until the deadline for (more of) a response
	garbage  error  // bytes that are not an HTTP response
}

func (e exchange) String() string {
	return fmt.Sprintf("statuses=%v closed=%v timeout=%v garbage=%v", e.statuses, e.closed, e.timedOut, e.garbage)
}

// methodOf returns the method of the first request in raw, for reading HEAD responses.
func methodOf(raw []byte) string {
	raw = bytes.TrimLeft(raw, "\r\n")
	if i := bytes.IndexByte(raw, ' '); i > 0 {
		return string(raw[:i])
	}
	return "GET"
}

// roundTrip writes raw (and then followup, once the first final response arrived on an open
// connection) and collects the responses until the server closes, the deadline passes, or,
// on a kept-alive connection, nothing more arrives for a short grace period.
func roundTrip(addr string, raw, followup []byte, deadline time.Duration) exchange {
	var ex exchange
	var c net.Conn
	var end time.Time
	for attempt := 1; ; attempt++ {
		var err error
		c, err = net.DialTimeout("tcp", addr, testsupport.Scale(2*time.Second))
		if err != nil {
			ex.garbage = err
			return ex
		}
		dialled := time.Now()
		end = dialled.Add(deadline)
		c.SetDeadline(end)
		if len(raw) > 0 {
			if _, err := c.Write(raw); err != nil {
				c.Close()
				ex.closed = true
				return ex
			}
		}
		if len(raw) == 0 || attempt == 3 || time.Since(dialled) < conformanceTimeout {
			break
		}
		c.Close()
	}
	defer c.Close()
	br := bufio.NewReader(c)
	method := methodOf(raw)
	for {
		resp, body, err := readResponse(br, method)
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "reset"):
				ex.closed = true
			case errors.As(err, &ne) && ne.Timeout():
				ex.timedOut = time.Now().After(end.Add(-10 * time.Millisecond))
			default:
				ex.garbage = err
			}
			return ex
		}
		ex.statuses = append(ex.statuses, resp.StatusCode)
		ex.handled = append(ex.handled, resp.Header.Get("X-Handled") == "1")
		if resp.StatusCode < 200 {
			continue
		}
		if ex.first == nil {
			ex.first, ex.body = resp, body
		}
		if resp.Close {
			c.SetReadDeadline(testsupport.Deadline(time.Second))
			_, err := br.ReadByte()
			ex.closed = err != nil && !isTimeout(err)
			return ex
		}
		if len(followup) > 0 {
			if _, err := c.Write(followup); err != nil {
				ex.closed = true
				return ex
			}
			method = methodOf(followup)
			followup = nil
			continue
		}
		// Kept alive: any further response would come right away.
		// (A slow machine can only hide an extra response here, not invent one.)
		c.SetReadDeadline(testsupport.Deadline(150 * time.Millisecond))
		if _, err := br.Peek(1); err != nil {
			if !isTimeout(err) {
				ex.closed = true
			}
			return ex
		}
		c.SetDeadline(end)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

var probeCodes = regexp.MustCompile(`\b[1-5]\d\d\b`)

// judgeProbe decides whether ex satisfies an Http11Probe expectation. warn marks an outcome the
// suite accepts with a warning.
func judgeProbe(c probeCase, raw []byte, ex exchange) (ok, warn bool, why string) {
	final := 0
	if ex.first != nil {
		final = ex.first.StatusCode
	}
	is2xx := final >= 200 && final < 300
	allowClose := c.Expected.AllowClose
	if c.Expected.Status != nil {
		if m := probeExact.FindStringSubmatch(*c.Expected.Status); m != nil {
			var want int
			fmt.Sscan(m[1], &want)
			if final == want || allowClose && final == 0 && ex.closed {
				return true, false, ""
			}
			return false, false, fmt.Sprintf("want %d", want)
		}
	}
	if c.Expected.Description == nil {
		return is2xx, false, "want 2xx"
	}
	d := strings.ToLower(*c.Expected.Description)
	codes := map[int]bool{}
	for _, m := range probeCodes.FindAllString(d, -1) {
		var n int
		fmt.Sscan(m, &n)
		codes[n] = true
	}
	accept2xx := strings.Contains(d, "2xx") || strings.Contains(d, "pass-through")
	acceptClose := strings.Contains(d, "close") || strings.Contains(d, "drop")
	acceptReject := strings.Contains(d, "reject")
	non1xx := strings.Contains(d, "!101") || strings.Contains(d, "non-101") || strings.Contains(d, "non-1xx")
	if rest, ok := strings.CutPrefix(d, "not "); ok {
		var n int
		fmt.Sscan(rest, &n)
		return final != 0 && final != n, false, fmt.Sprintf("want not %d", n)
	}
	switch {
	case final == 0:
		ok = acceptClose && ex.closed || strings.Contains(d, "timeout") && (ex.timedOut || ex.closed) || acceptReject && ex.closed
		return ok, false, "no response"
	case codes[final] && !(final == 101 && non1xx):
	case is2xx && accept2xx:
	case non1xx && final >= 200:
	case acceptReject && final >= 400 && final < 500:
	case acceptClose && final >= 400 && ex.closed:
		// An error response followed by the close is the "close" outcome.
	case strings.Contains(d, "imf-fixdate") && is2xx:
	default:
		if strings.Contains(d, "warn") && is2xx {
			return true, true, "accepted with a warning"
		}
		return false, false, fmt.Sprintf("status %d not accepted", final)
	}
	// Extra conditions on the accepted outcome.
	h := ex.first.Header
	switch {
	case is2xx && (strings.Contains(d, "2xx + close") || strings.Contains(d, "2xx+close")) && !ex.closed && !strings.Contains(d, "or 2xx"):
		return false, false, "2xx without close"
	case is2xx && strings.Contains(d, "2xx + close") && strings.Contains(d, "or 2xx + close") && !ex.closed:
		return false, false, "2xx without close"
	case strings.Contains(d, "echo") && is2xx:
		body := raw[bytes.Index(raw, []byte("\r\n\r\n"))+4:]
		if strings.Contains(strings.ToLower(string(raw)), "chunked") {
			// The server decoded the body: compare with the chunk data.
			if !chunkJoin(raw, ex.body) {
				return false, false, "echo mismatch"
			}
		} else if ex.body != string(body) {
			return false, false, fmt.Sprintf("echo %q want %q", ex.body, body)
		}
	case strings.Contains(d, "no extra response") && len(ex.statuses) > 1:
		return false, false, "extra response"
	case strings.Contains(d, "2xx + 2xx") && (len(ex.statuses) < 2 || ex.statuses[1] < 200 || ex.statuses[1] > 299):
		return false, false, "want two 2xx"
	case strings.Contains(d, "date header") && h.Get("Date") == "":
		return false, false, "no Date"
	case strings.Contains(d, "imf-fixdate"):
		if _, err := time.Parse(nethttp.TimeFormat, h.Get("Date")); err != nil {
			return false, false, "Date not IMF-fixdate"
		}
	case strings.Contains(d, "allow header") && h.Get("Allow") == "":
		return false, false, "no Allow"
	case strings.Contains(d, "without cl") && h.Get("Content-Length") != "":
		return false, false, "Content-Length on 204"
	case strings.Contains(d, "with content-type") && h.Get("Content-Type") == "":
		return false, false, "no Content-Type"
	case strings.Contains(d, "no body") && ex.body != "":
		return false, false, "HEAD with a body"
	case strings.Contains(d, "without auth") && strings.Contains(ex.body, "secret"):
		return false, false, "TRACE echoed credentials"
	}
	if strings.Contains(d, "cookie") || strings.Contains(d, "foo=bar") || strings.Contains(d, "a=1") {
		for _, want := range []string{"foo=bar", "a=1", "b=2"} {
			if strings.Contains(string(raw), want) && !strings.Contains(ex.body, want) {
				return false, false, "cookie " + want + " not echoed"
			}
		}
	}
	return true, strings.Contains(d, "warn") && is2xx && strings.Contains(d, "2xx (warn)"), ""
}

// chunkJoin reports whether body is the concatenation of the chunk data in raw.
func chunkJoin(raw []byte, body string) bool {
	i := bytes.Index(raw, []byte("\r\n\r\n"))
	d, _ := NewChunkedDecoder(Limits{})
	out, n, err := d.Decode(nil, raw[i+4:])
	return err == nil && n > 0 && string(out) == body
}

type tcpCase struct {
	name           string
	raw, followup  []byte
	judge          func(exchange) (ok, warn bool, why string)
	group, level   string
	required, skip bool
}

// runTCPCases runs cases a few at a time and returns their outcomes in order.
func runTCPCases(addr string, cases []tcpCase) []exchange {
	out := make([]exchange, len(cases))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range cases {
		if cases[i].skip {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			out[i] = roundTrip(addr, cases[i].raw, cases[i].followup, testsupport.Scale(2*time.Second))
			<-sem
		}(i)
	}
	wg.Wait()
	return out
}

func scoreTCP(t *testing.T, suite string, cases []tcpCase, results []exchange) {
	t.Helper()
	score := map[string]*tally{}
	warns, skipped := 0, 0
	var failures []string
	for i, c := range cases {
		if c.skip {
			skipped++
			continue
		}
		if score[c.group] == nil {
			score[c.group] = &tally{}
		}
		ok, warn, why := c.judge(results[i])
		score[c.group].add(ok)
		if warn {
			warns++
		}
		if !ok {
			msg := fmt.Sprintf("%s %s [%s]: %s; got %v", suite, c.name, c.level, why, results[i])
			if c.required {
				t.Error(msg)
			} else {
				failures = append(failures, msg)
			}
		}
	}
	keys := make([]string, 0, len(score))
	for k := range score {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d/%d", k, score[k].pass, score[k].total))
	}
	t.Logf("%s over TCP: %s (warnings %d, skipped %d)", suite, strings.Join(parts, ", "), warns, skipped)
	for _, f := range failures {
		t.Log("not required: " + f)
	}
}

func TestConformanceTCPHttp11Probe(t *testing.T) {
	dir := conformanceDir(t)
	var cases []probeCase
	loadJSON(t, dir, "http11probe_cases.json", &cases)
	addr := conformanceServer(t)
	tcs := make([]tcpCase, len(cases))
	for i, c := range cases {
		c := c
		tcs[i] = tcpCase{name: c.ID, raw: c.Raw, followup: c.Followup, group: c.Level, level: c.Level, required: c.Level == "Must"}
		desc := ""
		if c.Expected.Description != nil {
			desc = *c.Expected.Description
		}
		if strings.HasPrefix(desc, "304") && len(c.Followup) == 0 {
			// The conditional second request is built by the suite at run time from the
			// first response's validators and is not in the data.
			tcs[i].skip = true
		}
		tcs[i].judge = func(ex exchange) (bool, bool, string) { return judgeProbe(c, c.Raw, ex) }
	}
	start := time.Now()
	results := runTCPCases(addr, tcs)
	t.Logf("%d cases in %v", len(cases), time.Since(start).Round(time.Millisecond))
	scoreTCP(t, "Http11Probe", tcs, results)
}

func TestConformanceTCPLLHTTP(t *testing.T) {
	dir := conformanceDir(t)
	var cases []llhttpCase
	loadJSON(t, dir, "llhttp_requests.json", &cases)
	addr := conformanceServer(t)
	tcs := make([]tcpCase, len(cases))
	for i, c := range cases {
		cav := map[string]bool{}
		for _, s := range c.Caveats {
			cav[strings.SplitN(s, ":", 2)[0]] = true
		}
		tc := tcpCase{name: fmt.Sprintf("#%d %q", i, c.Name), raw: c.Raw, group: "direct", level: "scored"}
		want2xx := func(n int) func(exchange) (bool, bool, string) {
			return func(ex exchange) (bool, bool, string) {
				for i, h := range ex.handled {
					if !h && ex.statuses[i] >= 200 {
						return false, false, fmt.Sprintf("want %d accepted", n)
					}
				}
				return len(ex.handled) >= n, false, fmt.Sprintf("want %d accepted", n)
			}
		}
		rejected := func(ex exchange) (bool, bool, string) {
			for i, s := range ex.statuses {
				if s >= 400 && !ex.handled[i] {
					return true, false, ""
				}
			}
			return ex.closed && len(ex.statuses) == 0, false, "want rejected"
		}
		switch {
		case cav["skip_body"]:
			tc.skip = true
		case llhttpDeviations[c.Name] == "accept":
			tc.group, tc.judge = "deviation", want2xx(1)
		case llhttpDeviations[c.Name] == "reject":
			tc.group, tc.judge = "deviation", rejected
		case cav["no_host"] || cav["non_http_protocol"] || cav["http09"]:
			tc.group, tc.judge = "strict", rejected
		case cav["upgrade"] || cav["data_after_close"] || cav["incomplete_tail"]:
			// The messages before the tunnel data, extra data or incomplete tail must be
			// answered; what follows them may be refused.
			n := c.Messages
			tc.group, tc.judge = "caveat", func(ex exchange) (bool, bool, string) {
				for i := 0; i < n; i++ {
					if i >= len(ex.handled) || !ex.handled[i] {
						return false, false, fmt.Sprintf("want the first %d accepted", n)
					}
				}
				return true, false, ""
			}
		case c.Expect == "ok":
			tc.judge = want2xx(c.Messages)
		default:
			tc.judge = rejected
		}
		tcs[i] = tc
	}
	results := runTCPCases(addr, tcs)
	scoreTCP(t, fmt.Sprintf("llhttp (%d cases)", len(cases)), tcs, results)
}

func TestConformanceTCPPico(t *testing.T) {
	dir := conformanceDir(t)
	var cases []picoCase
	loadJSON(t, dir, "pico_cases.json", &cases)
	addr := conformanceServer(t)
	var tcs []tcpCase
	for i, c := range cases {
		if !strings.HasSuffix(c.Suite, "test_request") {
			continue
		}
		want := c.Expect
		if picoDeviations[c.Name] != "" {
			want = "error"
		}
		tc := tcpCase{name: fmt.Sprintf("#%d %q", i, c.Name), raw: c.Raw, group: want, level: "scored"}
		switch want {
		case "ok":
			tc.judge = func(ex exchange) (bool, bool, string) {
				return len(ex.handled) > 0 && ex.handled[0], false, "want accepted"
			}
		case "incomplete":
			// The server waits for the rest, then answers 408 at its header timeout.
			tc.judge = func(ex exchange) (bool, bool, string) {
				return len(ex.statuses) == 0 || ex.statuses[0] == 408, false, "want no response until the timeout"
			}
		default:
			tc.judge = func(ex exchange) (bool, bool, string) {
				return len(ex.statuses) > 0 && ex.statuses[0] >= 400 && !ex.handled[0] || len(ex.statuses) == 0 && ex.closed, false, "want rejected"
			}
		}
		tcs = append(tcs, tc)
	}
	results := runTCPCases(addr, tcs)
	scoreTCP(t, "picohttpparser requests", tcs, results)
}
