package reactor

import "runtime"

// goroutineID returns the calling goroutine's id, or 0 if it cannot be read. Go exposes no API
// for it; the first line of the goroutine's own stack trace, "goroutine 123 [running]:", has
// carried it in this form since Go 1.0. Only that line fits the buffer, and
// runtime.Stack(buf, false) formats the caller alone without stopping the world. Ids start at
// 1 and are unique for the life of the process.
func goroutineID() int {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	const prefix = "goroutine "
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return 0
	}
	id := 0
	for _, c := range b[len(prefix):] {
		if c < '0' || c > '9' {
			return id
		}
		id = id*10 + int(c-'0')
	}
	return 0
}
