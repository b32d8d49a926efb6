package static

import (
	"errors"
	"net/url"
	"strings"
)

// ErrBadPath is returned by CleanTarget for a request-target it refuses; Serve answers 400.
var ErrBadPath = errors.New("static: refused request path")

// target is a request-target that passed CleanTarget.
type target struct {
	segs          []string // decoded, non-empty, never "." or ".."
	trailingSlash bool
	query         string // raw query without '?', kept for redirects
}

// rel returns the path relative to the root, "." for the root itself.
func (t target) rel() string {
	if len(t.segs) == 0 {
		return "."
	}
	return strings.Join(t.segs, "/")
}

// wellKnown is the one name starting with "." that is served by default, and only as the
// first segment: RFC 8615 puts site metadata (ACME challenges, security.txt) under
// "/.well-known/".
const wellKnown = ".well-known"

// hidden reports whether the target names a dotfile or passes through a dot directory: any
// segment starting with "." other than a leading ".well-known". The segments are decoded, so
// "/%2eenv" is as hidden as "/.env"; "." and ".." never get here (they are refused as 400).
func (t target) hidden() bool {
	for i, s := range t.segs {
		if s[0] == '.' && (i > 0 || s != wellKnown) {
			return true
		}
	}
	return false
}

// hiddenName reports whether a directory entry is hidden from a listing: the same rule as
// hidden, for the entry's name inside the listed directory (atRoot: the root directory).
func hiddenName(name string, atRoot bool) bool {
	return name[0] == '.' && (!atRoot || name != wellKnown)
}

// canonical returns the target re-encoded from its segments: an absolute path that can
// never start with "//" (which a browser would read as another host in a Location).
func (t target) canonical(slash bool) string {
	var b strings.Builder
	for _, s := range t.segs {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	if slash || len(t.segs) == 0 {
		b.WriteByte('/')
	}
	if t.query != "" {
		b.WriteByte('?')
		b.WriteString(t.query)
	}
	return b.String()
}

// CleanTarget checks an origin-form request-target and returns the path, relative to the
// root, that it names ("." for the root). It returns ErrBadPath (wrapped, with the reason)
// for anything that is not a plain absolute path: no leading '/', a fragment, a malformed
// percent-escape, an encoded '/' or '\' (%2f, %5c), a NUL or other control byte raw or
// encoded, a raw backslash, or a "." or ".." segment raw or encoded (%2e%2e). Empty segments
// ("a//b") are dropped.
func CleanTarget(raw string) (string, error) {
	t, err := parseTarget(raw)
	if err != nil {
		return "", err
	}
	return t.rel(), nil
}

func parseTarget(raw string) (target, error) {
	var t target
	path := raw
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		path, t.query = raw[:i], raw[i+1:]
	}
	if path == "" || path[0] != '/' {
		return t, badPath("not an absolute path")
	}
	if strings.IndexByte(raw, '#') >= 0 {
		return t, badPath("fragment in request-target")
	}
	for i := 0; i < len(t.query); i++ {
		// The query is echoed in redirects' Location: no byte may break the header line.
		if c := t.query[i]; c < 0x20 || c == 0x7f {
			return t, badPath("control byte in query")
		}
	}
	decoded := make([]byte, 0, len(path))
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '%':
			if i+2 >= len(path) {
				return t, badPath("truncated percent-escape")
			}
			h, ok1 := unhex(path[i+1])
			l, ok2 := unhex(path[i+2])
			if !ok1 || !ok2 {
				return t, badPath("malformed percent-escape")
			}
			c = h<<4 | l
			i += 2
			switch {
			case c == '/':
				return t, badPath("encoded slash")
			case refusedByte(c):
				return t, badPath("encoded backslash or control byte")
			}
		case refusedByte(c):
			return t, badPath("backslash or control byte")
		}
		decoded = append(decoded, c)
	}
	s := string(decoded)
	t.trailingSlash = strings.HasSuffix(s, "/")
	for seg := range strings.SplitSeq(s, "/") {
		switch seg {
		case "":
			continue
		case ".", "..":
			return t, badPath("dot segment")
		}
		t.segs = append(t.segs, seg)
	}
	return t, nil
}

// linkable reports whether a directory entry's name, percent-encoded into a link, would be
// accepted by parseTarget as one segment naming it again: not "." or "..", and no byte that
// parseTarget refuses even encoded (a backslash, NUL or other control byte). A listing leaves
// out the names that fail, so that it never links to a URL the daemon answers with 400.
func linkable(name string) bool {
	if name == "" || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '/' || refusedByte(c) {
			return false
		}
	}
	return true
}

// refusedByte reports whether a byte is refused in a path, raw or percent-encoded: a
// backslash (a separator to some file systems and proxies) or a control byte (NUL truncates
// C strings; CR and LF split header lines when a path is echoed in Location).
func refusedByte(c byte) bool { return c == '\\' || c < 0x20 || c == 0x7f }

func badPath(reason string) error {
	return &pathError{reason}
}

type pathError struct{ reason string }

func (e *pathError) Error() string        { return "static: refused request path: " + e.reason }
func (e *pathError) Is(target error) bool { return target == ErrBadPath }

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
