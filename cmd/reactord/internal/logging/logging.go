// Package logging builds the daemon's own zap logger (not the access log): JSON by default
// for log collectors, the human console format when stderr is a terminal.
package logging

import (
	"errors"
	"fmt"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ErrFormat is returned by New for a format other than json, console or auto.
var ErrFormat = errors.New("logging: unknown format")

// ErrLevel is returned by New for a level other than debug, info, warn or error.
var ErrLevel = errors.New("logging: unknown level")

// ErrNilFile is returned by New when no output file is given.
var ErrNilFile = errors.New("logging: nil output")

// New returns a logger writing to out (normally os.Stderr) at the given minimum level
// ("debug", "info", "warn", "error") in the given format: "json", "console", or "auto",
// which picks console when out is a terminal and json otherwise. Writes are unbuffered so a
// crash loses nothing; the daemon's own log is low-volume.
func New(level, format string, out *os.File) (*zap.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	return NewAt(zap.NewAtomicLevelAt(lvl), format, out)
}

// ParseLevel reads a level name: debug, info, warn or error (ErrLevel otherwise).
func ParseLevel(level string) (zapcore.Level, error) {
	var lvl zapcore.Level
	switch level {
	case "debug", "info", "warn", "error":
		if err := lvl.UnmarshalText([]byte(level)); err == nil {
			return lvl, nil
		}
	}
	return lvl, fmt.Errorf("%w: %q", ErrLevel, level)
}

// NewAt is New with a level the caller keeps: a configuration reload changes the minimum
// level of the running logger with level.SetLevel, from any goroutine.
func NewAt(level zap.AtomicLevel, format string, out *os.File) (*zap.Logger, error) {
	if out == nil {
		return nil, ErrNilFile
	}
	lvl := level
	console := false
	switch format {
	case "json":
	case "console":
		console = true
	case "auto":
		console = IsTerminal(int(out.Fd()))
	default:
		return nil, fmt.Errorf("%w: %q", ErrFormat, format)
	}
	var enc zapcore.Encoder
	if console {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		ec := zap.NewProductionEncoderConfig()
		ec.TimeKey = "ts"
		ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
		ec.EncodeDuration = zapcore.StringDurationEncoder
		enc = zapcore.NewJSONEncoder(ec)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(out)), lvl)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(out)))), nil
}
