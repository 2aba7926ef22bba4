package ixgbe

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
)

// haltErr reports whether err is what a poller may get from a NIC being
// stopped or closed under it.
func haltErr(err error) bool { return errors.Is(err, ErrStopped) || errors.Is(err, ErrClosed) }

// TestCloseWithConcurrentPollersSim stops or closes both NICs of a
// free-running pair while goroutines keep calling TxBatch (A) and RxBatch
// (B): the pollers must end with ErrStopped or ErrClosed, and under -race
// nothing may touch the rings or pools concurrently with the teardown. The
// pollers touch pools only inside batches (frames are built beforehand;
// received ones are kept until the poller is done), which is what makes the
// test race-free when the gate works; without it the teardown's reclaim
// races with the batches.
func TestCloseWithConcurrentPollersSim(t *testing.T) {
	for _, how := range []string{"stop", "close"} {
		t.Run(how, func(t *testing.T) {
			p := newSimPair(t, pairOpts{mode: ixgbesim.FreeRunning, cfgB: Config{Promiscuous: true}})
			p.waitLinks(t)
			app, err := dma.NewMempool(p.a.Allocator(), dma.MempoolConfig{Name: "app", Buffers: 8192})
			if err != nil {
				t.Fatal(err)
			}
			defer app.Release()
			frames := make([]dma.Packet, app.Size())
			for i := range frames {
				frames[i], _ = app.Alloc()
				frames[i].Len = 60
				d := frames[i].Data()
				copy(d, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x88, 0xb5})
			}
			var wg sync.WaitGroup
			var txErr, rxErr error
			var held []dma.Packet
			wg.Add(2)
			go func() { // sender on A
				defer wg.Done()
				next := 0
				for {
					end := min(next+32, len(frames))
					k, err := p.a.TxBatch(0, frames[next:end])
					if err != nil {
						txErr = err
						return
					}
					next += k // at the end, keep polling with nothing to send (reclaiming)
				}
			}()
			go func() { // receiver on B: keeps what it gets
				defer wg.Done()
				buf := make([]dma.Packet, 32)
				for {
					k, err := p.b.RxBatch(0, buf)
					if err != nil {
						rxErr = err
						return
					}
					held = append(held, buf[:k]...)
					if len(held) > 1024 {
						held = held[:0:0] // drop references; the pool counts them as outstanding
					}
				}
			}()
			time.Sleep(30 * time.Millisecond)
			var ea, eb error
			if how == "stop" {
				ea, eb = p.a.Stop(), p.b.Stop()
			} else {
				ea, eb = p.a.Close(), p.b.Close()
			}
			wg.Wait()
			if ea != nil && !errors.Is(ea, ErrBuffersOutstanding) {
				t.Fatalf("A: %s: %v", how, ea)
			}
			if eb != nil && !errors.Is(eb, ErrBuffersOutstanding) {
				t.Fatalf("B: %s: %v", how, eb)
			}
			if !haltErr(txErr) || !haltErr(rxErr) {
				t.Fatalf("pollers ended with TX %v, RX %v; want ErrStopped or ErrClosed", txErr, rxErr)
			}
			for _, pk := range held {
				if err := pk.Free(); err != nil && !errors.Is(err, dma.ErrPoolReleased) {
					t.Fatalf("free after %s: %v", how, err)
				}
			}
			p.checkClean(t)
		})
	}
}

// TestCloseWaitsForBatchInFlight shows the closer waiting for a batch that
// is inside the gate, and a second poller of a busy queue refused.
func TestCloseWaitsForBatchInFlight(t *testing.T) {
	_, n := newFakeNIC(t, Config{})
	if err := n.port.Enter(true, 0); err != nil {
		t.Fatal(err)
	}
	// A second goroutine polling the same queue is refused.
	if _, err := n.RxBatch(0, make([]dma.Packet, 4)); !errors.Is(err, ErrQueueBusy) {
		t.Fatalf("RxBatch on a busy queue: %v, want ErrQueueBusy", err)
	}
	done := make(chan error)
	go func() { done <- n.Close() }()
	select {
	case err := <-done:
		t.Fatalf("Close returned (%v) while a batch was in flight", err)
	case <-time.After(20 * time.Millisecond):
	}
	n.port.Leave(true, 0)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return after the batch ended")
	}
	if _, err := n.RxBatch(0, make([]dma.Packet, 4)); !errors.Is(err, ErrClosed) {
		t.Fatalf("RxBatch after Close: %v, want ErrClosed", err)
	}
	if _, err := n.TxBatch(0, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("TxBatch after Close: %v, want ErrClosed", err)
	}
	if _, err := n.RxPool(0).Alloc(); !errors.Is(err, dma.ErrPoolReleased) {
		t.Fatalf("Alloc from a closed NIC's pool: %v, want ErrPoolReleased", err)
	}
}

// TestStuckBatchLeavesMemory: a batch that never ends (a poller that
// panicked inside one and recovered) makes Stop and Close give up with
// ErrQueueInUse instead of hanging, and leave the rings and pools
// allocated; once the batch ends, Close completes.
func TestStuckBatchLeavesMemory(t *testing.T) {
	_, n := newFakeNIC(t, Config{TxQueues: 2})
	n.port.QuiesceTimeout = 50 * time.Millisecond
	if err := n.port.Enter(false, 1); err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(); !errors.Is(err, ErrQueueInUse) {
		t.Fatalf("Stop with a stuck batch: %v, want ErrQueueInUse", err)
	}
	if err := n.Close(); !errors.Is(err, ErrQueueInUse) {
		t.Fatalf("Close with a stuck batch: %v, want ErrQueueInUse", err)
	}
	if n.RxPool(0).Released() {
		t.Fatal("Close released the pool under a running batch")
	}
	if _, err := n.RxBatch(0, make([]dma.Packet, 1)); !errors.Is(err, ErrStopped) {
		t.Fatalf("RxBatch meanwhile: %v, want ErrStopped", err)
	}
	n.port.Leave(false, 1)
	if err := n.Close(); err != nil {
		t.Fatalf("Close once the batch ended: %v", err)
	}
	if !n.RxPool(0).Released() {
		t.Fatal("pool not released by the second Close")
	}
}
