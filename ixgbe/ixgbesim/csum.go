package ixgbesim

import (
	"encoding/binary"

	"github.com/verinic/verinic/ixgbe/regs"
)

// Receive checksum offload (datasheet 7.1.11, RXCSUM 8.2.3.7.5, advanced
// receive write-back 7.1.6.2). The 82599 checks the checksums of every frame
// its parser understands and reports them in the write-back's status word:
//
//   - IPv4 (after an optional 802.1Q tag): IPCS, with IPE when the header
//     checksum (options included) does not verify;
//   - TCP or UDP over an unfragmented IPv4 datagram, or directly after the
//     IPv6 header (no extension headers): L4CS (and UDPCS for UDP), with TCPE
//     when the checksum over pseudo-header, header and payload does not
//     verify. A UDP checksum of 0 over IPv4 means "none" (RFC 768): nothing
//     is checked.
//
// Fragments get IPCS only; non-IP frames, IPv6 with extension headers, and
// frames whose IP lengths do not fit the frame leave every bit clear.
//
// The second dword of the write-back (7.1.6.2) holds the RSS hash when
// RXCSUM.PCSD is set; when it is clear, the IP identification (bits 15:0)
// and the fragment checksum (bits 31:16): the one's complement sum, not
// complemented, of the IPv4 payload when RXCSUM.IPPCSE is set, 0 otherwise.
// Which frames get a fragment checksum (here: every parsed IPv4 frame, the
// only kind with an IP identification) is our reading; see docs/NOTES.md.

// rxCsum is what the checksum engine worked out for a received frame.
type rxCsum struct {
	bits     uint32 // RXD_CSUM_BITS subset for the write-back status word
	ipID     uint16 // IPv4 identification (0 for anything else)
	fragCsum uint16 // fragment checksum (IPPCSE), 0 when not computed
}

// rxChecksum parses frame (Ethernet header first; a trailing FCS or padding
// lies beyond the IP lengths and is not summed) under RXCSUM value rxcsum.
func rxChecksum(frame []byte, rxcsum uint32) rxCsum {
	var r rxCsum
	if len(frame) < 14 {
		return r
	}
	l3, etype := l3Start(frame)
	switch etype {
	case 0x0800:
		if len(frame) < l3+20 || frame[l3]>>4 != 4 {
			return r
		}
		ip := frame[l3:]
		ihl := int(ip[0]&0xF) * 4
		tot := int(binary.BigEndian.Uint16(ip[2:]))
		if ihl < 20 || tot < ihl || tot > len(ip) {
			return r // not a datagram the parser accepts
		}
		ip = ip[:tot]
		r.bits = regs.RXD_STAT_IPCS
		if fold(sum(ip[:ihl], 0)) != 0xFFFF {
			r.bits |= regs.RXD_ERR_IPE
		}
		r.ipID = binary.BigEndian.Uint16(ip[4:])
		if rxcsum&regs.RXCSUM_IPPCSE != 0 {
			r.fragCsum = fold(sum(ip[ihl:], 0))
		}
		if binary.BigEndian.Uint16(ip[6:])&0x3FFF != 0 {
			return r // a fragment (MF or offset): no L4 header to check
		}
		var ph uint64
		ph += uint64(binary.BigEndian.Uint32(ip[12:])) + uint64(binary.BigEndian.Uint32(ip[16:]))
		l4check(&r, ip[9], ip[ihl:], ph, true)
	case 0x86DD:
		if len(frame) < l3+40 || frame[l3]>>4 != 6 {
			return r
		}
		ip := frame[l3:]
		plen := int(binary.BigEndian.Uint16(ip[4:]))
		if 40+plen > len(ip) {
			return r
		}
		ph := sum(ip[8:40], 0)
		l4check(&r, ip[6], ip[40:40+plen], ph, false)
	}
	return r
}

// l4check checks a TCP or UDP segment l4 whose pseudo-header addresses sum
// to ph (unfolded); v4 says IPv4, where a zero UDP checksum means none.
func l4check(r *rxCsum, proto uint8, l4 []byte, ph uint64, v4 bool) {
	switch proto {
	case 6:
		if len(l4) < 20 {
			return
		}
		r.bits |= regs.RXD_STAT_L4CS
	case 17:
		if len(l4) < 8 || (v4 && binary.BigEndian.Uint16(l4[6:]) == 0) {
			return
		}
		r.bits |= regs.RXD_STAT_L4CS | regs.RXD_STAT_UDPCS
	default:
		return
	}
	ph += uint64(proto) + uint64(len(l4))
	if fold(sum(l4, ph)) != 0xFFFF {
		r.bits |= regs.RXD_ERR_TCPE
	}
}

// sum adds b, read as big-endian 16-bit words (an odd last byte padded with
// zero), to acc without folding (RFC 1071).
func sum(b []byte, acc uint64) uint64 {
	for len(b) >= 8 {
		acc += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

// fold folds a sum to 16 bits with end-around carries.
func fold(acc uint64) uint16 {
	for acc>>16 != 0 {
		acc = acc&0xFFFF + acc>>16
	}
	return uint16(acc)
}

// rxDword1 returns the write-back's second dword (7.1.6.2): the RSS hash
// with RXCSUM.PCSD, otherwise IP identification and fragment checksum.
func rxDword1(rxcsum uint32, e *pbEntry) uint32 {
	if rxcsum&regs.RXCSUM_PCSD != 0 {
		return e.hash
	}
	return uint32(e.csum.ipID) | uint32(e.csum.fragCsum)<<16
}

// legacyStatus maps an advanced write-back status word to the legacy
// descriptor's status byte and errors byte (7.1.5): UDPCS, L4CS (TCPCS) and
// IPCS keep their bit positions in the status byte; IPE and TCPE are bits 6
// and 5 of the errors byte.
func legacyStatus(st uint32) uint32 {
	v := st & 0xFF
	if st&regs.RXD_ERR_IPE != 0 {
		v |= 0x40 << 8
	}
	if st&regs.RXD_ERR_TCPE != 0 {
		v |= 0x20 << 8
	}
	return v
}
