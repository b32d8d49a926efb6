package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// notifier speaks systemd's readiness protocol (sd_notify(3)): one datagram of
// "KEY=value\n" lines sent to the AF_UNIX socket named by $NOTIFY_SOCKET. With Type=notify
// the unit is "started" at READY=1, "reloading" between RELOADING=1 and the next READY=1,
// and "deactivating" after STOPPING=1. After a binary upgrade, MAINPID= names the new process
// (sent by the old one, which is the main process until then: NotifyAccess=main accepts it).
// A nil notifier (no $NOTIFY_SOCKET) sends nothing.
type notifier struct {
	addr *unix.SockaddrUnix
}

const envNotifySocket = "NOTIFY_SOCKET"

// newNotifier returns a notifier for $NOTIFY_SOCKET, or nil when it is unset. The variable
// stays set: a process started by an upgrade becomes the main process and notifies too.
func newNotifier() (*notifier, error) {
	name := os.Getenv(envNotifySocket)
	if name == "" {
		return nil, nil
	}
	// A leading '@' names an abstract socket; x/sys/unix turns it into the leading NUL the
	// kernel expects.
	if name[0] != '/' && name[0] != '@' {
		return nil, fmt.Errorf("%s=%q: want an absolute path or an @abstract name", envNotifySocket, name)
	}
	return &notifier{addr: &unix.SockaddrUnix{Name: name}}, nil
}

// send sends one notification made of the given "KEY=value" lines. Each call uses a fresh
// socket: notifications are rare (start, reload, upgrade, stop), and a socket kept open
// would be one more descriptor to pass across an upgrade.
func (n *notifier) send(lines ...string) error {
	if n == nil {
		return nil
	}
	// No SOCK_CLOEXEC: macOS lacks it. An upgrade's exec racing the next line could only
	// leak this short-lived socket into the child.
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	unix.CloseOnExec(fd)
	defer unix.Close(fd)
	msg := []byte(strings.Join(lines, "\n") + "\n")
	for {
		err = unix.Sendto(fd, msg, 0, n.addr)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("sd_notify to %s: %w", n.addr.Name, os.NewSyscallError("sendto", err))
	}
	return nil
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which systemd wants with RELOADING=1
// (MONOTONIC_USEC, for Type=notify-reload) to tell one reload from the next.
func monotonicUsec() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "MONOTONIC_USEC=0"
	}
	return fmt.Sprintf("MONOTONIC_USEC=%d", ts.Nano()/1000)
}
