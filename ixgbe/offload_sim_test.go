package ixgbe

import (
	"encoding/binary"
	"hash/crc32"
	"net"
	"testing"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/internal/tsoref"
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

// swSegment is what TSO must produce byte for byte: the software
// segmentation of internal/tsoref, which the simulator's tests and the igb
// driver's tests against QEMU's 82576 are held to as well.
func swSegment(f []byte, eth, mss int) [][]byte { return tsoref.Segment(f, eth, mss) }

// txRig is a stepped pair with a pool of large buffers on A for sending.
func txRig(t *testing.T, cfgB Config) (*simPair, *dma.Mempool) {
	t.Helper()
	p := newSimPair(t, pairOpts{mode: ixgbesim.Stepped, cfgB: cfgB})
	p.waitLinks(t)
	pool, err := dma.NewMempool(p.a.Allocator(), dma.MempoolConfig{Buffers: 64, BufSize: 16384})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Release() })
	return p, pool
}

// sendRecv sends frame from A with meta and returns the frames B receives
// (data and Meta).
func sendRecv(t *testing.T, p *simPair, pool *dma.Mempool, frame []byte, meta dma.Meta) ([][]byte, []dma.Meta) {
	t.Helper()
	pk, err := pool.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	pk.Len = uint16(len(frame))
	copy(pk.Data(), frame)
	pk.Meta = meta
	if k, err := p.a.TxBatch(0, []dma.Packet{pk}); k != 1 || err != nil {
		t.Fatalf("TxBatch: %d, %v", k, err)
	}
	var out [][]byte
	var metas []dma.Meta
	rx := make([]dma.Packet, 64)
	for round := 0; round < 8; round++ {
		p.sa.Drain(0)
		p.sb.Drain(0)
		k, err := p.b.RxBatch(0, rx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rx[:k] {
			out = append(out, append([]byte(nil), r.Data()...))
			metas = append(metas, r.Meta)
			r.Free()
		}
	}
	p.a.TxBatch(0, nil) // reclaim
	return out, metas
}

// Checksum insertion: frames sent with wrong checksums and TxIPCsum /
// TxL4Csum arrive with correct ones, and the receiving 82599 agrees.
func TestTxChecksumInsertionSim(t *testing.T) {
	p, pool := txRig(t, Config{})
	for _, proto := range []byte{6, 17} {
		for _, size := range []int{0, 1, 200, 1400} {
			want := l4Frame(p.b.MAC(), p.a.MAC(), proto, 7, size, 0, 0)
			f := append([]byte(nil), want...)
			f[24], f[25] = 0xDE, 0xAD // IP checksum
			if proto == 6 {
				f[50], f[51] = 0xBE, 0xEF
			} else {
				f[40], f[41] = 0xBE, 0xEF
			}
			got, metas := sendRecv(t, p, pool, f, dma.TxIPCsum|dma.TxL4Csum)
			if len(got) != 1 {
				t.Fatalf("proto %d size %d: %d frames", proto, size, len(got))
			}
			w := want
			if len(w) < 60 {
				w = append(append([]byte(nil), w...), make([]byte, 60-len(w))...)
			}
			if string(got[0]) != string(w) {
				t.Errorf("proto %d size %d:\n got % x\nwant % x", proto, size, got[0], w)
			}
			if metas[0].Flags() != dma.RxIPChecked|dma.RxL4Checked {
				t.Errorf("proto %d size %d: receiver meta %#x", proto, size, metas[0])
			}
		}
	}
	p.checkClean(t)
}

// VLAN round trip: A inserts the tag from Meta (VLE), B strips it back
// into Meta (VME) and the frame arrives as sent.
func TestVLANRoundTripSim(t *testing.T) {
	p, pool := txRig(t, Config{VLANStrip: true})
	f := l4Frame(p.b.MAC(), p.a.MAC(), 17, 9, 100, 0, 0)
	for _, tci := range []uint16{0x0001, 0x2064, 0xEFFF} {
		got, metas := sendRecv(t, p, pool, f, dma.TxVLAN.WithVLAN(tci))
		if len(got) != 1 || string(got[0]) != string(f) || metas[0].Flags()&dma.RxVLAN == 0 || metas[0].VLAN() != tci {
			t.Fatalf("tag %#x: %d frames, meta %#x vlan %#x, frame equal %v", tci, len(got), metas, metas[0].VLAN(), len(got) == 1 && string(got[0]) == string(f))
		}
	}
	// With checksums too (one context for both), and the filter.
	p.b.SetVLANFilter(0x064)
	g := append([]byte(nil), f...)
	g[40], g[41] = 1, 2
	got, metas := sendRecv(t, p, pool, g, (dma.TxVLAN | dma.TxIPCsum | dma.TxL4Csum).WithVLAN(0x2064))
	if len(got) != 1 || string(got[0]) != string(f) || metas[0].VLAN() != 0x2064 || metas[0].Flags()&(dma.RxL4Bad|dma.RxIPBad) != 0 {
		t.Fatalf("vlan+csum: %d frames, meta %#x", len(got), metas)
	}
	if got, _ := sendRecv(t, p, pool, f, dma.TxVLAN.WithVLAN(0x065)); len(got) != 0 {
		t.Fatal("VID 0x65 passed a filter admitting 0x64")
	}
	p.checkClean(t)
}

// TSO: a large TCP packet sent with TxTSO arrives as segments equal byte
// for byte to software segmentation.
func TestTSOSim(t *testing.T) {
	p, pool := txRig(t, Config{})
	for _, tc := range []struct {
		payload, mss int
		flags        byte
	}{
		{8000, 1448, 0x18 | 0x01 | 0x80},
		{4344, 1448, 0x18},
		{100, 1448, 0x19},
		{12000, 536, 0x10},
	} {
		f := l4Frame(p.b.MAC(), p.a.MAC(), 6, 80, tc.payload, 0, 0)
		binary.BigEndian.PutUint32(f[38:], 0xFFFFF000) // sequence number near wrap
		f[47] = tc.flags
		tcp := f[34:]
		tcp[16], tcp[17] = 0, 0
		ph := []byte{10, 0, 0, 1, 10, 0, 0, 2, 0, 6, byte(len(tcp) >> 8), byte(len(tcp))}
		binary.BigEndian.PutUint16(tcp[16:], ^onesSum(ph, tcp))
		want := swSegment(f, 14, tc.mss)
		got, metas := sendRecv(t, p, pool, f, dma.TxTSO.WithMSS(uint16(tc.mss)))
		if len(got) != len(want) {
			t.Fatalf("payload %d mss %d: %d segments, want %d", tc.payload, tc.mss, len(got), len(want))
		}
		for i := range want {
			if string(got[i]) != string(want[i]) {
				t.Fatalf("payload %d mss %d segment %d:\n got % x\nwant % x", tc.payload, tc.mss, i, got[i][:64], want[i][:64])
			}
			if metas[i].Flags() != dma.RxIPChecked|dma.RxL4Checked {
				t.Fatalf("segment %d: receiver meta %#x", i, metas[i])
			}
		}
	}
	if v := p.sa.Violations(); len(v) != 0 {
		t.Fatal(v)
	}
	p.checkClean(t)
}

// Offload requests the packet cannot satisfy are refused (ErrBadPacket).
func TestTxOffloadRefused(t *testing.T) {
	p, pool := txRig(t, Config{})
	udp := l4Frame(p.b.MAC(), p.a.MAC(), 17, 9, 100, 0, 0)
	arp := append([]byte(nil), udp...)
	arp[12], arp[13] = 0x08, 0x06
	for name, c := range map[string]struct {
		f []byte
		m dma.Meta
	}{
		"TSO of UDP":                {udp, dma.TxTSO.WithMSS(500)},
		"TSO without MSS":           {l4Frame(p.b.MAC(), p.a.MAC(), 6, 9, 3000, 0, 0), dma.TxTSO},
		"checksum of non-IP":        {arp, dma.TxL4Csum},
		"L4 checksum of a fragment": {l4Frame(p.b.MAC(), p.a.MAC(), 17, 9, 100, 0, 0x2000), dma.TxL4Csum},
	} {
		pk, _ := pool.Alloc()
		pk.Len = uint16(len(c.f))
		copy(pk.Data(), c.f)
		pk.Meta = c.m
		if k, err := p.a.TxBatch(0, []dma.Packet{pk}); k != 0 || err != ErrBadPacket {
			t.Errorf("%s: TxBatch %d, %v", name, k, err)
		}
		pk.Free()
	}
}

// The offload paths allocate nothing per packet: transmit with checksum
// and VLAN insertion (a context descriptor), receive with the checksum
// results and the stripped tag in Meta, the simulator in between.
func TestOffloadZeroAllocsSim(t *testing.T) {
	p, pool := txRig(t, Config{VLANStrip: true})
	f := l4Frame(p.b.MAC(), p.a.MAC(), 6, 9, 600, 0, 0)
	tx := make([]dma.Packet, 8)
	rx := make([]dma.Packet, 32)
	got := 0
	round := func() {
		for i := range tx {
			pk, err := pool.Alloc()
			if err != nil {
				t.Fatal(err)
			}
			pk.Len = uint16(len(f))
			copy(pk.Data(), f)
			pk.Meta = (dma.TxIPCsum | dma.TxL4Csum | dma.TxVLAN).WithVLAN(42)
			tx[i] = pk
		}
		if k, err := p.a.TxBatch(0, tx); k != len(tx) || err != nil {
			t.Fatalf("TxBatch %d, %v", k, err)
		}
		p.sa.Drain(0)
		p.sb.Drain(0)
		k, _ := p.b.RxBatch(0, rx)
		for _, r := range rx[:k] {
			if r.Meta.Flags() == dma.RxIPChecked|dma.RxL4Checked|dma.RxVLAN && r.Meta.VLAN() == 42 {
				got++
			}
		}
		p.b.RxPool(0).FreeBatch(rx[:k])
	}
	for i := 0; i < 50; i++ {
		round()
	}
	if a := testing.AllocsPerRun(200, round); a != 0 {
		t.Fatalf("%v allocations per round of 8 offloaded packets", a)
	}
	if want := (50 + 1 + 200) * 8; got != want { // AllocsPerRun runs once more to warm up
		t.Fatalf("%d of %d packets arrived with the expected metadata", got, want)
	}
}
