// Package config holds the daemon's configuration: its keys, their defaults, how they are read
// from the command line and from an optional TOML file, and how they are checked.
//
// Every key has one name, used both as the flag (-idle-timeout) and as the file key
// (idle-timeout = "60s"). Precedence is defaults < file < flags: a flag given on the command
// line always wins over the file, and a repeatable flag (-listen) given on the command line
// replaces the file's list instead of appending to it.
//
// Every problem is reported as an *Error naming the key and the reason on one line, so the
// daemon can refuse to start with a message an operator can act on, before it binds anything.
package config

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Config is the daemon's complete configuration after defaults, the file and the flags have
// been merged. The zero value is not useful; start from Defaults.
type Config struct {
	// Listen lists the addresses to serve: "host:port" for TCP (port 0 picks a free one) or
	// "unix:/path" for a Unix socket.
	Listen []string
	// Poller is the I/O backend: "auto", a readiness backend ("epoll", "uring-poll", "poll",
	// "select") or "uring", the io_uring completion mode (reactor.Pollers for this OS).
	Poller string
	// Loops is the number of event loops (one goroutine and one poller each).
	Loops int
	// Root is the directory served as static files; empty serves the built-in page.
	Root string
	// FollowSymlinks lets symbolic links under Root point anywhere. When false, a link is
	// followed only if it is relative and stays under Root.
	FollowSymlinks bool
	// DirListing serves an HTML listing for directories without index.html.
	DirListing bool
	// ServeDotfiles serves files and directories whose name starts with "." When false (the
	// default) a path with such a segment, other than a leading /.well-known/, answers 404
	// and listings leave such entries out.
	ServeDotfiles bool
	// LogLevel is the minimum level of the daemon's own log: debug, info, warn or error.
	LogLevel string
	// LogFormat is json, console, or auto (console when stderr is a terminal).
	LogFormat string
	// AccessLog is off, stdout, or the path of a file that SIGHUP reopens (a reload opens it
	// by name again).
	AccessLog string
	// MaxConns caps open connections; 0 leaves only the process's fd limit.
	MaxConns int
	// MaxConnsPerIP caps the open connections of one client IP address on the public
	// listeners (TCP and TLS; Unix sockets and the admin listener are not limited); a
	// connection over it is closed at accept, unanswered. 0, the default, is no limit.
	MaxConnsPerIP int
	// HeaderTimeout bounds the time to receive a request's header; 0 disables it.
	HeaderTimeout time.Duration
	// ReadTimeout bounds the time to receive a whole request, body included; 0 disables it.
	ReadTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle for this long; 0 disables it.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps the request-line (at most 1 MiB of it) and, separately, the header
	// section of a request.
	MaxHeaderBytes int64
	// MaxBodyBytes caps the size of a request body.
	MaxBodyBytes int64
	// OutputBuffer is each connection's output high-water mark: above it the server stops
	// reading that connection (and a proxied upstream's response pauses) until the client
	// has read it down to half. It bounds the memory a slow client can hold.
	OutputBuffer int64
	// ReusePort sets SO_REUSEPORT on TCP listeners so several processes can share a port.
	ReusePort bool
	// ShutdownTimeout bounds the graceful shutdown after SIGTERM or SIGINT.
	ShutdownTimeout time.Duration
	// AddrFile, when set, names a file the daemon writes its bound addresses to, one per
	// line, once it is listening (useful with port 0).
	AddrFile string
	// AdminListen, when set, is the address ("host:port" or "unix:/path") of a second
	// listener that answers /healthz, /readyz, /livez and /metrics; the public listeners then
	// serve only content.
	AdminListen string
	// PidFile, when set, names a file the daemon writes its process id to once it serves; a
	// binary upgrade rewrites it with the new process's id.
	PidFile string
	// TLSListen lists the addresses to serve HTTPS on, alongside Listen ("host:port" or
	// "unix:/path"); it needs TLSCert and TLSKey.
	TLSListen []string
	// TLSCert and TLSKey name the PEM files of the certificate chain (leaf first) and its
	// private key. They are read at start and again on every reload (SIGHUP), so a renewed
	// certificate is served without a restart.
	TLSCert, TLSKey string
	// RedirectHTTP answers every request on the plain listeners, the probes and /metrics
	// excepted, with 301 to the same path on the first TLS listener's port.
	RedirectHTTP bool
	// HSTS, when positive, adds "Strict-Transport-Security: max-age=N" (N in seconds) to the
	// responses sent over TLS.
	HSTS time.Duration
	// WatchConfig, when positive, is how often the -config file is checked for a change of
	// content; a change reloads it as SIGHUP does. 0 disables the check.
	WatchConfig time.Duration
	// Proxy lists the reverse-proxy routes; a request matching none is served by the
	// static files (or the built-in page).
	Proxy []ProxyRoute

	// ConfigFile is the file that was read (-config), or empty. It is not a file key.
	ConfigFile string
	// ShowVersion is set by -version. It is not a file key.
	ShowVersion bool
}

// Limits on numeric keys, exported so documentation and tests name the same numbers.
const (
	// MaxLoops is the largest accepted loops value.
	MaxLoops = 1024
	// MaxConnsPerIP is the largest accepted max-conns-per-ip (the counter's per-address
	// count is 32 bits).
	MaxConnsPerIP = 1<<31 - 1
	// MinHeaderBytes is the smallest accepted max-header-bytes: a request line and a Host
	// header must fit.
	MinHeaderBytes = 256
	// MaxHeaderBytes is the largest accepted max-header-bytes (the HTTP codec's ceiling).
	MaxHeaderBytes = 16 << 20
	// MinOutputBuffer and MaxOutputBuffer bound output-buffer.
	MinOutputBuffer = 4 << 10
	MaxOutputBuffer = 1 << 30
)

// DefaultListen is the address served when no -listen is given.
const DefaultListen = "127.0.0.1:8080"

// Defaults returns the configuration used when neither a file nor flags say otherwise.
func Defaults() Config {
	return Config{
		Listen:          []string{DefaultListen},
		Poller:          "auto",
		Loops:           runtime.GOMAXPROCS(0),
		LogLevel:        "info",
		LogFormat:       "auto",
		AccessLog:       "stdout",
		HeaderTimeout:   10 * time.Second,
		ReadTimeout:     30 * time.Second,
		IdleTimeout:     60 * time.Second,
		MaxHeaderBytes:  32 << 10,
		MaxBodyBytes:    1 << 20,
		OutputBuffer:    1 << 20,
		ShutdownTimeout: 10 * time.Second,
	}
}

// ErrInvalid is matched (errors.Is) by every *Error, so callers can tell a configuration
// problem from other failures.
var ErrInvalid = errors.New("invalid config")

// ErrHelp is returned by Parse when -h or -help was given; the usage has been written.
var ErrHelp = errors.New("help requested")

// Error is a configuration problem: the key (flag or file key) and why its value is wrong.
// Its message is always a single line.
type Error struct {
	Key    string
	Reason string
}

// Error returns "key: reason".
func (e *Error) Error() string { return oneLine(e.Key + ": " + e.Reason) }

// Is makes errors.Is(err, ErrInvalid) true for every *Error.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func errorf(key, format string, args ...any) *Error {
	return &Error{Key: key, Reason: fmt.Sprintf(format, args...)}
}

// oneLine folds any line breaks (from a wrapped parser error, say) so the message stays on
// one line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(strings.NewReplacer("\r", " ", "\n", " ").Replace(s)), " ")
}

// IsUnix reports whether a listen address names a Unix socket ("unix:/path") and returns the
// path.
func IsUnix(addr string) (path string, ok bool) {
	if p, found := strings.CutPrefix(addr, "unix:"); found {
		return p, true
	}
	return "", false
}

// parseSize reads a byte count: a plain integer, or an integer followed by B, KiB, MiB or GiB.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("not a size")
	}
	if n < 0 {
		return n, nil // negative values are reported by Validate with the key's own rule
	}
	if n > (1<<62)/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}

// statDir reports whether path names an existing directory, with a reason when it does not.
func statDir(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return pe.Err
		}
		return err
	}
	if !fi.IsDir() {
		return errors.New("not a directory")
	}
	return nil
}

// statFile reports whether path names an existing regular file, with a reason when not.
func statFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return pe.Err
		}
		return err
	}
	if !fi.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	return nil
}
