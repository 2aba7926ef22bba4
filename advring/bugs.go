package advring

import (
	"sync/atomic"

	"github.com/verinic/verinic/trace"
)

// bug is a deliberate protocol error the driver can be told to make, so that
// the verification tests (models/, tla/, porcupine, nicctl demo) can show
// that they catch it: the driver mutation suite (tla/README.md, "Driver
// mutation suite"). Each bug is a single, named deviation from the ring
// protocol of datasheet 7.1 and 7.2 or from the driver's buffer discipline.
// Bugs can be switched on only in a build with the ixgbebugs tag
// (bugs_on.go: advring.Bug, advring.WithBugs, re-exported as ixgbe.Bug and
// ixgbe.WithBugs); in any other build bugsEnabled is
// false, has is constant false and the compiler drops the buggy paths, so
// production binaries carry neither the switches nor the code.
type bug uint32

const (
	// bugReclaimWithoutDD: TX cleaning frees buffers without checking DD,
	// so a buffer can return to the pool while the device still reads it.
	bugReclaimWithoutDD bug = 1 << iota
	// bugTailBeforeDescriptor: TxBatch writes TDT before it fills the
	// descriptors it publishes.
	bugTailBeforeDescriptor
	// bugDoublePost: TxBatch posts the first buffer of a batch twice.
	bugDoublePost
	// bugWrapOffByOne: ring index wrap-around uses N instead of N-1 as the
	// last index (the index reaches N before wrapping).
	bugWrapOffByOne
	// bugRefillOwnedSlot: RxBatch refills one descriptor past the last one
	// it processed, a slot the device still owns.
	bugRefillOwnedSlot
	// bugLenBeforeDD: RxBatch loads the length word (dword 3) before the
	// status word whose DD says the write-back is complete (datasheet
	// 7.1.6.2), so it may hand up a stale length.
	bugLenBeforeDD
	// bugLenMinusFCS: RxBatch takes 4 bytes of CRC off the written-back
	// length although the device strips the CRC already (HLREG0.RXCRCSTRP,
	// datasheet 8.2.3.22.8): the wrong length goes up.
	bugLenMinusFCS
	// bugRxAddrNoHeadroom: RX descriptors get the address of the buffer's
	// start, not of its data room after the headroom, while the frame is
	// handed up at the headroom offset (a consistently wrong address).
	bugRxAddrNoHeadroom
	// bugRefillHandedUp: RxBatch refills a descriptor with the buffer it
	// has just handed up (instead of a fresh one), so the application and
	// the device own it at once; forwarded to a TX ring, one buffer is in
	// two rings of the device.
	bugRefillHandedUp
	// bugRxTailEqualsHead: RxBatch writes RDT = the next descriptor to
	// check, not the last one refilled: when the device has caught up,
	// RDT = RDH, which says "no descriptors" (datasheet 7.1.9).
	bugRxTailEqualsHead
	// bugLostTailWrite: RxBatch writes RDT only after a full batch, so
	// refilled descriptors stay unpublished and the ring runs dry.
	bugLostTailWrite
	// bugCleanOffByOne: TX cleaning frees one descriptor more than the
	// batch whose last DD it checked.
	bugCleanOffByOne
	// bugDoubleFreeNow: TX cleaning frees each buffer twice in a row (the
	// pool refuses the second: TxFreeErrors).
	bugDoubleFreeNow
	// bugDoubleFreeLater: TX cleaning leaves the freed buffer in its slot
	// record, and the next post into that slot frees it again, a lap
	// later, when the pool has usually handed it out anew (the pool then
	// accepts the free: no error, one buffer with two owners).
	bugDoubleFreeLater
	// bugReclaimWhenFull: when the TX ring is full, TxBatch frees the
	// oldest descriptor's buffer to make room, without checking its DD.
	bugReclaimWhenFull
)

// has reports whether b includes any of the bugs in mask (always false
// without the ixgbebugs tag).
func (b bug) has(mask bug) bool { return bugsEnabled && b&mask != 0 }

// allBugs is every bug switch (for tests that switch them all).
const allBugs = bugReclaimWhenFull<<1 - 1

// freeAgain is bugDoubleFreeNow (free the buffer a second time at once)
// and bugDoubleFreeLater (keep it in the slot record: freeLeftover frees it
// again at the slot's next post).
func (q *TxQueue) freeAgain(s *txSlot) {
	if q.bugs.has(bugDoubleFreeNow) && s.pool.FreeIndex(s.index) != nil {
		q.freeErrors.Add(1)
	}
	if !q.bugs.has(bugDoubleFreeLater) {
		s.pool = nil
	}
}

// freeLeftover is bugDoubleFreeLater at a post into slot i: a buffer still
// recorded in the slot is freed (again), the error ignored as "cleanup".
func (q *TxQueue) freeLeftover(i uint32) {
	if s := &q.slots[i]; s.pool != nil {
		_ = s.pool.FreeIndex(s.index)
		s.pool = nil
	}
}

// reclaimOldest is bugReclaimWhenFull: with the ring full, the oldest
// descriptor is cleaned without looking at its DD.
func (q *TxQueue) reclaimOldest() {
	i := q.clean
	if s := &q.slots[i]; s.pool != nil {
		if q.trace != nil {
			q.trace.Record(trace.Event{Kind: trace.DrvReclaim, Dir: trace.TX, Dev: q.devID, Queue: q.id, Index: i, Buf: s.pool.BufferIOVA(s.index) + uint64(s.off)})
		}
		if s.pool.FreeIndex(s.index) != nil {
			q.freeErrors.Add(1)
		}
		s.pool = nil
	}
	if q.rsN > 0 && q.rs[q.rsHead] == i { // its RS entry leaves with it
		if q.rsHead++; q.rsHead == uint32(len(q.rs)) {
			q.rsHead = 0
		}
		q.rsN--
	}
	q.clean = q.ring.next(i)
}

// loadEarly is bugLenBeforeDD: the length word loaded (and recorded)
// before the status word.
func (q *RxQueue) loadEarly(i uint32) uint32 {
	v := atomic.LoadUint32(&q.ring.w32[4*i+3])
	if q.trace != nil {
		q.trace.Record(trace.Event{Kind: trace.DrvLoad, Dir: trace.RX, Dev: q.devID, Queue: q.id, Index: i, Aux: 3, Len: v})
	}
	return v
}
