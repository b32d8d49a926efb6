// Package static decides how to answer a GET, HEAD or OPTIONS request for a file under a
// root directory. It is a pure decision layer: Serve takes the method, the request-target and the
// conditional and range header values, and returns the status, the header fields, and either a
// small in-memory body or an open file with the offset and length to send. Writing that answer
// to a connection (with sendfile(2) for the file part) is the transport's job, so the whole of
// HTTP file semantics is tested here without sockets.
//
// # Safety
//
// A request can never name a file outside the root:
//   - the target is percent-decoded strictly: a malformed escape, an encoded slash (%2f) or
//     backslash (%5c), a NUL or any control byte, a raw backslash, and any "." or ".." segment
//     (raw or encoded, %2e%2e) make the request a 400 before the file system is touched;
//   - with FollowSymlinks off (the default) files are opened through os.Root, which walks the
//     path one component at a time with openat(2) and O_NOFOLLOW from a descriptor of the root
//     and resolves each symbolic link itself, refusing absolute links and any link whose target
//     leaves the root. Because the check and the open are the same walk on descriptors, a
//     link swapped in between (TOCTOU) cannot redirect the open: there is no separate
//     "check the path, then open the path" step to race. A link that escapes is answered 403.
//   - with FollowSymlinks on, links are followed wherever they point, like a plain open(2)
//     of root/path; only the lexical rules above apply.
//
// Names starting with "." (dotfiles such as .env, .git/, .htpasswd) are not served unless
// ServeDotfiles is set: a request whose path has such a segment, raw or percent-encoded
// ("/%2eenv"), is answered 404 exactly as a missing file, before the file system is
// touched, so neither the status, the headers nor the timing of a HEAD or a conditional
// request tells whether it exists. Listings leave such entries out. The one exception is a
// first segment ".well-known" (RFC 8615). The rule applies to the names in the request: a
// symbolic link with an ordinary name that points to a dotfile inside the root is served,
// as the operator who made the link published it (checking every link's target would cost
// a readlink on every request).
//
// The descriptor that was checked is the one that is sent: metadata (size, mtime, type) comes
// from fstat on that descriptor, so a file replaced after the open is never mixed up with the
// one being sent.
//
// # Validators
//
// The ETag is strong and made of the modification time (nanoseconds) and the size,
// `"<mtime-hex>-<size-hex>"`. It leaves the inode out so that several hosts serving copies of
// the same tree behind a load balancer agree on it. Being strong lets If-Range use it. The
// caveat of every mtime-based tag applies: a rewrite that keeps both the size and the
// nanosecond mtime goes unnoticed. Last-Modified is the mtime to the second, but never later
// than the response's Date (RFC 9110 §8.8.2.1): a file whose mtime is in the future (copied
// from a host whose clock runs ahead, or extracted from an archive) is sent with
// Last-Modified equal to Date, and compared as such. If-Modified-Since answers 304 only for
// a date not later than now and a Last-Modified before the current second, and an If-Range
// date must name such a Last-Modified exactly (§8.8.2.2, §13.1.5); otherwise the whole
// representation is sent, which is never wrong.
//
// Preconditions (RFC 9110 §13.2.2, in its order) apply to every representation the package
// answers with 2xx: files, directory listings, and the in-memory bodies of ServeContent. A
// listing's ETag hashes the page itself, and its Last-Modified is the directory's mtime.
//
// # Methods
//
// GET, HEAD and OPTIONS are served; the other methods of RFC 9110 and PATCH are 405 with
// Allow, any other method 501 (see CheckMethod).
//
// # Ranges
//
// One byte range is answered 206 with Content-Range. A range that cannot be satisfied is 416
// with "Content-Range: bytes */size". A request for several ranges is answered 200 with the
// whole file (no multipart/byteranges), which RFC 9110 §14.2 allows; so is a syntactically
// invalid Range header, which is ignored. Range is honoured for GET only, as §14.2 requires:
// a HEAD with Range gets the headers of the whole representation (200). Listings take
// ranges too.
package static

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Errors returned by New.
var (
	// ErrNoRoot is returned by New when Options.Root is empty.
	ErrNoRoot = errors.New("static: root directory not set")
	// ErrNotDir is returned by New when Options.Root is not a directory.
	ErrNotDir = errors.New("static: root is not a directory")
)

// Options configures an FS.
type Options struct {
	// Root is the directory to serve. It must exist when New is called.
	Root string
	// FollowSymlinks follows symbolic links wherever they point. When false, only relative
	// links whose target stays under Root are followed; others are answered 403.
	FollowSymlinks bool
	// DirListing answers a directory without index.html with an HTML listing instead of 403.
	DirListing bool
	// ServeDotfiles serves names starting with "." like any other. When false (the default)
	// a path with such a segment, other than a leading "/.well-known/", is answered 404
	// and listings leave such entries out.
	ServeDotfiles bool
}

// FS answers requests for files under one root. It is safe for concurrent use by several
// goroutines (several event loops).
type FS struct {
	opts Options
	dir  string   // absolute root path, for FollowSymlinks opens
	root *os.Root // descriptor-based root, for opens that must stay beneath it
}

// New opens the root directory. The descriptor stays open until Close; if the directory is
// renamed, the FS keeps serving it under its new name (with FollowSymlinks off).
func New(o Options) (*FS, error) {
	if o.Root == "" {
		return nil, ErrNoRoot
	}
	abs, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, fmt.Errorf("static: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("static: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("static: %s: %w", abs, ErrNotDir)
	}
	r, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("static: %w", err)
	}
	return &FS{opts: o, dir: abs, root: r}, nil
}

// Close releases the root directory's descriptor. Serve must not be called afterwards.
func (fs *FS) Close() error {
	if fs == nil || fs.root == nil {
		return nil
	}
	return fs.root.Close()
}

// Root returns the absolute path of the served directory.
func (fs *FS) Root() string { return fs.dir }
