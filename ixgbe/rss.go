package ixgbe

import (
	"github.com/verinic/verinic/advring"
	"github.com/verinic/verinic/ixgbe/regs"
)

// DefaultRSSKey returns the 40-byte Toeplitz key the driver programs into
// RSSRK[0..9] (the engine's, advring.DefaultRSSKey: the key of Microsoft's
// RSS verification suite, which most drivers use, so that hashes can be
// checked against published values).
func DefaultRSSKey() [regs.RSSKeySize]byte { return advring.DefaultRSSKey() }

// rssHashFields are the packet types hashed (MRQC field enables,
// datasheet 8.2.3.7.12): IPv4 and IPv6 addresses, plus TCP and UDP ports.
const rssHashFields = regs.MRQC_RSS_FIELD_IPV4 | regs.MRQC_RSS_FIELD_IPV4_TCP | regs.MRQC_RSS_FIELD_IPV4_UDP |
	regs.MRQC_RSS_FIELD_IPV6 | regs.MRQC_RSS_FIELD_IPV6_TCP | regs.MRQC_RSS_FIELD_IPV6_UDP

// RSSQueue returns the RX queue the driver's redirection table sends a
// packet with RSS hash h to: RETA entry h mod 128 (the 7 low bits,
// datasheet 7.1.2.8.1) holds queue entry mod RxQueues (advring.RSSQueue).
func RSSQueue(hash uint32, rxQueues int) int { return advring.RSSQueue(hash, rxQueues) }

// setupRSS programs receive-side scaling (datasheet 7.1.2.8): the key, a
// redirection table spreading its 128 entries round-robin over the RX
// queues (advring's tables), and MRQC (RSS only, no DCB or
// virtualization).
func (n *NIC) setupRSS() {
	for r, w := range advring.RSSKeyWords() {
		n.dev.Write32(regs.RSSRK(r), w)
	}
	for r, w := range advring.RETAWords(n.cfg.RxQueues) {
		n.dev.Write32(regs.RETA(r), w)
	}
	mrqc := n.dev.Read32(regs.MRQC)
	mrqc = mrqc&^(regs.MRQC_MRQE_MASK|0xFFFF0000) | regs.MRQC_RSSEN | rssHashFields
	n.dev.Write32(regs.MRQC, mrqc)
}
