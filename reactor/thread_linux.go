package reactor

import "golang.org/x/sys/unix"

// selfID identifies the caller's execution context for currentLoop. On Linux it is the
// kernel thread id (gettid(2), one cheap system call): the loop goroutine is locked to its
// thread with runtime.LockOSThread, and no other goroutine runs on a locked thread, so the
// thread id names the loop goroutine for as long as it runs.
func selfID() int { return unix.Gettid() }
