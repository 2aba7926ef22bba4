package advring

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/verinic/verinic/dma"
)

// ring is a descriptor ring in DMA memory, shared with the device (the
// simulator's DMA goroutines, or real DMA). The driver writes a descriptor
// with plain stores (setDesc) while it owns it, publishes it with the tail
// register write, and reads the device's write-back only after an atomic
// load of DD. Two views of the same memory are kept: q64 for the 64-bit
// words a descriptor is written with, w32 for the 32-bit status words the
// device writes back.
type ring struct {
	region *dma.Region
	q64    []uint64 // 2 per descriptor
	w32    []uint32 // 4 per descriptor
	// d64 and d32 are the same memory a descriptor per element, for the
	// written-out loops (receivePlain, fillPlain): one bounds check per
	// descriptor instead of one per word.
	d64  [][2]uint64
	d32  [][4]uint32
	size uint32 // descriptors the device sees (RDLEN/TDLEN / 16)
	// last is the highest index the driver uses before wrapping to 0:
	// size-1, or size under bugWrapOffByOne.
	last uint32
	// span is last+1: the number of slots the driver cycles through.
	span uint32
}

// newRing allocates a ring of size descriptors, 128-byte aligned
// (82599 datasheet 8.2.3.8.1: RDBAL bits 6:0 are ignored; QEMU's 82576
// model masks bits 4:0, E1000_XDBAL_MASK), and fills it with 0xFF
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
	region, err := alloc.Alloc(slots*DescSize, 128)
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
		d64:    unsafe.Slice((*[2]uint64)(base), slots),
		d32:    unsafe.Slice((*[4]uint32)(base), slots),
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

// setDesc writes descriptor i's two 64-bit words with plain stores. The
// descriptor belongs to the driver while it writes (outside [head, tail),
// datasheet 7.1.9 and 7.2.3.3), and the device reads it only after the tail
// register write that hands it over, so that write is the one ordering
// point a batch of descriptors needs (datasheet 7.2.3.2.4 only asks that
// the descriptor be in memory before the tail covers it):
//
//   - The simulator (Go memory model, go.dev/ref/mem): Device.Write32 of a
//     tail is an atomic store (under the queue's mutex) that the DMA
//     engine's read of the tail observes, so the driver's plain stores,
//     sequenced before it, happen before the engine's loads of the
//     descriptor: no data race, and under -race (DMA memory on the Go heap,
//     dma.GoHeap) the race detector checks exactly this edge.
//   - The Go compiler does not move these stores past the tail write: it is
//     a call through the Device interface (an assembly MOV on VFIO amd64),
//     which the compiler treats as reading and writing all memory.
//   - amd64 (TSO, Intel SDM vol. 3 8.2.2): stores are not reordered with
//     older stores, and a store to uncached MMIO leaves the store buffer
//     after the earlier write-back stores to the ring; Linux's writel and
//     ixy use no fence here either.
//   - arm64: vfio's mmioStore32 is atomic.StoreUint32 there, a store-release
//     (STLR): every load and store before it in program order is observed
//     before it by every observer (the ARMv8 model's barrier-ordered-before),
//     which gives what Linux gets from the dmb oshst in writel; see
//     docs/NOTES.md (argued from memory of the ARM ARM, not tested on arm64).
//
// The DD loads stay atomic (acquire): a write-back read after DD was set is
// then complete. In a build with the ixgbebugs tag the stores stay atomic,
// because the deliberate bugs (a tail written before the descriptors, a
// refilled slot the device owns) race with the device on purpose and are
// to be caught by the checkers, not reported by the race detector.
func (r *ring) setDesc(i uint32, lo, hi uint64) {
	if bugsEnabled {
		atomic.StoreUint64(&r.q64[2*i], lo)
		atomic.StoreUint64(&r.q64[2*i+1], hi)
		return
	}
	r.q64[2*i] = lo
	r.q64[2*i+1] = hi
}

// free releases the ring's memory (once; later calls do nothing).
func (r *ring) free() error {
	if r.region == nil {
		return nil
	}
	err := r.region.Free()
	r.region = nil
	return err
}

// program writes the ring's base address and length, and head and tail 0,
// to the queue's registers (82599 datasheet 7.1.9, 8.2.3.8.1-5 and
// 8.2.3.9.5-9; 82576 datasheet 8.10).
func (r *ring) program(dev Device, bal, bah, length, head, tail uint32) {
	iova := r.region.IOVA()
	dev.Write32(bal, uint32(iova))
	dev.Write32(bah, uint32(iova>>32))
	dev.Write32(length, r.size*DescSize)
	dev.Write32(head, 0)
	dev.Write32(tail, 0)
}

// desc returns descriptor i's two 64-bit words (atomic loads: the device
// may be writing them).
func (r *ring) desc(i uint32) (lo, hi uint64) {
	return atomic.LoadUint64(&r.q64[2*i]), atomic.LoadUint64(&r.q64[2*i+1])
}
