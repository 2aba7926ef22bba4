package ixgbe

import (
	"fmt"

	"github.com/verinic/verinic/ixgbe/regs"
)

// Stats are the NIC's counters, accumulated into 64 bits by the driver from
// the device's clear-on-read statistics registers (datasheet 8.2.3.23),
// plus the driver's own counts of what it dropped. Device counters are as
// fresh as the last ReadStats (or Stats) call.
type Stats struct {
	RxPackets uint64 // GPRC: good packets received
	RxBytes   uint64 // GORC: good octets received
	TxPackets uint64 // GPTC: good packets transmitted
	TxBytes   uint64 // GOTC: good octets transmitted

	RxMissed       uint64 // MPC[0..7]: dropped for lack of packet-buffer space
	RxCRCErrors    uint64 // CRCERRS
	RxIllegalBytes uint64 // ILLERRC
	RxErrorBytes   uint64 // ERRBC
	RxLengthErrors uint64 // RLEC
	RxUndersize    uint64 // RUC
	RxFragments    uint64 // RFC
	RxOversize     uint64 // ROC
	RxJabbers      uint64 // RJC
	RxBroadcast    uint64 // BPRC
	RxMulticast    uint64 // MPRC
	TxBroadcast    uint64 // BPTC
	TxMulticast    uint64 // MPTC
	RxTotalPackets uint64 // TPR: all packets received, good or bad
	TxTotalPackets uint64 // TPT
	// RxNonFiltered counts good frames of legal length before the
	// address filters (RXNFGPC, 8.2.3.23: "Good Rx Non-Filtered
	// Packet Counter"); RxFiltered is derived from it: RXNFGPC - GPRC - MPC,
	// the good frames the L2 filters refused (the 82599 has no register
	// of its own for them).
	RxNonFiltered uint64
	RxFiltered    uint64

	// Link flow control (PAUSE frames, datasheet 3.7.7). The device
	// counts the PAUSE frames it sends in TxPackets, TxMulticast and
	// TxBytes (64 bytes each) as well; subtract TxXon+TxXoff for data.
	TxXon  uint64 // LXONTXC: XON frames sent
	TxXoff uint64 // LXOFFTXC: XOFF frames sent
	RxXon  uint64 // LXONRXCNT: XON frames received and acted on
	RxXoff uint64 // LXOFFRXCNT: XOFF frames received and acted on

	// Priority flow control (802.1Qbb) per user priority: sent and
	// received XON/XOFF (PXONTXC, PXOFFTXC, PXONRXCNT, PXOFFRXCNT[0..7]).
	// The driver does not enable PFC, so they stay 0 unless a partner
	// sends priority PAUSE frames.
	TxPXon, TxPXoff, RxPXon, RxPXoff [8]uint64

	// More of the registers Linux's ixgbe_update_stats reads (8.2.3.23).
	RxChecksumErrors uint64 // XEC: received packets with an IP/TCP/UDP checksum error
	RxNoBuffers      uint64 // RNBC[0..7]: frames that found no free descriptor while DROP_EN was clear
	MACLocalFaults   uint64 // MLFC: MAC local faults (10 Gb/s: receive path lost, e.g. signal)
	MACRemoteFaults  uint64 // MRFC: remote faults signalled by the link partner

	// RxDropped is the sum of the queues' RxDrops (QPRDC): frames dropped
	// because their queue had no free descriptor.
	RxDropped uint64

	Queues []QueueStats // one per RX/TX queue index (max of the two counts)
}

// QueueStats are per-queue counters. The device counts queue i in counter
// set i (RQSMR/TQSM are programmed that way at init).
type QueueStats struct {
	RxPackets uint64 // QPRC
	RxBytes   uint64 // QBRC
	RxDrops   uint64 // QPRDC: no free descriptor (SRRCTL.DROP_EN)
	TxPackets uint64 // QPTC
	TxBytes   uint64 // QBTC

	// Counted by the driver:
	RxMultiDescDrops uint64 // frames spanning several descriptors, dropped
	RxErrorDrops     uint64 // frames with a MAC error or impossible length, dropped
	RxAllocFailures  uint64 // polls cut short because the RX pool was empty
	TxBadPackets     uint64 // packets TxBatch refused (ErrBadPacket)
	TxFreeErrors     uint64 // sent buffers their pool refused back (double free)
}

// rawStats is one reading of the statistics registers, or (NIC.stats,
// guarded by NIC.mu) their 64-bit accumulation.
type rawStats struct {
	total  Stats
	queues [MaxQueues]QueueStats
}

// readHardwareStats reads every statistics register once; they clear on
// read, so at init this is the statistics reset of datasheet 4.6.5.
func (n *NIC) readHardwareStats() *rawStats {
	rd := n.dev.Read32
	rd64 := func(lo, hi uint32) uint64 {
		// The low register is read first; reading the high one clears
		// the pair (8.2.3.23).
		l := rd(lo)
		return uint64(l) | uint64(rd(hi)&0xFFFF_FFFF)<<32
	}
	raw := &rawStats{}
	s := &raw.total
	s.RxCRCErrors = uint64(rd(regs.CRCERRS))
	s.RxIllegalBytes = uint64(rd(regs.ILLERRC))
	s.RxErrorBytes = uint64(rd(regs.ERRBC))
	s.RxLengthErrors = uint64(rd(regs.RLEC))
	s.RxPackets = uint64(rd(regs.GPRC))
	s.RxBroadcast = uint64(rd(regs.BPRC))
	s.RxMulticast = uint64(rd(regs.MPRC))
	s.TxPackets = uint64(rd(regs.GPTC))
	s.RxBytes = rd64(regs.GORCL, regs.GORCH)
	s.TxBytes = rd64(regs.GOTCL, regs.GOTCH)
	s.RxUndersize = uint64(rd(regs.RUC))
	s.RxFragments = uint64(rd(regs.RFC))
	s.RxOversize = uint64(rd(regs.ROC))
	s.RxJabbers = uint64(rd(regs.RJC))
	s.RxTotalPackets = uint64(rd(regs.TPR))
	s.RxNonFiltered = uint64(rd(regs.RXNFGPC))
	s.TxTotalPackets = uint64(rd(regs.TPT))
	s.TxMulticast = uint64(rd(regs.MPTC))
	s.TxBroadcast = uint64(rd(regs.BPTC))
	s.TxXon = uint64(rd(regs.LXONTXC))
	s.TxXoff = uint64(rd(regs.LXOFFTXC))
	s.RxXon = uint64(rd(regs.LXONRXCNT))
	s.RxXoff = uint64(rd(regs.LXOFFRXCNT))
	for i := 0; i < 8; i++ {
		s.RxMissed += uint64(rd(regs.MPC(i)))
		s.RxNoBuffers += uint64(rd(regs.RNBC(i)))
		s.TxPXon[i] = uint64(rd(regs.PXONTXC(i)))
		s.TxPXoff[i] = uint64(rd(regs.PXOFFTXC(i)))
		s.RxPXon[i] = uint64(rd(regs.PXONRXCNT(i)))
		s.RxPXoff[i] = uint64(rd(regs.PXOFFRXCNT(i)))
	}
	s.RxChecksumErrors = uint64(rd(regs.XEC))
	s.MACLocalFaults = uint64(rd(regs.MLFC))
	s.MACRemoteFaults = uint64(rd(regs.MRFC))
	queues := max(len(n.port.Rx), len(n.port.Tx))
	qs := &raw.queues
	for i := 0; i < queues; i++ {
		qs[i].RxPackets = uint64(rd(regs.QPRC(i)))
		qs[i].RxDrops = uint64(rd(regs.QPRDC(i)))
		qs[i].RxBytes = rd64(regs.QBRC_L(i), regs.QBRC_H(i))
		qs[i].TxPackets = uint64(rd(regs.QPTC(i)))
		qs[i].TxBytes = rd64(regs.QBTC_L(i), regs.QBTC_H(i))
	}
	return raw
}

// accumulate adds a reading to the 64-bit totals.
func (n *NIC) accumulate(raw *rawStats) {
	s, qs := &raw.total, &raw.queues
	queues := max(len(n.port.Rx), len(n.port.Tx))
	t := &n.stats.total
	t.RxPackets += s.RxPackets
	t.RxBytes += s.RxBytes
	t.TxPackets += s.TxPackets
	t.TxBytes += s.TxBytes
	t.RxMissed += s.RxMissed
	t.RxCRCErrors += s.RxCRCErrors
	t.RxIllegalBytes += s.RxIllegalBytes
	t.RxErrorBytes += s.RxErrorBytes
	t.RxLengthErrors += s.RxLengthErrors
	t.RxUndersize += s.RxUndersize
	t.RxFragments += s.RxFragments
	t.RxOversize += s.RxOversize
	t.RxJabbers += s.RxJabbers
	t.RxBroadcast += s.RxBroadcast
	t.RxMulticast += s.RxMulticast
	t.TxBroadcast += s.TxBroadcast
	t.TxMulticast += s.TxMulticast
	t.RxTotalPackets += s.RxTotalPackets
	t.RxNonFiltered += s.RxNonFiltered
	t.TxTotalPackets += s.TxTotalPackets
	t.TxXon += s.TxXon
	t.TxXoff += s.TxXoff
	t.RxXon += s.RxXon
	t.RxXoff += s.RxXoff
	for i := 0; i < 8; i++ {
		t.TxPXon[i] += s.TxPXon[i]
		t.TxPXoff[i] += s.TxPXoff[i]
		t.RxPXon[i] += s.RxPXon[i]
		t.RxPXoff[i] += s.RxPXoff[i]
	}
	t.RxChecksumErrors += s.RxChecksumErrors
	t.RxNoBuffers += s.RxNoBuffers
	t.MACLocalFaults += s.MACLocalFaults
	t.MACRemoteFaults += s.MACRemoteFaults
	for i := 0; i < queues; i++ {
		q := &n.stats.queues[i]
		q.RxPackets += qs[i].RxPackets
		q.RxDrops += qs[i].RxDrops
		q.RxBytes += qs[i].RxBytes
		q.TxPackets += qs[i].TxPackets
		q.TxBytes += qs[i].TxBytes
	}
}

// ReadStats reads the device's clear-on-read statistics registers, adds
// them to the 64-bit totals, and returns the totals together with the
// driver's own counters. It fails with ErrDeviceGone when the device no
// longer answers (the totals returned are then the last ones read).
func (n *NIC) ReadStats() (Stats, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var err error
	switch {
	case n.is(stateClosed):
		err = ErrClosed
	case n.checkGone():
		err = fmt.Errorf("ixgbe: %s: read statistics: %w", n.name, ErrDeviceGone)
	default:
		raw := n.readHardwareStats()
		// A device removed while the registers were read returns all ones
		// from them: check again before adding the reading.
		if n.checkGone() {
			err = fmt.Errorf("ixgbe: %s: read statistics: %w", n.name, ErrDeviceGone)
		} else {
			n.accumulate(raw)
		}
	}
	return n.snapshotLocked(), err
}

// Stats is ReadStats without the error: on a device that is gone or a
// closed NIC it returns the last totals.
func (n *NIC) Stats() Stats {
	s, _ := n.ReadStats()
	return s
}

func (n *NIC) snapshotLocked() Stats {
	s := n.stats.total
	queues := max(len(n.port.Rx), len(n.port.Tx))
	s.Queues = make([]QueueStats, queues)
	copy(s.Queues, n.stats.queues[:queues])
	s.RxDropped = 0
	for i := range s.Queues {
		s.RxDropped += s.Queues[i].RxDrops
	}
	if passed := s.RxPackets + s.RxMissed; s.RxNonFiltered > passed {
		s.RxFiltered = s.RxNonFiltered - passed
	}
	for i, q := range n.port.Rx {
		rs := q.Stats()
		s.Queues[i].RxMultiDescDrops, s.Queues[i].RxErrorDrops, s.Queues[i].RxAllocFailures = rs.MultiDescDrops, rs.ErrorDrops, rs.AllocFailures
	}
	for i, q := range n.port.Tx {
		ts := q.Stats()
		s.Queues[i].TxBadPackets, s.Queues[i].TxFreeErrors = ts.BadPackets, ts.FreeErrors
	}
	return s
}

// RxDrops returns the received frames dropped before the driver handed
// them up, as totals (it reads the statistics registers, as Stats does):
// missed for packet-buffer space (MPC), dropped for a full ring (QPRDC),
// bad FCS (CRCERRS), undersize (RUC+RFC), oversize (ROC+RJC), refused by the
// address filters (RxFiltered), and dropped by the driver (MAC errors,
// frames spanning descriptors). It satisfies the stack's link.DropCounter.
func (n *NIC) RxDrops() (missed, ringFull, crcErrors, undersize, oversize, filtered, driver uint64) {
	s := n.Stats()
	for _, q := range s.Queues {
		driver += q.RxErrorDrops + q.RxMultiDescDrops
	}
	return s.RxMissed, s.RxDropped, s.RxCRCErrors, s.RxUndersize + s.RxFragments, s.RxOversize + s.RxJabbers, s.RxFiltered, driver
}
