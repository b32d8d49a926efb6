package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reactord/reactord/bench/internal/report"
	"github.com/reactord/reactord/bench/internal/servers"
	"github.com/reactord/reactord/bench/internal/syscount"
	"github.com/reactord/reactord/internal/testsupport"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader("")}, args)
	return code, out.String(), errb.String()
}

func TestHelpAndUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-h"}, 0, "pollers"},
		{nil, 2, "subcommand"},
		{[]string{"nope"}, 2, "unknown subcommand"},
		{[]string{"http", "-h"}, 0, "Closed-loop"},
		{[]string{"pollers", "-h"}, 0, "bench.c"},
		{[]string{"idle", "-h"}, 0, "idle keep-alive"},
		{[]string{"serve", "-h"}, 0, "floor"},
		{[]string{"smoke", "-h"}, 0, "few seconds"},
		{[]string{"http", "-p", "0"}, 2, "integer"},
		{[]string{"http", "-servers", "nope"}, 2, "unknown server"},
		{[]string{"serve", "-server", "nope"}, 2, "unknown server"},
		{[]string{"pollers", "-n", "x"}, 2, "integer"},
		{[]string{"http", "-servers", "floor", "-baseline", "gnet"}, 2, "not among the servers"},
		{[]string{"pollers", "extra"}, 2, "unexpected argument"},
	}
	for _, tt := range tests {
		code, out, errs := run(t, tt.args...)
		if code != tt.code || !strings.Contains(out+errs, tt.want) {
			t.Errorf("%v: code %d, output lacks %q:\n%s%s", tt.args, code, tt.want, out, errs)
		}
	}
}

func TestPollersWritesTableJSONAndChart(t *testing.T) {
	dir := t.TempDir()
	js, png := filepath.Join(dir, "p.json"), filepath.Join(dir, "p.svg")
	code, out, errs := run(t, "pollers", "-n", "50,100", "-runs", "2", "-writes", "50", "-json", js, "-chart", png)
	if code != 0 {
		t.Fatalf("code %d: %s", code, errs)
	}
	if !strings.Contains(out, "| epoll | 100 |") {
		t.Fatalf("table:\n%s", out)
	}
	var rows []pollerRow
	b, err := os.ReadFile(js)
	if err != nil || json.Unmarshal(b, &rows) != nil || len(rows) == 0 {
		t.Fatalf("json: %v %s", err, b)
	}
	if st, err := os.Stat(png); err != nil || st.Size() == 0 {
		t.Fatalf("chart: %v", err)
	}
}

// TestMain lets this test binary stand in for the bench binary: the http and idle
// subcommands re-execute os.Executable() as "serve -control", and with this variable set the
// child runs Main instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("BENCH_CLI_TEST_AS_BENCH") == "1" {
		os.Exit(Main(context.Background(), Env{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin}, os.Args[1:]))
	}
	if err := os.Setenv("BENCH_CLI_TEST_AS_BENCH", "1"); err != nil {
		panic(err)
	}
	code := m.Run()
	_ = os.Unsetenv("BENCH_CLI_TEST_AS_BENCH")
	os.Exit(code)
}

// TestHTTPWithChildServers runs the http subcommand as a user would: servers in pinned child
// processes, two rounds, two depths, JSON and chart out; every server must have answered
// without errors and have a CPU cost and a ratio against floor.
//
// A round's window is 250 ms, and its request rate and CPU cost (counted in 10 ms ticks) can
// come out zero when a busy machine stalls the run for most of a window. Such a run proves
// nothing and is made again (up to a scaled deadline); an error or a wrong structure fails at
// once.
func TestHTTPWithChildServers(t *testing.T) {
	giveUp := testsupport.Deadline(90 * time.Second)
	for !httpRunShows(t) {
		if time.Now().After(giveUp) {
			t.Fatal("no run had requests and CPU time in every round")
		}
		t.Log("a round without requests or CPU time (a stalled machine?); again")
	}
}

// httpRunShows makes one run of TestHTTPWithChildServers and reports whether every round saw
// requests and CPU time.
func httpRunShows(t *testing.T) bool {
	t.Helper()
	dir := t.TempDir()
	js := filepath.Join(dir, "h.json")
	code, out, errs := run(t, "http", "-servers", "floor,nethttp", "-c", "4", "-p", "1,4", "-warmup", "50ms",
		"-d", "250ms", "-rounds", "2", "-q", "-json", js, "-chart", filepath.Join(dir, "h.png"), "-baseline", "floor,nethttp")
	if code != 0 {
		t.Fatalf("code %d:\n%s\n%s", code, out, errs)
	}
	var got struct {
		Baseline string
		Summary  []struct {
			Label    string
			Pipeline int
			Rounds   int
			RPS      float64 `json:"rps_median"`
			CPU      float64 `json:"cpu_us_per_req_median"`
			RSS      int64   `json:"rss_bytes_median"`
			Errors   uint64  `json:"errors_total"`
			CPURatio float64 `json:"cpu_ratio_vs_baseline"`
		}
	}
	b, err := os.ReadFile(js)
	if err != nil || json.Unmarshal(b, &got) != nil {
		t.Fatalf("json: %v\n%s", err, b)
	}
	if got.Baseline != "floor" || len(got.Summary) != 4 {
		t.Fatalf("summary: %+v", got)
	}
	if !strings.Contains(out, "| nethttp |") || !strings.Contains(out, "pipeline P=4") || !strings.Contains(out, "| server | × floor | × nethttp |") {
		t.Fatalf("table:\n%s", out)
	}
	shows := true
	for _, s := range got.Summary {
		if s.Rounds != 2 || s.RSS <= 0 || s.Errors != 0 || s.RPS < 0 || s.CPU < 0 {
			t.Fatalf("%+v", s)
		}
		if s.RPS == 0 || s.CPU == 0 || s.CPURatio <= 0 {
			t.Logf("%+v", s)
			shows = false
		}
	}
	return shows
}

// TestHTTPNginx runs the http subcommand on nginx the way the smoke does (a child process
// running nginx, pinned; the load pinned; nginx's /proc counters sampled around the window), with
// no warm-up, so that the window opens the moment the child says READY: requests, CPU time and
// memory must show and nothing may fail. (That READY means nginx answers is pinned down by
// servers' TestNginxStartReturnsWhenServing; this is the whole path around it.) A window in
// which nothing was answered, or no CPU tick was counted (a machine stalled for most of it),
// is run again.
func TestHTTPNginx(t *testing.T) {
	sv, err := servers.Lookup("nginx")
	if err != nil {
		t.Fatal(err)
	}
	if err := sv.Available(); err != nil {
		t.Skipf("%v: install nginx-light to run this (.ci/run does)", err)
	}
	giveUp := testsupport.Deadline(60 * time.Second)
	for {
		js := filepath.Join(t.TempDir(), "h.json")
		code, out, errs := run(t, "http", "-servers", "nginx", "-c", "2", "-p", "1", "-warmup", "0",
			"-d", "300ms", "-rounds", "1", "-q", "-json", js)
		if code != 0 {
			t.Fatalf("code %d:\n%s\n%s", code, out, errs)
		}
		var got struct{ Runs []report.Run }
		b, err := os.ReadFile(js)
		if err != nil || json.Unmarshal(b, &got) != nil || len(got.Runs) != 1 {
			t.Fatalf("json: %v\n%s", err, b)
		}
		r := got.Runs[0]
		if r.Errors.Total() != 0 {
			t.Fatalf("errors %+v\n%s", r.Errors, out)
		}
		if r.Requests > 0 && r.RSS <= 0 {
			t.Fatalf("%d requests but RSS %d", r.Requests, r.RSS)
		}
		// CPU time comes from /proc in 10 ms ticks: a window a busy machine left with a few
		// dozen requests can hold none (seen: 80 requests, 0.00 µs/req at load 20). It
		// proves nothing either way and is run again, like a window without requests.
		if r.Requests > 0 && r.CPUPerReq > 0 {
			return
		}
		if time.Now().After(giveUp) {
			t.Fatalf("no run of nginx had requests and CPU time in its window:\n%s", out)
		}
		t.Logf("a window without an answered request or a CPU tick (%d requests); again", r.Requests)
	}
}

// TestHTTPCountsSyscalls runs -syscalls against floor and floor-uring: the syscall columns
// appear, floor makes at least one read and one write per request (P=1), and floor-uring,
// whose request path is io_uring_enter alone, makes fewer I/O calls than floor.
func TestHTTPCountsSyscalls(t *testing.T) {
	if _, err := syscount.OpenCounter(os.Getpid()); errors.Is(err, syscount.ErrNoTracepoints) {
		t.Skipf("syscall tracepoints unavailable: %v", err)
	}
	names := "floor"
	if s, _ := servers.Lookup("floor-uring"); s.Available() == nil {
		names += ",floor-uring"
	}
	dir := t.TempDir()
	js := filepath.Join(dir, "h.json")
	code, out, errs := run(t, "http", "-servers", names, "-c", "4", "-p", "1", "-warmup", "50ms",
		"-d", "300ms", "-rounds", "1", "-q", "-syscalls", "-json", js)
	if code != 0 {
		t.Fatalf("code %d:\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "| syscalls/req | I/O syscalls/req |") {
		t.Fatalf("no syscall columns:\n%s", out)
	}
	var got struct {
		Summary []struct {
			Label string
			IO    float64 `json:"counted_io_syscalls_per_req_median"`
		}
	}
	b, err := os.ReadFile(js)
	if err != nil || json.Unmarshal(b, &got) != nil {
		t.Fatalf("json: %v\n%s", err, b)
	}
	io := map[string]float64{}
	for _, s := range got.Summary {
		io[s.Label] = s.IO
	}
	if io["floor"] < 2 {
		t.Fatalf("floor counted %.2f I/O calls per request; a read and a write each at least:\n%s\n%s\n%s", io["floor"], out, errs, b)
	}
	if v, ok := io["floor-uring"]; ok && v >= io["floor"] {
		t.Fatalf("floor-uring %.2f I/O calls per request, floor %.2f:\n%s\n%s", v, io["floor"], out, b)
	}
}

func TestIdleWithChildServer(t *testing.T) {
	code, out, errs := run(t, "idle", "-servers", "floor", "-n", "100")
	if code != 0 || !strings.Contains(out, "| floor |") {
		t.Fatalf("code %d:\n%s\n%s", code, out, errs)
	}
}

func TestCapCounts(t *testing.T) {
	got := capCounts([]int{100, 1000, 10000, 20000}, 20000)
	want := []int{100, 1000, 9968}
	if len(got) != len(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%v, want %v", got, want)
		}
	}
}
