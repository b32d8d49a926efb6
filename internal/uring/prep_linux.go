//go:build linux

package uring

import (
	"unsafe"
)

// The Prep methods fill an SQE from NextSQE for one operation. They set only what the
// operation reads; UserData and Flags are the caller's to set after. Addresses are taken from
// Go slices and pointers: the memory must stay alive and unmoved until the completion
// arrives (heap memory does not move; mmap'd memory is best), which is the caller's rule.

// bigEndian: on big-endian machines the kernel swaps the halves of poll32_events.
var bigEndian = func() bool { x := uint16(1); return *(*byte)(unsafe.Pointer(&x)) == 0 }()

// PrepNop prepares a no-op: it completes at once with Res 0.
func (s *SQE) PrepNop() { s.Opcode = OpNop; s.FD = -1 }

// PrepPollAdd prepares a poll for events (POLLIN, POLLOUT, POLLRDHUP ... as in poll(2)) on
// fd. Multishot stays armed and posts a completion (with CQEFMore) on every wake-up of the
// file, until removed or until the kernel ends it (a completion without CQEFMore). A poll
// is edge-triggered: it reports the state when armed, then only on new wake-ups. Res is the
// ready mask, or a negated errno. The kernel always adds POLLERR, POLLHUP, POLLNVAL and
// POLLRDHUP to the mask asked for.
func (s *SQE) PrepPollAdd(fd int, events uint32, multishot bool) {
	s.Opcode = OpPollAdd
	s.FD = int32(fd)
	if bigEndian {
		events = events<<16 | events>>16
	}
	s.OpFlags = events
	if multishot {
		s.Len = PollAddMulti
	}
}

// PrepPollRemove prepares the removal of the poll whose SQE had user data target. The
// removed poll completes with -ECANCELED; this one with 0, or -ENOENT if the target had
// completed already, or -EALREADY if the target's completion work is queued (it fired, or
// was ready when armed in the same submission): then the poll is NOT removed, and a
// multishot poll stays armed. PrepCancel has no such gap; prefer it.
func (s *SQE) PrepPollRemove(target uint64) {
	s.Opcode = OpPollRemove
	s.FD = -1
	s.Addr = target
}

// PrepCancel prepares the cancellation of the request whose SQE had user data target.
func (s *SQE) PrepCancel(target uint64, flags uint32) {
	s.Opcode = OpAsyncCancel
	s.FD = -1
	s.Addr = target
	s.OpFlags = flags
}

// PrepAccept prepares an accept on the listening socket fd; flags are accept4's
// (SOCK_NONBLOCK, SOCK_CLOEXEC). Multishot accepts connection after connection, one
// completion each (Res is the new fd), until cancelled or an error ends it. No peer address
// is asked for.
func (s *SQE) PrepAccept(fd int, flags uint32, multishot bool) {
	s.Opcode = OpAccept
	s.FD = int32(fd)
	s.OpFlags = flags
	if multishot {
		s.IoPrio = AcceptMultishot
	}
}

// PrepRecvMultishot prepares a multishot receive on fd into buffers taken from the provided
// buffer group bgid: each completion names its buffer (CQE.BufferID) and how many bytes it
// holds (Res); Res 0 is EOF and ends the request, as does an error or running out of
// buffers (-ENOBUFS). A completion without CQEFMore means the request has ended.
func (s *SQE) PrepRecvMultishot(fd int, bgid uint16) {
	s.Opcode = OpRecv
	s.FD = int32(fd)
	s.IoPrio = RecvMultishot
	s.Flags |= SQEBufferSelect
	s.BufIndex = bgid
}

// LimitRecvMultishot caps the bytes a multishot receive prepared by PrepRecvMultishot takes in
// all (IORING_RECV_MSHOT_LIM, 6.15; sqe->optlen): once it has received limit bytes it ends,
// its last completion carrying data and no CQEFMore. A kernel without the cap fails the
// request with -EINVAL.
func (s *SQE) LimitRecvMultishot(limit uint32) { s.SpliceFDIn = int32(limit) }

// PrepRecv prepares one receive into p.
func (s *SQE) PrepRecv(fd int, p []byte, msgFlags uint32) {
	s.Opcode = OpRecv
	s.FD = int32(fd)
	s.Addr = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(p))))
	s.Len = uint32(len(p))
	s.OpFlags = msgFlags
}

// PrepSend prepares a send of p. On a non-blocking stream socket it may send less than
// len(p) (Res); the caller sends the rest.
func (s *SQE) PrepSend(fd int, p []byte, msgFlags uint32) {
	s.Opcode = OpSend
	s.FD = int32(fd)
	s.Addr = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(p))))
	s.Len = uint32(len(p))
	s.OpFlags = msgFlags
}

// PrepWrite prepares a write of p at offset off (-1 as ^uint64(0): the file position, or
// none for sockets and pipes).
func (s *SQE) PrepWrite(fd int, p []byte, off uint64) {
	s.Opcode = OpWrite
	s.FD = int32(fd)
	s.Addr = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(p))))
	s.Len = uint32(len(p))
	s.Off = off
}

// PrepRead prepares a read into p at offset off.
func (s *SQE) PrepRead(fd int, p []byte, off uint64) {
	s.Opcode = OpRead
	s.FD = int32(fd)
	s.Addr = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(p))))
	s.Len = uint32(len(p))
	s.Off = off
}

// PrepSplice prepares a splice of n bytes from fdIn at offIn (^uint64(0) for none: pipes) to
// fdOut at offOut, with splice(2) flags.
func (s *SQE) PrepSplice(fdIn int, offIn uint64, fdOut int, offOut uint64, n uint32, flags uint32) {
	s.Opcode = OpSplice
	s.FD = int32(fdOut)
	s.Off = offOut
	s.SpliceFDIn = int32(fdIn)
	s.Addr = offIn
	s.Len = n
	s.OpFlags = flags
}

// PrepShutdown prepares shutdown(fd, how).
func (s *SQE) PrepShutdown(fd int, how int) {
	s.Opcode = OpShutdown
	s.FD = int32(fd)
	s.Len = uint32(how)
}

// PrepClose prepares close(fd).
func (s *SQE) PrepClose(fd int) {
	s.Opcode = OpClose
	s.FD = int32(fd)
}
