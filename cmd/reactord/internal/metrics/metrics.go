// Package metrics is the daemon's Prometheus instrumentation, on a registry of its own (no
// global state): request counts by method and status class and a latency histogram, updated
// per request with a couple of atomic adds, and the event loops' counters (connections,
// bytes, iterations, wake-ups, events per wait, the poller in use), which are not updated by
// the hot path at all: a Collector reads them from a Source at scrape time.
//
// The Go runtime and process collectors are the expensive part of a scrape (the process
// collector reads several /proc files, and lists /proc/self/fd, one entry per connection).
// The daemon answers /metrics on an event loop, which must not stall, so those two are
// gathered by a background goroutine every RuntimeInterval and a scrape serves the latest
// result; everything reactord-specific is read live.
package metrics

import (
	"errors"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// Namespace prefixes every metric the daemon defines.
const Namespace = "reactord"

// ErrNoSource is returned by New when Options.Source is nil.
var ErrNoSource = errors.New("metrics: nil stats source")

// LoopStats are one event loop's counters, all monotonic since the loop started.
type LoopStats struct {
	Iterations uint64 // passes through the loop
	Wakeups    uint64 // Waits ended by a Wake from another goroutine
	Waits      uint64 // calls to the poller's Wait
	Events     uint64 // ready events those Waits returned
}

// Snapshot is what Source returns: the server's counters at one instant.
type Snapshot struct {
	Poller        string // backend name: "epoll", "poll", ...
	OpenConns     int64
	AcceptedConns uint64
	ClosedConns   uint64
	BytesIn       uint64
	BytesOut      uint64
	Rejected      uint64 // requests the HTTP codec answered itself (parse errors, timeouts)
	ShedConns     uint64 // connections closed to admit new ones at the descriptor or connection limit
	// RefusedPerIP counts connections closed at accept because their client address held
	// -max-conns-per-ip; ClientAddresses is how many client addresses have connections
	// open now (counted only while that limit is on).
	RefusedPerIP    uint64
	ClientAddresses int64
	// TLS handshakes on the HTTPS listeners, by outcome: completed, refused (not TLS, or
	// crypto/tls failed it), timed out, abandoned by the client (or the server stopping).
	TLSHandshakes, TLSHandshakeErrors, TLSHandshakeTimeouts, TLSHandshakesAborted uint64
	TLSHandshakesActive                                                           int64 // in progress now
	Loops                                                                         []LoopStats
}

// Source returns a Snapshot. It is called at scrape time, from the scraping goroutine, so it
// must be safe to call concurrently with the server running.
type Source func() Snapshot

// Options configures New.
type Options struct {
	// Version is reported in reactord_build_info.
	Version string
	// Source supplies the server's counters at scrape time. Required.
	Source Source
	// NoRuntime leaves out the Go runtime and process collectors (go_*, process_*), and the
	// goroutine that gathers them.
	NoRuntime bool
	// RuntimeInterval is how often the runtime and process metrics are gathered in the
	// background. Zero means DefaultRuntimeInterval.
	RuntimeInterval time.Duration
}

// DefaultRuntimeInterval is the default Options.RuntimeInterval.
const DefaultRuntimeInterval = 5 * time.Second

// ErrInterval is returned by New for a negative RuntimeInterval.
var ErrInterval = errors.New("metrics: negative runtime interval")

// Methods counted under their own label; anything else is counted as "OTHER" so a client
// cannot create label values at will.
var methods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE", "OTHER"}

var classes = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// durationBuckets run from 25µs to ~6.5s by factors of 4: a static file answered from the
// page cache takes tens of microseconds, a large file to a slow client seconds.
var durationBuckets = prometheus.ExponentialBuckets(25e-6, 4, 10)

// Metrics holds the registry and the per-request instruments. Observe may be called from
// any goroutine.
type Metrics struct {
	reg      *prometheus.Registry
	runtime  *cachedGatherer // nil with NoRuntime
	gather   prometheus.Gatherer
	requests [len(methods)][len(classes)]prometheus.Counter
	duration prometheus.Histogram
	reloads  [2]prometheus.Counter // failure, success
}

// New builds the registry: build info, request metrics, the server collector reading
// o.Source, and unless o.NoRuntime the Go and process collectors, gathered once before New
// returns and then in the background until Close.
func New(o Options) (*Metrics, error) {
	if o.Source == nil {
		return nil, ErrNoSource
	}
	if o.RuntimeInterval < 0 {
		return nil, ErrInterval
	}
	if o.RuntimeInterval == 0 {
		o.RuntimeInterval = DefaultRuntimeInterval
	}
	m := &Metrics{reg: prometheus.NewRegistry()}
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "http", Name: "requests_total",
		Help: "HTTP requests completed, by method and status class.",
	}, []string{"method", "code"})
	// Resolve every label combination once, so Observe is an array index and an atomic add.
	for i, meth := range methods {
		for j, cl := range classes {
			m.requests[i][j] = reqs.WithLabelValues(meth, cl)
		}
	}
	m.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
		Help:    "Time from a request's first byte to its response being handed to the connection, at event-loop clock resolution (one loop iteration; 0 when read and answered in one).",
		Buckets: durationBuckets,
	})
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help:        "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": o.Version, "goversion": runtime.Version()},
	})
	build.Set(1)
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "config", Name: "reloads_total",
		Help: "Configuration reloads (SIGHUP or a changed -config file), by result: success, or failure (the running configuration was kept).",
	}, []string{"result"})
	m.reloads[0], m.reloads[1] = reloads.WithLabelValues("failure"), reloads.WithLabelValues("success")
	for _, c := range []prometheus.Collector{reqs, m.duration, build, reloads, newServerCollector(o.Source)} {
		if err := m.reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.gather = m.reg
	if !o.NoRuntime {
		rt := prometheus.NewRegistry()
		for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
			if err := rt.Register(c); err != nil {
				return nil, err
			}
		}
		m.runtime = newCachedGatherer(rt, o.RuntimeInterval)
		m.gather = prometheus.Gatherers{m.reg, m.runtime}
	}
	return m, nil
}

// Close stops the background gathering. Scrapes after Close serve the last runtime metrics.
// It is safe to call more than once.
func (m *Metrics) Close() error {
	if m != nil && m.runtime != nil {
		m.runtime.close()
	}
	return nil
}

// Observe counts one completed request. method may alias a request buffer (it is only
// compared); nil or an unknown method counts as OTHER. It allocates nothing.
func (m *Metrics) Observe(method []byte, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests[methodIndex(method)][classIndex(status)].Inc()
	m.duration.Observe(d.Seconds())
}

// Reloaded counts one configuration reload: ok for one applied, !ok for one refused (the
// running configuration was kept). Any goroutine.
func (m *Metrics) Reloaded(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.reloads[1].Inc()
	} else {
		m.reloads[0].Inc()
	}
}

func methodIndex(method []byte) int {
	for i, s := range methods[:len(methods)-1] {
		if s == string(method) {
			return i
		}
	}
	return len(methods) - 1
}

// classIndex maps a status to its class; anything outside 100..599 counts as 5xx, since only
// a server bug could produce it.
func classIndex(status int) int {
	c := status/100 - 1
	if c < 0 || c >= len(classes) {
		return len(classes) - 1
	}
	return c
}

// Registry returns the registry of the live metrics (not the runtime ones), for callers that
// want to add collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Gatherer returns what a scrape reads: the live registry plus the latest runtime metrics.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.gather }

// ContentType is the media type WriteText produces.
var ContentType = string(expfmt.NewFormat(expfmt.TypeTextPlain))

// WriteText gathers every metric and writes them in the Prometheus text format to w. It is
// what a native (non-net/http) handler for /metrics calls on an event loop: it runs only the
// cheap live collectors (the runtime ones come from the background cache).
//
// The runtime part is copied as text encoded in the background: the families of the two
// parts never share a name (reactord_ against go_ and process_), so appending is valid.
func (m *Metrics) WriteText(w io.Writer) error {
	mfs, err := m.reg.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	if m.runtime == nil {
		return nil
	}
	text, err := m.runtime.Text()
	if err != nil {
		return err
	}
	_, err = w.Write(text)
	return err
}

// Handler returns a net/http handler serving the registry (with content negotiation and
// gzip), for use through a net/http adapter.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.gather, promhttp.HandlerOpts{Registry: m.reg})
}

// serverCollector turns a Snapshot into metrics at scrape time.
type serverCollector struct {
	src Source

	poller, open, accepted, closed, shed, in, out, rejected *prometheus.Desc
	refused, clients                                        *prometheus.Desc
	tlsDone, tlsActive                                      *prometheus.Desc
	iter, wake, waits, events, perWait                      *prometheus.Desc
}

func newServerCollector(src Source) *serverCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(Namespace+"_"+name, help, labels, nil)
	}
	return &serverCollector{
		src:       src,
		poller:    d("poller_info", "Always 1; the label names the readiness backend in use.", "poller"),
		open:      d("connections_open", "Connections open now."),
		accepted:  d("connections_accepted_total", "Connections accepted since start."),
		closed:    d("connections_closed_total", "Connections closed since start."),
		shed:      d("connections_shed_total", "Connections closed to admit new ones at the descriptor or connection limit: those with the least progress (inside their first request head, or silent), oldest first."),
		refused:   d("connections_refused_total", "Connections closed at accept, unanswered, by reason: per_ip (the client address held -max-conns-per-ip).", "reason"),
		clients:   d("client_addresses", "Client IP addresses with connections open now (counted while -max-conns-per-ip is on; 0 otherwise)."),
		in:        d("received_bytes_total", "Bytes read from client connections."),
		out:       d("sent_bytes_total", "Bytes written to client connections, sendfile included."),
		rejected:  d("http_rejected_total", "Requests answered by the HTTP codec itself: malformed (4xx/5xx) or timed out (408)."),
		tlsDone:   d("tls_handshakes_total", "TLS handshakes on the HTTPS listeners by result: ok, error (not TLS, or refused by crypto/tls), timeout, aborted (the client left first).", "result"),
		tlsActive: d("tls_handshakes_active", "TLS handshakes in progress now."),
		iter:      d("loop_iterations_total", "Event loop iterations.", "loop"),
		wake:      d("loop_wakeups_total", "Poller waits ended by a wake-up from another goroutine.", "loop"),
		waits:     d("loop_waits_total", "Calls to the poller's wait.", "loop"),
		events:    d("loop_events_total", "Ready events returned by the poller's wait.", "loop"),
		perWait:   d("loop_events_per_wait", "Mean ready events per wait since start (loop_events_total / loop_waits_total).", "loop"),
	}
}

func (c *serverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.poller, c.open, c.accepted, c.closed, c.shed, c.refused, c.clients, c.in, c.out, c.rejected, c.tlsDone, c.tlsActive, c.iter, c.wake, c.waits, c.events, c.perWait} {
		ch <- d
	}
}

func (c *serverCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src()
	if s.Poller != "" {
		ch <- prometheus.MustNewConstMetric(c.poller, prometheus.GaugeValue, 1, s.Poller)
	}
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(s.OpenConns))
	ch <- prometheus.MustNewConstMetric(c.accepted, prometheus.CounterValue, float64(s.AcceptedConns))
	ch <- prometheus.MustNewConstMetric(c.closed, prometheus.CounterValue, float64(s.ClosedConns))
	ch <- prometheus.MustNewConstMetric(c.shed, prometheus.CounterValue, float64(s.ShedConns))
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(s.RefusedPerIP), "per_ip")
	ch <- prometheus.MustNewConstMetric(c.clients, prometheus.GaugeValue, float64(s.ClientAddresses))
	ch <- prometheus.MustNewConstMetric(c.in, prometheus.CounterValue, float64(s.BytesIn))
	ch <- prometheus.MustNewConstMetric(c.out, prometheus.CounterValue, float64(s.BytesOut))
	ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(s.Rejected))
	for _, r := range []struct {
		label string
		n     uint64
	}{{"ok", s.TLSHandshakes}, {"error", s.TLSHandshakeErrors}, {"timeout", s.TLSHandshakeTimeouts}, {"aborted", s.TLSHandshakesAborted}} {
		ch <- prometheus.MustNewConstMetric(c.tlsDone, prometheus.CounterValue, float64(r.n), r.label)
	}
	ch <- prometheus.MustNewConstMetric(c.tlsActive, prometheus.GaugeValue, float64(s.TLSHandshakesActive))
	for i, l := range s.Loops {
		id := strconv.Itoa(i)
		ch <- prometheus.MustNewConstMetric(c.iter, prometheus.CounterValue, float64(l.Iterations), id)
		ch <- prometheus.MustNewConstMetric(c.wake, prometheus.CounterValue, float64(l.Wakeups), id)
		ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(l.Waits), id)
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(l.Events), id)
		per := 0.0
		if l.Waits > 0 {
			per = float64(l.Events) / float64(l.Waits)
		}
		ch <- prometheus.MustNewConstMetric(c.perWait, prometheus.GaugeValue, per, id)
	}
}
