package header

import (
	"encoding/binary"

	"github.com/verinic/verinic/proto/checksum"
)

// Field offsets of the IPv4 header (RFC 791 §3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ipv4VersionIHLOffset = 0
	ipv4TOSOffset        = 1
	ipv4TotalLenOffset   = 2
	ipv4IDOffset         = 4
	ipv4FlagsFragOffset  = 6
	ipv4TTLOffset        = 8
	ipv4ProtocolOffset   = 9
	ipv4ChecksumOffset   = 10
	ipv4SrcOffset        = 12
	ipv4DstOffset        = 16
)

// IPv4 constants (RFC 791; IANA protocol numbers).
const (
	IPv4MinHeaderLen = 20
	IPv4MaxHeaderLen = 60
	IPv4MaxTotalLen  = 65535

	// Flags, as the 3-bit field at the top of the fragment word.
	IPv4FlagMoreFragments uint8 = 1 << 0
	IPv4FlagDontFragment  uint8 = 1 << 1
	IPv4FlagReserved      uint8 = 1 << 2 // must be zero (RFC 791)

	IPProtocolICMP uint8 = 1
	IPProtocolTCP  uint8 = 6
	IPProtocolUDP  uint8 = 17

	// IPv4 option types (RFC 791 §3.1).
	IPv4OptionEOL uint8 = 0
	IPv4OptionNOP uint8 = 1

	// DefaultTTL is RFC 1700's recommended TTL for new datagrams.
	DefaultTTL uint8 = 64
)

// IPv4 is a view of an IPv4 packet: header, options and payload, trimmed to
// the total length.
type IPv4 []byte

// ParseIPv4 checks b as an IPv4 packet (RFC 791; RFC 1122 §3.2.1.1–2):
// version 4, header length at least 20 and within the packet, total length
// at least the header and at most len(b), a valid header checksum, option
// syntax, and a fragment offset plus total length within 65535 bytes (so
// that reassembly cannot overflow). It returns the packet trimmed to its
// total length, so that link padding is dropped.
func ParseIPv4(b []byte) (IPv4, error) { return parseIPv4(b, true) }

// ParseIPv4Verified is ParseIPv4 for a packet whose header checksum is
// already known to be good: the 82599 verified it on receive (datasheet
// 7.1.11, RXCSUM.IPPCSE; descriptor status IPCS set, error IPE clear).
func ParseIPv4Verified(b []byte) (IPv4, error) { return parseIPv4(b, false) }

func parseIPv4(b []byte, verify bool) (IPv4, error) {
	if len(b) < IPv4MinHeaderLen {
		return nil, ErrIPv4Truncated
	}
	// Fast path: version 4, no options, not a fragment (or the first, at
	// offset 0, which cannot overflow), a total length within the data.
	tl := int(binary.BigEndian.Uint16(b[ipv4TotalLenOffset:]))
	if b[ipv4VersionIHLOffset] == 0x45 && tl >= IPv4MinHeaderLen && tl <= len(b) && b[ipv4FlagsFragOffset]&0x1f == 0 && b[ipv4FlagsFragOffset+1] == 0 {
		if verify && checksum.Sum(b[:IPv4MinHeaderLen], 0) != 0xffff {
			return nil, ErrIPv4Checksum
		}
		return IPv4(b[:tl]), nil
	}
	return parseIPv4Slow(b, verify)
}

// parseIPv4Slow checks each condition in turn, to report which one fails.
func parseIPv4Slow(b []byte, verify bool) (IPv4, error) {
	if b[ipv4VersionIHLOffset]>>4 != 4 {
		return nil, ErrIPv4Version
	}
	hl := int(b[ipv4VersionIHLOffset]&0xf) * 4
	if hl < IPv4MinHeaderLen {
		return nil, ErrIPv4HeaderLength
	}
	if hl > len(b) {
		return nil, ErrIPv4HeaderTruncated
	}
	tl := int(binary.BigEndian.Uint16(b[ipv4TotalLenOffset:]))
	if tl < hl {
		return nil, ErrIPv4TotalLength
	}
	if tl > len(b) {
		return nil, ErrIPv4TotalTruncated
	}
	if verify && checksum.Sum(b[:hl], 0) != 0xffff {
		return nil, ErrIPv4Checksum
	}
	if hl > IPv4MinHeaderLen && !validIPv4Options(b[IPv4MinHeaderLen:hl]) {
		return nil, ErrIPv4Options
	}
	if int(binary.BigEndian.Uint16(b[ipv4FlagsFragOffset:])&0x1fff)*8+tl > IPv4MaxTotalLen {
		return nil, ErrIPv4FragmentTooBig
	}
	return IPv4(b[:tl]), nil
}

// validIPv4Options checks the type-length-value syntax of RFC 791 §3.1:
// End of Option List ends the list (what follows is padding), No Operation
// is one byte, and every other option has a length octet of at least 2 that
// stays within the header.
func validIPv4Options(o []byte) bool {
	for len(o) > 0 {
		switch o[0] {
		case IPv4OptionEOL:
			return true
		case IPv4OptionNOP:
			o = o[1:]
			continue
		}
		if len(o) < 2 || o[1] < 2 || int(o[1]) > len(o) {
			return false
		}
		o = o[o[1]:]
	}
	return true
}

// Version returns the version field (4 for a parsed packet).
func (ip IPv4) Version() uint8 { return ip[ipv4VersionIHLOffset] >> 4 }

// HeaderLen returns the header length in bytes, options included.
func (ip IPv4) HeaderLen() int { return int(ip[ipv4VersionIHLOffset]&0xf) * 4 }

// TOS returns the type-of-service octet (DSCP and ECN, RFC 2474 / 3168).
func (ip IPv4) TOS() uint8 { return ip[ipv4TOSOffset] }

// TotalLen returns the total length field.
func (ip IPv4) TotalLen() uint16 { return binary.BigEndian.Uint16(ip[ipv4TotalLenOffset:]) }

// ID returns the identification field.
func (ip IPv4) ID() uint16 { return binary.BigEndian.Uint16(ip[ipv4IDOffset:]) }

// Flags returns the 3-bit flags field (IPv4Flag…).
func (ip IPv4) Flags() uint8 { return ip[ipv4FlagsFragOffset] >> 5 }

// DontFragment reports the DF flag.
func (ip IPv4) DontFragment() bool { return ip[ipv4FlagsFragOffset]&0x40 != 0 }

// MoreFragments reports the MF flag.
func (ip IPv4) MoreFragments() bool { return ip[ipv4FlagsFragOffset]&0x20 != 0 }

// FragmentOffset returns the fragment offset in bytes (the field × 8).
func (ip IPv4) FragmentOffset() int {
	return int(binary.BigEndian.Uint16(ip[ipv4FlagsFragOffset:])&0x1fff) * 8
}

// IsFragment reports whether the packet is one fragment of a larger datagram.
func (ip IPv4) IsFragment() bool { return ip.MoreFragments() || ip.FragmentOffset() != 0 }

// TTL returns the time to live.
func (ip IPv4) TTL() uint8 { return ip[ipv4TTLOffset] }

// Protocol returns the payload's protocol number (IPProtocol…).
func (ip IPv4) Protocol() uint8 { return ip[ipv4ProtocolOffset] }

// Checksum returns the header checksum field.
func (ip IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(ip[ipv4ChecksumOffset:]) }

// Src returns the source address.
func (ip IPv4) Src() IPv4Addr { return IPv4Addr(ip[ipv4SrcOffset : ipv4SrcOffset+4]) }

// Dst returns the destination address.
func (ip IPv4) Dst() IPv4Addr { return IPv4Addr(ip[ipv4DstOffset : ipv4DstOffset+4]) }

// Options returns the option bytes (padding included).
func (ip IPv4) Options() []byte { return ip[IPv4MinHeaderLen:ip.HeaderLen()] }

// Payload returns the bytes after the header, up to the total length.
func (ip IPv4) Payload() []byte { return ip[ip.HeaderLen():ip.TotalLen()] }

// PseudoHeaderSum returns the sum of the pseudo-header that a UDP or TCP
// checksum in this packet covers, for a transport length of n bytes.
func (ip IPv4) PseudoHeaderSum(n int) uint16 {
	return checksum.PseudoHeaderSum(ip.Src(), ip.Dst(), ip.Protocol(), uint16(n))
}

// ChecksumValid reports whether the header checksum verifies.
func (ip IPv4) ChecksumValid() bool { return checksum.Sum(ip[:ip.HeaderLen()], 0) == 0xffff }

// update16 rewrites the 16-bit word at even offset off and patches the
// header checksum incrementally (RFC 1624 eqn. 3).
func (ip IPv4) update16(off int, v uint16) {
	old := binary.BigEndian.Uint16(ip[off : off+2])
	binary.BigEndian.PutUint16(ip[off:off+2], v)
	binary.BigEndian.PutUint16(ip[ipv4ChecksumOffset:], checksum.Update16(ip.Checksum(), old, v))
}

// SetTTL rewrites the TTL and updates the checksum incrementally (RFC 1624),
// as a router decrementing TTL does (RFC 1812 §5.3.1).
func (ip IPv4) SetTTL(ttl uint8) {
	ip.update16(ipv4TTLOffset, uint16(ttl)<<8|uint16(ip[ipv4ProtocolOffset]))
}

// SetTOS rewrites the type-of-service octet, updating the checksum.
func (ip IPv4) SetTOS(tos uint8) {
	ip.update16(ipv4VersionIHLOffset, uint16(ip[ipv4VersionIHLOffset])<<8|uint16(tos))
}

// SetID rewrites the identification, updating the checksum.
func (ip IPv4) SetID(id uint16) { ip.update16(ipv4IDOffset, id) }

// SetTotalLen rewrites the total length, updating the checksum. The caller
// keeps the slice's length consistent.
func (ip IPv4) SetTotalLen(n uint16) { ip.update16(ipv4TotalLenOffset, n) }

// SetSrc rewrites the source address, updating the checksum.
func (ip IPv4) SetSrc(a IPv4Addr) {
	old := binary.BigEndian.Uint32(ip[ipv4SrcOffset:])
	copy(ip[ipv4SrcOffset:ipv4SrcOffset+4], a[:])
	binary.BigEndian.PutUint16(ip[ipv4ChecksumOffset:], checksum.Update32(ip.Checksum(), old, a.Uint32()))
}

// SetDst rewrites the destination address, updating the checksum.
func (ip IPv4) SetDst(a IPv4Addr) {
	old := binary.BigEndian.Uint32(ip[ipv4DstOffset:])
	copy(ip[ipv4DstOffset:ipv4DstOffset+4], a[:])
	binary.BigEndian.PutUint16(ip[ipv4ChecksumOffset:], checksum.Update32(ip.Checksum(), old, a.Uint32()))
}

// SetChecksum recomputes the header checksum from scratch.
func (ip IPv4) SetChecksum() {
	hl := ip.HeaderLen()
	ip[ipv4ChecksumOffset], ip[ipv4ChecksumOffset+1] = 0, 0
	binary.BigEndian.PutUint16(ip[ipv4ChecksumOffset:], checksum.Checksum(ip[:hl], 0))
}

// IPv4Fields are the values EncodeIPv4 writes.
type IPv4Fields struct {
	TOS        uint8
	TotalLen   uint16 // header, options and payload
	ID         uint16
	Flags      uint8  // IPv4FlagDontFragment, IPv4FlagMoreFragments
	FragOffset uint16 // in bytes; a multiple of 8
	TTL        uint8
	Protocol   uint8
	Src, Dst   IPv4Addr
	Options    []byte // at most 40 bytes; padded with End of Option List to a multiple of 4
}

// HeaderLen returns the header length EncodeIPv4 writes for f.
func (f *IPv4Fields) HeaderLen() int { return IPv4MinHeaderLen + (len(f.Options)+3)&^3 }

// EncodeIPv4 writes the header f describes, checksum included, at the start
// of b and returns its length. It panics if the options exceed 40 bytes or
// the fragment offset is not a multiple of 8.
func EncodeIPv4(b []byte, f IPv4Fields) int {
	hl := f.HeaderLen()
	if hl > IPv4MaxHeaderLen {
		panic("header: EncodeIPv4: more than 40 bytes of options")
	}
	if f.FragOffset&7 != 0 {
		panic("header: EncodeIPv4: fragment offset not a multiple of 8")
	}
	_ = b[hl-1]
	b[ipv4VersionIHLOffset] = 4<<4 | uint8(hl/4)
	b[ipv4TOSOffset] = f.TOS
	binary.BigEndian.PutUint16(b[ipv4TotalLenOffset:], f.TotalLen)
	binary.BigEndian.PutUint16(b[ipv4IDOffset:], f.ID)
	binary.BigEndian.PutUint16(b[ipv4FlagsFragOffset:], uint16(f.Flags&7)<<13|f.FragOffset/8)
	b[ipv4TTLOffset] = f.TTL
	b[ipv4ProtocolOffset] = f.Protocol
	b[ipv4ChecksumOffset], b[ipv4ChecksumOffset+1] = 0, 0
	copy(b[ipv4SrcOffset:ipv4SrcOffset+4], f.Src[:])
	copy(b[ipv4DstOffset:ipv4DstOffset+4], f.Dst[:])
	n := copy(b[IPv4MinHeaderLen:hl], f.Options)
	clear(b[IPv4MinHeaderLen+n : hl])
	binary.BigEndian.PutUint16(b[ipv4ChecksumOffset:], checksum.Checksum(b[:hl], 0))
	return hl
}
