package fuzz

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/verinic/verinic/proto/header"
)

// The differential oracle. proto/header is deliberately stricter than
// gopacket, which checks lengths only. Every frame is decoded twice, each
// decoder following its own chain (gopacket's layers are fed gopacket's own
// payloads and chosen by gopacket's own NextLayerType), and compared layer by
// layer while both decoders handle the layer:
//
//  1. When proto/header accepts a layer, gopacket must accept it too, not
//     flag it truncated, and agree on every field and on the payload bytes.
//  2. When proto/header rejects a layer, the reason it gives must hold on the
//     bytes, checked independently (with gopacket's decoded fields or a
//     simple RFC 1071 checksum written here), and gopacket must reject the
//     layer too unless the reason is one gopacket does not check:
//
//     - IPv4: version other than 4; header checksum; fragment offset plus
//     total length beyond 65535; total length 0, which gopacket takes as
//     "use the frame length" (a Windows TSO quirk); a total length beyond
//     the data, which gopacket only flags as truncated.
//     - ARP: hardware, protocol or address lengths other than Ethernet and
//     IPv4, which gopacket accepts as generic ARP. gopacket also truncates
//     the hardware type to 8 bits (a uint8 LinkType), so the oracle reads
//     that field from the bytes, and its decoder panics when the address
//     lengths overflow its uint8 length arithmetic; a gopacket panic counts
//     as a rejection, as in DecodingLayerParser.
//     - ICMPv4, UDP and TCP: checksums (gopacket verifies none).
//     - UDP: length field 0 (gopacket: a jumbogram) or beyond the data
//     (gopacket: truncated).
//     - TCP: a known option (MSS, window scale, SACK-permitted, SACK,
//     timestamps) with the wrong length, which gopacket does not check.
//
//  3. Where gopacket is the stricter one, it is named: it rejects an IPv4
//     option whose length octet is exactly 2 (RFC 791 allows it; proto/header
//     accepts). Any other gopacket rejection of a layer proto/header accepted
//     is a failure.
//
// Layers one side does not handle end the comparison: 802.1ad/QinQ and
// double tags, 802.3 length frames (gopacket: LLC), other EtherTypes and IP
// protocols, IP fragments (proto/header stops; gopacket's next layer is a
// fragment, which it does not decode).

// decode runs a gopacket decoder, turning a panic into an error as
// DecodingLayerParser does by default: gopacket's ARP decoder, for one,
// computes the packet length in uint8 and slices out of range when the
// address lengths are large.
func decode(l gopacket.DecodingLayer, b []byte, fb *feedback) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("gopacket panicked: %v", r)
		}
	}()
	return l.DecodeFromBytes(b, fb)
}

// feedback records gopacket's truncation flag.
type feedback struct{ truncated bool }

func (f *feedback) SetTruncated() { f.truncated = true }

// refSum is RFC 1071 one byte pair at a time, independent of proto/checksum.
func refSum(parts ...[]byte) uint16 {
	var s uint32
	odd := false
	var hi byte
	for _, p := range parts {
		for _, c := range p {
			if !odd {
				hi, odd = c, true
				continue
			}
			s += uint32(hi)<<8 | uint32(c)
			odd = false
		}
	}
	if odd {
		s += uint32(hi) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

func pseudo(src, dst net.IP, proto byte, n int) []byte {
	p := make([]byte, 12)
	copy(p[0:4], src.To4())
	copy(p[4:8], dst.To4())
	p[9] = proto
	binary.BigEndian.PutUint16(p[10:], uint16(n))
	return p
}

// compare decodes b both ways and returns a description of the first
// disagreement, or nil.
func compare(b []byte) error {
	if err := compareLayers(b); err != nil {
		return err
	}
	return compareParser(b)
}

// compareParser checks, for a frame proto/header accepts, that gopacket's
// DecodingLayerParser (with the same layers, stopping at the first layer it
// has no decoder for) decodes the same sequence of layers.
func compareParser(b []byte) error {
	var ours header.Frame
	if header.DecodeFrame(b, &ours) != nil || (ours.IPv4() != nil && ipv4OptionLen2(ours.IPv4().Options())) {
		return nil
	}
	var want []gopacket.LayerType
	want = append(want, layers.LayerTypeEthernet)
	if _, ok := ours.Ethernet().VLAN(); ok {
		want = append(want, layers.LayerTypeDot1Q)
	}
	for _, l := range []struct {
		present bool
		t       gopacket.LayerType
	}{
		{ours.ARP() != nil, layers.LayerTypeARP}, {ours.IPv4() != nil, layers.LayerTypeIPv4},
		{ours.ICMPv4() != nil, layers.LayerTypeICMPv4}, {ours.UDP() != nil, layers.LayerTypeUDP}, {ours.TCP() != nil, layers.LayerTypeTCP},
	} {
		if l.present {
			want = append(want, l.t)
		}
	}
	var (
		eth  layers.Ethernet
		dot  layers.Dot1Q
		ip4  layers.IPv4
		arp  layers.ARP
		icmp layers.ICMPv4
		udp  layers.UDP
		tcp  layers.TCP
	)
	p := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &dot, &ip4, &arp, &icmp, &udp, &tcp)
	p.IgnoreUnsupported = true
	var got []gopacket.LayerType
	err := p.DecodeLayers(b, &got)
	// gopacket goes on where proto/header stops (a second 802.1Q tag, an
	// 802.1ad tag, say), and may fail there: only the layers proto/header
	// decoded are compared (DecodeLayers lists a layer once it decoded).
	if len(got) < len(want) {
		return fmt.Errorf("DecodingLayerParser: %v after %v; proto/header decoded %v", err, got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			return fmt.Errorf("DecodingLayerParser decoded %v, proto/header %v", got, want)
		}
	}
	return nil
}

// compareLayers decodes b layer by layer both ways.
func compareLayers(b []byte) error {
	var ours header.Frame
	ourErr := header.DecodeFrame(b, &ours)

	// Ethernet.
	var eth layers.Ethernet
	var fb feedback
	gErr := decode(&eth, b, &fb)
	if errors.Is(ourErr, header.ErrEthernetTruncated) {
		if gErr == nil {
			return fmt.Errorf("ethernet: ours %v, gopacket accepted", ourErr)
		}
		return nil
	}
	if gErr != nil {
		return fmt.Errorf("ethernet: gopacket rejected (%v), ours accepted", gErr)
	}
	raw := binary.BigEndian.Uint16(b[12:14])
	if !bytes.Equal(eth.DstMAC, b[0:6]) || !bytes.Equal(eth.SrcMAC, b[6:12]) {
		return fmt.Errorf("ethernet: MACs differ")
	}
	if errors.Is(ourErr, header.ErrEthernetVLANTruncated) {
		var tag layers.Dot1Q
		if decode(&tag, eth.Payload, &fb) == nil {
			return fmt.Errorf("802.1Q: ours %v, gopacket accepted", ourErr)
		}
		return nil
	}
	e := ours.Ethernet()
	if e.Dst() != header.MAC(eth.DstMAC) || e.Src() != header.MAC(eth.SrcMAC) {
		return fmt.Errorf("ethernet: MACs differ")
	}
	if raw < header.EtherTypeMinimum {
		if eth.EthernetType != layers.EthernetTypeLLC || e.EtherType() != raw {
			return fmt.Errorf("ethernet: 802.3 length frame: gopacket type %v, ours %#x", eth.EthernetType, e.EtherType())
		}
		return nil // LLC: not handled by proto/header
	}
	if uint16(eth.EthernetType) != raw {
		return fmt.Errorf("ethernet: type %v vs %#x", eth.EthernetType, raw)
	}
	next, nextType := eth.Payload, eth.EthernetType
	if raw == header.EtherTypeVLAN {
		var tag layers.Dot1Q
		if err := decode(&tag, eth.Payload, &fb); err != nil {
			return fmt.Errorf("802.1Q: gopacket rejected (%v), ours accepted", err)
		}
		tci, ok := e.VLAN()
		if !ok || tci>>13 != uint16(tag.Priority) || (tci&0x1000 != 0) != tag.DropEligible ||
			tci&0xfff != tag.VLANIdentifier || uint16(tag.Type) != e.EtherType() {
			return fmt.Errorf("802.1Q: tci %#x type %#x vs %+v", tci, e.EtherType(), tag)
		}
		next, nextType = tag.Payload, tag.Type
	}
	if !bytes.Equal(next, e.Payload()) {
		return fmt.Errorf("ethernet: payloads differ")
	}
	switch nextType {
	case layers.EthernetTypeARP:
		return compareARP(next, ours, ourErr)
	case layers.EthernetTypeIPv4:
		return compareIPv4(next, ours, ourErr)
	}
	if ourErr != nil || ours.ARP() != nil || ours.IPv4() != nil {
		return fmt.Errorf("ethernet type %v: ours decoded further (%v)", nextType, ourErr)
	}
	return nil
}

func compareARP(b []byte, ours header.Frame, ourErr error) error {
	var arp layers.ARP
	var fb feedback
	gErr := decode(&arp, b, &fb)
	// gopacket keeps the hardware type in a uint8 LinkType, losing its high
	// byte (0x0101 reads as Ethernet), so the oracle reads it from the bytes.
	generic := gErr == nil && (binary.BigEndian.Uint16(b[0:2]) != 1 || arp.Protocol != layers.EthernetTypeIPv4 ||
		arp.HwAddressSize != 6 || arp.ProtAddressSize != 4)
	switch ourErr {
	case nil:
		if gErr != nil || generic {
			return fmt.Errorf("arp: ours accepted, gopacket %v %+v", gErr, arp)
		}
		a := ours.ARP()
		if a.Op() != arp.Operation || !bytes.Equal(a[8:14], arp.SourceHwAddress) || !bytes.Equal(a[14:18], arp.SourceProtAddress) ||
			!bytes.Equal(a[18:24], arp.DstHwAddress) || !bytes.Equal(a[24:28], arp.DstProtAddress) {
			return fmt.Errorf("arp: fields differ")
		}
		return nil
	case header.ErrARPTruncated:
		if gErr == nil && !generic {
			return fmt.Errorf("arp: ours truncated, gopacket accepted an Ethernet/IPv4 ARP")
		}
		return nil
	case header.ErrARPHardwareType, header.ErrARPProtocolType, header.ErrARPAddressLength:
		if gErr == nil && !generic {
			return fmt.Errorf("arp: ours %v, gopacket decoded Ethernet/IPv4 ARP", ourErr)
		}
		if len(b) < 6 {
			return fmt.Errorf("arp: ours %v on %d bytes", ourErr, len(b))
		}
		h, p := binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4])
		if (ourErr == header.ErrARPHardwareType) != (h != 1) ||
			(ourErr == header.ErrARPProtocolType) != (h == 1 && p != 0x0800) ||
			(ourErr == header.ErrARPAddressLength) != (h == 1 && p == 0x0800) {
			return fmt.Errorf("arp: ours %v, htype %d ptype %#x", ourErr, h, p)
		}
		return nil
	}
	return fmt.Errorf("arp: unexpected error %v", ourErr)
}

func ipv4OptionLen2(opts []byte) bool {
	for len(opts) > 0 {
		switch opts[0] {
		case 0:
			return false
		case 1:
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
			return false
		}
		if opts[1] == 2 {
			return true
		}
		opts = opts[opts[1]:]
	}
	return false
}

func compareIPv4(b []byte, ours header.Frame, ourErr error) error {
	var ip layers.IPv4
	var fb feedback
	gErr := decode(&ip, b, &fb)
	if ours.IPv4() == nil {
		if ourErr == nil {
			return fmt.Errorf("ipv4: ours decoded nothing and no error")
		}
		if len(b) < 20 {
			if ourErr != header.ErrIPv4Truncated || gErr == nil {
				return fmt.Errorf("ipv4: %d bytes: ours %v gopacket %v", len(b), ourErr, gErr)
			}
			return nil
		}
		hl := int(b[0]&0xf) * 4
		tl := int(binary.BigEndian.Uint16(b[2:4]))
		var why bool
		switch ourErr {
		case header.ErrIPv4Version:
			why = ip.Version != 4
		case header.ErrIPv4HeaderLength:
			why = gErr != nil && hl < 20
		case header.ErrIPv4HeaderTruncated:
			why = gErr != nil && hl > len(b)
		case header.ErrIPv4TotalLength:
			why = tl < hl && (gErr != nil || tl == 0)
		case header.ErrIPv4TotalTruncated:
			why = tl > len(b) && (gErr != nil || fb.truncated)
		case header.ErrIPv4Checksum:
			why = refSum(b[:hl]) != 0xffff
		case header.ErrIPv4Options:
			why = gErr != nil
		case header.ErrIPv4FragmentTooBig:
			why = int(ip.FragOffset)*8+int(ip.Length) > 65535
		}
		if !why {
			return fmt.Errorf("ipv4: ours %v not confirmed (gopacket %v, truncated %v)", ourErr, gErr, fb.truncated)
		}
		return nil
	}
	o := ours.IPv4()
	if gErr != nil {
		if ipv4OptionLen2(o.Options()) {
			return nil // gopacket's documented strictness
		}
		return fmt.Errorf("ipv4: ours accepted, gopacket %v", gErr)
	}
	if fb.truncated {
		return fmt.Errorf("ipv4: ours accepted, gopacket flagged truncated")
	}
	if o.Version() != ip.Version || o.HeaderLen() != int(ip.IHL)*4 || o.TOS() != ip.TOS || o.TotalLen() != ip.Length ||
		o.ID() != ip.Id || o.Flags() != uint8(ip.Flags) || o.FragmentOffset() != int(ip.FragOffset)*8 ||
		o.TTL() != ip.TTL || o.Protocol() != uint8(ip.Protocol) || o.Checksum() != ip.Checksum ||
		!bytes.Equal(o[12:16], ip.SrcIP) || !bytes.Equal(o[16:20], ip.DstIP) ||
		!bytes.Equal(o.Options(), ip.Contents[20:]) || !bytes.Equal(o.Payload(), ip.Payload) {
		return fmt.Errorf("ipv4: fields differ: ours % x, gopacket %+v", o[:o.HeaderLen()], ip)
	}
	if o.IsFragment() != (ip.NextLayerType() == gopacket.LayerTypeFragment) {
		return fmt.Errorf("ipv4: fragment status differs")
	}
	if o.IsFragment() {
		if ours.ICMPv4() != nil || ours.UDP() != nil || ours.TCP() != nil || ourErr != nil {
			return fmt.Errorf("ipv4: ours decoded a fragment's transport (%v)", ourErr)
		}
		return nil
	}
	switch ip.Protocol {
	case layers.IPProtocolICMPv4:
		return compareICMP(ip.Payload, ours, ourErr)
	case layers.IPProtocolUDP:
		return compareUDP(ip, ours, ourErr)
	case layers.IPProtocolTCP:
		return compareTCP(ip, ours, ourErr)
	}
	if ourErr != nil || ours.ICMPv4() != nil || ours.UDP() != nil || ours.TCP() != nil {
		return fmt.Errorf("ip protocol %v: ours decoded further (%v)", ip.Protocol, ourErr)
	}
	return nil
}

func compareICMP(b []byte, ours header.Frame, ourErr error) error {
	var m layers.ICMPv4
	var fb feedback
	gErr := decode(&m, b, &fb)
	switch ourErr {
	case nil:
		o := ours.ICMPv4()
		if gErr != nil {
			return fmt.Errorf("icmpv4: ours accepted, gopacket %v", gErr)
		}
		if o.Type() != m.TypeCode.Type() || o.Code() != m.TypeCode.Code() || o.Checksum() != m.Checksum ||
			o.Ident() != m.Id || o.Seq() != m.Seq || !bytes.Equal(o.Payload(), m.Payload) {
			return fmt.Errorf("icmpv4: fields differ")
		}
		return nil
	case header.ErrICMPv4Truncated:
		if gErr == nil {
			return fmt.Errorf("icmpv4: ours truncated, gopacket accepted")
		}
		return nil
	case header.ErrICMPv4Checksum:
		if gErr != nil || refSum(b) == 0xffff {
			return fmt.Errorf("icmpv4: ours bad checksum not confirmed (gopacket %v)", gErr)
		}
		return nil
	}
	return fmt.Errorf("icmpv4: unexpected error %v", ourErr)
}

func compareUDP(ip layers.IPv4, ours header.Frame, ourErr error) error {
	var u layers.UDP
	var fb feedback
	b := ip.Payload
	gErr := decode(&u, b, &fb)
	switch ourErr {
	case nil:
		o := ours.UDP()
		if gErr != nil || fb.truncated {
			return fmt.Errorf("udp: ours accepted, gopacket %v truncated %v", gErr, fb.truncated)
		}
		if o.SrcPort() != uint16(u.SrcPort) || o.DstPort() != uint16(u.DstPort) || o.Length() != u.Length ||
			o.Checksum() != u.Checksum || !bytes.Equal(o.Payload(), u.Payload) {
			return fmt.Errorf("udp: fields differ")
		}
		return nil
	case header.ErrUDPTruncated:
		if gErr == nil {
			return fmt.Errorf("udp: ours truncated, gopacket accepted")
		}
		return nil
	case header.ErrUDPLength:
		if gErr == nil && !fb.truncated && u.Length != 0 {
			return fmt.Errorf("udp: ours bad length %d, gopacket accepted", u.Length)
		}
		return nil
	case header.ErrUDPChecksum:
		n := int(u.Length)
		if gErr != nil || fb.truncated || u.Checksum == 0 || refSum(pseudo(ip.SrcIP, ip.DstIP, 17, n), b[:n]) == 0xffff {
			return fmt.Errorf("udp: ours bad checksum not confirmed (gopacket %v)", gErr)
		}
		return nil
	}
	return fmt.Errorf("udp: unexpected error %v", ourErr)
}

// tcpOptionBadSize reports whether a decoded gopacket option list holds a
// known option with the wrong length (what proto/header rejects).
func tcpOptionBadSize(opts []layers.TCPOption) bool {
	for _, o := range opts {
		n := int(o.OptionLength)
		switch o.OptionType {
		case layers.TCPOptionKindMSS:
			if n != 4 {
				return true
			}
		case layers.TCPOptionKindWindowScale:
			if n != 3 {
				return true
			}
		case layers.TCPOptionKindSACKPermitted:
			if n != 2 {
				return true
			}
		case layers.TCPOptionKindSACK:
			if n < 10 || (n-2)%8 != 0 {
				return true
			}
		case layers.TCPOptionKindTimestamps:
			if n != 10 {
				return true
			}
		}
	}
	return false
}

func compareTCP(ip layers.IPv4, ours header.Frame, ourErr error) error {
	var t layers.TCP
	var fb feedback
	b := ip.Payload
	gErr := decode(&t, b, &fb)
	switch ourErr {
	case nil:
		o := ours.TCP()
		if gErr != nil || fb.truncated {
			return fmt.Errorf("tcp: ours accepted, gopacket %v", gErr)
		}
		fl := o.Flags()
		if o.SrcPort() != uint16(t.SrcPort) || o.DstPort() != uint16(t.DstPort) || o.Seq() != t.Seq || o.Ack() != t.Ack ||
			o.DataOffset() != t.DataOffset || o.Window() != t.Window || o.Checksum() != t.Checksum || o.Urgent() != t.Urgent ||
			fl.Has(header.TCPFlagFIN) != t.FIN || fl.Has(header.TCPFlagSYN) != t.SYN || fl.Has(header.TCPFlagRST) != t.RST ||
			fl.Has(header.TCPFlagPSH) != t.PSH || fl.Has(header.TCPFlagACK) != t.ACK || fl.Has(header.TCPFlagURG) != t.URG ||
			fl.Has(header.TCPFlagECE) != t.ECE || fl.Has(header.TCPFlagCWR) != t.CWR || !bytes.Equal(o.Payload(), t.Payload) {
			return fmt.Errorf("tcp: fields differ")
		}
		// Options: the same sequence of non-padding options.
		var g []layers.TCPOption
		for _, opt := range t.Options {
			if opt.OptionType == layers.TCPOptionKindEndList {
				break
			}
			if opt.OptionType != layers.TCPOptionKindNop {
				g = append(g, opt)
			}
		}
		it := o.Options()
		i := 0
		for opt, ok := it.Next(); ok; opt, ok = it.Next() {
			if i >= len(g) || uint8(g[i].OptionType) != opt.Kind || !bytes.Equal(g[i].OptionData, opt.Data) {
				return fmt.Errorf("tcp: option %d differs", i)
			}
			i++
		}
		if it.Err() != nil || i != len(g) {
			return fmt.Errorf("tcp: option lists differ (%d vs %d, %v)", i, len(g), it.Err())
		}
		return nil
	case header.ErrTCPTruncated, header.ErrTCPDataOffset, header.ErrTCPHeaderTruncated, header.ErrTCPOptionLength:
		if gErr == nil {
			return fmt.Errorf("tcp: ours %v, gopacket accepted", ourErr)
		}
		return nil
	case header.ErrTCPChecksum:
		if refSum(pseudo(ip.SrcIP, ip.DstIP, 6, len(b)), b) == 0xffff {
			return fmt.Errorf("tcp: ours bad checksum not confirmed")
		}
		return nil
	case header.ErrTCPOptionSize:
		if gErr == nil && !tcpOptionBadSize(t.Options) {
			return fmt.Errorf("tcp: ours bad option size not confirmed: %v", t.Options)
		}
		return nil
	}
	return fmt.Errorf("tcp: unexpected error %v", ourErr)
}
