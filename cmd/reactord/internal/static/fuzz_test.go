package static

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzCleanTarget checks that whatever the request-target, an accepted path is relative,
// has no dot segments, NUL, backslash or control byte, so it cannot leave the root lexically.
func FuzzCleanTarget(f *testing.F) {
	for _, s := range []string{"/", "/a/b.txt", "/%2e%2e/x", "/a%2fb", "//x", "/a?b=%00", "/..\\x", "/%", "/a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		rel, err := CleanTarget(raw)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("error %v is not ErrBadPath", err)
			}
			return
		}
		if rel == "" || strings.HasPrefix(rel, "/") {
			t.Fatalf("%q -> %q: not relative", raw, rel)
		}
		if rel == "." {
			return
		}
		for _, seg := range strings.Split(rel, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("%q -> %q: bad segment %q", raw, rel, seg)
			}
		}
		for i := 0; i < len(rel); i++ {
			if c := rel[i]; c == '\\' || c < 0x20 || c == 0x7f {
				t.Fatalf("%q -> %q: byte %#x", raw, rel, c)
			}
		}
		tg, _ := parseTarget(raw)
		if loc := tg.canonical(true); strings.HasPrefix(loc, "//") || !strings.HasPrefix(loc, "/") {
			t.Fatalf("%q: redirect location %q", raw, loc)
		} else if strings.ContainsFunc(loc, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("%q: control character in redirect location %q", raw, loc)
		}
	})
}

// FuzzParseRange checks that a satisfiable range always lies inside the representation.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-4", "bytes=-5", "bytes=7-", "bytes=0-1,2-3", "bytes=9999999999999999999999-", "bytes=-0", "x=1-2", "bytes=5-2"} {
		f.Add(s, int64(13))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -size
			if size < 0 {
				return
			}
		}
		kind, start, length := parseRange(h, size)
		if kind == rangeSingle {
			if start < 0 || length <= 0 || start+length > size || start+length < start {
				t.Fatalf("parseRange(%q, %d) = [%d, +%d)", h, size, start, length)
			}
		}
	})
}

// FuzzETagList checks that list parsing terminates, never panics, and that a file's own tag
// always matches itself.
func FuzzETagList(f *testing.F) {
	for _, s := range []string{`"a"`, `W/"a", "b"`, `*`, `"unterminated`, `,,,`, `W/`, `"a" "b"`} {
		f.Add(s)
	}
	etag := ETag(13, time.Unix(1700000000, 5))
	f.Fuzz(func(t *testing.T, list string) {
		weakMatch(list, etag)
		strongMatch(list, etag)
		ifRangeHolds(list, &validators{etag: etag, lastMod: time.Unix(1700000000, 0), now: time.Unix(1800000000, 0)})
		if !weakMatch(list+", "+etag, etag) || !strongMatch(etag+","+list, etag) {
			t.Fatalf("own tag not found in %q", list)
		}
	})
}

// FuzzListingLink checks that the listing's rule and the request path's rule agree on every
// directory entry name: a name the listing links (linkable) comes back from its link as the
// same single segment, and a name it leaves out is one the path rules refuse.
func FuzzListingLink(f *testing.F) {
	for _, s := range []string{"a.txt", "a b", "back\\slash", "new\nline", "%2e", "..", ".", "ü", "\xff", "a?b#c", "tab\t", "del\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if name == "" || strings.IndexByte(name, '/') >= 0 {
			return // no directory entry has such a name
		}
		tg, err := parseTarget("/" + url.PathEscape(name))
		if linkable(name) {
			if err != nil || !slices.Equal(tg.segs, []string{name}) {
				t.Fatalf("linkable %q: link parses to %q, %v", name, tg.segs, err)
			}
		} else if err == nil {
			t.Fatalf("%q left out of listings, but its link is accepted as %q", name, tg.segs)
		}
	})
}
