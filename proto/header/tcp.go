package header

import (
	"encoding/binary"

	"github.com/verinic/verinic/proto/checksum"
)

// Field offsets of the TCP header (RFC 9293 §3.1; CWR and ECE from RFC 3168):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Sequence Number                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Acknowledgment Number                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Data |       |C|E|U|A|P|R|S|F|                               |
//	| Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//	|       |       |R|E|G|K|H|T|N|N|                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Checksum            |         Urgent Pointer        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           [Options]                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	tcpSrcPortOffset    = 0
	tcpDstPortOffset    = 2
	tcpSeqOffset        = 4
	tcpAckOffset        = 8
	tcpDataOffsetOffset = 12
	tcpFlagsOffset      = 13
	tcpWindowOffset     = 14
	tcpChecksumOffset   = 16
	tcpUrgentOffset     = 18
)

// TCP header sizes (RFC 9293 §3.1).
const (
	TCPMinHeaderLen = 20
	TCPMaxHeaderLen = 60
)

// TCPFlags is the control-bits octet of a TCP header (RFC 9293 §3.1; ECE
// and CWR from RFC 3168).
type TCPFlags uint8

// Control bits.
const (
	TCPFlagFIN TCPFlags = 1 << iota
	TCPFlagSYN
	TCPFlagRST
	TCPFlagPSH
	TCPFlagACK
	TCPFlagURG
	TCPFlagECE
	TCPFlagCWR
)

// Has reports whether every flag in f2 is set in f.
func (f TCPFlags) Has(f2 TCPFlags) bool { return f&f2 == f2 }

// String lists the set flags, e.g. "SYN|ACK", or "none".
func (f TCPFlags) String() string {
	if f == 0 {
		return "none"
	}
	names := [8]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}
	var buf [32]byte
	b := buf[:0]
	for i, n := range names {
		if f&(1<<i) != 0 {
			if len(b) > 0 {
				b = append(b, '|')
			}
			b = append(b, n...)
		}
	}
	return string(b)
}

// TCP is a view of a TCP segment: header, options and payload.
type TCP []byte

// ParseTCP checks b, the whole payload of an IPv4 packet from src to dst, as
// a TCP segment (RFC 9293 §3.1): at least 20 bytes, a data offset of at
// least 5 that stays within b, option syntax (a length below 2 or past the
// header, or the wrong length for MSS, window scale, SACK-permitted, SACK or
// timestamps, is rejected: MUST-7 lets a receiver treat it as an error), and
// the checksum over the pseudo-header and the segment.
func ParseTCP(b []byte, src, dst IPv4Addr) (TCP, error) { return parseTCP(b, src, dst, true) }

// ParseTCPVerified is ParseTCP without the checksum, for a segment whose
// checksum is already known to be good: the 82599 verified it on receive
// (datasheet 7.1.11, RXCSUM; descriptor status L4CS set, error TCPE clear).
func ParseTCPVerified(b []byte) (TCP, error) { return parseTCP(b, IPv4Addr{}, IPv4Addr{}, false) }

func parseTCP(b []byte, src, dst IPv4Addr, verify bool) (TCP, error) {
	if len(b) < TCPMinHeaderLen {
		return nil, ErrTCPTruncated
	}
	hl := int(b[tcpDataOffsetOffset]>>4) * 4
	if hl < TCPMinHeaderLen {
		return nil, ErrTCPDataOffset
	}
	if hl > len(b) {
		return nil, ErrTCPHeaderTruncated
	}
	if len(b) > IPv4MaxTotalLen {
		return nil, ErrTCPTruncated // cannot come from one IPv4 packet
	}
	if verify {
		ph := checksum.PseudoHeaderSum(src, dst, IPProtocolTCP, uint16(len(b)))
		if checksum.Sum(b, ph) != 0xffff {
			return nil, ErrTCPChecksum
		}
	}
	if hl > TCPMinHeaderLen {
		if err := validTCPOptions(b[TCPMinHeaderLen:hl]); err != nil {
			return nil, err
		}
	}
	return TCP(b), nil
}

// SrcPort returns the source port.
func (t TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(t[tcpSrcPortOffset:]) }

// DstPort returns the destination port.
func (t TCP) DstPort() uint16 { return binary.BigEndian.Uint16(t[tcpDstPortOffset:]) }

// Seq returns the sequence number.
func (t TCP) Seq() uint32 { return binary.BigEndian.Uint32(t[tcpSeqOffset:]) }

// Ack returns the acknowledgment number (meaningful when ACK is set).
func (t TCP) Ack() uint32 { return binary.BigEndian.Uint32(t[tcpAckOffset:]) }

// DataOffset returns the data offset field: the header length in 32-bit words.
func (t TCP) DataOffset() uint8 { return t[tcpDataOffsetOffset] >> 4 }

// HeaderLen returns the header length in bytes, options included.
func (t TCP) HeaderLen() int { return int(t[tcpDataOffsetOffset]>>4) * 4 }

// Flags returns the control bits.
func (t TCP) Flags() TCPFlags { return TCPFlags(t[tcpFlagsOffset]) }

// Window returns the window field, before any window scaling.
func (t TCP) Window() uint16 { return binary.BigEndian.Uint16(t[tcpWindowOffset:]) }

// Checksum returns the checksum field.
func (t TCP) Checksum() uint16 { return binary.BigEndian.Uint16(t[tcpChecksumOffset:]) }

// Urgent returns the urgent pointer.
func (t TCP) Urgent() uint16 { return binary.BigEndian.Uint16(t[tcpUrgentOffset:]) }

// OptionBytes returns the raw option bytes (padding included).
func (t TCP) OptionBytes() []byte { return t[TCPMinHeaderLen:t.HeaderLen()] }

// Options returns an iterator over the options.
func (t TCP) Options() TCPOptionIterator { return TCPOptionIterator{rest: t.OptionBytes()} }

// Payload returns the data after the header.
func (t TCP) Payload() []byte { return t[t.HeaderLen():] }

// SegmentLen returns the sequence space the segment occupies: data length
// plus one for SYN and one for FIN (RFC 9293 §3.4).
func (t TCP) SegmentLen() int {
	n := len(t) - t.HeaderLen()
	if t[tcpFlagsOffset]&uint8(TCPFlagSYN) != 0 {
		n++
	}
	if t[tcpFlagsOffset]&uint8(TCPFlagFIN) != 0 {
		n++
	}
	return n
}

// TCPFields are the values EncodeTCP writes.
type TCPFields struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            TCPFlags
	Window           uint16
	Urgent           uint16
	Options          []byte // at most 40 bytes; padded with End of Option List to a multiple of 4
}

// HeaderLen returns the header length EncodeTCP writes for f.
func (f *TCPFields) HeaderLen() int { return TCPMinHeaderLen + (len(f.Options)+3)&^3 }

// EncodeTCP writes the header f describes at the start of b, computes the
// checksum over the pseudo-header for src and dst, the header and the
// payloadLen bytes that follow the header in b, and returns the header
// length. It panics if the options exceed 40 bytes.
func EncodeTCP(b []byte, f TCPFields, payloadLen int, src, dst IPv4Addr) int {
	hl := EncodeTCPNoChecksum(b, f, payloadLen)
	n := hl + payloadLen
	c := checksum.Checksum(b[:n], checksum.PseudoHeaderSum(src, dst, IPProtocolTCP, uint16(n)))
	binary.BigEndian.PutUint16(b[tcpChecksumOffset:], c)
	return hl
}

// EncodeTCPNoChecksum is EncodeTCP leaving the checksum field zero, for a
// device that inserts it (82599 POPTS.TXSM, datasheet 7.2.4).
func EncodeTCPNoChecksum(b []byte, f TCPFields, payloadLen int) int {
	hl := f.HeaderLen()
	if hl > TCPMaxHeaderLen {
		panic("header: EncodeTCP: more than 40 bytes of options")
	}
	n := hl + payloadLen
	if n > IPv4MaxTotalLen {
		panic("header: EncodeTCP: segment longer than 65535 bytes")
	}
	_ = b[n-1]
	binary.BigEndian.PutUint16(b[tcpSrcPortOffset:], f.SrcPort)
	binary.BigEndian.PutUint16(b[tcpDstPortOffset:], f.DstPort)
	binary.BigEndian.PutUint32(b[tcpSeqOffset:], f.Seq)
	binary.BigEndian.PutUint32(b[tcpAckOffset:], f.Ack)
	b[tcpDataOffsetOffset] = uint8(hl/4) << 4
	b[tcpFlagsOffset] = uint8(f.Flags)
	binary.BigEndian.PutUint16(b[tcpWindowOffset:], f.Window)
	b[tcpChecksumOffset], b[tcpChecksumOffset+1] = 0, 0
	binary.BigEndian.PutUint16(b[tcpUrgentOffset:], f.Urgent)
	k := copy(b[TCPMinHeaderLen:hl], f.Options)
	clear(b[TCPMinHeaderLen+k : hl])
	return hl
}
