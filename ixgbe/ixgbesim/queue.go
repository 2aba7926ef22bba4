package ixgbesim

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/regs"
	"github.com/verinic/verinic/trace"
)

// queueBase is what the model's receive and transmit queues share: which
// queue, the lock that orders engine steps with register writes and
// enable/disable, the enable state, and the ring with its ownership check.
type queueBase struct {
	n   *NIC
	idx int
	dir uint8 // trace.RX or trace.TX

	mu       sync.Mutex // engine step, tail write, enable/disable
	enabled  atomic.Bool
	halted   bool // stopped by an IOMMU fault until re-enabled
	ring     ring
	owner    ownerCheck
	lastTail uint32 // last tail value the engine read (for DevTailRead)
	tailSeen bool
	// Translation caches of the queue's DMA accesses (under mu): one for
	// its descriptor ring, one for the buffers it reads or writes.
	descTC, dataTC dma.TranslateCache
}

// headReg returns the offset and name of the queue's head register.
func (q *queueBase) headReg() (uint32, string) {
	if q.dir == trace.RX {
		return regs.RDH(q.idx), "RDH"
	}
	return regs.TDH(q.idx), "TDH"
}

// ringRegs returns the queue's ring registers: base address, length in
// bytes, head and tail (datasheet 8.2.3.8 for RX, 8.2.3.9 for TX).
func (q *queueBase) ringRegs() (base uint64, length, head, tail uint32) {
	n := q.n
	if q.dir == trace.RX {
		base = uint64(n.reg(regs.RDBAH(q.idx)))<<32 | uint64(n.reg(regs.RDBAL(q.idx)))
		return base, n.reg(regs.RDLEN(q.idx)), n.reg(regs.RDH(q.idx)), n.reg(regs.RDT(q.idx))
	}
	base = uint64(n.reg(regs.TDBAH(q.idx)))<<32 | uint64(n.reg(regs.TDBAL(q.idx)))
	return base, n.reg(regs.TDLEN(q.idx)), n.reg(regs.TDH(q.idx)), n.reg(regs.TDT(q.idx))
}

// setupRing, with the queue's lock held, checks the ring registers and
// points the queue's ring and ownership check at them. A bad configuration
// is recorded as a violation and the queue stays off (ok false).
func (q *queueBase) setupRing() (head, tail uint32, ok bool) {
	base, length, head, tail := q.ringRegs()
	if err := checkRing(length, head, tail); err != nil {
		q.n.violate(Violation{Kind: BadRingConfig, Dir: q.dir, Queue: q.idx, Detail: err.Error()})
		return 0, 0, false
	}
	q.ring.setup(base, length/regs.DescSize)
	q.ring.scheduled(q.n.sched.on)
	q.owner = ownerCheck{n: q.n, dir: q.dir, q: q.idx, r: &q.ring, tc: &q.descTC}
	return head, tail, true
}

// run, with the queue's lock held, hands the descriptors between head and
// tail to the device and marks the queue enabled.
func (q *queueBase) run(head, tail uint32) {
	q.halted = false
	q.tailSeen = false
	q.owner.take(head, tail)
	q.enabled.Store(true)
}

// writeHead is a write to RDH or TDH (cell c). Software may set the head
// only while the queue is disabled (datasheet 8.2.3.8 and 8.2.3.9, RDH and TDH); a
// write that would move it while the queue runs is ignored and recorded as
// a violation.
func (q *queueBase) writeHead(c *atomic.Uint32, v uint32) {
	q.mu.Lock()
	defer q.mu.Unlock()
	v &= 0xFFFF
	if q.enabled.Load() {
		if v != c.Load() {
			_, name := q.headReg()
			q.n.violate(Violation{Kind: HeadWrite, Dir: q.dir, Queue: q.idx, Index: v,
				Detail: fmt.Sprintf("%s written with %d while the queue is enabled at head %d (ignored)", name, v, c.Load())})
		}
		return
	}
	c.Store(v)
}

// moveTailLocked checks a write of v to the tail register (cell c) with the
// queue's lock held: while the queue is disabled or halted any value is
// taken; while it runs, the ownership check decides (a tail moved backwards
// over owned slots or out of the ring is a violation and ignored). It
// returns the head, the old tail and whether the write takes effect; the
// caller stores it.
func (q *queueBase) moveTailLocked(c *atomic.Uint32, v uint32) (head, old uint32, ok bool) {
	v &= 0xFFFF
	if q.n.tr != nil {
		q.traceTailWrite(v) // the doorbell, as the device sees it (truth.go)
	}
	old = c.Load()
	if !q.enabled.Load() || q.halted {
		return 0, old, true
	}
	reg, _ := q.headReg()
	head = q.n.reg(reg)
	return head, old, q.owner.moveTail(head, old, v)
}
