package stack

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/verinic/verinic/proto/arp"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/link/memlink"
	"github.com/verinic/verinic/proto/reassembly"
)

// ipFrame builds an Ethernet+IPv4 frame from A to B carrying payload.
func ipFrame(proto uint8, id uint16, fragOff int, more bool, payload []byte) []byte {
	f := make([]byte, 34+len(payload))
	header.EncodeEthernet(f, header.MAC(macB), header.MAC(macA), header.EtherTypeIPv4)
	var flags uint8
	if more {
		flags = header.IPv4FlagMoreFragments
	}
	header.EncodeIPv4(f[14:], header.IPv4Fields{TotalLen: uint16(20 + len(payload)), ID: id, Flags: flags, FragOffset: uint16(fragOff), TTL: 64, Protocol: proto, Src: addrA.As4(), Dst: addrB.As4()})
	copy(f[34:], payload)
	return f
}

func udpPayload(dport uint16, data []byte) []byte {
	u := make([]byte, 8+len(data))
	copy(u[8:], data)
	header.EncodeUDP(u, 5555, dport, len(data), addrA.As4(), addrB.As4())
	return u
}

func TestMalformedInputIsCountedAndDropped(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	p.settle()
	srv, _ := p.b.ListenUDP(netipAddrPort(7))
	good := ipFrame(17, 1, 0, false, udpPayload(7, []byte("hello")))
	mut := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), good...))
	}
	cases := []struct {
		name  string
		frame []byte
		want  Counter
	}{
		{"runt frame", good[:10], EthTruncated},
		{"other host", mut(func(b []byte) []byte { b[0] = 0x02; b[5] = 0x77; return b }), EthOtherHost},
		{"vlan tag", mut(func(b []byte) []byte { b[12], b[13] = 0x81, 0x00; return b }), EthVLAN},
		{"ipv6", mut(func(b []byte) []byte { b[12], b[13] = 0x86, 0xdd; return b }), EthUnknownType},
		{"truncated arp", mut(func(b []byte) []byte { b[12], b[13] = 0x08, 0x06; return b[:30] }), ARPMalformed},
		{"ip truncated", good[:14+12], IPMalformed},
		{"ip version 6", mut(func(b []byte) []byte { b[14] = 0x65; return b }), IPMalformed},
		{"ip IHL 4", mut(func(b []byte) []byte { b[14] = 0x44; return b }), IPMalformed},
		{"ip IHL 15 past packet", mut(func(b []byte) []byte { b[14] = 0x4f; return b }), IPMalformed},
		{"ip total length past frame", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[16:], 1000)
			header.IPv4(b[14:34]).SetChecksum()
			return b
		}), IPMalformed},
		{"ip total length below header", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[16:], 12)
			header.IPv4(b[14:34]).SetChecksum()
			return b
		}), IPMalformed},
		{"ip bad checksum", mut(func(b []byte) []byte { b[24] ^= 0xff; return b }), IPBadChecksum},
		{"ip broadcast source", mut(func(b []byte) []byte {
			copy(b[26:30], []byte{255, 255, 255, 255})
			header.IPv4(b[14:34]).SetChecksum()
			return b
		}), IPMartian},
		{"ip not for us", mut(func(b []byte) []byte { b[33] = 99; header.IPv4(b[14:34]).SetChecksum(); return b }), IPNotForUs},
		{"udp bad length", mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[38:], 200); return b }), UDPMalformed},
		{"udp bad checksum", mut(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), UDPBadChecksum},
		{"udp truncated", ipFrame(17, 2, 0, false, []byte{1, 2, 3}), UDPMalformed},
		{"icmp truncated", ipFrame(1, 3, 0, false, []byte{8, 0}), ICMPMalformed},
		{"icmp bad checksum", ipFrame(1, 4, 0, false, []byte{8, 0, 0, 0, 0, 0, 0, 0}), ICMPBadChecksum},
		{"unknown protocol", ipFrame(99, 5, 0, false, []byte("x")), IPUnknownProto},
		{"fragment past 65535", ipFrame(17, 6, 65528, true, make([]byte, 16)), IPMalformed},
	}
	for _, c := range cases {
		before := p.b.Counters()
		p.la.Inject(c.frame)
		p.settle()
		d := p.b.Counters().Sub(before)
		if d.Get(c.want) != 1 {
			t.Errorf("%s: %s += %d, want 1 (changes: %v)", c.name, c.want, d.Get(c.want), nonZero(d))
		}
		if d.Get(UDPDelivered) != 0 {
			t.Errorf("%s: delivered to a socket", c.name)
		}
	}
	// The good frame still gets through.
	p.la.Inject(good)
	p.settle()
	if srv.Queued() != 1 {
		t.Fatal("a well-formed datagram was not delivered after the malformed ones")
	}
}

func netipAddrPort(port uint16) netip.AddrPort { return netip.AddrPortFrom(netip.Addr{}, port) }

// Overlapping fragments drop their datagram (RFC 5722 style); a flood of
// fragments that never complete keeps reassembly memory under its cap.
func TestFragmentAttacksStayBounded(t *testing.T) {
	cfg := Config{Reassembly: reassembly.Config{MaxBytes: 256 << 10, MaxDatagrams: 32, MaxFragments: 16}}
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, cfg)
	p.settle()
	srv, _ := p.b.ListenUDP(netipAddrPort(7))
	data := udpPayload(7, make([]byte, 64))
	p.la.Inject(ipFrame(17, 10, 0, true, data[:40]))
	p.la.Inject(ipFrame(17, 10, 32, false, data[32:])) // overlaps bytes 32..40
	p.settle()
	c := p.b.Counters()
	if c.Get(ReasmOverlaps) != 1 || srv.Queued() != 0 {
		t.Fatalf("overlap: reasm_overlaps %d, delivered %d", c.Get(ReasmOverlaps), srv.Queued())
	}
	_, limit := p.b.ReassemblyMemory()
	rnd := rand.New(rand.NewPCG(1, 2))
	frag := make([]byte, 1480)
	peak := 0
	for i := 0; i < 20000; i++ {
		p.la.Inject(ipFrame(17, uint16(rnd.IntN(5000)), 8*rnd.IntN(8000), true, frag))
		if i%256 == 255 {
			p.settle()
			if used, _ := p.b.ReassemblyMemory(); used > peak {
				peak = used
			}
		}
	}
	p.settle()
	c = p.b.Counters()
	if peak > limit || peak == 0 {
		t.Fatalf("reassembly memory peaked at %d, limit %d", peak, limit)
	}
	if c.Get(ReasmEvicted)+c.Get(ReasmTooManyFrags) == 0 {
		t.Fatal("flood never reached a limit")
	}
	t.Logf("fragment flood: peak %d of %d bytes; %v", peak, limit, nonZero(c))
	// Timeouts clear what is left.
	p.advance(31e9, 1e9)
	if used, _ := p.b.ReassemblyMemory(); used != 0 {
		t.Fatalf("after 31 s, %d bytes still held", used)
	}
}

// An ARP flood (requests for our address from ever new senders, and
// gratuitous noise) keeps the neighbour cache at its cap.
func TestARPFloodStaysBounded(t *testing.T) {
	cfg := Config{ARP: arp.Config{MaxEntries: 128}}
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, cfg)
	p.settle()
	f := make([]byte, 42)
	for i := 0; i < 20000; i++ {
		// Senders on B's subnet (10.0.0.3-252): others are martians,
		// never learnt.
		sender := header.IPv4Addr{10, 0, 0, byte(3 + (i/2)%250)}
		mac := header.MAC{2, 9, 0, 0, byte(i >> 8), byte(i)}
		target := addrB.As4()
		if i%2 == 1 {
			target = sender // gratuitous
		}
		header.EncodeEthernet(f, header.BroadcastMAC, mac, header.EtherTypeARP)
		header.EncodeARP(f[14:], header.ARPRequest, mac, sender, header.MAC{}, target)
		p.la.Inject(f)
		if i%256 == 255 {
			p.settle()
			if n := p.nicB.ARP().Len(); n > 128 {
				t.Fatalf("neighbour cache at %d entries, cap 128", n)
			}
		}
	}
	p.settle()
	c := p.b.Counters()
	if c.Get(ARPEntries) > 128 || c.Get(ARPEvicted) == 0 || c.Get(ARPRequestsIn) < 20000 {
		t.Fatalf("after flood: %v", nonZero(c))
	}
}

// Random frames addressed to the stack never panic it.
func TestRandomFramesDoNotPanic(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	p.settle()
	rnd := rand.New(rand.NewPCG(3, 4))
	good := ipFrame(17, 1, 0, false, udpPayload(7, []byte("hello")))
	for i := 0; i < 20000; i++ {
		var f []byte
		if i%2 == 0 {
			f = make([]byte, rnd.IntN(200))
			for j := range f {
				f[j] = byte(rnd.Uint32())
			}
			if len(f) >= 14 {
				copy(f, good[:12])
				f[12], f[13] = 0x08, byte(i%4*3) // IPv4 or ARP (0x0806), sometimes others
			}
		} else {
			f = append([]byte(nil), good...)
			for k := 0; k < 1+rnd.IntN(4); k++ {
				f[14+rnd.IntN(len(f)-14)] = byte(rnd.Uint32())
			}
		}
		p.la.Inject(f)
		if i%256 == 0 {
			p.settle()
		}
	}
	p.settle()
	t.Logf("after 20000 random frames: %v", nonZero(p.b.Counters()))
}
