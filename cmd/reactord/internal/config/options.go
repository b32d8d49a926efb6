package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// option is one configuration key: its name (flag and file key alike), the placeholder and
// text shown by -h, and a binder returning the field it sets.
type option struct {
	name  string
	arg   string // placeholder in usage, empty for booleans
	usage string
	bind  func(c *Config) value
}

// value is a field of a Config that can be set from a flag's text or from a TOML value.
// It satisfies flag.Value (plus IsBoolFlag for booleans).
type value interface {
	String() string
	Set(string) error
	setFile(v any) error
}

// options lists every key in the order -h prints them.
var options = []option{
	{"listen", "ADDR", `address to serve, repeatable: "host:port" for TCP (port 0 picks a free port) or "unix:/path" for a Unix socket`,
		func(c *Config) value { return &listValue{p: &c.Listen} }},
	{"poller", "NAME", `I/O backend: auto, or one of the compiled ones (on Linux epoll, uring = the io_uring completion mode, uring-poll, poll, select); auto honours $REACTOR_POLLER; a backend this kernel refuses (uring, uring-poll) falls back to the default with a warning`,
		func(c *Config) value { return &stringValue{p: &c.Poller} }},
	{"loops", "N", "number of event loops, each with its own goroutine and poller (default: GOMAXPROCS)",
		func(c *Config) value { return &intValue{p: &c.Loops} }},
	{"root", "DIR", "directory to serve as static files; empty serves the built-in page",
		func(c *Config) value { return &stringValue{p: &c.Root} }},
	{"follow-symlinks", "", "follow symbolic links that point outside -root (off: only relative links that stay inside are followed)",
		func(c *Config) value { return &boolValue{p: &c.FollowSymlinks} }},
	{"dir-listing", "", "list directories that have no index.html (off: 403)",
		func(c *Config) value { return &boolValue{p: &c.DirListing} }},
	{"serve-dotfiles", "", `serve names starting with "." such as .env or .git/ (off: such paths answer 404 and listings omit them; /.well-known/ is always served)`,
		func(c *Config) value { return &boolValue{p: &c.ServeDotfiles} }},
	{"log-level", "LEVEL", "minimum level of the daemon log: debug, info, warn, error",
		func(c *Config) value { return &stringValue{p: &c.LogLevel} }},
	{"log-format", "FORMAT", "daemon log format on stderr: json, console, or auto (console when stderr is a terminal)",
		func(c *Config) value { return &stringValue{p: &c.LogFormat} }},
	{"access-log", "DEST", "access log: off, stdout, or a file path (opened again by name on SIGHUP)",
		func(c *Config) value { return &stringValue{p: &c.AccessLog} }},
	{"max-conns", "N", "maximum open connections; 0 means only the fd limit applies",
		func(c *Config) value { return &intValue{p: &c.MaxConns} }},
	{"max-conns-per-ip", "N", "maximum open connections from one client IP address (IPv4-mapped IPv6 counts as IPv4); a connection over it is closed at once, unanswered; Unix sockets and -admin-listen are not limited; 0 means no limit",
		func(c *Config) value { return &intValue{p: &c.MaxConnsPerIP} }},
	{"header-timeout", "DURATION", "time allowed to receive a request header; 0 disables",
		func(c *Config) value { return &durationValue{p: &c.HeaderTimeout} }},
	{"read-timeout", "DURATION", "time allowed to receive a whole request, body included; 0 disables",
		func(c *Config) value { return &durationValue{p: &c.ReadTimeout} }},
	{"idle-timeout", "DURATION", "close keep-alive connections idle for this long; 0 disables",
		func(c *Config) value { return &durationValue{p: &c.IdleTimeout} }},
	{"max-header-bytes", "SIZE", "maximum size of the request-line and of the header section, each (bytes, or with KiB/MiB suffix; ≤ 16MiB)",
		func(c *Config) value { return &sizeValue{p: &c.MaxHeaderBytes} }},
	{"max-body-bytes", "SIZE", "maximum size of a request body (bytes, or with KiB/MiB/GiB suffix)",
		func(c *Config) value { return &sizeValue{p: &c.MaxBodyBytes} }},
	{"output-buffer", "SIZE", "per-connection output high-water mark: above it reading that connection (and a proxied response) pauses until the client reads (bytes, or with KiB/MiB suffix)",
		func(c *Config) value { return &sizeValue{p: &c.OutputBuffer} }},
	{"reuseport", "", "set SO_REUSEPORT on TCP listeners so several processes can share a port",
		func(c *Config) value { return &boolValue{p: &c.ReusePort} }},
	{"shutdown-timeout", "DURATION", "time allowed for a graceful shutdown after SIGTERM or SIGINT",
		func(c *Config) value { return &durationValue{p: &c.ShutdownTimeout} }},
	{"addr-file", "FILE", "write the bound addresses to FILE, one per line, once listening",
		func(c *Config) value { return &stringValue{p: &c.AddrFile} }},
	{"admin-listen", "ADDR", `serve /healthz, /readyz, /livez and /metrics on this address ("host:port" or "unix:/path") instead of the public listeners`,
		func(c *Config) value { return &stringValue{p: &c.AdminListen} }},
	{"pid-file", "FILE", "write the process id to FILE once serving (a binary upgrade rewrites it)",
		func(c *Config) value { return &stringValue{p: &c.PidFile} }},
	{"tls-listen", "ADDR", `address to serve HTTPS on, repeatable, alongside -listen ("host:port" or "unix:/path"); needs -tls-cert and -tls-key`,
		func(c *Config) value { return &listValue{p: &c.TLSListen} }},
	{"tls-cert", "FILE", "PEM certificate chain for -tls-listen, leaf first (read again on SIGHUP)",
		func(c *Config) value { return &stringValue{p: &c.TLSCert} }},
	{"tls-key", "FILE", "PEM private key of -tls-cert (read again on SIGHUP)",
		func(c *Config) value { return &stringValue{p: &c.TLSKey} }},
	{"redirect-http", "", "answer requests on the -listen addresses with 301 to https on the first -tls-listen port (the probes and /metrics excepted)",
		func(c *Config) value { return &boolValue{p: &c.RedirectHTTP} }},
	{"hsts", "DURATION", "send Strict-Transport-Security with this max-age on HTTPS responses; 0 disables",
		func(c *Config) value { return &durationValue{p: &c.HSTS} }},
	{"watch-config", "DURATION", "check the -config file this often and reload it when its content changes, as SIGHUP does; 0 disables",
		func(c *Config) value { return &durationValue{p: &c.WatchConfig} }},
	{"proxy", "PREFIX=UPSTREAM[,UPSTREAM...]", `reverse-proxy requests whose path starts with PREFIX to the upstreams ("host:port" or "unix:/path", round-robin), repeatable; "-proxy /=127.0.0.1:9000" proxies everything. The file's [[proxy]] tables also take host, balance (least-conn), health checks and timeouts: see docs/OPERATIONS.md`,
		func(c *Config) value { return &proxyValue{p: &c.Proxy} }},
}

// Keys returns the names of every file key, in the order -h lists them.
func Keys() []string {
	out := make([]string, len(options))
	for i, o := range options {
		out[i] = o.name
	}
	return out
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "table"
	default:
		return fmt.Sprintf("%T", v)
	}
}

type stringValue struct{ p *string }

func (v *stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}
func (v *stringValue) Set(s string) error { *v.p = s; return nil }
func (v *stringValue) setFile(x any) error {
	s, ok := x.(string)
	if !ok {
		return fmt.Errorf("must be a string (got %s)", typeName(x))
	}
	*v.p = s
	return nil
}

type intValue struct{ p *int }

func (v *intValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}
func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("must be an integer (got %q)", s)
	}
	*v.p = n
	return nil
}
func (v *intValue) setFile(x any) error {
	n, ok := x.(int64)
	if !ok {
		return fmt.Errorf("must be an integer (got %s)", typeName(x))
	}
	if int64(int(n)) != n {
		return fmt.Errorf("out of range (got %d)", n)
	}
	*v.p = int(n)
	return nil
}

type boolValue struct{ p *bool }

func (v *boolValue) String() string {
	if v.p == nil {
		return "false"
	}
	return strconv.FormatBool(*v.p)
}
func (v *boolValue) IsBoolFlag() bool { return true }
func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("must be true or false (got %q)", s)
	}
	*v.p = b
	return nil
}
func (v *boolValue) setFile(x any) error {
	b, ok := x.(bool)
	if !ok {
		return fmt.Errorf("must be true or false (got %s)", typeName(x))
	}
	*v.p = b
	return nil
}

type durationValue struct{ p *time.Duration }

func (v *durationValue) String() string {
	if v.p == nil {
		return "0s"
	}
	return v.p.String()
}
func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("must be a duration such as \"10s\" or \"1m30s\" (got %q)", s)
	}
	*v.p = d
	return nil
}
func (v *durationValue) setFile(x any) error {
	s, ok := x.(string)
	if !ok {
		return fmt.Errorf("must be a duration string such as \"10s\" (got %s)", typeName(x))
	}
	return v.Set(s)
}

type sizeValue struct{ p *int64 }

func (v *sizeValue) String() string {
	if v.p == nil {
		return "0"
	}
	n := *v.p
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10)
}
func (v *sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return fmt.Errorf("must be a size such as 65536 or \"64KiB\" (got %q)", s)
	}
	*v.p = n
	return nil
}
func (v *sizeValue) setFile(x any) error {
	switch t := x.(type) {
	case int64:
		*v.p = t
		return nil
	case string:
		return v.Set(t)
	}
	return fmt.Errorf("must be an integer or a size string such as \"64KiB\" (got %s)", typeName(x))
}

// listValue is a repeatable flag. The first Set replaces whatever the list held (the default
// or the file's value), later ones append: "-listen a -listen b" means exactly [a b].
type listValue struct {
	p       *[]string
	touched bool
}

func (v *listValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}
func (v *listValue) Set(s string) error {
	if !v.touched {
		*v.p = nil
		v.touched = true
	}
	*v.p = append(*v.p, s)
	return nil
}
func (v *listValue) setFile(x any) error {
	switch t := x.(type) {
	case string:
		*v.p = []string{t}
		return nil
	case []any:
		out := make([]string, 0, len(t))
		for i, e := range t {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("element %d must be a string (got %s)", i, typeName(e))
			}
			out = append(out, s)
		}
		*v.p = out
		return nil
	}
	return fmt.Errorf("must be a string or an array of strings (got %s)", typeName(x))
}

// Changed returns the keys whose values differ between a and b, in the order -h lists them
// (for a reload's log line, and to tell a reload that changes nothing).
func Changed(a, b Config) []string {
	var keys []string
	for _, o := range options {
		va, vb := o.bind(&a), o.bind(&b)
		same := va.String() == vb.String()
		if la, ok := va.(*listValue); ok {
			// Compared element by element: String joins with commas, which a path may hold.
			same = slices.Equal(*la.p, *vb.(*listValue).p)
		}
		if !same {
			keys = append(keys, o.name)
		}
	}
	return keys
}
