//go:build !linux

package reactor

// selfID identifies the caller's execution context for currentLoop. gettid(2) is
// Linux-only: macOS would need pthread_threadid_np from libc (not reachable without cgo) or a
// raw thread_selfid trap, which Apple does not support as an ABI. The goroutine id is used
// instead (see goroutineID). It is the more direct answer anyway, since the question is "is this
// the loop goroutine", and it needs no system call. It costs a short stack format, about a
// microsecond, which is fine for the rare operations (Server.Close, Shutdown, Listen on a
// running server) that ask.
func selfID() int { return goroutineID() }
