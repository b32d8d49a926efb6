package static

import (
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// indexName is served for a directory request when present.
const indexName = "index.html"

// allowHeader lists the methods Serve answers; 405 responses carry it.
var allowHeader = Field{"Allow", "GET, HEAD"}

// Serve decides the answer to one request. It never panics on any input, and every outcome is
// a Response: 400 for a refused path, 403 for a link escaping the root, a directory without
// index.html (listing off) or a file that is not regular, 404 for a missing file, 405 for
// methods other than GET and HEAD, 301 to add the slash to a directory, 304, 412, 206, 416,
// 500 or 503 (out of file descriptors) where they apply, else 200.
//
// When the Response carries a File, the caller owns it and must Close the Response. Serve
// may be called concurrently from several goroutines.
func (fs *FS) Serve(r *Request) Response {
	if fs == nil || fs.root == nil || r == nil {
		return errorResponse(500, false)
	}
	head := r.Method == "HEAD"
	if r.Method != "GET" && !head {
		return errorResponse(405, false, allowHeader)
	}
	t, err := parseTarget(r.Target)
	if err != nil {
		return errorResponse(400, head)
	}
	f, fi, status := fs.open(t.rel())
	if status != 0 {
		return errorResponse(status, head)
	}
	name := t.rel()
	if fi.IsDir() {
		if !t.trailingSlash {
			// Redirect so that relative links in the page resolve inside the directory.
			f.Close()
			resp := errorResponse(301, head, Field{"Location", t.canonical(true)})
			return resp
		}
		idx, idxInfo, idxStatus := fs.open(joinRel(name, indexName))
		switch {
		case idxStatus == 0 && idxInfo.Mode().IsRegular():
			f.Close()
			f, fi, name = idx, idxInfo, indexName
		case idxStatus == 0:
			idx.Close() // index.html is a directory or special file: treat as absent
			return fs.dirResponse(f, t, head)
		case idxStatus == 404:
			return fs.dirResponse(f, t, head)
		default:
			f.Close()
			return errorResponse(idxStatus, head)
		}
	} else if t.trailingSlash {
		// "file.txt/" names a directory that does not exist.
		f.Close()
		return errorResponse(404, head)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return errorResponse(403, head)
	}
	return fileResponse(r, f, fi, name, head)
}

// dirResponse answers a directory without a usable index.html. It closes dir.
func (fs *FS) dirResponse(dir *os.File, t target, head bool) Response {
	defer dir.Close()
	if !fs.opts.DirListing {
		return errorResponse(403, head)
	}
	display := "/" + strings.Join(t.segs, "/")
	if len(t.segs) > 0 {
		display += "/"
	}
	body, err := listing(dir, display)
	if err != nil {
		return errorResponse(statusForOpenError(err), head)
	}
	resp := Response{
		Status: 200,
		Header: []Field{
			{"Content-Type", "text/html; charset=utf-8"},
			{"Cache-Control", "no-cache"},
		},
		ContentLength: int64(len(body)),
		Body:          body,
	}
	if head {
		resp.Body = nil
	}
	return resp
}

// fileResponse answers a regular file after the preconditions and Range. It takes ownership
// of f: either it travels in the Response or it is closed here.
func fileResponse(r *Request, f *os.File, fi os.FileInfo, name string, head bool) Response {
	size := fi.Size()
	modSec := fi.ModTime().UTC().Truncate(time.Second)
	etag := ETag(size, fi.ModTime())
	lastMod := modSec.Format(TimeFormat)
	validators := []Field{{"ETag", etag}, {"Last-Modified", lastMod}}

	switch evalPreconditions(r, etag, modSec) {
	case condNotModified:
		f.Close()
		return Response{Status: 304, Header: validators, ContentLength: -1}
	case condPreconditionKO:
		f.Close()
		return errorResponse(412, head)
	}

	h := make([]Field, 0, 5)
	h = append(h, Field{"Content-Type", ContentType(name)}, Field{"Accept-Ranges", "bytes"})
	h = append(h, validators...)
	resp := Response{Status: 200, Header: h, ContentLength: size, File: f}

	// Range is defined for GET only (RFC 9110 §14.2); If-Range that fails means "send it all".
	if r.Range != "" && !head && (r.IfRange == "" || ifRangeHolds(r.IfRange, etag, modSec)) {
		switch kind, start, length := parseRange(r.Range, size); kind {
		case rangeSingle:
			resp.Status = 206
			resp.Header = append(resp.Header, Field{"Content-Range", contentRange(start, length, size)})
			resp.Offset, resp.ContentLength = start, length
		case rangeUnsatisfiable:
			f.Close()
			return errorResponse(416, false, Field{"Content-Range", "bytes */" + strconv.FormatInt(size, 10)})
		}
	}
	if head || resp.ContentLength == 0 {
		f.Close()
		resp.File = nil
	}
	return resp
}

// open opens rel beneath the root and stats the descriptor. On failure it returns the HTTP
// status to answer with.
func (fs *FS) open(rel string) (*os.File, os.FileInfo, int) {
	// O_NONBLOCK: opening a FIFO someone left in the tree would otherwise block until a
	// writer appears. It is harmless for regular files and directories, where the kernel
	// ignores it for read(2) and sendfile(2). O_NOCTTY keeps a terminal device from becoming
	// our controlling terminal; such files are refused after the fstat below anyway.
	const flags = os.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY
	var (
		f   *os.File
		err error
	)
	if fs.opts.FollowSymlinks {
		f, err = os.OpenFile(filepath.Join(fs.dir, filepath.FromSlash(rel)), flags, 0)
	} else {
		f, err = fs.root.OpenFile(rel, flags, 0)
	}
	if err != nil {
		return nil, nil, statusForOpenError(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, statusForOpenError(err)
	}
	return f, fi, 0
}

// statusForOpenError maps an open or stat failure to a status. os.Root reports a path that
// would leave the root with an error that is not an errno; that, ELOOP (too many links) and
// EACCES are 403.
func statusForOpenError(err error) int {
	var errno unix.Errno
	if errors.As(err, &errno) {
		switch errno {
		case unix.ENOENT, unix.ENOTDIR, unix.ENAMETOOLONG:
			return 404
		case unix.EACCES, unix.EPERM, unix.ELOOP, unix.ENXIO:
			// ENXIO: a FIFO opened O_NONBLOCK|O_WRONLY or a socket; refused, not missing.
			return 403
		case unix.EMFILE, unix.ENFILE, unix.ENOMEM:
			// Out of descriptors or memory: a transient condition, tell the client to retry.
			return 503
		}
		return 500
	}
	if errors.Is(err, iofs.ErrNotExist) {
		return 404
	}
	if errors.Is(err, iofs.ErrPermission) {
		return 403
	}
	// os.Root's "path escapes from parent" and absolute-link refusals.
	return 403
}

func joinRel(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}
