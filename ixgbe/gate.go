package ixgbe

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

// Stop and Close against a concurrent poller.
//
// RxBatch and TxBatch may be running on other goroutines when Stop or Close
// is called. The closer must not reclaim the rings' buffers, disable the
// queues' bookkeeping or free the rings and pools while a poller is inside
// a batch, and a poller must not enter one afterwards. Each queue has a gate
// word, on a cache line of its own: a poller sets it (one atomic
// compare-and-swap) before it reads the NIC's state and clears it when it
// leaves; the closer sets its state bit first and then waits until every
// gate reads clear. Go's atomics are sequentially consistent, so either the
// poller sees the state bit (and returns ErrStopped, ErrClosed or
// ErrDeviceGone without touching the ring) or the closer sees the gate set
// (and waits for the batch to end): no batch overlaps the teardown. The cost
// on the data path is one locked instruction on entry and one store on
// exit, per batch, on a line no other queue writes.
//
// The gate also catches two goroutines calling RxBatch (or TxBatch) on the
// same queue at once, which the NIC's contract forbids: the second gets
// ErrQueueBusy instead of corrupting the ring.

// ErrQueueBusy is returned by RxBatch or TxBatch when another goroutine is
// inside a batch on the same queue (each queue must be polled by one
// goroutine at a time).
var ErrQueueBusy = errors.New("ixgbe: queue is being polled by another goroutine (one goroutine per queue)")

// gate is one queue's in-flight word: 1 while a batch runs.
type gate struct {
	busy atomic.Uint32
	_    [60]byte // keep each gate on its own cache line
}

// enter admits a batch on g, or says why not.
func (n *NIC) enter(g *gate) error {
	if !g.busy.CompareAndSwap(0, 1) {
		if n.state.Load() != 0 {
			return n.haltedErr()
		}
		return ErrQueueBusy
	}
	if n.state.Load() != 0 {
		g.busy.Store(0)
		return n.haltedErr()
	}
	return nil
}

// leave ends the batch entered on g.
func (g *gate) leave() { g.busy.Store(0) }

// quiesceTimeout bounds the wait for batches in flight. A batch never
// blocks, so only a poller that panicked inside one (and recovered) or a
// goroutine stopped in a debugger holds a gate this long; the closer then
// gives up rather than hang, and does not free the memory (ErrQueueInUse).
var quiesceTimeout = 5 * time.Second

// ErrQueueInUse is returned (wrapped) by Stop and Close when a queue's
// batch did not end within quiesceTimeout: the rings and pools are left
// allocated (leaked) rather than freed under it.
var ErrQueueInUse = errors.New("ixgbe: a queue is still inside RxBatch or TxBatch")

// quiesce waits until no batch is running on any queue. Call it after
// setting a state bit: no batch can start afterwards, and the ones running
// are short (they never block), so the wait is bounded by one batch.
func (n *NIC) quiesce() error {
	start := time.Now()
	wait := func(gs []gate, dir string) error {
		for i := range gs {
			for spins := 0; gs[i].busy.Load() != 0; spins++ {
				if spins < 100 {
					runtime.Gosched()
					continue
				}
				if time.Since(start) >= quiesceTimeout {
					return fmt.Errorf("ixgbe: %s: %s queue %d still in a batch after %v: %w", n.name, dir, i, quiesceTimeout, ErrQueueInUse)
				}
				time.Sleep(10 * time.Microsecond)
			}
		}
		return nil
	}
	if err := wait(n.rxGates, "RX"); err != nil {
		return err
	}
	return wait(n.txGates, "TX")
}
