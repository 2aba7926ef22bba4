package igb

import (
	"fmt"

	"github.com/verinic/verinic/igb/regs"
)

// Stats are the device's statistics (datasheet 8.19, clear on read, summed
// by the driver since New) and the driver's own per-queue counts.
type Stats struct {
	RxPackets   uint64 `json:"rx_packets"`   // GPRC
	RxBytes     uint64 `json:"rx_bytes"`     // GORC (FCS included)
	TxPackets   uint64 `json:"tx_packets"`   // GPTC
	TxBytes     uint64 `json:"tx_bytes"`     // GOTC (FCS included)
	RxBroadcast uint64 `json:"rx_broadcast"` // BPRC
	RxMulticast uint64 `json:"rx_multicast"` // MPRC
	TxBroadcast uint64 `json:"tx_broadcast"` // BPTC
	TxMulticast uint64 `json:"tx_multicast"` // MPTC
	RxTotal     uint64 `json:"rx_total"`     // TPR: every frame received, good or bad
	TxTotal     uint64 `json:"tx_total"`     // TPT

	RxMissed       uint64 `json:"rx_missed"`        // MPC: packet buffer full
	RxNoBuffers    uint64 `json:"rx_no_buffers"`    // RNBC: no descriptor when a frame came
	RxDropped      uint64 `json:"rx_dropped"`       // sum of RQDPC: dropped by a queue with no descriptor (SRRCTL.DROP_EN)
	RxCRCErrors    uint64 `json:"rx_crc_errors"`    // CRCERRS
	RxErrors       uint64 `json:"rx_errors"`        // RXERRC
	RxAlignErrors  uint64 `json:"rx_align_errors"`  // ALGNERRC
	RxSymbolErrors uint64 `json:"rx_symbol_errors"` // SYMERRS
	RxLengthErrors uint64 `json:"rx_length_errors"` // RLEC
	RxUndersize    uint64 `json:"rx_undersize"`     // RUC
	RxFragments    uint64 `json:"rx_fragments"`     // RFC
	RxOversize     uint64 `json:"rx_oversize"`      // ROC
	RxJabbers      uint64 `json:"rx_jabbers"`       // RJC
	TxTSOContexts  uint64 `json:"tx_tso_contexts"`  // TSCTC
	TxTSOFailures  uint64 `json:"tx_tso_failures"`  // TSCTFC
	RxXon          uint64 `json:"rx_xon"`           // XONRXC
	RxXoff         uint64 `json:"rx_xoff"`          // XOFFRXC
	TxXon          uint64 `json:"tx_xon"`           // XONTXC
	TxXoff         uint64 `json:"tx_xoff"`          // XOFFTXC

	Queues []QueueStats `json:"queues"`
}

// QueueStats are the driver's counts for one queue pair.
type QueueStats struct {
	RxMultiDescDrops uint64 `json:"rx_multi_desc_drops"` // frames spanning descriptors, dropped
	RxErrorDrops     uint64 `json:"rx_error_drops"`      // frames with a MAC error, dropped
	RxAllocFailures  uint64 `json:"rx_alloc_failures"`   // polls cut short by an empty pool
	TxBadPackets     uint64 `json:"tx_bad_packets"`      // packets TxBatch refused
	TxFreeErrors     uint64 `json:"tx_free_errors"`      // sent buffers their pool refused
}

// rawStats accumulates the clear-on-read registers.
type rawStats struct {
	Stats
}

// statRegs maps each 32-bit counter to its field.
func (s *Stats) counters() []struct {
	reg uint32
	p   *uint64
} {
	return []struct {
		reg uint32
		p   *uint64
	}{
		{regs.GPRC, &s.RxPackets}, {regs.GPTC, &s.TxPackets},
		{regs.BPRC, &s.RxBroadcast}, {regs.MPRC, &s.RxMulticast},
		{regs.BPTC, &s.TxBroadcast}, {regs.MPTC, &s.TxMulticast},
		{regs.TPR, &s.RxTotal}, {regs.TPT, &s.TxTotal},
		{regs.MPC, &s.RxMissed}, {regs.RNBC, &s.RxNoBuffers},
		{regs.CRCERRS, &s.RxCRCErrors}, {regs.RXERRC, &s.RxErrors},
		{regs.ALGNERRC, &s.RxAlignErrors}, {regs.SYMERRS, &s.RxSymbolErrors},
		{regs.RLEC, &s.RxLengthErrors}, {regs.RUC, &s.RxUndersize},
		{regs.RFC, &s.RxFragments}, {regs.ROC, &s.RxOversize}, {regs.RJC, &s.RxJabbers},
		{regs.TSCTC, &s.TxTSOContexts}, {regs.TSCTFC, &s.TxTSOFailures},
		{regs.XONRXC, &s.RxXon}, {regs.XOFFRXC, &s.RxXoff},
		{regs.XONTXC, &s.TxXon}, {regs.XOFFTXC, &s.TxXoff},
	}
}

// readHardwareStats adds the counters' values since the last read (n.mu
// held, or during New).
func (n *NIC) readHardwareStats() {
	s := &n.stats.Stats
	for _, c := range s.counters() {
		*c.p += uint64(n.dev.Read32(c.reg))
	}
	// The octet counters are 64 bits: low first, the high read clears both.
	s.RxBytes += uint64(n.dev.Read32(regs.GORCL)) | uint64(n.dev.Read32(regs.GORCH))<<32
	s.TxBytes += uint64(n.dev.Read32(regs.GOTCL)) | uint64(n.dev.Read32(regs.GOTCH))<<32
	for q := 0; q < regs.Queues && q < max(n.cfg.RxQueues, 1); q++ {
		s.RxDropped += uint64(n.dev.Read32(regs.RQDPC(q)))
	}
}

// ReadStats returns the statistics since New: the device's counters and
// the engine's per-queue counts.
func (n *NIC) ReadStats() (Stats, error) {
	n.mu.Lock()
	gone := n.checkGone()
	if !gone {
		n.readHardwareStats()
	}
	st := n.stats.Stats
	n.mu.Unlock()
	if gone {
		return Stats{}, fmt.Errorf("igb: %s: read statistics: %w", n.name, ErrDeviceGone)
	}
	st.Queues = make([]QueueStats, max(len(n.port.Rx), len(n.port.Tx)))
	for i := range st.Queues {
		qs := &st.Queues[i]
		if i < len(n.port.Rx) {
			r := n.port.Rx[i].Stats()
			qs.RxMultiDescDrops, qs.RxErrorDrops, qs.RxAllocFailures = r.MultiDescDrops, r.ErrorDrops, r.AllocFailures
		}
		if i < len(n.port.Tx) {
			t := n.port.Tx[i].Stats()
			qs.TxBadPackets, qs.TxFreeErrors = t.BadPackets, t.FreeErrors
		}
	}
	return st, nil
}

// RxDrops implements link.DropCounter: frames missed for lack of packet
// buffer (MPC), dropped by a queue without descriptors (RQDPC), with a bad
// FCS (CRCERRS), too short (RUC, RFC), too long (ROC, RJC); the 82576 has no
// count of frames its address filters refused (0); and the frames the
// driver dropped.
func (n *NIC) RxDrops() (missed, ringFull, crcErrors, undersize, oversize, filtered, driver uint64) {
	st, err := n.ReadStats()
	if err != nil {
		return
	}
	for _, q := range st.Queues {
		driver += q.RxMultiDescDrops + q.RxErrorDrops
	}
	return st.RxMissed, st.RxDropped, st.RxCRCErrors, st.RxUndersize + st.RxFragments, st.RxOversize + st.RxJabbers, 0, driver
}
