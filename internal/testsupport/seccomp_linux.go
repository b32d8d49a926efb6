package testsupport

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// DenySyscall installs a seccomp filter on the calling thread that fails system call nr with
// errno and allows every other call: the way a container runtime's profile refuses, say,
// io_uring_setup. It lets a test exercise a fallback for real, on one thread.
//
// A seccomp filter cannot be removed, and it is inherited by processes forked from the
// thread. So call it from a goroutine that has called runtime.LockOSThread and never unlocks:
// when that goroutine returns, the runtime ends its thread and the filter goes with it. A
// process started with os/exec from that goroutine inherits the filter.
//
// Errors: EINVAL or EACCES where seccomp filters are not available (tests skip then).
func DenySyscall(nr uintptr, errno unix.Errno) error {
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: uint32(nr)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(errno)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// Without CAP_SYS_ADMIN a filter needs no_new_privs; it is per thread too.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	return unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0)
}
