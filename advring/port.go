package advring

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/trace"
)

// Config is what every queue of a port shares: the family, the device, the
// DMA allocator for the rings, trace recording, and how to find out that the
// device is gone.
type Config struct {
	Family *Family
	Dev    Device
	// Alloc allocates the descriptor rings (DMA memory the device reaches).
	Alloc *dma.Allocator
	// Trace receives ring events (nil: none). Events carry Dev = DevID,
	// Dir, Queue and the descriptor Index, recorded per the ordering rule
	// of package trace:
	//   - DrvPost (Buf = buffer IOVA, Len = TX frame length or RX data
	//     room), before the stores that fill the descriptor. RX also posts
	//     the same buffer again, without a DrvReclaim, when it drops a
	//     frame (multi-descriptor, MAC error).
	//   - DrvTail (Index = value written), before the tail write. RX tails
	//     name the last descriptor refilled (RDT = N-1 at start), TX tails
	//     the next free one.
	//   - DrvDDSeen, after the load that saw DD. RX: every descriptor
	//     (Len = length). TX: only the last descriptor of a cleaning batch
	//     of up to RSThresh; the device completes in order, so it covers
	//     the batch.
	//   - DrvReclaim (Buf = buffer IOVA): TX, as each buffer of a cleaned
	//     batch is freed to its pool; RX, as a frame is handed up
	//     (Len = length).
	Trace *trace.Recorder
	DevID uint16
	// Gone reads a register that a present device never reads as all
	// ones (82599 and 82576: STATUS), sets the port's Gone bit if it does,
	// and reports whether the device is gone. A queue calls it after
	// GoneCheckInterval calls in a row without progress.
	Gone func() bool

	// bugs makes the queues commit deliberate protocol errors; set only
	// through WithBugs, in builds with the ixgbebugs tag (bugs.go).
	bugs bug
}

// Port is a family driver's set of queues with their gates, halt state and
// interrupt (NAPI) state: what RxBatch and TxBatch need besides the rings.
// The family appends its queues to Rx and Tx during initialization (before
// any batch runs), then calls Open.
type Port struct {
	State State
	Rx    []*RxQueue
	Tx    []*TxQueue
	// QuiesceTimeout bounds Quiesce's wait (0: DefaultQuiesceTimeout).
	QuiesceTimeout time.Duration

	rxGates, txGates []gate
	napi             atomic.Pointer[NAPI]
}

// Open makes the port's queues usable by RxBatch and TxBatch (it sizes the
// gates). Call it once, after the last queue is appended.
func (p *Port) Open() {
	p.rxGates = make([]gate, len(p.Rx))
	p.txGates = make([]gate, len(p.Tx))
}

// Offloads returns what the engine does for every family (a driver's
// link.Offloader answer): each received frame's Meta carries the device's
// IPv4 and TCP/UDP checksum results, with RSS on its hash and with VLAN
// strip its tag (from the RX queues' configuration); TxBatch honours IPv4
// and TCP/UDP checksum insertion, VLAN insertion and TCP segmentation
// through context descriptors (txoffload.go). Call it after the queues
// are set up.
func (p *Port) Offloads() dma.Offloads {
	o := dma.OffloadRxChecksum | dma.OffloadTxIPCsum | dma.OffloadTxL4Csum | dma.OffloadTxVLAN | dma.OffloadTSO
	if len(p.Rx) > 0 && p.Rx[0].vpStrip != 0 {
		o |= dma.OffloadRxVLAN
	}
	if len(p.Rx) > 0 && p.Rx[0].rssHash {
		o |= dma.OffloadRxHash
	}
	return o
}

// RxBatch receives up to len(pkts) frames from queue q into pkts and returns
// how many. The caller owns the returned packets: free them (Packet.Free)
// or pass them to TxBatch. Each descriptor handed up is refilled with a
// fresh buffer from the queue's pool, and the tail is written once per call
// (82599 datasheet 7.1.9). A frame spanning several descriptors (larger
// than the pool's data room) or flagged with a MAC error is dropped and
// counted. If the pool runs dry the call returns what it has; the rest stays
// in the ring (and the device drops when the ring is full). With a NAPI set
// (SetNAPI), an idle poll hands the queue's interrupt back.
func (p *Port) RxBatch(q int, pkts []dma.Packet) (int, error) {
	if uint(q) >= uint(len(p.rxGates)) {
		return 0, p.badQueue()
	}
	g := &p.rxGates[q]
	if err := p.State.enter(g); err != nil { // Stop/Close safety (gate.go)
		return 0, err
	}
	k, err := p.Rx[q].receive(pkts)
	if st := p.napi.Load(); st != nil {
		st.polled(q, k) // interrupt mode: unmask the queue's vector when idle (napi.go)
	}
	g.leave()
	return k, err
}

// TxBatch queues up to len(pkts) frames for sending on queue q and returns
// how many it took: the first k packets now belong to the engine, which
// frees each to its own pool once the device has sent it. It returns fewer
// when the ring is full (the caller keeps the rest: retry or free them), and
// stops with ErrBadPacket at a packet it cannot send. Completed descriptors
// are reclaimed first, in batches; the tail is written once per call.
func (p *Port) TxBatch(q int, pkts []dma.Packet) (int, error) {
	if uint(q) >= uint(len(p.txGates)) {
		return 0, p.badQueue()
	}
	g := &p.txGates[q]
	if err := p.State.enter(g); err != nil { // Stop/Close safety (gate.go)
		return 0, err
	}
	k, err := p.Tx[q].send(pkts)
	g.leave()
	return k, err
}

// badQueue is the error for a queue number out of range: the halt state's
// if the port is halted (its queues may never have been opened), else
// ErrBadQueue.
func (p *Port) badQueue() error {
	if p.State.Halted() {
		return p.State.Err()
	}
	return ErrBadQueue
}

// SetNAPI installs (or, with nil, removes) the interrupt state RxBatch
// reports its polls to, and returns the previous one.
func (p *Port) SetNAPI(s *NAPI) *NAPI { return p.napi.Swap(s) }

// NAPI returns the interrupt state (nil while polling).
func (p *Port) NAPI() *NAPI { return p.napi.Load() }

// Clock is the time source of Drain (the family's clock: real, or a
// simulator's virtual one).
type Clock interface {
	Now() time.Time
	Sleep(d time.Duration)
}

// Drain waits, for at most timeout on clock, until every TX queue's
// posted descriptors are written back, reclaiming as they complete (82599
// datasheet 7.2.3.5). It stops early when gone reports the device gone.
// Call it after Quiesce, before the family disables the queues.
func (p *Port) Drain(clock Clock, timeout time.Duration, gone func() bool) error {
	start := clock.Now()
	var errs []error
	for _, q := range p.Tx {
		for {
			q.reclaim()
			if q.clean == q.next || gone() {
				break
			}
			if clock.Now().Sub(start) >= timeout {
				errs = append(errs, fmt.Errorf("timeout after %v waiting for TX queue %d to drain (DD on descriptors %d..%d) (datasheet 7.2.3.5)",
					timeout, q.id, q.clean, q.ring.prev(q.next)))
				break
			}
			clock.Sleep(100 * time.Microsecond)
		}
	}
	return errors.Join(errs...)
}

// ReclaimAll takes every buffer out of every ring: sent or unsent TX
// buffers back to their pools, RX buffers to the RX pools. Call it only
// when the device no longer touches the rings (queues disabled, or the
// device gone).
func (p *Port) ReclaimAll() {
	for _, q := range p.Tx {
		q.reclaimAll()
	}
	for _, q := range p.Rx {
		q.reclaimAll()
	}
}

// FreeRings frees every ring's memory (not the RX pools: they are the
// family's). Call it after ReclaimAll, on Close.
func (p *Port) FreeRings() error {
	var errs []error
	for _, q := range p.Rx {
		errs = append(errs, q.ring.free())
	}
	for _, q := range p.Tx {
		errs = append(errs, q.ring.free())
	}
	return errors.Join(errs...)
}
