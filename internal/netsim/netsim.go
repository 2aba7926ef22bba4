// Package netsim is a deterministic simulated network for tests: two
// link.Link endpoints joined by a wire whose directions each model a path
// with a bottleneck (a rate and a drop-tail queue), a one-way propagation
// delay and seeded random loss, all on a virtual clock that the test moves.
// Nothing runs on its own: frames move only when the stacks poll the
// endpoints, and arrive only when the virtual clock has reached their
// arrival time, so a single goroutine that polls both stacks and advances a
// clock.Fake to the next event replays a run exactly.
//
// A direction can instead be held (Manual): frames the sender transmits wait
// in a list from which the test delivers, drops, duplicates or reorders
// them one by one (state-machine tests), and Inject hands a hand-made frame
// straight to an endpoint (fuzzing).
//
// The link is netsim rather than the stepped ixgbesim cable because that
// cable has delay and seeded loss but neither a bottleneck rate nor a
// bounded queue, runs its delay line on the simulator's own virtual clock
// (a second clock to keep in step with the stack's), and costs a descriptor
// ring and DMA engine step per frame; this link is the memlink of
// deterministic simulations.
package netsim

import (
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/verinic/verinic/dma"
)

// Path describes one direction of the wire.
type Path struct {
	// Delay is the one-way propagation delay.
	Delay time.Duration
	// Rate is the bottleneck rate in bits per second (0: no bottleneck,
	// frames leave at once).
	Rate int64
	// Queue is how many frames may wait at the bottleneck (being
	// serialized or queued) before arrivals are dropped (default 64).
	Queue int
	// Loss is the probability that a frame is lost, drawn from a generator
	// seeded with Seed.
	Loss float64
	Seed uint64
	// Manual holds frames for the test to deliver (Held, Deliver, Drop,
	// Duplicate); Delay, Rate, Queue and Loss then do not apply.
	Manual bool
}

// Stats counts what happened to the frames sent in one direction.
type Stats struct {
	Sent       uint64 // frames offered by the sender
	Lost       uint64 // lost at random (Loss)
	QueueDrops uint64 // dropped at the bottleneck: queue full
	Delivered  uint64 // handed to the receiver
	Dropped    uint64 // dropped by the test (Manual)
	Bytes      uint64 // bytes delivered
}

type frame struct {
	depart, arrive time.Time
	data           []byte
}

// direction is one way of the wire: the frames one endpoint sends to the
// other.
type direction struct {
	p     Path
	rnd   *rand.Rand
	busy  time.Time // the bottleneck is serializing until then
	line  []frame   // in flight, in arrival order (timed); held (Manual)
	ready [][]byte  // arrived, for the receiver's RxBatch
	free  [][]byte
	stats Stats
}

// Endpoint is one end of the wire; it implements link.Link with one queue.
type Endpoint struct {
	w     *Wire
	mac   net.HardwareAddr
	alloc *dma.Allocator
	pool  *dma.Mempool
	out   *direction // frames this endpoint sends
	in    *direction // frames sent to it
	tap   func(frame []byte)
}

// Wire joins two endpoints.
type Wire struct {
	now  func() time.Time
	A, B *Endpoint
}

// Config configures one endpoint.
type Config struct {
	MAC     net.HardwareAddr
	Buffers int // mempool buffers (default 1024)
}

// New returns a wire between two endpoints; ab is the path from A to B, ba
// from B to A. now is the virtual clock (the stacks' clock.Fake Now).
func New(now func() time.Time, a, b Config, ab, ba Path) (*Wire, error) {
	w := &Wire{now: now}
	dab, dba := newDirection(ab), newDirection(ba)
	var err error
	if w.A, err = newEndpoint(w, a, dab, dba); err != nil {
		return nil, err
	}
	if w.B, err = newEndpoint(w, b, dba, dab); err != nil {
		w.A.close()
		return nil, err
	}
	return w, nil
}

func newDirection(p Path) *direction {
	if p.Queue <= 0 {
		p.Queue = 64
	}
	return &direction{p: p, rnd: rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15))}
}

func newEndpoint(w *Wire, cfg Config, out, in *direction) (*Endpoint, error) {
	if len(cfg.MAC) != 6 {
		return nil, fmt.Errorf("netsim: MAC %v is not 6 bytes", cfg.MAC)
	}
	if cfg.Buffers <= 0 {
		cfg.Buffers = 1024
	}
	e := &Endpoint{w: w, mac: append(net.HardwareAddr(nil), cfg.MAC...), out: out, in: in,
		alloc: dma.NewAllocator(dma.NewIOVASpace(1<<32, 48), dma.NoHugepages)}
	p, err := dma.NewMempool(e.alloc, dma.MempoolConfig{Name: fmt.Sprintf("netsim-%v", cfg.MAC), Buffers: cfg.Buffers})
	if err != nil {
		e.alloc.Close()
		return nil, fmt.Errorf("netsim: %w", err)
	}
	e.pool = p
	return e, nil
}

func (e *Endpoint) close() {
	if e.pool != nil {
		e.pool.Release()
		e.pool = nil
	}
	e.alloc.Close()
}

// Close releases both endpoints' memory (after the stacks stopped polling).
func (w *Wire) Close() {
	w.A.close()
	w.B.close()
}

// MAC implements link.Link.
func (e *Endpoint) MAC() net.HardwareAddr { return e.mac }

// NumRxQueues implements link.Link.
func (e *Endpoint) NumRxQueues() int { return 1 }

// NumTxQueues implements link.Link.
func (e *Endpoint) NumTxQueues() int { return 1 }

// RxPool implements link.Link.
func (e *Endpoint) RxPool(q int) *dma.Mempool { return e.pool }

// RxBatch implements link.Link: frames whose arrival time has come, copied
// into buffers of the endpoint's pool.
func (e *Endpoint) RxBatch(q int, pkts []dma.Packet) (int, error) {
	d := e.in
	d.arrive(e.w.now())
	n := 0
	for n < len(pkts) && len(d.ready) > 0 {
		p, err := e.pool.Alloc()
		if err != nil {
			break
		}
		b := d.ready[0]
		p.Len = uint16(copy(p.Room(), b))
		d.ready[0] = nil
		d.ready = d.ready[1:]
		d.free = append(d.free, b[:0])
		pkts[n] = p
		n++
	}
	return n, nil
}

// TxBatch implements link.Link: each frame enters the path and its buffer
// is freed.
func (e *Endpoint) TxBatch(q int, pkts []dma.Packet) (int, error) {
	now := e.w.now()
	for i := range pkts {
		e.send(pkts[i].Data(), now)
		pkts[i].Free()
	}
	return len(pkts), nil
}

// SetTap makes f see every frame this endpoint sends, before the path
// acts on it (f must not keep the slice); nil removes it.
func (e *Endpoint) SetTap(f func(frame []byte)) { e.tap = f }

// Inject hands frame to this endpoint as if it had just arrived (no path).
func (e *Endpoint) Inject(frame []byte) {
	e.in.ready = append(e.in.ready, e.in.copyOf(frame))
}

// Stats returns the counts of the frames this endpoint sent.
func (e *Endpoint) Stats() Stats { return e.out.stats }

// SetPath changes the path of the frames this endpoint sends from now on
// (frames in flight keep their times; switching to Manual keeps them in
// the held list, in order).
func (e *Endpoint) SetPath(p Path) {
	d := e.out
	seed := d.p.Seed
	if p.Queue <= 0 {
		p.Queue = 64
	}
	d.p = p
	if p.Seed != seed {
		d.rnd = rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15))
	}
}

func (d *direction) copyOf(b []byte) []byte {
	var c []byte
	if n := len(d.free); n > 0 {
		c = d.free[n-1]
		d.free = d.free[:n-1]
	}
	return append(c[:0], b...)
}

func (e *Endpoint) send(b []byte, now time.Time) {
	if e.tap != nil {
		e.tap(b)
	}
	d := e.out
	d.stats.Sent++
	if d.p.Manual {
		d.line = append(d.line, frame{data: d.copyOf(b)})
		return
	}
	if d.p.Loss > 0 && d.rnd.Float64() < d.p.Loss {
		d.stats.Lost++
		return
	}
	depart := now
	if d.p.Rate > 0 {
		// Frames still at the bottleneck (not fully serialized by now).
		queued := 0
		for i := len(d.line) - 1; i >= 0 && d.line[i].depart.After(now); i-- {
			queued++
		}
		if queued >= d.p.Queue {
			d.stats.QueueDrops++
			return
		}
		start := now
		if d.busy.After(start) {
			start = d.busy
		}
		// Serialization of the frame with Ethernet's preamble, FCS and
		// inter-frame gap (24 bytes).
		bits := int64(len(b)+24) * 8
		depart = start.Add(time.Duration(bits * int64(time.Second) / d.p.Rate))
		d.busy = depart
	}
	d.line = append(d.line, frame{depart: depart, arrive: depart.Add(d.p.Delay), data: d.copyOf(b)})
}

// arrive moves the frames whose time has come to ready.
func (d *direction) arrive(now time.Time) {
	if d.p.Manual {
		return
	}
	i := 0
	for i < len(d.line) && !d.line[i].arrive.After(now) {
		d.ready = append(d.ready, d.line[i].data)
		d.stats.Delivered++
		d.stats.Bytes += uint64(len(d.line[i].data))
		d.line[i] = frame{}
		i++
	}
	if i > 0 {
		d.line = append(d.line[:0], d.line[i:]...)
	}
}

// NextArrival returns the earliest time a frame in flight (either
// direction) arrives.
func (w *Wire) NextArrival() (time.Time, bool) {
	var t time.Time
	ok := false
	for _, d := range []*direction{w.A.out, w.B.out} {
		if d.p.Manual || len(d.line) == 0 {
			continue
		}
		if a := d.line[0].arrive; !ok || a.Before(t) {
			t, ok = a, true
		}
	}
	return t, ok
}

// InFlight returns the frames on the wire in both directions (held ones
// included) and those arrived but not yet received.
func (w *Wire) InFlight() int {
	return len(w.A.out.line) + len(w.B.out.line) + len(w.A.out.ready) + len(w.B.out.ready)
}

// Held returns the frames held in the direction this endpoint sends
// (Manual paths), oldest first. The slices are the wire's: do not keep them.
func (e *Endpoint) Held() [][]byte {
	out := make([][]byte, len(e.out.line))
	for i, f := range e.out.line {
		out[i] = f.data
	}
	return out
}

// Deliver hands the i-th held frame of this endpoint's direction to the
// peer (any i: out of order is a reordering).
func (e *Endpoint) Deliver(i int) {
	d := e.out
	f := d.line[i]
	d.line = append(d.line[:i], d.line[i+1:]...)
	d.ready = append(d.ready, f.data)
	d.stats.Delivered++
	d.stats.Bytes += uint64(len(f.data))
}

// Drop discards the i-th held frame.
func (e *Endpoint) Drop(i int) {
	d := e.out
	d.free = append(d.free, d.line[i].data[:0])
	d.line = append(d.line[:i], d.line[i+1:]...)
	d.stats.Dropped++
}

// Duplicate delivers a copy of the i-th held frame and keeps the original
// held.
func (e *Endpoint) Duplicate(i int) {
	d := e.out
	d.ready = append(d.ready, d.copyOf(d.line[i].data))
	d.stats.Delivered++
	d.stats.Bytes += uint64(len(d.line[i].data))
}
