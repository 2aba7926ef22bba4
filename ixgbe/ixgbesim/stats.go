package ixgbesim

import "github.com/verinic/verinic/ixgbe/regs"

// Statistics registers the model counts beyond the MAC's and the queues'
// (datasheet 8.2.3.23; cited from memory, docs/NOTES.md):
//
//   - XEC counts received packets whose IPv4 header or TCP/UDP checksum the
//     receive checksum check found wrong (IPE or TCPE in the write-back).
//   - MLFC counts MAC local faults: the model raises one each time the wire
//     goes down under an up link (the 10G receive path loses the signal).
//   - MRFC (remote fault), RNBC (no receive buffers with DROP_EN clear),
//     PXON/PXOFF per priority (priority flow control is not modelled),
//     RLEC, ILLERRC and ERRBC (length and symbol errors, which the wire
//     model never produces) exist, clear on read and stay 0.

// countXEC counts a received packet with a checksum error in XEC.
func (n *NIC) countXEC(c rxCsum) {
	if c.bits&(regs.RXD_ERR_IPE|regs.RXD_ERR_TCPE) != 0 {
		n.count(regs.XEC, 1)
	}
}
