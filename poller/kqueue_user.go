//go:build darwin || freebsd || dragonfly

package poller

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// kqWaker is the kqueue wake-up: an EVFILT_USER event, so no fd is needed at all. Wake
// triggers it with NOTE_TRIGGER; EV_CLEAR re-arms it as Wait receives it, so drain has nothing
// to do.
type kqWaker struct {
	kq      int
	trigger [1]unix.Kevent_t
}

// userIdent is the EVFILT_USER event's identifier. User events have their own namespace, so
// it cannot collide with an fd.
const userIdent = 1

func newKqWaker(kq int) (kqWaker, error) {
	var add [1]unix.Kevent_t
	unix.SetKevent(&add[0], userIdent, unix.EVFILT_USER, unix.EV_ADD|unix.EV_CLEAR)
	if _, err := unix.Kevent(kq, add[:], nil, nil); err != nil {
		return kqWaker{}, fmt.Errorf("poller: kqueue EVFILT_USER: %w", err)
	}
	w := kqWaker{kq: kq}
	unix.SetKevent(&w.trigger[0], userIdent, unix.EVFILT_USER, 0)
	w.trigger[0].Fflags = unix.NOTE_TRIGGER
	return w, nil
}

func (w kqWaker) signal() error {
	for {
		_, err := unix.Kevent(w.kq, w.trigger[:], nil, nil)
		if err != unix.EINTR {
			return err
		}
	}
}

func (kqWaker) drain()                       {}
func (kqWaker) close() error                 { return nil } // the event goes with the kqueue
func (kqWaker) owns(fd int) bool             { return false }
func (kqWaker) isWake(e *unix.Kevent_t) bool { return e.Filter == unix.EVFILT_USER }
