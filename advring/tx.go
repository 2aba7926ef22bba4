package advring

import (
	"fmt"
	"sync/atomic"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/trace"
)

// RSThresh is DPDK's tx_rs_thresh: RS (report status) is set on one data
// descriptor in RSThresh, and on the last one a TxBatch call posts
// (rsNow). The device writes DD back only on descriptors with RS (82599
// datasheet 7.2.3.5; with TXDCTL.WTHRESH 0, which the family sets, as soon
// as it has processed one, 8.2.3.9.10), and it completes descriptors in
// order, so DD on an RS descriptor says every descriptor up to it is done:
// reclaim checks DD on those only. One write-back per 32 frames instead of
// per frame, and one DD load per batch for the driver.
const RSThresh = 32

// txSlot remembers which buffer a TX descriptor carries, to free it to its
// own pool once the device is done with it.
type txSlot struct {
	pool  *dma.Mempool
	index uint32
	off   uint16 // frame offset in the buffer (for the trace)
}

// TxConfig describes one transmit queue.
type TxConfig struct {
	Queue int // the queue's index: its registers and trace events
	// Size is the number of descriptors: a multiple of 8 (TDLEN is a
	// multiple of 128 bytes) that the family has validated.
	Size int
	// MaxFrame is the longest frame (FCS excluded) the MAC is configured
	// to send without TSO (txlen.go).
	MaxFrame int
}

// TxQueue is one transmit queue.
type TxQueue struct {
	dev   Device
	id    uint16
	devID uint16
	ring  ring
	tdt   uint32 // tail register offset
	cc    uint32 // the family's TxCC, in every offload data descriptor
	trace *trace.Recorder
	bugs  bug

	// next is the next descriptor to fill (ixy's tx_index); clean the
	// oldest descriptor not yet reclaimed. [clean, next) is in flight.
	next, clean uint32
	slots       []txSlot
	idle        idler
	maxFrame    int // longer frames need lenOK
	// ctx is what context 0 holds, when ctxValid (txoffload.go).
	ctx      txContext
	ctxValid bool
	// rs holds the indices of the in-flight descriptors with RS, oldest
	// first (a ring of span entries from rsHead); sinceRS counts the data
	// descriptors posted since the last with RS.
	rs          []uint32
	rsHead, rsN uint32
	sinceRS     uint32

	freeErrors atomic.Uint64 // buffers whose pool refused them back
	badPackets atomic.Uint64 // packets rejected by TxBatch
}

// NewTxQueue allocates the ring of a transmit queue (filled with 0xFF).
// Next: Program, the family's thresholds and enable (doc.go).
func NewTxQueue(c *Config, tc TxConfig) (*TxQueue, error) {
	r, err := newRing(c.Alloc, tc.Size, c.bugs)
	if err != nil {
		return nil, fmt.Errorf("TX queue %d: %w", tc.Queue, err)
	}
	return &TxQueue{
		dev: c.Dev, id: uint16(tc.Queue), devID: c.DevID, ring: r,
		tdt: c.Family.Regs.TDT(tc.Queue), cc: c.Family.TxCC, trace: c.Trace, bugs: c.bugs, idle: idler{gone: c.Gone},
		slots: make([]txSlot, r.span), rs: make([]uint32, r.span), maxFrame: tc.MaxFrame,
	}, nil
}

// Program writes the ring's base address and length, and head and tail 0,
// to the family's registers for the queue (Regs.TDBAL ... TDT).
func (q *TxQueue) Program(f *Family) {
	n := int(q.id)
	q.ring.program(q.dev, f.Regs.TDBAL(n), f.Regs.TDBAH(n), f.Regs.TDLEN(n), f.Regs.TDH(n), f.Regs.TDT(n))
}

// TxStats are a transmit queue's driver-side counters.
type TxStats struct {
	BadPackets uint64 // packets rejected by TxBatch (ErrBadPacket)
	FreeErrors uint64 // buffers whose pool refused them back
}

// Stats returns the queue's counters (safe from any goroutine).
func (q *TxQueue) Stats() TxStats {
	return TxStats{BadPackets: q.badPackets.Load(), FreeErrors: q.freeErrors.Load()}
}

// reclaim frees the buffers of completed descriptors: for each descriptor
// with RS, oldest first, whose DD is set, every descriptor up to it (the
// device completes them in order, 7.2.3.5; context descriptors and data
// descriptors without RS have no DD of their own). It returns how many
// descriptors it freed.
func (q *TxQueue) reclaim() uint32 {
	r := &q.ring
	freed := uint32(0)
	for q.rsN > 0 {
		last := q.rs[q.rsHead]
		if !q.bugs.has(bugReclaimWithoutDD) {
			st := atomic.LoadUint32(&r.w32[4*last+3])
			if st&TxStatDD == 0 {
				return freed
			}
			if q.trace != nil { // only loads that saw DD: idle polls record nothing
				q.trace.Record(trace.Event{Kind: trace.DrvLoad, Dir: trace.TX, Dev: q.devID, Queue: q.id, Index: last, Aux: 3, Len: st})
				q.trace.Record(trace.Event{Kind: trace.DrvDDSeen, Dir: trace.TX, Dev: q.devID, Queue: q.id, Index: last})
			}
		}
		if q.rsHead++; q.rsHead == uint32(len(q.rs)) {
			q.rsHead = 0
		}
		q.rsN--
		end := r.next(last)
		if q.bugs.has(bugCleanOffByOne) && end != q.next {
			end = r.next(end) // frees the descriptor after the one whose DD it saw
		}
		i := q.clean
		for ; i != end; i = r.next(i) {
			s := &q.slots[i]
			if s.pool != nil { // nil: a context descriptor
				if q.trace != nil {
					q.trace.Record(trace.Event{Kind: trace.DrvReclaim, Dir: trace.TX, Dev: q.devID, Queue: q.id, Index: i, Buf: s.pool.BufferIOVA(s.index) + uint64(s.off)})
				}
				if s.pool.FreeIndex(s.index) != nil {
					q.freeErrors.Add(1)
				}
				if q.bugs.has(bugDoubleFreeNow | bugDoubleFreeLater) {
					q.freeAgain(s)
				} else {
					s.pool = nil
				}
			}
			freed++
		}
		q.clean = i
	}
	return freed
}

// rsNow decides whether the data descriptor being posted, after which slot
// ni is the next free one, carries RS (RSThresh): every RSThresh data
// descriptors, and on the last descriptor of the call, so that the buffers
// of a call always come back without waiting for more traffic (DPDK's
// simple path leaves up to tx_rs_thresh-1 of them until the next burst).
// The call ends after this descriptor when no packet follows (rest is
// empty), when the ring is full after it, or when the next packet is
// invalid. A packet with offloads next also gets RS here: offload may still
// refuse it, which would end the call after a descriptor without RS.
//
// nextOK reports that it found the next packet valid, so that the loop need
// not check it again.
func (q *TxQueue) rsNow(rest []dma.Packet, ni uint32) (rs, nextOK bool) {
	q.sinceRS++
	if q.sinceRS >= RSThresh || len(rest) == 0 || q.ring.next(ni) == q.clean {
		return true, false
	}
	p := &rest[0]
	if p.Meta&txOffloadFlags != 0 {
		return true, false
	}
	ok := q.valid(p)
	return !ok, ok
}

// valid reports whether TxBatch can send p (ErrBadPacket otherwise).
func (q *TxQueue) valid(p *dma.Packet) bool {
	return !(p.Pool == nil || p.Len < MinTxFrame || int(p.Off)+int(p.Len) > p.Pool.Headroom()+p.Pool.BufSize() ||
		int(p.Len) > q.maxFrame && !q.lenOK(p))
}

// validFast is valid's common case, a frame no longer than maxFrame, small
// enough for the compiler to inline: true means valid; false means "ask
// valid" (which also admits tagged frames up to 4 bytes longer and TSO).
func (q *TxQueue) validFast(p *dma.Packet) bool {
	return p.Pool != nil && p.Len >= MinTxFrame && int(p.Len) <= q.maxFrame && int(p.Off)+int(p.Len) <= p.Pool.Headroom()+p.Pool.BufSize()
}

// setRS records that descriptor i carries RS.
func (q *TxQueue) setRS(i uint32) {
	j := q.rsHead + q.rsN
	if j >= uint32(len(q.rs)) {
		j -= uint32(len(q.rs))
	}
	q.rs[j] = i
	q.rsN++
	q.sinceRS = 0
}

func (q *TxQueue) send(pkts []dma.Packet) (int, error) {
	freed := q.reclaim()
	if q.bugs.has(bugTailBeforeDescriptor | bugDoublePost) {
		return q.sendBuggy(pkts)
	}
	sent, err := q.fill(pkts)
	if sent == 0 {
		// No progress (nothing sent, nothing completed): a removed device
		// looks like this, so check now and then.
		if freed == 0 && err == nil {
			return 0, q.idle.miss()
		}
		return 0, err
	}
	q.idle.n = 0
	q.writeTail(q.next)
	return sent, err
}

// writeTail hands the descriptors up to (not including) i to the device
// (TDT, datasheet 7.2.3.3); the trace event precedes the write.
func (q *TxQueue) writeTail(i uint32) {
	if q.trace != nil {
		q.trace.Record(trace.Event{Kind: trace.DrvTail, Dir: trace.TX, Dev: q.devID, Queue: q.id, Index: i})
	}
	q.dev.Write32(q.tdt, i)
}

// fill posts the packets of pkts from descriptor next on, as many as fit
// and are valid, and returns how many it posted (next moves past them) and
// ErrBadPacket if it stopped at an invalid one. It does not write the tail.
func (q *TxQueue) fill(pkts []dma.Packet) (int, error) {
	r := &q.ring
	i := q.next
	sent := 0
	if !bugsEnabled && q.trace == nil {
		// The common case first, in a loop of its own (fillPlain); the
		// loop below carries on with whatever it leaves.
		sent, i = q.fillPlain(pkts)
	}
	var err error
	known := false // pkts[sent] was found valid by the previous round
	for sent < len(pkts) {
		ni := r.next(i)
		if ni == q.clean && q.bugs.has(bugReclaimWhenFull) {
			q.reclaimOldest()
		}
		if ni == q.clean {
			break // full: one slot always stays empty
		}
		p := &pkts[sent]
		if !known && !q.validFast(p) && !q.valid(p) {
			q.badPackets.Add(1)
			err = ErrBadPacket
			break
		}
		// hi is the data descriptor's second quadword but for the base
		// command and the length: the offload command bits, and olinfo
		// with PAYLEN (the frame's length without offloads). One variable
		// rather than three keeps the loop's state in registers.
		hi := uint64(uint32(p.Len)<<TxPaylenShift) << 32
		rs := true
		if p.Meta&txOffloadFlags == 0 {
			// rs, known = q.rsNow(pkts[sent+1:], ni), written out: rsNow
			// is too large for the compiler to inline, and a call per
			// packet costs a few cycles.
			q.sinceRS++
			known = false
			if q.sinceRS < RSThresh && sent+1 < len(pkts) && r.next(ni) != q.clean {
				if np := &pkts[sent+1]; np.Meta&txOffloadFlags == 0 {
					known = q.validFast(np) || q.valid(np)
					rs = !known
				}
			}
		} else {
			ctx, c, o, pl, ok := offload(p)
			if !ok {
				q.badPackets.Add(1)
				err = ErrBadPacket
				break
			}
			if !q.ctxValid || ctx != q.ctx {
				if r.next(ni) == q.clean {
					break // no room for the context and the data
				}
				q.postContext(i, ctx)
				q.ctx, q.ctxValid = ctx, true
				i, ni = ni, r.next(ni)
			}
			hi = uint64(c) | uint64(o|q.cc|uint32(pl)<<TxPaylenShift)<<32 // CC: the family's (Family.TxCC)
			rs, known = q.rsNow(pkts[sent+1:], ni)
		}
		// Post p in descriptor i (datasheet 7.2.3.2.4), written out here
		// for the same reason: the buffer address, then command, type and
		// length with the offload bits, olinfo and PAYLEN, and a zero
		// status (clearing an old DD), in one 64-bit store; RS if rs. The
		// trace event precedes the stores; the tail write publishes them.
		addr := p.Pool.BufferIOVA(p.Index) + uint64(p.Off)
		length := uint32(p.Len)
		base := uint32(TxCmdNoRS)
		if rs {
			base = TxCmd
		}
		if q.trace != nil {
			q.tracePost(i, length, addr, rs)
		}
		if q.bugs.has(bugDoubleFreeLater) {
			q.freeLeftover(i)
		}
		q.slots[i] = txSlot{pool: p.Pool, index: p.Index, off: p.Off}
		if rs {
			q.setRS(i)
		}
		r.setDesc(i, addr, hi|uint64(base|length)) // published by the tail write (ring.go)
		sent++
		i = ni
	}
	q.next = i
	return sent, err
}

// fillPlain is fill's loop for a queue that records no trace in a build
// without injectable bugs, for packets without offloads that validFast
// admits: the same checks, RS rule and stores as fill's, with the ring,
// the slot table and the RS counter in locals and no call in the loop, so
// that its state stays in registers. It posts a packet only when the RS
// decision needs nothing more (the next packet, if any, is also one of
// these; otherwise fill decides it), and returns how many packets it
// posted and the next descriptor; fill carries on from there.
func (q *TxQueue) fillPlain(pkts []dma.Packet) (sent int, i uint32) {
	r := &q.ring
	slots, d64 := q.slots, r.d64
	clean, sinceRS := q.clean, q.sinceRS
	i = q.next
	known := false // pkts[sent] was checked as the next packet before
	for sent < len(pkts) {
		ni := r.next(i)
		if ni == clean {
			break // full: one slot always stays empty
		}
		p := &pkts[sent]
		if !known && (p.Meta&txOffloadFlags != 0 || !q.validFast(p)) {
			break
		}
		// RS as fill (rsNow) sets it: every RSThresh data descriptors,
		// on the last of the call, and when the ring is full after the
		// next one; a next packet that needs more than validFast is left
		// to fill with this one.
		sinceRS++
		rs := sinceRS >= RSThresh || sent+1 == len(pkts) || r.next(ni) == clean
		known = !rs
		if known {
			if np := &pkts[sent+1]; np.Meta&txOffloadFlags != 0 || !q.validFast(np) {
				sinceRS--
				break
			}
		}
		base := uint32(TxCmdNoRS)
		if rs {
			base = TxCmd
			q.setRS(i)
			sinceRS = 0
		}
		// The post (fill's; datasheet 7.2.3.2.4), plain stores published
		// by the tail write (ring.go).
		slots[i] = txSlot{pool: p.Pool, index: p.Index, off: p.Off}
		d64[i] = [2]uint64{p.Pool.BufferIOVA(p.Index) + uint64(p.Off), uint64(uint32(p.Len)<<TxPaylenShift)<<32 | uint64(base|uint32(p.Len))}
		sent++
		i = ni
	}
	q.sinceRS = sinceRS
	return sent, i
}

// tracePost records a data descriptor's post (out of line: it is rare,
// and it would make the send loop larger).
func (q *TxQueue) tracePost(i, length uint32, addr uint64, rs bool) {
	aux := uint64(0)
	if !rs {
		aux = trace.PostNoRS
	}
	q.trace.Record(trace.Event{Kind: trace.DrvPost, Dir: trace.TX, Dev: q.devID, Queue: q.id, Index: i, Len: length, Buf: addr, Aux: aux})
}

// sendBuggy is send with bugTailBeforeDescriptor and/or bugDoublePost.
func (q *TxQueue) sendBuggy(pkts []dma.Packet) (int, error) {
	r := &q.ring
	// Count what fits (and is valid) first.
	free := r.dist(q.next, q.clean)
	if free == 0 {
		free = r.span
	}
	room := int(free) - 1
	want := 0
	for want < len(pkts) && want < room {
		p := &pkts[want]
		if p.Pool == nil || p.Len == 0 || int(p.Off)+int(p.Len) > p.Pool.Headroom()+p.Pool.BufSize() {
			break
		}
		want++
	}
	posts := want
	double := q.bugs.has(bugDoublePost) && want > 0 && want < room
	if double {
		posts++
	}
	if want == 0 {
		return 0, nil
	}
	if q.bugs.has(bugTailBeforeDescriptor) {
		q.writeTail(r.add(q.next, uint32(posts)))
	}
	sent := 0
	if double {
		q.fill(pkts[:1]) // the first buffer, posted twice
		sent, _ = q.fill(pkts[:1])
	}
	k, err := q.fill(pkts[sent:want])
	sent += k
	if !q.bugs.has(bugTailBeforeDescriptor) {
		q.writeTail(q.next)
	}
	return sent, err
}

// reclaimAll frees every buffer still in the ring (the queue must be
// disabled or drained).
func (q *TxQueue) reclaimAll() {
	r := &q.ring
	for i := q.clean; i != q.next; i = r.next(i) {
		s := &q.slots[i]
		if s.pool != nil {
			if s.pool.FreeIndex(s.index) != nil {
				q.freeErrors.Add(1)
			}
			s.pool = nil
		}
	}
	q.clean = q.next
	q.rsHead, q.rsN, q.sinceRS = 0, 0, 0
}

// Size returns the number of descriptors the device sees.
func (q *TxQueue) Size() uint32 { return q.ring.size }

// Next returns the next descriptor to fill; Clean the oldest not yet
// reclaimed: [Clean, Next) is in flight.
func (q *TxQueue) Next() uint32 { return q.next }

// Clean returns the oldest descriptor not yet reclaimed.
func (q *TxQueue) Clean() uint32 { return q.clean }

// Step returns the slot after i in the engine's order.
func (q *TxQueue) Step(i uint32) uint32 { return q.ring.next(i) }

// Slot returns the buffer in flight in slot i: its pool (nil for a context
// descriptor or an empty slot) and index.
func (q *TxQueue) Slot(i uint32) (*dma.Mempool, uint32) {
	s := &q.slots[i]
	return s.pool, s.index
}

// Desc returns descriptor i's two 64-bit words.
func (q *TxQueue) Desc(i uint32) (lo, hi uint64) { return q.ring.desc(i) }

// Reclaim frees the buffers of completed descriptors now (TxBatch does it
// at every call) and returns how many descriptors it freed.
func (q *TxQueue) Reclaim() uint32 { return q.reclaim() }
