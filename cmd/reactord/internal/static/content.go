package static

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Content is one representation held in memory (a generated page, a health answer, a
// directory listing), answered by ServeContent with the same HTTP rules as a file.
type Content struct {
	// Type is the Content-Type value.
	Type string
	// Body is the representation. ServeContent never modifies it; the Response's Body may
	// alias it, so it must stay unchanged until the response has been sent.
	Body []byte
	// ETag is a strong entity-tag with its quotes (see ContentETag), or "" for none.
	ETag string
	// ModTime, when not zero, is sent as Last-Modified (to the second, and never later than
	// the response's Date).
	ModTime time.Time
	// CacheControl, when not empty, is sent as Cache-Control with 200, 206 and 304.
	CacheControl string
	// Ranges lets a GET ask for one byte range (206, or 416 when unsatisfiable) and sends
	// "Accept-Ranges: bytes"; without it a Range header is ignored.
	Ranges bool
}

// ContentETag returns a strong entity-tag for a body: a hash of its bytes, so equal bodies
// get equal tags whichever host or process generated them.
func ContentETag(body []byte) string {
	sum := sha256.Sum256(body)
	b := make([]byte, 0, 2+2*16)
	b = append(b, '"')
	b = hex.AppendEncode(b, sum[:16])
	b = append(b, '"')
	return string(b)
}

// ServeContent answers a request for an in-memory representation: the method check (405,
// 501), OPTIONS (200 with Allow), the preconditions of RFC 9110 §13.2.2 (304, 412), Range
// when c.Ranges is set (206, 416), and HEAD with the headers and length of a GET. The
// Request's Target is not looked at: the caller has routed it. It never panics; a nil r or c
// is answered 500. The Response never carries a File. Safe for concurrent use.
func ServeContent(r *Request, c *Content) Response {
	if r == nil || c == nil {
		return errorResponse(500, false)
	}
	if resp, ok := CheckMethod(r.Method); !ok {
		return resp
	}
	rep := representation{
		ctype:        c.Type,
		cacheControl: c.CacheControl,
		ranges:       c.Ranges,
		size:         int64(len(c.Body)),
	}
	rep.v.now = r.now()
	rep.v.etag = c.ETag
	if !c.ModTime.IsZero() {
		rep.v.lastMod = lastModifiedAt(c.ModTime, rep.v.now)
	}
	resp, start, length := rep.answer(r)
	if resp.Status == 200 || resp.Status == 206 {
		if r.Method == "GET" && length > 0 {
			resp.Body = c.Body[start : start+length]
		}
	}
	return resp
}

// representation is what the shared HTTP logic needs to know about a file, a listing or an
// in-memory body.
type representation struct {
	ctype        string
	cacheControl string
	ranges       bool
	size         int64
	v            validators
}

// answer decides the response for a representation that exists, for GET, HEAD or OPTIONS.
// For 200 and 206 to a GET or HEAD it returns the section of the representation to send
// (start, length); the caller attaches the content for GET. Every other outcome (OPTIONS,
// 304, 412, 416) is complete as returned.
func (rep *representation) answer(r *Request) (resp Response, start, length int64) {
	head := r.Method == "HEAD"
	switch evalPreconditions(r, &rep.v) {
	case condNotModified:
		// RFC 9110 §15.4.5: a 304 carries the fields a 200 would have that help a cache
		// update its entry: the validators and Cache-Control.
		n := 0
		if rep.v.etag != "" {
			n++
		}
		if !rep.v.lastMod.IsZero() {
			n++
			if rep.v.recent() {
				n++ // Date
			}
		}
		if rep.cacheControl != "" {
			n++
		}
		h := make([]Field, 0, n)
		h = rep.appendValidators(h)
		if rep.cacheControl != "" {
			h = append(h, Field{"Cache-Control", rep.cacheControl})
		}
		return Response{Status: 304, Header: h, ContentLength: -1}, 0, 0
	case condPreconditionKO:
		return errorResponse(412, head), 0, 0
	}
	if r.Method == "OPTIONS" {
		return OptionsResponse(), 0, 0
	}
	h := make([]Field, 0, 7)
	h = append(h, Field{"Content-Type", rep.ctype})
	if rep.ranges {
		h = append(h, Field{"Accept-Ranges", "bytes"})
	}
	h = rep.appendValidators(h)
	if rep.cacheControl != "" {
		h = append(h, Field{"Cache-Control", rep.cacheControl})
	}
	resp = Response{Status: 200, Header: h, ContentLength: rep.size}
	start, length = 0, rep.size
	// Range is defined for GET only (RFC 9110 §14.2); If-Range that fails means "send it all".
	if rep.ranges && r.Range != "" && r.Method == "GET" && (r.IfRange == "" || ifRangeHolds(r.IfRange, &rep.v)) {
		switch kind, s, l := parseRange(r.Range, rep.size); kind {
		case rangeSingle:
			resp.Status = 206
			resp.Header = append(resp.Header, Field{"Content-Range", contentRange(s, l, rep.size)})
			resp.ContentLength = l
			start, length = s, l
		case rangeUnsatisfiable:
			return errorResponse(416, false, Field{"Content-Range", "bytes */" + strconv.FormatInt(rep.size, 10)}), 0, 0
		}
	}
	return resp, start, length
}

// appendValidators adds ETag and Last-Modified when the representation has them. When
// Last-Modified is in the current second (or was clamped from the future), the Date is sent
// too, formatted from the same clock reading: a transport's cached Date may lag the clock by
// up to a second, and Last-Modified must never be later than Date (RFC 9110 §8.8.2.1).
func (rep *representation) appendValidators(h []Field) []Field {
	if rep.v.etag != "" {
		h = append(h, Field{"ETag", rep.v.etag})
	}
	if !rep.v.lastMod.IsZero() {
		h = append(h, Field{"Last-Modified", rep.v.lastMod.Format(TimeFormat)})
		if rep.v.recent() {
			h = append(h, Field{"Date", rep.v.now.UTC().Format(TimeFormat)})
		}
	}
	return h
}
