//go:build linux

package poller

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// eventfdWaker wakes epoll, poll and select on Linux. An eventfd is one fd (a pipe is two)
// holding a counter: any write makes it readable, one 8-byte read resets it to zero.
type eventfdWaker struct {
	fd  int
	one [8]byte // the value 1, written by signal; kept here so Wake does not allocate
	buf [8]byte // read buffer for drain
}

func newEventfdWaker() (*eventfdWaker, error) {
	// Non-blocking: drain must never block the loop, and a write can only fail with EAGAIN
	// when the counter is near 2^64, in which case the fd is readable anyway.
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("poller: eventfd: %w", err)
	}
	w := &eventfdWaker{fd: fd}
	binary.NativeEndian.PutUint64(w.one[:], 1)
	return w, nil
}

func (w *eventfdWaker) signal() error {
	for {
		_, err := unix.Write(w.fd, w.one[:])
		switch err {
		case nil, unix.EAGAIN: // EAGAIN: counter saturated, so it is readable already
			return nil
		case unix.EINTR:
			continue
		default:
			return err
		}
	}
}

func (w *eventfdWaker) drain() {
	for {
		// One read resets the counter however many writes there were. EAGAIN means it was
		// already zero (the readiness we saw is stale); nothing else can fail here.
		if _, err := unix.Read(w.fd, w.buf[:]); err != unix.EINTR {
			return
		}
	}
}

func (w *eventfdWaker) close() error { return unix.Close(w.fd) }
