package ixgbesim

import "github.com/verinic/verinic/ixgbe/regs"

// Statistics registers the model counts beyond the MAC's and the queues'
// (datasheet 8.2.3.23; cited from memory, docs/NOTES.md):
//
//   - XEC counts received packets whose IPv4 header or TCP/UDP checksum the
//     receive checksum check found wrong (IPE or TCPE in the write-back).
//   - MLFC counts MAC local faults: the model raises one each time the wire
//     goes down under an up link (the 10G receive path loses the signal).
//   - RNBC[0] counts frames that reached a queue with no free descriptor
//     and, SRRCTL.DROP_EN being clear, wait in the packet buffer (once per
//     frame; with DROP_EN set the frame is dropped and counted in QPRDC).
//   - MRFC (remote fault), PXON/PXOFF per priority (priority flow control
//     is not modelled),
//     RLEC, ILLERRC and ERRBC (length and symbol errors, which the wire
//     model never produces) exist, clear on read and stay 0.

// countXEC counts a received packet with a checksum error in XEC.
func (n *NIC) countXEC(c rxCsum) {
	if c.bits&(regs.RXD_ERR_IPE|regs.RXD_ERR_TCPE) != 0 {
		n.count(regs.XEC, 1)
	}
}

// countRNBC counts frame e in RNBC[0] the first time it finds no free
// descriptor (packet buffer 0: the model has no DCB).
func (n *NIC) countRNBC(e *pbEntry) {
	if !e.noBuf {
		e.noBuf = true
		n.count(regs.RNBC(0), 1)
	}
}
