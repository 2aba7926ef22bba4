package header

import "encoding/binary"

// Field offsets of an ARP packet for IPv4 over Ethernet (RFC 826):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Hardware Type (1)         |     Protocol Type (0x0800)    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  HLen (6)     |  PLen (4)     |          Operation            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Sender Hardware Address (6 octets)                   |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               | Sender Protocol Address (4)   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|          Target Hardware Address (6 octets)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Target Protocol Address (4)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	arpHTypeOffset = 0
	arpPTypeOffset = 2
	arpHLenOffset  = 4
	arpPLenOffset  = 5
	arpOpOffset    = 6
	arpSHAOffset   = 8
	arpSPAOffset   = 14
	arpTHAOffset   = 18
	arpTPAOffset   = 24
)

// ARP constants (RFC 826; IANA ARP parameters).
const (
	ARPRequest uint16 = 1
	ARPReply   uint16 = 2

	ARPHardwareEthernet uint16 = 1
	// ARPLen is the size of an ARP packet for Ethernet and IPv4.
	ARPLen = 28
)

// ARP is a view of an ARP packet for Ethernet hardware and IPv4 protocol
// addresses (RFC 826), the only kind this stack resolves.
type ARP []byte

// ParseARP checks that b is an Ethernet/IPv4 ARP packet and returns it
// trimmed to 28 bytes. It accepts any operation code; the caller decides
// which it answers.
func ParseARP(b []byte) (ARP, error) {
	if len(b) < ARPLen {
		return nil, ErrARPTruncated
	}
	if binary.BigEndian.Uint16(b[arpHTypeOffset:]) != ARPHardwareEthernet {
		return nil, ErrARPHardwareType
	}
	if binary.BigEndian.Uint16(b[arpPTypeOffset:]) != EtherTypeIPv4 {
		return nil, ErrARPProtocolType
	}
	if b[arpHLenOffset] != 6 || b[arpPLenOffset] != 4 {
		return nil, ErrARPAddressLength
	}
	return ARP(b[:ARPLen]), nil
}

// Op returns the operation code (ARPRequest, ARPReply, …).
func (a ARP) Op() uint16 { return binary.BigEndian.Uint16(a[arpOpOffset:]) }

// SenderMAC returns the sender hardware address.
func (a ARP) SenderMAC() MAC { return MAC(a[arpSHAOffset : arpSHAOffset+6]) }

// SenderIP returns the sender protocol address.
func (a ARP) SenderIP() IPv4Addr { return IPv4Addr(a[arpSPAOffset : arpSPAOffset+4]) }

// TargetMAC returns the target hardware address.
func (a ARP) TargetMAC() MAC { return MAC(a[arpTHAOffset : arpTHAOffset+6]) }

// TargetIP returns the target protocol address.
func (a ARP) TargetIP() IPv4Addr { return IPv4Addr(a[arpTPAOffset : arpTPAOffset+4]) }

// EncodeARP writes an Ethernet/IPv4 ARP packet at the start of b and returns
// 28. In a request tha is ignored by the target; RFC 826 leaves it to the
// sender (zero is customary, RFC 5227 §2.1.1).
func EncodeARP(b []byte, op uint16, sha MAC, spa IPv4Addr, tha MAC, tpa IPv4Addr) int {
	_ = b[ARPLen-1]
	binary.BigEndian.PutUint16(b[arpHTypeOffset:], ARPHardwareEthernet)
	binary.BigEndian.PutUint16(b[arpPTypeOffset:], EtherTypeIPv4)
	b[arpHLenOffset], b[arpPLenOffset] = 6, 4
	binary.BigEndian.PutUint16(b[arpOpOffset:], op)
	copy(b[arpSHAOffset:arpSHAOffset+6], sha[:])
	copy(b[arpSPAOffset:arpSPAOffset+4], spa[:])
	copy(b[arpTHAOffset:arpTHAOffset+6], tha[:])
	copy(b[arpTPAOffset:arpTPAOffset+4], tpa[:])
	return ARPLen
}
