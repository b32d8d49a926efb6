//go:build linux

package uring

import "unsafe"

// The kernel ABI: constants and layouts from include/uapi/linux/io_uring.h, only those this
// project uses. golang.org/x/sys/unix has the system call numbers but none of these.

// Setup flags, for Config.Flags and Config.Optional (io_uring_setup(2)).
const (
	SetupCQSize        = 1 << 3  // CQEntries is valid (5.5)
	SetupClamp         = 1 << 4  // clamp ring sizes to the maximum instead of failing (5.6)
	SetupRDisabled     = 1 << 6  // created disabled: Enable (on the issuing thread) starts it (5.10)
	SetupSubmitAll     = 1 << 7  // keep submitting after an SQE fails to prepare (5.18)
	SetupCoopTaskrun   = 1 << 8  // no IPI to run completions; they run at the next kernel entry (5.19)
	SetupTaskrunFlag   = 1 << 9  // set SQTaskrun when completions wait for a kernel entry (5.19)
	SetupSingleIssuer  = 1 << 12 // only the creating thread submits (6.0)
	SetupDeferTaskrun  = 1 << 13 // run completion work only inside io_uring_enter(GETEVENTS) (6.1)
	SetupNoSQArray     = 1 << 16 // no SQ index array: SQEs are taken in ring order (6.6)
	setupFlagsKnownMax = 1 << 20
)

// Feature flags reported by io_uring_setup, for Config.Features and Ring.Features.
const (
	FeatSingleMmap     = 1 << 0  // SQ and CQ rings share one mapping (5.4)
	FeatNoDrop         = 1 << 1  // completions are never dropped: overflow is kept in the kernel (5.5)
	FeatSubmitStable   = 1 << 2  // SQE contents may be reused once submitted (5.5)
	FeatFastPoll       = 1 << 5  // internal poll for non-blocking sockets, no io-wq thread (5.7)
	FeatPoll32Bits     = 1 << 6  // poll masks are 32 bits (EPOLLRDHUP) (5.9)
	FeatExtArg         = 1 << 8  // io_uring_enter takes a timeout argument (5.11)
	FeatNativeWorker   = 1 << 9  // io-wq workers are threads of this process (5.12)
	FeatRsrcTags       = 1 << 10 // resource tags (5.13, the release that added multishot poll)
	FeatCQESkip        = 1 << 11 // IOSQE_CQE_SKIP_SUCCESS (5.17)
	FeatLinkedFile     = 1 << 12 // (5.17)
	FeatRegRegRing     = 1 << 13 // registered ring fd for io_uring_register (6.3)
	FeatRecvSendBundle = 1 << 14 // (6.10)
	FeatMinTimeout     = 1 << 15 // (6.12)
)

// Opcodes (enum io_uring_op), the ones used here.
const (
	OpNop         = 0
	OpPollAdd     = 6
	OpPollRemove  = 7
	OpAccept      = 13
	OpAsyncCancel = 14
	OpClose       = 19
	OpRead        = 22
	OpWrite       = 23
	OpSend        = 26
	OpRecv        = 27
	OpSplice      = 30
	OpShutdown    = 34
	OpMsgRing     = 40
	OpSendZC      = 47
	opLast        = 63
)

var opNames = map[uint8]string{
	OpNop: "NOP", OpPollAdd: "POLL_ADD", OpPollRemove: "POLL_REMOVE", OpAccept: "ACCEPT",
	OpAsyncCancel: "ASYNC_CANCEL", OpClose: "CLOSE", OpRead: "READ", OpWrite: "WRITE",
	OpSend: "SEND", OpRecv: "RECV", OpSplice: "SPLICE", OpShutdown: "SHUTDOWN",
	OpMsgRing: "MSG_RING", OpSendZC: "SEND_ZC",
}

// SQE flags (SQE.Flags).
const (
	SQEFixedFile      = 1 << 0
	SQEIODrain        = 1 << 1
	SQEIOLink         = 1 << 2
	SQEIOHardlink     = 1 << 3
	SQEAsync          = 1 << 4
	SQEBufferSelect   = 1 << 5 // take a buffer from the group in SQE.BufIndex
	SQECQESkipSuccess = 1 << 6 // post no completion if the operation succeeds (FeatCQESkip)
)

// CQE flags (CQE.Flags).
const (
	CQEFBuffer       = 1 << 0 // the upper 16 bits hold the id of the provided buffer used
	CQEFMore         = 1 << 1 // the multishot request stays armed: more completions follow
	CQEFSockNonempty = 1 << 2 // the socket had more data after this receive
	CQEFNotif        = 1 << 3 // zero-copy send notification
	CQEBufferShift   = 16
)

// Poll flags, in SQE.Len for OpPollAdd and OpPollRemove.
const (
	PollAddMulti       = 1 << 0 // multishot: stay armed after each completion (5.13)
	PollUpdateEvents   = 1 << 1
	PollUpdateUserData = 1 << 2
)

// Accept, receive and send flags, in SQE.IoPrio.
const (
	AcceptMultishot   = 1 << 0 // one SQE accepts until cancelled (5.19)
	RecvsendPollFirst = 1 << 0 // arm poll before trying the transfer
	RecvMultishot     = 1 << 1 // one SQE receives until cancelled; needs a buffer group (6.0)
)

// Async cancel flags (SQE.OpFlags for OpAsyncCancel).
const (
	CancelAll = 1 << 0
	CancelFD  = 1 << 1
	CancelAny = 1 << 2
)

// io_uring_enter flags.
const (
	EnterGetEvents      = 1 << 0
	EnterExtArg         = 1 << 3
	EnterRegisteredRing = 1 << 4 // the fd argument is an index registered with RegisterRingFD
)

// SQ ring flags (Ring.sqFlags), written by the kernel.
const (
	SQNeedWakeup = 1 << 0
	SQCQOverflow = 1 << 1 // completions wait in the kernel's overflow list: enter with GETEVENTS
	SQTaskrun    = 1 << 2 // completion work waits for a kernel entry (SetupTaskrunFlag)
)

// io_uring_register opcodes.
const (
	registerProbe     = 8
	registerEnable    = 12 // IORING_REGISTER_ENABLE_RINGS
	registerRingFDs   = 20
	unregisterRingFDs = 21
	registerPbufRing  = 22
	unregisterPbufRng = 23
)

// mmap offsets.
const (
	offSQRing = 0
	offCQRing = 0x8000000
	offSQEs   = 0x10000000
)

// SQE is struct io_uring_sqe: 64 bytes. Field names follow the kernel's first member of each
// union; the Prep methods fill them per opcode.
type SQE struct {
	Opcode      uint8
	Flags       uint8
	IoPrio      uint16
	FD          int32
	Off         uint64 // off, addr2
	Addr        uint64 // addr, splice_off_in
	Len         uint32
	OpFlags     uint32 // rw_flags, poll32_events, msg_flags, accept_flags, cancel_flags, ...
	UserData    uint64
	BufIndex    uint16 // buf_index, buf_group
	Personality uint16
	SpliceFDIn  int32 // splice_fd_in, file_index
	Addr3       uint64
	_           uint64
}

// CQE is struct io_uring_cqe: 16 bytes.
type CQE struct {
	UserData uint64
	Res      int32 // the result: a count, or a negated errno
	Flags    uint32
}

// BufferID returns the id of the provided buffer this completion used, if CQEFBuffer is set.
func (c *CQE) BufferID() uint16 { return uint16(c.Flags >> CQEBufferShift) }

// params is struct io_uring_params: 120 bytes.
type params struct {
	sqEntries    uint32
	cqEntries    uint32
	flags        uint32
	sqThreadCPU  uint32
	sqThreadIdle uint32
	features     uint32
	wqFD         uint32
	resv         [3]uint32
	sqOff        sqringOffsets
	cqOff        cqringOffsets
}

type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

// rsrcUpdate is struct io_uring_rsrc_update, for IORING_REGISTER_RING_FDS.
type rsrcUpdate struct {
	offset uint32
	resv   uint32
	data   uint64
}

// getEventsArg is struct io_uring_getevents_arg, for EnterExtArg.
type getEventsArg struct {
	sigmask     uint64
	sigmaskSize uint32
	minWaitUsec uint32
	ts          uint64 // pointer to a struct __kernel_timespec
}

// bufReg is struct io_uring_buf_reg, for IORING_REGISTER_PBUF_RING.
type bufReg struct {
	ringAddr    uint64
	ringEntries uint32
	bgid        uint16
	flags       uint16
	resv        [3]uint64
}

// Layout checks: a wrong size here would corrupt the rings, so fail the build instead.
var (
	_ [64 - unsafe.Sizeof(SQE{})]struct{}
	_ [unsafe.Sizeof(SQE{}) - 64]struct{}
	_ [16 - unsafe.Sizeof(CQE{})]struct{}
	_ [unsafe.Sizeof(CQE{}) - 16]struct{}
	_ [120 - unsafe.Sizeof(params{})]struct{}
	_ [unsafe.Sizeof(params{}) - 120]struct{}
	_ [24 - unsafe.Sizeof(getEventsArg{})]struct{}
	_ [40 - unsafe.Sizeof(bufReg{})]struct{}
	_ [unsafe.Sizeof(bufReg{}) - 40]struct{}
	_ [16 - unsafe.Sizeof(rsrcUpdate{})]struct{}
	_ [unsafe.Sizeof(rsrcUpdate{}) - 16]struct{}
)
