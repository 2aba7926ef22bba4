package ixgbe

import (
	"flag"
	"fmt"
	"strconv"
	"testing"

	"pgregory.net/rapid"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/internal/simpair"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/trace"
)

// bufKey names one packet buffer.
type bufKey struct {
	pool  *dma.Mempool
	index uint32
}

// ownership collects who holds each buffer: the application, an RX ring
// slot, or a TX ring slot in flight. It fails on a buffer held twice.
type ownership struct {
	owner map[bufKey]string
	err   error
}

func (o *ownership) add(k bufKey, who string) {
	if prev, ok := o.owner[k]; ok && o.err == nil {
		o.err = fmt.Errorf("buffer %d of pool %s owned twice: by %s and by %s", k.index, k.pool.Name(), prev, who)
	}
	o.owner[k] = who
}

// collectRings adds every buffer n's rings hold.
func (o *ownership) collectRings(n *NIC) {
	for qi, q := range n.port.Rx {
		for i := uint32(0); i < q.Slots(); i++ {
			if b, ok := q.Buffer(i); ok {
				o.add(bufKey{q.Pool(), b}, fmt.Sprintf("%s RX ring %d slot %d", n.name, qi, i))
			}
		}
	}
	for qi, q := range n.port.Tx {
		for i := q.Clean(); i != q.Next(); i = q.Step(i) {
			sp, si := q.Slot(i)
			o.add(bufKey{sp, si}, fmt.Sprintf("%s TX ring %d slot %d", n.name, qi, i))
		}
	}
}

// checkRingIndices checks every ring index of n is in range.
func checkRingIndices(n *NIC) error {
	for qi, q := range n.port.Rx {
		if q.Next() >= q.Size() {
			return fmt.Errorf("%s RX queue %d: next index %d out of a ring of %d", n.name, qi, q.Next(), q.Size())
		}
	}
	for qi, q := range n.port.Tx {
		if q.Next() >= q.Size() || q.Clean() >= q.Size() {
			return fmt.Errorf("%s TX queue %d: next %d, clean %d out of a ring of %d", n.name, qi, q.Next(), q.Clean(), q.Size())
		}
	}
	return nil
}

// rapidPair is the state of one rapid run: two stepped simulated NICs back
// to back, each under the driver, and the packets the application holds.
type rapidPair struct {
	pair   *simpair.Pair
	sims   [2]*ixgbesim.NIC
	nics   [2]*NIC
	app    *dma.Mempool
	held   []dma.Packet
	pools  []*dma.Mempool
	closed bool
}

const (
	rapidQueues = 2
	rapidRing   = 64
	rapidPool   = 96
)

func newRapidPair(bugs ringBugs, rec *trace.Recorder) (*rapidPair, error) {
	pair, err := simpair.New(simpair.Config{Mode: ixgbesim.Stepped, Names: [2]string{"rsim0", "rsim1"}, Policy: dma.NoHugepages, Trace: rec})
	if err != nil {
		return nil, err
	}
	p := &rapidPair{pair: pair, sims: [2]*ixgbesim.NIC{pair.A, pair.B}}
	for i, s := range p.sims {
		n, err := New(s, Config{
			RxQueues: rapidQueues, TxQueues: rapidQueues, RxRingSize: rapidRing, TxRingSize: rapidRing,
			Mempool: dma.MempoolConfig{Buffers: rapidPool}, Clock: s.Clock(), DevID: uint16(i), Trace: rec,
			Promiscuous: true, bugs: bugs,
		})
		if err != nil {
			p.close()
			return nil, err
		}
		p.nics[i] = n
		for q := 0; q < rapidQueues; q++ {
			p.pools = append(p.pools, n.RxPool(q))
		}
	}
	app, err := dma.NewMempool(p.nics[0].Allocator(), dma.MempoolConfig{Name: "app", Buffers: 64})
	if err != nil {
		p.close()
		return nil, err
	}
	p.app = app
	p.pools = append(p.pools, app)
	return p, nil
}

func (p *rapidPair) close() {
	if p.closed {
		return
	}
	p.closed = true
	for _, pk := range p.held {
		pk.Free()
	}
	p.held = nil
	for _, n := range p.nics {
		if n != nil {
			n.Stop()
		}
	}
	if p.app != nil {
		p.app.Release()
	}
	for _, n := range p.nics {
		if n != nil {
			n.Close()
		}
	}
	p.pair.Close()
}

// check is the invariant checked after every step.
func (p *rapidPair) check() error {
	o := ownership{owner: map[bufKey]string{}}
	for i, pk := range p.held {
		o.add(bufKey{pk.Pool, pk.Index}, fmt.Sprintf("application (held %d)", i))
	}
	for _, n := range p.nics {
		if err := checkRingIndices(n); err != nil {
			return err
		}
		o.collectRings(n)
	}
	if o.err != nil {
		return o.err
	}
	// Pool accounting: exactly the buffers someone holds are out.
	for _, pool := range p.pools {
		out := 0
		for k := range o.owner {
			if k.pool == pool {
				out++
				if !pool.Owned(k.index) {
					return fmt.Errorf("buffer %d of pool %s is held but free in its pool", k.index, pool.Name())
				}
			}
		}
		if pool.InUse() != out {
			return fmt.Errorf("pool %s: %d buffers out, %d accounted for (leak or phantom)", pool.Name(), pool.InUse(), out)
		}
	}
	return p.pair.Check()
}

// actions returns the rapid state-machine actions over p.
func (p *rapidPair) actions(t *rapid.T) map[string]func(*rapid.T) {
	pick := func(t *rapid.T) (int, int) {
		return rapid.IntRange(0, 1).Draw(t, "nic"), rapid.IntRange(0, rapidQueues-1).Draw(t, "queue")
	}
	return map[string]func(*rapid.T){
		"RxBatch": func(t *rapid.T) {
			nic, q := pick(t)
			buf := make([]dma.Packet, rapid.IntRange(0, 80).Draw(t, "batch"))
			k, err := p.nics[nic].RxBatch(q, buf)
			if err != nil {
				t.Fatal(err)
			}
			for _, pk := range buf[:k] {
				if pk.Len == 0 || int(pk.Len) > pk.Pool.BufSize() {
					t.Fatalf("received packet of %d bytes", pk.Len)
				}
			}
			p.held = append(p.held, buf[:k]...)
		},
		"TxBatch": func(t *rapid.T) {
			nic, q := pick(t)
			if len(p.held) == 0 {
				p.nics[nic].TxBatch(q, nil)
				return
			}
			// Send a random window of the held packets.
			from := rapid.IntRange(0, len(p.held)-1).Draw(t, "from")
			to := rapid.IntRange(from, len(p.held)).Draw(t, "to")
			batch := append([]dma.Packet(nil), p.held[from:to]...)
			k, err := p.nics[nic].TxBatch(q, batch)
			if err != nil {
				t.Fatal(err)
			}
			p.held = append(p.held[:from], p.held[from+k:]...)
		},
		"Alloc": func(t *rapid.T) {
			to := rapid.IntRange(0, 1).Draw(t, "to")
			for n := rapid.IntRange(1, 40).Draw(t, "count"); n > 0; n-- {
				pk, err := p.app.Alloc()
				if err != nil {
					return
				}
				pk.Len = uint16(rapid.IntRange(60, 300).Draw(t, "len"))
				d := pk.Data()
				copy(d[0:6], p.nics[to].MAC())
				copy(d[6:12], p.nics[1-to].MAC())
				d[12], d[13] = 0x88, 0xB5 // local experimental ethertype
				p.held = append(p.held, pk)
			}
		},
		"Free": func(t *rapid.T) {
			if len(p.held) == 0 {
				return
			}
			i := rapid.IntRange(0, len(p.held)-1).Draw(t, "i")
			if err := p.held[i].Free(); err != nil {
				t.Fatal(err)
			}
			p.held = append(p.held[:i], p.held[i+1:]...)
		},
		"StepTx": func(t *rapid.T) {
			nic, q := pick(t)
			for n := rapid.IntRange(1, 40).Draw(t, "steps"); n > 0 && p.sims[nic].StepTx(q); n-- {
			}
		},
		"StepRx": func(t *rapid.T) {
			nic, q := pick(t)
			for n := rapid.IntRange(1, 40).Draw(t, "steps"); n > 0 && p.sims[nic].StepRx(q); n-- {
			}
		},
		"Step": func(t *rapid.T) {
			nic := rapid.IntRange(0, 1).Draw(t, "nic")
			p.sims[nic].Drain(rapid.IntRange(1, 200).Draw(t, "steps"))
		},
		"": func(t *rapid.T) {
			if err := p.check(); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// TestRapidDriverAgainstSteppedSim drives the real driver code and two
// stepped simulated NICs through random interleavings of RxBatch, TxBatch,
// application allocations and frees, and device steps. After every step:
// every ring index is in range; no buffer is owned twice (application, RX
// ring slot, TX ring slot); every pool's in-use count equals exactly the
// buffers someone holds; the simulator saw no ownership violation and the
// IOMMU no fault.
func TestRapidDriverAgainstSteppedSim(t *testing.T) {
	fewerChecksUnderRace(t, 25)
	rapid.Check(t, func(t *rapid.T) {
		p, err := newRapidPair(0, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer p.close()
		for _, n := range p.nics {
			if _, err := n.WaitForLink(1e9); err != nil {
				t.Fatal(err)
			}
		}
		t.Repeat(p.actions(t))
		// Wind down: drain the devices, reclaim, stop; then every pool is full.
		for _, pk := range p.held {
			pk.Free()
		}
		p.held = nil
		for round := 0; round < 4; round++ {
			for i := range p.sims {
				p.sims[i].Drain(0)
				for q := 0; q < rapidQueues; q++ {
					p.nics[i].TxBatch(q, nil)
				}
			}
		}
		for _, n := range p.nics {
			if err := n.Stop(); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.check(); err != nil {
			t.Fatal(err)
		}
		for _, pool := range p.pools {
			if pool.InUse() != 0 {
				t.Fatalf("pool %s: %d buffers out after stop", pool.Name(), pool.InUse())
			}
		}
	})
}

// runBugScenario sends frames from NIC 0 to NIC 1 of a stepped pair with
// bugs injected, varying the interleaving of TxBatch calls, device steps and
// RxBatch calls, and returns the first invariant failure, simulator
// violation or IOMMU fault.
func runBugScenario(t *testing.T, bugs ringBugs) error {
	return runScenario(t, bugs, nil)
}

func runScenario(t *testing.T, bugs ringBugs, rec *trace.Recorder) error {
	p, err := newRapidPair(bugs, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	for _, n := range p.nics {
		if _, err := n.WaitForLink(1e9); err != nil {
			return err
		}
	}
	a, b := p.nics[0], p.nics[1]
	batch := make([]dma.Packet, 32)
	rx := make([]dma.Packet, 64)
	for iter := 0; iter < 60; iter++ {
		// 1 to 3 TxBatch calls between device steps.
		for call := 0; call <= iter%3; call++ {
			n := p.app.AllocBatch(batch)
			for i := range batch[:n] {
				batch[i].Len = 60 + uint16(iter*7+i)%200
				d := batch[i].Data()
				copy(d[0:6], b.MAC())
				copy(d[6:12], a.MAC())
				d[12], d[13] = 0x88, 0xB5
			}
			k, err := a.TxBatch(0, batch[:n])
			if err != nil {
				return fmt.Errorf("TxBatch: %w", err)
			}
			p.app.FreeBatch(batch[k:n])
			if err := p.check(); err != nil {
				return err
			}
		}
		p.sims[0].Drain(10 + iter%50)
		p.sims[1].Drain(0)
		for q := 0; q < rapidQueues; q++ {
			for {
				k, err := b.RxBatch(q, rx[:1+iter%40])
				if err != nil {
					return fmt.Errorf("RxBatch: %w", err)
				}
				if k == 0 {
					break
				}
				for _, pk := range rx[:k] {
					if err := pk.Free(); err != nil {
						return fmt.Errorf("free received buffer: %w", err)
					}
				}
				p.sims[1].Drain(0)
			}
		}
		if err := p.check(); err != nil {
			return err
		}
	}
	sa, sb := a.Stats(), b.Stats()
	t.Logf("A sent %d, B received %d, B dropped %d/%d", sa.TxPackets, sb.RxPackets, sb.RxDropped, sb.RxMissed)
	return nil
}

// fewerChecksUnderRace lowers rapid's number of checks to checks when the
// race detector (which slows these tests about tenfold) is on, unless
// -rapid.checks was given, so that the package stays within its time
// budget; the full count runs without -race.
func fewerChecksUnderRace(t *testing.T, checks int) {
	if !raceEnabled {
		return
	}
	f := flag.Lookup("rapid.checks")
	if f == nil || f.Value.String() != f.DefValue {
		return
	}
	old := f.Value.String()
	f.Value.Set(strconv.Itoa(checks))
	t.Cleanup(func() { f.Value.Set(old) })
}
