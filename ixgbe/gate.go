package ixgbe

import (
	"errors"
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

// quiesce waits until no batch is running on any queue. Call it after
// setting a state bit: no batch can start afterwards, and the ones running
// are short (they never block), so the wait is bounded by one batch.
func (n *NIC) quiesce() {
	wait := func(gs []gate) {
		for i := range gs {
			for spins := 0; gs[i].busy.Load() != 0; spins++ {
				if spins < 100 {
					runtime.Gosched()
				} else {
					time.Sleep(10 * time.Microsecond)
				}
			}
		}
	}
	wait(n.rxGates)
	wait(n.txGates)
}
