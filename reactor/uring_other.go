//go:build !linux

package reactor

import (
	"errors"
	"time"
)

// The io_uring completion mode exists on Linux only (uring_linux.go). Here ringIO is an empty
// type whose methods are never reached: a Loop's ring stays nil, since resolvePoller refuses
// "uring" on this OS.
type ringIO struct{}

const ringCompiled = false

var errNoRing = errors.New("reactor: the io_uring completion mode is Linux-only")

func ringAvailable() error                 { return errNoRing }
func (l *Loop) openRing() error            { return errNoRing }
func (r *ringIO) start() error             { return errNoRing }
func (r *ringIO) close()                   {}
func (r *ringIO) wait(time.Duration) error { return errNoRing }
func (r *ringIO) dispatch() (int, error)   { return 0, errNoRing }
func (r *ringIO) hasWork() bool            { return false }
func (r *ringIO) syncRecv(*Conn)           {}
func (r *ringIO) flush(*Conn)              {}
func (r *ringIO) unsent(int) int           { return 0 }
func (r *ringIO) forget(*Conn) bool        { return false }
func (r *ringIO) syncAccept(*listener)     {}
func (r *ringIO) dropListener(*listener)   {}
func (r *ringIO) quiesce()                 {}
func (r *ringIO) beforeClose() bool        { return true }
