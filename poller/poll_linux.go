//go:build linux

package poller

import (
	"time"

	"golang.org/x/sys/unix"
)

// pollRDHUP is Linux's POLLRDHUP: the peer shut down its writing side.
const pollRDHUP = unix.POLLRDHUP

// kernelPoll calls ppoll with a timespec kept here: unix.Poll would allocate one per call,
// and ppoll takes nanoseconds, so no rounding of the timeout is needed.
type kernelPoll struct {
	ts unix.Timespec
}

func (k *kernelPoll) poll(fds []unix.PollFd, d time.Duration) (int, error) {
	if d < 0 {
		return unix.Ppoll(fds, nil, nil)
	}
	k.ts = unix.NsecToTimespec(int64(d))
	return unix.Ppoll(fds, &k.ts, nil)
}

// newPollWaker returns the waker and the fd poll and select watch for it.
func newPollWaker() (kernelWaker, int, error) {
	w, err := newEventfdWaker()
	if err != nil {
		return nil, 0, err
	}
	return w, w.fd, nil
}
