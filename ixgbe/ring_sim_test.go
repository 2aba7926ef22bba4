package ixgbe

import (
	"fmt"
	"testing"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
)

// TestRingSizesSim runs checked traffic around rings of every supported
// size, several times around each, against free-running simulators.
func TestRingSizesSim(t *testing.T) {
	for _, size := range []int{64, 128, 256, 512, 1024, 2048, 4096} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			p := newSimPair(t, pairOpts{
				mode: ixgbesim.FreeRunning,
				cfgA: Config{TxRingSize: size, RxRingSize: size},
				cfgB: Config{TxRingSize: size, RxRingSize: size},
			})
			p.waitLinks(t)
			total := 3*size + 101
			// At most a quarter of the ring in flight, and never more
			// than the 512 KB receive packet buffer holds of full-size
			// frames: the receiver never lets either fill, so nothing may
			// be lost.
			res := runTraffic(t, p, 1, total, int64(min(size/4, 256)))
			if res.received != int64(total) {
				t.Fatalf("received %d of %d", res.received, total)
			}
			laps := float64(total) / float64(size)
			if laps < 3 {
				t.Fatalf("only %.1f laps around the ring", laps)
			}
			p.checkClean(t)
		})
	}
}

// TestRxRingFullSim lets frames arrive at a queue nobody polls: the device
// fills the N-1 descriptors it owns and then drops, counting the drops
// (SRRCTL.DROP_EN, QPRDC), and the driver later receives exactly what the
// ring held.
func TestRxRingFullSim(t *testing.T) {
	const ring, sent = 64, 200
	p := newSimPair(t, pairOpts{
		mode: ixgbesim.Stepped,
		cfgB: Config{RxRingSize: ring},
	})
	p.waitLinks(t)
	pool, err := dma.NewMempool(p.a.Allocator(), dma.MempoolConfig{Buffers: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Release()
	spec := frameSpec{srcMAC: p.a.MAC(), dstMAC: p.b.MAC(), srcPort: 1234}
	pkts := make([]dma.Packet, 32)
	for seq := 0; seq < sent; {
		n := 0
		for ; n < len(pkts) && seq+n < sent; n++ {
			pk, err := pool.Alloc()
			if err != nil {
				t.Fatal(err)
			}
			pk.Len = uint16(frameLen(0, seq+n))
			buildFrame(pk.Data(), &spec, 0, 0, seq+n)
			pkts[n] = pk
		}
		k, err := p.a.TxBatch(0, pkts[:n])
		if err != nil || k != n {
			t.Fatalf("TxBatch = %d of %d: %v", k, n, err)
		}
		seq += n
		p.sa.Drain(0)
		p.sb.Drain(0)
	}
	p.a.TxBatch(0, nil)
	got := 0
	rx := make([]dma.Packet, 16)
	for {
		k, err := p.b.RxBatch(0, rx)
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			break
		}
		for _, pk := range rx[:k] {
			f, err := checkFrame(pk.Data())
			if err != nil || f.seq != got {
				t.Fatalf("frame %d: %+v, %v", got, f, err)
			}
			got++
			pk.Free()
		}
	}
	st, err := p.b.ReadStats()
	if err != nil {
		t.Fatal(err)
	}
	if got != ring-1 {
		t.Errorf("received %d frames from a full ring of %d, want %d", got, ring, ring-1)
	}
	if st.Queues[0].RxDrops != uint64(sent-got) || st.RxDropped != uint64(sent-got) {
		t.Errorf("QPRDC = %d, want %d", st.Queues[0].RxDrops, sent-got)
	}
	if st.RxPackets != sent {
		t.Errorf("GPRC = %d, want %d", st.RxPackets, sent)
	}
	if pool.InUse() != 0 {
		t.Errorf("generator pool: %d buffers out", pool.InUse())
	}
	p.checkClean(t)
}

// TestTxRingFullSim fills a TX ring the (stepped) device does not move:
// TxBatch takes N-1 frames and then returns 0; once the device sends them
// and the driver reclaims, the rest goes through.
func TestTxRingFullSim(t *testing.T) {
	const ring = 64
	p := newSimPair(t, pairOpts{mode: ixgbesim.Stepped, cfgA: Config{TxRingSize: ring}})
	p.waitLinks(t)
	pool, err := dma.NewMempool(p.a.Allocator(), dma.MempoolConfig{Buffers: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Release()
	spec := frameSpec{srcMAC: p.a.MAC(), dstMAC: p.b.MAC(), srcPort: 1}
	pkts := make([]dma.Packet, 100)
	pool.AllocBatch(pkts)
	for i := range pkts {
		pkts[i].Len = 60
		buildFrame(pkts[i].Data(), &spec, 0, 0, i)
	}
	k, err := p.a.TxBatch(0, pkts)
	if err != nil || k != ring-1 {
		t.Fatalf("TxBatch on an idle ring of %d = %d, %v; want %d", ring, k, err, ring-1)
	}
	if k2, err := p.a.TxBatch(0, pkts[k:]); err != nil || k2 != 0 {
		t.Fatalf("TxBatch on a full ring = %d, %v; want 0", k2, err)
	}
	p.sa.Drain(0)
	k3, err := p.a.TxBatch(0, pkts[k:])
	if err != nil || k3 != len(pkts)-k {
		t.Fatalf("TxBatch after the device sent = %d, %v; want %d", k3, err, len(pkts)-k)
	}
	p.sa.Drain(0)
	p.a.TxBatch(0, nil)
	if pool.InUse() != 0 {
		t.Fatalf("%d buffers not reclaimed", pool.InUse())
	}
	p.checkClean(t)
}

// TestReinitSim closes a driver and initializes the same device again (as a
// program restarting on it would): the reset brings it back, traffic flows,
// and the device never touches the first instance's freed memory.
func TestReinitSim(t *testing.T) {
	p := newSimPair(t, pairOpts{mode: ixgbesim.FreeRunning})
	p.waitLinks(t)
	if res := runTraffic(t, p, 1, 2000, 64); res.received != 2000 {
		t.Fatalf("first run: %d received", res.received)
	}
	if err := p.b.Close(); err != nil {
		t.Fatal(err)
	}
	var err error
	if p.b, err = New(p.sb, Config{LinkTimeout: 5e9, DevID: 1}); err != nil {
		t.Fatal(err)
	}
	if st := p.b.Link(); !st.Up {
		t.Fatalf("link after re-init: %v", st)
	}
	if res := runTraffic(t, p, 1, 2000, 64); res.received != 2000 {
		t.Fatalf("second run: %d received", res.received)
	}
	p.checkClean(t)
}

// TestMultiDescriptorFramesDroppedSim gives NIC B 1 KB buffers: frames
// longer than that arrive over two descriptors (the device splits them,
// SRRCTL.BSIZEPACKET = 1 KB), which the driver drops and counts, while
// short frames still come through, in order.
func TestMultiDescriptorFramesDroppedSim(t *testing.T) {
	p := newSimPair(t, pairOpts{
		mode: ixgbesim.Stepped,
		cfgB: Config{Mempool: dma.MempoolConfig{BufSize: 1024}},
	})
	p.waitLinks(t)
	pool, err := dma.NewMempool(p.a.Allocator(), dma.MempoolConfig{Buffers: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Release()
	spec := frameSpec{srcMAC: p.a.MAC(), dstMAC: p.b.MAC(), srcPort: 5}
	const frames = 200
	long := 0
	for seq := 0; seq < frames; seq++ {
		pk, err := pool.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		pk.Len = uint16(frameLen(3, seq))
		if pk.Len > 1024 {
			long++
		}
		buildFrame(pk.Data(), &spec, 3, 0, seq)
		if k, err := p.a.TxBatch(0, []dma.Packet{pk}); k != 1 || err != nil {
			t.Fatalf("TxBatch: %d, %v", k, err)
		}
		p.sa.Drain(0)
		p.sb.Drain(0)
	}
	rx := make([]dma.Packet, 32)
	got, last := 0, -1
	for {
		k, err := p.b.RxBatch(0, rx)
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			break
		}
		for _, pk := range rx[:k] {
			f, err := checkFrame(pk.Data())
			if err != nil || f.seq <= last || f.length > 1024 {
				t.Fatalf("frame %+v after seq %d: %v", f, last, err)
			}
			last = f.seq
			got++
			pk.Free()
		}
	}
	st := p.b.Stats().Queues[0]
	if long == 0 || st.RxMultiDescDrops != uint64(long) || got != frames-long {
		t.Fatalf("%d long frames: %d dropped as multi-descriptor, %d short frames received of %d", long, st.RxMultiDescDrops, got, frames-long)
	}
	p.a.TxBatch(0, nil)
	if pool.InUse() != 0 || p.b.RxPool(0).InUse() != p.b.RxRingSize() {
		t.Fatalf("pools: generator %d out, B %d out (ring %d)", pool.InUse(), p.b.RxPool(0).InUse(), p.b.RxRingSize())
	}
	p.checkClean(t)
}
