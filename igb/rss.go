package igb

import (
	"github.com/verinic/verinic/advring"
	"github.com/verinic/verinic/igb/regs"
)

// RSS on the 82576 (datasheet 7.1.1.x, 8.10.x): the engine's key and
// redirection table (advring: Microsoft's verification key; entry i holds
// queue i mod RxQueues in its low bits, which QEMU masks with 0x0F), and
// MRQC with RSS only (no VMDq) over IPv4 and IPv6 with TCP and UDP ports.

// DefaultRSSKey returns the key in RSSRK[0..9].
func DefaultRSSKey() [regs.RSSKeySize]byte { return advring.DefaultRSSKey() }

// RSSQueue returns the RX queue of a packet with RSS hash h.
func RSSQueue(hash uint32, rxQueues int) int { return advring.RSSQueue(hash, rxQueues) }

func (n *NIC) setupRSS() {
	key, reta := advring.RSSKeyWords(), advring.RETAWords(n.cfg.RxQueues)
	for r := range key {
		n.dev.Write32(regs.RSSRK(r), key[r])
	}
	for r := range reta {
		n.dev.Write32(regs.RETA(r), reta[r])
	}
	n.dev.Write32(regs.MRQC, regs.MRQC_ENABLE_RSS|regs.MRQC_RSS_FIELD_IPV4|regs.MRQC_RSS_FIELD_IPV4_TCP|regs.MRQC_RSS_FIELD_IPV4_UDP|
		regs.MRQC_RSS_FIELD_IPV6|regs.MRQC_RSS_FIELD_IPV6_TCP|regs.MRQC_RSS_FIELD_IPV6_UDP)
}
