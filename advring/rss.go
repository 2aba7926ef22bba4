package advring

// Receive-side scaling as both families do it (82599 datasheet 7.1.2.8,
// 82576 7.1.1.x): a 40-byte Toeplitz key in RSSRK[0..9] and a 128-entry
// redirection table, whose entry hash mod 128 names the queue.
const (
	RSSKeySize  = 40
	RETAEntries = 128
)

// DefaultRSSKey returns the key both drivers program: the key of
// Microsoft's RSS verification suite, which most drivers use, so that
// hashes can be checked against published values.
func DefaultRSSKey() [RSSKeySize]byte { return rssKey }

var rssKey = [RSSKeySize]byte{
	0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2,
	0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
	0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4,
	0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
	0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
}

// RSSQueue returns the RX queue a packet with RSS hash h goes to when the
// redirection table holds queue i mod rxQueues in entry i (both drivers
// fill it so): entry h mod 128, the hash's 7 low bits.
func RSSQueue(hash uint32, rxQueues int) int {
	return int(hash&(RETAEntries-1)) % rxQueues
}

// RSSKeyWords returns the key as the RSSRK register values: key byte 4r+k
// in bits 8k+7:8k of register r.
func RSSKeyWords() [RSSKeySize / 4]uint32 {
	var w [RSSKeySize / 4]uint32
	for r := range w {
		k := rssKey[4*r:]
		w[r] = uint32(k[0]) | uint32(k[1])<<8 | uint32(k[2])<<16 | uint32(k[3])<<24
	}
	return w
}

// RETAWords returns the redirection table as the RETA register values for
// rxQueues queues: entry i holds queue i mod rxQueues, four 8-bit entries
// per register, entry 4r+k in bits 8k+7:8k of register r (the queue index
// in the entry's low bits, as Linux's ixgbe and igb write it).
func RETAWords(rxQueues int) [RETAEntries / 4]uint32 {
	var w [RETAEntries / 4]uint32
	for r := range w {
		for k := 0; k < 4; k++ {
			w[r] |= uint32((4*r+k)%rxQueues) << (8 * k)
		}
	}
	return w
}
