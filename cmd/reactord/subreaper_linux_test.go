package main

import "golang.org/x/sys/unix"

// becomeSubreaper makes orphaned descendants (daemons started by an upgrade whose parent
// daemon has exited) children of the test process, so it can reap them and read their exit
// status.
func becomeSubreaper() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }
