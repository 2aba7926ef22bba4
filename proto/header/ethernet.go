package header

import "encoding/binary"

// Field offsets of an Ethernet II header (IEEE 802.3 clause 3.2) and of an
// 802.1Q-tagged one (IEEE 802.1Q clause 9.3), whose tag sits where the
// EtherType was:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Destination MAC (6 octets)                   |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                     Source MAC (6 octets)                     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  EtherType (or TPID 0x8100)   |    802.1Q TCI (PCP|DEI|VID)   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  EtherType after the tag      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ethDstOffset      = 0
	ethSrcOffset      = 6
	ethTypeOffset     = 12
	ethVLANTCIOffset  = 14
	ethVLANTypeOffset = 16
)

// EtherType values (IEEE 802.3 clause 3.2.6; IANA registry) and header sizes.
const (
	EtherTypeIPv4 uint16 = 0x0800
	EtherTypeARP  uint16 = 0x0806
	EtherTypeVLAN uint16 = 0x8100 // IEEE 802.1Q customer VLAN tag (TPID)
	EtherTypeIPv6 uint16 = 0x86DD

	// EtherTypeMinimum is the smallest EtherType: smaller values in the
	// type/length field are an IEEE 802.3 length (clause 3.2.6).
	EtherTypeMinimum uint16 = 0x0600

	EthernetHeaderLen     = 14 // destination, source, type
	EthernetVLANHeaderLen = 18 // with one 802.1Q tag
	EthernetFCSLen        = 4  // frame check sequence, CRC-32
	EthernetMinFrameLen   = 60 // minimum frame without FCS (IEEE 802.3 clause 4.4.2)
	EthernetMaxFrameLen   = 1514
)

// Ethernet is a view of an Ethernet II frame (without FCS), optionally
// carrying one IEEE 802.1Q tag.
type Ethernet []byte

// ParseEthernet checks that b holds a whole Ethernet header (with its tag,
// when the outer type is 802.1Q) and returns it as a view. It does not check
// the 60-byte minimum: a receiver hands frames up with the padding included,
// and test frames are often shorter.
func ParseEthernet(b []byte) (Ethernet, error) {
	if len(b) < EthernetHeaderLen {
		return nil, ErrEthernetTruncated
	}
	if binary.BigEndian.Uint16(b[ethTypeOffset:]) == EtherTypeVLAN && len(b) < EthernetVLANHeaderLen {
		return nil, ErrEthernetVLANTruncated
	}
	return Ethernet(b), nil
}

// Dst returns the destination address.
func (e Ethernet) Dst() MAC { return MAC(e[ethDstOffset : ethDstOffset+6]) }

// Src returns the source address.
func (e Ethernet) Src() MAC { return MAC(e[ethSrcOffset : ethSrcOffset+6]) }

func (e Ethernet) tagged() bool { return binary.BigEndian.Uint16(e[ethTypeOffset:]) == EtherTypeVLAN }

// EtherType returns the type of the payload: the inner type when the frame
// carries an 802.1Q tag. Values below EtherTypeMinimum are 802.3 lengths.
func (e Ethernet) EtherType() uint16 {
	if e.tagged() {
		return binary.BigEndian.Uint16(e[ethVLANTypeOffset:])
	}
	return binary.BigEndian.Uint16(e[ethTypeOffset:])
}

// VLAN returns the 802.1Q tag control information (PCP:3, DEI:1, VID:12) and
// whether the frame is tagged.
func (e Ethernet) VLAN() (tci uint16, ok bool) {
	if !e.tagged() {
		return 0, false
	}
	return binary.BigEndian.Uint16(e[ethVLANTCIOffset:]), true
}

// HeaderLen returns 14, or 18 for a tagged frame.
func (e Ethernet) HeaderLen() int {
	if e.tagged() {
		return EthernetVLANHeaderLen
	}
	return EthernetHeaderLen
}

// Payload returns the bytes after the header (padding included).
func (e Ethernet) Payload() []byte { return e[e.HeaderLen():] }

// SetDst and SetSrc rewrite the addresses in place.
func (e Ethernet) SetDst(m MAC) { copy(e[ethDstOffset:ethDstOffset+6], m[:]) }

// SetSrc rewrites the source address in place.
func (e Ethernet) SetSrc(m MAC) { copy(e[ethSrcOffset:ethSrcOffset+6], m[:]) }

// EncodeEthernet writes an untagged header at the start of b and returns 14.
func EncodeEthernet(b []byte, dst, src MAC, etherType uint16) int {
	_ = b[EthernetHeaderLen-1]
	copy(b[ethDstOffset:ethDstOffset+6], dst[:])
	copy(b[ethSrcOffset:ethSrcOffset+6], src[:])
	binary.BigEndian.PutUint16(b[ethTypeOffset:], etherType)
	return EthernetHeaderLen
}

// EncodeEthernetVLAN writes a header with one 802.1Q tag (tci: PCP, DEI and
// VID) at the start of b and returns 18.
func EncodeEthernetVLAN(b []byte, dst, src MAC, tci uint16, etherType uint16) int {
	_ = b[EthernetVLANHeaderLen-1]
	copy(b[ethDstOffset:ethDstOffset+6], dst[:])
	copy(b[ethSrcOffset:ethSrcOffset+6], src[:])
	binary.BigEndian.PutUint16(b[ethTypeOffset:], EtherTypeVLAN)
	binary.BigEndian.PutUint16(b[ethVLANTCIOffset:], tci)
	binary.BigEndian.PutUint16(b[ethVLANTypeOffset:], etherType)
	return EthernetVLANHeaderLen
}
