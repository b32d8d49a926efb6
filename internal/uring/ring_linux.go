//go:build linux

package uring

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrUnavailable is returned (wrapped, with the reason) by New when io_uring cannot be used
// here: the kernel lacks it or a feature, flag or opcode asked for; the kernel.io_uring_disabled
// sysctl forbids it; or a seccomp filter or container runtime refuses the system call. It
// means "use epoll instead", not "something broke".
var ErrUnavailable = errors.New("io_uring unavailable")

// Config describes the ring New sets up and what it requires of the kernel.
type Config struct {
	// Entries is the submission queue size; the kernel rounds it up to a power of two.
	Entries uint32
	// CQEntries is the completion queue size (rounded up likewise); 0 means twice Entries.
	// Multishot requests post many completions per submission: size it for the burst.
	CQEntries uint32
	// Flags are setup flags the caller needs; a kernel that rejects them is ErrUnavailable.
	Flags uint32
	// Optional are setup flags used if the kernel accepts them and dropped if not. Check
	// Ring.Flags for what was granted.
	Optional uint32
	// Features are FEAT_* bits the kernel must report, or New fails with ErrUnavailable.
	Features uint32
	// Ops are opcodes the kernel must support (checked with IORING_REGISTER_PROBE).
	Ops []uint8
}

// Ring is one io_uring instance. See the package documentation for threading.
type Ring struct {
	fd       int
	flags    uint32
	features uint32
	// enterFD and enterFlags are what io_uring_enter is called with: the ring's fd, or its
	// index among the calling thread's registered rings and EnterRegisteredRing.
	enterFD    int
	enterFlags uint32

	ringMem []byte // the SQ ring, and the CQ ring too with FeatSingleMmap
	cqMem   []byte // the CQ ring's own mapping without FeatSingleMmap, else nil
	sqeMem  []byte

	// Submission queue. sqHead is advanced by the kernel as it consumes SQEs; sqTail is ours.
	sqHead, sqTail, sqFlags, sqDropped *uint32
	sqMask, sqEntries                  uint32
	sqes                               []SQE
	sqeTail                            uint32 // next SQE handed out by NextSQE
	sqePublished                       uint32 // sqeTail as last stored into *sqTail

	// Completion queue. cqTail is advanced by the kernel; cqHead is ours.
	cqHead, cqTail, cqOverflow *uint32
	cqMask, cqEntries          uint32
	cqes                       []CQE
	cqLocalHead                uint32

	// The timeout argument of SubmitAndWait. The kernel reads it through pointers, so it
	// lives here, in the heap object the caller keeps alive, never on a goroutine stack.
	arg getEventsArg
	ts  unix.Timespec

	probe [256]bool // opcode -> supported
}

// New sets up a ring as c describes, maps its queues and checks the kernel against c's
// requirements. Errors: ErrUnavailable (wrapped, with the reason) when io_uring cannot be
// used here; other errors (ENOMEM from the memlock limit on kernels before 5.12, EMFILE)
// wrapped as they come.
func New(c Config) (*Ring, error) {
	if c.Entries == 0 || c.Entries > 32768 {
		return nil, fmt.Errorf("uring: %d entries: want 1 to 32768", c.Entries)
	}
	var p params
	fd, err := setup(c, &p)
	if err != nil {
		return nil, err
	}
	r := &Ring{fd: fd, enterFD: fd, flags: p.flags, features: p.features}
	if missing := c.Features &^ p.features; missing != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: kernel %s lacks %s", ErrUnavailable, kernelRelease(), featureNames(missing))
	}
	if err := r.mmap(&p); err != nil {
		r.Close()
		return nil, err
	}
	if err := r.loadProbe(); err != nil {
		r.Close()
		return nil, err
	}
	for _, op := range c.Ops {
		if !r.probe[op] {
			r.Close()
			return nil, fmt.Errorf("%w: kernel %s lacks %s", ErrUnavailable, kernelRelease(), OpName(op))
		}
	}
	return r, nil
}

// setup calls io_uring_setup, first with the optional flags and then without them.
func setup(c Config, p *params) (int, error) {
	flags := c.Flags | c.Optional | SetupClamp
	for {
		*p = params{sqEntries: c.Entries, flags: flags}
		if c.CQEntries != 0 {
			p.flags |= SetupCQSize
			p.cqEntries = c.CQEntries
		}
		// The ring fd is close-on-exec from birth: the kernel installs it with O_CLOEXEC.
		fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(c.Entries), uintptr(unsafe.Pointer(p)), 0)
		if errno == 0 {
			return int(fd), nil
		}
		if errno == unix.EINVAL && flags != c.Flags|SetupClamp {
			flags = c.Flags | SetupClamp // an optional flag this kernel does not know
			continue
		}
		return -1, setupError(errno, c.Flags, readDisabledSysctl())
	}
}

// setupError explains why io_uring_setup failed. disabled is the value of
// /proc/sys/kernel/io_uring_disabled, or -1 if it could not be read (kernels before 6.6 have
// no such sysctl).
func setupError(errno unix.Errno, flags uint32, disabled int) error {
	switch errno {
	case unix.ENOSYS:
		return fmt.Errorf("%w: io_uring_setup: %v (kernel %s built without io_uring, or a seccomp filter)",
			ErrUnavailable, errno, kernelRelease())
	case unix.EPERM, unix.EACCES:
		switch disabled {
		case 2:
			return fmt.Errorf("%w: io_uring_setup: %v: disabled by sysctl kernel.io_uring_disabled=2", ErrUnavailable, errno)
		case 1:
			return fmt.Errorf("%w: io_uring_setup: %v: sysctl kernel.io_uring_disabled=1 allows only members of kernel.io_uring_group", ErrUnavailable, errno)
		}
		return fmt.Errorf("%w: io_uring_setup: %v: refused by a seccomp filter or container policy", ErrUnavailable, errno)
	case unix.EINVAL:
		return fmt.Errorf("%w: io_uring_setup: %v: kernel %s rejects setup flags %#x", ErrUnavailable, errno, kernelRelease(), flags)
	}
	return fmt.Errorf("uring: io_uring_setup: %w", errno)
}

// readDisabledSysctl returns kernel.io_uring_disabled (0, 1 or 2), or -1 if unreadable.
func readDisabledSysctl() int {
	b, err := os.ReadFile("/proc/sys/kernel/io_uring_disabled")
	if err != nil {
		return -1
	}
	switch strings.TrimSpace(string(b)) {
	case "0":
		return 0
	case "1":
		return 1
	case "2":
		return 2
	}
	return -1
}

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}

var featNames = []struct {
	bit  uint32
	name string
}{
	{FeatSingleMmap, "IORING_FEAT_SINGLE_MMAP (5.4)"}, {FeatNoDrop, "IORING_FEAT_NODROP (5.5)"},
	{FeatSubmitStable, "IORING_FEAT_SUBMIT_STABLE (5.5)"}, {FeatFastPoll, "IORING_FEAT_FAST_POLL (5.7)"},
	{FeatPoll32Bits, "IORING_FEAT_POLL_32BITS (5.9)"}, {FeatExtArg, "IORING_FEAT_EXT_ARG (5.11)"},
	{FeatNativeWorker, "IORING_FEAT_NATIVE_WORKERS (5.12)"}, {FeatRsrcTags, "IORING_FEAT_RSRC_TAGS (5.13)"},
	{FeatCQESkip, "IORING_FEAT_CQE_SKIP (5.17)"}, {FeatLinkedFile, "IORING_FEAT_LINKED_FILE (5.17)"},
	{FeatRegRegRing, "IORING_FEAT_REG_REG_RING (6.3)"}, {FeatRecvSendBundle, "IORING_FEAT_RECVSEND_BUNDLE (6.10)"},
	{FeatMinTimeout, "IORING_FEAT_MIN_TIMEOUT (6.12)"},
}

func featureNames(f uint32) string {
	var s []string
	for _, n := range featNames {
		if f&n.bit != 0 {
			s = append(s, n.name)
			f &^= n.bit
		}
	}
	if f != 0 {
		s = append(s, fmt.Sprintf("features %#x", f))
	}
	return strings.Join(s, ", ")
}

// OpName returns the kernel's name for an opcode, for messages.
func OpName(op uint8) string {
	if n, ok := opNames[op]; ok {
		return "IORING_OP_" + n
	}
	return fmt.Sprintf("opcode %d", op)
}

// mmap maps the rings: one mapping for both with FeatSingleMmap (5.4+), two without, and the
// SQE array. MAP_POPULATE: the rings are touched on every operation, so fault them in now.
func (r *Ring) mmap(p *params) error {
	sqSize := int(p.sqOff.array) + int(p.sqEntries)*4
	if p.flags&SetupNoSQArray != 0 {
		sqSize = int(p.sqOff.array) // no array: the kernel reports where it would start
	}
	cqSize := int(p.cqOff.cqes) + int(p.cqEntries)*int(unsafe.Sizeof(CQE{}))
	single := p.features&FeatSingleMmap != 0
	if single {
		sqSize = max(sqSize, cqSize)
	}
	var err error
	r.ringMem, err = unix.Mmap(r.fd, offSQRing, sqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("uring: mmap SQ ring: %w", err)
	}
	cq := r.ringMem
	if !single {
		r.cqMem, err = unix.Mmap(r.fd, offCQRing, cqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return fmt.Errorf("uring: mmap CQ ring: %w", err)
		}
		cq = r.cqMem
	}
	sqeSize := int(p.sqEntries) * int(unsafe.Sizeof(SQE{}))
	r.sqeMem, err = unix.Mmap(r.fd, offSQEs, sqeSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("uring: mmap SQEs: %w", err)
	}

	u32 := func(mem []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }
	r.sqHead = u32(r.ringMem, p.sqOff.head)
	r.sqTail = u32(r.ringMem, p.sqOff.tail)
	r.sqFlags = u32(r.ringMem, p.sqOff.flags)
	r.sqDropped = u32(r.ringMem, p.sqOff.dropped)
	r.sqMask = *u32(r.ringMem, p.sqOff.ringMask)
	r.sqEntries = *u32(r.ringMem, p.sqOff.ringEntries)
	r.sqes = unsafe.Slice((*SQE)(unsafe.Pointer(&r.sqeMem[0])), r.sqEntries)
	if p.flags&SetupNoSQArray == 0 {
		// The index array maps ring slots to SQEs. Ours is the identity, written once: slot
		// i always names SQE i, so NextSQE never touches the array again.
		arr := unsafe.Slice(u32(r.ringMem, p.sqOff.array), r.sqEntries)
		for i := range arr {
			arr[i] = uint32(i)
		}
	}
	r.cqHead = u32(cq, p.cqOff.head)
	r.cqTail = u32(cq, p.cqOff.tail)
	r.cqOverflow = u32(cq, p.cqOff.overflow)
	r.cqMask = *u32(cq, p.cqOff.ringMask)
	r.cqEntries = *u32(cq, p.cqOff.ringEntries)
	r.cqes = unsafe.Slice((*CQE)(unsafe.Pointer(&cq[p.cqOff.cqes])), r.cqEntries)
	r.sqeTail = atomic.LoadUint32(r.sqTail)
	r.sqePublished = r.sqeTail
	r.cqLocalHead = atomic.LoadUint32(r.cqHead)
	return nil
}

// loadProbe asks the kernel which opcodes it supports (IORING_REGISTER_PROBE, 5.6).
func (r *Ring) loadProbe() error {
	// struct io_uring_probe: 16-byte header, then 8 bytes per op {op, resv, flags u16, resv2 u32}.
	var buf [16 + 256*8]byte
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerProbe,
		uintptr(unsafe.Pointer(&buf[0])), 256, 0, 0)
	if errno != 0 {
		if errno == unix.EINVAL {
			return fmt.Errorf("%w: kernel %s has no IORING_REGISTER_PROBE (5.6)", ErrUnavailable, kernelRelease())
		}
		return fmt.Errorf("uring: register probe: %w", errno)
	}
	n := int(buf[1]) // ops_len
	for i := 0; i < n && i < 256; i++ {
		e := buf[16+8*i:]
		if flags := uint16(e[2]) | uint16(e[3])<<8; flags&1 != 0 { // IO_URING_OP_SUPPORTED
			r.probe[e[0]] = true
		}
	}
	return nil
}

// FD returns the ring's file descriptor.
func (r *Ring) FD() int { return r.fd }

// Features returns the FEAT_* bits the kernel reported.
func (r *Ring) Features() uint32 { return r.features }

// Flags returns the setup flags in effect (Config.Flags plus the optional ones granted).
func (r *Ring) Flags() uint32 { return r.flags }

// Supports reports whether the kernel supports opcode op.
func (r *Ring) Supports(op uint8) bool { return r.probe[op] }

// SQEntries and CQEntries return the queue sizes the kernel chose.
func (r *Ring) SQEntries() uint32 { return r.sqEntries }

// CQEntries returns the completion queue size.
func (r *Ring) CQEntries() uint32 { return r.cqEntries }

// NextSQE returns a zeroed SQE to fill, or nil when the submission queue is full (Submit,
// then ask again). The SQE goes to the kernel with the next Submit or SubmitAndWait.
func (r *Ring) NextSQE() *SQE {
	// Acquire: the kernel stores sqHead after it has read the SQEs before it.
	if r.sqeTail-atomic.LoadUint32(r.sqHead) >= r.sqEntries {
		return nil
	}
	sqe := &r.sqes[r.sqeTail&r.sqMask]
	*sqe = SQE{}
	r.sqeTail++
	return sqe
}

// Pending returns how many SQEs have been handed out and not yet consumed by the kernel.
func (r *Ring) Pending() uint32 { return r.sqeTail - atomic.LoadUint32(r.sqHead) }

// publish makes the SQEs filled since the last call visible to the kernel and returns how
// many SQEs the kernel has yet to consume. The store to sqTail is a release: every write to
// the SQEs above happens before the kernel can see the new tail.
func (r *Ring) publish() uint32 {
	if r.sqePublished != r.sqeTail {
		atomic.StoreUint32(r.sqTail, r.sqeTail)
		r.sqePublished = r.sqeTail
	}
	return r.sqeTail - atomic.LoadUint32(r.sqHead)
}

// Submit hands the filled SQEs to the kernel without waiting for completions, and returns
// how many it consumed. It does not block (io_uring_enter without GETEVENTS issues what it
// can at once and leaves the rest to complete later), so it is a raw system call, like the
// other non-blocking calls in this project. Errors: unix.Errno values, bare.
func (r *Ring) Submit() (int, error) {
	n := r.publish()
	if n == 0 {
		return 0, nil
	}
	return r.enter(n, 0, 0, false)
}

// SubmitAndWait hands the filled SQEs to the kernel and waits until at least minComplete
// completions are ready, or timeout passes (negative: no limit; zero: do not wait, only let
// the kernel flush pending completion work and overflowed completions). One system call.
//
// It returns how many SQEs the kernel consumed. When that is more than zero the kernel drops
// the wait's own error, so check the completion queue rather than the error. Errors, bare:
// unix.ETIME when the timeout passed, unix.EINTR when a signal interrupted the wait (the
// SQEs were submitted all the same), others from the kernel.
func (r *Ring) SubmitAndWait(minComplete uint32, timeout time.Duration) (int, error) {
	n := r.publish()
	if timeout == 0 {
		minComplete = 0
	}
	flags := uint32(EnterGetEvents)
	var argp unsafe.Pointer
	if timeout > 0 {
		r.ts = unix.NsecToTimespec(int64(timeout))
		r.arg = getEventsArg{ts: uint64(uintptr(unsafe.Pointer(&r.ts)))}
		argp = unsafe.Pointer(&r.arg)
		flags |= EnterExtArg
	}
	// A wait that may block goes through the scheduler (Syscall), so a GOMAXPROCS=1 process
	// keeps running its other goroutines; one that cannot block is raw, as Submit.
	return r.enterArg(n, minComplete, flags, argp, minComplete > 0)
}

func (r *Ring) enter(toSubmit, minComplete, flags uint32, block bool) (int, error) {
	return r.enterArg(toSubmit, minComplete, flags, nil, block)
}

func (r *Ring) enterArg(toSubmit, minComplete, flags uint32, argp unsafe.Pointer, block bool) (int, error) {
	flags |= r.enterFlags
	var argSize uintptr
	if argp != nil {
		argSize = unsafe.Sizeof(getEventsArg{})
	}
	var r1 uintptr
	var errno unix.Errno
	if block {
		r1, _, errno = unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.enterFD), uintptr(toSubmit),
			uintptr(minComplete), uintptr(flags), uintptr(argp), argSize)
	} else {
		r1, _, errno = unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.enterFD), uintptr(toSubmit),
			uintptr(minComplete), uintptr(flags), uintptr(argp), argSize)
	}
	if errno != 0 {
		return 0, errno
	}
	return int(r1), nil
}

// Ready returns how many completions are waiting in the completion queue. The load of the
// kernel's tail is an acquire: the CQEs before it are fully written.
func (r *Ring) Ready() uint32 { return atomic.LoadUint32(r.cqTail) - r.cqLocalHead }

// Peek returns the i-th waiting completion (0 is the oldest), with i < Ready(). The CQE is
// the kernel's memory: read it before Advance hands the slot back.
func (r *Ring) Peek(i uint32) *CQE { return &r.cqes[(r.cqLocalHead+i)&r.cqMask] }

// Advance marks the n oldest completions consumed, giving their slots back to the kernel.
// The store is a release: the reads of those CQEs happen before the kernel may reuse them.
func (r *Ring) Advance(n uint32) {
	if n == 0 {
		return
	}
	r.cqLocalHead += n
	atomic.StoreUint32(r.cqHead, r.cqLocalHead)
}

// Overflowed reports whether completions are waiting in the kernel's overflow list because
// the completion queue was full (FeatNoDrop keeps them): a SubmitAndWait flushes them.
func (r *Ring) Overflowed() bool { return atomic.LoadUint32(r.sqFlags)&SQCQOverflow != 0 }

// TaskrunPending reports whether completion work waits for a kernel entry (SetupTaskrunFlag).
func (r *Ring) TaskrunPending() bool { return atomic.LoadUint32(r.sqFlags)&SQTaskrun != 0 }

// Dropped returns the kernel's count of invalid SQEs it skipped.
func (r *Ring) Dropped() uint32 { return atomic.LoadUint32(r.sqDropped) }

// OverflowCount returns the kernel's count of completions lost to a full queue (only
// possible without FeatNoDrop, or when even the overflow list could not be allocated).
func (r *Ring) OverflowCount() uint32 { return atomic.LoadUint32(r.cqOverflow) }

// Close closes the ring and unmaps its memory. Closing the fd makes the kernel cancel every
// request still in flight (it finishes that in the background, dropping its references to
// the files involved); the mappings stay valid until munmap, so nothing the kernel still
// writes lands anywhere else. A second call is a no-op.
func (r *Ring) Close() error {
	if r.fd < 0 {
		return nil
	}
	if r.enterFlags&EnterRegisteredRing != 0 {
		// The thread's registration holds a reference to the ring: without this the ring
		// (and every request in it) would live as long as the thread.
		up := rsrcUpdate{offset: uint32(r.enterFD)}
		unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), unregisterRingFDs, uintptr(unsafe.Pointer(&up)), 1, 0, 0)
	}
	err := unix.Close(r.fd)
	r.fd, r.enterFD, r.enterFlags = -1, -1, 0
	for _, m := range []*[]byte{&r.sqeMem, &r.cqMem, &r.ringMem} {
		if *m != nil {
			unix.Munmap(*m)
			*m = nil
		}
	}
	r.sqes, r.cqes = nil, nil
	if err != nil {
		return fmt.Errorf("uring: close: %w", err)
	}
	return nil
}

// Enable starts a ring created with SetupRDisabled. With SetupSingleIssuer the calling thread
// becomes the ring's only submitter, so a ring can be set up (and its buffers registered) by
// one goroutine and then handed to the locked thread that will drive it, which calls Enable.
func (r *Ring) Enable() error {
	if err := r.register(registerEnable, nil, 0); err != nil {
		return fmt.Errorf("uring: enable ring: %w", err)
	}
	return nil
}

// RegisterRingFD registers the ring's fd with the calling thread (IORING_REGISTER_RING_FDS,
// 5.18), so that io_uring_enter looks the ring up by index instead of taking a reference to
// its file on every call. The registration belongs to the thread: call it from the locked
// thread that owns the ring, enter only from that thread afterwards, and Close from it too:
// the registration holds a reference to the ring, which Close drops. It reports whether the
// kernel took it; a kernel without the feature is not an error.
func (r *Ring) RegisterRingFD() bool {
	up := rsrcUpdate{offset: ^uint32(0), data: uint64(r.fd)} // offset -1: any free slot
	n, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerRingFDs,
		uintptr(unsafe.Pointer(&up)), 1, 0, 0)
	if errno != 0 || n != 1 {
		return false
	}
	r.enterFD, r.enterFlags = int(up.offset), EnterRegisteredRing
	return true
}

// register is io_uring_register.
func (r *Ring) register(op uintptr, arg unsafe.Pointer, n uintptr) error {
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), op, uintptr(arg), n, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// pow2 reports whether n is a power of two.
func pow2(n int) bool { return n > 0 && bits.OnesCount(uint(n)) == 1 }
