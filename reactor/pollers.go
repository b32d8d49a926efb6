package reactor

import (
	"fmt"
	"os"

	"github.com/reactord/reactord/poller"
)

// The names WithPoller accepts are those of package poller's readiness backends (epoll,
// uring-poll, poll, select, kqueue), with which the loops read and write the sockets
// themselves when the kernel says they are ready, plus, on Linux, "uring": the loops' io_uring
// completion mode, in which the kernel accepts, receives and sends on their behalf and one
// io_uring_enter per loop iteration submits the iteration's work and waits for the next
// (uring_linux.go, docs/IO_URING.md). The completion mode is not a Poller: it keeps an epoll
// poller for the descriptors it does not drive itself and for Wake, and watches that poller
// from its ring.

// uringMode is the name of the completion mode.
const uringMode = "uring"

// ioChoice is what a WithPoller name resolves to.
type ioChoice struct {
	name    string         // the resolved name, as PollerName reports it
	backend poller.Backend // the readiness backend; for the completion mode, its epoll
	ring    bool           // the completion mode
}

// resolvePoller resolves name as WithPoller does: "auto" and "" honour REACTOR_POLLER, then
// take the best readiness backend.
func resolvePoller(name string) (ioChoice, error) {
	if name == "" || name == "auto" {
		if env := os.Getenv(poller.EnvVar); env != "" && env != "auto" {
			ch, err := resolveNamed(env)
			if err != nil {
				return ioChoice{}, fmt.Errorf("reactor: %s=%q: %w", poller.EnvVar, env, err)
			}
			return ch, nil
		}
		b, err := poller.Lookup("auto")
		if err != nil {
			return ioChoice{}, err
		}
		return ioChoice{name: b.Name, backend: b}, nil
	}
	return resolveNamed(name)
}

func resolveNamed(name string) (ioChoice, error) {
	if name == uringMode {
		if !ringCompiled {
			return ioChoice{}, fmt.Errorf("reactor: poller %q: the io_uring completion mode is Linux-only: %w", name, poller.ErrUnknownBackend)
		}
		b, err := poller.Lookup("epoll")
		if err != nil {
			return ioChoice{}, err
		}
		return ioChoice{name: uringMode, backend: b, ring: true}, nil
	}
	b, err := poller.Lookup(name)
	if err != nil {
		return ioChoice{}, err
	}
	return ioChoice{name: b.Name, backend: b}, nil
}

// Pollers returns the names WithPoller accepts on this OS, best first: package poller's
// readiness backends and, on Linux, "uring", the io_uring completion mode, listed after
// epoll. WithPoller("auto") takes the first unless REACTOR_POLLER names another. Any
// goroutine.
func Pollers() []string {
	var names []string
	for _, b := range poller.Backends() {
		names = append(names, b.Name)
		if b.Name == "epoll" && ringCompiled {
			names = append(names, uringMode)
		}
	}
	return names
}

// CheckPoller resolves name as WithPoller does ("auto" and "" honour REACTOR_POLLER) and
// reports whether it can run on this machine, by setting up and tearing down what a loop
// would use. It returns the resolved name and nil, or an error wrapping
// poller.ErrUnknownBackend for a name not compiled in, or poller.ErrUnsupported, with the
// kernel's reason, for a backend this kernel refuses: io_uring under a seccomp profile or
// kernel.io_uring_disabled, or too old a kernel (the completion mode needs Linux 6.1). A
// program that lets users name a backend checks it once at start and falls back to
// Pollers()[0] on ErrUnsupported, with a log line (the daemon does); NewServer and Start
// never fall back by themselves, because an explicit name means that backend. Any goroutine.
func CheckPoller(name string) (string, error) {
	ch, err := resolvePoller(name)
	if err != nil {
		return "", err
	}
	if err := ch.backend.Available(); err != nil {
		return ch.name, err
	}
	if ch.ring {
		if err := ringAvailable(); err != nil {
			return ch.name, err
		}
	}
	return ch.name, nil
}
