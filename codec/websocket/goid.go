package websocket

import "runtime"

// goroutineID returns the calling goroutine's id, or 0 if it cannot be read. Go exposes no API
// for it; the first line of the goroutine's own stack trace, "goroutine 123 [running]:", has
// carried it in this form since Go 1.0. It is read only where a wrong answer is cheap to avoid
// and the cost (about a microsecond) does not matter: when a loop's state is created, and when
// SendWait is about to block.
func goroutineID() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	const prefix = "goroutine "
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return 0
	}
	var id int64
	for _, c := range b[len(prefix):] {
		if c < '0' || c > '9' {
			return id
		}
		id = id*10 + int64(c-'0')
	}
	return 0
}
