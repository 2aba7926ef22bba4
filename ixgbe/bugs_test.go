//go:build ixgbebugs

package ixgbe

import (
	"testing"

	"github.com/verinic/verinic/trace"
)

// TestInjectedBugsAreCaught runs one traffic scenario against stepped
// simulators with each bug of bugs.go injected and checks that the
// simulator's ownership checker or the driver invariants catch it, while
// the same scenario without bugs passes.
func TestInjectedBugsAreCaught(t *testing.T) {
	if err := runBugScenario(t, 0); err != nil {
		t.Fatalf("scenario fails without bugs: %v", err)
	}
	for _, c := range []struct {
		name string
		bugs Bug
	}{
		{"ReclaimWithoutDD", BugReclaimWithoutDD},
		{"TailBeforeDescriptor", BugTailBeforeDescriptor},
		{"DoublePost", BugDoublePost},
		{"WrapOffByOne", BugWrapOffByOne},
		{"RefillOwnedSlot", BugRefillOwnedSlot},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := runBugScenario(t, c.bugs)
			if err == nil {
				t.Fatalf("%s went unnoticed", c.name)
			}
			t.Logf("caught: %v", err)
		})
	}
}

// TestTraceOrderCatchesBugs: checkTraceOrder (TestTraceOrderingSim)
// rejects the traces of bugs that break the ordering.
func TestTraceOrderCatchesBugs(t *testing.T) {
	rec := trace.NewRecorder(1 << 20)
	for _, b := range []Bug{BugTailBeforeDescriptor, BugRefillOwnedSlot} {
		rec.Reset()
		runScenario(t, b, rec)
		if err := checkTraceOrder(rec.Events(), rapidRing); err == nil {
			t.Fatalf("trace check accepted bug %#x", b)
		} else {
			t.Logf("bug %#x: %v", b, err)
		}
	}
}

// Without the tag the switches do nothing (bugs_off.go); with it, WithBugs
// sets them.
func TestWithBugs(t *testing.T) {
	if c := WithBugs(Config{}, BugDoublePost); c.bugs&BugDoublePost == 0 || c.bugs&BugWrapOffByOne != 0 {
		t.Fatalf("WithBugs(DoublePost): bugs %#x", c.bugs)
	}
}
