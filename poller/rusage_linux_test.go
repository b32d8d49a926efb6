package poller

import "golang.org/x/sys/unix"

// rusageThread asks getrusage for the calling thread only.
const rusageThread = unix.RUSAGE_THREAD
