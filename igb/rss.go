package igb

import (
	"github.com/verinic/verinic/advring"
	"github.com/verinic/verinic/igb/regs"
)

// DefaultRSSKey returns the 40-byte Toeplitz key the driver programs into
// RSSRK[0..9] (the engine's: Microsoft's RSS verification key, as ixgbe
// uses).
func DefaultRSSKey() [regs.RSSKeySize]byte { return advring.DefaultRSSKey() }

// rssHashFields are the packet types hashed (MRQC field enables, datasheet
// 8.10.x): IPv4 and IPv6 addresses, plus TCP and UDP ports.
const rssHashFields = regs.MRQC_RSS_FIELD_IPV4 | regs.MRQC_RSS_FIELD_IPV4_TCP | regs.MRQC_RSS_FIELD_IPV4_UDP |
	regs.MRQC_RSS_FIELD_IPV6 | regs.MRQC_RSS_FIELD_IPV6_TCP | regs.MRQC_RSS_FIELD_IPV6_UDP

// RSSQueue returns the RX queue the driver's redirection table sends a
// packet with RSS hash h to (advring.RSSQueue: entry h mod 128, datasheet
// 7.1.1.x, holds queue entry mod rxQueues).
func RSSQueue(hash uint32, rxQueues int) int { return advring.RSSQueue(hash, rxQueues) }

// setupRSS programs receive-side scaling: the key, a redirection table
// spreading its 128 entries round-robin over the RX queues (the 82576
// reads the queue from the entry's low bits; QEMU masks it with 0x0F), and
// MRQC: RSS only, no VMDq.
func (n *NIC) setupRSS() {
	for r, w := range advring.RSSKeyWords() {
		n.dev.Write32(regs.RSSRK(r), w)
	}
	for r, w := range advring.RETAWords(n.cfg.RxQueues) {
		n.dev.Write32(regs.RETA(r), w)
	}
	n.dev.Write32(regs.MRQC, regs.MRQC_ENABLE_RSS|rssHashFields)
}
