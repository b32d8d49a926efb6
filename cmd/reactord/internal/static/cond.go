package static

import (
	"strconv"
	"strings"
	"time"
)

// TimeFormat is the IMF-fixdate layout of RFC 9110 §5.6.7, used for Last-Modified.
const TimeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"

// The two obsolete date layouts a recipient must still accept (RFC 9110 §5.6.7).
const (
	rfc850Format  = "Monday, 02-Jan-06 15:04:05 GMT"
	asctimeFormat = "Mon Jan _2 15:04:05 2006"
)

// ParseHTTPDate parses an HTTP-date in any of the three forms RFC 9110 accepts. The result is
// in UTC.
func ParseHTTPDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{TimeFormat, rfc850Format, asctimeFormat} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// ETag returns the strong entity tag for a file of the given size and modification time.
func ETag(size int64, mtime time.Time) string {
	b := make([]byte, 0, 36)
	b = append(b, '"')
	b = strconv.AppendInt(b, mtime.UnixNano(), 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, size, 16)
	b = append(b, '"')
	return string(b)
}

// entityTag is one member of an If-Match / If-None-Match list.
type entityTag struct {
	weak   bool
	opaque string // with its quotes
}

// parseETagList reads an entity-tag list (RFC 9110 §8.8.3, §13.1.1). star reports a "*".
// Members that are not well-formed entity tags are skipped: they can match nothing.
func parseETagList(s string) (tags []entityTag, star bool) {
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return tags, star
		}
		if s[0] == '*' {
			star = true
			s = s[1:]
			continue
		}
		tag, rest, ok := scanETag(s)
		if ok {
			tags = append(tags, tag)
			s = rest
			continue
		}
		// Skip the malformed member up to the next comma.
		if i := strings.IndexByte(s, ','); i >= 0 {
			s = s[i+1:]
		} else {
			return tags, star
		}
	}
}

// scanETag reads one entity-tag at the start of s: [W/] DQUOTE *etagc DQUOTE.
func scanETag(s string) (entityTag, string, bool) {
	var t entityTag
	if strings.HasPrefix(s, "W/") {
		t.weak = true
		s = s[2:]
	}
	if len(s) < 2 || s[0] != '"' {
		return t, s, false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			t.opaque = s[:i+1]
			return t, s[i+1:], true
		}
		// etagc = %x21 / %x23-7E / obs-text
		if c < 0x21 || c == 0x7f {
			return t, s, false
		}
	}
	return t, s, false
}

// weakMatch reports whether any tag in the list matches etag by weak comparison (§8.8.3.2):
// the opaque parts are equal, whatever the W/ prefixes.
func weakMatch(list string, etag string) bool {
	tags, star := parseETagList(list)
	if star {
		return true
	}
	cur, _, ok := scanETag(etag)
	if !ok {
		return false
	}
	for _, t := range tags {
		if t.opaque == cur.opaque {
			return true
		}
	}
	return false
}

// strongMatch reports whether any tag in the list matches etag by strong comparison: neither
// is weak and the opaque parts are equal.
func strongMatch(list string, etag string) bool {
	tags, star := parseETagList(list)
	if star {
		return true
	}
	cur, _, ok := scanETag(etag)
	if !ok || cur.weak {
		return false
	}
	for _, t := range tags {
		if !t.weak && t.opaque == cur.opaque {
			return true
		}
	}
	return false
}

// condResult is the outcome of evaluating preconditions.
type condResult int

const (
	condProceed        condResult = iota // serve the representation (maybe a range)
	condNotModified                      // 304
	condPreconditionKO                   // 412
)

// validators are what a representation offers to conditional requests, already in the form
// they are sent: etag is a strong entity-tag with its quotes ("" for none), lastMod is the
// modification time to the second after clamping to now (zero for none), and now is the
// response's origination time (the Date sent with it).
type validators struct {
	etag    string
	lastMod time.Time
	now     time.Time
}

// lastModifiedAt turns a modification time into the Last-Modified value sent at now: whole
// seconds, and never later than now (RFC 9110 §8.8.2.1: a time in the future, such as a file
// copied from a host whose clock runs ahead, is replaced by the message's Date).
func lastModifiedAt(mtime, now time.Time) time.Time {
	sec := mtime.UTC().Truncate(time.Second)
	if nowSec := now.UTC().Truncate(time.Second); sec.After(nowSec) {
		return nowSec
	}
	return sec
}

// recent reports whether Last-Modified falls in the current second: then it is not a strong
// validator (RFC 9110 §8.8.2.2), since the representation may change again within the same
// second without the date changing. A clamped future time is always recent.
func (v *validators) recent() bool {
	return !v.lastMod.Before(v.now.UTC().Truncate(time.Second))
}

// evalPreconditions applies RFC 9110 §13.2.2 steps 1-4 in order for a method the daemon
// allows (GET, HEAD or OPTIONS) on a representation that exists.
//
//  1. If-Match: false (no tag matches strongly; "*" always matches) → 412.
//  2. else If-Unmodified-Since, when there is a Last-Modified and the date is valid: modified
//     after it → 412.
//  3. If-None-Match: true (a tag matches weakly, or "*") → 304 for GET and HEAD, 412 for
//     other methods.
//  4. else If-Modified-Since, for GET and HEAD with a Last-Modified: not modified since → 304.
//     The date is ignored when it is invalid or later than now (it cannot come from this
//     server, which never sends a future Last-Modified, so it proves nothing about the
//     client's copy), and 304 is not given while Last-Modified is in the current second
//     (a second change within that second would go unnoticed).
func evalPreconditions(r *Request, v *validators) condResult {
	if r.IfMatch != "" {
		if !strongMatch(r.IfMatch, v.etag) {
			return condPreconditionKO
		}
	} else if r.IfUnmodifiedSince != "" && !v.lastMod.IsZero() {
		if t, ok := ParseHTTPDate(r.IfUnmodifiedSince); ok && v.lastMod.After(t) {
			return condPreconditionKO
		}
	}
	getOrHead := r.Method == "GET" || r.Method == "HEAD"
	if r.IfNoneMatch != "" {
		if weakMatch(r.IfNoneMatch, v.etag) {
			if getOrHead {
				return condNotModified
			}
			return condPreconditionKO
		}
		return condProceed
	}
	if r.IfModifiedSince != "" && getOrHead && !v.lastMod.IsZero() {
		if t, ok := ParseHTTPDate(r.IfModifiedSince); ok && !t.After(v.now) && !v.lastMod.After(t) && !v.recent() {
			return condNotModified
		}
	}
	return condProceed
}

// ifRangeHolds evaluates If-Range (RFC 9110 §13.1.5): an entity tag must match the current one
// strongly (a weak tag never does); a date must equal Last-Modified exactly and be a strong
// validator, i.e. not in the current second (§8.8.2.2). A malformed value never holds, so
// the whole representation is sent.
func ifRangeHolds(ifRange string, v *validators) bool {
	s := strings.TrimSpace(ifRange)
	if strings.HasPrefix(s, `"`) || strings.HasPrefix(s, "W/") {
		t, rest, ok := scanETag(s)
		if !ok || t.weak || strings.TrimSpace(rest) != "" || v.etag == "" {
			return false
		}
		return t.opaque == v.etag
	}
	t, ok := ParseHTTPDate(s)
	return ok && !v.lastMod.IsZero() && t.Equal(v.lastMod) && !v.recent()
}
