package config

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ProxyRoute is one reverse-proxy route: requests whose path starts with Prefix (and, when
// Host is set, whose Host matches it) go to the Upstreams. In the file each route is a
// [[proxy]] table with these keys; on the command line "-proxy PREFIX=UPSTREAM[,UPSTREAM...]"
// gives a route with the defaults for everything else. Zero values mean the proxy's defaults.
type ProxyRoute struct {
	Host           string        // host = "api.example.com" (port ignored); empty: any
	Prefix         string        // prefix = "/api/"
	Upstreams      []string      // upstreams = ["127.0.0.1:9000", "unix:/run/app.sock"]
	Balance        string        // balance = "round-robin" | "least-conn"
	MaxFails       int           // max-fails = 3 (consecutive failures that eject; -1: never)
	FailTimeout    time.Duration // fail-timeout = "10s" (ejection length)
	ConnectTimeout time.Duration // connect-timeout = "5s" (504 when exceeded)
	HeaderTimeout  time.Duration // header-timeout = "60s" (response head, 504)
	ReadTimeout    time.Duration // read-timeout = "60s" (silence during a response)
	IdleTimeout    time.Duration // idle-timeout = "60s" (pooled keep-alive connections)
	MaxConns       int           // max-conns = 0 (per upstream per loop; 0: no cap)
	MaxIdle        int           // max-idle = 0 (idle connections kept per upstream per loop)
	Pipeline       int           // pipeline = 0 (requests of a client batch sharing a connection)
	HealthCheck    string        // health-check = "/healthz" (active checks; empty: off)
	HealthInterval time.Duration // health-interval = "5s"
	HealthTimeout  time.Duration // health-timeout = "2s"
}

// proxyKeys are the keys of a [[proxy]] table, in the order the documentation lists them.
var proxyKeys = []string{"host", "prefix", "upstreams", "balance", "max-fails", "fail-timeout", "connect-timeout",
	"header-timeout", "read-timeout", "idle-timeout", "max-conns", "max-idle", "pipeline", "health-check",
	"health-interval", "health-timeout"}

// proxyValue is the proxy key: a repeatable flag, or an array of tables in the file. As for
// -listen, the first flag replaces the file's routes and later ones append.
type proxyValue struct {
	p       *[]ProxyRoute
	touched bool
}

func (v *proxyValue) String() string {
	if v.p == nil {
		return ""
	}
	var parts []string
	for _, r := range *v.p {
		parts = append(parts, r.Prefix+"="+strings.Join(r.Upstreams, ","))
	}
	return strings.Join(parts, " ")
}

// Set parses "PREFIX=UPSTREAM[,UPSTREAM...]".
func (v *proxyValue) Set(s string) error {
	prefix, ups, ok := strings.Cut(s, "=")
	if !ok || prefix == "" || ups == "" {
		return fmt.Errorf("want PREFIX=UPSTREAM[,UPSTREAM...] (got %q)", s)
	}
	r := ProxyRoute{Prefix: prefix}
	for _, u := range strings.Split(ups, ",") {
		r.Upstreams = append(r.Upstreams, strings.TrimSpace(u))
	}
	if !v.touched {
		*v.p = nil
		v.touched = true
	}
	*v.p = append(*v.p, r)
	return nil
}

func (v *proxyValue) setFile(x any) error {
	var tables []map[string]any
	switch t := x.(type) {
	case []map[string]any:
		tables = t
	case []any:
		for i, e := range t {
			m, ok := e.(map[string]any)
			if !ok {
				return fmt.Errorf("element %d must be a table (got %s)", i, typeName(e))
			}
			tables = append(tables, m)
		}
	case map[string]any:
		tables = []map[string]any{t}
	default:
		return fmt.Errorf("must be [[proxy]] tables (got %s)", typeName(x))
	}
	out := make([]ProxyRoute, 0, len(tables))
	for i, m := range tables {
		r, err := proxyRouteFromTable(m)
		if err != nil {
			return fmt.Errorf("route %d: %v", i+1, err)
		}
		out = append(out, r)
	}
	*v.p = out
	return nil
}

// proxyRouteFromTable reads one [[proxy]] table; unknown keys are errors.
func proxyRouteFromTable(m map[string]any) (ProxyRoute, error) {
	var r ProxyRoute
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var err error
		x := m[k]
		switch k {
		case "host":
			err = (&stringValue{p: &r.Host}).setFile(x)
		case "prefix":
			err = (&stringValue{p: &r.Prefix}).setFile(x)
		case "upstreams":
			err = (&listValue{p: &r.Upstreams}).setFile(x)
		case "balance":
			err = (&stringValue{p: &r.Balance}).setFile(x)
		case "max-fails":
			err = (&intValue{p: &r.MaxFails}).setFile(x)
		case "fail-timeout":
			err = (&durationValue{p: &r.FailTimeout}).setFile(x)
		case "connect-timeout":
			err = (&durationValue{p: &r.ConnectTimeout}).setFile(x)
		case "header-timeout":
			err = (&durationValue{p: &r.HeaderTimeout}).setFile(x)
		case "read-timeout":
			err = (&durationValue{p: &r.ReadTimeout}).setFile(x)
		case "idle-timeout":
			err = (&durationValue{p: &r.IdleTimeout}).setFile(x)
		case "max-conns":
			err = (&intValue{p: &r.MaxConns}).setFile(x)
		case "max-idle":
			err = (&intValue{p: &r.MaxIdle}).setFile(x)
		case "pipeline":
			err = (&intValue{p: &r.Pipeline}).setFile(x)
		case "health-check":
			err = (&stringValue{p: &r.HealthCheck}).setFile(x)
		case "health-interval":
			err = (&durationValue{p: &r.HealthInterval}).setFile(x)
		case "health-timeout":
			err = (&durationValue{p: &r.HealthTimeout}).setFile(x)
		default:
			return r, fmt.Errorf("unknown key %q (keys: %s)", k, strings.Join(proxyKeys, ", "))
		}
		if err != nil {
			return r, fmt.Errorf("%s: %v", k, err)
		}
	}
	return r, nil
}

// checkProxy validates the routes: a prefix starting with "/", at least one upstream, each
// "host:port" (numeric port) or "unix:/absolute/path", a known balance policy, no negative
// durations or counts, and no route given twice.
func checkProxy(routes []ProxyRoute) error {
	seen := map[string]bool{}
	for i, r := range routes {
		where := fmt.Sprintf("route %d (%s%s)", i+1, r.Host, r.Prefix)
		fail := func(format string, args ...any) error {
			return errorf("proxy", "%s: %s", where, fmt.Sprintf(format, args...))
		}
		if r.Prefix == "" || r.Prefix[0] != '/' {
			return fail("prefix %q must start with /", r.Prefix)
		}
		if strings.ContainsAny(r.Prefix, " ?#\x00") {
			return fail("prefix %q: spaces, ? and # are not part of a path", r.Prefix)
		}
		if strings.ContainsAny(r.Host, " /\x00") {
			return fail("host %q is not a host name", r.Host)
		}
		key := strings.ToLower(r.Host) + " " + r.Prefix
		if seen[key] {
			return fail("given twice")
		}
		seen[key] = true
		if len(r.Upstreams) == 0 {
			return fail("no upstream")
		}
		dup := map[string]bool{}
		for _, u := range r.Upstreams {
			if err := checkUpstream(u); err != nil {
				return fail("upstream %q: %v", u, err)
			}
			if dup[u] {
				return fail("upstream %q given twice", u)
			}
			dup[u] = true
		}
		switch r.Balance {
		case "", "round-robin", "least-conn":
		default:
			return fail("balance must be round-robin or least-conn (got %q)", r.Balance)
		}
		for _, d := range []struct {
			key string
			v   time.Duration
		}{{"fail-timeout", r.FailTimeout}, {"connect-timeout", r.ConnectTimeout}, {"header-timeout", r.HeaderTimeout},
			{"read-timeout", r.ReadTimeout}, {"idle-timeout", r.IdleTimeout}, {"health-interval", r.HealthInterval},
			{"health-timeout", r.HealthTimeout}} {
			if d.v < 0 {
				return fail("%s must be ≥ 0 (got %v)", d.key, d.v)
			}
		}
		for _, n := range []struct {
			key string
			v   int
		}{{"max-conns", r.MaxConns}, {"max-idle", r.MaxIdle}, {"pipeline", r.Pipeline}} {
			if n.v < 0 {
				return fail("%s must be ≥ 0 (got %d)", n.key, n.v)
			}
		}
		if r.MaxFails < -1 {
			return fail("max-fails must be ≥ -1 (got %d)", r.MaxFails)
		}
		if r.HealthCheck != "" && r.HealthCheck[0] != '/' {
			return fail("health-check %q must be a path starting with /", r.HealthCheck)
		}
	}
	return nil
}

// checkUpstream accepts "unix:/absolute/path" and "host:port" with a port in 1..65535.
func checkUpstream(u string) error {
	if path, ok := strings.CutPrefix(u, "unix:"); ok {
		if path == "" || path[0] != '/' {
			return errors.New("want unix:/absolute/path")
		}
		if len(path) > 103 {
			return errors.New("unix socket path longer than 103 bytes")
		}
		return nil
	}
	if strings.Contains(u, "://") {
		return errors.New("want host:port or unix:/path, without a scheme")
	}
	host, port, err := net.SplitHostPort(u)
	if err != nil || host == "" {
		return errors.New("want host:port or unix:/path")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return errors.New("port must be a number in 1..65535")
	}
	return nil
}
