package ixgbesim

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/regs"
	"github.com/verinic/verinic/trace"
)

func TestParseSchedule(t *testing.T) {
	for _, c := range []struct {
		in   string
		seed uint64
		want Schedule
	}{
		{"", 5, Schedule{}},
		{"default", 5, Schedule{}},
		{"doorbell", 0, Schedule{FetchAtDoorbell: true}},
		{"status-first,split", 0, Schedule{StatusFirst: true, Split: true}},
		{"length-first, split", 0, Schedule{Split: true}},
		{"random", 7, Schedule{Seed: 7}},
		{"random,doorbell", 0, Schedule{Seed: 1, FetchAtDoorbell: true}},
	} {
		got, err := ParseSchedule(c.in, c.seed)
		if err != nil || got != c.want {
			t.Errorf("ParseSchedule(%q, %d) = %+v, %v; want %+v", c.in, c.seed, got, err, c.want)
		}
		if back, err := ParseSchedule(strings.Split(got.String(), "(")[0], got.Seed); err != nil || back != got {
			t.Errorf("%+v: String %q reads back as %+v, %v", got, got.String(), back, err)
		}
	}
	for _, bad := range []string{"fast", "status-first,length-first", "doorbell;split"} {
		if _, err := ParseSchedule(bad, 1); err == nil || !strings.Contains(err.Error(), "schedule") {
			t.Errorf("ParseSchedule(%q): %v", bad, err)
		}
	}
}

func scheduledNIC(t *testing.T, name string, s Schedule) (*NIC, *tDriver, *trace.Recorder) {
	t.Helper()
	rec := trace.NewRecorder(1 << 16)
	n, err := New(Config{Name: name, Mode: Stepped, Policy: dma.NoHugepages, Trace: rec, Schedule: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	n.Attach(newCapture())
	d := initDriver(t, n, 1)
	d.waitLink()
	return n, d, rec
}

// Status first, split, stepped: after one step the descriptor has DD and
// no length (what the post left there); the next step stores the length.
// A driver that reads the length on DD alone (the test harness's) gets a
// frame of 0 bytes.
func TestScheduleStatusFirstSplit(t *testing.T) {
	n, d, rec := scheduledNIC(t, "sfs", Schedule{StatusFirst: true, Split: true})
	rq := &d.rx[0]
	n.Receive(withFCS(testFrame(n.MAC(), n.MAC(), 100, 1)))
	if !n.StepRx(0) {
		t.Fatal("no RX step")
	}
	desc := rq.desc(0)
	if st := atomicLoad32(desc[regs.RXD_WB_STATUS_ERROR:]); st&regs.RXD_STAT_DD == 0 {
		t.Fatalf("status %#x: no DD after the first step", st)
	}
	if l := atomicLoad32(desc[regs.RXD_WB_LENGTH:]); l != 0 {
		t.Fatalf("length word %#x stored in the same step as the status", l)
	}
	if got := d.recv(0); len(got) != 1 || len(got[0]) != 0 {
		t.Fatalf("the naive driver got %d frames (want one of 0 bytes)", len(got))
	}
	// The harness driver reposted descriptor 0 on DD; the held-back store
	// is a step of its own and lands in the reposted descriptor (the
	// naive driver's frame is lost: what the correct driver avoids by
	// waiting for a length).
	if !n.StepRx(0) {
		t.Fatal("the held-back store was not a step of its own")
	}
	if l := atomicLoad32(desc[regs.RXD_WB_LENGTH:]); l != 100 {
		t.Fatalf("length word %#x after the second step, want 100", l)
	}
	var order []uint64
	for _, e := range rec.Events() {
		if e.Kind == trace.DevStore {
			order = append(order, e.Aux)
		}
	}
	if len(order) != 4 || order[2] != 2 || order[3] != 3 {
		t.Fatalf("store order %v, want dwords 0 1 2 3 (status before length)", order)
	}
}

// Fetch at the doorbell: the device processes what the descriptor held
// when the tail moved, even if the driver rewrites it afterwards (and the
// ownership checker reports the rewrite).
func TestScheduleFetchAtDoorbell(t *testing.T) {
	n, d, _ := scheduledNIC(t, "fad", Schedule{FetchAtDoorbell: true})
	tq := &d.tx[0]
	w := newCapture()
	n.Attach(w)
	d.waitLink()
	f1 := testFrame(n.MAC(), n.MAC(), 64, 1)
	f2 := testFrame(n.MAC(), n.MAC(), 64, 2)
	copy(tq.buf(0), f1)
	copy(tq.buf(1), f2)
	txDesc(tq, 0, tq.bufIOVA(0), 64, regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS|regs.TXD_DCMD_IFCS)
	d.wr(regs.TDT(0), 1)
	// Too late: the device has its copy.
	binary.LittleEndian.PutUint64(tq.desc(0)[0:], tq.bufIOVA(1))
	n.Drain(0)
	if len(w.frames) != 1 || binary.BigEndian.Uint32(w.frames[0][14:]) != 1 {
		t.Fatalf("sent %d frames; want frame 1 as it was at the doorbell", len(w.frames))
	}
	if v := n.Violations(); len(v) != 1 || v[0].Kind != RewroteOwned {
		t.Fatalf("violations %v", v)
	}
}

// A seed makes the engine's choices vary but repeat: the same seed gives
// the same trace of device stores.
func TestScheduleSeedRepeats(t *testing.T) {
	run := func(seed uint64) []uint64 {
		n, d, rec := scheduledNIC(t, "seed", Schedule{Seed: seed})
		var out []uint64
		for i := 0; i < 40; i++ {
			n.Receive(withFCS(testFrame(n.MAC(), n.MAC(), 80, uint32(i))))
			for n.StepRx(0) {
			}
			d.recv(0)
		}
		for _, e := range rec.Events() {
			if e.Kind == trace.DevStore || e.Kind == trace.DevViolation {
				out = append(out, uint64(e.Kind)<<32|e.Aux)
			}
		}
		return out
	}
	a, b, c := run(3), run(3), run(4)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("seed 3 gave %d and %d stores", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 3 differs at store %d", i)
		}
	}
	same := len(a) == len(c)
	for i := 0; same && i < len(a); i++ {
		same = a[i] == c[i]
	}
	if same {
		t.Fatal("seeds 3 and 4 chose the same store orders for 40 frames")
	}
}
