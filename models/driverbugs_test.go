//go:build ixgbebugs

package models

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/trace"
)

// Each deliberate driver bug of ixgbe/bugs.go, recorded from the real
// driver against the stepped simulator, is rejected by trace validation;
// and, where the bug shows at the FIFO level, by porcupine.
func TestDriverBugsRejected(t *testing.T) {
	cases := []struct {
		name   string
		eager  bool      // A's device reacts to a tail write at once
		bugsA  ixgbe.Bug // sender: TX bugs
		bugsB  ixgbe.Bug // receiver: RX bugs
		reason string    // part of the validation failure
		// which porcupine check must fail ("" when the bug cannot show at
		// the FIFO level in this run; see the report below)
		fifo string
		// drive: how the traffic is scheduled to expose the bug
		drive func(t *testing.T, r *rig)
	}{
		{
			name: "reclaim without DD", bugsA: ixgbe.BugReclaimWithoutDD,
			reason: "no DD", fifo: "wire",
			// The device does not move between three calls: the second
			// call's cleaning frees the first batch's buffers while the
			// device still owns them; the third builds new frames in them
			// (the pool is LIFO) and posts them again, so the device sends
			// the new frames twice and the old ones never.
			drive: func(t *testing.T, r *rig) {
				for i := 0; i < 10; i++ {
					r.send(t, 16, 1<<30)
					r.send(t, 1, 1<<30)
					r.send(t, 16, 1<<30)
					r.step()
					r.receive(t)
				}
			},
		},
		{
			// With a device that fetches as soon as TDT moves, it reads
			// descriptors the driver has not written yet (the ring's 0xFF
			// fill): a value never posted comes out of the ring FIFO.
			name: "tail before descriptor", bugsA: ixgbe.BugTailBeforeDescriptor, eager: true,
			reason: "WriteTail", fifo: "ring",
			drive: func(t *testing.T, r *rig) {
				for i := 0; i < 10; i++ {
					r.send(t, 16, 1<<30)
					r.step()
					r.receive(t)
				}
			},
		},
		{
			// The same bug with a device that only moves between driver
			// calls: the descriptors are all written by the time it looks,
			// so no FIFO shows the bug; only trace validation sees it.
			name: "tail before descriptor, lazy device", bugsA: ixgbe.BugTailBeforeDescriptor,
			reason: "WriteTail", fifo: "",
			drive: func(t *testing.T, r *rig) { r.run(t, 300, 16) },
		},
		{
			name: "double post", bugsA: ixgbe.BugDoublePost,
			reason: "posted twice", fifo: "wire",
			drive: func(t *testing.T, r *rig) { r.run(t, 300, 16) },
		},
		{
			name: "wrap off by one", bugsA: ixgbe.BugWrapOffByOne,
			reason: "outside the ring", fifo: "ring",
			drive: func(t *testing.T, r *rig) { r.run(t, 300, 16) },
		},
		{
			name: "refill owned slot", bugsB: ixgbe.BugRefillOwnedSlot,
			reason: "ReuseOnlyAfterDD", fifo: "ring",
			drive: func(t *testing.T, r *rig) { r.run(t, 300, 16) },
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, rigOpts{mode: ixgbesim.Stepped, bugsA: c.bugsA, bugsB: c.bugsB, eagerTx: c.eager})
			c.drive(t, r)
			path, h, evs := saveTrace(t, r, "bug "+c.name)
			rep, err := ValidateRings(h, evs)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Violation == nil {
				t.Fatalf("trace validation accepted a trace with the bug (%d ring events)", rep.Events)
			}
			if !strings.Contains(rep.Violation.Reason, c.reason) {
				t.Errorf("violation %q, want it to mention %q", rep.Violation.Reason, c.reason)
			}
			t.Logf("validation: %v", rep.Violation)
			opt := FIFOOptions{VisualizeDir: filepath.Dir(path)}
			results := map[string]*FIFOReport{}
			for name, check := range map[string]func([]trace.Event, FIFOOptions) (*FIFOReport, error){
				"ring": CheckRingFIFO, "wire": CheckWireFIFO,
			} {
				fr, err := check(evs, opt)
				if err != nil {
					t.Fatal(err)
				}
				results[name] = fr
				t.Logf("%s FIFO: %v %s %s", name, fr.Result, fr.Failed, fr.FailedWhere)
			}
			if c.fifo == "" {
				for name, fr := range results {
					if fr.Result != porcupine.Ok {
						t.Logf("note: %s FIFO saw this bug too", name)
					}
				}
			} else {
				fr := results[c.fifo]
				if fr.Result != porcupine.Illegal {
					t.Fatalf("porcupine (%s FIFO) did not see the bug: %v", c.fifo, fr.Result)
				}
				if fr.HTML == "" {
					t.Fatalf("no visualization written")
				}
			}
		})
	}
}
