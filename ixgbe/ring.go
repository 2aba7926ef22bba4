package ixgbe

import (
	"fmt"
	"unsafe"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/regs"
)

// ring is a descriptor ring in DMA memory, shared with the device. The
// driver accesses descriptor words only with sync/atomic: the device (the
// simulator's DMA goroutines, or real DMA) reads and writes them
// concurrently. Two views of the same memory are kept: q64 for the 64-bit
// words a descriptor is written with, w32 for the 32-bit status words the
// device writes back.
type ring struct {
	region *dma.Region
	q64    []uint64 // 2 per descriptor
	w32    []uint32 // 4 per descriptor
	size   uint32   // descriptors the device sees (RDLEN/TDLEN / 16)
	// last is the highest index the driver uses before wrapping to 0:
	// size-1, or size under bugWrapOffByOne.
	last uint32
	// span is last+1: the number of slots the driver cycles through.
	span uint32
}

// newRing allocates a ring of size descriptors, 128-byte aligned
// (datasheet 8.2.3.8.1: RDBAL bits 6:0 are ignored), and fills it with 0xFF
// as ixy does, so that a descriptor the driver forgot to initialize is
// obviously invalid rather than a plausible zero.
func newRing(alloc *dma.Allocator, size int, bugs bug) (ring, error) {
	slots := size
	last := uint32(size - 1)
	if bugs.has(bugWrapOffByOne) {
		// The bug makes the driver touch descriptor index size; give it
		// memory there so that the fault is a protocol error the checkers
		// see, not a wild write.
		slots++
		last = uint32(size)
	}
	region, err := alloc.Alloc(slots*regs.DescSize, 128)
	if err != nil {
		return ring{}, fmt.Errorf("descriptor ring of %d entries: %w", size, err)
	}
	mem := region.Bytes()
	for i := range mem {
		mem[i] = 0xFF
	}
	base := unsafe.Pointer(unsafe.SliceData(mem))
	return ring{
		region: region,
		q64:    unsafe.Slice((*uint64)(base), slots*2),
		w32:    unsafe.Slice((*uint32)(base), slots*4),
		size:   uint32(size),
		last:   last,
		span:   last + 1,
	}, nil
}

// next returns the index after i.
func (r *ring) next(i uint32) uint32 {
	if i == r.last {
		return 0
	}
	return i + 1
}

// prev returns the index before i.
func (r *ring) prev(i uint32) uint32 {
	if i == 0 {
		return r.last
	}
	return i - 1
}

// dist returns how many steps of next lead from a to b.
func (r *ring) dist(a, b uint32) uint32 {
	if b >= a {
		return b - a
	}
	return r.span - a + b
}

// add returns the index k steps after i.
func (r *ring) add(i, k uint32) uint32 {
	j := i + k
	if j >= r.span {
		j -= r.span
	}
	return j
}
