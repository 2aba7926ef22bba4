// Package memlink is a pure in-memory Link pair for tests: two endpoints
// joined by a wire, each with its own mempools, so that two stacks can talk
// without a NIC or a simulator. Frames are copied across; a wire can drop,
// corrupt, duplicate and reorder frames with a seeded random source.
//
// Receive queues are chosen by hashing the IPv4 source and destination
// addresses (as the 82599's RSS does for fragments), so every fragment of a
// datagram lands on one queue.
package memlink

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"

	"github.com/verinic/verinic/dma"
)

// Faults describes what the wire does to frames, as probabilities in [0,1].
type Faults struct {
	Drop, Corrupt, Duplicate, Reorder float64
	Seed                              uint64
}

// Config configures one endpoint.
type Config struct {
	MAC        net.HardwareAddr
	Queues     int // RX and TX queues (default 1)
	Buffers    int // per queue mempool (default 1024)
	WireFrames int // frames the wire holds per queue before dropping (default 1024)
}

// Endpoint is one end of a wire. It implements link.Link.
type Endpoint struct {
	mac   net.HardwareAddr
	alloc *dma.Allocator
	pools []*dma.Mempool
	in    []*wireQueue // frames arriving for this endpoint, per queue
	peer  *Endpoint
	fault *faulter
	tap   atomic.Pointer[func(frame []byte)]

	// Counters.
	RxFrames, TxFrames, WireDrops, FaultDrops atomic.Uint64
}

type wireQueue struct {
	notify atomic.Pointer[func()] // wakes the receiving poll loop
	mu     sync.Mutex
	slots  [][]byte // preallocated frame storage
	lens   []int
	head   int
	n      int
	held   []byte // a frame held back for reordering
	holdOK bool
}

type faulter struct {
	mu  sync.Mutex
	f   Faults
	rnd *rand.Rand
}

// Pair returns two connected endpoints. ab applies to frames from a to b, ba
// to frames from b to a.
func Pair(a, b Config, ab, ba Faults) (*Endpoint, *Endpoint, error) {
	ea, err := newEndpoint(a, ab)
	if err != nil {
		return nil, nil, err
	}
	eb, err := newEndpoint(b, ba)
	if err != nil {
		ea.Close()
		return nil, nil, err
	}
	ea.peer, eb.peer = eb, ea
	return ea, eb, nil
}

func newEndpoint(cfg Config, f Faults) (*Endpoint, error) {
	if cfg.Queues <= 0 {
		cfg.Queues = 1
	}
	if cfg.Buffers <= 0 {
		cfg.Buffers = 1024
	}
	if cfg.WireFrames <= 0 {
		cfg.WireFrames = 1024
	}
	if len(cfg.MAC) != 6 {
		return nil, fmt.Errorf("memlink: MAC %v is not 6 bytes", cfg.MAC)
	}
	e := &Endpoint{
		mac:   append(net.HardwareAddr(nil), cfg.MAC...),
		alloc: dma.NewAllocator(dma.NewIOVASpace(1<<32, 48), dma.NoHugepages),
		fault: &faulter{f: f, rnd: rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))},
	}
	for q := 0; q < cfg.Queues; q++ {
		p, err := dma.NewMempool(e.alloc, dma.MempoolConfig{Name: fmt.Sprintf("memlink-%v-q%d", cfg.MAC, q), Buffers: cfg.Buffers})
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("memlink: %w", err)
		}
		e.pools = append(e.pools, p)
		w := &wireQueue{slots: make([][]byte, cfg.WireFrames), lens: make([]int, cfg.WireFrames), held: make([]byte, p.BufSize())}
		for i := range w.slots {
			w.slots[i] = make([]byte, p.BufSize())
		}
		e.in = append(e.in, w)
	}
	return e, nil
}

// Close releases the endpoint's memory. Call it after the stack using the
// endpoint has stopped.
func (e *Endpoint) Close() error {
	for _, p := range e.pools {
		p.Release()
	}
	e.pools = nil
	return e.alloc.Close()
}

// MAC implements link.Link.
func (e *Endpoint) MAC() net.HardwareAddr { return e.mac }

// NumRxQueues implements link.Link.
func (e *Endpoint) NumRxQueues() int { return len(e.pools) }

// NumTxQueues implements link.Link.
func (e *Endpoint) NumTxQueues() int { return len(e.pools) }

// RxPool implements link.Link.
func (e *Endpoint) RxPool(q int) *dma.Mempool { return e.pools[q] }

// SetFaults changes the faults applied to frames this endpoint sends.
func (e *Endpoint) SetFaults(f Faults) {
	e.fault.mu.Lock()
	e.fault.f = f
	e.fault.mu.Unlock()
}

// RxBatch implements link.Link: it copies waiting frames into fresh buffers
// of queue q's pool.
func (e *Endpoint) RxBatch(q int, pkts []dma.Packet) (int, error) {
	if q < 0 || q >= len(e.in) {
		return 0, fmt.Errorf("memlink: no queue %d", q)
	}
	w, pool := e.in[q], e.pools[q]
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for n < len(pkts) && w.n > 0 {
		p, err := pool.Alloc()
		if err != nil {
			break // the pool is empty: leave frames on the wire
		}
		i := w.head
		p.Len = uint16(copy(p.Room(), w.slots[i][:w.lens[i]]))
		w.head = (w.head + 1) % len(w.slots)
		w.n--
		pkts[n] = p
		n++
	}
	e.RxFrames.Add(uint64(n))
	return n, nil
}

// TxBatch implements link.Link: it copies each frame onto the wire (applying
// the faults) and frees its buffer.
func (e *Endpoint) TxBatch(q int, pkts []dma.Packet) (int, error) {
	for i := range pkts {
		e.send(pkts[i].Data())
		pkts[i].Free()
	}
	e.TxFrames.Add(uint64(len(pkts)))
	return len(pkts), nil
}

// Inject puts frame on the wire as if this endpoint had sent it (faults
// apply). Tests use it to feed hand-made frames to the peer.
func (e *Endpoint) Inject(frame []byte) { e.send(frame) }

// SetTap makes f see (a copy is not made: f must not keep the slice) every
// frame this endpoint sends, before faults apply; nil removes it. f runs on
// the sender's goroutine.
func (e *Endpoint) SetTap(f func(frame []byte)) {
	if f == nil {
		e.tap.Store(nil)
		return
	}
	e.tap.Store(&f)
}

func (e *Endpoint) send(frame []byte) {
	if tap := e.tap.Load(); tap != nil {
		(*tap)(frame)
	}
	peer := e.peer
	if peer == nil {
		return
	}
	f := e.fault
	f.mu.Lock()
	drop := f.f.Drop > 0 && f.rnd.Float64() < f.f.Drop
	corrupt := f.f.Corrupt > 0 && f.rnd.Float64() < f.f.Corrupt
	dup := f.f.Duplicate > 0 && f.rnd.Float64() < f.f.Duplicate
	reorder := f.f.Reorder > 0 && f.rnd.Float64() < f.f.Reorder
	flip := 0
	if corrupt && len(frame) > 0 {
		flip = f.rnd.IntN(len(frame) * 8)
	}
	f.mu.Unlock()
	if drop {
		e.FaultDrops.Add(1)
		return
	}
	w := peer.in[rxQueue(frame, len(peer.in))]
	w.mu.Lock()
	defer w.mu.Unlock()
	if reorder && !w.holdOK {
		// Hold this frame back; it goes out after the next one.
		w.holdOK = true
		w.held = w.held[:copy(w.held[:cap(w.held)], frame)]
		return
	}
	copies := 1
	if dup {
		copies = 2
	}
	for c := 0; c < copies; c++ {
		if !e.enqueue(w, frame, flip, corrupt) {
			return
		}
	}
	if w.holdOK {
		w.holdOK = false
		e.enqueue(w, w.held, 0, false)
	}
	if fn := w.notify.Load(); fn != nil {
		(*fn)()
	}
}

// SetRxNotify implements link.RxNotifier: wake runs whenever a frame is put
// on the wire for queue q.
func (e *Endpoint) SetRxNotify(q int, wake func()) bool {
	if q >= 0 && q < len(e.in) {
		e.in[q].notify.Store(&wake)
		return true
	}
	return false
}

func (e *Endpoint) enqueue(w *wireQueue, frame []byte, flip int, corrupt bool) bool {
	if w.n == len(w.slots) {
		e.WireDrops.Add(1)
		return false
	}
	i := (w.head + w.n) % len(w.slots)
	w.lens[i] = copy(w.slots[i], frame)
	if corrupt && w.lens[i] > 0 {
		w.slots[i][flip/8] ^= 1 << (flip % 8)
	}
	w.n++
	return true
}

// rxQueue picks the receive queue for a frame: a hash of the IPv4 source
// and destination when it carries IPv4, else queue 0.
func rxQueue(frame []byte, queues int) int {
	if queues == 1 || len(frame) < 34 || frame[12] != 0x08 || frame[13] != 0x00 {
		return 0
	}
	h := uint32(2166136261)
	for _, b := range frame[26:34] {
		h = (h ^ uint32(b)) * 16777619
	}
	return int(h % uint32(queues))
}
