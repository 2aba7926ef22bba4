// Package headertest builds well-formed sample frames with proto/header's
// encoders, for tests, fuzz seed corpora and benchmarks across the project.
// It is test support: it allocates freely.
package headertest

import (
	"github.com/verinic/verinic/proto/header"
)

// Addresses the samples use (documentation ranges: RFC 5737, locally
// administered MACs).
var (
	MACA = header.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a}
	MACB = header.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b}
	IPA  = header.IPv4Addr{192, 0, 2, 1}
	IPB  = header.IPv4Addr{192, 0, 2, 2}
)

// Payload returns n bytes of a recognisable pattern.
func Payload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte('a' + i%26)
	}
	return p
}

// IPv4Options are the IP options a sample frame may carry (RFC 791 §3.1):
// a NOP and a Router Alert (RFC 2113), 8 bytes in all.
var IPv4Options = []byte{header.IPv4OptionNOP, 148, 4, 0, 0, header.IPv4OptionNOP, header.IPv4OptionNOP, header.IPv4OptionEOL}

// Options say how to build a frame.
type Options struct {
	VLAN       bool   // add an 802.1Q tag (VID 42)
	IPOptions  []byte // IPv4 options (multiple of 4 recommended)
	Flags      uint8  // IPv4 flags
	FragOffset uint16 // IPv4 fragment offset in bytes
	TTL        uint8  // 0 means 64
}

func (o Options) ethernet(b []byte) int {
	if o.VLAN {
		return header.EncodeEthernetVLAN(b, MACB, MACA, 42, header.EtherTypeIPv4)
	}
	return header.EncodeEthernet(b, MACB, MACA, header.EtherTypeIPv4)
}

func (o Options) ipv4(b []byte, proto uint8, l4Len int) int {
	f := header.IPv4Fields{
		ID: 0x1234, Flags: o.Flags, FragOffset: o.FragOffset, TTL: o.TTL,
		Protocol: proto, Src: IPA, Dst: IPB, Options: o.IPOptions,
	}
	if f.TTL == 0 {
		f.TTL = 64
	}
	f.TotalLen = uint16(f.HeaderLen() + l4Len)
	return header.EncodeIPv4(b, f)
}

func (o Options) l3Offset() int {
	n := header.EthernetHeaderLen
	if o.VLAN {
		n = header.EthernetVLANHeaderLen
	}
	return n
}

func (o Options) ipHeaderLen() int {
	f := header.IPv4Fields{Options: o.IPOptions}
	return f.HeaderLen()
}

// UDPFrame returns an Ethernet+IPv4+UDP frame with payloadLen bytes of data.
func UDPFrame(o Options, payloadLen int) []byte {
	l3 := o.l3Offset()
	l4 := l3 + o.ipHeaderLen()
	b := make([]byte, l4+header.UDPHeaderLen+payloadLen)
	copy(b[l4+header.UDPHeaderLen:], Payload(payloadLen))
	header.EncodeUDP(b[l4:], 40000, 7, payloadLen, IPA, IPB)
	o.ipv4(b[l3:], header.IPProtocolUDP, header.UDPHeaderLen+payloadLen)
	o.ethernet(b)
	return b
}

// TCPOptionsSYN returns the options a SYN typically carries: MSS 1460,
// SACK-permitted, timestamps, NOP, window scale 7 (20 bytes, Linux's order).
func TCPOptionsSYN() []byte {
	b := make([]byte, 20)
	n := header.PutTCPOptionMSS(b, 1460)
	n += header.PutTCPOptionSACKPermitted(b[n:])
	n += header.PutTCPOptionTimestamps(b[n:], 0x01020304, 0)
	n += header.PutTCPOptionNOP(b[n:])
	n += header.PutTCPOptionWindowScale(b[n:], 7)
	return b[:n]
}

// TCPOptionsSACK returns NOP, NOP, timestamps, NOP, NOP, SACK with two
// blocks (32 bytes).
func TCPOptionsSACK() []byte {
	b := make([]byte, 40)
	n := header.PutTCPOptionNOP(b)
	n += header.PutTCPOptionNOP(b[n:])
	n += header.PutTCPOptionTimestamps(b[n:], 1000, 2000)
	n += header.PutTCPOptionNOP(b[n:])
	n += header.PutTCPOptionNOP(b[n:])
	n += header.PutTCPOptionSACK(b[n:], []header.SACKBlock{{Left: 3000, Right: 4000}, {Left: 5000, Right: 6000}})
	return b[:n]
}

// TCPFrame returns an Ethernet+IPv4+TCP frame carrying the given flags,
// options and payloadLen bytes of data.
func TCPFrame(o Options, flags header.TCPFlags, tcpOptions []byte, payloadLen int) []byte {
	f := header.TCPFields{
		SrcPort: 40000, DstPort: 80, Seq: 0x11223344, Ack: 0x55667788,
		Flags: flags, Window: 65535, Options: tcpOptions,
	}
	l3 := o.l3Offset()
	l4 := l3 + o.ipHeaderLen()
	hl := f.HeaderLen()
	b := make([]byte, l4+hl+payloadLen)
	copy(b[l4+hl:], Payload(payloadLen))
	header.EncodeTCP(b[l4:], f, payloadLen, IPA, IPB)
	o.ipv4(b[l3:], header.IPProtocolTCP, hl+payloadLen)
	o.ethernet(b)
	return b
}

// ICMPEchoFrame returns an Ethernet+IPv4+ICMP echo request with payloadLen
// bytes of data.
func ICMPEchoFrame(o Options, payloadLen int) []byte {
	l3 := o.l3Offset()
	l4 := l3 + o.ipHeaderLen()
	b := make([]byte, l4+header.ICMPv4HeaderLen+payloadLen)
	copy(b[l4+header.ICMPv4HeaderLen:], Payload(payloadLen))
	header.EncodeICMPv4Echo(b[l4:], header.ICMPv4Echo, 0x4242, 7, payloadLen)
	o.ipv4(b[l3:], header.IPProtocolICMP, header.ICMPv4HeaderLen+payloadLen)
	o.ethernet(b)
	return b
}

// ICMPFragNeededFrame returns an ICMP Destination Unreachable, Fragmentation
// Needed (RFC 1191) quoting the IP header and 8 bytes of a UDP datagram.
func ICMPFragNeededFrame(mtu uint16) []byte {
	orig := UDPFrame(Options{Flags: header.IPv4FlagDontFragment}, 1400)[header.EthernetHeaderLen:]
	quote := orig[:header.IPv4MinHeaderLen+8]
	l4 := header.EthernetHeaderLen + header.IPv4MinHeaderLen
	b := make([]byte, l4+header.ICMPv4HeaderLen+len(quote))
	copy(b[l4+header.ICMPv4HeaderLen:], quote)
	header.EncodeICMPv4(b[l4:], header.ICMPv4DestinationUnreachable, header.ICMPv4FragmentationNeeded, uint32(mtu), len(quote))
	Options{}.ipv4(b[header.EthernetHeaderLen:], header.IPProtocolICMP, header.ICMPv4HeaderLen+len(quote))
	header.EncodeEthernet(b, MACA, MACB, header.EtherTypeIPv4)
	return b
}

// ARPFrame returns an Ethernet+ARP frame (request when op is ARPRequest,
// broadcast; reply otherwise), padded to the 60-byte minimum.
func ARPFrame(op uint16) []byte {
	b := make([]byte, header.EthernetMinFrameLen)
	dst, tha := header.BroadcastMAC, header.MAC{}
	if op != header.ARPRequest {
		dst, tha = MACB, MACB
	}
	n := header.EncodeEthernet(b, dst, MACA, header.EtherTypeARP)
	header.EncodeARP(b[n:], op, MACA, IPA, tha, IPB)
	return b
}

// Named is a sample frame with a name.
type Named struct {
	Name  string
	Frame []byte
}

// Frames returns one of each kind of sample frame.
func Frames() []Named {
	return []Named{
		{"arp-request", ARPFrame(header.ARPRequest)},
		{"arp-reply", ARPFrame(header.ARPReply)},
		{"udp-64", UDPFrame(Options{}, 64)},
		{"udp-0", UDPFrame(Options{}, 0)},
		{"udp-1472", UDPFrame(Options{}, 1472)},
		{"udp-vlan", UDPFrame(Options{VLAN: true}, 18)},
		{"udp-ipopts", UDPFrame(Options{IPOptions: IPv4Options}, 33)},
		{"udp-fragment", UDPFrame(Options{Flags: header.IPv4FlagMoreFragments}, 64)},
		{"ip-fragment-tail", UDPFrame(Options{FragOffset: 1480}, 100)},
		{"tcp-syn", TCPFrame(Options{}, header.TCPFlagSYN, TCPOptionsSYN(), 0)},
		{"tcp-synack", TCPFrame(Options{}, header.TCPFlagSYN|header.TCPFlagACK, TCPOptionsSYN(), 0)},
		{"tcp-data-64", TCPFrame(Options{}, header.TCPFlagACK|header.TCPFlagPSH, nil, 64)},
		{"tcp-data-1460", TCPFrame(Options{}, header.TCPFlagACK, nil, 1460)},
		{"tcp-sack", TCPFrame(Options{}, header.TCPFlagACK, TCPOptionsSACK(), 10)},
		{"tcp-fin-vlan", TCPFrame(Options{VLAN: true}, header.TCPFlagFIN|header.TCPFlagACK, nil, 0)},
		{"tcp-rst", TCPFrame(Options{}, header.TCPFlagRST, nil, 0)},
		{"icmp-echo", ICMPEchoFrame(Options{}, 56)},
		{"icmp-echo-odd", ICMPEchoFrame(Options{}, 57)},
		{"icmp-frag-needed", ICMPFragNeededFrame(1280)},
	}
}
