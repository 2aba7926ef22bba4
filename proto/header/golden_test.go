package header_test

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/verinic/verinic/proto/header"
)

// Golden frames captured from the Linux kernel (6.18), not built by this
// package's encoders: two network namespaces joined by a veth pair, va
// (02:00:00:00:00:0a, 192.0.2.1) and vb (02:00:00:00:00:0b, 192.0.2.2),
// tshark capturing on vb. The expected values are tshark's dissection of the
// same bytes (`tshark -V`), one assertion per field.
//
// veth leaves UDP and TCP checksums of locally sent packets partial (the
// pseudo-header sum only, CHECKSUM_PARTIAL): tshark reports those two as bad
// and says what they should be; the tests below check both facts.
const (
	// Frame 1: ARP request, who has 192.0.2.2? tell 192.0.2.1.
	goldenARP = `ffffffffffff 02000000000a 0806
	0001 0800 06 04 0001 02000000000a c0000201 000000000000 c0000202`
	// Frame 5: ICMP echo request from a ping socket, id 0xbf07, seq 1, "verinic".
	goldenICMPEcho = `02000000000b 02000000000a 0800
	4500 0023 2b0c 4000 4001 8bca c0000201 c0000202
	0800 7ebe bf07 0001 766572696e6963`
	// Frame 8: TCP RST|ACK from 192.0.2.2:9 to 192.0.2.1:40001 (connection refused).
	goldenTCPRST = `02000000000a 02000000000b 0800
	4500 0028 0000 4000 4006 b6cc c0000202 c0000201
	0009 9c41 00000000 c23579d2 5014 0000 537a 0000`
	// Frame 7: the SYN it refused: MSS 1460, SACK permitted, timestamps,
	// NOP, window scale 10. TCP checksum partial (tshark: should be 0x9f8d).
	goldenTCPSYN = `02000000000b 02000000000a 0800
	4500 003c be03 4000 4006 f8b4 c0000201 c0000202
	9c41 0009 c23579d1 00000000 a002 faf0 8432 0000
	020405b4 0402 080a 414d0fdc 00000000 01 03030a`
	// Frame 3: UDP 192.0.2.1:40000 -> 192.0.2.2:7, "verinic golden".
	// UDP checksum partial (tshark: should be 0xebdb).
	goldenUDP = `02000000000b 02000000000a 0800
	4500 002a 7930 4000 4011 3d8f c0000201 c0000202
	9c40 0007 0016 842b 766572696e696320676f6c64656e`
)

func golden(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	lxMACA = header.MAC{0x02, 0, 0, 0, 0, 0x0a}
	lxMACB = header.MAC{0x02, 0, 0, 0, 0, 0x0b}
	lxIPA  = header.IPv4Addr{192, 0, 2, 1}
	lxIPB  = header.IPv4Addr{192, 0, 2, 2}
)

func checkField[T comparable](t *testing.T, field string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", field, got, want)
	}
}

func TestGoldenARPRequest(t *testing.T) {
	b := golden(t, goldenARP)
	eth, err := header.ParseEthernet(b)
	if err != nil {
		t.Fatal(err)
	}
	checkField(t, "eth.Dst", eth.Dst(), header.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	checkField(t, "eth.Src", eth.Src(), lxMACA)
	checkField(t, "eth.EtherType", eth.EtherType(), header.EtherTypeARP)
	checkField(t, "eth.HeaderLen", eth.HeaderLen(), 14)
	a, err := header.ParseARP(eth.Payload())
	if err != nil {
		t.Fatal(err)
	}
	checkField(t, "arp.Op", a.Op(), header.ARPRequest)
	checkField(t, "arp.SenderMAC", a.SenderMAC(), lxMACA)
	checkField(t, "arp.SenderIP", a.SenderIP(), lxIPA)
	checkField(t, "arp.TargetMAC", a.TargetMAC(), header.MAC{})
	checkField(t, "arp.TargetIP", a.TargetIP(), lxIPB)
}

func TestGoldenICMPEcho(t *testing.T) {
	b := golden(t, goldenICMPEcho)
	eth, err := header.ParseEthernet(b)
	if err != nil {
		t.Fatal(err)
	}
	checkField(t, "eth.Dst", eth.Dst(), lxMACB)
	checkField(t, "eth.Src", eth.Src(), lxMACA)
	checkField(t, "eth.EtherType", eth.EtherType(), header.EtherTypeIPv4)
	ip, err := header.ParseIPv4(eth.Payload()) // the header checksum is Linux's
	if err != nil {
		t.Fatal(err)
	}
	checkField(t, "ip.Version", ip.Version(), 4)
	checkField(t, "ip.HeaderLen", ip.HeaderLen(), 20)
	checkField(t, "ip.TOS", ip.TOS(), 0)
	checkField(t, "ip.TotalLen", ip.TotalLen(), 35)
	checkField(t, "ip.ID", ip.ID(), 0x2b0c)
	checkField(t, "ip.Flags", ip.Flags(), header.IPv4FlagDontFragment)
	checkField(t, "ip.DontFragment", ip.DontFragment(), true)
	checkField(t, "ip.MoreFragments", ip.MoreFragments(), false)
	checkField(t, "ip.FragmentOffset", ip.FragmentOffset(), 0)
	checkField(t, "ip.TTL", ip.TTL(), 64)
	checkField(t, "ip.Protocol", ip.Protocol(), header.IPProtocolICMP)
	checkField(t, "ip.Checksum", ip.Checksum(), 0x8bca)
	checkField(t, "ip.Src", ip.Src(), lxIPA)
	checkField(t, "ip.Dst", ip.Dst(), lxIPB)
	m, err := header.ParseICMPv4(ip.Payload()) // the ICMP checksum is Linux's
	if err != nil {
		t.Fatal(err)
	}
	checkField(t, "icmp.Type", m.Type(), 8)
	checkField(t, "icmp.Code", m.Code(), 0)
	checkField(t, "icmp.Checksum", m.Checksum(), 0x7ebe)
	checkField(t, "icmp.Ident", m.Ident(), 0xbf07)
	checkField(t, "icmp.Seq", m.Seq(), 1)
	checkField(t, "icmp.Payload", string(m.Payload()), "verinic")
}

func TestGoldenTCPRST(t *testing.T) {
	b := golden(t, goldenTCPRST)
	eth, err := header.ParseEthernet(b)
	if err != nil {
		t.Fatal(err)
	}
	ip, err := header.ParseIPv4(eth.Payload())
	if err != nil {
		t.Fatal(err)
	}
	checkField(t, "ip.ID", ip.ID(), 0)
	checkField(t, "ip.TotalLen", ip.TotalLen(), 40)
	checkField(t, "ip.Protocol", ip.Protocol(), header.IPProtocolTCP)
	checkField(t, "ip.Src", ip.Src(), lxIPB)
	checkField(t, "ip.Dst", ip.Dst(), lxIPA)
	seg, err := header.ParseTCP(ip.Payload(), ip.Src(), ip.Dst()) // Linux's checksum
	if err != nil {
		t.Fatal(err)
	}
	checkField(t, "tcp.SrcPort", seg.SrcPort(), 9)
	checkField(t, "tcp.DstPort", seg.DstPort(), 40001)
	checkField(t, "tcp.Seq", seg.Seq(), 0)
	checkField(t, "tcp.Ack", seg.Ack(), 3258284498)
	checkField(t, "tcp.DataOffset", seg.DataOffset(), 5)
	checkField(t, "tcp.HeaderLen", seg.HeaderLen(), 20)
	checkField(t, "tcp.Flags", seg.Flags(), header.TCPFlagRST|header.TCPFlagACK)
	checkField(t, "tcp.Window", seg.Window(), 0)
	checkField(t, "tcp.Checksum", seg.Checksum(), 0x537a)
	checkField(t, "tcp.Urgent", seg.Urgent(), 0)
	checkField(t, "tcp.SegmentLen", seg.SegmentLen(), 0)
}

func TestGoldenTCPSYN(t *testing.T) {
	b := golden(t, goldenTCPSYN)
	eth, err := header.ParseEthernet(b)
	if err != nil {
		t.Fatal(err)
	}
	ip, err := header.ParseIPv4(eth.Payload())
	if err != nil {
		t.Fatal(err)
	}
	checkField(t, "ip.ID", ip.ID(), 0xbe03)
	checkField(t, "ip.TotalLen", ip.TotalLen(), 60)
	checkField(t, "ip.Checksum", ip.Checksum(), 0xf8b4)
	if _, err := header.ParseTCP(ip.Payload(), ip.Src(), ip.Dst()); err == nil {
		t.Error("ParseTCP accepted the partial checksum veth left (tshark: bad, should be 0x9f8d)")
	}
	seg, err := header.ParseTCPVerified(ip.Payload())
	if err != nil {
		t.Fatal(err)
	}
	checkField(t, "tcp.SrcPort", seg.SrcPort(), 40001)
	checkField(t, "tcp.DstPort", seg.DstPort(), 9)
	checkField(t, "tcp.Seq", seg.Seq(), 3258284497)
	checkField(t, "tcp.Ack", seg.Ack(), 0)
	checkField(t, "tcp.HeaderLen", seg.HeaderLen(), 40)
	checkField(t, "tcp.Flags", seg.Flags(), header.TCPFlagSYN)
	checkField(t, "tcp.Window", seg.Window(), 64240)
	checkField(t, "tcp.Checksum", seg.Checksum(), 0x8432)
	checkField(t, "tcp.SegmentLen", seg.SegmentLen(), 1)
	var o header.TCPOptions
	if err := header.ParseTCPOptions(seg, &o); err != nil {
		t.Fatal(err)
	}
	checkField(t, "opt.HasMSS", o.HasMSS, true)
	checkField(t, "opt.MSS", o.MSS, 1460)
	checkField(t, "opt.SACKPermitted", o.SACKPermitted, true)
	checkField(t, "opt.HasTimestamps", o.HasTimestamps, true)
	checkField(t, "opt.TSVal", o.TSVal, 1095569372)
	checkField(t, "opt.TSEcr", o.TSEcr, 0)
	checkField(t, "opt.HasWindowScale", o.HasWindowScale, true)
	checkField(t, "opt.WindowScale", o.WindowScale, 10)
	checkField(t, "opt.SACKBlockCount", o.SACKBlockCount, 0)
	// With the checksum tshark computed, ParseTCP accepts it.
	binary.BigEndian.PutUint16(ip.Payload()[16:18], 0x9f8d)
	if _, err := header.ParseTCP(ip.Payload(), ip.Src(), ip.Dst()); err != nil {
		t.Errorf("ParseTCP with tshark's checksum 0x9f8d: %v", err)
	}
}

func TestGoldenUDP(t *testing.T) {
	b := golden(t, goldenUDP)
	eth, err := header.ParseEthernet(b)
	if err != nil {
		t.Fatal(err)
	}
	ip, err := header.ParseIPv4(eth.Payload())
	if err != nil {
		t.Fatal(err)
	}
	checkField(t, "ip.ID", ip.ID(), 0x7930)
	checkField(t, "ip.TotalLen", ip.TotalLen(), 42)
	checkField(t, "ip.Protocol", ip.Protocol(), header.IPProtocolUDP)
	checkField(t, "ip.Checksum", ip.Checksum(), 0x3d8f)
	if _, err := header.ParseUDP(ip.Payload(), ip.Src(), ip.Dst()); err == nil {
		t.Error("ParseUDP accepted the partial checksum veth left (tshark: bad, should be 0xebdb)")
	}
	u, err := header.ParseUDPVerified(ip.Payload())
	if err != nil {
		t.Fatal(err)
	}
	checkField(t, "udp.SrcPort", u.SrcPort(), 40000)
	checkField(t, "udp.DstPort", u.DstPort(), 7)
	checkField(t, "udp.Length", u.Length(), 22)
	checkField(t, "udp.Checksum", u.Checksum(), 0x842b)
	checkField(t, "udp.Payload", string(u.Payload()), "verinic golden")
	binary.BigEndian.PutUint16(ip.Payload()[6:8], 0xebdb)
	if _, err := header.ParseUDP(ip.Payload(), ip.Src(), ip.Dst()); err != nil {
		t.Errorf("ParseUDP with tshark's checksum 0xebdb: %v", err)
	}
}

// SetChecksum computes the header checksum Linux wrote.
func TestGoldenIPv4HeaderChecksum(t *testing.T) {
	// The ICMP echo's header with its checksum cleared: Linux put 0x8bca there.
	b := golden(t, goldenICMPEcho)[14:34]
	b[10], b[11] = 0, 0
	ip := header.IPv4(b)
	ip.SetChecksum()
	checkField(t, "SetChecksum", ip.Checksum(), 0x8bca)
}
