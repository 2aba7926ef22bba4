//go:build ixgbebugs

package models

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/trace"
)

// The driver mutation suite (tla/README.md, "Driver mutation suite"): each
// bug switch of ixgbe/bugs.go, applied to the real driver on two stepped
// simulated 82599s (A sends, B receives) under a schedule that exercises
// it, must be caught by a named check; the same schedules without a bug
// pass every check. The checks:
//
//   - "trace: NAME": ValidateRings (ring replay of tla/TxRing.tla and
//     tla/RxRing.tla, with CheckObservations): the first violation, named
//     by its action or invariant (Post, WriteTail, Reclaim, Refill,
//     ReuseOnlyAfterDD, TypeOK for an index outside the ring, ...) or by
//     its observation check (LengthAfterDD, DDBeforeUse, ...);
//   - "device truth: NAME": the device-truth checks of devtruth.go
//     (DescriptorMatchesPost, HandedOverOnlyPosted, NoDeviceViolation);
//   - "observations: NAME": CheckObservations alone (loads.go), which
//     shows what the driver-observation checks catch on their own;
//   - "simulator": the simulated devices' ownership and IOMMU checks
//     (ixgbesim Violations, IOMMU faults);
//   - "ring FIFO", "wire FIFO": porcupine (fifo.go);
//   - "TxFreeErrors": the driver's count of buffers their pool refused;
//   - "delivery": every frame sent arrived, in order (the rig's tags).
type mutation struct {
	name         string
	bugsA, bugsB ixgbe.Bug
	eager        bool
	schedule     ixgbesim.Schedule
	drive        func(t *testing.T, r *rig)
	want         string // the check that must catch it (a prefix of a verdict)
}

// A schedule with the device still between driver calls: batches of 16,
// the devices run to completion after each.
func driveSteady(t *testing.T, r *rig) { r.run(t, 300, 16) }

// A schedule where A's device does not move between several calls: the
// ring fills, cleaning finds descriptors without DD.
func driveBursty(t *testing.T, r *rig) {
	for i := 0; i < 10; i++ {
		r.send(t, 16, 1<<30)
		r.send(t, 1, 1<<30)
		r.send(t, 16, 1<<30)
		r.send(t, 16, 1<<30)
		r.send(t, 16, 1<<30)
		r.step()
		r.receive(t)
	}
	r.step()
	r.receive(t)
}

// B forwards what it receives out of its own TX queue 0 (back to A, whose
// receive ring is not polled: it fills and A drops, as a device may).
func driveForward(t *testing.T, r *rig) {
	for i := 0; i < 20; i++ {
		r.send(t, 16, 1<<30)
		r.step()
		n, err := r.b.RxBatch(0, r.rx)
		if err != nil {
			t.Fatalf("RxBatch: %v", err)
		}
		k, err := r.b.TxBatch(0, r.rx[:n])
		if err != nil {
			t.Fatalf("TxBatch: %v", err)
		}
		for _, p := range r.rx[k:n] {
			p.Free()
		}
		r.recv += n
		r.step()
	}
}

var mutations = []mutation{
	// Store order against the doorbell (the device fetches at once).
	{name: "TailBeforeDescriptor", bugsA: ixgbe.BugTailBeforeDescriptor, eager: true, drive: func(t *testing.T, r *rig) {
		for i := 0; i < 10; i++ {
			r.send(t, 16, 1<<30)
			r.step()
			r.receive(t)
		}
	}, want: "trace: WriteTail"},
	// Load order against DD.
	{name: "LenBeforeDD", bugsB: ixgbe.BugLenBeforeDD, drive: driveSteady, want: "trace: LengthAfterDD"},
	// The same under the simulator's status-first split write-back, B
	// polling between the device's steps: the loads meet half-done
	// write-backs (the driver's length-0 retry hides the stale value; the
	// order of the loads still shows).
	{name: "LenBeforeDD/status-first-split", bugsB: ixgbe.BugLenBeforeDD, schedule: ixgbesim.Schedule{StatusFirst: true, Split: true},
		drive: func(t *testing.T, r *rig) { r.runInterleaved(t, 300, 16) }, want: "trace: LengthAfterDD"},
	// Wrong address.
	{name: "RxAddrNoHeadroom", bugsB: ixgbe.BugRxAddrNoHeadroom, drive: driveSteady, want: "trace: BufferOnGrid"},
	// Wrong length.
	{name: "LenMinusFCS", bugsB: ixgbe.BugLenMinusFCS, drive: driveSteady, want: "trace: LengthHandedUp"},
	// Off-by-one cleaning.
	{name: "CleanOffByOne", bugsA: ixgbe.BugCleanOffByOne, drive: driveBursty, want: "trace: DDBeforeUse"},
	// Refill with a device-owned buffer (forwarded to TX while the RX ring
	// still holds it).
	{name: "RefillHandedUp", bugsB: ixgbe.BugRefillHandedUp, drive: driveForward, want: "trace: DeviceOwnedOnce"},
	// RX tail equal to head.
	{name: "RxTailEqualsHead", bugsB: ixgbe.BugRxTailEqualsHead, drive: driveSteady, want: "trace: WriteTail"},
	// Double free, immediate and delayed.
	{name: "DoubleFreeNow", bugsA: ixgbe.BugDoubleFreeNow, drive: driveSteady, want: "TxFreeErrors"},
	{name: "DoubleFreeLater", bugsA: ixgbe.BugDoubleFreeLater, drive: driveBursty, want: "observations: DeviceOwnedOnce"},
	// Skipped DD check: on TX cleaning, and on the ring-full path.
	{name: "ReclaimWithoutDD", bugsA: ixgbe.BugReclaimWithoutDD, drive: driveBursty, want: "observations: DDBeforeUse"},
	{name: "ReclaimWhenFull", bugsA: ixgbe.BugReclaimWhenFull, drive: driveBursty, want: "observations: DDBeforeUse"},
	// Lost tail write.
	{name: "LostTailWrite", bugsB: ixgbe.BugLostTailWrite, drive: driveSteady, want: "delivery"},
	// The earlier ones.
	{name: "DoublePost", bugsA: ixgbe.BugDoublePost, drive: driveSteady, want: "trace: Post"},
	{name: "WrapOffByOne", bugsA: ixgbe.BugWrapOffByOne, drive: driveSteady, want: "trace: index"},
	{name: "RefillOwnedSlot", bugsB: ixgbe.BugRefillOwnedSlot, drive: driveSteady, want: "trace: ReuseOnlyAfterDD"},
}

// checkName is a violation's name: its first word before ": ".
func checkName(reason string) string {
	reason = strings.TrimPrefix(reason, "after this event: ")
	reason = strings.TrimPrefix(reason, "at the end of the trace: ")
	reason = strings.TrimPrefix(reason, "DevReceive: ")
	if name, _, ok := strings.Cut(reason, ": "); ok && !strings.Contains(name, " ") {
		return name
	}
	if rest, ok := strings.CutPrefix(reason, "invariant "); ok {
		name, _, _ := strings.Cut(rest, " ")
		return name
	}
	name, _, _ := strings.Cut(reason, " ")
	return name
}

// runChecks runs every check over the rig's run and returns the verdicts
// of those that failed (caught something), with details.
func runChecks(t *testing.T, r *rig, note string) (caught []string, detail map[string]string) {
	t.Helper()
	h, evs := r.header(note), r.events()
	if r.rec.Dropped() > 0 {
		t.Fatalf("the recorder dropped %d events", r.rec.Dropped())
	}
	detail = map[string]string{}
	add := func(name, d string) {
		caught = append(caught, name)
		detail[name] = d
	}
	rep, err := ValidateRings(h, evs)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Violation != nil {
		add("trace: "+checkName(rep.Violation.Reason), rep.Violation.Error())
	}
	if tr := rep.Truth; tr != nil && !tr.OK() {
		for _, c := range []string{CheckDescriptorMatchesPost, CheckHandedOverOnlyPosted, CheckNoDeviceViolation} {
			if tr.ByCheck[c] > 0 {
				add("device truth: "+c, fmt.Sprintf("%d failures, first %v", tr.ByCheck[c], tr.Failures))
			}
		}
	}
	if v := CheckObservations(h, evs); v != nil {
		add("observations: "+checkName(v.Reason), v.Error())
	}
	if n := len(r.sa.Violations()) + len(r.sb.Violations()) + len(r.sims.Domain.Faults()); n > 0 {
		add("simulator", fmt.Sprintf("%d ownership violations or IOMMU faults: %v %v", n, r.sa.Violations(), r.sb.Violations()))
	}
	for name, check := range map[string]func([]trace.Event, FIFOOptions) (*FIFOReport, error){
		"ring FIFO": CheckRingFIFO, "wire FIFO": CheckWireFIFO,
	} {
		fr, err := check(evs, FIFOOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if fr.Result != porcupine.Ok {
			add(name, fmt.Sprintf("%v in %s at %s", fr.Result, fr.Failed, fr.FailedWhere))
		}
	}
	var freeErrs uint64
	for _, n := range []*ixgbe.NIC{r.a, r.b} {
		for _, q := range n.Stats().Queues {
			freeErrs += q.TxFreeErrors
		}
	}
	if freeErrs > 0 {
		add("TxFreeErrors", fmt.Sprintf("%d buffers refused by their pool", freeErrs))
	}
	if r.recv != r.sent {
		add("delivery", fmt.Sprintf("sent %d, received %d", r.sent, r.recv))
	}
	sort.Strings(caught)
	return caught, detail
}

// TestDriverMutationsBaseline: every schedule of the suite without a bug
// passes every check (so that what the mutations trip is theirs).
func TestDriverMutationsBaseline(t *testing.T) {
	for _, d := range []struct {
		name  string
		eager bool
		drive func(*testing.T, *rig)
		sc    ixgbesim.Schedule
	}{{"steady", false, driveSteady, ixgbesim.Schedule{}}, {"bursty", false, driveBursty, ixgbesim.Schedule{}},
		{"eager", true, mutations[0].drive, ixgbesim.Schedule{}},
		{"status-first-split", false, func(t *testing.T, r *rig) { r.runInterleaved(t, 300, 16) }, ixgbesim.Schedule{StatusFirst: true, Split: true}}} {
		t.Run(d.name, func(t *testing.T) {
			r := newRig(t, rigOpts{mode: ixgbesim.Stepped, eagerTx: d.eager, schedule: d.sc})
			d.drive(t, r)
			if caught, detail := runChecks(t, r, "baseline "+d.name); len(caught) > 0 {
				t.Fatalf("checks fail without a bug: %v\n%v", caught, detail)
			}
			if r.sent == 0 {
				t.Fatal("nothing sent")
			}
		})
	}
	t.Run("forward", func(t *testing.T) {
		r := newRig(t, rigOpts{mode: ixgbesim.Stepped})
		driveForward(t, r)
		caught, detail := runChecks(t, r, "baseline forward")
		// B forwards to A, whose unpolled receive ring fills: the wire FIFO
		// (A's TxBatch to B's RxBatch) is the only one that sees frames.
		if len(caught) > 0 {
			t.Fatalf("checks fail without a bug: %v\n%v", caught, detail)
		}
	})
}

// TestDriverMutations applies each mutation and requires its named check
// to catch it; the log lists every check that did (the table in
// tla/README.md).
func TestDriverMutations(t *testing.T) {
	if len(mutations) < 12 {
		t.Fatalf("%d mutations, the suite promises at least 12", len(mutations))
	}
	var table []string
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			r := newRig(t, rigOpts{mode: ixgbesim.Stepped, bugsA: m.bugsA, bugsB: m.bugsB, eagerTx: m.eager, schedule: m.schedule})
			m.drive(t, r)
			caught, detail := runChecks(t, r, "mutation "+m.name)
			ok := false
			for _, c := range caught {
				ok = ok || strings.HasPrefix(c, m.want)
			}
			table = append(table, fmt.Sprintf("| %s | %s | %s |", m.name, m.want, strings.Join(caught, ", ")))
			if !ok {
				t.Fatalf("%s not caught by %s; caught by %v\n%v", m.name, m.want, caught, detail)
			}
			t.Logf("caught by %v; %s: %s", caught, m.want, firstLine(detail[matching(caught, m.want)]))
			if testing.Verbose() {
				for _, c := range caught {
					t.Logf("  %s: %s", c, firstLine(detail[c]))
				}
			}
		})
	}
	t.Logf("mutation | must be caught by | caught by\n%s", strings.Join(table, "\n"))
}

func matching(caught []string, prefix string) string {
	for _, c := range caught {
		if strings.HasPrefix(c, prefix) {
			return c
		}
	}
	return ""
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
