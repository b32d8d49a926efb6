// Package site renders the daemon's built-in page, embedded in the binary, which tells a
// visitor what is running: version, poller backend and number of event loops.
package site

import (
	"bytes"
	_ "embed"
	"errors"
	"html/template"
	"runtime"
)

//go:embed index.html.tmpl
var indexSource string

var indexTemplate = template.Must(template.New("index").Parse(indexSource))

// ErrIncomplete is returned by Render when Info lacks the version or the poller.
var ErrIncomplete = errors.New("site: version and poller are required")

// Info is what the page shows.
type Info struct {
	Version string
	Poller  string
	Loops   int
}

// Render returns the page as HTML. The values are HTML-escaped. The page does not change
// while the server runs, so the daemon renders it once at start and serves the bytes.
func Render(in Info) ([]byte, error) {
	if in.Version == "" || in.Poller == "" {
		return nil, ErrIncomplete
	}
	var b bytes.Buffer
	data := struct {
		Info
		GoVersion string
	}{in, runtime.Version()}
	if err := indexTemplate.Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
