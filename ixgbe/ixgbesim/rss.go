package ixgbesim

import (
	"encoding/binary"

	"github.com/verinic/verinic/ixgbe/regs"
)

// RSS types written back in the receive descriptor (datasheet 7.1.6.2).
const (
	RSSTypeNone    = 0x0
	RSSTypeTCPIPv4 = 0x1
	RSSTypeIPv4    = 0x2
	RSSTypeTCPIPv6 = 0x3
	RSSTypeIPv6    = 0x5
	RSSTypeUDPIPv4 = 0x7
	RSSTypeUDPIPv6 = 0x8
)

// Packet type bits of the advanced receive write-back (7.1.6.2), as the
// value of bits 16:4 of its first word.
const (
	PtypeIPv4 = 1 << 0
	PtypeIPv6 = 1 << 2
	PtypeTCP  = 1 << 4
	PtypeUDP  = 1 << 5
)

// Toeplitz computes the Toeplitz hash of data under key (datasheet
// 7.1.2.8.1; Microsoft's RSS specification): for every set bit of the
// input, in order from the most significant bit of the first byte, the 32
// key bits starting at that bit position are XORed into the result. The key
// must be at least len(data)+4 bytes long; missing key bytes count as zero.
func Toeplitz(key, data []byte) uint32 {
	var result uint32
	// window holds key bits [i, i+32) for the current input bit i.
	var window uint32
	for k := 0; k < 4; k++ {
		window = window<<8 | uint32(keyByte(key, k))
	}
	for i, b := range data {
		next := keyByte(key, i+4)
		for bit := 7; bit >= 0; bit-- {
			if b&(1<<bit) != 0 {
				result ^= window
			}
			window = window<<1 | uint32(next>>bit&1)
		}
	}
	return result
}

func keyByte(key []byte, i int) byte {
	if i < len(key) {
		return key[i]
	}
	return 0
}

// l3Start returns where the network header of frame (at least 14 bytes,
// Ethernet header first) begins and its ether type, after at most one
// 802.1Q tag (the checksum and RSS parsers recognise 0x8100 only).
func l3Start(frame []byte) (l3 int, etype uint16) {
	off := 12
	etype = binary.BigEndian.Uint16(frame[off:])
	if etype == 0x8100 && len(frame) >= 18 {
		off += 4
		etype = binary.BigEndian.Uint16(frame[off:])
	}
	return off + 2, etype
}

// rssTuple extracts the RSS hash input of a frame (Ethernet header first,
// FCS absent or ignored) as the datasheet defines it (7.1.2.8.2): source
// address, destination address, then source and destination port for TCP
// and UDP when the MRQC field for that type is enabled. It returns the
// number of bytes written to buf (at least 36), the RSS type and the packet
// type bits; n = 0 means the frame is not hashed.
func rssTuple(frame []byte, mrqc uint32, buf *[36]byte) (n int, rssType uint8, ptype uint16) {
	if len(frame) < 14 {
		return 0, RSSTypeNone, 0
	}
	l3, etype := l3Start(frame)
	switch etype {
	case 0x0800:
		if len(frame) < l3+20 || frame[l3]>>4 != 4 {
			return 0, RSSTypeNone, 0
		}
		ptype = PtypeIPv4
		ihl := int(frame[l3]&0xF) * 4
		if ihl < 20 || len(frame) < l3+ihl {
			return 0, RSSTypeNone, ptype
		}
		proto := frame[l3+9]
		frag := binary.BigEndian.Uint16(frame[l3+6:]) & 0x3FFF // MF or offset: no L4 header to hash
		copy(buf[0:8], frame[l3+12:l3+20])
		l4 := l3 + ihl
		if frag == 0 && len(frame) >= l4+4 {
			switch {
			case proto == 6:
				ptype |= PtypeTCP
				if mrqc&regs.MRQC_RSS_FIELD_IPV4_TCP != 0 {
					copy(buf[8:12], frame[l4:l4+4])
					return 12, RSSTypeTCPIPv4, ptype
				}
			case proto == 17:
				ptype |= PtypeUDP
				if mrqc&regs.MRQC_RSS_FIELD_IPV4_UDP != 0 {
					copy(buf[8:12], frame[l4:l4+4])
					return 12, RSSTypeUDPIPv4, ptype
				}
			}
		}
		if mrqc&regs.MRQC_RSS_FIELD_IPV4 != 0 {
			return 8, RSSTypeIPv4, ptype
		}
		return 0, RSSTypeNone, ptype
	case 0x86DD:
		if len(frame) < l3+40 || frame[l3]>>4 != 6 {
			return 0, RSSTypeNone, 0
		}
		ptype = PtypeIPv6
		next := frame[l3+6]
		copy(buf[0:32], frame[l3+8:l3+40])
		l4 := l3 + 40
		if len(frame) >= l4+4 {
			switch {
			case next == 6:
				ptype |= PtypeTCP
				if mrqc&regs.MRQC_RSS_FIELD_IPV6_TCP != 0 {
					copy(buf[32:36], frame[l4:l4+4])
					return 36, RSSTypeTCPIPv6, ptype
				}
			case next == 17:
				ptype |= PtypeUDP
				if mrqc&regs.MRQC_RSS_FIELD_IPV6_UDP != 0 {
					copy(buf[32:36], frame[l4:l4+4])
					return 36, RSSTypeUDPIPv6, ptype
				}
			}
		}
		if mrqc&regs.MRQC_RSS_FIELD_IPV6 != 0 {
			return 32, RSSTypeIPv6, ptype
		}
		return 0, RSSTypeNone, ptype
	}
	return 0, RSSTypeNone, 0
}

// RSSHash returns the RSS hash the 82599 computes for frame (starting at
// the Ethernet header) under key and the MRQC field-enable bits, with the
// RSS type it reports; ok is false when the frame is not hashed (its hash
// is then 0).
func RSSHash(key []byte, frame []byte, mrqc uint32) (hash uint32, rssType uint8, ok bool) {
	var buf [36]byte
	n, t, _ := rssTuple(frame, mrqc, &buf)
	if n == 0 {
		return 0, RSSTypeNone, false
	}
	return Toeplitz(key, buf[:n]), t, true
}

// RSSKey returns the key programmed in RSSRK[0..9] (byte 0 in bits 7:0 of
// RSSRK[0], 8.2.3.7.14).
func (n *NIC) RSSKey() [regs.RSSKeySize]byte {
	var key [regs.RSSKeySize]byte
	for i := 0; i < regs.RSSKeySize/4; i++ {
		binary.LittleEndian.PutUint32(key[4*i:], n.reg(regs.RSSRK(i)))
	}
	return key
}

// classify chooses the receive queue of a frame: with MRQC.MRQE = RSS, the
// 7 low bits of the hash index the 128-entry redirection table (7.1.2.8.3);
// frames that are not hashed use hash 0. Without RSS everything goes to
// queue 0.
func (n *NIC) classify(frame []byte) (queue int, hash uint32, rssType uint8, ptype uint16) {
	mrqc := n.h.mrqc.Load()
	var buf [36]byte
	k, t, pt := rssTuple(frame, mrqc, &buf)
	if mrqc&regs.MRQC_MRQE_MASK != regs.MRQC_RSSEN {
		return 0, 0, RSSTypeNone, pt
	}
	if k > 0 {
		key := n.RSSKey()
		hash = Toeplitz(key[:], buf[:k])
	} else {
		t = RSSTypeNone
	}
	return n.retaQueue(hash), hash, t, pt
}

func (n *NIC) retaQueue(hash uint32) int {
	e := int(hash & (regs.RETAEntries - 1))
	return int(n.reg(regs.RETA(e/4))>>(8*(e%4))) & 0xF
}

// RSSQueue predicts the receive queue the NIC's current RSS configuration
// (MRQC, RSSRK, RETA) selects for frame.
func (n *NIC) RSSQueue(frame []byte) int {
	q, _, _, _ := n.classify(frame)
	return q
}
