// Package poller is the bottom layer of reactord: one small readiness contract, Poller,
// filled by several kernel backends: epoll, io_uring ("uring-poll"), poll and select on Linux;
// kqueue and poll on the BSDs and macOS.
//
// A Poller knows nothing about connections or protocols. It is told which file descriptors to
// watch and for what (Readable, Writable), and Wait reports which of them are ready. The
// reactor package builds its event loop on top of it.
//
// # Structure
//
// Each backend file (epoll_linux.go, uring_linux.go, poll.go, select_linux.go, kqueue_bsd.go)
// holds only its kernel calls, behind a small internal interface. front.go holds what they
// all share, once: argument checks, the owner lock, the table of watched fds, "already
// registered" and "not registered", EINTR and deadlines, wake-ups and error wrapping, so
// every backend answers every misuse the same way. This is the shape of Redis's ae.c over
// ae_epoll.c and ae_select.c, or libevent's eventop.
//
// The io_uring backend needs Linux 5.13 and a kernel that allows io_uring: where it is refused
// (a seccomp profile, the kernel.io_uring_disabled sysctl) Open fails with ErrUnsupported, and
// Backend.Available tells a program so up front. Open("auto") never picks it: as a readiness
// poller it costs more CPU than epoll (docs/IO_URING.md).
//
// # Choosing a backend
//
// Backends are values (see Backend): each has a name and feature flags, and Backends lists the
// ones compiled for this OS in order of preference. Open("auto") takes the first one, unless the
// environment variable REACTOR_POLLER names another, so users can compare backends without
// rebuilding. Open with an explicit name always opens that backend.
//
// # Threading
//
// A Poller has one owner goroutine: Add, Modify, Remove and Wait must be called from it (in
// practice the event loop's goroutine) and never concurrently with each other. Wake may be
// called from any goroutine at any time, including concurrently with Wait and Close. Close may
// be called from any goroutine; after it returns every method but Name reports ErrClosed.
//
// # Errors
//
// Errors are values that callers match with errors.Is: ErrClosed, ErrNotRegistered,
// ErrAlreadyRegistered, ErrInvalidArgument, ErrUnsupported, ErrUnknownBackend. Errors from the
// kernel are returned wrapped, so errors.Is(err, unix.EBADF) works for an fd that was closed
// before Add. No method panics on bad input.
package poller

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// Events is a set of readiness conditions, used both as the interest passed to Add and Modify
// and as the result reported by Wait.
type Events uint32

const (
	// Readable means the fd has data to read, a pending connection to accept, or an EOF to
	// report. As interest it asks to be told when any of those hold.
	Readable Events = 1 << iota
	// Writable means a write would not block. Keep it out of the interest set unless output is
	// pending: a writable socket is almost always writable, so leaving it on makes Wait return
	// at once, every time.
	Writable
	// Hangup is reported (never requested) when the peer has closed its side of the
	// connection, at least for writing (EPOLLRDHUP/EPOLLHUP, POLLHUP/POLLRDHUP, EV_EOF). Unread
	// data may still be buffered: read until EOF before closing. The select backend cannot
	// report it: there a closed peer shows as Readable, and the read returns EOF.
	Hangup
	// Error is reported (never requested) when the fd has a pending error (EPOLLERR, POLLERR,
	// POLLNVAL, EV_ERROR). Read it with getsockopt(SO_ERROR) or by reading the fd.
	Error
	// EdgeTriggered is an interest flag: report readiness only when it changes, not for as
	// long as it lasts. The caller must then read or write until EAGAIN. Backends without
	// FeatureEdgeTriggered reject it with ErrUnsupported.
	EdgeTriggered
)

// interestMask is every bit a caller may pass to Add or Modify.
const interestMask = Readable | Writable | EdgeTriggered

// String returns the set as names joined by '|', for logs and test failures.
func (e Events) String() string {
	if e == 0 {
		return "0"
	}
	var parts []string
	names := []struct {
		bit  Events
		name string
	}{{Readable, "Readable"}, {Writable, "Writable"}, {Hangup, "Hangup"}, {Error, "Error"}, {EdgeTriggered, "EdgeTriggered"}}
	for _, n := range names {
		if e&n.bit != 0 {
			parts = append(parts, n.name)
			e &^= n.bit
		}
	}
	if e != 0 {
		parts = append(parts, fmt.Sprintf("0x%x", uint32(e)))
	}
	return strings.Join(parts, "|")
}

// Event is one ready file descriptor reported by Wait.
type Event struct {
	FD     int
	Events Events
}

// Poller watches file descriptors for readiness. See the package documentation for which
// methods may be called from which goroutine.
type Poller interface {
	// Add starts watching fd for interest, a combination of Readable, Writable and, where
	// supported, EdgeTriggered. Hangup and Error need not be asked for: errors and a full
	// hang-up (both directions shut) are reported whatever the interest, because the kernel
	// reports them so; a half-close (the peer shut down writing) is reported with Readable
	// interest only, so a caller that paused reading is not woken by it over and over. An
	// interest of 0 keeps fd registered but silent except for those.
	// Add keeps no reference to the caller's memory. The fd stays the caller's to close.
	// Errors: ErrInvalidArgument for other bits or a negative fd, ErrAlreadyRegistered if fd
	// is watched already, ErrUnsupported for EdgeTriggered on a backend without it, a wrapped
	// EBADF for an fd that is not open, ErrClosed after Close.
	Add(fd int, interest Events) error

	// Modify replaces the interest of a watched fd. It is the call that turns Writable on
	// while output is pending and off again once it has drained. Errors: as Add, and
	// ErrNotRegistered if fd is not watched.
	Modify(fd int, interest Events) error

	// Remove stops watching fd. Call it before closing fd: a closed fd may stay in the kernel's
	// interest list (epoll keeps it while a dup of it is open) or make poll report POLLNVAL.
	// Errors: ErrNotRegistered if fd is not watched, ErrClosed after Close.
	Remove(fd int) error

	// Wait blocks until at least one watched fd is ready, Wake is called, or timeout passes,
	// then fills out with ready fds and returns how many it filled (never more than len(out);
	// ready fds that did not fit are reported by later Waits). Each fd appears at most once
	// per call. A negative timeout blocks without limit; zero polls without blocking. It
	// returns 0 and a nil error on timeout or wake-up; the timeout is a lower bound. If the
	// kernel interrupts the wait (EINTR, frequent under Go's asynchronous preemption) Wait
	// retries with the time that remains. out is only written, never retained. Errors:
	// ErrClosed after Close (also when Close ran during the Wait); ErrInvalidArgument if out
	// is empty.
	Wait(out []Event, timeout time.Duration) (n int, err error)

	// Wake makes a blocked or the next Wait return. It is safe from any goroutine; many calls
	// before Wait returns coalesce into one kernel write. It returns ErrClosed after Close.
	Wake() error

	// Close releases the kernel resources. It does not close the watched fds: they belong to
	// the caller. It is safe from any goroutine; a second call returns ErrClosed. If Wait is
	// blocked on another goroutine, Close wakes it (that Wait returns ErrClosed) and waits for
	// it to leave the kernel before closing the backend's fds, so their numbers are never
	// reused under a running Wait.
	Close() error

	// Name returns the backend's name, as passed to Open ("epoll", "poll", ...).
	Name() string
}

// Features are the capabilities of a backend, as flags.
type Features uint32

const (
	// FeatureEdgeTriggered means the backend accepts the EdgeTriggered interest flag.
	FeatureEdgeTriggered Features = 1 << iota
	// FeatureO1 means the cost of Wait does not grow with the number of watched fds that are
	// idle (epoll, kqueue). poll and select scan every watched fd on every Wait.
	FeatureO1
	// FeatureRDHUP means a peer's half-close is reported as Hangup on its own, before it is
	// read as EOF (EPOLLRDHUP, EV_EOF).
	FeatureRDHUP
)

// Backend describes one kernel mechanism: its name, its features and how to open it.
type Backend struct {
	// Name is what Open and REACTOR_POLLER accept.
	Name string
	// Features says what the backend can do.
	Features Features

	// open creates the backend's kernel half and its wake-up; the front (front.go) does the
	// rest, the same for every backend.
	open func() (ops, kernelWaker, error)
	// openCheck: the kernel accepts a closed fd at registration; see front.openCheck.
	openCheck bool
}

// Open returns a new Poller of this backend. Errors: ErrUnknownBackend for a Backend value
// not obtained from Backends or Lookup; otherwise the kernel's, wrapped (for io_uring also
// ErrUnsupported when the kernel refuses or lacks it).
func (b Backend) Open() (Poller, error) {
	if b.open == nil {
		return nil, fmt.Errorf("poller: %q: %w", b.Name, ErrUnknownBackend)
	}
	o, k, err := b.open()
	if err != nil {
		return nil, err
	}
	return newFront(b, o, k), nil
}

// Available reports whether the backend can run on this machine, by opening and closing one
// instance. It returns nil, or Open's error: ErrUnsupported (wrapped, with the reason) for a
// backend this kernel refuses or lacks, which today means io_uring under a seccomp profile,
// the kernel.io_uring_disabled sysctl or a kernel before 5.13. A program that lets users name
// a backend checks it once at start and falls back to Backends()[0] with a log line (the
// daemon does), so a configuration written for one machine still runs on another.
func (b Backend) Available() error {
	p, err := b.Open()
	if err != nil {
		return err
	}
	return p.Close()
}

// Has reports whether the backend has every feature in f.
func (b Backend) Has(f Features) bool { return b.Features&f == f }

// EnvVar is the environment variable that overrides the backend chosen by Open("auto").
const EnvVar = "REACTOR_POLLER"

// Errors returned by Poller methods and Open.
var (
	// ErrClosed is returned by any call on a Poller after Close.
	ErrClosed = errors.New("poller: closed")
	// ErrNotRegistered is returned by Modify and Remove for an fd that is not watched.
	ErrNotRegistered = errors.New("poller: fd not registered")
	// ErrAlreadyRegistered is returned by Add for an fd that is watched already.
	ErrAlreadyRegistered = errors.New("poller: fd already registered")
	// ErrInvalidArgument is returned for an interest with unknown bits, a negative or
	// out-of-range fd, or an empty event slice passed to Wait.
	ErrInvalidArgument = errors.New("poller: invalid argument")
	// ErrInvalidInterest is the former name of ErrInvalidArgument, kept as the same value so
	// existing errors.Is checks keep working.
	//
	// Deprecated: use ErrInvalidArgument.
	ErrInvalidInterest = ErrInvalidArgument
	// ErrUnsupported is returned when a backend lacks a feature the call asks for.
	ErrUnsupported = errors.New("poller: not supported by this backend")
	// ErrUnknownBackend is returned by Open for a name no compiled backend has.
	ErrUnknownBackend = errors.New("poller: unknown backend")
)

// registry lists the backends compiled for this OS, best first. Each backend file adds itself
// from an init function through register.
var registry []rankedBackend

type rankedBackend struct {
	Backend
	rank int // lower is preferred
}

// register adds a backend, keeping registry sorted by rank. It runs once per backend at init.
func register(b Backend, rank int) {
	registry = append(registry, rankedBackend{b, rank})
	sort.SliceStable(registry, func(i, j int) bool { return registry[i].rank < registry[j].rank })
}

// Backends returns the backends compiled for this OS, best first. The slice is a copy.
func Backends() []Backend {
	out := make([]Backend, len(registry))
	for i, r := range registry {
		out[i] = r.Backend
	}
	return out
}

// Lookup returns the backend with the given name. "auto" and "" resolve as Open does. "uring",
// the name of the reactor's io_uring completion mode, resolves to "uring-poll".
func Lookup(name string) (Backend, error) {
	if name == "" || name == "auto" {
		if env := os.Getenv(EnvVar); env != "" && env != "auto" {
			b, err := Lookup(env)
			if err != nil {
				return Backend{}, fmt.Errorf("poller: %s=%q: %w", EnvVar, env, ErrUnknownBackend)
			}
			return b, nil
		}
		if len(registry) == 0 {
			return Backend{}, fmt.Errorf("poller: no backend for this OS: %w", ErrUnknownBackend)
		}
		return registry[0].Backend, nil
	}
	for _, b := range registry {
		if b.Name == name {
			return b.Backend, nil
		}
	}
	if name == uringAlias {
		return Lookup("uring-poll")
	}
	return Backend{}, fmt.Errorf("poller: %q (have %s): %w", name, names(), ErrUnknownBackend)
}

// uringAlias is the io_uring readiness backend's former name. The reactor gives "uring" to
// its completion mode (the loops submit their reads and writes to a ring); a program asking
// package poller for "uring", or running with REACTOR_POLLER=uring, gets the nearest
// readiness backend, "uring-poll", where it is compiled.
const uringAlias = "uring"

// Open opens the backend called name: "epoll", "uring-poll", "poll", "select", "kqueue", or "auto" (or "")
// for the best one available, which the environment variable REACTOR_POLLER may override.
// An unknown name, in the argument or in REACTOR_POLLER, returns ErrUnknownBackend.
func Open(name string) (Poller, error) {
	b, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	return b.Open()
}

func names() string {
	s := make([]string, len(registry))
	for i, b := range registry {
		s[i] = b.Name
	}
	return strings.Join(s, ", ")
}

// remaining converts a Wait timeout into a deadline-aware helper: it returns the time left
// before deadline, or a negative value to block forever.
func remaining(deadline time.Time, timeout time.Duration) time.Duration {
	if timeout < 0 {
		return -1
	}
	d := time.Until(deadline)
	if d < 0 {
		return 0
	}
	return d
}
