package ixgbe

import (
	"errors"
	"fmt"
	"github.com/verinic/verinic/advring"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
)

// TestWireFaultsSim sends frames over a cable that drops, corrupts,
// duplicates and reorders them (and, in the second run, while the link
// flaps), and checks that nothing panics or leaks and that the counters
// explain every frame:
//
//	driver sent = A.GPTC = cable offered
//	offered + duplicated = delivered + dropped + lost to link down + overflow
//	accepted by B's MAC = B.GPRC = driver received + B.QPRDC
//	delivered = B.GPRC + B.CRCERRS + B.MPC (without flaps: a frame that
//	  reaches B while its MAC is still retraining is refused uncounted)
//	corrupted <= B.CRCERRS <= corrupted + duplicated (copies of corrupted
//	  frames fail too)
//
// and every frame the driver receives is intact (corruption never gets
// through the FCS check), each (flow, seq) at most 1 + duplicates times.
func TestWireFaultsSim(t *testing.T) {
	t.Run("faults", func(t *testing.T) { wireFaults(t, false) })
	t.Run("faults+flaps", func(t *testing.T) { wireFaults(t, true) })
}

func wireFaults(t *testing.T, flaps bool) {
	const queues = 2
	faults := &ixgbesim.Faults{Seed: 7, Drop: 0.02, Corrupt: 0.02, Duplicate: 0.02, Reorder: 0.02}
	p := newSimPair(t, pairOpts{
		mode: ixgbesim.FreeRunning,
		cfgA: Config{TxQueues: queues, TxRingSize: 128},
		// Promiscuous: a corrupted destination address must fail the FCS
		// check, not the address filter, so that CRCERRS counts it.
		cfgB: Config{RxQueues: queues, RxRingSize: 128, Promiscuous: true},
		ab:   faults,
	})
	p.waitLinks(t)
	total := 60_000
	if testing.Short() || raceEnabled {
		total = 15_000
	}
	var (
		sent, received atomic.Int64
		stopRx         atomic.Bool
		wg             sync.WaitGroup
		errMu          sync.Mutex
		firstErr       error
	)
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
	}
	seen := make([]map[uint64]int, queues)
	pools := make([]*dma.Mempool, queues)
	for q := 0; q < queues; q++ {
		pool, err := dma.NewMempool(p.a.Allocator(), dma.MempoolConfig{Name: fmt.Sprintf("fgen%d", q), Buffers: 512})
		if err != nil {
			t.Fatal(err)
		}
		pools[q] = pool
		seen[q] = map[uint64]int{}
		wg.Add(1)
		go func(q int) { // sender on TX queue q: flow q
			defer wg.Done()
			spec := frameSpec{srcMAC: p.a.MAC(), dstMAC: p.b.MAC(), srcPort: uint16(20000 + q)}
			batch := make([]dma.Packet, 16)
			deadline := time.Now().Add(2 * time.Minute)
			for seq := q; seq < total; {
				if time.Now().After(deadline) {
					fail(errors.New("sender timeout"))
					return
				}
				n := 0
				for ; n < len(batch) && seq+n*queues < total; n++ {
					pk, err := pool.Alloc()
					if err != nil {
						break
					}
					s := seq + n*queues
					pk.Len = uint16(frameLen(q, s))
					buildFrame(pk.Data(), &spec, q, q, s)
					batch[n] = pk
				}
				k, err := p.a.TxBatch(q, batch[:n])
				if err != nil {
					fail(err)
					return
				}
				pool.FreeBatch(batch[k:n]) // rebuilt next time
				sent.Add(int64(k))
				seq += k * queues
				// Pace the sender so that the receivers mostly keep up
				// (drops at B are accounted for anyway) and the link
				// flaps happen while traffic runs.
				time.Sleep(20 * time.Microsecond)
			}
		}(q)
		wg.Add(1)
		go func(q int) { // receiver on RX queue q
			defer wg.Done()
			rx := make([]dma.Packet, 32)
			for !stopRx.Load() {
				k, err := p.b.RxBatch(q, rx)
				if err != nil {
					fail(err)
					return
				}
				for _, pk := range rx[:k] {
					f, err := checkFrame(pk.Data())
					if err != nil {
						fail(fmt.Errorf("RX queue %d: damaged frame got through: %w", q, err))
					} else {
						seen[q][uint64(f.flow)<<32|uint64(f.seq)]++
					}
					pk.Free()
				}
				received.Add(int64(k))
				if k == 0 {
					time.Sleep(5 * time.Microsecond)
				}
			}
		}(q)
	}
	// Flap the link a few times while traffic runs.
	flapDone := make(chan struct{})
	flapped := 0
	go func() {
		defer close(flapDone)
		for ; flaps && flapped < 8 && sent.Load() < int64(total); flapped++ {
			time.Sleep(2 * time.Millisecond)
			p.cable.SetLinkUp(false)
			time.Sleep(time.Millisecond)
			p.cable.SetLinkUp(true)
		}
	}()
	<-flapDone
	// Wait for the senders, then let everything in flight land.
	waitSenders(&sent, total, 2*time.Minute)
	settle(t, p, &sent, &received, func() bool {
		errMu.Lock()
		defer errMu.Unlock()
		return firstErr != nil
	})
	stopRx.Store(true)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	if err := p.a.Stop(); err != nil {
		t.Fatal(err)
	}
	sa, err := p.a.ReadStats()
	if err != nil {
		t.Fatal(err)
	}
	sb, err := p.b.ReadStats()
	if err != nil {
		t.Fatal(err)
	}
	cs := p.cable.Stats().AB
	t.Logf("%d link flaps; sent %d received %d; cable %+v; B: GPRC %d CRCERRS %d MPC %d QPRDC %d", flapped, sent.Load(), received.Load(), cs, sb.RxPackets, sb.RxCRCErrors, sb.RxMissed, sb.RxDropped)
	if uint64(sent.Load()) != sa.TxPackets || sa.TxPackets != cs.Offered {
		t.Errorf("driver sent %d, GPTC %d, cable offered %d", sent.Load(), sa.TxPackets, cs.Offered)
	}
	if cs.Offered+cs.Duplicated != cs.Delivered+cs.Dropped+cs.LinkDown+cs.Overflow+cs.InFlight || cs.InFlight != 0 {
		t.Errorf("cable does not balance: %+v", cs)
	}
	if cs.Accepted != sb.RxPackets {
		t.Errorf("cable: B accepted %d, GPRC %d", cs.Accepted, sb.RxPackets)
	}
	explained := sb.RxPackets + sb.RxCRCErrors + sb.RxMissed + sb.RxUndersize + sb.RxOversize + sb.RxFragments + sb.RxJabbers
	if (!flaps && cs.Delivered != explained) || cs.Delivered < explained {
		t.Errorf("delivered %d, GPRC %d + CRCERRS %d + MPC %d + size errors = %d", cs.Delivered, sb.RxPackets, sb.RxCRCErrors, sb.RxMissed, explained)
	}
	if (!flaps && sb.RxCRCErrors < cs.Corrupted) || sb.RxCRCErrors > cs.Corrupted+cs.Duplicated {
		t.Errorf("corrupted %d (duplicated %d), CRCERRS %d", cs.Corrupted, cs.Duplicated, sb.RxCRCErrors)
	}
	if sb.RxPackets != uint64(received.Load())+sb.RxDropped {
		t.Errorf("GPRC %d != received %d + QPRDC %d", sb.RxPackets, received.Load(), sb.RxDropped)
	}
	dups := 0
	for q := range seen {
		for _, c := range seen[q] {
			dups += c - 1
		}
	}
	if uint64(dups) > cs.Duplicated {
		t.Errorf("%d duplicate receptions, the cable made only %d copies", dups, cs.Duplicated)
	}
	if cs.Dropped == 0 || cs.Corrupted == 0 || cs.Duplicated == 0 || cs.Reordered == 0 || (flaps && flapped == 0) {
		t.Errorf("a fault never happened (the test would prove nothing): %+v", cs)
	}
	if err := p.b.Stop(); err != nil {
		t.Fatal(err)
	}
	for q, pool := range pools {
		if pool.InUse() != 0 {
			t.Errorf("generator pool %d: %d buffers out", q, pool.InUse())
		}
		pool.Release()
	}
	if err := p.a.Close(); err != nil {
		t.Error(err)
	}
	if err := p.b.Close(); err != nil {
		t.Error(err)
	}
	p.checkClean(t)
}

// waitSenders waits until sent reaches total or timeout passes.
func waitSenders(sent *atomic.Int64, total int, timeout time.Duration) {
	end := time.Now().Add(timeout)
	for sent.Load() < int64(total) && time.Now().Before(end) {
		time.Sleep(time.Millisecond)
	}
}

// settle waits (up to a minute) until every frame A's driver sent has left
// A (GPTC) and every frame B's MAC accepted (GPRC) was either received by
// the driver or dropped for lack of descriptors (QPRDC): nothing is left in
// flight. The statistics read on the way accumulate as usual.
func settle(t *testing.T, p *simPair, sent, received *atomic.Int64, failed func() bool) {
	t.Helper()
	end := time.Now().Add(time.Minute)
	for !failed() {
		p.cable.Flush()
		sa, errA := p.a.ReadStats()
		sb, errB := p.b.ReadStats()
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		if sa.TxPackets == uint64(sent.Load()) && sb.RxPackets == uint64(received.Load())+sb.RxDropped {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("traffic does not settle: sent %d, GPTC %d, received %d, GPRC %d, QPRDC %d",
				sent.Load(), sa.TxPackets, received.Load(), sb.RxPackets, sb.RxDropped)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSurpriseRemovalSim removes the receiving and then the sending device
// while traffic runs: every RxBatch and TxBatch call returns ErrDeviceGone
// within a bounded number of calls (what it takes to notice that nothing
// moves, advring.GoneCheckInterval, plus what a ring still absorbs), and nothing
// hangs or panics, including Close.
func TestSurpriseRemovalSim(t *testing.T) {
	p := newSimPair(t, pairOpts{mode: ixgbesim.FreeRunning})
	p.waitLinks(t)
	pool, err := dma.NewMempool(p.a.Allocator(), dma.MempoolConfig{Buffers: 1024})
	if err != nil {
		t.Fatal(err)
	}
	spec := frameSpec{srcMAC: p.a.MAC(), dstMAC: p.b.MAC(), srcPort: 999}
	var rxErr, txErr atomic.Pointer[error]
	var removedA, removedB atomic.Bool
	var rxCallsAfter, txCallsAfter atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(time.Minute)
	wg.Add(2)
	go func() {
		defer wg.Done()
		rx := make([]dma.Packet, 32)
		for time.Now().Before(deadline) {
			gone := removedB.Load()
			k, err := p.b.RxBatch(0, rx)
			p.b.RxPool(0).FreeBatch(rx[:k])
			if gone {
				rxCallsAfter.Add(1)
			}
			if err != nil {
				rxErr.Store(&err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		batch := make([]dma.Packet, 8)
		for seq := 0; time.Now().Before(deadline); {
			gone := removedA.Load()
			n := pool.AllocBatch(batch)
			for i := range batch[:n] {
				batch[i].Len = uint16(frameLen(0, seq))
				buildFrame(batch[i].Data(), &spec, 0, 0, seq)
				seq++
			}
			k, err := p.a.TxBatch(0, batch[:n])
			pool.FreeBatch(batch[k:n])
			if gone {
				txCallsAfter.Add(1)
			}
			if err != nil {
				txErr.Store(&err)
				return
			}
		}
	}()
	time.Sleep(30 * time.Millisecond)
	removedB.Store(true)
	p.sb.Remove()
	time.Sleep(30 * time.Millisecond)
	removedA.Store(true)
	p.sa.Remove()
	wg.Wait()
	if e := rxErr.Load(); e == nil || !errors.Is(*e, ErrDeviceGone) {
		t.Fatalf("RxBatch on the removed device never reported ErrDeviceGone (got %v)", e)
	}
	if e := txErr.Load(); e == nil || !errors.Is(*e, ErrDeviceGone) {
		t.Fatalf("TxBatch on the removed device never reported ErrDeviceGone (got %v)", e)
	}
	rxCalls, txCalls := rxCallsAfter.Load(), txCallsAfter.Load()
	t.Logf("removal noticed after %d RxBatch and %d TxBatch calls", rxCalls, txCalls)
	// RX: the frames already written drain in a few calls, then at most
	// advring.GoneCheckInterval empty polls. TX: the ring absorbs up to N-1 frames
	// (8 per call), then at most advring.GoneCheckInterval calls without progress.
	if limit := int64(2 * advring.GoneCheckInterval); rxCalls > limit || txCalls > limit+DefaultRingSize/8 {
		t.Fatalf("removal noticed too late: after %d RX and %d TX calls", rxCalls, txCalls)
	}
	for _, n := range []*NIC{p.a, p.b} {
		if _, err := n.RxBatch(0, make([]dma.Packet, 1)); !errors.Is(err, ErrDeviceGone) {
			t.Fatalf("%s: RxBatch after removal: %v", n.Name(), err)
		}
		if _, err := n.ReadStats(); !errors.Is(err, ErrDeviceGone) {
			t.Fatalf("%s: ReadStats after removal: %v", n.Name(), err)
		}
		done := make(chan error, 1)
		go func() { done <- n.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Logf("%s: Close: %v", n.Name(), err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: Close hangs after removal", n.Name())
		}
	}
	pool.Release()
}
