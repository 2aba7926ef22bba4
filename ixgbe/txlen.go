package ixgbe

import (
	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/regs"
)

// Transmit frame length limits.
//
// The 82599 does not support frames shorter than 17 bytes (datasheet
// 7.2.3.2.4, DTALEN; from memory): TxBatch refuses them with ErrBadPacket
// and counts them (QueueStats.TxBadPackets). TXPADEN pads the others to 64.
//
// The longest frame is the configured maximum frame size: 1518 bytes
// without jumbo frames, MAXFRS.MFS with HLREG0.JUMBOEN (datasheet
// 8.2.3.22.13, 8.2.3.22.8), FCS included, so 1514 bytes in the buffer. A
// frame that carries an 802.1Q tag in its bytes may be 4 bytes longer (the
// receiving MAC allows the tag the same way), unless the driver is also
// asked to insert one (TxVLAN). TSO packets are exempt: each segment is
// bounded by the MSS check in offload, and the whole by the 16-bit length.
const minTxFrame = 17

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

// txLenOK is the slow path of TxBatch's length check, for a frame longer
// than maxFrame: TSO packets pass (offload bounds them), and so does a
// frame up to 4 bytes longer that carries its own 802.1Q tag and asks for
// no second one.
func (n *NIC) txLenOK(p *dma.Packet) bool {
	if p.Meta&dma.TxTSO != 0 {
		return true
	}
	if int(p.Len) > n.maxFrame+4 || p.Meta&dma.TxVLAN != 0 {
		return false
	}
	d := p.Data()
	return len(d) >= 14 && d[12] == 0x81 && d[13] == 0x00
}
