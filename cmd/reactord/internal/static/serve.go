package static

import (
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// indexName is served for a directory request when present.
const indexName = "index.html"

// Serve decides the answer to one request. It never panics on any input, and every outcome is
// a Response: 405 or 501 for methods other than GET, HEAD and OPTIONS (see CheckMethod), 400
// for a refused path, 404 for a missing file or a hidden one (a name starting with "."
// unless ServeDotfiles is set), 403 for a link escaping the root, a directory without
// index.html (listing off) or a file that is not regular, 301 to add the slash to a
// directory, 304, 412, 206, 416, 500 or 503 (out of file descriptors) where they apply, else
// 200. OPTIONS gets the status GET would get for the path, with the body of a successful
// OPTIONS (Allow, no content) in place of 200; "OPTIONS *" is always 200.
//
// When the Response carries a File, the caller owns it and must Close the Response. Serve
// may be called concurrently from several goroutines.
func (fs *FS) Serve(r *Request) Response {
	if fs == nil || fs.root == nil || r == nil {
		return errorResponse(500, false)
	}
	if resp, ok := CheckMethod(r.Method); !ok {
		return resp
	}
	if r.Target == "*" && r.Method == "OPTIONS" {
		return OptionsResponse()
	}
	head := r.Method == "HEAD"
	t, err := parseTarget(r.Target)
	if err != nil {
		return errorResponse(400, head)
	}
	if !fs.opts.ServeDotfiles && t.hidden() {
		// The same answer as for a name that does not exist, decided before the file
		// system is touched: whether /.env or /.git/ exists cannot be told from outside,
		// whatever the method or the conditional headers.
		return errorResponse(404, head)
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
			return errorResponse(301, head, Field{"Location", t.canonical(true)})
		}
		idx, idxInfo, idxStatus := fs.open(joinRel(name, indexName))
		switch {
		case idxStatus == 0 && idxInfo.Mode().IsRegular():
			f.Close()
			f, fi, name = idx, idxInfo, indexName
		case idxStatus == 0:
			idx.Close() // index.html is a directory or special file: treat as absent
			return fs.dirResponse(r, f, fi, t)
		case idxStatus == 404:
			return fs.dirResponse(r, f, fi, t)
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
	return fileResponse(r, f, fi, name)
}

// dirResponse answers a directory without a usable index.html. It closes dir. The listing
// is a representation like any other: validators (an ETag hashing the page, so it changes
// exactly when the listing does, and the directory's mtime, which changes whenever an entry
// is added, removed or renamed), preconditions and ranges.
func (fs *FS) dirResponse(r *Request, dir *os.File, fi os.FileInfo, t target) Response {
	defer dir.Close()
	head := r.Method == "HEAD"
	if !fs.opts.DirListing {
		return errorResponse(403, head)
	}
	display := "/" + strings.Join(t.segs, "/")
	if len(t.segs) > 0 {
		display += "/"
	}
	body, err := fs.listing(dir, display, len(t.segs) == 0)
	if err != nil {
		return errorResponse(statusForOpenError(err), head)
	}
	return ServeContent(r, &Content{
		Type:         "text/html; charset=utf-8",
		Body:         body,
		ETag:         ContentETag(body),
		ModTime:      fi.ModTime(),
		CacheControl: "no-cache",
		Ranges:       true,
	})
}

// fileResponse answers a regular file after the preconditions and Range. It takes ownership
// of f: either it travels in the Response or it is closed here.
func fileResponse(r *Request, f *os.File, fi os.FileInfo, name string) Response {
	rep := representation{ctype: ContentType(name), ranges: true, size: fi.Size()}
	rep.v.now = r.now()
	rep.v.etag = ETag(rep.size, fi.ModTime())
	rep.v.lastMod = lastModifiedAt(fi.ModTime(), rep.v.now)
	resp, start, length := rep.answer(r)
	if (resp.Status == 200 || resp.Status == 206) && r.Method == "GET" && length > 0 {
		resp.File, resp.Offset = f, start
		return resp
	}
	f.Close()
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
