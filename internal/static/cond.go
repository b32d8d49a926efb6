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

// evalPreconditions applies RFC 9110 §13.2.2 steps 1-4 in order. If-None-Match, when present,
// makes If-Modified-Since irrelevant; If-Match likewise overrides If-Unmodified-Since.
func evalPreconditions(r *Request, etag string, modSec time.Time) condResult {
	// Step 1-2: If-Match, else If-Unmodified-Since.
	if r.IfMatch != "" {
		if !strongMatch(r.IfMatch, etag) {
			return condPreconditionKO
		}
	} else if r.IfUnmodifiedSince != "" {
		if t, ok := ParseHTTPDate(r.IfUnmodifiedSince); ok && modSec.After(t) {
			return condPreconditionKO
		}
	}
	// Step 3-4: If-None-Match, else If-Modified-Since (GET and HEAD only; Serve never gets
	// here for other methods).
	if r.IfNoneMatch != "" {
		if weakMatch(r.IfNoneMatch, etag) {
			return condNotModified
		}
		return condProceed
	}
	if r.IfModifiedSince != "" {
		if t, ok := ParseHTTPDate(r.IfModifiedSince); ok && !modSec.After(t) {
			return condNotModified
		}
	}
	return condProceed
}

// ifRangeHolds evaluates If-Range (§13.1.5): an entity tag must match strongly; a date must
// equal Last-Modified exactly. A malformed value never holds, so the whole file is sent.
func ifRangeHolds(v, etag string, modSec time.Time) bool {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, `"`) || strings.HasPrefix(v, "W/") {
		t, rest, ok := scanETag(v)
		if !ok || t.weak || strings.TrimSpace(rest) != "" {
			return false
		}
		return t.opaque == etag
	}
	t, ok := ParseHTTPDate(v)
	return ok && t.Equal(modSec)
}
