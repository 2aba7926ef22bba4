package advring

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

// Stop and Close against a concurrent poller.
//
// RxBatch and TxBatch may be running on other goroutines when the family's
// Stop or Close is called. The closer must not reclaim the rings' buffers,
// disable the queues' bookkeeping or free the rings and pools while a poller
// is inside a batch, and a poller must not enter one afterwards. Each queue
// has a gate word, on a cache line of its own: a poller sets it (one atomic
// compare-and-swap) before it reads the port's State and clears it when it
// leaves; the closer sets its state bit first and then waits until every
// gate reads clear (Port.Quiesce). Go's atomics are sequentially consistent,
// so either the poller sees the state bit (and returns ErrStopped, ErrClosed
// or ErrDeviceGone without touching the ring) or the closer sees the gate
// set (and waits for the batch to end): no batch overlaps the teardown. The
// cost on the data path is one locked instruction on entry and one store on
// exit, per batch, on a line no other queue writes.
//
// The gate also catches two goroutines calling RxBatch (or TxBatch) on the
// same queue at once, which the contract forbids: the second gets
// ErrQueueBusy instead of corrupting the ring.

// Errors of the data path. They are sentinels so that the data path
// returns them without allocating; family drivers re-export them (ixgbe's
// ErrDeviceGone is ErrDeviceGone) and callers test them with errors.Is.
var (
	// ErrDeviceGone reports a surprise removal: the device reads all ones
	// (a PCIe read to a device that is no longer there completes with
	// 0xFFFFFFFF). Every call on the port returns it from then on.
	ErrDeviceGone = errors.New("device gone (registers read all ones: surprise removal?)")
	// ErrBadQueue reports a queue number out of range.
	ErrBadQueue = errors.New("no such queue")
	// ErrBadPacket reports a packet TxBatch cannot send: no pool, a length
	// out of range, a frame that does not lie within its buffer, or
	// offloads that cannot apply to it. TxBatch stops at it; the caller
	// keeps it.
	ErrBadPacket = errors.New("bad packet: no pool, length out of range, frame outside its buffer or offload not applicable")
	// ErrClosed reports a call on a closed port.
	ErrClosed = errors.New("NIC is closed")
	// ErrStopped reports a data-path call on a stopped port.
	ErrStopped = errors.New("NIC is stopped")
	// ErrQueueBusy is returned by RxBatch or TxBatch when another goroutine
	// is inside a batch on the same queue (each queue must be polled by one
	// goroutine at a time).
	ErrQueueBusy = errors.New("queue is being polled by another goroutine (one goroutine per queue)")
	// ErrQueueInUse is returned (wrapped) by Quiesce when a queue's batch
	// did not end within the port's QuiesceTimeout: the family must then
	// leave the rings and pools allocated (leaked) rather than free them
	// under it.
	ErrQueueInUse = errors.New("a queue is still inside RxBatch or TxBatch")
)

// State bits: once any is set, RxBatch and TxBatch refuse to touch the
// rings (one atomic load per call checks all three).
const (
	Gone    = 1 << iota // the device read all ones
	Stopped             // the family's Stop ran: the rings hold no buffers
	Closed              // the family's Close ran: the rings are freed
)

// State is a port's halt word (Gone, Stopped, Closed).
type State struct{ v atomic.Uint32 }

// Set sets bits.
func (s *State) Set(bits uint32) { s.v.Or(bits) }

// Is reports whether any of bits is set.
func (s *State) Is(bits uint32) bool { return s.v.Load()&bits != 0 }

// Halted reports whether any bit is set.
func (s *State) Halted() bool { return s.v.Load() != 0 }

// Err returns the error for a data-path call on a halted port (nil if it is
// not halted).
func (s *State) Err() error {
	switch v := s.v.Load(); {
	case v == 0:
		return nil
	case v&Gone != 0:
		return ErrDeviceGone
	case v&Closed != 0:
		return ErrClosed
	default:
		return ErrStopped
	}
}

// gate is one queue's in-flight word: 1 while a batch runs.
type gate struct {
	busy atomic.Uint32
	_    [60]byte // keep each gate on its own cache line
}

// enter admits a batch on g, or says why not.
func (s *State) enter(g *gate) error {
	if !g.busy.CompareAndSwap(0, 1) {
		if s.Halted() {
			return s.Err()
		}
		return ErrQueueBusy
	}
	if s.Halted() {
		g.busy.Store(0)
		return s.Err()
	}
	return nil
}

// leave ends the batch entered on g.
func (g *gate) leave() { g.busy.Store(0) }

// DefaultQuiesceTimeout bounds the wait for batches in flight when
// Port.QuiesceTimeout is zero. A batch never blocks, so only a poller that
// panicked inside one (and recovered) or a goroutine stopped in a debugger
// holds a gate this long; the closer then gives up rather than hang, and
// does not free the memory (ErrQueueInUse).
const DefaultQuiesceTimeout = 5 * time.Second

// Quiesce waits until no batch is running on any queue of p. Call it after
// setting a state bit: no batch can start afterwards, and the ones running
// are short (they never block), so the wait is bounded by one batch. name
// names the device in the error.
func (p *Port) Quiesce(name string) error {
	start := time.Now()
	timeout := p.QuiesceTimeout
	if timeout == 0 {
		timeout = DefaultQuiesceTimeout
	}
	wait := func(gs []gate, dir string) error {
		for i := range gs {
			for spins := 0; gs[i].busy.Load() != 0; spins++ {
				if spins < 100 {
					runtime.Gosched()
					continue
				}
				if time.Since(start) >= timeout {
					return fmt.Errorf("%s: %s queue %d still in a batch after %v: %w", name, dir, i, timeout, ErrQueueInUse)
				}
				time.Sleep(10 * time.Microsecond)
			}
		}
		return nil
	}
	if err := wait(p.rxGates, "RX"); err != nil {
		return err
	}
	return wait(p.txGates, "TX")
}

// Enter and Leave hold queue q's gate (rx: an RX queue, else a TX queue)
// around work outside RxBatch and TxBatch that must not overlap a teardown
// either, exactly as a batch does (tests use them to simulate a poller
// stuck inside a batch).
func (p *Port) Enter(rx bool, q int) error { return p.State.enter(p.gateOf(rx, q)) }

// Leave ends what Enter began.
func (p *Port) Leave(rx bool, q int) { p.gateOf(rx, q).leave() }

func (p *Port) gateOf(rx bool, q int) *gate {
	if rx {
		return &p.rxGates[q]
	}
	return &p.txGates[q]
}
