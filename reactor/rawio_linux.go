//go:build linux

package reactor

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Reads and writes on a connection's socket go to the kernel as raw system calls, not through
// unix.Read/unix.Write. Why: those wrap the call in the runtime's entersyscall/exitsyscall,
// the hand-off that lets another thread take over this goroutine's P in case the call blocks.
// Every fd the loop reads and writes is non-blocking, so the call never blocks and the hand-off
// is pure cost: the two runtime calls on every read and write, and, worse, sysmon keeps finding
// the P "in a system call", stays at its fastest polling rate (one nanosleep per request in
// strace) and now and then retakes the P, after which exitsyscall must get one back. A raw call
// keeps the goroutine running; the runtime sees no system call at all.
//
// Never use these for a call that can block (epoll_wait with a timeout, sendfile reading from
// disk, connect on a blocking socket): with GOMAXPROCS=1 a blocked raw call stalls the whole
// process until it returns.

// zeroByte gives an empty buffer a valid address, as the kernel wants a pointer even for 0 bytes.
var zeroByte byte

// bufPtr returns the address of p's first byte, or of zeroByte when p is empty.
func bufPtr(p []byte) uintptr {
	if len(p) == 0 {
		return uintptr(unsafe.Pointer(&zeroByte))
	}
	return uintptr(unsafe.Pointer(&p[0]))
}

// rawRead is read(2) on a non-blocking fd, without the scheduler hand-off. n is -1 on error,
// as with unix.Read.
func rawRead(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), bufPtr(p), uintptr(len(p)))
	if e != 0 {
		return -1, errnoErr(e)
	}
	return int(r), nil
}

// rawWrite is write(2) on a non-blocking fd, without the scheduler hand-off. n is -1 on
// error, as with unix.Write.
func rawWrite(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), bufPtr(p), uintptr(len(p)))
	if e != 0 {
		return -1, errnoErr(e)
	}
	return int(r), nil
}

// errnoErr returns e as an error value. EAGAIN, the common one, is compared by callers with
// ==, which works because unix.Errno values compare by number.
func errnoErr(e unix.Errno) error {
	if e == unix.EAGAIN {
		return errEAGAIN
	}
	return e
}

// errEAGAIN is unix.EAGAIN boxed once, so the common "would block" result costs no interface
// conversion.
var errEAGAIN error = unix.EAGAIN
