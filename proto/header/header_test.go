package header_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"pgregory.net/rapid"

	"github.com/verinic/verinic/proto/checksum"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/header/headertest"
)

func mustDecode(t *testing.T, b []byte) header.Frame {
	t.Helper()
	var f header.Frame
	if err := header.DecodeFrame(b, &f); err != nil {
		t.Fatalf("DecodeFrame: %v", err)
	}
	return f
}

func TestSampleFramesDecode(t *testing.T) {
	for _, s := range headertest.Frames() {
		t.Run(s.Name, func(t *testing.T) {
			f := mustDecode(t, s.Frame)
			if f.Ethernet().Src() != headertest.MACA && f.Ethernet().Src() != headertest.MACB {
				t.Errorf("src MAC %v", f.Ethernet().Src())
			}
			if f.ARP() == nil && f.IPv4() == nil {
				t.Fatalf("no network layer decoded")
			}
			if f.IPv4() != nil && !f.IPv4().IsFragment() && f.ICMPv4() == nil && f.UDP() == nil && f.TCP() == nil {
				t.Fatalf("no transport layer decoded")
			}
		})
	}
}

func TestUDPFields(t *testing.T) {
	b := headertest.UDPFrame(headertest.Options{VLAN: true, IPOptions: headertest.IPv4Options, Flags: header.IPv4FlagDontFragment, TTL: 9}, 33)
	// Trailing link padding must be trimmed away by the IP and UDP views.
	b = append(b, 0xee, 0xee, 0xee)
	f := mustDecode(t, b)
	eth := f.Ethernet()
	if tci, ok := eth.VLAN(); !ok || tci != 42 || eth.EtherType() != header.EtherTypeIPv4 || eth.HeaderLen() != 18 {
		t.Fatalf("VLAN tci %d ok %v type %#x hl %d", tci, ok, eth.EtherType(), eth.HeaderLen())
	}
	if eth.Dst() != headertest.MACB || eth.Src() != headertest.MACA {
		t.Fatalf("MACs %v %v", eth.Dst(), eth.Src())
	}
	ip := f.IPv4()
	if ip.HeaderLen() != 28 || ip.TotalLen() != 28+8+33 || len(ip) != int(ip.TotalLen()) || ip.ID() != 0x1234 ||
		!ip.DontFragment() || ip.MoreFragments() || ip.FragmentOffset() != 0 || ip.TTL() != 9 ||
		ip.Protocol() != header.IPProtocolUDP || ip.Src() != headertest.IPA || ip.Dst() != headertest.IPB ||
		string(ip.Options()) != string(headertest.IPv4Options) || ip.Version() != 4 || ip.Flags() != header.IPv4FlagDontFragment {
		t.Fatalf("IPv4 fields wrong: % x", []byte(ip))
	}
	u := f.UDP()
	if u.SrcPort() != 40000 || u.DstPort() != 7 || u.Length() != 41 || string(u.Payload()) != string(headertest.Payload(33)) || u.Checksum() == 0 {
		t.Fatalf("UDP fields wrong: % x", []byte(u))
	}
}

func TestTCPFieldsAndOptions(t *testing.T) {
	b := headertest.TCPFrame(headertest.Options{}, header.TCPFlagSYN|header.TCPFlagACK|header.TCPFlagECE, headertest.TCPOptionsSYN(), 5)
	seg := mustDecode(t, b).TCP()
	if seg.SrcPort() != 40000 || seg.DstPort() != 80 || seg.Seq() != 0x11223344 || seg.Ack() != 0x55667788 ||
		seg.DataOffset() != 10 || seg.HeaderLen() != 40 || seg.Window() != 65535 || seg.Urgent() != 0 ||
		seg.Flags() != header.TCPFlagSYN|header.TCPFlagACK|header.TCPFlagECE || seg.SegmentLen() != 6 ||
		string(seg.Payload()) != "abcde" {
		t.Fatalf("TCP fields wrong: % x", []byte(seg))
	}
	if s := seg.Flags().String(); s != "SYN|ACK|ECE" {
		t.Fatalf("flags string %q", s)
	}
	var o header.TCPOptions
	if err := header.ParseTCPOptions(seg, &o); err != nil {
		t.Fatal(err)
	}
	want := header.TCPOptions{HasMSS: true, MSS: 1460, HasWindowScale: true, WindowScale: 7, SACKPermitted: true,
		HasTimestamps: true, TSVal: 0x01020304}
	if o != want {
		t.Fatalf("options %+v, want %+v", o, want)
	}
	seg = mustDecode(t, headertest.TCPFrame(headertest.Options{}, header.TCPFlagACK, headertest.TCPOptionsSACK(), 0)).TCP()
	if err := header.ParseTCPOptions(seg, &o); err != nil {
		t.Fatal(err)
	}
	if o.SACKBlockCount != 2 || o.SACKBlocks[0] != (header.SACKBlock{Left: 3000, Right: 4000}) ||
		o.SACKBlocks[1] != (header.SACKBlock{Left: 5000, Right: 6000}) || o.TSVal != 1000 || o.TSEcr != 2000 {
		t.Fatalf("SACK options %+v", o)
	}
}

func TestICMPFields(t *testing.T) {
	m := mustDecode(t, headertest.ICMPEchoFrame(headertest.Options{}, 57)).ICMPv4()
	if m.Type() != header.ICMPv4Echo || m.Code() != 0 || m.Ident() != 0x4242 || m.Seq() != 7 || len(m.Payload()) != 57 || m.IsError() {
		t.Fatalf("echo fields wrong: % x", []byte(m))
	}
	m = mustDecode(t, headertest.ICMPFragNeededFrame(1280)).ICMPv4()
	if m.Type() != header.ICMPv4DestinationUnreachable || m.Code() != header.ICMPv4FragmentationNeeded || m.NextHopMTU() != 1280 || !m.IsError() {
		t.Fatalf("frag-needed fields wrong: % x", []byte(m))
	}
	quoted, err := header.ParseIPv4(m.Payload())
	if err == nil || !errors.Is(err, header.ErrIPv4TotalTruncated) {
		t.Fatalf("a quoted header is truncated by design; ParseIPv4 = %v, %v", quoted, err)
	}
}

func TestARPFields(t *testing.T) {
	a := mustDecode(t, headertest.ARPFrame(header.ARPRequest)).ARP()
	if len(a) != 28 || a.Op() != header.ARPRequest || a.SenderMAC() != headertest.MACA || a.SenderIP() != headertest.IPA ||
		!a.TargetMAC().IsZero() || a.TargetIP() != headertest.IPB {
		t.Fatalf("ARP fields wrong: % x", []byte(a))
	}
}

// put16 returns a copy of b with a big-endian 16-bit value at off.
func put16(b []byte, off int, v uint16) []byte {
	c := append([]byte(nil), b...)
	binary.BigEndian.PutUint16(c[off:], v)
	return c
}

// fixIPChecksum recomputes the header checksum of the IPv4 header at off so
// that a test reaches the check it aims at.
func fixIPChecksum(b []byte, off int) []byte {
	hl := int(b[off]&0xf) * 4
	if hl < 20 || off+hl > len(b) {
		return b
	}
	b[off+10], b[off+11] = 0, 0
	binary.BigEndian.PutUint16(b[off+10:], checksum.Checksum(b[off:off+hl], 0))
	return b
}

func TestParseErrors(t *testing.T) {
	udp := headertest.UDPFrame(headertest.Options{}, 20)
	tcp := headertest.TCPFrame(headertest.Options{}, header.TCPFlagSYN, headertest.TCPOptionsSYN(), 0)
	icmp := headertest.ICMPEchoFrame(headertest.Options{}, 8)
	arp := headertest.ARPFrame(header.ARPRequest)
	const ip, l4 = 14, 34
	with := func(b []byte, f func([]byte)) []byte { c := append([]byte(nil), b...); f(c); return c }
	cases := []struct {
		name  string
		frame []byte
		want  error
		kind  error
	}{
		{"eth short", udp[:13], header.ErrEthernetTruncated, header.ErrTruncated},
		{"vlan short", with(udp[:16], func(b []byte) { binary.BigEndian.PutUint16(b[12:], header.EtherTypeVLAN) }), header.ErrEthernetVLANTruncated, header.ErrTruncated},
		{"arp short", arp[:14+27], header.ErrARPTruncated, header.ErrTruncated},
		{"arp htype", put16(arp, 14, 6), header.ErrARPHardwareType, header.ErrUnsupported},
		{"arp ptype", put16(arp, 16, 0x86dd), header.ErrARPProtocolType, header.ErrUnsupported},
		{"arp hlen", with(arp, func(b []byte) { b[18] = 8 }), header.ErrARPAddressLength, header.ErrMalformed},
		{"ip short", udp[:ip+19], header.ErrIPv4Truncated, header.ErrTruncated},
		{"ip version", fixIPChecksum(with(udp, func(b []byte) { b[ip] = 0x65 }), ip), header.ErrIPv4Version, header.ErrMalformed},
		{"ip ihl", fixIPChecksum(with(udp, func(b []byte) { b[ip] = 0x44 }), ip), header.ErrIPv4HeaderLength, header.ErrMalformed},
		{"ip header truncated", with(udp[:ip+24], func(b []byte) { b[ip] = 0x4f }), header.ErrIPv4HeaderTruncated, header.ErrTruncated},
		{"ip total < header", fixIPChecksum(put16(udp, ip+2, 19), ip), header.ErrIPv4TotalLength, header.ErrMalformed},
		{"ip total > frame", fixIPChecksum(put16(udp, ip+2, uint16(len(udp)-ip+1)), ip), header.ErrIPv4TotalTruncated, header.ErrTruncated},
		{"ip checksum", with(udp, func(b []byte) { b[ip+8]-- }), header.ErrIPv4Checksum, header.ErrChecksum},
		{"ip option length", fixIPChecksum(with(headertest.UDPFrame(headertest.Options{IPOptions: headertest.IPv4Options}, 4), func(b []byte) { b[ip+22] = 40 }), ip), header.ErrIPv4Options, header.ErrMalformed},
		{"ip option zero length", fixIPChecksum(with(headertest.UDPFrame(headertest.Options{IPOptions: headertest.IPv4Options}, 4), func(b []byte) { b[ip+22] = 1 }), ip), header.ErrIPv4Options, header.ErrMalformed},
		{"ip fragment overflow", fixIPChecksum(put16(udp, ip+6, 0x1fff), ip), header.ErrIPv4FragmentTooBig, header.ErrMalformed},
		{"icmp short", fixIPChecksum(put16(icmp[:l4+7], ip+2, 27), ip), header.ErrICMPv4Truncated, header.ErrTruncated},
		{"icmp checksum", with(icmp, func(b []byte) { b[l4+8]++ }), header.ErrICMPv4Checksum, header.ErrChecksum},
		{"udp short", fixIPChecksum(put16(udp[:l4+7], ip+2, 27), ip), header.ErrUDPTruncated, header.ErrTruncated},
		{"udp length small", put16(udp, l4+4, 7), header.ErrUDPLength, header.ErrMalformed},
		{"udp length big", put16(udp, l4+4, 29), header.ErrUDPLength, header.ErrMalformed},
		{"udp checksum", with(udp, func(b []byte) { b[len(b)-1]++ }), header.ErrUDPChecksum, header.ErrChecksum},
		{"tcp short", fixIPChecksum(put16(tcp[:l4+19], ip+2, 39), ip), header.ErrTCPTruncated, header.ErrTruncated},
		{"tcp data offset", with(tcp, func(b []byte) { b[l4+12] = 0x40 }), header.ErrTCPDataOffset, header.ErrMalformed},
		{"tcp header truncated", with(tcp, func(b []byte) { b[l4+12] = 0xf0 }), header.ErrTCPHeaderTruncated, header.ErrTruncated},
		{"tcp checksum", with(tcp, func(b []byte) { b[l4+4]++ }), header.ErrTCPChecksum, header.ErrChecksum},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var f header.Frame
			err := header.DecodeFrame(c.frame, &f)
			if err != c.want {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if !errors.Is(err, c.kind) {
				t.Fatalf("errors.Is(%v, %v) is false", err, c.kind)
			}
			if err.Error() == "" {
				t.Fatal("empty message")
			}
		})
	}
}

// refixTCP recomputes the checksum of a TCP segment inside an IPv4 frame
// after a test edited it.
func refixTCP(b []byte) []byte {
	seg := b[34:]
	seg[16], seg[17] = 0, 0
	ph := checksum.PseudoHeaderSum(headertest.IPA, headertest.IPB, header.IPProtocolTCP, uint16(len(seg)))
	binary.BigEndian.PutUint16(seg[16:], checksum.Checksum(seg, ph))
	return b
}

func TestTCPOptionErrors(t *testing.T) {
	// Options start at byte 54 of the frame: MSS(4) SACKOK(2) TS(10) NOP WS(3).
	base := headertest.TCPFrame(headertest.Options{}, header.TCPFlagSYN, headertest.TCPOptionsSYN(), 0)
	cases := []struct {
		name string
		off  int
		val  byte
		want error
	}{
		{"mss length 3", 55, 3, header.ErrTCPOptionSize},
		{"zero length", 55, 0, header.ErrTCPOptionLength},
		{"length one", 55, 1, header.ErrTCPOptionLength},
		{"past header", 72, 4, header.ErrTCPOptionLength},
		{"sack-permitted length 3", 59, 3, header.ErrTCPOptionSize},
		{"timestamps length 8", 61, 8, header.ErrTCPOptionSize},
		{"window scale length 2", 72, 2, header.ErrTCPOptionSize},
		{"sack length 9", 54, header.TCPOptionSACK, header.ErrTCPOptionSize},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := append([]byte(nil), base...)
			b[c.off] = c.val
			var f header.Frame
			if err := header.DecodeFrame(refixTCP(b), &f); err != c.want {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	// An unknown option with a sound length is skipped; EOL ends the list.
	b := append([]byte(nil), base...)
	b[54] = 99
	f := mustDecode(t, refixTCP(b))
	var o header.TCPOptions
	if err := header.ParseTCPOptions(f.TCP(), &o); err != nil || o.HasMSS || !o.SACKPermitted {
		t.Fatalf("unknown option: %+v %v", o, err)
	}
	b = append([]byte(nil), base...)
	b[54] = header.TCPOptionEOL
	b[55] = 0xff // garbage after EOL is padding
	f = mustDecode(t, refixTCP(b))
	if err := header.ParseTCPOptions(f.TCP(), &o); err != nil || o != (header.TCPOptions{}) {
		t.Fatalf("EOL: %+v %v", o, err)
	}
	// Window scale above 14 reads as 14 (RFC 7323 §2.3).
	b = append([]byte(nil), base...)
	b[73] = 15
	f = mustDecode(t, refixTCP(b))
	if err := header.ParseTCPOptions(f.TCP(), &o); err != nil || o.WindowScale != 14 {
		t.Fatalf("window scale 15: %+v %v", o, err)
	}
}

// Property: every setter keeps the IPv4 header checksum valid, and the
// incrementally updated checksum equals a fresh computation.
func TestIPv4SettersKeepChecksum(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		opts := headertest.Options{TTL: rapid.Uint8Range(1, 255).Draw(t, "ttl")}
		if rapid.Bool().Draw(t, "ipopts") {
			opts.IPOptions = headertest.IPv4Options
		}
		b := headertest.UDPFrame(opts, rapid.IntRange(0, 100).Draw(t, "payload"))
		ip, err := header.ParseIPv4(b[14:])
		if err != nil {
			t.Fatal(err)
		}
		for i := rapid.IntRange(1, 6).Draw(t, "edits"); i > 0; i-- {
			switch rapid.IntRange(0, 4).Draw(t, "setter") {
			case 0:
				ip.SetTTL(rapid.Uint8().Draw(t, "ttl'"))
			case 1:
				ip.SetTOS(rapid.Uint8().Draw(t, "tos"))
			case 2:
				ip.SetID(rapid.Uint16().Draw(t, "id"))
			case 3:
				ip.SetSrc(header.IPv4AddrFromUint32(rapid.Uint32().Draw(t, "src")))
			case 4:
				ip.SetDst(header.IPv4AddrFromUint32(rapid.Uint32().Draw(t, "dst")))
			}
			if !ip.ChecksumValid() {
				t.Fatalf("checksum invalid after edit: % x", []byte(ip))
			}
			got := ip.Checksum()
			ip.SetChecksum()
			if ip.Checksum() != got {
				t.Fatalf("incremental checksum %#04x, recomputed %#04x", got, ip.Checksum())
			}
		}
	})
}

// Property: what EncodeIPv4 writes parses back to the same fields.
func TestIPv4RoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		nopt := rapid.IntRange(0, 10).Draw(t, "optwords") * 4
		opt := make([]byte, nopt)
		for i := range opt {
			opt[i] = header.IPv4OptionNOP
		}
		payload := rapid.IntRange(0, 200).Draw(t, "payload")
		f := header.IPv4Fields{
			TOS: rapid.Uint8().Draw(t, "tos"), ID: rapid.Uint16().Draw(t, "id"),
			Flags:      rapid.Uint8Range(0, 3).Draw(t, "flags"),
			FragOffset: uint16(rapid.IntRange(0, 1000).Draw(t, "frag") * 8),
			TTL:        rapid.Uint8().Draw(t, "ttl"), Protocol: rapid.Uint8().Draw(t, "proto"),
			Src: header.IPv4AddrFromUint32(rapid.Uint32().Draw(t, "src")), Dst: header.IPv4AddrFromUint32(rapid.Uint32().Draw(t, "dst")),
			Options: opt,
		}
		f.TotalLen = uint16(f.HeaderLen() + payload)
		b := make([]byte, f.TotalLen)
		hl := header.EncodeIPv4(b, f)
		ip, err := header.ParseIPv4(b)
		if err != nil {
			t.Fatalf("ParseIPv4: %v", err)
		}
		if hl != ip.HeaderLen() || ip.TOS() != f.TOS || ip.ID() != f.ID || ip.Flags() != f.Flags ||
			ip.FragmentOffset() != int(f.FragOffset) || ip.TTL() != f.TTL || ip.Protocol() != f.Protocol ||
			ip.Src() != f.Src || ip.Dst() != f.Dst || ip.TotalLen() != f.TotalLen || len(ip.Payload()) != payload {
			t.Fatalf("round trip mismatch: % x", b)
		}
	})
}

// Property: UDP and TCP built by the encoders verify, and any single-bit
// corruption of the segment is caught by the checksum or a length check.
func TestTransportChecksumsCatchBitFlips(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 300).Draw(t, "payload")
		var b []byte
		if rapid.Bool().Draw(t, "tcp") {
			b = headertest.TCPFrame(headertest.Options{}, header.TCPFlagACK, headertest.TCPOptionsSACK(), n)
		} else {
			b = headertest.UDPFrame(headertest.Options{}, n)
		}
		mustDecodeR(t, b)
		bit := rapid.IntRange(34*8, len(b)*8-1).Draw(t, "bit")
		b[bit/8] ^= 1 << (bit % 8)
		var f header.Frame
		if err := header.DecodeFrame(b, &f); err == nil {
			t.Fatalf("bit %d flipped, frame still decodes", bit)
		}
	})
}

func mustDecodeR(t *rapid.T, b []byte) {
	var f header.Frame
	if err := header.DecodeFrame(b, &f); err != nil {
		t.Fatalf("DecodeFrame: %v", err)
	}
}

func TestUDPZeroChecksum(t *testing.T) {
	b := headertest.UDPFrame(headertest.Options{}, 10)
	b[34+6], b[34+7] = 0, 0 // "no checksum" (RFC 768)
	b[len(b)-1]++           // not covered by anything now
	if f := mustDecode(t, b); f.UDP().Checksum() != 0 {
		t.Fatal("checksum field not zero")
	}
}

// A UDP checksum that computes to zero is sent as 0xFFFF (RFC 768).
func TestUDPChecksumZeroSentAsOnes(t *testing.T) {
	// Find a payload word that makes the computed checksum zero: with the
	// last two payload bytes free, solve for them.
	b := headertest.UDPFrame(headertest.Options{}, 10)
	seg := b[34:]
	seg[len(seg)-2], seg[len(seg)-1] = 0, 0
	seg[6], seg[7] = 0, 0
	ph := checksum.PseudoHeaderSum(headertest.IPA, headertest.IPB, header.IPProtocolUDP, uint16(len(seg)))
	s := checksum.Sum(seg, ph)
	// Adding ^s makes the sum 0xFFFF, hence checksum 0.
	binary.BigEndian.PutUint16(seg[len(seg)-2:], ^s)
	header.EncodeUDP(seg, 40000, 7, 10, headertest.IPA, headertest.IPB)
	if c := header.UDP(seg).Checksum(); c != 0xffff {
		t.Fatalf("checksum field %#04x, want 0xffff", c)
	}
	if _, err := header.ParseUDP(seg, headertest.IPA, headertest.IPB); err != nil {
		t.Fatal(err)
	}
}

func TestAddrs(t *testing.T) {
	m := header.MAC{0x02, 0xab, 0, 0x10, 0xff, 1}
	if m.String() != "02:ab:00:10:ff:01" || m.IsMulticast() || m.IsBroadcast() {
		t.Fatalf("MAC %v", m)
	}
	if p, err := header.ParseMAC("02-ab-00-10-ff-01"); err != nil || p != m {
		t.Fatalf("ParseMAC: %v %v", p, err)
	}
	for _, bad := range []string{"", "02:ab:00:10:ff", "02:ab:00:10:ff:0g", "02:ab:00:10:ff+01"} {
		if _, err := header.ParseMAC(bad); err == nil {
			t.Errorf("ParseMAC(%q) accepted", bad)
		}
	}
	if !header.BroadcastMAC.IsBroadcast() || !header.BroadcastMAC.IsMulticast() || !(header.MAC{0x01, 0, 0x5e}).IsMulticast() {
		t.Fatal("broadcast/multicast")
	}
	a := header.IPv4Addr{10, 0, 255, 1}
	if a.String() != "10.0.255.1" || a.Uint32() != 0x0a00ff01 || header.IPv4AddrFromUint32(0x0a00ff01) != a {
		t.Fatalf("IPv4Addr %v", a)
	}
	if p, err := header.ParseIPv4Addr("10.0.255.1"); err != nil || p != a {
		t.Fatalf("ParseIPv4Addr: %v %v", p, err)
	}
	if _, err := header.ParseIPv4Addr("::1"); err == nil {
		t.Fatal("ParseIPv4Addr accepted IPv6")
	}
	if n, ok := header.IPv4AddrFromNetip(a.Netip()); !ok || n != a {
		t.Fatal("netip round trip")
	}
	if !(header.IPv4Addr{224, 0, 0, 1}).IsMulticast() || !(header.IPv4Addr{127, 1, 2, 3}).IsLoopback() || !header.IPv4Any.IsUnspecified() || !header.IPv4Broadcast.IsBroadcast() {
		t.Fatal("address classes")
	}
}

// The per-packet path allocates nothing: decoding, option parsing, errors,
// encoding and setters.
func TestNoAllocations(t *testing.T) {
	frames := headertest.Frames()
	bad := append([]byte(nil), frames[2].Frame...)
	bad[len(bad)-1]++
	var f header.Frame
	var o header.TCPOptions
	buf := make([]byte, 1514)
	allocs := testing.AllocsPerRun(50, func() {
		for _, s := range frames {
			_ = header.DecodeFrame(s.Frame, &f)
			if f.TCP() != nil {
				_ = header.ParseTCPOptions(f.TCP(), &o)
			}
		}
		_ = header.DecodeFrame(bad, &f)
		n := header.EncodeEthernet(buf, headertest.MACA, headertest.MACB, header.EtherTypeIPv4)
		n += header.EncodeIPv4(buf[n:], header.IPv4Fields{TotalLen: 28, TTL: 64, Protocol: header.IPProtocolUDP})
		header.EncodeUDP(buf[n:], 1, 2, 0, headertest.IPA, headertest.IPB)
		header.IPv4(buf[14:]).SetTTL(3)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}
