//go:build linux

package poller

import (
	"math/bits"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func init() {
	// openCheck: a closed fd in a set fails the whole select call with EBADF.
	register(Backend{Name: "select", open: openSelect, openCheck: true}, 3)
}

// wordBits is the size of the kernel's fd_set word (a C unsigned long), which is Go's uint on
// every Linux port.
const wordBits = bits.UintSize

// selectPoller is the oldest interface, kept for comparison and for odd kernels.
//
// FD_SETSIZE: glibc's fd_set (and unix.FdSet) holds 1,024 bits, and FD_SET on a higher fd
// writes past the end of it. The Linux kernel has no such limit: select reads and writes
// ceil(nfds/wordBits) words, for any nfds up to the size of the process's fd table. So, as
// libevent does on Linux, the sets here are plain []uint slices grown to cover the highest
// watched fd, and passed to the raw pselect6 syscall by pointer to their first word. Every
// index is computed from an fd that is known to be below len(set)*wordBits.
//
// pselect6 rather than select: it exists on every Linux port (arm64 and riscv64 have no
// select), and takes a timespec, so the timeout needs no rounding.
type selectOps struct {
	wfd    int
	rd, wr []uint // master sets: the interest, edited by add/modify/remove
	rw, ww []uint // working sets: copied from the masters before each call, which the kernel overwrites with results
	// maxfd is the highest fd with a bit in a master set (at least wfd): the kernel scans
	// words up to it. An fd registered with an interest of 0 has no bit and is not counted.
	maxfd int
	next  int // fd where the next scan starts, so a short out slice starves no fd
	ts    unix.Timespec
}

func openSelect() (ops, kernelWaker, error) {
	k, wfd, err := newPollWaker()
	if err != nil {
		return nil, nil, err
	}
	p := &selectOps{wfd: wfd, maxfd: wfd}
	p.grow(wfd)
	setBit(p.rd, wfd)
	return p, k, nil
}

func setBit(s []uint, fd int)     { s[fd/wordBits] |= 1 << (fd % wordBits) }
func clearBit(s []uint, fd int)   { s[fd/wordBits] &^= 1 << (fd % wordBits) }
func isSet(s []uint, fd int) bool { return s[fd/wordBits]&(1<<(fd%wordBits)) != 0 }
func wordsFor(maxfd int) int      { return maxfd/wordBits + 1 }
func (p *selectOps) words() int   { return wordsFor(p.maxfd) }

// grow makes every set long enough to hold fd.
func (p *selectOps) grow(fd int) {
	n := wordsFor(fd)
	if n <= len(p.rd) {
		return
	}
	n = max(n, 2*len(p.rd))
	for _, s := range []*[]uint{&p.rd, &p.wr, &p.rw, &p.ww} {
		ns := make([]uint, n)
		copy(ns, *s)
		*s = ns
	}
}

// setInterest writes fd's interest into the master sets and keeps maxfd the highest fd
// with a bit set: shrinking it when its fd goes quiet stops the kernel scanning words nobody
// watches.
func (p *selectOps) setInterest(fd int, in Events) {
	p.grow(fd)
	clearBit(p.rd, fd)
	clearBit(p.wr, fd)
	if in&Readable != 0 {
		setBit(p.rd, fd)
	}
	if in&Writable != 0 {
		setBit(p.wr, fd)
	}
	switch {
	case in&(Readable|Writable) != 0:
		p.maxfd = max(p.maxfd, fd)
	case fd == p.maxfd:
		p.maxfd = p.wfd
		for f := fd - 1; f > p.wfd; f-- {
			if isSet(p.rd, f) || isSet(p.wr, f) {
				p.maxfd = f
				break
			}
		}
	}
}

func (p *selectOps) add(fd int, in Events) error       { p.setInterest(fd, in); return nil }
func (p *selectOps) modify(fd int, _, in Events) error { p.setInterest(fd, in); return nil }
func (p *selectOps) remove(fd int, _ Events) error     { p.setInterest(fd, 0); return nil }
func (p *selectOps) owns(fd int) bool                  { return fd == p.wfd }
func (p *selectOps) close() error                      { return nil } // the waker is front's

// wait is one pselect6. It does not allocate.
//
// Hangup is never reported: select has no such bit. A closed peer shows as Readable and the
// read returns EOF; a pending socket error shows as Readable and Writable and the read or
// write returns it.
func (p *selectOps) wait(out []Event, d time.Duration) (int, bool, error) {
	nw := p.words()
	copy(p.rw[:nw], p.rd[:nw])
	copy(p.ww[:nw], p.wr[:nw])
	var tsp uintptr // nil: block
	if d >= 0 {
		p.ts = unix.NsecToTimespec(int64(d))
		tsp = uintptr(unsafe.Pointer(&p.ts))
	}
	// The sets and ts live in p, on the heap, which the Go GC never moves; p is live across
	// the call. The 6th argument (signal mask) is nil: plain select semantics.
	r, _, errno := unix.Syscall6(unix.SYS_PSELECT6, uintptr(p.maxfd+1),
		uintptr(unsafe.Pointer(&p.rw[0])), uintptr(unsafe.Pointer(&p.ww[0])), 0, tsp, 0)
	if errno != 0 {
		if errno == unix.EBADF {
			// A watched fd was closed without Remove. Report every such fd as Error (as
			// poll's POLLNVAL does) instead of failing every Wait from now on.
			if n := p.badFDs(out); n > 0 {
				return n, false, nil
			}
		}
		return 0, false, errno
	}
	woke := isSet(p.rw, p.wfd)
	if woke {
		clearBit(p.rw, p.wfd)
	}
	n := 0
	if r > 0 && (r > 1 || !woke) {
		n = p.collect(out, nw)
	}
	return n, woke, nil
}

// collect turns the result sets into events, one per fd (read and write bits merged),
// starting at fd p.next and wrapping around, word by word. The first word is visited twice:
// first its bits from p.next up, at the end its bits below p.next.
func (p *selectOps) collect(out []Event, nw int) int {
	if p.next >= nw*wordBits {
		p.next = 0
	}
	sw, sb := p.next/wordBits, uint(p.next%wordBits)
	n := 0
	for j := 0; j <= nw; j++ {
		i := (sw + j) % nw
		w := p.rw[i] | p.ww[i]
		switch j {
		case 0:
			w &= ^uint(0) << sb
		case nw:
			w &= 1<<sb - 1
		}
		for w != 0 {
			b := bits.TrailingZeros(w)
			w &= w - 1
			fd := i*wordBits + b
			if n == len(out) {
				p.next = fd
				return n
			}
			var ev Events
			if isSet(p.rw, fd) {
				ev |= Readable
			}
			if isSet(p.ww, fd) {
				ev |= Writable
			}
			out[n] = Event{FD: fd, Events: ev}
			n++
		}
	}
	return n
}

// badFDs fills out with the watched fds that are no longer open, as Error events. Only fds
// with a bit in a master set can fail select, so only those are checked.
func (p *selectOps) badFDs(out []Event) int {
	n := 0
	for fd := 0; fd <= p.maxfd && n < len(out); fd++ {
		if fd != p.wfd && (isSet(p.rd, fd) || isSet(p.wr, fd)) && checkOpen(fd) != nil {
			out[n] = Event{FD: fd, Events: Error}
			n++
		}
	}
	return n
}
