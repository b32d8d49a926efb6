package metrics

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/reactord/reactord/internal/testsupport"
)

// fakeServer is a Source whose counters the test moves.
type fakeServer struct {
	mu sync.Mutex
	s  Snapshot
}

func (f *fakeServer) snapshot() Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.s
	s.Loops = append([]LoopStats(nil), f.s.Loops...)
	return s
}

func parse(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	var buf bytes.Buffer
	if err := m.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(&buf)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, buf.String())
	}
	return mfs
}

// value returns the value of the sample of family name whose labels include want.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	mf, ok := mfs[name]
	if !ok {
		t.Fatalf("no family %s", name)
	}
next:
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("%s has no sample with labels %v", name, want)
	return 0
}

func TestMetricsMoveWithTraffic(t *testing.T) {
	srv := &fakeServer{s: Snapshot{Poller: "epoll", Loops: make([]LoopStats, 2)}}
	m, err := New(Options{Version: "v1.2.3", Source: srv.snapshot})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	mfs := parse(t, m)
	if v := value(t, mfs, "reactord_poller_info", map[string]string{"poller": "epoll"}); v != 1 {
		t.Errorf("poller_info = %v", v)
	}
	if v := value(t, mfs, "reactord_build_info", map[string]string{"version": "v1.2.3"}); v != 1 {
		t.Errorf("build_info = %v", v)
	}
	if v := value(t, mfs, "reactord_http_requests_total", map[string]string{"method": "GET", "code": "2xx"}); v != 0 {
		t.Errorf("requests before traffic = %v", v)
	}
	if _, ok := mfs["go_goroutines"]; !ok {
		t.Error("runtime collector missing")
	}

	m.Observe([]byte("GET"), 200, 100*time.Microsecond)
	m.Observe([]byte("GET"), 206, 3*time.Millisecond)
	m.Observe([]byte("HEAD"), 304, time.Microsecond)
	m.Observe([]byte("BREW"), 405, time.Microsecond)
	m.Observe([]byte("GET"), 999, time.Microsecond)
	m.Observe(nil, 408, time.Microsecond) // rejected before the request-line was read
	srv.mu.Lock()
	srv.s.OpenConns, srv.s.AcceptedConns, srv.s.ClosedConns = 3, 10, 7
	srv.s.BytesIn, srv.s.BytesOut, srv.s.Rejected, srv.s.ShedConns = 1000, 50000, 2, 5
	srv.s.RefusedPerIP, srv.s.ClientAddresses = 11, 4
	srv.s.Loops[1] = LoopStats{Iterations: 40, Wakeups: 5, Waits: 20, Events: 50}
	srv.mu.Unlock()

	mfs = parse(t, m)
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"reactord_http_requests_total", map[string]string{"method": "GET", "code": "2xx"}, 2},
		{"reactord_http_requests_total", map[string]string{"method": "HEAD", "code": "3xx"}, 1},
		{"reactord_http_requests_total", map[string]string{"method": "OTHER", "code": "4xx"}, 2},
		{"reactord_http_requests_total", map[string]string{"method": "GET", "code": "5xx"}, 1},
		{"reactord_http_request_duration_seconds", nil, 6},
		{"reactord_connections_open", nil, 3},
		{"reactord_connections_accepted_total", nil, 10},
		{"reactord_connections_closed_total", nil, 7},
		{"reactord_received_bytes_total", nil, 1000},
		{"reactord_sent_bytes_total", nil, 50000},
		{"reactord_http_rejected_total", nil, 2},
		{"reactord_connections_shed_total", nil, 5},
		{"reactord_connections_refused_total", map[string]string{"reason": "per_ip"}, 11},
		{"reactord_client_addresses", nil, 4},
		{"reactord_loop_iterations_total", map[string]string{"loop": "1"}, 40},
		{"reactord_loop_iterations_total", map[string]string{"loop": "0"}, 0},
		{"reactord_loop_wakeups_total", map[string]string{"loop": "1"}, 5},
		{"reactord_loop_waits_total", map[string]string{"loop": "1"}, 20},
		{"reactord_loop_events_total", map[string]string{"loop": "1"}, 50},
		{"reactord_loop_events_per_wait", map[string]string{"loop": "1"}, 2.5},
		{"reactord_loop_events_per_wait", map[string]string{"loop": "0"}, 0},
	}
	for _, c := range checks {
		if got := value(t, mfs, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Label cardinality stays bounded whatever methods clients invent.
	for i := 0; i < 100; i++ {
		m.Observe([]byte(strings.Repeat("X", i+1)), 200, 0)
	}
	if n := len(parse(t, m)["reactord_http_requests_total"].GetMetric()); n != len(methods)*len(classes) {
		t.Errorf("%d request series, want %d", n, len(methods)*len(classes))
	}
}

func TestHandler(t *testing.T) {
	m, err := New(Options{Version: "x", Source: func() Snapshot { return Snapshot{Poller: "poll"} }, NoRuntime: true})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 || !strings.Contains(string(body), `reactord_poller_info{poller="poll"} 1`) {
		t.Fatalf("%d\n%s", rec.Code, body)
	}
	if strings.Contains(string(body), "go_goroutines") {
		t.Error("NoRuntime still exports go_*")
	}
	if !strings.HasPrefix(ContentType, "text/plain") {
		t.Errorf("ContentType = %q", ContentType)
	}
}

func TestNewErrorsAndNil(t *testing.T) {
	if _, err := New(Options{}); !errors.Is(err, ErrNoSource) {
		t.Errorf("nil source: %v", err)
	}
	if _, err := New(Options{Source: func() Snapshot { return Snapshot{} }, RuntimeInterval: -time.Second}); !errors.Is(err, ErrInterval) {
		t.Errorf("negative interval: %v", err)
	}
	var m *Metrics
	m.Observe([]byte("GET"), 200, 0) // must not panic
	if err := m.Close(); err != nil {
		t.Error(err)
	}
}

func TestConcurrentObserveAndScrape(t *testing.T) {
	var n atomic.Uint64
	m, err := New(Options{Source: func() Snapshot { return Snapshot{AcceptedConns: n.Load()} }, NoRuntime: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				m.Observe([]byte("GET"), 200, time.Microsecond)
				n.Add(1)
			}
		}()
	}
	for i := 0; i < 20; i++ {
		parse(t, m)
	}
	wg.Wait()
	if v := value(t, parse(t, m), "reactord_http_requests_total", map[string]string{"method": "GET", "code": "2xx"}); v != 4000 {
		t.Errorf("requests = %v", v)
	}
}

func BenchmarkObserve(b *testing.B) {
	m, err := New(Options{Source: func() Snapshot { return Snapshot{} }, NoRuntime: true})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Observe([]byte("GET"), 200, 150*time.Microsecond)
	}
}

// BenchmarkWriteText measures one scrape with the runtime collectors, which runs on an event
// loop in the daemon.
func BenchmarkWriteText(b *testing.B) {
	m, err := New(Options{Source: func() Snapshot { return Snapshot{Poller: "epoll", Loops: make([]LoopStats, 2)} }})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	b.ReportAllocs()
	for b.Loop() {
		if err := m.WriteText(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRuntimeRefresh checks that the background gatherer follows the process: goroutines
// started after New show up in go_goroutines within a few intervals.
func TestRuntimeRefresh(t *testing.T) {
	m, err := New(Options{Source: func() Snapshot { return Snapshot{} }, RuntimeInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	base := value(t, parse(t, m), "go_goroutines", nil)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); <-release }()
	}
	// A snapshot counts, besides the process's own goroutines, the registry's gathering
	// goroutines that are alive while it collects: one to three, depending on scheduling
	// (prometheus.Registry.Gather starts a worker, a closer, and a second worker when the
	// first is slow to pick up its collectors). Two snapshots of an unchanged process can
	// therefore differ by two, so the gauge must rise by at least 48 of the 50.
	testsupport.Eventually(t, 5*time.Second, "go_goroutines to count 50 new goroutines", func() bool {
		return value(t, parse(t, m), "go_goroutines", nil) >= base+50-2
	})
	close(release)
	wg.Wait()
	if err := m.Close(); err != nil { // twice is fine
		t.Error(err)
	}
}

func TestReloadCounter(t *testing.T) {
	f := &fakeServer{}
	m, err := New(Options{Source: f.snapshot, NoRuntime: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// Both series exist from the start, at 0, so a query sees a failure as soon as it happens.
	mfs := parse(t, m)
	if v := value(t, mfs, "reactord_config_reloads_total", map[string]string{"result": "failure"}); v != 0 {
		t.Errorf("failures before any reload = %v", v)
	}
	m.Reloaded(true)
	m.Reloaded(false)
	m.Reloaded(false)
	mfs = parse(t, m)
	if v := value(t, mfs, "reactord_config_reloads_total", map[string]string{"result": "success"}); v != 1 {
		t.Errorf("successes = %v, want 1", v)
	}
	if v := value(t, mfs, "reactord_config_reloads_total", map[string]string{"result": "failure"}); v != 2 {
		t.Errorf("failures = %v, want 2", v)
	}
	var nilM *Metrics
	nilM.Reloaded(true) // a nil *Metrics discards, like Observe
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
