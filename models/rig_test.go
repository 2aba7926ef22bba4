package models

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/internal/simpair"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/ixgbe/regs"
	"github.com/verinic/verinic/trace"
)

// rig is two simulated 82599s joined by a cable, each under the real
// driver, all recording into one trace.Recorder: A (dev 0) sends on TX
// queue 0, B (dev 1) receives on RX queue 0.
type rig struct {
	mode   ixgbesim.Mode
	sims   *simpair.Pair
	sa, sb *ixgbesim.NIC
	cable  *ixgbesim.Cable
	a, b   *ixgbe.NIC
	rec    *trace.Recorder
	pool   *dma.Mempool // A's frame pool
	ring   int

	nextTag uint64
	pending []dma.Packet // built, not yet accepted by TxBatch
	ptags   []uint64
	rx      []dma.Packet
	rxTags  []uint64
	sent    int
	recv    int
}

type rigOpts struct {
	mode       ixgbesim.Mode
	ring       int
	bugsA      driverBugs // only with -tags ixgbebugs (rigbugs_on_test.go)
	bugsB      driverBugs
	faults     *ixgbesim.Faults
	capacity   int
	untraced   bool
	poolBuffer int
	// eagerTx makes A's simulated device react to every TDT write at
	// once, fetching and sending up to the new tail before the driver's
	// next instruction (stepped mode): a device as fast as the datasheet
	// allows, which opens the window between a tail write and later
	// descriptor writes.
	eagerTx bool
	// schedule is both devices' adversarial schedule (ixgbesim.Schedule).
	schedule ixgbesim.Schedule
}

// eagerDevice is a stepped simulator that runs its TX engine to
// completion on every write to TDT(0).
type eagerDevice struct {
	*ixgbesim.NIC
}

func (d eagerDevice) Write32(reg, v uint32) {
	d.NIC.Write32(reg, v)
	if reg == regs.TDT(0) {
		for d.NIC.StepTx(0) {
		}
	}
}

const rigEtherType = 0x88B5 // IEEE 802 local experimental

func newRig(t testing.TB, o rigOpts) *rig {
	t.Helper()
	if o.ring == 0 {
		o.ring = 64
	}
	if o.capacity == 0 {
		o.capacity = 1 << 20
	}
	if o.poolBuffer == 0 {
		o.poolBuffer = 4 * o.ring
	}
	r := &rig{mode: o.mode, ring: o.ring}
	if !o.untraced {
		r.rec = trace.NewRecorder(o.capacity)
	}
	var err error
	r.sims, err = simpair.New(simpair.Config{Mode: o.mode, Policy: dma.NoHugepages, Trace: r.rec, AB: o.faults, Schedule: o.schedule})
	if err != nil {
		t.Fatal(err)
	}
	r.sa, r.sb, r.cable = r.sims.A, r.sims.B, r.sims.Cable
	cfg := func(dev uint16, bugs driverBugs, clock ixgbe.Clock) ixgbe.Config {
		c := ixgbe.Config{RxRingSize: o.ring, TxRingSize: o.ring, Trace: r.rec, DevID: dev, LinkTimeout: -1,
			Promiscuous: true}
		if clock != nil {
			c.Clock = clock
		}
		return withDriverBugs(c, bugs)
	}
	var ca, cb ixgbe.Clock
	if o.mode == ixgbesim.Stepped {
		ca, cb = r.sa.Clock(), r.sb.Clock()
	}
	var devA ixgbe.Device = r.sa
	if o.eagerTx {
		devA = eagerDevice{r.sa}
	}
	if r.a, err = ixgbe.New(devA, cfg(0, o.bugsA, ca)); err != nil {
		t.Fatal(err)
	}
	if r.b, err = ixgbe.New(r.sb, cfg(1, o.bugsB, cb)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*ixgbe.NIC{r.a, r.b} {
		if st, err := n.WaitForLink(5 * time.Second); err != nil || !st.Up {
			t.Fatalf("%s: link %v: %v", n.Name(), st, err)
		}
	}
	r.pool, err = dma.NewMempool(r.a.Allocator(), dma.MempoolConfig{Name: "rig-tx", Buffers: o.poolBuffer})
	if err != nil {
		t.Fatal(err)
	}
	r.rx = make([]dma.Packet, 64)
	r.rxTags = make([]uint64, 64)
	t.Cleanup(r.close)
	return r
}

func (r *rig) close() {
	r.sa.Stop()
	r.sb.Stop()
	r.a.Stop()
	r.b.Stop()
	r.a.Close()
	r.b.Close()
	r.sims.Close()
}

// header describes the rig's rings for the trace file.
func (r *rig) header(note string) trace.Header {
	qs := []trace.QueueInfo{{Dir: "rx", Queue: 0, Ring: uint32(r.ring)}, {Dir: "tx", Queue: 0, Ring: uint32(r.ring)}}
	pools := append(append(r.a.TracePools(), r.b.TracePools()...), ixgbe.TracePool(0, r.pool))
	return trace.Header{Devices: []trace.DeviceInfo{{Dev: 0, Name: "simA", Queues: qs}, {Dev: 1, Name: "simB", Queues: qs}}, Pools: pools, Note: note}
}

// events stops the engines and returns a copy of the trace.
func (r *rig) events() []trace.Event {
	r.sa.Stop()
	r.sb.Stop()
	if r.rec == nil {
		return nil
	}
	return append([]trace.Event(nil), r.rec.Events()...)
}

// send builds frames up to batch and offers them (and any not yet
// accepted) to A's TxBatch, recording the call. It returns how many were
// accepted.
func (r *rig) send(t testing.TB, batch, limit int) int {
	for len(r.pending) < batch && r.sent+len(r.pending) < limit {
		p, err := r.pool.Alloc()
		if err != nil {
			break
		}
		room := p.Room()
		for i := 0; i < 6; i++ {
			room[i] = 0xFF
		}
		copy(room[6:12], r.a.MAC())
		binary.BigEndian.PutUint16(room[12:14], rigEtherType)
		binary.BigEndian.PutUint64(room[14:22], r.nextTag)
		clear(room[22:60])
		p.Len = 60
		r.pending = append(r.pending, p)
		r.ptags = append(r.ptags, r.nextTag)
		r.nextTag++
	}
	if len(r.pending) == 0 {
		return 0
	}
	r.rec.AppCall(trace.TX, 0, 0)
	n, err := r.a.TxBatch(0, r.pending)
	r.rec.AppReturn(trace.TX, 0, 0, r.ptags[:n])
	if err != nil {
		t.Fatalf("TxBatch: %v", err)
	}
	r.pending = append(r.pending[:0], r.pending[n:]...)
	r.ptags = append(r.ptags[:0], r.ptags[n:]...)
	r.sent += n
	return n
}

// receive polls B's RxBatch once, recording the call with the frames' tags.
func (r *rig) receive(t testing.TB) int {
	r.rec.AppCall(trace.RX, 1, 0)
	n, err := r.b.RxBatch(0, r.rx)
	if err != nil {
		t.Fatalf("RxBatch: %v", err)
	}
	for i := 0; i < n; i++ {
		d := r.rx[i].Data()
		if len(d) >= 22 && binary.BigEndian.Uint16(d[12:14]) == rigEtherType {
			r.rxTags[i] = binary.BigEndian.Uint64(d[14:22])
		} else {
			r.rxTags[i] = ^uint64(0)
		}
		r.rx[i].Free()
	}
	r.rec.AppReturn(trace.RX, 1, 0, r.rxTags[:n])
	r.recv += n
	return n
}

// step moves the stepped simulators until nothing moves (a no-op when
// free-running).
func (r *rig) step() {
	if r.mode != ixgbesim.Stepped {
		return
	}
	for r.sa.Drain(0)+r.sb.Drain(0) > 0 {
	}
}

// runInterleaved is run with the stepped devices moving one unit of work
// at a time and B's driver polling between units, so that it meets
// write-backs half done (under a Split schedule) and loads between the
// device's stores.
func (r *rig) runInterleaved(t testing.TB, total, batch int) {
	for i := 0; i < 100*total && r.recv < total; i++ {
		r.send(t, batch, total)
		for s := 0; s < 8; s++ {
			movedA := r.sa.Step()
			if !r.sb.Step() && !movedA {
				break
			}
			r.receive(t)
		}
		r.receive(t)
	}
	r.step()
	r.receive(t)
}

// run sends total frames in batches, receiving as it goes, until every
// frame was accepted and nothing more arrives.
func (r *rig) run(t testing.TB, total, batch int) {
	deadline := time.Now().Add(60 * time.Second)
	idle := 0
	for time.Now().Before(deadline) {
		// Free-running, keep at most a ring's worth of frames in flight:
		// B's ring then never fills, so nothing is dropped however the
		// goroutines are scheduled (stepped, the rig moves B in time).
		s := 0
		if r.mode == ixgbesim.Stepped || r.sent-r.recv+batch < r.ring {
			s = r.send(t, batch, total)
		}
		r.step()
		got := r.receive(t)
		if s == 0 && got == 0 && r.sent >= total {
			idle++
			if r.mode == ixgbesim.Stepped {
				r.sa.Clock().Advance(2 * time.Millisecond) // release held-back frames
				r.step()
				if idle > 3 {
					return
				}
			} else {
				if idle > 2000 {
					return
				}
				time.Sleep(10 * time.Microsecond)
			}
			continue
		}
		idle = 0
	}
	t.Fatalf("traffic did not finish: sent %d of %d, received %d", r.sent, total, r.recv)
}
