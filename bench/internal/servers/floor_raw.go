package servers

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The floor's reads, writes and non-blocking epoll_waits go straight to the kernel with
// RawSyscall: on non-blocking descriptors they never block, so telling the Go scheduler about
// them (what unix.Read and friends do: entersyscall, and possibly a P hand-off on return) is
// pure cost. Only the blocking epoll_wait goes through unix.EpollWait.

func rawRead(fd int, p []byte) (int, unix.Errno) {
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(r), e
}

func rawWrite(fd int, p []byte) (int, unix.Errno) {
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(r), e
}

// rawEpollPoll is epoll_wait with a zero timeout. epoll_pwait with a nil mask is the same call
// and exists on every Linux architecture (arm64 has no plain epoll_wait).
func rawEpollPoll(epfd int, events []unix.EpollEvent) (int, unix.Errno) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(unsafe.SliceData(events))),
		uintptr(len(events)), 0, 0, 0)
	return int(r), e
}
