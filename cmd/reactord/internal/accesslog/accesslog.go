// Package accesslog writes one line per completed HTTP request (method, path, status, bytes,
// duration, remote address) as JSON through zap, buffered so the event loops pay for an
// in-memory append rather than a write(2) per request.
//
// Lines reach the destination when the buffer (256 KiB) fills, at least once a second, on
// Flush, on Reopen and on Close. Logging to a file supports logrotate: rename the file, then
// call Reopen (the daemon does on SIGHUP).
package accesslog

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Destinations accepted by New besides a file path.
const (
	Off    = "off"
	Stdout = "stdout"
)

// Buffering parameters: large enough that a busy server writes in big chunks, short enough
// that `tail -f` keeps up.
const (
	bufferSize    = 256 << 10
	flushInterval = time.Second
)

// ErrDestination is returned by New for an empty destination.
var ErrDestination = errors.New("accesslog: empty destination")

// Logger writes access log lines. A nil *Logger is valid and discards everything, which is
// what New returns for "off": callers need no nil checks beyond Enabled. Log may be called
// from any goroutine.
type Logger struct {
	core zapcore.Core
	buf  *zapcore.BufferedWriteSyncer
	file *File // nil unless the destination is a file
}

// New returns a Logger for dest: "off" (returns nil, nil), "stdout", or a file path opened
// for appending. Close it to flush and stop the background flusher.
func New(dest string) (*Logger, error) {
	switch dest {
	case "":
		return nil, ErrDestination
	case Off:
		return nil, nil
	case Stdout:
		return newLogger(os.Stdout, nil), nil
	}
	f, err := OpenFile(dest)
	if err != nil {
		return nil, err
	}
	return newLogger(f, f), nil
}

// noSync hides the destination's Sync: the buffered syncer calls Sync on every periodic
// flush, and an fsync a second (or an EINVAL from a pipe on stdout) buys an access log
// nothing; the page cache is enough.
type noSync struct{ io.Writer }

func (noSync) Sync() error { return nil }

func newLogger(w io.Writer, file *File) *Logger {
	buf := &zapcore.BufferedWriteSyncer{WS: noSync{w}, Size: bufferSize, FlushInterval: flushInterval}
	ec := zapcore.EncoderConfig{
		TimeKey:        "ts",
		EncodeTime:     zapcore.RFC3339NanoTimeEncoder,
		EncodeDuration: zapcore.SecondsDurationEncoder,
		LineEnding:     zapcore.DefaultLineEnding,
		// No level, message or caller: every line is the same kind of record.
	}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(ec), buf, zapcore.InfoLevel)
	return &Logger{core: core, buf: buf, file: file}
}

// Enabled reports whether lines are written (false for "off").
func (l *Logger) Enabled() bool { return l != nil }

// Log writes one line: method and path as given (they are encoded before Log returns, so
// they may alias buffers the caller reuses afterwards, like the codec's request views), the
// status, the bytes sent, the duration and the client's address and port (the zero AddrPort,
// a Unix-socket client's, is logged as ""). It allocates nothing in the steady state.
func (l *Logger) Log(method, path []byte, status int, bytes int64, dur time.Duration, remote netip.AddrPort) {
	if l == nil {
		return
	}
	// The line's fields travel as one inline marshaler taken from a pool: building six
	// zap.Fields would put them (and the []byte values boxed in interfaces) on the heap.
	e, _ := linePool.Get().(*line)
	if e == nil {
		e = new(line)
		e.fields[0] = zap.Inline(e)
	}
	e.method, e.path, e.status, e.bytes, e.dur = method, path, status, bytes, dur
	e.remote = appendAddr(e.remote[:0], remote)
	e.up = Upstream{}
	// Straight to the core: the line is always wanted (no level check, no sampling, no
	// caller or stack lookup), which saves the zap.Logger's Check machinery.
	_ = l.core.Write(zapcore.Entry{Time: time.Now()}, e.fields[:])
	e.method, e.path = nil, nil // do not keep the caller's buffers alive
	linePool.Put(e)
}

// Upstream describes the upstream a proxied request went to, for LogUpstream.
type Upstream struct {
	Addr     string        // as configured: host:port or unix:/path
	Status   int           // its response's status; 0 when none came
	Duration time.Duration // from sending the request to the end of its response
}

// LogUpstream is Log for a request the reverse proxy forwarded: the line also carries the
// upstream's address, status and time ("upstream", "upstream_status", "upstream_duration").
func (l *Logger) LogUpstream(method, path []byte, status int, bytes int64, dur time.Duration, remote netip.AddrPort, up Upstream) {
	if l == nil {
		return
	}
	e, _ := linePool.Get().(*line)
	if e == nil {
		e = new(line)
		e.fields[0] = zap.Inline(e)
	}
	e.method, e.path, e.status, e.bytes, e.dur = method, path, status, bytes, dur
	e.remote = appendAddr(e.remote[:0], remote)
	e.up = up
	_ = l.core.Write(zapcore.Entry{Time: time.Now()}, e.fields[:])
	e.method, e.path, e.up = nil, nil, Upstream{}
	linePool.Put(e)
}

// line is one access log record, marshaled field by field into zap's encoder.
type line struct {
	method, path []byte
	status       int
	bytes        int64
	dur          time.Duration
	remote       []byte
	up           Upstream         // Addr empty: not a proxied request
	fields       [1]zapcore.Field // zap.Inline(self), set once
}

var linePool sync.Pool

// MarshalLogObject writes the record's fields in a fixed order.
func (e *line) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddByteString("method", e.method)
	enc.AddByteString("path", e.path)
	enc.AddInt("status", e.status)
	enc.AddInt64("bytes", e.bytes)
	enc.AddDuration("duration", e.dur)
	enc.AddByteString("remote", e.remote)
	if e.up.Addr != "" {
		enc.AddString("upstream", e.up.Addr)
		enc.AddInt("upstream_status", e.up.Status)
		enc.AddDuration("upstream_duration", e.up.Duration)
	}
	return nil
}

// appendAddr formats a peer's address and port ("" for the zero AddrPort).
func appendAddr(dst []byte, a netip.AddrPort) []byte {
	if !a.IsValid() {
		return dst
	}
	return a.AppendTo(dst)
}

// Flush writes buffered lines to the destination now.
func (l *Logger) Flush() error {
	if l == nil {
		return nil
	}
	return l.buf.Sync()
}

// Reopen flushes buffered lines into the current file, then reopens the file by name (for
// logrotate). It does nothing for stdout and "off".
func (l *Logger) Reopen() error {
	if l == nil || l.file == nil {
		return nil
	}
	// Flush first so lines logged before the rotation stay in the rotated file.
	ferr := l.buf.Sync()
	if err := l.file.Reopen(); err != nil {
		return err
	}
	return ferr
}

// Close flushes, stops the background flusher and closes the file. The Logger must not be
// used afterwards.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	err := l.buf.Stop()
	if l.file != nil {
		if cerr := l.file.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
