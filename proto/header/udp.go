package header

import (
	"encoding/binary"

	"github.com/verinic/verinic/proto/checksum"
)

// Field offsets of the UDP header (RFC 768):
//
//	 0      7 8     15 16    23 24    31
//	+--------+--------+--------+--------+
//	|     Source      |   Destination   |
//	|      Port       |      Port       |
//	+--------+--------+--------+--------+
//	|                 |                 |
//	|     Length      |    Checksum     |
//	+--------+--------+--------+--------+
const (
	udpSrcPortOffset  = 0
	udpDstPortOffset  = 2
	udpLengthOffset   = 4
	udpChecksumOffset = 6
)

// UDPHeaderLen is the size of the UDP header (RFC 768).
const UDPHeaderLen = 8

// UDP is a view of a UDP datagram, trimmed to its length field.
type UDP []byte

// ParseUDP checks b, the payload of an IPv4 packet from src to dst, as a UDP
// datagram (RFC 768): a length field of at least 8 and at most len(b) (bytes
// beyond it are ignored, as Linux does), and the checksum over the
// pseudo-header, header and data unless the transmitted checksum is 0,
// meaning none was computed. It returns the datagram trimmed to its length.
func ParseUDP(b []byte, src, dst IPv4Addr) (UDP, error) {
	u, err := ParseUDPVerified(b)
	if err != nil {
		return nil, err
	}
	if u.Checksum() != 0 {
		ph := checksum.PseudoHeaderSum(src, dst, IPProtocolUDP, uint16(len(u)))
		if checksum.Sum(u, ph) != 0xffff {
			return nil, ErrUDPChecksum
		}
	}
	return u, nil
}

// ParseUDPVerified is ParseUDP without the checksum, for a datagram whose
// checksum is already known to be good: the 82599 verified it on receive
// (datasheet 7.1.11, RXCSUM; descriptor status L4CS set, error TCPE clear).
func ParseUDPVerified(b []byte) (UDP, error) {
	if len(b) < UDPHeaderLen {
		return nil, ErrUDPTruncated
	}
	n := int(binary.BigEndian.Uint16(b[udpLengthOffset:]))
	if n < UDPHeaderLen || n > len(b) {
		return nil, ErrUDPLength
	}
	return UDP(b[:n]), nil
}

// SrcPort returns the source port.
func (u UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(u[udpSrcPortOffset:]) }

// DstPort returns the destination port.
func (u UDP) DstPort() uint16 { return binary.BigEndian.Uint16(u[udpDstPortOffset:]) }

// Length returns the length field (header plus data).
func (u UDP) Length() uint16 { return binary.BigEndian.Uint16(u[udpLengthOffset:]) }

// Checksum returns the checksum field (0: none was computed).
func (u UDP) Checksum() uint16 { return binary.BigEndian.Uint16(u[udpChecksumOffset:]) }

// Payload returns the data.
func (u UDP) Payload() []byte { return u[UDPHeaderLen:u.Length()] }

// EncodeUDP writes a UDP header at the start of b for the payloadLen bytes
// that follow it in b, with the checksum over the pseudo-header for src and
// dst, and returns 8. A computed checksum of zero is sent as 0xFFFF (RFC 768),
// since zero means "no checksum".
func EncodeUDP(b []byte, srcPort, dstPort uint16, payloadLen int, src, dst IPv4Addr) int {
	n := UDPHeaderLen + payloadLen
	if n > IPv4MaxTotalLen {
		panic("header: EncodeUDP: datagram longer than 65535 bytes")
	}
	_ = b[n-1]
	binary.BigEndian.PutUint16(b[udpSrcPortOffset:], srcPort)
	binary.BigEndian.PutUint16(b[udpDstPortOffset:], dstPort)
	binary.BigEndian.PutUint16(b[udpLengthOffset:], uint16(n))
	b[udpChecksumOffset], b[udpChecksumOffset+1] = 0, 0
	c := checksum.Checksum(b[:n], checksum.PseudoHeaderSum(src, dst, IPProtocolUDP, uint16(n)))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[udpChecksumOffset:], c)
	return UDPHeaderLen
}
