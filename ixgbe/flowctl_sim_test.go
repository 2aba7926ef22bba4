package ixgbe

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/ixgbe/regs"
)

// TestFlowControlRegistersSim checks what Config.FlowControl programs
// (datasheet 3.7.7, 8.2.3.3).
func TestFlowControlRegistersSim(t *testing.T) {
	p := newSimPair(t, pairOpts{mode: ixgbesim.Stepped, cfgA: Config{FlowControl: true}})
	pb := p.sa.Read32(regs.RXPBSIZE(0)) & 0x000FFC00
	high := pb - FlowControlHeadroom
	low := high - FlowControlHysteresis
	for _, c := range []struct {
		name      string
		reg, want uint32
	}{
		{"FCCFG", regs.FCCFG, regs.FCCFG_TFCE_802_3X},
		{"MFLCN", regs.MFLCN, regs.MFLCN_RFCE},
		{"FCRTH[0]", regs.FCRTH(0), high | regs.FCRTH_FCEN},
		{"FCRTL[0]", regs.FCRTL(0), low | regs.FCRTL_XONE},
		{"FCTTV[0]", regs.FCTTV(0), 0xFFFFFFFF},
		{"FCRTV", regs.FCRTV, 0x7FFF},
		{"SRRCTL[0].DROP_EN", regs.SRRCTL(0) /* masked below */, 0},
	} {
		got := p.sa.Read32(c.reg)
		if c.reg == regs.SRRCTL(0) {
			got &= regs.SRRCTL_DROP_EN
		}
		if got != c.want {
			t.Errorf("A %s = %#x, want %#x", c.name, got, c.want)
		}
	}
	// B has flow control off: no PAUSE sent, none honoured, DROP_EN set.
	if v := p.sb.Read32(regs.FCCFG) & regs.FCCFG_TFCE_MASK; v != 0 {
		t.Errorf("B FCCFG.TFCE = %#x with flow control off", v)
	}
	if v := p.sb.Read32(regs.MFLCN) & regs.MFLCN_RFCE; v != 0 {
		t.Errorf("B MFLCN.RFCE set with flow control off")
	}
	if v := p.sb.Read32(regs.SRRCTL(0)) & regs.SRRCTL_DROP_EN; v == 0 {
		t.Errorf("B SRRCTL.DROP_EN clear with flow control off")
	}
}

// flowResult is what the slow receiver saw.
type flowResult struct {
	sent, received int
	inOrder        bool
	a, b           Stats
}

// runSlowReceiver has A send total frames as fast as its ring allows while
// B's application polls only every pollEvery, taking at most 16 frames.
func runSlowReceiver(t *testing.T, fc bool, total int, pollEvery time.Duration) flowResult {
	t.Helper()
	p := newSimPair(t, pairOpts{
		mode: ixgbesim.FreeRunning,
		cfgA: Config{FlowControl: fc},
		cfgB: Config{FlowControl: fc},
	})
	p.waitLinks(t)
	pool, err := dma.NewMempool(p.a.Allocator(), dma.MempoolConfig{Buffers: 2048})
	if err != nil {
		t.Fatal(err)
	}
	dst, src := p.b.MAC(), p.a.MAC()
	const frameLen = 1000
	res := flowResult{inOrder: true}
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() { // the slow receiver
		defer wg.Done()
		pkts := make([]dma.Packet, 16)
		next := uint32(0)
		idle := 0
		for {
			k, err := p.b.RxBatch(0, pkts)
			if err != nil {
				t.Error(err)
				return
			}
			for _, pk := range pkts[:k] {
				if seq := binary.BigEndian.Uint32(pk.Data()[14:]); seq != next {
					res.inOrder = false
					next = seq
				}
				next++
				res.received++
				pk.Free()
			}
			if k > 0 {
				idle = 0
			} else {
				select {
				case <-done:
					// The sender has finished: wait until nothing more
					// comes for 50 polls.
					if idle++; idle > 50 {
						return
					}
				default:
				}
			}
			time.Sleep(pollEvery)
		}
	}()
	pkts := make([]dma.Packet, 32)
	deadline := time.Now().Add(60 * time.Second)
	for res.sent < total {
		n := pool.AllocBatch(pkts[:min(32, total-res.sent)])
		for i := range pkts[:n] {
			b := pkts[i].Room()[:frameLen]
			copy(b[0:], dst)
			copy(b[6:], src)
			b[12], b[13] = 0x88, 0xB5
			binary.BigEndian.PutUint32(b[14:], uint32(res.sent+i))
			pkts[i].Len = frameLen
		}
		off := 0
		for off < n {
			k, err := p.a.TxBatch(0, pkts[off:n])
			if err != nil {
				t.Fatal(err)
			}
			off += k
			if k == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("sender stuck after %d frames", res.sent+off)
				}
				time.Sleep(20 * time.Microsecond)
			}
		}
		res.sent += n
	}
	close(done)
	wg.Wait()
	res.a, res.b = p.a.Stats(), p.b.Stats()
	if err := p.a.Stop(); err != nil {
		t.Error(err)
	}
	if err := p.b.Stop(); err != nil {
		t.Error(err)
	}
	pool.Release()
	p.checkClean(t)
	return res
}

// TestFlowControlSlowReceiverSim: NIC A sends as fast as it can to NIC B,
// whose application polls rarely. With flow control B's MAC pauses A
// before its packet buffer overflows: nothing is missed and every frame
// arrives, in order. Without it, B drops.
func TestFlowControlSlowReceiverSim(t *testing.T) {
	// B takes at most 8,000 frames/s; A offers far more, even under the
	// race detector on a loaded machine.
	total := 4000
	if testing.Short() {
		total = 2000
	}
	on := runSlowReceiver(t, true, total, 2*time.Millisecond)
	t.Logf("flow control on: sent %d, received %d; B MPC %d QPRDC %d XOFF/XON sent %d/%d; A XOFF/XON received %d/%d",
		on.sent, on.received, on.b.RxMissed, on.b.RxDropped, on.b.TxXoff, on.b.TxXon, on.a.RxXoff, on.a.RxXon)
	if on.b.RxMissed != 0 || on.b.RxDropped != 0 || on.received != total || !on.inOrder {
		t.Errorf("flow control on: MPC %d QPRDC %d, received %d of %d (in order %v); want no loss",
			on.b.RxMissed, on.b.RxDropped, on.received, total, on.inOrder)
	}
	if on.b.TxXoff == 0 || on.a.RxXoff == 0 || on.b.TxXoff != on.a.RxXoff || on.b.TxXon != on.a.RxXon {
		t.Errorf("PAUSE counters: B sent XOFF %d XON %d, A received XOFF %d XON %d",
			on.b.TxXoff, on.b.TxXon, on.a.RxXoff, on.a.RxXon)
	}
	if on.b.RxPackets != uint64(total) {
		t.Errorf("B GPRC %d, want %d (PAUSE frames are consumed by A's MAC, never counted by B)", on.b.RxPackets, total)
	}

	off := runSlowReceiver(t, false, total, 2*time.Millisecond)
	t.Logf("flow control off: sent %d, received %d; B MPC %d QPRDC %d", off.sent, off.received, off.b.RxMissed, off.b.RxDropped)
	if off.b.RxMissed+off.b.RxDropped == 0 || off.received == total {
		t.Errorf("flow control off: no drops (MPC %d QPRDC %d, received %d of %d): the receiver is not slow enough for this test to mean anything",
			off.b.RxMissed, off.b.RxDropped, off.received, total)
	}
	if off.a.RxXoff != 0 || off.b.TxXoff != 0 {
		t.Errorf("PAUSE frames with flow control off: B sent %d, A received %d", off.b.TxXoff, off.a.RxXoff)
	}
}

// TestFlowControlBidirectionalSim: both NICs send to each other as fast as
// they can while both applications poll slowly, so both MACs send and
// honour PAUSE frames at once (the locking case of ixgbesim's fcEmit). It
// must neither deadlock nor lose a frame.
func TestFlowControlBidirectionalSim(t *testing.T) {
	p := newSimPair(t, pairOpts{
		mode: ixgbesim.FreeRunning,
		cfgA: Config{FlowControl: true},
		cfgB: Config{FlowControl: true},
	})
	p.waitLinks(t)
	const total, frameLen = 3000, 1000
	nics := []*NIC{p.a, p.b}
	var wg sync.WaitGroup
	received := make([]int, 2)
	for i, n := range nics {
		peer := nics[1-i]
		pool, err := dma.NewMempool(n.Allocator(), dma.MempoolConfig{Buffers: 1024})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pool.Release() })
		wg.Add(2)
		go func() { // sender
			defer wg.Done()
			pkts := make([]dma.Packet, 32)
			deadline := time.Now().Add(60 * time.Second)
			for sent := 0; sent < total; {
				k := pool.AllocBatch(pkts[:min(32, total-sent)])
				for j := range pkts[:k] {
					b := pkts[j].Room()[:frameLen]
					copy(b, peer.MAC())
					copy(b[6:], n.MAC())
					b[12], b[13] = 0x88, 0xB5
					pkts[j].Len = frameLen
				}
				for off := 0; off < k; {
					m, err := n.TxBatch(0, pkts[off:k])
					if err != nil {
						t.Error(err)
						return
					}
					off += m
					if m == 0 {
						if time.Now().After(deadline) {
							t.Errorf("%s: sender stuck (deadlock?)", n.Name())
							return
						}
						time.Sleep(20 * time.Microsecond)
					}
				}
				sent += k
			}
		}()
		go func(i int) { // slow receiver
			defer wg.Done()
			pkts := make([]dma.Packet, 16)
			deadline := time.Now().Add(20 * time.Second)
			for received[i] < total && time.Now().Before(deadline) {
				k, err := n.RxBatch(0, pkts)
				if err != nil {
					t.Error(err)
					return
				}
				for _, pk := range pkts[:k] {
					pk.Free()
				}
				received[i] += k
				time.Sleep(time.Millisecond)
			}
		}(i)
	}
	wg.Wait()
	sa, sb := p.a.Stats(), p.b.Stats()
	t.Logf("A received %d (XOFF sent %d), B received %d (XOFF sent %d)", received[0], sa.TxXoff, received[1], sb.TxXoff)
	for i, s := range []Stats{sa, sb} {
		if received[i] != total || s.RxMissed != 0 || s.RxDropped != 0 {
			t.Errorf("%s: received %d of %d, MPC %d QPRDC %d", nics[i].Name(), received[i], total, s.RxMissed, s.RxDropped)
		}
	}
	if sa.TxXoff == 0 || sb.TxXoff == 0 {
		t.Errorf("XOFF sent: A %d, B %d; want both receivers to have paused their senders", sa.TxXoff, sb.TxXoff)
	}
	for _, n := range nics {
		if err := n.Stop(); err != nil {
			t.Error(err)
		}
	}
	p.checkClean(t)
}
