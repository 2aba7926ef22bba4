package advring

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/verinic/verinic/dma"
)

// The engine's unit tests run against a register file and the rings
// themselves (the test plays the device by writing write-backs into the
// ring memory); the family drivers test the engine against their
// simulators (ixgbe/*_sim_test.go).

// testFamily has the 82576's queue registers and write-back error bits
// (QEMU hw/net/igb_regs.h, Linux e1000_82575.h), so that the tests show the
// engine takes both from the Family and not from the 82599.
var testFamily = &Family{
	Name: "82576-test",
	Regs: Regs{
		RDBAL: func(n int) uint32 { return 0xC000 + 0x40*uint32(n) },
		RDBAH: func(n int) uint32 { return 0xC004 + 0x40*uint32(n) },
		RDLEN: func(n int) uint32 { return 0xC008 + 0x40*uint32(n) },
		RDH:   func(n int) uint32 { return 0xC010 + 0x40*uint32(n) },
		RDT:   func(n int) uint32 { return 0xC018 + 0x40*uint32(n) },
		TDBAL: func(n int) uint32 { return 0xE000 + 0x40*uint32(n) },
		TDBAH: func(n int) uint32 { return 0xE004 + 0x40*uint32(n) },
		TDLEN: func(n int) uint32 { return 0xE008 + 0x40*uint32(n) },
		TDH:   func(n int) uint32 { return 0xE010 + 0x40*uint32(n) },
		TDT:   func(n int) uint32 { return 0xE018 + 0x40*uint32(n) },
	},
	Layout: Layout{RXE: 31, IPE: 30, L4E: 29, IPCS: 6, L4CS: 5, VP: 3},
}

// regFile is a flat register file.
type regFile struct {
	reg  [0x10000 / 4]uint32
	gone atomic.Bool
}

func (f *regFile) Read32(r uint32) uint32 {
	if f.gone.Load() {
		return 0xFFFFFFFF
	}
	return atomic.LoadUint32(&f.reg[r/4])
}
func (f *regFile) Write32(r, v uint32) { atomic.StoreUint32(&f.reg[r/4], v) }

type rig struct {
	dev  *regFile
	port *Port
	pool *dma.Mempool
	rx   *RxQueue
	tx   *TxQueue
}

// newRig builds a port with one RX and one TX queue of size descriptors,
// started as a family driver does (doc.go).
func newRig(t *testing.T, size int) *rig { return newRigBugs(t, size, 0) }

// newRigBugs is newRig with the queues told to commit bugs (only in builds
// with the ixgbebugs tag do they).
func newRigBugs(t *testing.T, size int, bugs bug) *rig {
	t.Helper()
	alloc := dma.NewAllocator(dma.NewIOVASpace(0x7_0000_0000, 48), dma.NoHugepages)
	t.Cleanup(func() { alloc.Close() })
	pool, err := dma.NewMempool(alloc, dma.MempoolConfig{Buffers: 4 * size})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{dev: &regFile{}, port: &Port{}, pool: pool}
	c := &Config{Family: testFamily, Dev: r.dev, Alloc: alloc, Gone: func() bool {
		if r.dev.Read32(0x8) == 0xFFFFFFFF {
			r.port.State.Set(Gone)
			return true
		}
		return false
	}, bugs: bugs}
	if r.rx, err = NewRxQueue(c, RxConfig{Queue: 1, Size: size, Pool: pool}); err != nil {
		t.Fatal(err)
	}
	r.rx.Program(testFamily)
	if r.tx, err = NewTxQueue(c, TxConfig{Queue: 1, Size: size, MaxFrame: 1514}); err != nil {
		t.Fatal(err)
	}
	r.tx.Program(testFamily)
	r.port.Rx = []*RxQueue{{}, r.rx} // queue 0 unused: queue 1's registers are the ones checked
	r.port.Tx = []*TxQueue{{}, r.tx}
	if err := r.rx.Fill(); err != nil {
		t.Fatal(err)
	}
	r.rx.Start()
	r.port.Open()
	t.Cleanup(func() {
		r.port.State.Set(Stopped | Closed)
		r.rx.reclaimAll()
		r.tx.reclaimAll()
		r.rx.ring.free()
		r.tx.ring.free()
		pool.Release()
	})
	return r
}

// writeBack plays the device: RX descriptor i done with status and length.
func (r *rig) writeBack(i, status, length uint32) {
	w := r.rx.ring.w32
	atomic.StoreUint32(&w[4*i+3], length)
	atomic.StoreUint32(&w[4*i+2], status)
}

func TestProgramUsesFamilyRegisters(t *testing.T) {
	r := newRig(t, 64)
	iova := r.rx.ring.region.IOVA()
	if lo, hi, l := r.dev.reg[0xC040/4], r.dev.reg[0xC044/4], r.dev.reg[0xC048/4]; lo != uint32(iova) || hi != uint32(iova>>32) || l != 64*DescSize {
		t.Fatalf("RDBAL/RDBAH/RDLEN(1) = %#x/%#x/%d, want %#x/%#x/%d", lo, hi, l, uint32(iova), uint32(iova>>32), 64*DescSize)
	}
	if rdt := r.dev.reg[0xC058/4]; rdt != 63 {
		t.Fatalf("RDT(1) after Start = %d, want 63 (N-1)", rdt)
	}
	tiova := r.tx.ring.region.IOVA()
	if lo, l := r.dev.reg[0xE040/4], r.dev.reg[0xE048/4]; lo != uint32(tiova) || l != 64*DescSize {
		t.Fatalf("TDBAL/TDLEN(1) = %#x/%d", lo, l)
	}
	// Every RX descriptor carries a buffer's data address, DD clear.
	for i := uint32(0); i < 64; i++ {
		lo, hi := r.rx.Desc(i)
		b, ok := r.rx.Buffer(i)
		if !ok || lo != r.pool.BufferIOVA(b)+uint64(r.pool.Headroom()) || hi != 0 {
			t.Fatalf("RX descriptor %d = %#x %#x (buffer %d, %v)", i, lo, hi, b, ok)
		}
	}
}

func TestReceiveLayoutAndDrops(t *testing.T) {
	r := newRig(t, 64)
	pkts := make([]dma.Packet, 8)
	if k, err := r.port.RxBatch(1, pkts); k != 0 || err != nil {
		t.Fatalf("RxBatch on an empty ring = %d, %v", k, err)
	}
	r.writeBack(0, RxStatDD|RxStatEOP|1<<6|1<<30, 60)     // IPCS, IPE (82576 bit 30)
	r.writeBack(1, RxStatDD|RxStatEOP|1<<5|1<<29, 61)     // L4CS, TCPE (82576 bit 29)
	r.writeBack(2, RxStatDD|RxStatEOP|1<<31, 62)          // RXE (82576 bit 31): dropped
	r.writeBack(3, RxStatDD, 2048)                        // first of two descriptors
	r.writeBack(4, RxStatDD|RxStatEOP, 100)               // ... its end: dropped once
	r.writeBack(5, RxStatDD|RxStatEOP|1<<6|1<<5|1<<3, 64) // VP without strip: no tag
	k, err := r.port.RxBatch(1, pkts)
	if err != nil || k != 3 {
		t.Fatalf("RxBatch = %d, %v; want 3", k, err)
	}
	want := []struct {
		len  uint16
		meta dma.Meta
	}{{60, dma.RxIPChecked | dma.RxIPBad}, {61, dma.RxL4Checked | dma.RxL4Bad}, {64, dma.RxIPChecked | dma.RxL4Checked}}
	for i, w := range want {
		if pkts[i].Len != w.len || pkts[i].Meta != w.meta || pkts[i].Pool != r.pool {
			t.Errorf("packet %d: len %d meta %#x, want %d %#x", i, pkts[i].Len, pkts[i].Meta, w.len, w.meta)
		}
	}
	if st := r.rx.Stats(); st.ErrorDrops != 1 || st.MultiDescDrops != 1 {
		t.Fatalf("stats %+v, want 1 error drop and 1 multi-descriptor drop", st)
	}
	if rdt := r.dev.reg[0xC058/4]; rdt != 5 || r.rx.Next() != 6 {
		t.Fatalf("RDT = %d, next %d; want 5, 6", rdt, r.rx.Next())
	}
	// Every slot holds a buffer again (refilled or reposted); three are out.
	if r.pool.InUse() != 64+3 {
		t.Fatalf("pool in use %d, want %d", r.pool.InUse(), 64+3)
	}
	if err := r.pool.FreeBatch(pkts[:k]); err != nil {
		t.Fatal(err)
	}
}

func TestSendReclaimAndBadPackets(t *testing.T) {
	r := newRig(t, 64)
	pkts := make([]dma.Packet, 40)
	if got := r.pool.AllocBatch(pkts); got != len(pkts) {
		t.Fatal(got)
	}
	for i := range pkts {
		pkts[i].Len = 60
	}
	pkts[38].Len = MinTxFrame - 1
	k, err := r.port.TxBatch(1, pkts)
	if k != 38 || !errors.Is(err, ErrBadPacket) {
		t.Fatalf("TxBatch = %d, %v; want 38, ErrBadPacket", k, err)
	}
	if tdt := r.dev.reg[0xE058/4]; tdt != 38 {
		t.Fatalf("TDT(1) = %d, want 38", tdt)
	}
	lo, hi := r.tx.Desc(37)
	if lo != pkts[37].IOVA() || uint32(hi) != TxCmd|60 || uint32(hi>>32) != 60<<TxPaylenShift {
		t.Fatalf("descriptor 37 = %#x %#x", lo, hi)
	}
	if _, hi := r.tx.Desc(30); uint32(hi) != TxCmdNoRS|60 {
		t.Fatalf("descriptor 30 = %#x, want no RS", hi)
	}
	// The device completes the first RS descriptor (31) only.
	atomic.StoreUint32(&r.tx.ring.w32[4*31+3], TxStatDD)
	if n := r.tx.Reclaim(); n != 32 || r.tx.Clean() != 32 {
		t.Fatalf("reclaim freed %d, clean %d; want 32, 32", n, r.tx.Clean())
	}
	if st := r.tx.Stats(); st.BadPackets != 1 || st.FreeErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := r.pool.FreeBatch(pkts[38:]); err != nil {
		t.Fatal(err)
	}
}

func TestHaltedAndGone(t *testing.T) {
	r := newRig(t, 64)
	pkts := make([]dma.Packet, 4)
	if _, err := r.port.RxBatch(2, pkts); !errors.Is(err, ErrBadQueue) {
		t.Fatalf("RxBatch on queue 2: %v", err)
	}
	r.dev.gone.Store(true)
	var err error
	for i := 0; i <= GoneCheckInterval && err == nil; i++ {
		_, err = r.port.RxBatch(1, pkts)
	}
	if !errors.Is(err, ErrDeviceGone) {
		t.Fatalf("polls of a removed device: %v, want ErrDeviceGone", err)
	}
	if _, err := r.port.TxBatch(1, nil); !errors.Is(err, ErrDeviceGone) {
		t.Fatalf("TxBatch after removal: %v", err)
	}
	if err := r.port.Quiesce("test"); err != nil {
		t.Fatal(err)
	}
}

// TestForwardAllocatesNothing: receive, send and reclaim in steady state
// allocate nothing.
func TestForwardAllocatesNothing(t *testing.T) {
	r := newRig(t, 64)
	pkts := make([]dma.Packet, 32)
	next := uint32(0)
	allocs := testing.AllocsPerRun(200, func() {
		for j := 0; j < 32; j++ {
			r.writeBack(next, RxStatDD|RxStatEOP, 60)
			next = r.rx.ring.next(next)
		}
		k, err := r.port.RxBatch(1, pkts)
		if err != nil || k != 32 {
			t.Fatalf("RxBatch = %d, %v", k, err)
		}
		m, err := r.port.TxBatch(1, pkts[:k])
		if err != nil || m != k {
			t.Fatalf("TxBatch = %d, %v", m, err)
		}
		// The device completes everything sent.
		for i := r.tx.Clean(); i != r.tx.Next(); i = r.tx.Step(i) {
			atomic.StoreUint32(&r.tx.ring.w32[4*i+3], TxStatDD)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per forwarded batch, want 0", allocs)
	}
}
