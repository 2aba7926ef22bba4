package ixgbe

import (
	"sync/atomic"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/regs"
	"github.com/verinic/verinic/trace"
)

// goneCheckInterval: after this many consecutive calls on a queue that made
// no progress (nothing received, or nothing accepted for sending), the queue
// reads STATUS to find out whether the device is still there. A removed
// device stops completing descriptors, so every queue of it soon makes no
// progress; this bounds the detection of a surprise removal to that many
// calls, at the cost of one register read per that many idle polls.
const goneCheckInterval = 1024

// rxQueue is one receive queue: its descriptor ring, the buffer behind each
// descriptor, and its pool. Only the goroutine polling the queue touches it,
// except for the counters, which are atomic.
type rxQueue struct {
	nic   *NIC
	dev   Device
	id    uint16
	devID uint16
	ring  ring
	pool  *dma.Mempool
	rdt   uint32 // RDT register offset
	trace *trace.Recorder
	bugs  bug

	// next is the first descriptor not yet seen done (ixy's rx_index).
	next uint32
	// bufs[i] is the pool index of the buffer posted in descriptor i.
	bufs []uint32
	// dataIOVA[b] is the device address of buffer b's data room (after the
	// headroom): cached because deriving it takes a division.
	dataIOVA []uint64
	headroom uint16
	bufSize  uint32
	// discarding is set while the driver skips the rest of a frame that
	// spans several descriptors.
	discarding bool
	idle       uint32
	// vlanStrip: RXDCTL.VME is set, so VP means the tag is in the
	// write-back; rssHash: RSS is on, so the second dword is the hash.
	vlanStrip, rssHash bool

	multiDescDrops atomic.Uint64 // frames dropped for spanning descriptors
	errorDrops     atomic.Uint64 // frames dropped with a MAC error or bad length
	allocFailures  atomic.Uint64 // polls cut short because the pool was empty
}

// post writes buffer b into descriptor i in the read format (datasheet
// 7.1.6.1): packet buffer address, then header address 0, whose bit 0 is
// where the device writes DD, so the store clears any old write-back. The
// trace event comes before the stores; the RDT write publishes them.
func (q *rxQueue) post(i, b uint32) {
	addr := q.dataIOVA[b]
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
func (q *rxQueue) tracePost(i uint32, addr uint64) {
	q.trace.Record(trace.Event{Kind: trace.DrvPost, Dir: trace.RX, Dev: q.devID, Queue: q.id, Index: i, Len: q.bufSize, Buf: addr})
}

// fill posts a fresh buffer in every descriptor (start of the queue).
func (q *rxQueue) fill() error {
	for i := uint32(0); i < q.ring.span; i++ {
		p, err := q.pool.Alloc()
		if err != nil {
			return err
		}
		q.post(i, p.Index)
	}
	return nil
}

// RxBatch receives up to len(pkts) frames from queue q into pkts and returns
// how many. The caller owns the returned packets: free them (Packet.Free)
// or pass them to TxBatch. Each descriptor handed up is refilled with a
// fresh buffer from the queue's pool, and RDT is written once per call
// (datasheet 7.1.9). A frame spanning several descriptors (larger than the
// pool's data room) or flagged with a MAC error is dropped and counted. If
// the pool runs dry the call returns what it has; the rest stays in the ring
// (and the device drops when the ring is full).
func (n *NIC) RxBatch(q int, pkts []dma.Packet) (int, error) {
	if uint(q) >= uint(len(n.rx)) {
		if n.state.Load() != 0 {
			return 0, n.haltedErr()
		}
		return 0, ErrBadQueue
	}
	g := &n.rxGates[q]
	if err := n.enter(g); err != nil { // Stop/Close safety (gate.go)
		return 0, err
	}
	k, err := n.rx[q].receive(pkts)
	if st := n.irq.Load(); st != nil {
		st.polled(q, k) // interrupt mode: unmask the queue's vector when idle (irq.go)
	}
	g.leave()
	return k, err
}

func (q *rxQueue) receive(pkts []dma.Packet) (int, error) {
	r := &q.ring
	i := q.next
	got := 0
	seen := 0
	for got < len(pkts) {
		var lenVLAN uint32
		if q.bugs.has(bugLenBeforeDD) {
			lenVLAN = q.loadEarly(i)
		}
		status := atomic.LoadUint32(&r.w32[4*i+2])
		if status&regs.RXD_STAT_DD == 0 {
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
		if status&(regs.RXD_STAT_EOP|regs.RXD_ERR_RXE) != regs.RXD_STAT_EOP || q.discarding || length == 0 || length > q.bufSize {
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
			q.trace.Record(trace.Event{Kind: trace.DrvReclaim, Dir: trace.RX, Dev: q.devID, Queue: q.id, Index: i, Len: length, Buf: q.dataIOVA[old]})
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
		addr := q.dataIOVA[nb]
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
		q.idle++
		if q.idle%goneCheckInterval == 0 && q.nic.checkGone() {
			return 0, ErrDeviceGone
		}
		return 0, nil
	}
	q.idle = 0
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

// meta turns descriptor i's write-back (datasheet 7.1.6.2) into the
// packet's offload metadata: IPCS/IPE and L4CS/TCPE (7.1.11), the stripped
// VLAN tag (VP, with RXDCTL.VME set by the driver), and the RSS hash in the
// second dword (RXCSUM.PCSD is set by init) when RSS is on.
//
// The four checksum bits move with shifts to dma's bits 0-3 (the array
// below fails to compile if those constants move), small enough for the
// compiler to inline meta into the receive loop.
func (q *rxQueue) meta(i, status, lenVLAN uint32) dma.Meta {
	m := dma.Meta(status>>6&1 | status>>29&2 | status>>3&4 | status>>28&8) // IPCS, IPE, L4CS, TCPE
	if q.vlanStrip && status&regs.RXD_STAT_VP != 0 {
		m |= dma.RxVLAN | dma.Meta(lenVLAN>>16)<<16
	}
	if q.rssHash {
		m |= dma.RxRSSHash | dma.Meta(atomic.LoadUint32(&q.ring.w32[4*i+1]))<<32
	}
	return m
}

// metaBitsAt0to3 is a compile-time check of meta's shifts.
var _ = [1]struct{}{}[dma.RxIPChecked^1|dma.RxIPBad^2|dma.RxL4Checked^4|dma.RxL4Bad^8]

// dropDescriptor accounts for a descriptor whose frame is not handed up.
func (q *rxQueue) dropDescriptor(status uint32) {
	eop := status&regs.RXD_STAT_EOP != 0
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
func (q *rxQueue) refillOwnedSlot(i uint32) {
	if atomic.LoadUint32(&q.ring.w32[4*i+2])&regs.RXD_STAT_DD != 0 {
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
func (q *rxQueue) reclaimAll() {
	for i := uint32(0); i < q.ring.span; i++ {
		if q.bufs[i] != noBuffer {
			_ = q.pool.FreeIndex(q.bufs[i])
			q.bufs[i] = noBuffer
		}
	}
}

// noBuffer marks a ring slot without a buffer.
const noBuffer = ^uint32(0)
