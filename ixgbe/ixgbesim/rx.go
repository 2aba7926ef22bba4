package ixgbesim

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync/atomic"

	"github.com/verinic/verinic/ixgbe/regs"
	"github.com/verinic/verinic/trace"
)

// rxQueue is one receive queue's DMA engine state.
type rxQueue struct {
	queueBase
	rdt, srrctl *atomic.Uint32 // the queue's RDT and SRRCTL cells (NIC.initHot)
	// head is RDH during a burst of the engine (under mu): read when the
	// burst takes the queue, stored back once when it lets go (endBurst),
	// instead of an atomic store per descriptor; si is the burst's
	// statistics set, written the frames written back in it.
	head    uint32
	si      int
	written int
	pend    rxPend // a split write-back's second store, held back (schedule.go)
}

// beginBurst, with q.mu held, starts a burst of the engine on the queue:
// its head and its statistics counter set (RQSMR, 8.2.3.8.11) are read
// once.
func (q *rxQueue) beginBurst() {
	q.head = q.n.reg(regs.RDH(q.idx))
	q.si = q.n.statIndex(regs.RQSMR, q.idx)
	q.written = 0
}

// endBurst, with q.mu held, publishes the head the burst reached and raises
// the queue's interrupt cause once if frames were written back (7.3.4).
func (q *rxQueue) endBurst() {
	if c := q.n.cell(regs.RDH(q.idx)); c.Load() != q.head {
		c.Store(q.head)
	}
	if q.written > 0 {
		q.n.raiseQueueInterrupt(q.idx, 0)
	}
}

// Receive delivers a frame from the wire (FCS included) to the MAC: it is
// checked (FCS, size), filtered (RAL/RAH, FCTRL, MTA), classified (RSS) and
// copied into the receive packet buffer, from which the RX DMA engine of its
// queue moves it to host memory. It returns false when the frame is not
// accepted: link down, receiver off, bad, filtered out, or the packet
// buffer full (counted in MPC). The frame is not kept.
func (n *NIC) Receive(frame []byte) bool { return n.receive(frame, fcsCheck, true) }

// receive is Receive; fcs says what is known of the frame's FCS: good (a
// simulated MAC computed it and the wire changed nothing), so the check
// need not compute it again, or lazy (not computed yet: computed here only
// if the MAC stores it). With doorbell false the caller rings the RX
// doorbell (rxDoorbell) itself once for a burst of frames.
func (n *NIC) receive(frame []byte, fcs fcsState, doorbell bool) bool {
	if n.removed.Load() || n.closed.Load() || !n.macLinkUp.Load() {
		return false
	}
	// The receive path runs with RXCTRL.RXEN set and the security block's
	// receive side not disabled (SECRXCTRL.RX_DIS, as in the 4.6.7 sequence TinyNF follows).
	if n.h.rxctrl.Load()&regs.RXCTRL_RXEN == 0 || n.h.secrxctrl.Load()&regs.SECRXCTRL_RX_DIS != 0 {
		return false
	}
	l := len(frame)
	if fcs == fcsAbsent {
		l += 4 // the FCS follows on the wire (cable.go)
	}
	// TPR/TOR count every frame the MAC sees (8.2.3.23.26, .28): with the
	// other per-frame counters under the packet buffer's lock on the way
	// in (seen), atomically on the rare ways out (reject).
	if l < 18 {
		n.rxReject(l, false, regs.RFC) // not even a header and an FCS
		return false
	}
	fcsOK := fcs != fcsCheck || crc32.ChecksumIEEE(frame[:l-4]) == binary.LittleEndian.Uint32(frame[l-4:])
	hl := n.h.hlreg0.Load()
	maxLen := 1518
	if frame[12] == 0x81 && frame[13] == 0x00 {
		maxLen += 4 // 802.1Q tag
	}
	if hl&regs.HLREG0_JUMBOEN != 0 {
		maxLen = int(n.reg(regs.MAXFRS) >> regs.MAXFRS_MFS_SHIFT)
	}
	if maxLen > maxFrame {
		maxLen = maxFrame
	}
	// Size checks (8.2.3.23: RUC/RFC undersize with good/bad CRC, ROC/RJC
	// oversize with good/bad CRC); CRCERRS counts frames of legal size.
	switch {
	case l < 64 && fcsOK:
		n.rxReject(l, false, regs.RUC)
		return false
	case l < 64:
		n.rxReject(l, false, regs.RFC)
		return false
	case l > maxLen && fcsOK:
		n.rxReject(l, false, regs.ROC)
		return false
	case l > maxLen:
		n.rxReject(l, false, regs.RJC)
		return false
	case !fcsOK:
		n.rxReject(l, false, regs.CRCERRS)
		return false
	}
	if isMACControl(frame) {
		// MAC control frames (PAUSE) are the MAC's own (3.7.7.1); they
		// reach the host only with MFLCN.PMCF.
		pass, acted := n.receiveMACControl(frame)
		if !pass {
			n.rxReject(l, false, 0)
			return acted
		}
	}
	// RXNFGPC counts good frames of legal length whatever the filters
	// decide (8.2.3.23: "Good Rx Non-Filtered Packet Counter").
	bcast, mcast, ok := n.l2Filter(frame)
	if !ok {
		n.rxReject(l, true, 0)
		return false
	}
	vlnctrl := n.h.vlnctrl.Load()
	tagged := uint32(frame[12])<<8|uint32(frame[13]) == vlnctrl&regs.VLNCTRL_VET_MASK
	var tci uint16
	if tagged {
		tci = uint16(frame[14])<<8 | uint16(frame[15])
		if !n.vlanFilter(vlnctrl, tci) {
			n.rxReject(l, true, 0)
			return false
		}
	}
	stored := frame
	var fcsBytes [4]byte
	var fcsTail []byte
	switch {
	case hl&regs.HLREG0_RXCRCSTRP != 0:
		// The MAC strips the FCS (8.2.3.22.8); RDRXCTL.CRCSTRIP must be
		// programmed to match (8.2.3.8.8).
		stored = frame[:l-4]
	case fcs == fcsLazy:
		fillFCS(frame) // the FCS goes to host memory
	case fcs == fcsAbsent:
		// The frame is the sender's host memory: the FCS goes to the
		// packet buffer after it.
		binary.LittleEndian.PutUint32(fcsBytes[:], crc32.ChecksumIEEE(frame))
		fcsTail = fcsBytes[:]
	}
	var e pbEntry
	q, hash, rssType, ptype := n.classify(stored)
	e.queue, e.hash, e.rssType, e.ptype = uint16(q), hash, rssType, ptype
	e.csum = rxChecksum(stored, n.h.rxcsum.Load())
	n.countXEC(e.csum) // XEC (stats.go)
	head, rest := stored, []byte(nil)
	if tagged {
		// VP: the frame's ether type matched VLNCTRL.VET; with
		// RXDCTL.VME of its queue the MAC strips the tag and the
		// write-back carries it (7.1.6.2, 8.2.3.8.9).
		e.vp = true
		if n.reg(regs.RXDCTL(q))&regs.RXDCTL_VME != 0 {
			e.vlan = tci
			head, rest = stored[:12], stored[16:]
		}
	}
	pbCap := int(n.h.rxpbsize0.Load() & 0x000FFC00)
	p := &n.pb
	p.mu.Lock()
	ok = p.push2(head, rest, fcsTail, pbCap, e)
	used := p.used
	st := &p.st
	st.dirty = true
	st.tpr++
	st.tor += uint64(l)
	st.rxnfgpc++
	if ok {
		// Good packets (8.2.3.23.18-.20): GPRC, GORC (DA through CRC),
		// by size.
		st.gprc++
		st.gorc += uint64(l)
		st.prc[sizeBucket(l)]++
		switch {
		case bcast:
			st.bprc++
		case mcast:
			st.mprc++
		}
	}
	p.mu.Unlock()
	n.fcFill(used, !isMACControl(frame)) // XOFF at FCRTH (3.7.7.2)
	if !ok {
		n.count(regs.MPC(0), 1) // missed: packet buffer full (8.2.3.23.4)
		return false
	}
	if doorbell {
		n.rxDoorbell()
	}
	return true
}

// rxReject counts a frame of l bytes the MAC did not keep: TPR and TOR,
// RXNFGPC if it was a good frame of legal length (filtered), and the error
// counter reg if not 0.
func (n *NIC) rxReject(l int, good bool, reg uint32) {
	n.count(regs.TPR, 1)
	n.count64(pairTOR, uint64(l))
	if good {
		n.count(regs.RXNFGPC, 1)
	}
	if reg != 0 {
		n.count(reg, 1)
	}
}

// The size-bucket counters (datasheet 8.2.3.23): PRC64..PRC1522 for
// received frames, PTC64..PTC1522 for transmitted ones, each bucket up to
// the given length, FCS included.
var (
	sizeBucketMax = [...]int{64, 127, 255, 511, 1023}
	prcRegs       = [...]uint32{regs.PRC64, regs.PRC127, regs.PRC255, regs.PRC511, regs.PRC1023, regs.PRC1522}
	ptcRegs       = [...]uint32{regs.PTC64, regs.PTC127, regs.PTC255, regs.PTC511, regs.PTC1023, regs.PTC1522}
)

// sizeBucket returns the index of a frame of l bytes in prcRegs/ptcRegs.
func sizeBucket(l int) int {
	for i, m := range sizeBucketMax {
		if l <= m {
			return i
		}
	}
	return len(sizeBucketMax)
}

// l2Filter applies the destination-address filters (datasheet 7.1.1.1):
// broadcast with FCTRL.BAM; multicast with FCTRL.MPE or an MTA hit; unicast
// with FCTRL.UPE or a valid RAL/RAH match.
func (n *NIC) l2Filter(frame []byte) (bcast, mcast, ok bool) {
	fctrl := n.h.fctrl.Load()
	da := frame[:6]
	if da[0]&1 != 0 {
		if da[0] == 0xFF && da[1] == 0xFF && da[2] == 0xFF && da[3] == 0xFF && da[4] == 0xFF && da[5] == 0xFF {
			return true, false, fctrl&regs.FCTRL_BAM != 0
		}
		if fctrl&regs.FCTRL_MPE != 0 {
			return false, true, true
		}
		return false, true, n.mtaHit(da)
	}
	if fctrl&regs.FCTRL_UPE != 0 {
		return false, false, true
	}
	lo := uint32(da[0]) | uint32(da[1])<<8 | uint32(da[2])<<16 | uint32(da[3])<<24
	hi := uint32(da[4]) | uint32(da[5])<<8
	for i := 0; i < 128; i++ {
		rah := n.reg(regs.RAH(i))
		if rah&regs.RAH_AV != 0 && rah&0xFFFF == hi && n.reg(regs.RAL(i)) == lo {
			return false, false, true
		}
	}
	return false, false, false
}

// vlanFilter applies the VLAN filters to a tagged frame with tag tci
// (7.1.1.2, 8.2.3.7.2): with VLNCTRL.VFE, its VLAN ID must be admitted by
// the VFTA (8.2.3.7.15) and, with CFIEN, its CFI bit must equal
// VLNCTRL.CFI.
func (n *NIC) vlanFilter(vlnctrl uint32, tci uint16) bool {
	if vlnctrl&regs.VLNCTRL_VFE == 0 {
		return true
	}
	if vlnctrl&regs.VLNCTRL_CFIEN != 0 && (tci>>12&1 != 0) != (vlnctrl&regs.VLNCTRL_CFI != 0) {
		return false
	}
	vid := int(tci & 0xFFF)
	return n.reg(regs.VFTA(vid>>5))&(1<<(vid&31)) != 0
}

// mtaHit looks a multicast address up in the Multicast Table Array
// (8.2.3.7.7): MCSTCTRL.MO selects 12 bits of the address.
func (n *NIC) mtaHit(da []byte) bool {
	mc := n.reg(regs.MCSTCTRL)
	if mc&regs.MCSTCTRL_MFE == 0 {
		return false
	}
	v := uint32(da[4]) | uint32(da[5])<<8
	var h uint32
	switch mc & regs.MCSTCTRL_MO_MASK {
	case 0:
		h = v >> 4 // bits 47:36
	case 1:
		h = v >> 3 // bits 46:35
	case 2:
		h = v >> 2 // bits 45:34
	default:
		h = v // bits 43:32
	}
	h &= 0xFFF
	return n.reg(regs.MTA(int(h>>5)))&(1<<(h&31)) != 0
}

// statIndex returns the statistics counter set (0..15) queue q maps to
// through RQSMR or TQSM (8.2.3.8.11, 8.2.3.9.14).
func (n *NIC) statIndex(mapReg func(int) uint32, q int) int {
	return int(n.reg(mapReg(q/4))>>(8*(q%4))) & 0xF
}

// ---- queue control ----

func (n *NIC) writeRXDCTL(q int, c *atomic.Uint32, v uint32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c.Store(v &^ regs.RXDCTL_ENABLE)
	rq := &n.rxq[q]
	on := v&regs.RXDCTL_ENABLE != 0
	if on == rq.enabled.Load() {
		return
	}
	if !on {
		rq.disable(false)
		return
	}
	rq.enable()
}

// enable starts the queue with the ring registers as programmed (7.1.9).
func (q *rxQueue) enable() {
	n := q.n
	q.mu.Lock()
	defer q.mu.Unlock()
	head, tail, ok := q.setupRing()
	if !ok {
		return
	}
	if (n.reg(regs.HLREG0)&regs.HLREG0_RXCRCSTRP != 0) != (n.reg(regs.RDRXCTL)&regs.RDRXCTL_CRCSTRIP != 0) {
		n.violate(Violation{Kind: ConfigMismatch, Dir: trace.RX, Queue: q.idx,
			Detail: "HLREG0.RXCRCSTRP and RDRXCTL.CRCSTRIP differ (8.2.3.8.8: they must be equal); the MAC follows HLREG0"})
	}
	q.run(head, tail)
}

func checkRing(length, head, tail uint32) error {
	size := length / regs.DescSize
	switch {
	case length == 0 || length%128 != 0:
		return fmt.Errorf("ring length %d bytes is not a positive multiple of 128", length)
	case size > 1<<16:
		return fmt.Errorf("ring of %d descriptors exceeds the 16-bit head and tail", size)
	case head >= size || tail >= size:
		return fmt.Errorf("head %d or tail %d outside a ring of %d descriptors", head, tail, size)
	}
	return nil
}

// rxBufOfWords: the packet buffer address of an advanced (or legacy)
// receive descriptor in read format whose first word is lo; bit 0 is
// ignored (7.1.6.1).
func rxBufOfWords(lo uint64) (uint64, bool) { return lo &^ 1, true }

// disable stops the queue. On reset, the queue's registers are reset by
// the caller.
func (q *rxQueue) disable(reset bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.enabled.Store(false)
	q.halted = false
	q.pend = rxPend{}
	q.ring.reset()
}

func (q *rxQueue) writeTail(c *atomic.Uint32, v uint32) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, _, ok := q.moveTailLocked(c, v); ok {
		c.Store(v & 0xFFFF)
	}
}

// ---- RX DMA engine ----

// stepRx moves the frame at the front of the packet buffer into host
// memory if it is for queue only (or any queue when only < 0). It reports
// whether anything happened (a frame written or dropped).
func (n *NIC) stepRx(only int) bool { return n.stepRxN(only, 1) > 0 }

// stepRxN moves up to budget frames from the front of the packet buffer
// into host memory (for queue only, or any queue when only < 0) and returns
// how many it moved or dropped. The packet buffer's lock is held across the
// burst, and a queue's lock across consecutive frames for that queue. While
// the receive side is in XOFF, the burst ends after each frame so that the
// flow-control check (fcDrain, 3.7.7.2) runs with no lock held, as it may
// send an XON on the wire.
func (n *NIC) stepRxN(only, budget int) int {
	done := 0
	for done < budget {
		k, used, xoff := n.stepRxLocked(only, budget-done)
		done += k
		if k == 0 {
			break
		}
		if xoff {
			n.fcDrain(used) // XON below FCRTL (3.7.7.2)
		}
	}
	return done
}

// stepRxLocked is a burst of stepRxN under the packet buffer's lock. It
// returns the frames moved, the buffer's fill afterwards, and whether the
// burst stopped for an XOFF state.
func (n *NIC) stepRxLocked(only, budget int) (done, used int, xoff bool) {
	if n.removed.Load() || n.stalled.Load() || n.closed.Load() {
		return 0, 0, false
	}
	n.pb.mu.Lock()
	defer n.pb.mu.Unlock()
	if n.sched.pendRx != nil && n.completeRxPend() {
		return 1, n.pb.used, false // a split write-back's second store
	}
	var held *rxQueue
	defer func() {
		if held != nil {
			held.endBurst()
			held.mu.Unlock()
		}
	}()
	for done < budget {
		e, ok := n.pb.front()
		if !ok || (only >= 0 && int(e.queue) != only) {
			break
		}
		q := &n.rxq[e.queue]
		if q != held {
			if held != nil {
				held.endBurst()
				held.mu.Unlock()
			}
			q.mu.Lock()
			q.beginBurst()
			held = q
		}
		if !q.enabled.Load() || q.halted {
			// Frames for a stopped queue are dropped (7.1.9).
			n.dropRx(q, e, q.head)
		} else if !q.dmaFrame(e) {
			break // waiting in the packet buffer for descriptors
		}
		done++
		if n.sched.pendRx != nil {
			break // its second store is the next step (schedule.go)
		}
		if n.fc.inXOFF.Load() {
			return done, n.pb.used, true
		}
	}
	return done, n.pb.used, false
}

func (n *NIC) dropRx(q *rxQueue, e *pbEntry, head uint32) {
	if n.tr != nil {
		n.tr.Record(trace.Event{Kind: trace.DevDrop, Dir: trace.RX, Dev: n.dev, Queue: uint16(q.idx), Index: head, Len: uint32(e.length)})
	}
	st := &n.pb.st // pb.mu is held
	st.dirty = true
	st.qprdc[n.statIndex(regs.RQSMR, q.idx)]++
	n.pb.pop()
}

// dmaFrame writes frame e through as many descriptors as it needs,
// starting at RDH: data first, then the write-back with DD (and EOP on the
// last), then the head (7.1.6, 7.1.9). Called with pb.mu and q.mu held.
func (q *rxQueue) dmaFrame(e *pbEntry) bool {
	n := q.n
	size := q.ring.size
	head := q.head
	tail := q.rdt.Load()
	if !q.tailSeen || tail != q.lastTail {
		q.lastTail, q.tailSeen = tail, true
		if n.tr != nil {
			n.tr.Record(trace.Event{Kind: trace.DevTailRead, Dir: trace.RX, Dev: n.dev, Queue: uint16(q.idx), Index: tail})
		}
	}
	srrctl := q.srrctl.Load()
	bufSize := int(srrctl&regs.SRRCTL_BSIZEPACKET_MASK) << 10
	if bufSize == 0 {
		bufSize = 2048 // BSIZEPACKET 0 is reserved; the model uses the reset value
	}
	legacy := srrctl&regs.SRRCTL_DESCTYPE_MASK == regs.SRRCTL_DESCTYPE_LEGACY
	rxcsum := n.h.rxcsum.Load()
	need := uint32(1)
	if e.length > bufSize {
		need = uint32((e.length + bufSize - 1) / bufSize)
	}
	avail := tail - head // descriptors the device owns (7.1.9), without a division
	if tail < head {
		avail += size
	}
	if avail < need {
		if srrctl&regs.SRRCTL_DROP_EN != 0 || need >= size {
			// No free descriptor: drop and count (8.2.3.8.7 DROP_EN,
			// 8.2.3.23.14 QPRDC).
			n.dropRx(q, e, head)
			return true
		}
		n.countRNBC(e) // once per frame (stats.go)
		return false   // wait in the packet buffer
	}
	for off, k := 0, uint32(0); k < need; k++ {
		idx := head // advanced below, once per descriptor
		d, ok := n.domain.access(&q.descTC, n.name, q.ring.base+uint64(idx)*regs.DescSize, regs.DescSize, DMARead, trace.RX, q.idx, "descriptor", n.clock)
		if !ok {
			n.iommuFault(trace.RX, q.idx, idx, q.ring.base+uint64(idx)*regs.DescSize, "descriptor")
			q.fault(e)
			return true
		}
		buf := le64desc(q.ring.view(idx, d)) &^ 1
		if n.tr != nil {
			n.tr.Record(trace.Event{Kind: trace.DevFetch, Dir: trace.RX, Dev: n.dev, Queue: uint16(q.idx), Index: idx, Buf: buf, Len: uint32(bufSize)})
		}
		q.owner.fetched(idx, d)
		chunk := min(bufSize, e.length-off)
		dst, ok := n.domain.access(&q.dataTC, n.name, buf, chunk, DMAWrite, trace.RX, q.idx, "packet data", n.clock)
		if !ok {
			n.iommuFault(trace.RX, q.idx, idx, buf, "packet data")
			q.fault(e)
			return true
		}
		n.pb.copyOut(dst, e, off)
		off += chunk
		if n.tr != nil {
			n.tr.Record(trace.Event{Kind: trace.DevDMA, Dir: trace.RX, Dev: n.dev, Queue: uint16(q.idx), Index: idx, Buf: buf, Len: uint32(chunk)})
		}
		status := uint32(regs.RXD_STAT_DD)
		if k == need-1 {
			// Checksum status and errors are reported in the last
			// descriptor of a frame (7.1.6.2), with EOP.
			status |= regs.RXD_STAT_EOP | e.csum.bits
			if e.vp {
				status |= regs.RXD_STAT_VP
			}
		}
		if n.tr != nil {
			n.tr.Record(trace.Event{Kind: trace.DevWriteBack, Dir: trace.RX, Dev: n.dev, Queue: uint16(q.idx), Index: idx, Buf: buf, Len: uint32(chunk)})
		}
		if n.tr != nil || n.sched.on {
			// Traced or under a schedule (schedule.go): the same stores,
			// each recorded first, in the schedule's order and time.
			q.writeBack(d, idx, legacy, k == need-1, uint32(e.rssType)|uint32(e.ptype)<<4, rxDword1(rxcsum, e), uint32(chunk), status, e.vlan)
		} else if legacy {
			// Legacy write-back (7.1.5): length at bytes 8-9, status at
			// byte 12, errors at 13, VLAN at 14-15.
			storePlain32(d, 8, uint32(chunk))
			store32(d, 12, legacyStatus(status)|uint32(e.vlan)<<16)
		} else {
			// Advanced write-back (7.1.6.2): the status word is stored
			// last, so DD publishes the rest.
			storePlain32(d, regs.RXD_WB_PKT_INFO, uint32(e.rssType)|uint32(e.ptype)<<4)
			storePlain32(d, regs.RXD_WB_RSS, rxDword1(rxcsum, e))
			storePlain32(d, regs.RXD_WB_LENGTH, uint32(chunk)|uint32(e.vlan)<<16)
			store32(d, regs.RXD_WB_STATUS_ERROR, status)
		}
		if head = idx + 1; head == size {
			head = 0
		}
		if n.tr != nil {
			n.tr.Record(trace.Event{Kind: trace.DevHead, Dir: trace.RX, Dev: n.dev, Queue: uint16(q.idx), Index: head})
		}
		q.head = head
	}
	st := &n.pb.st // pb.mu is held
	st.dirty = true
	st.qprc[q.si]++
	st.qbrc[q.si] += uint64(e.length)
	q.written++ // the interrupt is raised once per burst (endBurst)
	n.pb.pop()
	return true
}

// fault stops the queue after an IOMMU fault (as a DMAR fault stops the
// function's DMA); the frame is lost.
func (q *rxQueue) fault(e *pbEntry) {
	q.halted = true
	q.n.dropRx(q, e, q.head)
}

func le64desc(d []byte) uint64 { return load64(d, 0) }

// raiseQueueInterrupt sets the EICR bit of the vector IVAR assigns to
// queue q's RX (dir 0) or TX (dir 1) cause, if the entry is valid
// (8.2.3.5.16, 7.3.4).
func (n *NIC) raiseQueueInterrupt(q int, dir int) {
	ivar := n.reg(regs.IVAR(q >> 1))
	entry := ivar >> (16*(q&1) + 8*dir) & 0xFF
	if entry&regs.IVAR_ALLOC_VAL != 0 {
		n.raise(1 << (entry & 0xF))
	}
}

// PacketBufferLen returns the frames and bytes waiting in the receive
// packet buffer.
func (n *NIC) PacketBufferLen() (frames, bytes int) { return n.pb.len() }
