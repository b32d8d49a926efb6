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
			case c == '\\':
				return t, badPath("encoded backslash")
			case c < 0x20 || c == 0x7f:
				return t, badPath("encoded control byte")
			}
		case c == '\\':
			return t, badPath("backslash")
		case c < 0x20 || c == 0x7f:
			return t, badPath("control byte")
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
