//go:build linux

package uring

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BufRing is a provided-buffer ring (IORING_REGISTER_PBUF_RING, 5.19): a group of equal-size
// buffers the kernel picks from when a receive with SQEBufferSelect completes, so memory is
// committed to a connection only when its data arrives, not while it idles. The completion
// names the buffer (CQE.BufferID); the caller reads it and hands it back with Recycle and
// Publish. Both the ring and the buffers are mmap'd: the kernel writes into them whenever
// data arrives.
//
// A BufRing belongs to its Ring's owner goroutine.
type BufRing struct {
	r       *Ring
	bgid    uint16
	ring    []byte // entries × struct io_uring_buf {addr u64, len u32, bid u16, resv u16}
	bufs    []byte
	size    int
	entries uint16
	mask    uint16
	tail    uint16 // local tail: entries added since the last Publish are after published
	avail   int    // buffers 0..avail-1 have been handed to the kernel (Provide)
}

const bufEntrySize = 16

// NewBufRing registers a group bgid of entries buffers of size bytes each, all available
// to the kernel at once. entries must be a power of two up to 32768.
func (r *Ring) NewBufRing(bgid uint16, entries, size int) (*BufRing, error) {
	return r.NewBufRingAvail(bgid, entries, size, entries)
}

// NewBufRingAvail is NewBufRing with only the first avail buffers (at least 1, at most
// entries) given to the kernel; Provide adds more. The buffers' memory is mapped but not
// touched, so buffers never provided cost no resident memory, and a group sized for bursts
// holds only what its traffic has needed so far.
func (r *Ring) NewBufRingAvail(bgid uint16, entries, size, avail int) (*BufRing, error) {
	if avail < 1 || avail > entries {
		return nil, fmt.Errorf("uring: buffer ring: %d of %d buffers available: want 1 to %d", avail, entries, entries)
	}
	if !pow2(entries) || entries > 32768 || size <= 0 || size > 1<<30 {
		return nil, fmt.Errorf("uring: buffer ring: %d entries of %d bytes: entries must be a power of two up to 32768", entries, size)
	}
	ring, err := unix.Mmap(-1, 0, entries*bufEntrySize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("uring: buffer ring: mmap: %w", err)
	}
	bufs, err := unix.Mmap(-1, 0, entries*size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		unix.Munmap(ring)
		return nil, fmt.Errorf("uring: buffer ring: mmap buffers: %w", err)
	}
	b := &BufRing{r: r, bgid: bgid, ring: ring, bufs: bufs, size: size, entries: uint16(entries), mask: uint16(entries - 1)}
	reg := bufReg{ringAddr: uint64(uintptr(unsafe.Pointer(&ring[0]))), ringEntries: uint32(entries), bgid: bgid}
	if err := r.register(registerPbufRing, unsafe.Pointer(&reg), 1); err != nil {
		unix.Munmap(ring)
		unix.Munmap(bufs)
		if err == unix.EINVAL {
			return nil, fmt.Errorf("%w: kernel %s has no provided-buffer rings (5.19): %v", ErrUnavailable, kernelRelease(), err)
		}
		return nil, fmt.Errorf("uring: register buffer ring %d: %w", bgid, err)
	}
	b.Provide(avail)
	return b, nil
}

// Provide gives the kernel buffers until n of the group's buffers (at most its entries) have
// been provided, and publishes them. Buffers already provided stay as they are (in the kernel,
// or with the caller until recycled). It returns the number provided.
func (b *BufRing) Provide(n int) int {
	n = min(n, int(b.entries))
	for ; b.avail < n; b.avail++ {
		b.Recycle(uint16(b.avail))
	}
	b.Publish()
	return b.avail
}

// Provided returns how many of the group's buffers have been given to the kernel (Provide).
func (b *BufRing) Provided() int { return b.avail }

// Group returns the buffer group id to put in SQE.BufIndex.
func (b *BufRing) Group() uint16 { return b.bgid }

// Size returns the size of each buffer.
func (b *BufRing) Size() int { return b.size }

// Buf returns buffer bid's first n bytes. They stay valid until the buffer is recycled.
func (b *BufRing) Buf(bid uint16, n int) []byte {
	off := int(bid) * b.size
	return b.bufs[off : off+n : off+b.size]
}

// Recycle gives buffer bid back to the kernel; it becomes available at the next Publish.
func (b *BufRing) Recycle(bid uint16) {
	e := b.ring[int(b.tail&b.mask)*bufEntrySize:]
	binary.NativeEndian.PutUint64(e[0:], uint64(uintptr(unsafe.Pointer(&b.bufs[int(bid)*b.size]))))
	binary.NativeEndian.PutUint32(e[8:], uint32(b.size))
	binary.NativeEndian.PutUint16(e[12:], bid)
	b.tail++
}

// Publish makes the recycled buffers visible to the kernel.
//
// The ring's tail is a 16-bit field overlaid on the last two bytes of entry 0 (its resv), and
// the kernel reads it with a load-acquire; Go has no 16-bit atomic store. So the tail is
// released with a 32-bit atomic store over entry 0's bid and the tail together, writing back
// the bid entry 0 already holds (only this goroutine writes entries, so that value is
// current). Every entry written by Recycle happens before the kernel can see the new tail.
func (b *BufRing) Publish() {
	var w [4]byte
	copy(w[:2], b.ring[12:14])
	binary.NativeEndian.PutUint16(w[2:], b.tail)
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&b.ring[12])), binary.NativeEndian.Uint32(w[:]))
}

// Close unregisters the group and unmaps its memory. Call it with no receive using the group
// in flight (or after the ring is closed).
func (b *BufRing) Close() error {
	var err error
	if b.r.fd >= 0 {
		reg := bufReg{bgid: b.bgid}
		err = b.r.register(unregisterPbufRng, unsafe.Pointer(&reg), 1)
	}
	unix.Munmap(b.ring)
	unix.Munmap(b.bufs)
	b.ring, b.bufs = nil, nil
	if err != nil {
		return fmt.Errorf("uring: unregister buffer ring %d: %w", b.bgid, err)
	}
	return nil
}
