package header

import "encoding/binary"

// Frame is one decoded frame. Its layers are views of the frame's bytes,
// returned by the methods Ethernet, ARP, IPv4, ICMPv4, UDP and TCP; a layer
// the frame does not carry is nil. The frame keeps the byte slice and the
// layers' offsets rather than six slice headers: storing those cost more
// than the parse itself (see BENCHMARKS.md, "Parsing and checksum").
type Frame struct {
	b      []byte
	l3     uint32 // start of the ARP or IPv4 packet
	l3End  uint32 // end of that view
	l4End  uint32 // end of the ICMPv4, UDP or TCP view (it starts at the IPv4 payload)
	layers Layer  // which views are present
}

// Layer is a set of the layers a Frame carries (see Frame.Layers).
type Layer uint8

// Layers a Frame may carry.
const (
	LayerEthernet Layer = 1 << iota
	LayerARP
	LayerIPv4
	LayerICMPv4
	LayerUDP
	LayerTCP
)

const (
	hasEthernet = LayerEthernet
	hasARP      = LayerARP
	hasIPv4     = LayerIPv4
	hasICMPv4   = LayerICMPv4
	hasUDP      = LayerUDP
	hasTCP      = LayerTCP
)

// Layers returns the set of layers the frame carries: a cheaper test than
// comparing a view with nil.
func (f *Frame) Layers() Layer { return f.layers }

// Ethernet returns the Ethernet view (the whole frame), or nil.
func (f Frame) Ethernet() Ethernet {
	if f.layers&hasEthernet == 0 {
		return nil
	}
	return Ethernet(f.b)
}

// ARP returns the ARP view, or nil.
func (f Frame) ARP() ARP {
	if f.layers&hasARP == 0 {
		return nil
	}
	return ARP(f.b[f.l3:f.l3End])
}

// IPv4 returns the IPv4 view (trimmed to its total length), or nil.
func (f Frame) IPv4() IPv4 {
	if f.layers&hasIPv4 == 0 {
		return nil
	}
	return IPv4(f.b[f.l3:f.l3End])
}

// l4 returns the transport view's bytes.
func (f Frame) l4() []byte {
	return f.b[f.l3+uint32(f.b[f.l3]&0xf)*4 : f.l4End]
}

// ICMPv4 returns the ICMPv4 view, or nil.
func (f Frame) ICMPv4() ICMPv4 {
	if f.layers&hasICMPv4 == 0 {
		return nil
	}
	return ICMPv4(f.l4())
}

// UDP returns the UDP view (trimmed to the UDP length), or nil.
func (f Frame) UDP() UDP {
	if f.layers&hasUDP == 0 {
		return nil
	}
	return UDP(f.l4())
}

// TCP returns the TCP view, or nil.
func (f Frame) TCP() TCP {
	if f.layers&hasTCP == 0 {
		return nil
	}
	return TCP(f.l4())
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
	// The common received frame, checksums verified by the NIC: untagged
	// IPv4 without options, not a fragment, carrying UDP or TCP (no options
	// or NOP, NOP, Timestamps: RFC 7323 Appendix A). A small function with
	// no calls keeps this path to a few loads and stores; everything else
	// goes to decodeFrame. FuzzDecodeFrame checks that both give exactly what
	// the per-layer parsers give.
	const ip, l4 = EthernetHeaderLen, EthernetHeaderLen + IPv4MinHeaderLen
	if v == VerifiedIPv4|VerifiedL4 && len(b) >= l4 && b[ethTypeOffset] == 0x08 && b[ethTypeOffset+1] == 0x00 && b[ip+ipv4VersionIHLOffset] == 0x45 && b[ip+ipv4FlagsFragOffset]&0x3f == 0 && b[ip+ipv4FlagsFragOffset+1] == 0 {
		if tl := int(b[ip+ipv4TotalLenOffset])<<8 | int(b[ip+ipv4TotalLenOffset+1]); tl >= IPv4MinHeaderLen && tl <= len(b)-ip {
			switch b[ip+ipv4ProtocolOffset] {
			case IPProtocolUDP:
				if tl >= IPv4MinHeaderLen+UDPHeaderLen {
					if n := int(b[l4+udpLengthOffset])<<8 | int(b[l4+udpLengthOffset+1]); n >= UDPHeaderLen && n <= tl-IPv4MinHeaderLen {
						f.b, f.l3, f.l3End, f.l4End, f.layers = b, ip, uint32(ip+tl), uint32(l4+n), hasEthernet|hasIPv4|hasUDP
						return nil
					}
				}
			case IPProtocolTCP:
				if tl >= IPv4MinHeaderLen+TCPMinHeaderLen {
					if thl := int(b[l4+tcpDataOffsetOffset]>>4) * 4; thl <= tl-IPv4MinHeaderLen &&
						(thl == TCPMinHeaderLen || thl == TCPMinHeaderLen+12 && binary.BigEndian.Uint32(b[l4+TCPMinHeaderLen:]) == 0x0101080a) {
						f.b, f.l3, f.l3End, f.l4End, f.layers = b, ip, uint32(ip+tl), uint32(ip+tl), hasEthernet|hasIPv4|hasTCP
						return nil
					}
				}
			}
		}
	}
	return decodeFrame(b, f, v)
}

// decodeFrame is DecodeFrameVerified for every frame.
func decodeFrame(b []byte, f *Frame, v Verified) error {
	f.b = b
	if len(b) < EthernetHeaderLen {
		f.layers = 0
		return ErrEthernetTruncated
	}
	off, et := EthernetHeaderLen, binary.BigEndian.Uint16(b[ethTypeOffset:])
	if et == EtherTypeVLAN {
		if len(b) < EthernetVLANHeaderLen {
			f.layers = 0
			return ErrEthernetVLANTruncated
		}
		off, et = EthernetVLANHeaderLen, binary.BigEndian.Uint16(b[ethVLANTypeOffset:])
	}
	f.l3 = uint32(off)
	switch et {
	case EtherTypeIPv4:
	case EtherTypeARP:
		a, err := ParseARP(b[off:])
		if err != nil {
			f.layers = hasEthernet
			return err
		}
		f.l3End, f.layers = uint32(off+len(a)), hasEthernet|hasARP
		return nil
	default:
		f.layers = hasEthernet
		return nil
	}
	p := b[off:]
	ipLen, hl := 0, IPv4MinHeaderLen
	if v&VerifiedIPv4 != 0 && len(p) >= IPv4MinHeaderLen && p[ipv4VersionIHLOffset] == 0x45 && p[ipv4FlagsFragOffset]&0x3f == 0 && p[ipv4FlagsFragOffset+1] == 0 {
		// No options, not a fragment: only the total length to check.
		if tl := int(p[ipv4TotalLenOffset])<<8 | int(p[ipv4TotalLenOffset+1]); tl >= IPv4MinHeaderLen && tl <= len(p) {
			ipLen = tl
		}
	}
	if ipLen == 0 {
		ip, err := parseIPv4(p, v&VerifiedIPv4 == 0)
		if err != nil {
			f.layers = hasEthernet
			return err
		}
		ipLen, hl = len(ip), ip.HeaderLen()
		f.l3End = uint32(off + ipLen)
		if ip[ipv4FlagsFragOffset]&0x3f != 0 || ip[ipv4FlagsFragOffset+1] != 0 { // MF or a fragment offset
			f.layers = hasEthernet | hasIPv4
			return nil
		}
	}
	f.l3End = uint32(off + ipLen)
	payload := p[hl:ipLen]
	l4 := uint32(off + hl)
	switch p[ipv4ProtocolOffset] {
	case IPProtocolUDP:
		var u UDP
		var err error
		if v&VerifiedL4 != 0 {
			if len(payload) >= UDPHeaderLen {
				// ParseUDPVerified, inlined.
				if n := int(payload[udpLengthOffset])<<8 | int(payload[udpLengthOffset+1]); n >= UDPHeaderLen && n <= len(payload) {
					f.l4End, f.layers = l4+uint32(n), hasEthernet|hasIPv4|hasUDP
					return nil
				}
			}
			u, err = ParseUDPVerified(payload)
		} else {
			u, err = ParseUDP(payload, IPv4(p).Src(), IPv4(p).Dst())
		}
		if err != nil {
			f.layers = hasEthernet | hasIPv4
			return err
		}
		f.l4End, f.layers = l4+uint32(len(u)), hasEthernet|hasIPv4|hasUDP
		return nil
	case IPProtocolTCP:
		if v&VerifiedL4 != 0 && len(payload) >= TCPMinHeaderLen {
			// No options, or NOP, NOP, Timestamps (RFC 7323 Appendix A).
			if thl := int(payload[tcpDataOffsetOffset]>>4) * 4; thl <= len(payload) &&
				(thl == TCPMinHeaderLen || thl == TCPMinHeaderLen+12 && binary.BigEndian.Uint32(payload[TCPMinHeaderLen:]) == 0x0101080a) {
				f.l4End, f.layers = l4+uint32(len(payload)), hasEthernet|hasIPv4|hasTCP
				return nil
			}
		}
		t, err := parseTCP(payload, IPv4(p).Src(), IPv4(p).Dst(), v&VerifiedL4 == 0)
		if err != nil {
			f.layers = hasEthernet | hasIPv4
			return err
		}
		f.l4End, f.layers = l4+uint32(len(t)), hasEthernet|hasIPv4|hasTCP
		return nil
	case IPProtocolICMP:
		m, err := ParseICMPv4(payload)
		if err != nil {
			f.layers = hasEthernet | hasIPv4
			return err
		}
		f.l4End, f.layers = l4+uint32(len(m)), hasEthernet|hasIPv4|hasICMPv4
		return nil
	default:
		f.layers = hasEthernet | hasIPv4
		return nil
	}
}
