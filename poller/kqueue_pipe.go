//go:build netbsd || openbsd

package poller

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// kqWaker is the kqueue wake-up where there is no EVFILT_USER: a self-pipe whose read end is
// watched with EVFILT_READ.
type kqWaker struct {
	*pipeWaker
}

func newKqWaker(kq int) (kqWaker, error) {
	pw, err := newPipeWaker()
	if err != nil {
		return kqWaker{}, err
	}
	var add [1]unix.Kevent_t
	unix.SetKevent(&add[0], pw.r, unix.EVFILT_READ, unix.EV_ADD)
	if _, err := unix.Kevent(kq, add[:], nil, nil); err != nil {
		pw.close()
		return kqWaker{}, fmt.Errorf("poller: kqueue wake-up pipe: %w", err)
	}
	return kqWaker{pw}, nil
}

func (w kqWaker) owns(fd int) bool { return fd == w.r || fd == w.w }
func (w kqWaker) isWake(e *unix.Kevent_t) bool {
	return e.Filter == unix.EVFILT_READ && int(e.Ident) == w.r
}
