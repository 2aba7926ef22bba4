//go:build ixgbebugs

package models

import (
	"testing"

	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/trace"
)

// The driver writes TDT before it fills the descriptors: the device's view
// at the doorbell fails HandedOverOnlyPosted. It still does when the
// driver's own events are put in the order of a correct driver (what a
// trace that records intentions would show): then the ring protocol holds
// and only device truth sees the bug.
func TestDeviceTruthCatchesTailBeforeDescriptor(t *testing.T) {
	r := newRig(t, rigOpts{mode: ixgbesim.Stepped, bugsA: ixgbe.BugTailBeforeDescriptor})
	r.run(t, 300, 16)
	_, h, evs := saveTrace(t, r, "bug tail before descriptor")
	rep, err := ValidateRings(h, evs)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Truth.OK() || rep.Truth.Failures[0].Check != CheckHandedOverOnlyPosted {
		t.Fatalf("device truth accepted the bug: %+v", rep.Truth)
	}
	t.Logf("recorded as it happened: %d failures, first %v", rep.Truth.FailCount, rep.Truth.Failures[0])

	laundered := launderTails(evs)
	rep, err = ValidateRings(h, laundered)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Violation != nil {
		t.Fatalf("the laundered trace should satisfy the ring protocol: %v", rep.Violation)
	}
	if rep.Truth.OK() || rep.Truth.Failures[0].Check != CheckHandedOverOnlyPosted {
		t.Fatalf("device truth accepted the laundered trace: %+v", rep.Truth)
	}
	t.Logf("laundered: ring protocol holds, device truth: %v", rep.Truth.Failures[0])
}

// launderTails moves each driver tail event that precedes the driver's
// posts of that ring to after them, as a driver that records its intended
// order, not the order of its stores, would.
func launderTails(evs []trace.Event) []trace.Event {
	out := make([]trace.Event, 0, len(evs))
	var held *trace.Event
	flush := func() {
		if held != nil {
			out = append(out, *held)
			held = nil
		}
	}
	for i := range evs {
		e := evs[i]
		switch {
		case e.Kind == trace.DrvTail && e.Dir == trace.TX:
			flush()
			held = &evs[i]
		case held != nil && e.Kind == trace.DrvPost && e.Dir == trace.TX && e.Dev == held.Dev:
			out = append(out, e)
		case held != nil && (e.Kind == trace.DevTailWrite || e.Kind == trace.DevDescAtTail || e.Kind == trace.DevViolation):
			out = append(out, e) // the device's view stays where it happened
		default:
			flush()
			out = append(out, e)
		}
	}
	flush()
	return out
}
