package ixgbesim

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/regs"
	"github.com/verinic/verinic/trace"
)

// tracedNIC is soloNIC with a trace recorder (and a schedule).
func tracedNIC(t *testing.T, name string) (*NIC, *tDriver, *trace.Recorder) {
	t.Helper()
	rec := trace.NewRecorder(1 << 16)
	n, err := New(Config{Name: name, Mode: Stepped, Policy: dma.NoHugepages, Trace: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	n.Attach(newCapture())
	d := initDriver(t, n, 1)
	d.waitLink()
	return n, d, rec
}

// eventsOf returns the events of the given kinds after position from.
func eventsOf(evs []trace.Event, from int, kinds ...trace.Kind) []trace.Event {
	var out []trace.Event
	for _, e := range evs[from:] {
		for _, k := range kinds {
			if e.Kind == k {
				out = append(out, e)
			}
		}
	}
	return out
}

// The doorbell records the tail write and the descriptors it hands over,
// as they are in memory, before any engine runs; the write-back records
// each store, in order.
func TestTraceDeviceTruthTX(t *testing.T) {
	n, d, rec := tracedNIC(t, "truthtx")
	tq := &d.tx[0]
	from := len(rec.Events())
	for i := 0; i < 2; i++ {
		copy(tq.buf(i), testFrame(n.MAC(), n.MAC(), 64, uint32(i)))
		txDesc(tq, i, tq.bufIOVA(i), 64, regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS|regs.TXD_DCMD_IFCS)
	}
	d.wr(regs.TDT(0), 2)
	evs := rec.Events()[from:]
	if len(evs) != 3 || evs[0].Kind != trace.DevTailWrite || evs[0].Index != 2 || evs[0].Dir != trace.TX {
		t.Fatalf("doorbell events %v", evs)
	}
	for i, e := range evs[1:] {
		desc := tq.desc(i)
		if e.Kind != trace.DevDescAtTail || e.Index != uint32(i) || e.Buf != binary.LittleEndian.Uint64(desc[0:]) || e.Aux != binary.LittleEndian.Uint64(desc[8:]) {
			t.Errorf("descriptor %d at the doorbell: %+v", i, e)
		}
	}
	from = len(rec.Events())
	n.Drain(0)
	st := eventsOf(rec.Events(), from, trace.DevStore)
	if len(st) != 2 {
		t.Fatalf("stores %v, want one DD store per descriptor", st)
	}
	for i, e := range st {
		if e.Index != uint32(i) || e.Aux != 3 || e.Len&regs.TXD_STAT_DD == 0 || e.Len != atomicLoad32(tq.desc(i)[12:]) {
			t.Errorf("store %d: %+v (memory %#x)", i, e, atomicLoad32(tq.desc(i)[12:]))
		}
	}
}

func TestTraceDeviceTruthRX(t *testing.T) {
	n, d, rec := tracedNIC(t, "truthrx")
	rq := &d.rx[0]
	from := len(rec.Events())
	n.Receive(withFCS(testFrame(n.MAC(), n.MAC(), 100, 7)))
	n.Drain(0)
	st := eventsOf(rec.Events(), from, trace.DevStore)
	var dwords []uint64
	for _, e := range st {
		if e.Index != 0 || e.Len != atomicLoad32(rq.desc(0)[4*e.Aux:]) {
			t.Errorf("store %+v does not match memory", e)
		}
		dwords = append(dwords, e.Aux)
	}
	if want := []uint64{0, 1, 3, 2}; len(dwords) != 4 || dwords[0] != want[0] || dwords[2] != want[2] || dwords[3] != want[3] {
		t.Fatalf("store order %v, want %v (status last)", dwords, want)
	}
	if l := st[2].Len & 0xFFFF; l != 100 {
		t.Errorf("stored length %d, want 100 (FCS stripped)", l)
	}
	// The driver recycles descriptor 0 and moves RDT from 63 to 0: one
	// descriptor (63) handed over, as the driver left it in memory.
	d.recv(0)
	at := eventsOf(rec.Events(), from, trace.DevTailWrite, trace.DevDescAtTail)
	if len(at) != 2 || at[0].Index != 0 || at[1].Index != 63 || at[1].Buf != rq.bufIOVA(63) || at[1].Aux != 0 {
		t.Fatalf("doorbell %v", at)
	}
}

// Ownership violations and IOMMU faults are dev_violation events with the
// descriptor, the buffer, the rule code and a detail naming the rule.
func TestTraceDeviceViolations(t *testing.T) {
	n, d, rec := tracedNIC(t, "truthv")
	tq := &d.tx[0]
	txDesc(tq, 0, tq.bufIOVA(0), 64, regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS|regs.TXD_DCMD_IFCS)
	txDesc(tq, 1, tq.bufIOVA(0), 64, regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS|regs.TXD_DCMD_IFCS)
	txDesc(tq, 2, 0xdead0000, 64, regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS|regs.TXD_DCMD_IFCS)
	d.wr(regs.TDT(0), 3)
	n.Drain(0)
	v := eventsOf(rec.Events(), 0, trace.DevViolation)
	if len(v) != 2 {
		t.Fatalf("violations %v", v)
	}
	if v[0].Index != 1 || v[0].Buf != tq.bufIOVA(0) || ViolationKind(v[0].Aux) != DoublePost || !strings.HasPrefix(v[0].Data, "double-post: ") {
		t.Errorf("double post: %+v", v[0])
	}
	if v[1].Index != 2 || v[1].Buf != 0xdead0000 || ViolationKind(v[1].Aux) != IOMMUFault || !strings.HasPrefix(v[1].Data, "iommu-fault: ") {
		t.Errorf("IOMMU fault: %+v", v[1])
	}
	if s := n.Violations()[0].String(); !strings.Contains(s, "descriptor 1") || !strings.Contains(s, "buffer 0x") {
		t.Errorf("violation report %q names no descriptor and buffer", s)
	}
}
