package ixgbesim

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync/atomic"

	"github.com/verinic/verinic/ixgbe/regs"
	"github.com/verinic/verinic/trace"
)

// txQueue is one transmit queue's DMA engine state.
type txQueue struct {
	queueBase

	// Frame being assembled from its descriptors (7.2.3.2.4: a frame spans
	// descriptors up to the one with EOP).
	frame    []byte
	frameLen int
	inFrame  bool
	ifcs     bool // FCS insertion requested by a descriptor of the frame
	badFrame bool // a descriptor of this frame was bad: discard it

	// Offloads (txoffload.go): the contexts loaded by context descriptors,
	// the first data descriptor's command and olinfo words of the packet
	// being assembled, and the buffer TSO segments are built in.
	ctx               [txContexts]txContext
	firstCtl, firstOl uint32
	seg               []byte

	// Descriptors with RS processed but not yet written back (TXDCTL.WTHRESH
	// batching, 7.2.3.5.1).
	pending   []uint32
	npending  int
	cancelled []bool // pending write-back of slot i superseded by a repost

	// Statistics of the frames sent in the current burst, added to the
	// registers once at its end (stepTxN): one atomic add per counter per
	// burst instead of per frame; the same for the cable's (wt).
	st txStats
	wt wireTally

	tdt, tdwbal *atomic.Uint32 // the queue's TDT and TDWBAL cells (NIC.initHot)
}

// txStats accumulates a burst's transmit statistics (8.2.3.23).
type txStats struct {
	pkts, bytes uint64
	ptc         [len(ptcRegs)]uint32
	bptc, mptc  uint32
}

// flushStats adds the burst's statistics to the registers.
func (q *txQueue) flushStats() {
	s := &q.st
	if s.pkts == 0 {
		return
	}
	n := q.n
	n.count(regs.GPTC, uint32(s.pkts))
	n.count(regs.TPT, uint32(s.pkts))
	n.count64(pairGOTC, s.bytes)
	for i, c := range s.ptc {
		if c != 0 {
			n.count(ptcRegs[i], c)
		}
	}
	if s.bptc != 0 {
		n.count(regs.BPTC, s.bptc)
	}
	if s.mptc != 0 {
		n.count(regs.MPTC, s.mptc)
	}
	st := n.statIndex(regs.TQSM, q.idx)
	n.count(regs.QPTC(st), uint32(s.pkts))
	n.count64(pairQBTC0+st, s.bytes)
	*s = txStats{}
}

func (n *NIC) writeTXDCTL(q int, c *atomic.Uint32, v uint32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	tq := &n.txq[q]
	if v&regs.TXDCTL_SWFLSH != 0 {
		// Software flush (8.2.3.9.10): write back pending descriptors now;
		// the bit self-clears.
		tq.mu.Lock()
		tq.flushWriteBacks(n.reg(regs.TDH(q)))
		tq.mu.Unlock()
	}
	c.Store(v &^ (regs.TXDCTL_ENABLE | regs.TXDCTL_SWFLSH))
	on := v&regs.TXDCTL_ENABLE != 0
	if on == tq.enabled.Load() {
		return
	}
	if !on {
		tq.disable(false)
		return
	}
	tq.enable()
}

func (q *txQueue) enable() {
	n := q.n
	q.mu.Lock()
	defer q.mu.Unlock()
	head, tail, ok := q.setupRing()
	if !ok {
		return
	}
	size := q.ring.size
	if cap(q.frame) < maxFrame+8 {
		q.frame = make([]byte, maxFrame+8) // room for a VLAN tag and the FCS
	}
	q.ctx = [txContexts]txContext{}
	if cap(q.pending) < int(size) {
		q.pending = make([]uint32, size)
		q.cancelled = make([]bool, size)
	}
	q.pending = q.pending[:size]
	q.cancelled = q.cancelled[:size]
	q.npending = 0
	q.frameLen, q.inFrame, q.badFrame = 0, false, false
	q.run(head, tail)
	n.txActive[q.idx/64].Or(1 << (q.idx % 64))
}

// txBufOfWords: the buffer of an advanced data or legacy descriptor of
// words lo and hi (bytes 0-7 and 8-15); context
// descriptors carry none.
func txBufOfWords(lo, hi uint64) (uint64, bool) {
	ctl := uint32(hi) // TXD_CMD_TYPE_LEN: bytes 8-11
	if ctl&regs.TXD_DCMD_DEXT != 0 && ctl&regs.TXD_DTYP_MASK != regs.TXD_DTYP_DATA {
		return 0, false
	}
	return lo, true
}

func (q *txQueue) disable(reset bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !reset && q.enabled.Load() {
		q.flushWriteBacks(q.n.reg(regs.TDH(q.idx))) // disabling a queue completes its write-backs
	}
	q.enabled.Store(false)
	q.n.txActive[q.idx/64].And(^uint64(1 << (q.idx % 64)))
	q.halted = false
	q.npending = 0
	q.inFrame, q.frameLen = false, 0
	q.ring.reset()
}

func (q *txQueue) writeTail(c *atomic.Uint32, v uint32) {
	q.mu.Lock()
	defer q.mu.Unlock()
	head, old, ok := q.moveTailLocked(c, v)
	if !ok {
		return
	}
	v &= 0xFFFF
	if !q.enabled.Load() || q.halted {
		c.Store(v)
		return
	}
	// Slots handed over again while their write-back is still pending
	// were reclaimed by the driver through the head; their late DD would
	// land on the new descriptor, so it is cancelled.
	if q.npending > 0 && (v+q.ring.size-head)%q.ring.size > (old+q.ring.size-head)%q.ring.size {
		for k := 0; k < q.npending; k++ {
			i := q.pending[k]
			if inRange(i, old, v, q.ring.size) {
				q.cancelled[i] = true
			}
		}
	}
	c.Store(v)
}

// inRange reports whether i lies in the ring interval [from, to).
func inRange(i, from, to, size uint32) bool {
	return (i+size-from)%size < (to+size-from)%size
}

// stepTx processes one descriptor of queue qi (7.2.3): fetch at TDH,
// check, DMA its data, send the frame on EOP, queue the write-back when RS
// is set, advance TDH. With nothing to do it flushes pending write-backs.
// It reports whether anything happened.
func (n *NIC) stepTx(qi int) bool { return n.stepTxN(qi, 1) > 0 }

// stepTxN processes up to budget descriptors of queue qi under one
// acquisition of the queue's lock, reading the tail and the queue's
// configuration once (a burst of the DMA engine's descriptor fetch,
// 7.2.3.4), and returns how many units of work it did: descriptors
// processed, plus one for a flush of pending write-backs once the ring is
// idle. stepTxN(q, 1) is exactly one Step's worth of work.
func (n *NIC) stepTxN(qi, budget int) int { return n.stepTxBurst(qi, budget, false) }

// stepTxBurst is stepTxN; with try it returns -1 at once if another
// goroutine holds the queue (a doorbell leaving the work to the engine).
func (n *NIC) stepTxBurst(qi, budget int, try bool) int {
	if n.removed.Load() || n.stalled.Load() || n.closed.Load() {
		return 0
	}
	q := &n.txq[qi]
	if !q.enabled.Load() {
		return 0
	}
	if !try {
		q.mu.Lock()
	} else if !q.mu.TryLock() {
		return -1
	}
	defer q.mu.Unlock()
	if !q.enabled.Load() || q.halted || n.reg(regs.DMATXCTL)&regs.DMATXCTL_TE == 0 {
		return 0
	}
	headReg := n.cell(regs.TDH(qi))
	head := headReg.Load()
	tail := q.tdt.Load()
	if !q.tailSeen || tail != q.lastTail {
		q.lastTail, q.tailSeen = tail, true
		if n.tr != nil {
			n.tr.Record(trace.Event{Kind: trace.DevTailRead, Dir: trace.TX, Dev: n.dev, Queue: uint16(qi), Index: tail})
		}
	}
	wthresh := int(n.reg(regs.TXDCTL(qi)) & regs.TXDCTL_WTHRESH >> regs.TXDCTL_WTHRESH_SHIFT)
	done := 0
	start := head
	for done < budget {
		if head == tail {
			if q.flushWriteBacks(head) {
				done++
			}
			break
		}
		next, ok := q.txOne(head, wthresh)
		if !ok {
			break
		}
		done++
		if next == head {
			break // halted by an IOMMU fault
		}
		head = next
	}
	if head != start {
		// TDH once per burst: nothing reads it under the queue's lock
		// meanwhile, and software may read it at any point of its move.
		headReg.Store(head)
	}
	if done > 0 {
		q.flushStats()
		q.wt.flush()
		n.raiseQueueInterrupt(qi, 1)
	}
	return done
}

// txOne processes the descriptor at head (the queue's lock held) and
// returns the next head; ok is false when the engine may not move (link
// down, paused). A halting IOMMU fault returns head itself with ok true.
func (q *txQueue) txOne(head uint32, wthresh int) (next uint32, ok bool) {
	n := q.n
	qi := q.idx
	if !n.macLinkUp.Load() {
		// The MAC holds transmission while the link is down.
		return head, false
	}
	if !q.inFrame && n.txPaused() {
		// The link partner's PAUSE holds transmission, from the next
		// frame boundary on (3.7.7.1).
		return head, false
	}
	size := q.ring.size
	d, ok := n.domain.access(&q.descTC, n.name, q.ring.base+uint64(head)*regs.DescSize, regs.DescSize, DMARead, trace.TX, qi, "descriptor", n.clock)
	if !ok {
		n.iommuFault(trace.TX, qi, head, q.ring.base+uint64(head)*regs.DescSize, "descriptor")
		q.halted = true
		return head, true
	}
	rd := q.ring.view(head, d) // what the device fetched (schedule.go)
	addr := load64(rd, regs.TXD_BUFFER_ADDR)
	ctl := load32(rd, regs.TXD_CMD_TYPE_LEN)
	length := int(ctl & regs.TXD_DTALEN_MASK)
	if n.tr != nil {
		n.tr.Record(trace.Event{Kind: trace.DevFetch, Dir: trace.TX, Dev: n.dev, Queue: uint16(qi), Index: head, Buf: addr, Len: uint32(length)})
	}
	q.owner.fetched(head, d)

	isData := true
	bad := ""
	if ctl&regs.TXD_DCMD_DEXT != 0 {
		switch ctl & regs.TXD_DTYP_MASK {
		case regs.TXD_DTYP_DATA:
		case regs.TXD_DTYP_CTXT:
			isData = false // offload context: no data (7.2.3.2.3)
		default:
			bad = fmt.Sprintf("DEXT set with descriptor type %#x (neither data 0x3 nor context 0x2)", (ctl&regs.TXD_DTYP_MASK)>>20)
		}
	}
	if bad == "" && !isData {
		q.loadContext(rd, head)
	}
	if bad == "" && isData && !q.inFrame && !q.firstDescriptor(head, ctl, load32(rd, regs.TXD_OLINFO_STATUS)) {
		q.badFrame = true // violation recorded: the packet is discarded
		q.inFrame = true
		q.ifcs = false
	}
	if bad == "" && isData {
		switch {
		case length == 0:
			bad = "data descriptor with zero length"
		case q.frameLen+length > q.maxPacket():
			bad = fmt.Sprintf("frame grows past %d bytes", q.maxPacket())
		}
	}
	eop := ctl&regs.TXD_DCMD_EOP != 0
	var direct []byte
	if bad != "" {
		n.violate(Violation{Kind: BadDescriptor, Dir: trace.TX, Queue: qi, Index: head, Buf: addr,
			Detail: fmt.Sprintf("%s (cmd_type_len %#08x)", bad, ctl)})
		if isData {
			q.badFrame = true
			q.inFrame = true
		}
	} else if isData && !q.badFrame {
		src, ok := n.domain.access(&q.dataTC, n.name, addr, length, DMARead, trace.TX, qi, "packet data", n.clock)
		if !ok {
			n.iommuFault(trace.TX, qi, head, addr, "packet data")
			q.halted = true
			return head, true
		}
		if !q.inFrame {
			q.inFrame = true
			q.ifcs = false
		}
		// IFCS: drivers (ixy, DPDK) set it on every descriptor of a frame;
		// the model inserts the FCS if any descriptor of the frame asks.
		q.ifcs = q.ifcs || ctl&regs.TXD_DCMD_IFCS != 0
		if eop && q.frameLen == 0 && q.directOK(length) {
			direct = src // sent from host memory below, not copied
		} else {
			copy(q.frame[q.frameLen:], src)
			q.frameLen += length
		}
		if n.tr != nil {
			n.tr.Record(trace.Event{Kind: trace.DevDMA, Dir: trace.TX, Dev: n.dev, Queue: uint16(qi), Index: head, Buf: addr, Len: uint32(length)})
		}
	}
	if isData && eop {
		switch {
		case q.badFrame:
		case direct != nil:
			q.sendDirect(direct)
		case q.offloads():
			q.sendOffloaded(head)
		default:
			q.sendBuf(q.frame, q.frameLen, false, 0)
		}
		q.frameLen, q.inFrame, q.badFrame = 0, false, false
	}
	if next = head + 1; next == size {
		next = 0
	}
	if ctl&regs.TXD_DCMD_RS != 0 {
		if q.npending == len(q.pending) {
			q.flushWriteBacks(head)
		}
		q.pending[q.npending] = head
		q.cancelled[head] = false
		q.npending++
	}
	if q.npending > 0 && q.npending >= wthresh {
		q.flushWriteBacks(next)
	}
	if n.tr != nil {
		n.tr.Record(trace.Event{Kind: trace.DevHead, Dir: trace.TX, Dev: n.dev, Queue: uint16(qi), Index: next})
	}
	return next, true
}

// sendBuf inserts a VLAN tag (vle: DMATXCTL.VT and tci after the MAC
// addresses, 7.2.5), pads, appends the FCS and transmits the frame of l
// bytes at the start of buf (which has room for 8 more), counting it
// (8.2.3.23: GPTC, GOTC, TPT, PTCxx, BPTC/MPTC, QPTC/QBTC).
func (q *txQueue) sendBuf(buf []byte, l int, vle bool, tci uint16) {
	n := q.n
	hl := n.h.hlreg0.Load()
	if vle && l >= 12 {
		copy(buf[16:l+4], buf[12:l])
		binary.BigEndian.PutUint16(buf[12:], uint16(n.reg(regs.DMATXCTL)>>regs.DMATXCTL_VT_SHIFT))
		binary.BigEndian.PutUint16(buf[14:], tci)
		l += 4
	}
	if hl&regs.HLREG0_TXPADEN != 0 && l < 60 {
		clear(buf[l:60]) // pad to 64 bytes with the FCS (8.2.3.22.8)
		l = 60
	}
	fcs := q.ifcs && hl&regs.HLREG0_TXCRCEN != 0
	var w Link
	var ft fcsTransmitter
	if h := n.link.Load(); h != nil {
		w, ft = h.l, h.ft
	}
	lazy := ft != nil
	if fcs {
		// A cable takes the FCS lazily (fcsLazy): it is computed only if
		// something reads those bytes (a faulty cable, a receiver that
		// keeps the FCS); any other wire gets it now.
		if !lazy {
			binary.LittleEndian.PutUint32(buf[l:], crc32.ChecksumIEEE(buf[:l]))
		}
		l += 4
	}
	frame := buf[:l]
	q.countSent(frame, l)
	switch {
	case w == nil:
	case lazy:
		// The MAC computes this FCS itself: a wire that delivers the
		// frame unchanged can tell the receiver so, sparing it the CRC
		// over the same bytes (and the sender too, unless someone reads
		// the FCS bytes).
		st := fcsCheck
		if fcs {
			st = fcsLazy
		}
		ft.transmitFCS(frame, st, &q.wt)
	default:
		w.Transmit(frame)
	}
}

// countSent counts a frame of l bytes on the wire (FCS included), frame
// its first bytes, in the queue's statistics (added per burst).
func (q *txQueue) countSent(frame []byte, l int) {
	s := &q.st
	s.pkts++
	s.bytes += uint64(l)
	s.ptc[sizeBucket(l)]++
	if len(frame) >= 6 && frame[0]&1 != 0 {
		if frame[0]&frame[1]&frame[2]&frame[3]&frame[4]&frame[5] == 0xFF {
			s.bptc++
		} else {
			s.mptc++
		}
	}
}

// directOK reports whether a frame of one data descriptor of length bytes
// may go to the wire straight from host memory (sendDirect): sendBuf would
// change nothing in it (no offload, no VLAN insertion, no padding at 60
// bytes or more) but append the FCS, and the wire is a fault-free cable
// that takes a frame without its FCS bytes.
func (q *txQueue) directOK(length int) bool {
	if length < 60 || !q.ifcs || q.offloads() || q.n.h.hlreg0.Load()&regs.HLREG0_TXCRCEN == 0 {
		return false
	}
	h := q.n.link.Load()
	return h != nil && h.direct
}

// sendDirect sends a frame that directOK admitted: src is its data in host
// memory (the FCS follows on the wire, fcsAbsent). What reaches the
// receiver is what sendBuf would send from a copy.
func (q *txQueue) sendDirect(src []byte) {
	h := q.n.link.Load()
	if h == nil || !h.direct {
		// The wire changed since directOK: the frame goes the usual way.
		q.sendBuf(q.frame, copy(q.frame, src), false, 0)
		return
	}
	q.countSent(src, len(src)+4)
	h.ft.transmitFCS(src, fcsAbsent, &q.wt)
}

// flushWriteBacks writes back every pending descriptor: DD in its status
// word, or, with head write-back enabled (TDWBAL bit 0, 7.2.3.5.2), the
// head (the value TDH takes with this step) to the host instead. It
// reports whether anything was written.
func (q *txQueue) flushWriteBacks(head uint32) bool {
	if q.npending == 0 {
		return false
	}
	n := q.n
	wbal := q.tdwbal.Load()
	headWB := wbal&1 != 0
	for k := 0; k < q.npending; k++ {
		i := q.pending[k]
		if q.cancelled[i] {
			continue
		}
		if n.tr != nil {
			n.tr.Record(trace.Event{Kind: trace.DevWriteBack, Dir: trace.TX, Dev: n.dev, Queue: uint16(q.idx), Index: i})
		}
		if headWB {
			continue
		}
		d, ok := n.domain.access(&q.descTC, n.name, q.ring.base+uint64(i)*regs.DescSize, regs.DescSize, DMAWrite, trace.TX, q.idx, "descriptor write-back", n.clock)
		if !ok {
			n.iommuFault(trace.TX, q.idx, i, q.ring.base+uint64(i)*regs.DescSize, "descriptor write-back")
			q.halted = true
			q.npending = 0
			return true
		}
		// Write-back format (7.2.3.2.4): STA in bits 3:0 of the last
		// word, the buffer address left in place.
		st := load32(d, regs.TXD_WB_STATUS)&^0xF | regs.TXD_STAT_DD
		if n.tr != nil {
			n.traceStore(trace.TX, q.idx, i, regs.TXD_WB_STATUS, st)
		}
		store32(d, regs.TXD_WB_STATUS, st)
	}
	if headWB {
		addr := uint64(n.reg(regs.TDWBAH(q.idx)))<<32 | uint64(wbal&^3)
		if m, ok := n.domain.access(&q.dataTC, n.name, addr, 4, DMAWrite, trace.TX, q.idx, "head write-back", n.clock); ok {
			store32(m, 0, head)
		} else {
			n.iommuFault(trace.TX, q.idx, head, addr, "head write-back")
			q.halted = true
		}
	}
	q.npending = 0
	return true
}
