package static

import (
	"errors"
	"html"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
)

// maxListing bounds the entries read for one directory, so a huge directory cannot make one
// request allocate without limit.
const maxListing = 10000

// listing renders an HTML page listing dir's entries. displayPath is the decoded path shown
// in the title; atRoot says dir is the served root. Names are HTML-escaped for the text and
// percent-encoded for the links, so a file called `<script>` or `a"b` is shown, not executed.
//
// The page shows only what a client can fetch: entries hidden by the dotfile rule are left
// out (as Serve answers them 404), and so are names no request can reach — a backslash or a
// control byte, which the path rules refuse even percent-encoded (see linkable). Every link
// on the page therefore names something Serve answers for.
func (fs *FS) listing(dir *os.File, displayPath string, atRoot bool) ([]byte, error) {
	entries, err := dir.ReadDir(maxListing)
	if err != nil && !errors.Is(err, io.EOF) {
		// ReadDir(n>0) reports io.EOF for an empty directory; anything else is real.
		return nil, err
	}
	slices.SortFunc(entries, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	var b strings.Builder
	title := html.EscapeString(displayPath)
	b.WriteString("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Index of ")
	b.WriteString(title)
	b.WriteString("</title></head>\n<body>\n<h1>Index of ")
	b.WriteString(title)
	b.WriteString("</h1>\n<ul>\n")
	if !atRoot {
		b.WriteString("<li><a href=\"../\">../</a></li>\n")
	}
	for _, e := range entries {
		name := e.Name()
		if !linkable(name) || (!fs.opts.ServeDotfiles && hiddenName(name, atRoot)) {
			continue
		}
		suffix := ""
		if e.IsDir() {
			suffix = "/"
		}
		b.WriteString("<li><a href=\"./")
		b.WriteString(html.EscapeString(url.PathEscape(name)))
		b.WriteString(suffix)
		b.WriteString("\">")
		b.WriteString(html.EscapeString(name))
		b.WriteString(suffix)
		b.WriteString("</a></li>\n")
	}
	b.WriteString("</ul>\n</body></html>\n")
	return []byte(b.String()), nil
}
