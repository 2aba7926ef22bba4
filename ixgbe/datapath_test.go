package ixgbe

import (
	"errors"
	"fmt"
	"github.com/verinic/verinic/advring"
	"testing"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/regs"
	"github.com/verinic/verinic/trace"
	"pgregory.net/rapid"
)

func newFakeNIC(t testing.TB, cfg Config) (*fakeDev, *NIC) {
	t.Helper()
	f := newFakeDev(t)
	if cfg.LinkTimeout == 0 {
		cfg.LinkTimeout = -1
	}
	n, err := New(f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return f, n
}

// poolBalance checks that every buffer of RX queue q's pool is either free,
// posted in the RX ring, in a TX ring slot of n, or held by the caller.
func poolBalance(t testing.TB, n *NIC, q int, held int) {
	t.Helper()
	p := n.RxPool(q)
	inRx := 0
	rq := n.port.Rx[q]
	for i := uint32(0); i < rq.Slots(); i++ {
		if _, ok := rq.Buffer(i); ok {
			inRx++
		}
	}
	inTx := 0
	for _, tq := range n.port.Tx {
		for i := tq.Clean(); i != tq.Next(); i = tq.Step(i) {
			if sp, _ := tq.Slot(i); sp == p {
				inTx++
			}
		}
	}
	if p.Available()+inRx+inTx+held != p.Size() || p.InUse() != inRx+inTx+held {
		t.Fatalf("pool %d: %d free + %d in RX ring + %d in TX rings + %d held != %d buffers (in use %d)",
			q, p.Available(), inRx, inTx, held, p.Size(), p.InUse())
	}
}

func TestRxTxFake(t *testing.T) {
	f, n := newFakeNIC(t, Config{RxRingSize: 64, TxRingSize: 64})
	pkts := make([]dma.Packet, 32)
	if got := f.deliver(0, 10); got != 10 {
		t.Fatalf("delivered %d, want 10", got)
	}
	k, err := n.RxBatch(0, pkts)
	if err != nil || k != 10 {
		t.Fatalf("RxBatch = %d, %v; want 10", k, err)
	}
	for i := 0; i < k; i++ {
		if pkts[i].Pool != n.RxPool(0) || pkts[i].Len != 60 || int(pkts[i].Off) != n.RxPool(0).Headroom() {
			t.Fatalf("packet %d = %+v", i, pkts[i])
		}
	}
	// RDT is the last descriptor processed.
	if rdt := f.reg[regs.RDT(0)/4]; rdt != 9 {
		t.Fatalf("RDT = %d, want 9", rdt)
	}
	poolBalance(t, n, 0, 10)
	sent, err := n.TxBatch(0, pkts[:k])
	if err != nil || sent != 10 {
		t.Fatalf("TxBatch = %d, %v", sent, err)
	}
	if tdt := f.reg[regs.TDT(0)/4]; tdt != 10 {
		t.Fatalf("TDT = %d, want 10", tdt)
	}
	// The descriptor carries the buffer's data address and the command;
	// RS only on the call's last (rsNow).
	w := f.tx[0].w32 // the ring, as the device sees it
	if cmd := w[4*3+2]; cmd != advring.TxCmdNoRS|60 {
		t.Fatalf("cmd_type_len = %#x, want %#x", cmd, advring.TxCmdNoRS|60)
	}
	if cmd := w[4*9+2]; cmd != advring.TxCmd|60 {
		t.Fatalf("last descriptor's cmd_type_len = %#x, want %#x (RS)", cmd, advring.TxCmd|60)
	}
	if addr, _ := n.port.Tx[0].Desc(3); addr != pkts[3].IOVA() {
		t.Fatalf("buffer address %#x, want %#x", addr, pkts[3].IOVA())
	}
	// Completed at once by the fake; the next call reclaims.
	if _, err := n.TxBatch(0, nil); err != nil {
		t.Fatal(err)
	}
	poolBalance(t, n, 0, 0)
	if n.port.Tx[0].Clean() != 10 {
		t.Fatalf("clean index %d, want 10", n.port.Tx[0].Clean())
	}
}

// TestWrapAroundFake forwards many times around rings of every size and
// checks ring indices and pool accounting after each round.
func TestWrapAroundFake(t *testing.T) {
	for _, size := range []int{64, 128, 256, 512, 1024, 2048, 4096} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			f, n := newFakeNIC(t, Config{RxRingSize: size, TxRingSize: size})
			pkts := make([]dma.Packet, 48) // not a divisor of the ring size
			total := 0
			for total < 5*size+17 {
				f.deliver(0, 37)
				k, err := n.RxBatch(0, pkts)
				if err != nil {
					t.Fatal(err)
				}
				sent := 0
				for sent < k {
					m, err := n.TxBatch(0, pkts[sent:k])
					if err != nil {
						t.Fatal(err)
					}
					sent += m
				}
				total += k
				rq, tq := n.port.Rx[0], n.port.Tx[0]
				if rq.Next() >= uint32(size) || tq.Next() >= uint32(size) || tq.Clean() >= uint32(size) {
					t.Fatalf("index out of range: rx %d tx %d clean %d", rq.Next(), tq.Next(), tq.Clean())
				}
				poolBalance(t, n, 0, 0)
			}
			if f.rx[0].received != uint64(total) || f.tx[0].sent < uint64(total-advring.RSThresh) {
				t.Fatalf("device received %d, sent %d; driver forwarded %d", f.rx[0].received, f.tx[0].sent, total)
			}
		})
	}
}

func TestTxRingFullFake(t *testing.T) {
	f, n := newFakeNIC(t, Config{TxRingSize: 64})
	f.txHold = true
	pool, err := dma.NewMempool(n.Allocator(), dma.MempoolConfig{Buffers: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Release()
	pkts := make([]dma.Packet, 100)
	if got := pool.AllocBatch(pkts); got != 100 {
		t.Fatal(got)
	}
	for i := range pkts {
		pkts[i].Len = 64
	}
	k, err := n.TxBatch(0, pkts)
	if err != nil || k != 63 {
		t.Fatalf("TxBatch on an empty ring of 64 = %d, %v; want 63 (one slot stays empty)", k, err)
	}
	k2, err := n.TxBatch(0, pkts[k:])
	if err != nil || k2 != 0 {
		t.Fatalf("TxBatch on a full ring = %d, %v; want 0", k2, err)
	}
	f.completeTx(0)
	k3, err := n.TxBatch(0, pkts[k:])
	if err != nil || k3 != 37 {
		t.Fatalf("TxBatch after completion = %d, %v; want 37", k3, err)
	}
	if pool.InUse() != 37 {
		t.Fatalf("pool in use %d, want 37 (63 sent and reclaimed)", pool.InUse())
	}
}

func TestRxMultiDescriptorAndErrorsDropped(t *testing.T) {
	f, n := newFakeNIC(t, Config{RxRingSize: 64})
	pkts := make([]dma.Packet, 8)
	// A frame over three descriptors, then an errored frame, then a good one.
	f.deliverStatus(0, regs.RXD_STAT_DD, 2048)
	f.deliverStatus(0, regs.RXD_STAT_DD, 2048)
	f.deliverStatus(0, regs.RXD_STAT_DD|regs.RXD_STAT_EOP, 100)
	f.deliverStatus(0, regs.RXD_STAT_DD|regs.RXD_STAT_EOP|regs.RXD_ERR_RXE, 100)
	f.deliverStatus(0, regs.RXD_STAT_DD|regs.RXD_STAT_EOP, 4000) // longer than the buffer
	f.deliverStatus(0, regs.RXD_STAT_DD|regs.RXD_STAT_EOP, 77)
	k, err := n.RxBatch(0, pkts)
	if err != nil || k != 1 || pkts[0].Len != 77 {
		t.Fatalf("RxBatch = %d, %v, %+v; want the one good frame of 77 bytes", k, err, pkts[0])
	}
	st := n.Stats().Queues[0]
	if st.RxMultiDescDrops != 1 || st.RxErrorDrops != 2 {
		t.Fatalf("multi-descriptor drops %d (want 1), error drops %d (want 2)", st.RxMultiDescDrops, st.RxErrorDrops)
	}
	if n.port.Rx[0].Next() != 6 {
		t.Fatalf("rx index %d, want 6", n.port.Rx[0].Next())
	}
	poolBalance(t, n, 0, 1)
	pkts[0].Free()
}

func TestRxPoolExhausted(t *testing.T) {
	f, n := newFakeNIC(t, Config{RxRingSize: 64, Mempool: dma.MempoolConfig{Buffers: 100}})
	pool := n.RxPool(0)
	held := make([]dma.Packet, 100)
	free := pool.AllocBatch(held) // the application holds every spare buffer
	if free != 100-64 {
		t.Fatalf("took %d spare buffers, want 36", free)
	}
	f.deliver(0, 10)
	pkts := make([]dma.Packet, 16)
	k, err := n.RxBatch(0, pkts)
	if err != nil || k != 0 {
		t.Fatalf("RxBatch with an empty pool = %d, %v; want 0", k, err)
	}
	if n.Stats().Queues[0].RxAllocFailures == 0 {
		t.Fatal("allocation failure not counted")
	}
	pool.FreeBatch(held[:3])
	k, err = n.RxBatch(0, pkts)
	if err != nil || k != 3 {
		t.Fatalf("RxBatch after freeing 3 = %d, %v; want 3", k, err)
	}
	poolBalance(t, n, 0, free-3+3)
	pool.FreeBatch(held[3:free])
	pool.FreeBatch(pkts[:k])
	poolBalance(t, n, 0, 0)
}

func TestTxBadPacket(t *testing.T) {
	_, n := newFakeNIC(t, Config{})
	pool := n.RxPool(0)
	good, _ := pool.Alloc()
	good.Len = 60
	bad := []dma.Packet{
		{},                              // no pool
		{Pool: pool, Index: good.Index}, // zero length
		{Pool: pool, Index: good.Index, Off: uint16(pool.Headroom()), Len: uint16(pool.BufSize() + 1)},
	}
	for i, b := range bad {
		k, err := n.TxBatch(0, []dma.Packet{good, b})
		if k != 1 || !errors.Is(err, ErrBadPacket) {
			t.Fatalf("case %d: TxBatch = %d, %v; want 1, ErrBadPacket", i, k, err)
		}
		good, _ = pool.Alloc()
		good.Len = 60
	}
	good.Free()
	if _, err := n.TxBatch(5, nil); !errors.Is(err, ErrBadQueue) {
		t.Fatalf("TxBatch on queue 5: %v", err)
	}
	if _, err := n.RxBatch(-1, nil); !errors.Is(err, ErrBadQueue) {
		t.Fatalf("RxBatch on queue -1: %v", err)
	}
}

func TestSurpriseRemovalFake(t *testing.T) {
	f, n := newFakeNIC(t, Config{})
	f.autoRx = true
	f.deliver(0, -1)
	pkts := make([]dma.Packet, 32)
	k, _ := n.RxBatch(0, pkts)
	n.RxPool(0).FreeBatch(pkts[:k])
	f.remove()
	// Drain what the device had written before it went away, then the
	// queue runs dry and the periodic STATUS check finds the device gone.
	calls := 0
	var err error
	for calls = 1; calls <= 4*advring.GoneCheckInterval; calls++ {
		k, err = n.RxBatch(0, pkts)
		n.RxPool(0).FreeBatch(pkts[:k])
		if err != nil {
			break
		}
	}
	if !errors.Is(err, ErrDeviceGone) {
		t.Fatalf("RxBatch after removal: %v after %d calls", err, calls)
	}
	if _, err := n.TxBatch(0, pkts[:1]); !errors.Is(err, ErrDeviceGone) {
		t.Fatalf("TxBatch after removal: %v", err)
	}
	if _, err := n.ReadStats(); !errors.Is(err, ErrDeviceGone) {
		t.Fatalf("ReadStats after removal: %v", err)
	}
	if _, err := n.WaitForLink(0); !errors.Is(err, ErrDeviceGone) {
		t.Fatalf("WaitForLink after removal: %v", err)
	}
	if err := n.SetMAC([]byte{2, 0, 0, 0, 0, 1}); !errors.Is(err, ErrDeviceGone) {
		t.Fatalf("SetMAC after removal: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("Close after removal: %v", err)
	}
}

func TestTxDetectsRemovalWhenFull(t *testing.T) {
	f, n := newFakeNIC(t, Config{TxRingSize: 64})
	pool, _ := dma.NewMempool(n.Allocator(), dma.MempoolConfig{Buffers: 128})
	defer pool.Release()
	f.remove()
	pkts := make([]dma.Packet, 1)
	var err error
	for calls := 0; calls < 2*advring.GoneCheckInterval+64 && err == nil; calls++ {
		if pkts[0].Pool == nil {
			pkts[0], _ = pool.Alloc()
			pkts[0].Len = 60
		}
		var k int
		k, err = n.TxBatch(0, pkts)
		if k == 1 {
			pkts[0] = dma.Packet{}
		}
	}
	if !errors.Is(err, ErrDeviceGone) {
		t.Fatalf("TxBatch on a removed device never reported it: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []Config{
		{RxQueues: 17}, {TxQueues: -1}, {RxRingSize: 100}, {TxRingSize: 32}, {RxRingSize: 8192},
		{Mempool: dma.MempoolConfig{Buffers: 512}}, {Mempool: dma.MempoolConfig{BufSize: 512}},
		{Mempool: dma.MempoolConfig{Headroom: 65}},
	} {
		f := newFakeDev(t)
		cfg.LinkTimeout = -1
		if n, err := New(f, cfg); err == nil {
			n.Close()
			t.Errorf("New accepted %+v", cfg)
		}
	}
}

func TestMACAndPromiscuous(t *testing.T) {
	f, n := newFakeNIC(t, Config{})
	if got := n.MAC().String(); got != "00:11:22:33:44:55" {
		t.Fatalf("MAC = %s", got)
	}
	if n.Promiscuous() {
		t.Fatal("promiscuous by default")
	}
	mac := []byte{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}
	if err := n.SetMAC(mac); err != nil {
		t.Fatal(err)
	}
	if got := n.MAC().String(); got != "02:aa:bb:cc:dd:ee" || f.reg[regs.RAH(0)/4]&regs.RAH_AV == 0 {
		t.Fatalf("MAC after SetMAC = %s, RAH %#x", got, f.reg[regs.RAH(0)/4])
	}
	if err := n.SetMAC([]byte{1, 2, 3, 4, 5, 6}); err == nil {
		t.Fatal("multicast MAC accepted")
	}
	n.SetPromiscuous(true)
	if !n.Promiscuous() || f.reg[regs.FCTRL/4]&regs.FCTRL_BAM == 0 {
		t.Fatalf("FCTRL = %#x", f.reg[regs.FCTRL/4])
	}
	if st := n.Link(); !st.Up || st.SpeedMbps != 10000 || st.String() != "up 10000 Mb/s" {
		t.Fatalf("link %+v", st)
	}
}

// TestZeroAllocsFake asserts that RxBatch and TxBatch allocate nothing in
// steady state, with tracing off and on.
func TestZeroAllocsFake(t *testing.T) {
	for _, traced := range []bool{false, true} {
		t.Run(fmt.Sprintf("trace=%v", traced), func(t *testing.T) {
			cfg := Config{}
			if traced {
				cfg.Trace = trace.NewRecorder(1 << 16) // fills up, then counts drops
			}
			f, n := newFakeNIC(t, cfg)
			f.autoRx = true
			f.deliver(0, -1)
			pkts := make([]dma.Packet, 32)
			forwarded := 0
			forward := func() {
				k, err := n.RxBatch(0, pkts)
				if err != nil {
					t.Fatal(err)
				}
				m, _ := n.TxBatch(0, pkts[:k])
				n.RxPool(0).FreeBatch(pkts[m:k])
				forwarded += m
			}
			for i := 0; i < 100; i++ {
				forward()
			}
			if a := testing.AllocsPerRun(1000, forward); a != 0 {
				t.Fatalf("%v allocations per batch of RxBatch+TxBatch", a)
			}
			if forwarded < 1100*16 {
				t.Fatalf("only %d packets forwarded in 1100 batches of 32", forwarded)
			}
		})
	}
}

func TestCloseReportsOutstandingBuffers(t *testing.T) {
	f, n := newFakeNIC(t, Config{})
	f.deliver(0, 5)
	pkts := make([]dma.Packet, 8)
	if k, err := n.RxBatch(0, pkts); k != 5 || err != nil {
		t.Fatalf("RxBatch = %d, %v", k, err)
	}
	err := n.Close()
	if !errors.Is(err, ErrBuffersOutstanding) {
		t.Fatalf("Close with 5 buffers held by the application: %v", err)
	}
	if _, err := n.RxBatch(0, pkts); !errors.Is(err, ErrClosed) {
		t.Fatalf("RxBatch after Close: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if c := f.alloc.LiveChunks(); c != 0 {
		t.Fatalf("%d DMA chunks still mapped after Close", c)
	}
}

func TestStopThenCalls(t *testing.T) {
	_, n := newFakeNIC(t, Config{})
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.TxBatch(0, nil); !errors.Is(err, ErrStopped) {
		t.Fatalf("TxBatch after Stop: %v", err)
	}
	if n.RxPool(0).InUse() != 0 {
		t.Fatalf("%d RX buffers not reclaimed by Stop", n.RxPool(0).InUse())
	}
}

// TestRxRobustToGarbageWriteBacks: whatever status and length words a
// (faulty) device writes back, RxBatch neither panics nor hands up a frame
// longer than its buffer or of length zero, and every buffer stays
// accounted for.
func TestRxRobustToGarbageWriteBacks(t *testing.T) {
	fewerChecksUnderRace(t, 25)
	rapid.Check(t, func(rt *rapid.T) {
		f := newFakeDev(nil)
		defer f.alloc.Close()
		n, err := New(f, Config{RxRingSize: 64, LinkTimeout: -1, Clock: &fakeClock{}})
		if err != nil {
			rt.Fatal(err)
		}
		defer n.Close()
		pkts := make([]dma.Packet, 16)
		held := 0
		for step := rapid.IntRange(1, 50).Draw(rt, "steps"); step > 0; step-- {
			for k := rapid.IntRange(0, 8).Draw(rt, "writes"); k > 0; k-- {
				status := rapid.Uint32().Draw(rt, "status") | regs.RXD_STAT_DD
				length := rapid.Uint32().Draw(rt, "length")
				f.deliverStatus(0, status, length)
			}
			k, err := n.RxBatch(0, pkts[:rapid.IntRange(0, 16).Draw(rt, "batch")])
			if err != nil {
				rt.Fatal(err)
			}
			for _, pk := range pkts[:k] {
				if pk.Len == 0 || int(pk.Len) > pk.Pool.BufSize() {
					rt.Fatalf("handed up a frame of %d bytes (buffer %d)", pk.Len, pk.Pool.BufSize())
				}
				if rapid.Bool().Draw(rt, "free") {
					pk.Free()
				} else {
					held++
				}
			}
			poolBalance(t, n, 0, held)
		}
	})
}
