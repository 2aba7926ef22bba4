package igb

import "github.com/verinic/verinic/igb/regs"

// DefaultRSSKey returns the 40-byte Toeplitz key the driver programs into
// RSSRK[0..9]: Microsoft's RSS verification key, as ixgbe uses, so that
// hashes can be checked against published values.
func DefaultRSSKey() [regs.RSSKeySize]byte { return rssKey }

var rssKey = [regs.RSSKeySize]byte{
	0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2,
	0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
	0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4,
	0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
	0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
}

// rssHashFields are the packet types hashed (MRQC field enables, datasheet
// 8.10.x): IPv4 and IPv6 addresses, plus TCP and UDP ports.
const rssHashFields = regs.MRQC_RSS_FIELD_IPV4 | regs.MRQC_RSS_FIELD_IPV4_TCP | regs.MRQC_RSS_FIELD_IPV4_UDP |
	regs.MRQC_RSS_FIELD_IPV6 | regs.MRQC_RSS_FIELD_IPV6_TCP | regs.MRQC_RSS_FIELD_IPV6_UDP

// RSSQueue returns the RX queue the driver's redirection table sends a
// packet with RSS hash h to: entry h mod 128 (datasheet 7.1.1.x) holds queue
// entry mod rxQueues.
func RSSQueue(hash uint32, rxQueues int) int {
	return int(hash&(regs.RETAEntries-1)) % rxQueues
}

// setupRSS programs receive-side scaling: the key, a redirection table
// spreading its 128 entries round-robin over the RX queues (the queue index
// in the entry's low bits, as Linux's igb writes it for the 82576), and
// MRQC (RSS only, no VMDq).
func (n *NIC) setupRSS() {
	for r := 0; r < regs.RSSKeyRegs; r++ {
		k := rssKey[4*r:]
		n.dev.Write32(regs.RSSRK(r), uint32(k[0])|uint32(k[1])<<8|uint32(k[2])<<16|uint32(k[3])<<24)
	}
	for r := 0; r < regs.RETARegs; r++ {
		var v uint32
		for k := 0; k < 4; k++ {
			v |= uint32((4*r+k)%n.cfg.RxQueues) << (8 * k)
		}
		n.dev.Write32(regs.RETA(r), v)
	}
	n.dev.Write32(regs.MRQC, regs.MRQC_ENABLE_RSS|rssHashFields)
}
