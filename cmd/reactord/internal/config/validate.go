package config

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/reactord/reactord/reactor"
)

// Validate checks every key and returns the first problem as an *Error, in the order -h lists
// the keys. It looks at the file system (root must be a directory; the parent directories of
// unix sockets, the access log and the addr file must exist) but creates, binds or opens
// nothing.
func (c *Config) Validate() error {
	if len(c.Listen) == 0 {
		return errorf("listen", "at least one address is required")
	}
	seen := make(map[string]bool, len(c.Listen))
	for _, a := range c.Listen {
		if err := checkListen(a); err != nil {
			return err
		}
		if seen[a] {
			return errorf("listen", "%q given twice", a)
		}
		seen[a] = true
	}
	if err := checkPoller(c.Poller); err != nil {
		return err
	}
	if c.Loops < 1 || c.Loops > MaxLoops {
		return errorf("loops", "must be ≥ 1 and ≤ %d (got %d)", MaxLoops, c.Loops)
	}
	if c.Root != "" {
		if err := statDir(c.Root); err != nil {
			return errorf("root", "%s: %v", c.Root, err)
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return errorf("log-level", "must be debug, info, warn or error (got %q)", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "console", "auto":
	default:
		return errorf("log-format", "must be json, console or auto (got %q)", c.LogFormat)
	}
	switch c.AccessLog {
	case "off", "stdout":
	case "":
		return errorf("access-log", `must be off, stdout or a file path (got "")`)
	default:
		if err := checkParent(c.AccessLog); err != nil {
			return errorf("access-log", "%v", err)
		}
	}
	if c.MaxConns < 0 {
		return errorf("max-conns", "must be ≥ 0 (got %d)", c.MaxConns)
	}
	if c.MaxConnsPerIP < 0 || c.MaxConnsPerIP > MaxConnsPerIP {
		return errorf("max-conns-per-ip", "must be ≥ 0 (0: no limit) and ≤ %d (got %d)", MaxConnsPerIP, c.MaxConnsPerIP)
	}
	for _, d := range []struct {
		key string
		v   int64
	}{{"header-timeout", int64(c.HeaderTimeout)}, {"read-timeout", int64(c.ReadTimeout)}, {"idle-timeout", int64(c.IdleTimeout)}} {
		if d.v < 0 {
			return errorf(d.key, "must be ≥ 0 (got %v)", durationText(d.v))
		}
	}
	if c.MaxHeaderBytes < MinHeaderBytes || c.MaxHeaderBytes > MaxHeaderBytes {
		return errorf("max-header-bytes", "must be ≥ %d and ≤ 16MiB (got %d)", MinHeaderBytes, c.MaxHeaderBytes)
	}
	if c.MaxBodyBytes < 1 {
		return errorf("max-body-bytes", "must be ≥ 1 (got %d)", c.MaxBodyBytes)
	}
	if c.OutputBuffer < MinOutputBuffer || c.OutputBuffer > MaxOutputBuffer {
		return errorf("output-buffer", "must be ≥ 4KiB and ≤ 1GiB (got %d)", c.OutputBuffer)
	}
	if c.ShutdownTimeout <= 0 {
		return errorf("shutdown-timeout", "must be > 0 (got %v)", c.ShutdownTimeout)
	}
	if c.AddrFile != "" {
		if err := checkParent(c.AddrFile); err != nil {
			return errorf("addr-file", "%v", err)
		}
	}
	if c.AdminListen != "" {
		if err := checkListen(c.AdminListen); err != nil {
			err.Key = "admin-listen"
			return err
		}
		// Port 0 picks a free port for each socket, so "127.0.0.1:0" twice is two sockets.
		if seen[c.AdminListen] && !strings.HasSuffix(c.AdminListen, ":0") {
			return errorf("admin-listen", "%q is also a listen address", c.AdminListen)
		}
	}
	if err := c.validateTLS(seen); err != nil {
		return err
	}
	if c.PidFile != "" {
		if err := checkParent(c.PidFile); err != nil {
			return errorf("pid-file", "%v", err)
		}
	}
	if c.WatchConfig < 0 {
		return errorf("watch-config", "must be ≥ 0 (got %v)", durationText(int64(c.WatchConfig)))
	}
	if c.WatchConfig > 0 && c.ConfigFile == "" {
		return errorf("watch-config", "needs a -config file to watch")
	}
	return checkProxy(c.Proxy)
}

func durationText(ns int64) string {
	return strconv.FormatInt(ns, 10) + "ns"
}

// checkListen accepts "unix:/path" (parent directory must exist) and "host:port" with a
// numeric port in 0..65535. The host may be empty (all interfaces), an IP literal or a name.
func checkListen(a string) *Error {
	if path, ok := IsUnix(a); ok {
		if path == "" {
			return errorf("listen", "%q: empty unix socket path", a)
		}
		if strings.ContainsRune(path, 0) {
			return errorf("listen", "%q: NUL in unix socket path", a)
		}
		// sun_path is 108 bytes on Linux and 104 on the BSDs, NUL included.
		if len(path) > 103 {
			return errorf("listen", "%q: unix socket path longer than 103 bytes", a)
		}
		if err := checkParent(path); err != nil {
			return errorf("listen", "%q: %v", a, err)
		}
		return nil
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return errorf("listen", "%q: want host:port or unix:/path", a)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return errorf("listen", "%q: port must be a number in 0..65535", a)
	}
	if strings.ContainsAny(host, " /\x00") {
		return errorf("listen", "%q: invalid host", a)
	}
	return nil
}

func checkPoller(name string) error {
	if name == "auto" {
		return nil
	}
	have := reactor.Pollers()
	for _, n := range have {
		if n == name {
			return nil
		}
	}
	return errorf("poller", "must be auto or one of %s (got %q)", strings.Join(have, ", "), name)
}

// checkParent reports whether the directory that would hold path exists.
func checkParent(path string) error {
	dir := filepath.Dir(path)
	if err := statDir(dir); err != nil {
		return fmt.Errorf("directory %s: %v", dir, err)
	}
	return nil
}

// validateTLS checks the HTTPS keys: addresses like -listen's and distinct from them, a
// certificate and a key that exist (their content is checked when the daemon loads them, so
// a mismatched pair is reported as a tls-cert error before anything is bound), and the
// options that only make sense with TLS.
func (c *Config) validateTLS(plain map[string]bool) error {
	seen := make(map[string]bool, len(c.TLSListen))
	for _, a := range c.TLSListen {
		if err := checkListen(a); err != nil {
			err.Key = "tls-listen"
			return err
		}
		if (plain[a] || a == c.AdminListen) && !strings.HasSuffix(a, ":0") {
			return errorf("tls-listen", "%q is also a plain listen address", a)
		}
		if seen[a] {
			return errorf("tls-listen", "%q given twice", a)
		}
		seen[a] = true
	}
	if len(c.TLSListen) == 0 {
		switch {
		case c.TLSCert != "" || c.TLSKey != "":
			return errorf("tls-cert", "given without -tls-listen")
		case c.RedirectHTTP:
			return errorf("redirect-http", "needs a -tls-listen address to redirect to")
		}
	} else {
		for _, f := range []struct{ key, path string }{{"tls-cert", c.TLSCert}, {"tls-key", c.TLSKey}} {
			if f.path == "" {
				return errorf(f.key, "required with -tls-listen")
			}
			if err := statFile(f.path); err != nil {
				return errorf(f.key, "%s: %v", f.path, err)
			}
		}
	}
	if c.HSTS < 0 {
		return errorf("hsts", "must be ≥ 0 (got %v)", durationText(int64(c.HSTS)))
	}
	return nil
}
