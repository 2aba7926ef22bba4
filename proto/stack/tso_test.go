package stack

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/internal/simpair"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/proto/header"
)

// tsoBuilder writes a TCP header without options and hdr..n bytes of data.
type tsoBuilder struct{}

func (tsoBuilder) BuildPayloadNoChecksum(b []byte) {
	clear(b[:header.TCPMinHeaderLen])
	b[12] = 5 << 4
	b[13] = byte(header.TCPFlagACK | header.TCPFlagPSH)
	for i := header.TCPMinHeaderLen; i < len(b); i++ {
		b[i] = byte(i)
	}
}

// tsoStack is a stack (not started: the test is its loop) on a simulated
// 82599 run by the driver, 10.0.0.1/24.
func tsoStack(t *testing.T, cfg Config) (*Stack, *Loop) {
	t.Helper()
	sims, err := simpair.New(simpair.Config{Policy: dma.NoHugepages})
	if err != nil {
		t.Fatal(err)
	}
	d, err := ixgbe.New(sims.A, ixgbe.Config{Mempool: dma.MempoolConfig{Buffers: 1024}})
	if err != nil {
		t.Fatal(err)
	}
	s := New(cfg)
	n, err := s.AddNIC(d, NICConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddAddress(1, netip.PrefixFrom(addrA, 24)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		d.Close()
		sims.Close()
	})
	return s, n.loops[0]
}

// A loop on an 82599 has TSO buffers, unless Config.NoTSO or
// NoTxChecksumOffload; TSOMax offers a 16 KiB frame's worth towards an
// on-link address and nothing once every buffer is out (counted);
// OutputTSO builds the burst: the device's TSO request with the MSS, DF,
// the IP total length, and an IP ID per segment reserved.
func TestTSOLoop(t *testing.T) {
	for _, cfg := range []Config{{NoTSO: true}, {NoTxChecksumOffload: true}} {
		if _, lp := tsoStack(t, cfg); lp.tsoPool != nil || lp.TSOMax(addrB.As4()) != 0 {
			t.Errorf("%+v: the loop has TSO", cfg)
		}
	}
	s, lp := tsoStack(t, Config{})
	if lp.tsoPool == nil {
		t.Fatal("no TSO pool on an 82599")
	}
	dst := addrB.As4()
	if m := lp.TSOMax(dst); m != tsoFrame-ethIPHeaders {
		t.Fatalf("TSOMax %d, want %d", m, tsoFrame-ethIPHeaders)
	}
	if m := lp.TSOMax(header.IPv4Addr{192, 0, 2, 1}); m != 0 {
		t.Errorf("TSOMax towards an address with no route: %d", m)
	}
	lp.nic.mtu = 2000
	if m := lp.TSOMax(dst); m != 0 {
		t.Errorf("TSOMax with MTU 2000 (segments past the driver's 1514-byte frames): %d", m)
	}
	lp.nic.mtu = 1500

	// Exhausted, then back.
	var held []dma.Packet
	for lp.tsoPool.Available() > 0 {
		p, err := lp.tsoPool.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, p)
	}
	if m := lp.TSOMax(dst); m != 0 || s.Counters().Get(TxTSONoBuffers) != 1 {
		t.Errorf("pool empty: TSOMax %d, tx_tso_no_buffers %d", m, s.Counters().Get(TxTSONoBuffers))
	}
	for _, p := range held {
		p.Free()
	}

	const n, mss = 20 + 3*1448 + 100, 1448
	if lp.TSOMax(dst) < n {
		t.Fatal("TSOMax too small")
	}
	id0 := s.nextID()
	if !lp.OutputTSO(addrA.As4(), dst, 0, 64, n, mss, tsoBuilder{}) {
		t.Fatal("OutputTSO failed")
	}
	if len(lp.pending) != 1 { // waiting for ARP
		t.Fatalf("%d frames pending ARP, want the burst", len(lp.pending))
	}
	p := lp.pending[0].pkt
	f := p.Data()
	ip := header.IPv4(f[header.EthernetHeaderLen:])
	if p.Pool != lp.tsoPool || p.Meta.Flags() != dma.TxTSO|dma.TxIPCsum|dma.TxL4Csum || p.Meta.MSS() != mss ||
		int(p.Len) != ethIPHeaders+n || int(ip.TotalLen()) != 20+n || !ip.DontFragment() || ip.Protocol() != header.IPProtocolTCP {
		t.Errorf("burst: pool TSO %v, meta %#x (MSS %d), len %d, IP total %d, DF %v", p.Pool == lp.tsoPool, p.Meta.Flags(), p.Meta.MSS(), p.Len, ip.TotalLen(), ip.DontFragment())
	}
	if id := binary.BigEndian.Uint16(f[header.EthernetHeaderLen+4:]); id != id0+1 || s.nextID() != id0+5 {
		t.Errorf("IP ID %d after %d; the next datagram's should follow the burst's 4 segments", id, id0)
	}
	c := s.Counters()
	if c.Get(TxTSO) != 1 || c.Get(TxTSOSegments) != 4 || c.Get(TxCsumOffloaded) != 1 {
		t.Errorf("tx_tso %d, tx_tso_segments %d, tx_csum_offloaded %d; want 1, 4, 1", c.Get(TxTSO), c.Get(TxTSOSegments), c.Get(TxCsumOffloaded))
	}
	lp.release() // what Close does once the loops stopped
	if lp.tsoPool != nil {
		t.Error("release kept the TSO pool with every buffer back")
	}
}
