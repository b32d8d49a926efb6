//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package poller

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// pipeWaker is the classic self-pipe: Wake writes a byte, Wait sees the read end readable
// and drains it. Used where there is no eventfd (poll on the BSDs and macOS, kqueue where
// there is no EVFILT_USER).
type pipeWaker struct {
	r, w int
	one  [1]byte
	buf  [64]byte
}

func newPipeWaker() (*pipeWaker, error) {
	var fds [2]int
	if err := pipe(fds[:]); err != nil {
		return nil, fmt.Errorf("poller: pipe: %w", err)
	}
	// Both ends non-blocking: a full pipe must not block Wake (it is readable anyway, which
	// is all a wake-up needs), and drain must stop at EAGAIN instead of blocking the loop.
	for _, fd := range fds {
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fds[0])
			unix.Close(fds[1])
			return nil, fmt.Errorf("poller: pipe: %w", err)
		}
	}
	return &pipeWaker{r: fds[0], w: fds[1]}, nil
}

func (p *pipeWaker) signal() error {
	for {
		_, err := unix.Write(p.w, p.one[:])
		switch err {
		case nil, unix.EAGAIN: // EAGAIN: the pipe is full, so the read end is readable
			return nil
		case unix.EINTR:
			continue
		default:
			return err
		}
	}
}

func (p *pipeWaker) drain() {
	for {
		n, err := unix.Read(p.r, p.buf[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil || n < len(p.buf) {
			return // EAGAIN (empty) or a short read: drained
		}
	}
}

func (p *pipeWaker) close() error {
	err1 := unix.Close(p.r)
	err2 := unix.Close(p.w)
	if err1 != nil {
		return err1
	}
	return err2
}
