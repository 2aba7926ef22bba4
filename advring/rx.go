package advring

import (
	"fmt"
	"sync/atomic"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/trace"
)

// GoneCheckInterval: after this many consecutive calls on a queue that made
// no progress (nothing received, or nothing accepted for sending), the queue
// asks Config.Gone whether the device is still there. A removed device
// stops completing descriptors, so every queue of it soon makes no
// progress; this bounds the detection of a surprise removal to that many
// calls, at the cost of one register read per that many idle polls.
const GoneCheckInterval = 1024

// idler counts a queue's calls in a row without progress.
type idler struct {
	n    uint32
	gone func() bool
}

// miss counts a call without progress and, every GoneCheckInterval of
// them, asks whether the device is gone (ErrDeviceGone).
func (d *idler) miss() error {
	d.n++
	if d.n%GoneCheckInterval == 0 && d.gone() {
		return ErrDeviceGone
	}
	return nil
}

// RxConfig describes one receive queue.
type RxConfig struct {
	Queue int // the queue's index: its registers and trace events
	// Size is the number of descriptors: a multiple of 8 (RDLEN is a
	// multiple of 128 bytes) that the family has validated.
	Size int
	// Pool supplies the receive buffers; it must hold more than Size
	// buffers. The family creates and releases it; the queue's poller owns
	// it while the queue runs.
	Pool *dma.Mempool
	// VLANStrip: the family set the queue's VLAN strip enable (RXDCTL.VME),
	// so VP means the tag is in the write-back. RSSHash: RSS is on and the
	// write-back's second dword is the RSS hash (RXCSUM.PCSD).
	VLANStrip, RSSHash bool
}

// RxQueue is one receive queue: its descriptor ring, the buffer behind each
// descriptor, and its pool. Only the goroutine polling the queue touches it,
// except for the counters, which are atomic.
type RxQueue struct {
	dev   Device
	id    uint16
	devID uint16
	ring  ring
	pool  *dma.Mempool
	rdt   uint32 // tail register offset
	trace *trace.Recorder
	bugs  bug

	// next is the first descriptor not yet seen done (ixy's rx_index).
	next uint32
	// bufs[i] is the pool index of the buffer posted in descriptor i.
	bufs     []uint32
	headroom uint16
	bufSize  uint32
	// discarding is set while the driver skips the rest of a frame that
	// spans several descriptors.
	discarding bool
	idle       idler
	rssHash    bool
	// The family's write-back bits (Layout): rxe is RXE's mask; vpStrip is
	// VP's mask with VLAN strip on, else 0; errMeta and statMeta map the
	// status/error dword's top byte and low seven bits to dma.Meta's
	// checksum bits (meta).
	rxe, vpStrip uint32
	errMeta      [256]uint8
	statMeta     [128]uint8

	multiDescDrops atomic.Uint64 // frames dropped for spanning descriptors
	errorDrops     atomic.Uint64 // frames dropped with a MAC error or bad length
	allocFailures  atomic.Uint64 // polls cut short because the pool was empty
}

// NewRxQueue allocates the ring of a receive queue (filled with 0xFF, no
// buffers yet). Next: Program, the family's queue set-up, Fill, the
// family's enable, Start (doc.go).
func NewRxQueue(c *Config, rc RxConfig) (*RxQueue, error) {
	if rc.Pool == nil || rc.Pool.Size() <= rc.Size {
		return nil, fmt.Errorf("RX queue %d: a pool of more than %d buffers is needed", rc.Queue, rc.Size)
	}
	r, err := newRing(c.Alloc, rc.Size, c.bugs)
	if err != nil {
		return nil, fmt.Errorf("RX queue %d: %w", rc.Queue, err)
	}
	pool := rc.Pool
	l := &c.Family.Layout
	q := &RxQueue{
		dev: c.Dev, id: uint16(rc.Queue), devID: c.DevID, ring: r, pool: pool,
		rdt: c.Family.Regs.RDT(rc.Queue), trace: c.Trace, bugs: c.bugs, idle: idler{gone: c.Gone},
		bufs:     make([]uint32, r.span),
		headroom: uint16(pool.Headroom()),
		bufSize:  uint32(pool.BufSize()),
		rssHash:  rc.RSSHash, rxe: 1 << l.RXE,
	}
	if rc.VLANStrip {
		q.vpStrip = 1 << l.VP
	}
	if err := q.metaTables(l); err != nil {
		r.free()
		return nil, fmt.Errorf("RX queue %d: %s: %w", rc.Queue, c.Family.Name, err)
	}
	for b := range q.bufs {
		q.bufs[b] = noBuffer
	}
	return q, nil
}

// Program writes the ring's base address and length, and head and tail 0,
// to the family's registers for the queue (Regs.RDBAL ... RDT).
func (q *RxQueue) Program(f *Family) {
	n := int(q.id)
	q.ring.program(q.dev, f.Regs.RDBAL(n), f.Regs.RDBAH(n), f.Regs.RDLEN(n), f.Regs.RDH(n), f.Regs.RDT(n))
}

// Start hands the filled ring to the device (82599 datasheet 4.6.7: "bump
// the tail pointer"), keeping one descriptor back: tail = N-1. Call it
// after Fill and the family's queue enable.
func (q *RxQueue) Start() {
	q.next = 0
	tail := q.ring.size - 1
	if q.trace != nil {
		q.trace.Record(trace.Event{Kind: trace.DrvTail, Dir: trace.RX, Dev: q.devID, Queue: q.id, Index: tail})
	}
	q.dev.Write32(q.rdt, tail)
}

// Pool returns the queue's buffer pool.
func (q *RxQueue) Pool() *dma.Mempool { return q.pool }

// RxStats are a receive queue's driver-side counters.
type RxStats struct {
	MultiDescDrops uint64 // frames dropped for spanning descriptors
	ErrorDrops     uint64 // frames dropped with a MAC error or bad length
	AllocFailures  uint64 // polls cut short because the pool was empty
}

// Stats returns the queue's counters (safe from any goroutine).
func (q *RxQueue) Stats() RxStats {
	return RxStats{MultiDescDrops: q.multiDescDrops.Load(), ErrorDrops: q.errorDrops.Load(), AllocFailures: q.allocFailures.Load()}
}

// post writes buffer b into descriptor i in the read format (datasheet
// 7.1.6.1): packet buffer address, then header address 0, whose bit 0 is
// where the device writes DD, so the store clears any old write-back. The
// trace event comes before the stores; the RDT write publishes them.
func (q *RxQueue) post(i, b uint32) {
	addr := q.dataIOVA(b)
	if q.bugs.has(bugRxAddrNoHeadroom) {
		addr -= uint64(q.headroom)
	}
	if q.trace != nil {
		q.tracePost(i, addr)
	}
	q.ring.setDesc(i, addr, 0) // plain stores, published by the RDT write (ring.go)
	q.bufs[i] = b
}

// tracePost records post's event; out of line so that post stays small
// enough for the compiler to inline into the receive loop.
func (q *RxQueue) tracePost(i uint32, addr uint64) {
	q.trace.Record(trace.Event{Kind: trace.DrvPost, Dir: trace.RX, Dev: q.devID, Queue: q.id, Index: i, Len: q.bufSize, Buf: addr})
}

// Fill posts a fresh buffer in every descriptor (before Start).
func (q *RxQueue) Fill() error {
	for i := uint32(0); i < q.ring.span; i++ {
		p, err := q.pool.Alloc()
		if err != nil {
			return fmt.Errorf("RX queue %d: fill ring: %w", q.id, err)
		}
		q.post(i, p.Index)
	}
	return nil
}

func (q *RxQueue) receive(pkts []dma.Packet) (int, error) {
	r := &q.ring
	i := q.next
	got := 0
	if !bugsEnabled && q.trace == nil {
		// The common case first, in a loop of its own (receivePlain);
		// whatever it leaves (a drop, an exhausted pool) the loop below
		// handles.
		got, i = q.receivePlain(pkts)
	}
	seen := got
	for got < len(pkts) {
		var lenVLAN uint32
		if q.bugs.has(bugLenBeforeDD) {
			lenVLAN = q.loadEarly(i)
		}
		status := atomic.LoadUint32(&r.w32[4*i+2])
		if status&RxStatDD == 0 {
			break
		}
		if !q.bugs.has(bugLenBeforeDD) {
			lenVLAN = atomic.LoadUint32(&r.w32[4*i+3])
		}
		if q.trace != nil { // what the two loads saw; a poll that finds no DD records nothing
			q.trace.Record(trace.Event{Kind: trace.DrvLoad, Dir: trace.RX, Dev: q.devID, Queue: q.id, Index: i, Aux: 2, Len: status})
			if !q.bugs.has(bugLenBeforeDD) {
				q.trace.Record(trace.Event{Kind: trace.DrvLoad, Dir: trace.RX, Dev: q.devID, Queue: q.id, Index: i, Aux: 3, Len: lenVLAN})
			}
		}
		length := lenVLAN & 0xFFFF
		if length == 0 {
			// DD but no length yet: the device has stored the status word
			// and not yet the length word, which the post left 0 (header
			// address 0). Datasheet 7.1.6.2 gives the write-back's layout,
			// not the order of its stores, and the 82599 never writes back
			// a descriptor with no data in one-buffer mode: the write-back
			// is not finished, so come back on the next poll.
			break
		}
		if q.bugs.has(bugLenMinusFCS) {
			length -= 4
		}
		if q.trace != nil {
			q.trace.Record(trace.Event{Kind: trace.DrvDDSeen, Dir: trace.RX, Dev: q.devID, Queue: q.id, Index: i, Len: length})
		}
		old := q.bufs[i]
		if status&(RxStatEOP|q.rxe) != RxStatEOP || q.discarding || length == 0 || length > q.bufSize {
			// Slow path: part of a multi-descriptor frame, a MAC error or
			// an impossible length. Give the same buffer back to the
			// device; nothing is handed up.
			q.dropDescriptor(status)
			q.post(i, old)
			seen++
			i = r.next(i)
			continue
		}
		nb, ok := q.pool.AllocIndex()
		if !ok {
			q.allocFailures.Add(1)
			break
		}
		if q.trace != nil {
			q.trace.Record(trace.Event{Kind: trace.DrvReclaim, Dir: trace.RX, Dev: q.devID, Queue: q.id, Index: i, Len: length, Buf: q.dataIOVA(old)})
		}
		// Field by field: a composite literal is built on the stack and
		// copied with wider loads than its stores (a store-forwarding
		// stall per packet).
		p := &pkts[got]
		p.Pool, p.Index, p.Off, p.Len, p.Meta = q.pool, old, q.headroom, uint16(length), q.meta(i, status, lenVLAN)
		got++
		if q.bugs.has(bugRefillHandedUp) {
			_ = q.pool.FreeIndex(nb)
			nb = old
		}
		// q.post(i, nb), written out: post is too large for the compiler
		// to inline, and a call per packet costs a few cycles.
		addr := q.dataIOVA(nb)
		if q.bugs.has(bugRxAddrNoHeadroom) {
			addr -= uint64(q.headroom)
		}
		if q.trace != nil {
			q.tracePost(i, addr)
		}
		r.setDesc(i, addr, 0)
		q.bufs[i] = nb
		seen++
		i = r.next(i)
	}
	if seen == 0 {
		return 0, q.idle.miss()
	}
	q.idle.n = 0
	q.next = i
	if q.bugs.has(bugRefillOwnedSlot) {
		q.refillOwnedSlot(i)
	}
	// RDT gets the last descriptor processed, not the next one: RDT == RDH
	// means "no descriptors for the device", so the slot at RDT always
	// stays with the driver (datasheet 7.1.9; ixy's off-by-one).
	tail := r.prev(i)
	if q.bugs.has(bugRxTailEqualsHead) {
		tail = i
	}
	if q.bugs.has(bugLostTailWrite) && got < len(pkts) {
		return got, nil
	}
	if q.trace != nil {
		q.trace.Record(trace.Event{Kind: trace.DrvTail, Dir: trace.RX, Dev: q.devID, Queue: q.id, Index: tail})
	}
	q.dev.Write32(q.rdt, tail)
	return got, nil
}

// receivePlain is receive's loop for a queue that records no trace in a
// build without injectable bugs, for single-descriptor frames without
// errors while the pool has buffers: the same loads, checks and stores as
// receive's, with the ring, the slot table and the pool in locals and no
// call in the loop, so that its state stays in registers. It stops at the
// first descriptor that is not done or that needs more than this (a drop,
// an empty pool) and returns how many packets it handed up and the next
// descriptor; receive carries on from there.
func (q *RxQueue) receivePlain(pkts []dma.Packet) (got int, i uint32) {
	r := &q.ring
	d32, d64, bufs := r.d32, r.d64, q.bufs
	pool := q.pool
	headroom, bufSize, eopMask := q.headroom, q.bufSize, RxStatEOP|q.rxe
	if q.discarding {
		return 0, q.next
	}
	i = q.next
	for got < len(pkts) {
		w := &d32[i]
		status := atomic.LoadUint32(&w[2])
		if status&RxStatDD == 0 {
			break
		}
		lenVLAN := atomic.LoadUint32(&w[3])
		length := lenVLAN & 0xFFFF
		if status&eopMask != RxStatEOP || length == 0 || length > bufSize {
			break
		}
		nb, ok := pool.AllocIndex()
		if !ok {
			break
		}
		old := bufs[i]
		p := &pkts[got]
		p.Pool, p.Index, p.Off, p.Len, p.Meta = pool, old, headroom, uint16(length), q.meta(i, status, lenVLAN)
		got++
		// Post nb in descriptor i (post; plain stores, ring.go).
		d64[i] = [2]uint64{pool.BufferIOVA(nb) + uint64(headroom), 0}
		bufs[i] = nb
		i = r.next(i)
	}
	return got, i
}

// meta turns descriptor i's write-back (82599 datasheet 7.1.6.2) into the
// packet's offload metadata: IPCS/IPE and L4CS/TCPE (7.1.11), the stripped
// VLAN tag (VP, with the family's VLAN strip enable set), and the RSS hash
// in the second dword when RSS is on (82599: RXCSUM.PCSD). The checksum bit
// positions are the family's (Layout), turned by NewRxQueue into two
// tables over the status/error dword's top byte (the error bits) and low
// seven bits (the status bits): two loads instead of four variable shifts,
// and small enough for the compiler to inline meta into the receive loop.
func (q *RxQueue) meta(i, status, lenVLAN uint32) dma.Meta {
	m := dma.Meta(q.errMeta[status>>24] | q.statMeta[status&0x7F])
	if status&q.vpStrip != 0 {
		m |= dma.RxVLAN | dma.Meta(lenVLAN>>16)<<16
	}
	if q.rssHash {
		m |= dma.RxRSSHash | dma.Meta(atomic.LoadUint32(&q.ring.w32[4*i+1]))<<32
	}
	return m
}

// metaTables fills errMeta and statMeta from the family's layout: dma's
// RxIPBad and RxL4Bad for every top byte with IPE or L4E set, RxIPChecked
// and RxL4Checked for every low seven bits with IPCS or L4CS set.
func (q *RxQueue) metaTables(l *Layout) error {
	if l.RXE < 24 || l.IPE < 24 || l.L4E < 24 || l.RXE > 31 || l.IPE > 31 || l.L4E > 31 || l.IPCS > 6 || l.L4CS > 6 || l.VP > 6 {
		return fmt.Errorf("write-back layout %+v: the engine expects the error bits in 31:24 and the status bits in 6:0", *l)
	}
	for v := range q.errMeta {
		if v>>(l.IPE-24)&1 != 0 {
			q.errMeta[v] |= uint8(dma.RxIPBad)
		}
		if v>>(l.L4E-24)&1 != 0 {
			q.errMeta[v] |= uint8(dma.RxL4Bad)
		}
	}
	for v := range q.statMeta {
		if v>>l.IPCS&1 != 0 {
			q.statMeta[v] |= uint8(dma.RxIPChecked)
		}
		if v>>l.L4CS&1 != 0 {
			q.statMeta[v] |= uint8(dma.RxL4Checked)
		}
	}
	return nil
}

// dropDescriptor accounts for a descriptor whose frame is not handed up.
func (q *RxQueue) dropDescriptor(status uint32) {
	eop := status&RxStatEOP != 0
	switch {
	case q.discarding || !eop:
		// A frame spanning descriptors: count it once, at its last one.
		q.discarding = !eop
		if eop {
			q.multiDescDrops.Add(1)
		}
	default:
		q.errorDrops.Add(1)
	}
}

// refillOwnedSlot is bugRefillOwnedSlot: it refills descriptor i, one past
// the last one processed, while the device still owns it (DD clear: not yet
// written back), and returns the buffer that was there to the pool while the
// device may still write it.
func (q *RxQueue) refillOwnedSlot(i uint32) {
	if atomic.LoadUint32(&q.ring.w32[4*i+2])&RxStatDD != 0 {
		return // written back already: the slot is no longer the device's
	}
	nb, err := q.pool.Alloc()
	if err != nil {
		return
	}
	old := q.bufs[i]
	q.post(i, nb.Index)
	_ = q.pool.FreeIndex(old)
}

// reclaimAll takes every buffer out of the ring back into the pool (the
// queue must be disabled).
func (q *RxQueue) reclaimAll() {
	for i := uint32(0); i < q.ring.span; i++ {
		if q.bufs[i] != noBuffer {
			_ = q.pool.FreeIndex(q.bufs[i])
			q.bufs[i] = noBuffer
		}
	}
}

// noBuffer marks a ring slot without a buffer.
const noBuffer = ^uint32(0)

// dataIOVA is the device address of buffer b's data room (after the
// headroom; the pool caches each buffer's IOVA).
func (q *RxQueue) dataIOVA(b uint32) uint64 { return q.pool.BufferIOVA(b) + uint64(q.headroom) }

// Inspection, for checkers and tests (not for the data path): the ring's
// size, the slots the engine cycles through, the next descriptor it will
// look at, and what each slot holds.

// Size returns the number of descriptors the device sees.
func (q *RxQueue) Size() uint32 { return q.ring.size }

// Slots returns the number of ring slots the engine cycles through (Size,
// unless a deliberate wrap bug is injected).
func (q *RxQueue) Slots() uint32 { return q.ring.span }

// Next returns the first descriptor not yet seen done.
func (q *RxQueue) Next() uint32 { return q.next }

// Buffer returns the pool index of the buffer posted in slot i, if any.
func (q *RxQueue) Buffer(i uint32) (uint32, bool) {
	b := q.bufs[i]
	return b, b != noBuffer
}

// Desc returns descriptor i's two 64-bit words.
func (q *RxQueue) Desc(i uint32) (lo, hi uint64) { return q.ring.desc(i) }

// Queue returns the queue's index.
func (q *RxQueue) Queue() int { return int(q.id) }
