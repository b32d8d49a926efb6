//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package poller

import (
	"time"

	"golang.org/x/sys/unix"
)

// pollRDHUP is 0: the BSDs have no POLLRDHUP; a half-close shows as readable, then EOF.
const pollRDHUP = 0

// kernelPoll calls poll(2), which takes milliseconds (rounded up by msec).
type kernelPoll struct{}

func (kernelPoll) poll(fds []unix.PollFd, d time.Duration) (int, error) {
	return unix.Poll(fds, msec(d))
}

// newPollWaker returns the waker and the fd poll watches for it.
func newPollWaker() (kernelWaker, int, error) {
	w, err := newPipeWaker()
	if err != nil {
		return nil, 0, err
	}
	return w, w.r, nil
}
