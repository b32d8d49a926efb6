//go:build darwin

package poller

import "golang.org/x/sys/unix"

// pipe makes a close-on-exec pipe. macOS has no pipe2, so FD_CLOEXEC is set just after; a
// fork in that instant could inherit the fds, which only costs the child two stray fds.
func pipe(fds []int) error {
	if err := unix.Pipe(fds); err != nil {
		return err
	}
	unix.CloseOnExec(fds[0])
	unix.CloseOnExec(fds[1])
	return nil
}
