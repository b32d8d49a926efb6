// Package uring is a small io_uring layer in pure Go (no cgo): ring setup with feature
// detection, the mmap'd submission and completion rings, the SQE and CQE layouts,
// io_uring_enter with GETEVENTS and timeouts, the opcode probe, and provided-buffer rings.
// It is what reactord's uring poller backend and the completion-level prototypes are built
// on; it is internal because its API follows the kernel's, not the project's.
//
// # Availability
//
// New reports ErrUnavailable (with the reason in the message) whenever io_uring cannot be
// used here: a kernel without it or too old for the features or opcodes asked for, the
// kernel.io_uring_disabled sysctl, or a seccomp filter or container policy refusing the
// system call (ENOSYS, EPERM). Callers turn that into a fallback to epoll.
//
// # Threading
//
// A Ring has one owner: NextSQE, Submit, SubmitAndWait and the completion-queue methods must
// be called from one goroutine at a time. Nothing in a Ring is safe for concurrent use. With
// SetupSingleIssuer the owner must also stay on one OS thread (runtime.LockOSThread), since
// the kernel then accepts submissions from the creating thread only.
//
// # Memory
//
// The kernel reads SQEs, and writes completions and received data, through memory shared
// with this process. All of it is mmap'd here, outside the Go heap, so the garbage collector
// neither moves nor frees it; Close unmaps it after closing the ring, when the kernel has
// let go of it. Buffers passed by address in an SQE (Addr) must stay valid until the
// operation completes; the caller owns that rule.
//
// On non-Linux systems the package is empty.
package uring
