package models

import (
	"path/filepath"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/verinic/verinic/ixgbe/ixgbesim"
)

// Faults on the wire (drop, duplicate, reorder) do not break the ring
// protocol: the trace validates at ring level and the rings are FIFO. The
// wire is a lossy FIFO under drops, and not a FIFO at all under
// duplication or reordering, which porcupine reports.
func TestWireFaults(t *testing.T) {
	cases := []struct {
		name     string
		faults   ixgbesim.Faults
		wireFIFO bool
	}{
		{"drop", ixgbesim.Faults{Seed: 1, Drop: 0.05}, true},
		{"duplicate", ixgbesim.Faults{Seed: 2, Duplicate: 0.05}, false},
		{"reorder", ixgbesim.Faults{Seed: 3, Reorder: 0.05}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := c.faults
			r := newRig(t, rigOpts{mode: ixgbesim.Stepped, faults: &f})
			frames := 3000
			if raceEnabled {
				frames = 1000
			}
			r.run(t, frames, 32)
			st := r.cable.Stats()
			t.Logf("sent %d, received %d; cable %+v", r.sent, r.recv, st)
			path, h, evs := saveTrace(t, r, "wire fault "+c.name)
			rep, err := ValidateRings(h, evs)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Violation != nil {
				t.Fatalf("ring-level validation failed under a wire fault:\n%v", rep.Violation)
			}
			opt := FIFOOptions{VisualizeDir: filepath.Dir(path)}
			ring, err := CheckRingFIFO(evs, opt)
			if err != nil {
				t.Fatal(err)
			}
			if ring.Result != porcupine.Ok {
				t.Fatalf("ring FIFO: %v in %s", ring.Result, ring.Failed)
			}
			wire, err := CheckWireFIFO(evs, opt)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("wire FIFO: %v %s %s", wire.Result, wire.Failed, wire.FailedWhere)
			if got := wire.Result == porcupine.Ok; got != c.wireFIFO {
				t.Fatalf("wire FIFO linearizable = %v, want %v", got, c.wireFIFO)
			}
			if !c.wireFIFO && wire.HTML == "" {
				t.Fatal("no visualization written for the failure")
			}
		})
	}
}
