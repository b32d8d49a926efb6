package http

import (
	"errors"
	"fmt"
)

// Default limits. They are deliberately tighter than net/http's (1 MiB of headers, no body
// limit) because every byte of a partially received request stays buffered on the loop.
const (
	// DefaultMaxRequestLineBytes bounds the request-line (method, target, version); 414.
	DefaultMaxRequestLineBytes = 8 << 10
	// DefaultMaxHeaderBytes bounds the header section after the request-line, and separately
	// a chunked body's trailer section; 431.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultMaxHeaderCount bounds the number of field lines (and trailer lines); 431.
	DefaultMaxHeaderCount = 100
	// DefaultMaxBodyBytes bounds a request body (decoded, for chunked); 413.
	DefaultMaxBodyBytes = 8 << 20
	// DefaultMaxChunkLineBytes bounds one chunk-size line including extensions; 400.
	DefaultMaxChunkLineBytes = 4 << 10
)

// Upper bounds accepted by Limits.Validate. Offsets into the input are stored as int32.
const (
	maxLimitLineBytes   = 1 << 20
	maxLimitHeaderBytes = 16 << 20
	maxLimitHeaderCount = 1 << 16
)

// Limits bounds what the parser accepts. A zero field means "use the default"; a negative field
// or one above its maximum is rejected by Validate with ErrInvalidLimits.
type Limits struct {
	// MaxRequestLineBytes is the longest request-line (without CRLF), including any empty lines
	// before it. Longer lines get 414 when the method was read, else 400. Max 1 MiB.
	MaxRequestLineBytes int
	// MaxHeaderBytes is the largest header section (field lines and the final CRLF), and the
	// largest trailer section; 431. Max 16 MiB.
	MaxHeaderBytes int
	// MaxHeaderCount is the largest number of field lines, and of trailer lines; 431. Max 65536.
	MaxHeaderCount int
	// MaxBodyBytes is the largest request body; 413. A Content-Length above it is refused as
	// soon as the header section is parsed, before any body byte is read.
	MaxBodyBytes int64
	// MaxChunkLineBytes is the longest chunk-size line including extensions; 400. Max 1 MiB.
	MaxChunkLineBytes int
	// AllowBareLF accepts LF without CR as a line terminator (RFC 9112 §2.2 MAY). Off by
	// default: bare LF is a known request-smuggling vector between lenient and strict peers.
	AllowBareLF bool
}

// DefaultLimits returns the limits used when a Limits field is zero.
func DefaultLimits() Limits {
	return Limits{
		MaxRequestLineBytes: DefaultMaxRequestLineBytes,
		MaxHeaderBytes:      DefaultMaxHeaderBytes,
		MaxHeaderCount:      DefaultMaxHeaderCount,
		MaxBodyBytes:        DefaultMaxBodyBytes,
		MaxChunkLineBytes:   DefaultMaxChunkLineBytes,
	}
}

// Validate reports an error wrapping ErrInvalidLimits, naming the field, if a field is negative
// or above its maximum.
func (l Limits) Validate() error {
	check := func(name string, v, max int64) error {
		if v < 0 || max > 0 && v > max {
			if max > 0 {
				return fmt.Errorf("%w: %s %d: want 0..%d", ErrInvalidLimits, name, v, max)
			}
			return fmt.Errorf("%w: %s %d: negative", ErrInvalidLimits, name, v)
		}
		return nil
	}
	return errors.Join(
		check("MaxRequestLineBytes", int64(l.MaxRequestLineBytes), maxLimitLineBytes),
		check("MaxHeaderBytes", int64(l.MaxHeaderBytes), maxLimitHeaderBytes),
		check("MaxHeaderCount", int64(l.MaxHeaderCount), maxLimitHeaderCount),
		check("MaxBodyBytes", l.MaxBodyBytes, 0),
		check("MaxChunkLineBytes", int64(l.MaxChunkLineBytes), maxLimitLineBytes),
	)
}

// withDefaults returns l with every zero field replaced by its default.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxRequestLineBytes == 0 {
		l.MaxRequestLineBytes = d.MaxRequestLineBytes
	}
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxHeaderCount == 0 {
		l.MaxHeaderCount = d.MaxHeaderCount
	}
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	if l.MaxChunkLineBytes == 0 {
		l.MaxChunkLineBytes = d.MaxChunkLineBytes
	}
	return l
}
