package header

import (
	"encoding/binary"

	"github.com/verinic/verinic/proto/checksum"
)

// Field offsets of the ICMP header (RFC 792); the rest of the header is the
// echo identifier and sequence number, the Parameter Problem pointer, the
// Redirect gateway or, in Destination Unreachable, the next-hop MTU (RFC 1191):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Identifier          |        Sequence Number        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	icmpTypeOffset       = 0
	icmpCodeOffset       = 1
	icmpChecksumOffset   = 2
	icmpRestOffset       = 4
	icmpIdentOffset      = 4 // echo (RFC 792)
	icmpSeqOffset        = 6 // echo (RFC 792)
	icmpNextHopMTUOffset = 6 // Destination Unreachable, code 4 (RFC 1191 §4)
)

// ICMPv4 message types (RFC 792) and codes.
const (
	ICMPv4EchoReply              uint8 = 0
	ICMPv4DestinationUnreachable uint8 = 3
	ICMPv4SourceQuench           uint8 = 4
	ICMPv4Redirect               uint8 = 5
	ICMPv4Echo                   uint8 = 8
	ICMPv4TimeExceeded           uint8 = 11
	ICMPv4ParameterProblem       uint8 = 12
	ICMPv4Timestamp              uint8 = 13
	ICMPv4TimestampReply         uint8 = 14

	// Destination Unreachable codes (RFC 792; RFC 1191 for code 4).
	ICMPv4NetUnreachable      uint8 = 0
	ICMPv4HostUnreachable     uint8 = 1
	ICMPv4ProtocolUnreachable uint8 = 2
	ICMPv4PortUnreachable     uint8 = 3
	ICMPv4FragmentationNeeded uint8 = 4 // "fragmentation needed and DF set"; carries the next-hop MTU
	ICMPv4SourceRouteFailed   uint8 = 5

	// Time Exceeded codes (RFC 792).
	ICMPv4TTLExceeded        uint8 = 0
	ICMPv4ReassemblyExceeded uint8 = 1

	ICMPv4HeaderLen = 8
	// ICMPv4ErrorQuoteLen is how much of the offending datagram beyond its
	// IP header an error message quotes at least (RFC 792: 64 bits).
	ICMPv4ErrorQuoteLen = 8
)

// ICMPv4 is a view of an ICMP message (the whole IP payload).
type ICMPv4 []byte

// ParseICMPv4 checks that b holds at least the 8-byte header and that the
// checksum over the whole message verifies (RFC 792).
func ParseICMPv4(b []byte) (ICMPv4, error) {
	if len(b) < ICMPv4HeaderLen {
		return nil, ErrICMPv4Truncated
	}
	if checksum.Sum(b, 0) != 0xffff {
		return nil, ErrICMPv4Checksum
	}
	return ICMPv4(b), nil
}

// Type returns the message type.
func (m ICMPv4) Type() uint8 { return m[icmpTypeOffset] }

// Code returns the message code.
func (m ICMPv4) Code() uint8 { return m[icmpCodeOffset] }

// Checksum returns the checksum field.
func (m ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(m[icmpChecksumOffset:]) }

// Ident returns the identifier of an echo, echo reply or timestamp message.
func (m ICMPv4) Ident() uint16 { return binary.BigEndian.Uint16(m[icmpIdentOffset:]) }

// Seq returns the sequence number of an echo, echo reply or timestamp message.
func (m ICMPv4) Seq() uint16 { return binary.BigEndian.Uint16(m[icmpSeqOffset:]) }

// NextHopMTU returns the MTU a Fragmentation Needed message reports (RFC 1191
// §4; zero from routers predating it).
func (m ICMPv4) NextHopMTU() uint16 { return binary.BigEndian.Uint16(m[icmpNextHopMTUOffset:]) }

// Pointer returns the octet a Parameter Problem message points at.
func (m ICMPv4) Pointer() uint8 { return m[icmpRestOffset] }

// Gateway returns the address a Redirect message names.
func (m ICMPv4) Gateway() IPv4Addr { return IPv4Addr(m[icmpRestOffset : icmpRestOffset+4]) }

// RestOfHeader returns bytes 4–7, whose meaning depends on the type.
func (m ICMPv4) RestOfHeader() uint32 { return binary.BigEndian.Uint32(m[icmpRestOffset:]) }

// Payload returns the bytes after the 8-byte header: echo data, or for an
// error message the quoted IP header and first 8 payload bytes of the
// datagram that caused it.
func (m ICMPv4) Payload() []byte { return m[ICMPv4HeaderLen:] }

// IsError reports whether the type is an error message, to which no ICMP
// error may be sent in reply (RFC 1122 §3.2.2).
func (m ICMPv4) IsError() bool {
	switch m.Type() {
	case ICMPv4DestinationUnreachable, ICMPv4SourceQuench, ICMPv4Redirect,
		ICMPv4TimeExceeded, ICMPv4ParameterProblem:
		return true
	}
	return false
}

// EncodeICMPv4 writes an ICMP header with the given type, code and rest of
// header (bytes 4–7) at the start of b, computes the checksum over it and the
// payloadLen bytes that follow it in b, and returns 8.
func EncodeICMPv4(b []byte, typ, code uint8, rest uint32, payloadLen int) int {
	_ = b[ICMPv4HeaderLen+payloadLen-1]
	b[icmpTypeOffset], b[icmpCodeOffset], b[icmpChecksumOffset], b[icmpChecksumOffset+1] = typ, code, 0, 0
	binary.BigEndian.PutUint32(b[icmpRestOffset:], rest)
	binary.BigEndian.PutUint16(b[icmpChecksumOffset:], checksum.Checksum(b[:ICMPv4HeaderLen+payloadLen], 0))
	return ICMPv4HeaderLen
}

// EncodeICMPv4Echo writes an echo (ICMPv4Echo) or echo reply
// (ICMPv4EchoReply) header over the payloadLen bytes that follow it in b.
func EncodeICMPv4Echo(b []byte, typ uint8, ident, seq uint16, payloadLen int) int {
	return EncodeICMPv4(b, typ, 0, uint32(ident)<<16|uint32(seq), payloadLen)
}
