package proxy

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the proxy's Prometheus instruments, labelled by upstream (its configured
// address) and route (the group's name: its host and prefix). One Metrics serves every Proxy
// of a process — a reload builds a new Proxy beside the running one — and is registered once
// (Collectors). Safe for concurrent use.
type Metrics = metricSet

// NewMetrics returns the instruments, not registered yet.
func NewMetrics() *Metrics { return newMetricSet() }

// Collectors returns what to register with a prometheus.Registry.
func (m *metricSet) Collectors() []prometheus.Collector { return m.collectors() }

// metricSet is Metrics.
type metricSet struct {
	requests  *prometheus.CounterVec   // upstream, route, code: 1xx..5xx or "error"
	duration  *prometheus.HistogramVec // upstream, route
	errors    *prometheus.CounterVec   // upstream, route, kind
	ejections *prometheus.CounterVec   // upstream, route
	retries   *prometheus.CounterVec   // upstream, route: requests sent to another upstream after a connect error
	gauges    *upstreamCollector
}

// Error kinds counted by reactord_upstream_errors_total.
const (
	errConnect  = "connect"  // refused, unreachable, name lookup failed, dial timeout
	errTimeout  = "timeout"  // response head or body too slow
	errProtocol = "protocol" // malformed or unframeable response
	errClosed   = "closed"   // reset or closed before the response was complete
	errClient   = "client"   // the client went away before the response was complete
)

var errKinds = [...]string{errConnect, errTimeout, errProtocol, errClosed, errClient}

var codeClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// upstreamBuckets: an upstream on the same host answers in tens of microseconds, a slow
// application in seconds.
var upstreamBuckets = prometheus.ExponentialBuckets(50e-6, 4, 10)

func newMetricSet() *metricSet {
	labels := []string{"upstream", "route"}
	return &metricSet{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "reactord", Subsystem: "upstream", Name: "requests_total",
			Help: "Requests forwarded to an upstream, by the status class of its response, or \"error\" when none came.",
		}, append(labels, "code")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "reactord", Subsystem: "upstream", Name: "request_duration_seconds",
			Help:    "Time from sending a request upstream to the end of its response, at event-loop clock resolution.",
			Buckets: upstreamBuckets,
		}, labels),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "reactord", Subsystem: "upstream", Name: "errors_total",
			Help: "Forwarded requests that failed, by kind: connect, timeout, protocol, closed, client.",
		}, append(labels, "kind")),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "reactord", Subsystem: "upstream", Name: "ejections_total",
			Help: "Times an upstream was taken out of its group by passive health (max-fails failures in a row).",
		}, labels),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "reactord", Subsystem: "upstream", Name: "next_upstream_total",
			Help: "Requests sent to another upstream of the group after this one could not be connected to.",
		}, labels),
		gauges: &upstreamCollector{
			up: prometheus.NewDesc("reactord_upstream_up",
				"1 while the upstream takes requests, 0 while ejected by passive health or failing its active check.", labels, nil),
			active: prometheus.NewDesc("reactord_upstream_active_requests",
				"Requests in flight to the upstream.", labels, nil),
		},
	}
}

// Collectors returns what the daemon registers.
func (m *metricSet) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.duration, m.errors, m.ejections, m.retries, m.gauges}
}

// upstreamMetrics are one upstream's resolved instruments: per request, an array index and
// an atomic add.
type upstreamMetrics struct {
	codes     [len(codeClasses)]prometheus.Counter
	failed    prometheus.Counter
	errs      [len(errKinds)]prometheus.Counter
	duration  prometheus.Observer
	ejections prometheus.Counter
	retries   prometheus.Counter
}

func (m *metricSet) forUpstream(u *Upstream) *upstreamMetrics {
	name, route := u.Name, u.group.name
	um := &upstreamMetrics{
		failed:    m.requests.WithLabelValues(name, route, "error"),
		duration:  m.duration.WithLabelValues(name, route),
		ejections: m.ejections.WithLabelValues(name, route),
		retries:   m.retries.WithLabelValues(name, route),
	}
	for i, c := range codeClasses {
		um.codes[i] = m.requests.WithLabelValues(name, route, c)
	}
	for i, k := range errKinds {
		um.errs[i] = m.errors.WithLabelValues(name, route, k)
	}
	m.gauges.add(u)
	return um
}

func (um *upstreamMetrics) status(code int) {
	if c := code/100 - 1; c >= 0 && c < len(um.codes) {
		um.codes[c].Inc()
	}
}

func (um *upstreamMetrics) error(kind string) {
	um.failed.Inc()
	for i, k := range errKinds {
		if k == kind {
			um.errs[i].Inc()
			return
		}
	}
}

// upstreamCollector reads health and load at scrape time, for the upstreams of the proxies
// alive now.
type upstreamCollector struct {
	up, active *prometheus.Desc
	mu         sync.Mutex
	ups        []*Upstream
}

func (c *upstreamCollector) add(u *Upstream) {
	c.mu.Lock()
	c.ups = append(c.ups, u)
	c.mu.Unlock()
}

// remove forgets the upstreams of a proxy that closed.
func (c *upstreamCollector) remove(gone []*Upstream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := c.ups[:0]
	for _, u := range c.ups {
		if !slices.Contains(gone, u) {
			keep = append(keep, u)
		}
	}
	clear(c.ups[len(keep):])
	c.ups = keep
}

func (c *upstreamCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.active
}

func (c *upstreamCollector) Collect(ch chan<- prometheus.Metric) {
	now := timeNow()
	c.mu.Lock()
	ups := slices.Clone(c.ups)
	c.mu.Unlock()
	for _, u := range ups {
		v := 0.0
		if u.Admitted(now) {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, v, u.Name, u.group.name)
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(u.active.Load()), u.Name, u.group.name)
	}
}
