package header

import "encoding/binary"

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
	if binary.BigEndian.Uint16(b[0:2]) != ARPHardwareEthernet {
		return nil, ErrARPHardwareType
	}
	if binary.BigEndian.Uint16(b[2:4]) != EtherTypeIPv4 {
		return nil, ErrARPProtocolType
	}
	if b[4] != 6 || b[5] != 4 {
		return nil, ErrARPAddressLength
	}
	return ARP(b[:ARPLen]), nil
}

// Op returns the operation code (ARPRequest, ARPReply, …).
func (a ARP) Op() uint16 { return binary.BigEndian.Uint16(a[6:8]) }

// SenderMAC returns the sender hardware address.
func (a ARP) SenderMAC() MAC { return MAC(a[8:14]) }

// SenderIP returns the sender protocol address.
func (a ARP) SenderIP() IPv4Addr { return IPv4Addr(a[14:18]) }

// TargetMAC returns the target hardware address.
func (a ARP) TargetMAC() MAC { return MAC(a[18:24]) }

// TargetIP returns the target protocol address.
func (a ARP) TargetIP() IPv4Addr { return IPv4Addr(a[24:28]) }

// EncodeARP writes an Ethernet/IPv4 ARP packet at the start of b and returns
// 28. In a request tha is ignored by the target; RFC 826 leaves it to the
// sender (zero is customary, RFC 5227 §2.1.1).
func EncodeARP(b []byte, op uint16, sha MAC, spa IPv4Addr, tha MAC, tpa IPv4Addr) int {
	_ = b[ARPLen-1]
	binary.BigEndian.PutUint16(b[0:2], ARPHardwareEthernet)
	binary.BigEndian.PutUint16(b[2:4], EtherTypeIPv4)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:8], op)
	copy(b[8:14], sha[:])
	copy(b[14:18], spa[:])
	copy(b[18:24], tha[:])
	copy(b[24:28], tpa[:])
	return ARPLen
}
