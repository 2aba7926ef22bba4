package ixgbe

import "github.com/verinic/verinic/ixgbe/regs"

// Transmit frame length limits: the engine's checks (advring/txlen.go),
// with the longest frame the 82599's MAC is configured for: 1518 bytes
// without jumbo frames, MAXFRS.MFS with HLREG0.JUMBOEN (datasheet
// 8.2.3.22.13, 8.2.3.22.8), FCS included, so 1514 bytes in the buffer.
// TXPADEN pads short frames to 64.

// maxFrameSize reads the maximum frame size the MAC is configured for, FCS
// excluded.
func (n *NIC) maxFrameSize() int {
	mfs := 1518
	if n.dev.Read32(regs.HLREG0)&regs.HLREG0_JUMBOEN != 0 {
		if v := int(n.dev.Read32(regs.MAXFRS) >> regs.MAXFRS_MFS_SHIFT); v >= 64 {
			mfs = v
		}
	}
	return mfs - 4
}

// MaxFrameSize returns the longest frame TxBatch sends without TSO (FCS
// excluded; 4 bytes more for a frame carrying its own 802.1Q tag).
func (n *NIC) MaxFrameSize() int { return n.maxFrame }
