package ixgbe

import (
	"encoding/binary"
	"hash/crc32"
	"net"
	"testing"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
)

// onesSum is a bytewise RFC 1071 sum (not complemented), independent of
// the simulator's.
func onesSum(parts ...[]byte) uint16 {
	var s uint32
	for _, p := range parts {
		for i := 0; i < len(p); i += 2 {
			w := uint32(p[i]) << 8
			if i+1 < len(p) {
				w |= uint32(p[i+1])
			}
			s += w
		}
	}
	for s>>16 != 0 {
		s = s&0xFFFF + s>>16
	}
	return uint16(s)
}

// l4Frame builds an Ethernet/IPv4/TCP-or-UDP frame with correct checksums
// (no FCS), an optional 802.1Q tag and IPv4 fragment field.
func l4Frame(dst, src net.HardwareAddr, proto byte, sport uint16, payload int, tag uint16, frag uint16) []byte {
	eth := 14
	if tag != 0 {
		eth = 18
	}
	l4len := 20
	if proto == 17 {
		l4len = 8
	}
	f := make([]byte, eth+20+l4len+payload)
	copy(f[0:6], dst)
	copy(f[6:12], src)
	if tag != 0 {
		binary.BigEndian.PutUint16(f[12:], 0x8100)
		binary.BigEndian.PutUint16(f[14:], tag)
	}
	binary.BigEndian.PutUint16(f[eth-2:], 0x0800)
	ip := f[eth:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+l4len+payload))
	binary.BigEndian.PutUint16(ip[4:], 0x1234)
	binary.BigEndian.PutUint16(ip[6:], frag)
	ip[8], ip[9] = 64, proto
	copy(ip[12:20], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	binary.BigEndian.PutUint16(ip[10:], ^onesSum(ip[:20]))
	l4 := ip[20:]
	for i := l4len; i < len(l4); i++ {
		l4[i] = byte(i * 13)
	}
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], 80)
	ph := []byte{10, 0, 0, 1, 10, 0, 0, 2, 0, proto, byte(len(l4) >> 8), byte(len(l4))}
	if proto == 6 {
		l4[12] = 5 << 4
		binary.BigEndian.PutUint16(l4[16:], ^onesSum(ph, l4))
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		binary.BigEndian.PutUint16(l4[6:], ^onesSum(ph, l4))
	}
	return f
}

func withCRC(f []byte) []byte {
	return binary.LittleEndian.AppendUint32(append([]byte(nil), f...), crc32.ChecksumIEEE(f))
}

// rxMetaOf delivers frame to B's MAC and returns the Meta RxBatch gives it.
func rxMetaOf(t *testing.T, p *simPair, frame []byte) (dma.Meta, int) {
	t.Helper()
	if !p.sb.Receive(withCRC(frame)) {
		t.Fatal("the simulated MAC refused the frame")
	}
	rx := make([]dma.Packet, 4)
	for q := 0; q < p.b.NumRxQueues(); q++ {
		p.sb.Drain(0)
		k, err := p.b.RxBatch(q, rx)
		if err != nil {
			t.Fatal(err)
		}
		if k == 1 {
			m := rx[0].Meta
			rx[0].Free()
			return m, q
		}
	}
	t.Fatal("frame not received")
	return 0, 0
}

// TestRxChecksumMetaSim: the driver reports the device's checksum results
// (datasheet 7.1.11, 7.1.6.2) in Packet.Meta, for good and bad IPv4
// header, TCP and UDP checksums; fragments get the IP check only, non-IP
// frames nothing.
func TestRxChecksumMetaSim(t *testing.T) {
	p := newSimPair(t, pairOpts{mode: ixgbesim.Stepped})
	p.waitLinks(t)
	if !p.b.Offloads().Has(dma.OffloadRxChecksum) || p.b.Offloads().Has(dma.OffloadRxHash) {
		t.Fatalf("offloads %#x", p.b.Offloads())
	}
	dst, src := p.b.MAC(), p.a.MAC()
	const ok = dma.RxIPChecked | dma.RxL4Checked
	cases := []struct {
		name  string
		frame func() []byte
		want  dma.Meta
	}{
		{"tcp good", func() []byte { return l4Frame(dst, src, 6, 1, 100, 0, 0) }, ok},
		{"udp good", func() []byte { return l4Frame(dst, src, 17, 1, 100, 0, 0) }, ok},
		{"tcp bad", func() []byte { f := l4Frame(dst, src, 6, 1, 100, 0, 0); f[60] ^= 1; return f }, ok | dma.RxL4Bad},
		{"udp bad", func() []byte { f := l4Frame(dst, src, 17, 1, 100, 0, 0); f[50] ^= 1; return f }, ok | dma.RxL4Bad},
		{"ip bad", func() []byte { f := l4Frame(dst, src, 6, 1, 100, 0, 0); f[14+8] ^= 1; return f }, ok | dma.RxIPBad},
		{"fragment", func() []byte { return l4Frame(dst, src, 17, 1, 100, 0, 0x2000) }, dma.RxIPChecked},
		{"non-ip", func() []byte { f := l4Frame(dst, src, 6, 1, 100, 0, 0); f[12] = 0x88; return f }, 0},
	}
	for _, c := range cases {
		m, _ := rxMetaOf(t, p, c.frame())
		if m.Flags() != c.want {
			t.Errorf("%s: meta %#x, want %#x", c.name, m.Flags(), c.want)
		}
	}
	p.checkClean(t)
}

// TestRxHashMetaSim: with RSS on, Meta carries the RSS hash the device
// wrote back (RXCSUM.PCSD set by init, 8.2.3.7.5).
func TestRxHashMetaSim(t *testing.T) {
	p := newSimPair(t, pairOpts{mode: ixgbesim.Stepped, cfgB: Config{RxQueues: 4}})
	p.waitLinks(t)
	if !p.b.Offloads().Has(dma.OffloadRxHash) {
		t.Fatal("no RSS hash offered with 4 queues")
	}
	for i := 0; i < 8; i++ {
		f := l4Frame(p.b.MAC(), p.a.MAC(), 17, uint16(1000+i), 40, 0, 0)
		m, q := rxMetaOf(t, p, f)
		h := rssHashOf(p, f)
		if m.Flags()&dma.RxRSSHash == 0 || m.Hash() != h || q != RSSQueue(h, 4) {
			t.Fatalf("frame %d: meta %#x hash %#x on queue %d, want hash %#x queue %d", i, m, m.Hash(), q, h, RSSQueue(h, 4))
		}
	}
}

// TestRxVLANStripSim: with Config.VLANStrip the driver sets RXDCTL.VME and
// reports the stripped tag in Meta; SetVLANFilter admits only its IDs.
func TestRxVLANStripSim(t *testing.T) {
	p := newSimPair(t, pairOpts{mode: ixgbesim.Stepped, cfgB: Config{VLANStrip: true}})
	p.waitLinks(t)
	if !p.b.Offloads().Has(dma.OffloadRxVLAN | dma.OffloadRxChecksum) {
		t.Fatalf("offloads %#x", p.b.Offloads())
	}
	dst, src := p.b.MAC(), p.a.MAC()
	tagged := l4Frame(dst, src, 6, 1, 64, 0x6005, 0) // PCP 3, VID 5
	plain := l4Frame(dst, src, 6, 1, 64, 0, 0)
	recv := func(f []byte) (dma.Meta, []byte, bool) {
		if !p.sb.Receive(withCRC(f)) {
			return 0, nil, false
		}
		p.sb.Drain(0)
		rx := make([]dma.Packet, 2)
		k, err := p.b.RxBatch(0, rx)
		if err != nil || k > 1 {
			t.Fatalf("RxBatch %d, %v", k, err)
		}
		if k == 0 {
			return 0, nil, false
		}
		d := append([]byte(nil), rx[0].Data()...)
		rx[0].Free()
		return rx[0].Meta, d, true
	}
	m, d, ok := recv(tagged)
	if !ok || m.Flags()&dma.RxVLAN == 0 || m.VLAN() != 0x6005 || string(d) != string(plain) {
		t.Fatalf("tagged: ok %v meta %#x vlan %#x, untagged frame delivered %v", ok, m, m.VLAN(), string(d) == string(plain))
	}
	if m.Flags()&(dma.RxL4Checked|dma.RxL4Bad) != dma.RxL4Checked {
		t.Fatalf("tagged: checksum meta %#x", m)
	}
	if m, _, ok := recv(plain); !ok || m.Flags()&dma.RxVLAN != 0 {
		t.Fatalf("untagged: ok %v meta %#x", ok, m)
	}
	if err := p.b.SetVLANFilter(5, 4095); err != nil {
		t.Fatal(err)
	}
	if err := p.b.SetVLANFilter(4096); err == nil {
		t.Fatal("VLAN ID 4096 accepted")
	}
	p.b.SetVLANFilter(5)
	if _, _, ok := recv(tagged); !ok {
		t.Fatal("VID 5 filtered out with the filter admitting 5")
	}
	other := l4Frame(dst, src, 6, 1, 64, 0x0006, 0)
	if _, _, ok := recv(other); ok {
		t.Fatal("VID 6 received with the filter admitting only 5")
	}
	if _, _, ok := recv(plain); !ok {
		t.Fatal("untagged frame filtered")
	}
	p.b.SetVLANFilter()
	if _, _, ok := recv(other); !ok {
		t.Fatal("VID 6 filtered with the filter off")
	}
	p.checkClean(t)
}
