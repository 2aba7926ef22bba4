package advring

import "github.com/verinic/verinic/dma"

// Transmit frame length limits.
//
// The 82599 does not support frames shorter than 17 bytes (datasheet
// 7.2.3.2.4, DTALEN; from memory): TxBatch refuses them with ErrBadPacket
// and counts them (TxStats.BadPackets). The MAC pads the others to 64 (the
// family enables padding: 82599 HLREG0.TXPADEN, 82576 TCTL.PSP).
//
// The longest frame is the configured maximum frame size, which the family
// reads from its MAC (TxConfig.MaxFrame, FCS excluded: 1514 bytes without
// jumbo frames). A frame that carries an 802.1Q tag in its bytes may be 4
// bytes longer (the receiving MAC allows the tag the same way), unless the
// engine is also asked to insert one (TxVLAN). TSO packets are exempt: each
// segment is bounded by the MSS check in offload, and the whole by the
// 16-bit length.
const MinTxFrame = 17

// lenOK is the slow path of TxBatch's length check, for a frame longer
// than maxFrame: TSO packets pass (offload bounds them), and so does a
// frame up to 4 bytes longer that carries its own 802.1Q tag and asks for
// no second one.
func (q *TxQueue) lenOK(p *dma.Packet) bool {
	if p.Meta&dma.TxTSO != 0 {
		return true
	}
	if int(p.Len) > q.maxFrame+4 || p.Meta&dma.TxVLAN != 0 {
		return false
	}
	d := p.Data()
	return len(d) >= 14 && d[12] == 0x81 && d[13] == 0x00
}
