package header

import "encoding/binary"

// Frame holds the views of one decoded frame. Layers that the frame does not
// carry are nil.
type Frame struct {
	Ethernet Ethernet
	ARP      ARP
	IPv4     IPv4
	ICMPv4   ICMPv4
	UDP      UDP
	TCP      TCP
}

// DecodeFrame parses an Ethernet frame (without FCS) layer by layer into f:
// Ethernet, then ARP or IPv4, then ICMPv4, UDP or TCP, exactly as the
// per-layer ParseX functions would. It stops without error at a layer it
// does not know (another EtherType or IP protocol) and at any IP fragment,
// whose transport header cannot be checked before reassembly; otherwise it
// returns the first layer's error, with the layers before it filled in. It
// allocates nothing.
func DecodeFrame(b []byte, f *Frame) error { return DecodeFrameVerified(b, f, 0) }

// Verified says which checksums of a frame are already known to be good, so
// that decoding need not recompute them: the 82599 verifies IPv4 header and
// TCP/UDP checksums on receive when RXCSUM enables it and reports the result
// in the descriptor (datasheet 7.1.11: status IPCS and L4CS, errors IPE and
// TCPE).
type Verified uint8

// Checksums a receiver may already have verified.
const (
	VerifiedIPv4 Verified = 1 << iota // IPv4 header checksum
	VerifiedL4                        // UDP or TCP checksum
)

// DecodeFrameVerified is DecodeFrame skipping the checksums v names. ICMP
// checksums are always verified (the 82599 does not offload them).
func DecodeFrameVerified(b []byte, f *Frame, v Verified) error {
	// Written for speed: locals, and each field of *f stored once, field by
	// field (a composite literal is built on the stack and block-copied,
	// which stalls on store forwarding).
	if len(b) < EthernetHeaderLen {
		f.set(nil, nil, nil, nil, nil, nil)
		return ErrEthernetTruncated
	}
	eth := Ethernet(b)
	off, et := EthernetHeaderLen, binary.BigEndian.Uint16(b[12:14])
	if et == EtherTypeVLAN {
		if len(b) < EthernetVLANHeaderLen {
			f.set(nil, nil, nil, nil, nil, nil)
			return ErrEthernetVLANTruncated
		}
		off, et = EthernetVLANHeaderLen, binary.BigEndian.Uint16(b[16:18])
	}
	switch et {
	case EtherTypeIPv4:
	case EtherTypeARP:
		a, err := ParseARP(b[off:])
		f.set(eth, a, nil, nil, nil, nil)
		return err
	default:
		f.set(eth, nil, nil, nil, nil, nil)
		return nil
	}
	// The fast paths below inline what parseIPv4 and parseTCP do for the
	// common packet when its checksums are already verified (the calls
	// cost a third of the whole decode); FuzzDecodeFrame checks that the
	// result is exactly that of the per-layer parsers.
	var ip IPv4
	var payload []byte
	p := b[off:]
	if v&VerifiedIPv4 != 0 && len(p) >= IPv4MinHeaderLen && p[0] == 0x45 && p[6]&0x3f == 0 && p[7] == 0 {
		// No options, not a fragment: only the total length to check.
		if tl := int(p[2])<<8 | int(p[3]); tl >= IPv4MinHeaderLen && tl <= len(p) {
			ip = IPv4(p[:tl])
			payload = ip[IPv4MinHeaderLen:]
		}
	}
	if ip == nil {
		var err error
		if ip, err = parseIPv4(p, v&VerifiedIPv4 == 0); err != nil {
			f.set(eth, nil, nil, nil, nil, nil)
			return err
		}
		if ip[6]&0x3f != 0 || ip[7] != 0 { // MF or a fragment offset
			f.set(eth, nil, ip, nil, nil, nil)
			return nil
		}
		payload = ip[int(ip[0]&0xf)*4:] // ip is trimmed to its total length
	}
	var err error
	switch ip[9] {
	case IPProtocolUDP:
		var u UDP
		if v&VerifiedL4 != 0 {
			u, err = ParseUDPVerified(payload)
		} else {
			u, err = ParseUDP(payload, ip.Src(), ip.Dst())
		}
		f.set(eth, nil, ip, nil, u, nil)
	case IPProtocolTCP:
		var t TCP
		if v&VerifiedL4 != 0 && len(payload) >= TCPMinHeaderLen {
			// No options, or NOP, NOP, Timestamps (RFC 7323 Appendix A).
			if hl := int(payload[12]>>4) * 4; hl <= len(payload) &&
				(hl == TCPMinHeaderLen || hl == TCPMinHeaderLen+12 && binary.BigEndian.Uint32(payload[20:24]) == 0x0101080a) {
				t = TCP(payload)
			}
		}
		if t == nil {
			t, err = parseTCP(payload, ip.Src(), ip.Dst(), v&VerifiedL4 == 0)
		}
		f.set(eth, nil, ip, nil, nil, t)
	case IPProtocolICMP:
		var m ICMPv4
		m, err = ParseICMPv4(payload)
		f.set(eth, nil, ip, m, nil, nil)
	default:
		f.set(eth, nil, ip, nil, nil, nil)
	}
	return err
}

func (f *Frame) set(eth Ethernet, arp ARP, ip IPv4, icmp ICMPv4, udp UDP, tcp TCP) {
	f.Ethernet = eth
	f.ARP = arp
	f.IPv4 = ip
	f.ICMPv4 = icmp
	f.UDP = udp
	f.TCP = tcp
}
