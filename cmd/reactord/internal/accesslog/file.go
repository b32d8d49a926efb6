package accesslog

import (
	"errors"
	"fmt"
	"os"
	"sync"
)

// ErrClosed is returned by File methods after Close.
var ErrClosed = errors.New("accesslog: file closed")

// File is an append-only log file that can be reopened under the same name, the half of
// logrotate's protocol that belongs to the daemon: logrotate renames the file, sends SIGHUP,
// and the daemon's Reopen starts a new file under the old name, while lines already written
// stay in the renamed one. Write, Sync, Reopen and Close are safe from any goroutine.
type File struct {
	path string
	mode os.FileMode

	mu sync.Mutex
	f  *os.File
}

// OpenFile opens (creating it with mode 0644 if needed) the file at path for appending.
func OpenFile(path string) (*File, error) {
	if path == "" {
		return nil, errors.New("accesslog: empty path")
	}
	lf := &File{path: path, mode: 0o644}
	f, err := lf.open()
	if err != nil {
		return nil, err
	}
	lf.f = f
	return lf, nil
}

func (lf *File) open() (*os.File, error) {
	// O_APPEND: every write lands at the current end even if another process (or a copy
	// truncating logrotate) touches the file.
	f, err := os.OpenFile(lf.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, lf.mode)
	if err != nil {
		return nil, fmt.Errorf("accesslog: %w", err)
	}
	return f, nil
}

// Path returns the file's name.
func (lf *File) Path() string { return lf.path }

// Write appends p to the current file. p is not retained.
func (lf *File) Write(p []byte) (int, error) {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.f == nil {
		return 0, ErrClosed
	}
	return lf.f.Write(p)
}

// Sync flushes the current file to stable storage.
func (lf *File) Sync() error {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.f == nil {
		return ErrClosed
	}
	return lf.f.Sync()
}

// Reopen opens the path afresh and switches writes to it, then closes the previous file. If
// the new open fails (directory gone, permissions changed), writes keep going to the old file
// and the error is returned, so no line is lost to a failed rotation.
func (lf *File) Reopen() error {
	lf.mu.Lock()
	closed := lf.f == nil
	lf.mu.Unlock()
	if closed {
		return ErrClosed
	}
	nf, err := lf.open()
	if err != nil {
		return err
	}
	lf.mu.Lock()
	old := lf.f
	if old == nil {
		lf.mu.Unlock()
		nf.Close()
		return ErrClosed
	}
	lf.f = nf
	lf.mu.Unlock()
	return old.Close()
}

// Close closes the file. Later calls return ErrClosed.
func (lf *File) Close() error {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.f == nil {
		return ErrClosed
	}
	err := lf.f.Close()
	lf.f = nil
	return err
}
