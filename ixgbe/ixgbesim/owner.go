package ixgbesim

import (
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/regs"
	"github.com/verinic/verinic/trace"
)

// ViolationKind says how the driver broke the ring protocol (datasheet
// 7.1.9 and 7.2.3.3: software owns descriptors outside [head, tail), the
// device owns those inside), or misprogrammed a queue.
type ViolationKind int

const (
	// RewroteOwned: a descriptor the device owned no longer matched what
	// it held when the tail handed it over, when the device fetched it.
	RewroteOwned ViolationKind = iota + 1
	// DoublePost: one buffer IOVA was in two device-owned descriptors at
	// once.
	DoublePost
	// TailBackwards: the tail moved back over descriptors the device
	// owned, taking them away.
	TailBackwards
	// TailOutOfRange: the tail was set past the end of the ring (the write
	// is ignored).
	TailOutOfRange
	// HeadWrite: the driver wrote a different head value while the queue
	// was enabled (8.2.3.8.5, 8.2.3.9.8: only while disabled; ignored).
	HeadWrite
	// BadDescriptor: a transmit descriptor the device cannot process
	// (7.2.3.2): unknown type, zero length, a frame larger than the
	// maximum, offloads without a loaded context or with impossible
	// lengths. It is skipped, its frame discarded.
	BadDescriptor
	// BadRingConfig: a queue was enabled with an invalid ring (length zero
	// or not a multiple of 128 bytes, head or tail outside the ring); the
	// queue stays disabled.
	BadRingConfig
	// ConfigMismatch: registers that must agree do not, e.g.
	// HLREG0.RXCRCSTRP and RDRXCTL.CRCSTRIP (8.2.3.8.8) when an RX queue is
	// enabled. The device follows HLREG0.
	ConfigMismatch
	// Unmodelled: the driver enabled a feature the model does not
	// implement (RSC, LinkSec, IPsec, FCoE, IEEE 1588 time stamps, SCTP
	// checksums, ...); the detail names it. A transmit packet that asks
	// for one is discarded; a register setting takes effect in the
	// register only.
	Unmodelled
	// IOMMUFault: a device access the IOMMU refused. It is only the rule
	// code of a dev_violation trace event (truth.go); the fault itself is
	// in NIC.Faults, not in NIC.Violations.
	IOMMUFault
)

var violationNames = [...]string{
	RewroteOwned:   "rewrote-owned-descriptor",
	DoublePost:     "double-post",
	TailBackwards:  "tail-backwards",
	TailOutOfRange: "tail-out-of-range",
	HeadWrite:      "head-write-while-enabled",
	BadDescriptor:  "bad-descriptor",
	BadRingConfig:  "bad-ring-config",
	ConfigMismatch: "config-mismatch",
	Unmodelled:     "unmodelled-feature",
	IOMMUFault:     "iommu-fault",
}

// String names the kind.
func (k ViolationKind) String() string {
	if k > 0 && int(k) < len(violationNames) {
		return violationNames[k]
	}
	return fmt.Sprintf("violation(%d)", int(k))
}

// Violation is one breach of the ownership protocol, or a misprogrammed
// queue, seen by the device.
type Violation struct {
	Kind   ViolationKind
	Dir    uint8  // trace.RX or trace.TX
	Queue  int    // queue number
	Index  uint32 // descriptor index (or the tail value written)
	Buf    uint64 // buffer IOVA involved, if any
	Detail string
	Time   time.Time
}

func (v Violation) String() string {
	dir := "rx"
	if v.Dir == trace.TX {
		dir = "tx"
	}
	if v.Buf != 0 {
		return fmt.Sprintf("%s %s queue %d descriptor %d buffer %#x: %s", v.Kind, dir, v.Queue, v.Index, v.Buf, v.Detail)
	}
	return fmt.Sprintf("%s %s queue %d descriptor %d: %s", v.Kind, dir, v.Queue, v.Index, v.Detail)
}

const maxViolations = 4096

func (n *NIC) violate(v Violation) {
	v.Time = n.now()
	n.traceViolation(&v)
	n.vmu.Lock()
	defer n.vmu.Unlock()
	if len(n.violations) >= maxViolations {
		n.vdropped++
		return
	}
	n.violations = append(n.violations, v)
}

// Violations returns the ownership violations and misprogramming the
// device has seen, in order.
func (n *NIC) Violations() []Violation {
	n.vmu.Lock()
	defer n.vmu.Unlock()
	return append([]Violation(nil), n.violations...)
}

// ViolationCount returns how many violations occurred, including any not
// kept.
func (n *NIC) ViolationCount() int {
	n.vmu.Lock()
	defer n.vmu.Unlock()
	return len(n.violations) + n.vdropped
}

// ---- descriptor memory access ----

// Descriptor words are loaded and stored with sync/atomic on their 32-bit
// words: the driver polls DD with atomic loads, and the DD store is the
// release that publishes the rest of the write-back. The layout is
// little-endian like the device's, which is also the host's order on the
// platforms Go's unsafe DMA use supports here (amd64, arm64).

func word(b []byte, off int) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }

func load32(b []byte, off int) uint32 { return atomic.LoadUint32(word(b, off)) }

// store32 is the device's publishing store of a descriptor word (DD): a
// release store (storeRelease32).
func store32(b []byte, off int, v uint32) { storeRelease32(word(b, off), v) }

// storePlain32 is a plain store of a write-back word that the atomic store
// of the status word (DD) publishes afterwards: the driver reads it only
// after its atomic load saw DD, so it needs no ordering of its own (and an
// atomic store is a locked XCHG on amd64).
func storePlain32(b []byte, off int, v uint32) { *word(b, off) = v }
func load64(b []byte, off int) uint64 {
	return uint64(load32(b, off)) | uint64(load32(b, off+4))<<32
}

// loadDesc loads a descriptor's two 64-bit words (atomic loads: the
// device reads what the driver published; descriptors are 16-byte
// aligned, 7.1.9).
func loadDesc(d []byte) (lo, hi uint64) {
	_ = d[15]
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&d[0]))), atomic.LoadUint64((*uint64)(unsafe.Pointer(&d[8])))
}

// nextIndex returns the descriptor index after i.
func (r *ring) nextIndex(i uint32) uint32 {
	if i++; i == r.size {
		return 0
	}
	return i
}

// ---- ownership tracking ----

// ring is a queue's descriptor ring as the device sees it, with the
// ownership checker's snapshot of every descriptor the device owns.
type ring struct {
	base uint64 // IOVA of descriptor 0
	size uint32 // descriptors

	snap    []byte   // size*16: contents when handed to the device
	owned   []bool   // snap[i] is valid: i is device-owned and was readable
	slotBuf []uint64 // buffer IOVA of owned descriptor i (if hasBuf)
	hasBuf  []bool
	bufs    iovaSet // buffers currently in device-owned descriptors
	// cached[i]: the device fetched descriptor i at the doorbell and
	// processes snap[i] (Schedule.FetchAtDoorbell); nil without a schedule
	// that may do so.
	cached []bool
}

func (r *ring) setup(base uint64, size uint32) {
	r.base, r.size = base, size
	if cap(r.owned) >= int(size) {
		r.snap = r.snap[:size*regs.DescSize]
		r.owned = r.owned[:size]
		r.slotBuf = r.slotBuf[:size]
		r.hasBuf = r.hasBuf[:size]
		clear(r.owned)
		clear(r.hasBuf)
	} else {
		r.snap = make([]byte, size*regs.DescSize)
		r.owned = make([]bool, size)
		r.slotBuf = make([]uint64, size)
		r.hasBuf = make([]bool, size)
	}
	r.bufs.init(int(size))
}

func (r *ring) reset() {
	clear(r.cached)
	clear(r.owned)
	clear(r.hasBuf)
	r.bufs.clear()
}

// ownerCheck is the per-direction part of the checker: how to find the
// buffer a descriptor posts.
type ownerCheck struct {
	n   *NIC
	dir uint8
	q   int
	r   *ring
	tc  *dma.TranslateCache // the queue's descriptor translation cache
}

// take snapshots descriptors [from, to) as they become device-owned, and
// checks that no buffer is posted twice.
func (c *ownerCheck) take(from, to uint32) {
	r := c.r
	fetch := r.cached != nil && c.n.sched.fetchAtDoorbell()
	for i := from; i != to; i = r.nextIndex(i) {
		d, ok := c.n.domain.space.TranslateCached(c.tc, r.base+uint64(i)*regs.DescSize, regs.DescSize)
		if !ok {
			// Not readable now; the device's fetch will fault.
			r.owned[i] = false
			continue
		}
		s := r.snap[i*regs.DescSize : (i+1)*regs.DescSize]
		lo, hi := loadDesc(d)
		*(*uint64)(unsafe.Pointer(&s[0])) = lo
		*(*uint64)(unsafe.Pointer(&s[8])) = hi
		r.owned[i] = true
		r.hasBuf[i] = false
		if r.cached != nil {
			r.cached[i] = fetch
		}
		if c.n.tr != nil {
			c.traceDescAtTail(i, s)
		}
		var buf uint64
		if c.dir == trace.RX {
			buf, ok = rxBufOfWords(lo)
		} else {
			buf, ok = txBufOfWords(lo, hi)
		}
		if ok {
			if r.bufs.add(buf) > 0 {
				c.n.violate(Violation{Kind: DoublePost, Dir: c.dir, Queue: c.q, Index: i, Buf: buf,
					Detail: fmt.Sprintf("buffer %#x posted in descriptor %d while another device-owned descriptor holds it", buf, i)})
			}
			r.slotBuf[i], r.hasBuf[i] = buf, true
		}
	}
}

// release forgets descriptors [from, to) (taken back by a backwards tail).
func (c *ownerCheck) release(from, to uint32) {
	r := c.r
	for i := from; i != to; i = r.nextIndex(i) {
		c.forget(i)
	}
}

func (c *ownerCheck) forget(i uint32) {
	r := c.r
	if r.hasBuf[i] {
		r.bufs.remove(r.slotBuf[i])
		r.hasBuf[i] = false
	}
	r.owned[i] = false
	if r.cached != nil {
		r.cached[i] = false
	}
}

// fetched checks descriptor i against its snapshot as the device fetches
// it (d is its current memory), then ends its tracking.
func (c *ownerCheck) fetched(i uint32, d []byte) {
	r := c.r
	if !r.owned[i] {
		return
	}
	s := r.snap[i*regs.DescSize : (i+1)*regs.DescSize]
	if lo, hi := loadDesc(d); lo != *(*uint64)(unsafe.Pointer(&s[0])) || hi != *(*uint64)(unsafe.Pointer(&s[8])) {
		c.n.violate(Violation{Kind: RewroteOwned, Dir: c.dir, Queue: c.q, Index: i,
			Buf:    lo,
			Detail: fmt.Sprintf("descriptor changed while the device owned it: handed over %#016x %#016x, fetched %#016x %#016x", le64(s[0:]), le64(s[8:]), lo, hi)})
	}
	c.forget(i)
}

func le64(b []byte) uint64 {
	return uint64(*(*uint32)(unsafe.Pointer(&b[0]))) | uint64(*(*uint32)(unsafe.Pointer(&b[4])))<<32
}

// moveTail handles a tail write while the queue runs: head is the
// device's head, old the current tail, v the new one. It returns whether
// the write takes effect.
func (c *ownerCheck) moveTail(head, old, v uint32) bool {
	size := c.r.size
	if v >= size {
		c.n.violate(Violation{Kind: TailOutOfRange, Dir: c.dir, Queue: c.q, Index: v,
			Detail: fmt.Sprintf("tail %d written to a ring of %d descriptors (ignored)", v, size)})
		return false
	}
	ownedOld := (old + size - head) % size
	ownedNew := (v + size - head) % size
	switch {
	case ownedNew > ownedOld:
		c.take(old, v)
	case ownedNew < ownedOld:
		c.n.violate(Violation{Kind: TailBackwards, Dir: c.dir, Queue: c.q, Index: v,
			Detail: fmt.Sprintf("tail moved from %d back to %d with the head at %d: took back %d descriptors the device owned", old, v, head, ownedOld-ownedNew)})
		c.release(v, old)
	}
	return true
}

// ---- a small allocation-free multiset of IOVAs ----

// iovaSet counts IOVAs with open addressing; it never holds more distinct
// keys than the ring has descriptors, so its table (twice that, rounded up
// to a power of two) never fills.
type iovaSet struct {
	keys   []uint64
	counts []uint32
	mask   uint64
}

func (s *iovaSet) init(n int) {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	if cap(s.keys) >= size {
		s.keys, s.counts = s.keys[:size], s.counts[:size]
		clear(s.counts)
	} else {
		s.keys, s.counts = make([]uint64, size), make([]uint32, size)
	}
	s.mask = uint64(size - 1)
}

func (s *iovaSet) clear() { clear(s.counts) }

func (s *iovaSet) slot(k uint64) uint64 { return (k * 0x9E3779B97F4A7C15 >> 20) & s.mask }

// add inserts k and returns how many times it was present before.
func (s *iovaSet) add(k uint64) uint32 {
	for i := s.slot(k); ; i = (i + 1) & s.mask {
		if s.counts[i] == 0 {
			s.keys[i], s.counts[i] = k, 1
			return 0
		}
		if s.keys[i] == k {
			s.counts[i]++
			return s.counts[i] - 1
		}
	}
}

// remove takes one k out (no-op when absent), shifting later entries of the
// probe run back so that lookups never need tombstones.
func (s *iovaSet) remove(k uint64) {
	i := s.slot(k)
	for ; ; i = (i + 1) & s.mask {
		if s.counts[i] == 0 {
			return
		}
		if s.keys[i] == k {
			break
		}
	}
	if s.counts[i] > 1 {
		s.counts[i]--
		return
	}
	s.counts[i] = 0
	// Backward-shift deletion.
	j := i
	for {
		j = (j + 1) & s.mask
		if s.counts[j] == 0 {
			return
		}
		home := s.slot(s.keys[j])
		// Move j into the hole at i if its home is not in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			s.keys[i], s.counts[i] = s.keys[j], s.counts[j]
			s.counts[j] = 0
			i = j
		}
	}
}

// has reports how many times k is present.
func (s *iovaSet) has(k uint64) uint32 {
	for i := s.slot(k); ; i = (i + 1) & s.mask {
		if s.counts[i] == 0 {
			return 0
		}
		if s.keys[i] == k {
			return s.counts[i]
		}
	}
}
