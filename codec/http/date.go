package http

import "time"

// TimeFormat is the IMF-fixdate layout of the Date header (RFC 9110 §5.6.7); times are UTC.
const TimeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"

// DateCache holds the current Date header value, formatted at most once per second into a fixed
// buffer without allocating. The connection layer owns one per loop and calls Update from a
// one-second loop timer (or with the loop's cached clock); responses read it with Bytes.
// Not safe for concurrent use: it belongs to the loop goroutine.
type DateCache struct {
	buf  [len(TimeFormat)]byte
	unix int64
	set  bool
}

// Update formats now if its second differs from the cached one and returns the value. The
// returned slice aliases the cache: it changes on the next Update.
func (d *DateCache) Update(now time.Time) []byte {
	sec := now.Unix()
	if !d.set || sec != d.unix {
		now.UTC().AppendFormat(d.buf[:0], TimeFormat)
		d.unix, d.set = sec, true
	}
	return d.buf[:]
}

// Bytes returns the cached value, or nil before the first Update. The slice aliases the cache.
func (d *DateCache) Bytes() []byte {
	if !d.set {
		return nil
	}
	return d.buf[:]
}
