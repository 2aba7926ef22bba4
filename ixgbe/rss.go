package ixgbe

import "github.com/verinic/verinic/ixgbe/regs"

// DefaultRSSKey returns the 40-byte Toeplitz key the driver programs into
// RSSRK[0..9]: the key of Microsoft's RSS verification suite, which most
// drivers use, so that hashes can be checked against published values.
func DefaultRSSKey() [regs.RSSKeySize]byte { return rssKey }

var rssKey = [regs.RSSKeySize]byte{
	0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2,
	0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
	0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4,
	0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
	0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
}

// rssHashFields are the packet types hashed (MRQC field enables,
// datasheet 8.2.3.7.12): IPv4 and IPv6 addresses, plus TCP and UDP ports.
const rssHashFields = regs.MRQC_RSS_FIELD_IPV4 | regs.MRQC_RSS_FIELD_IPV4_TCP | regs.MRQC_RSS_FIELD_IPV4_UDP |
	regs.MRQC_RSS_FIELD_IPV6 | regs.MRQC_RSS_FIELD_IPV6_TCP | regs.MRQC_RSS_FIELD_IPV6_UDP

// RSSQueue returns the RX queue the driver's redirection table sends a
// packet with RSS hash h to: RETA entry h mod 128 (the 7 low bits,
// datasheet 7.1.2.8.1) holds queue entry mod RxQueues.
func RSSQueue(hash uint32, rxQueues int) int {
	return int(hash&(regs.RETAEntries-1)) % rxQueues
}

// setupRSS programs receive-side scaling (datasheet 7.1.2.8): the key, a
// redirection table spreading its 128 entries round-robin over the RX
// queues, and MRQC (RSS only, no DCB or virtualization).
func (n *NIC) setupRSS() {
	for r := 0; r < regs.RSSKeySize/4; r++ {
		k := rssKey[4*r:]
		n.dev.Write32(regs.RSSRK(r), uint32(k[0])|uint32(k[1])<<8|uint32(k[2])<<16|uint32(k[3])<<24)
	}
	for r := 0; r < regs.RETAEntries/4; r++ {
		var v uint32
		for k := 0; k < 4; k++ {
			v |= uint32((4*r+k)%n.cfg.RxQueues) << (8 * k)
		}
		n.dev.Write32(regs.RETA(r), v)
	}
	mrqc := n.dev.Read32(regs.MRQC)
	mrqc = mrqc&^(regs.MRQC_MRQE_MASK|0xFFFF0000) | regs.MRQC_RSSEN | rssHashFields
	n.dev.Write32(regs.MRQC, mrqc)
}
