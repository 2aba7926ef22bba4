package models

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/verinic/verinic/trace"
)

// Hand-built TX traces with context descriptors and data descriptors
// without RS (trace.PostContext, trace.PostNoRS): the Go validation accepts
// the protocol's and rejects the rest with a reason naming the rule, and,
// when TLA2TOOLS_JAR is set, TLC with TxRingTrace.tla gives the same
// verdicts.

// kindTraces returns the hand-built traces of a ring of 8 and whether each
// is a behaviour of TxRing; reason is what a rejection must mention.
func kindTraces() []struct {
	name   string
	evs    []trace.Event
	ok     bool
	pos    int
	reason string
} {
	ev := func(k trace.Kind, i uint32, b uint64) trace.Event {
		return trace.Event{Kind: k, Dir: trace.TX, Index: i, Buf: b}
	}
	post := func(i uint32, b uint64, aux uint64) trace.Event {
		e := ev(trace.DrvPost, i, b)
		e.Aux = aux
		if aux&trace.PostContext == 0 {
			e.Len = 60
		}
		return e
	}
	const ctxq = 0x1c0e // a context's first quadword: MACLEN 14, IPLEN 20
	fetchDMA := func(i uint32, b uint64) []trace.Event {
		return []trace.Event{ev(trace.DevFetch, i, b), ev(trace.DevDMA, i, b), ev(trace.DevHead, i+1, 0)}
	}
	cat := func(parts ...[]trace.Event) []trace.Event {
		var out []trace.Event
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	one := func(e ...trace.Event) []trace.Event { return e }
	driverOnly := func(evs []trace.Event) []trace.Event {
		var out []trace.Event
		for _, e := range evs {
			if e.Kind < trace.DevTailRead {
				out = append(out, e)
			}
		}
		return out
	}
	// Three data descriptors, RS on the last only; DD on it covers all three.
	noRS := cat(
		one(post(0, 0xA000, trace.PostNoRS), post(1, 0xB000, trace.PostNoRS), post(2, 0xC000, 0), ev(trace.DrvTail, 3, 0)),
		fetchDMA(0, 0xA000), fetchDMA(1, 0xB000), fetchDMA(2, 0xC000),
		one(ev(trace.DevWriteBack, 2, 0), ev(trace.DrvDDSeen, 2, 0),
			ev(trace.DrvReclaim, 0, 0xA000), ev(trace.DrvReclaim, 1, 0xB000), ev(trace.DrvReclaim, 2, 0xC000)),
	)
	// A context, then its data descriptor; the context slot is reclaimed,
	// unrecorded, with the data descriptor; then a second packet that
	// reuses the context (none posted) and one with a new context.
	ctx := cat(
		one(post(0, ctxq, trace.PostContext), post(1, 0xA000, 0), ev(trace.DrvTail, 2, 0),
			ev(trace.DevFetch, 0, ctxq), ev(trace.DevHead, 1, 0)),
		fetchDMA(1, 0xA000),
		one(ev(trace.DevWriteBack, 1, 0), ev(trace.DrvDDSeen, 1, 0), ev(trace.DrvReclaim, 1, 0xA000),
			post(2, 0xB000, 0), post(3, ctxq+1, trace.PostContext), post(4, 0xA000, trace.PostNoRS), post(5, 0xC000, 0),
			ev(trace.DrvTail, 6, 0)),
		fetchDMA(2, 0xB000),
		one(ev(trace.DevFetch, 3, ctxq+1), ev(trace.DevHead, 4, 0)),
		fetchDMA(4, 0xA000), fetchDMA(5, 0xC000),
		one(ev(trace.DevWriteBack, 2, 0), ev(trace.DevWriteBack, 5, 0), ev(trace.DrvDDSeen, 5, 0),
			ev(trace.DrvReclaim, 2, 0xB000), ev(trace.DrvReclaim, 4, 0xA000), ev(trace.DrvReclaim, 5, 0xC000)),
	)
	// RS on slot 0 only: its DD does not cover slot 1.
	past := cat(
		one(post(0, 0xA000, 0), post(1, 0xB000, trace.PostNoRS), ev(trace.DrvTail, 2, 0)),
		fetchDMA(0, 0xA000), fetchDMA(1, 0xB000),
		one(ev(trace.DevWriteBack, 0, 0), ev(trace.DrvDDSeen, 0, 0), ev(trace.DrvReclaim, 0, 0xA000), ev(trace.DrvReclaim, 1, 0xB000)),
	)
	return []struct {
		name   string
		evs    []trace.Event
		ok     bool
		pos    int
		reason string
	}{
		{"nors", noRS, true, -1, ""},
		{"nors-driver-only", driverOnly(noRS), true, -1, ""},
		{"ctx", ctx, true, -1, ""},
		{"ctx-driver-only", driverOnly(ctx), true, -1, ""},
		{"reclaim-past-rs", past, false, 12, "ReuseOnlyAfterDD"},
		{"reclaim-past-rs-driver-only", driverOnly(past), false, 5, "ReuseOnlyAfterDD"},
		{"dd-seen-on-nors", cat(noRS[:13], one(ev(trace.DevWriteBack, 2, 0), ev(trace.DrvDDSeen, 1, 0))), false, 14, "DD seen on descriptor 1"},
		{"writeback-on-nors", cat(noRS[:13], one(ev(trace.DevWriteBack, 1, 0))), false, 13, "no RS"},
		{"ctx-fetch-other-quadword", cat(ctx[:3], one(ev(trace.DevFetch, 0, ctxq+2))), false, 3, "context descriptor 0"},
		{"two-contexts", one(post(0, ctxq, trace.PostContext), post(1, ctxq, trace.PostContext)), false, 1, "PostCtx"},
		{"ctx-reclaimed-as-buffer", cat(ctx[:10], one(ev(trace.DrvReclaim, 0, ctxq))), false, 10, "next slot to clean is 1, not 0"},
	}
}

func TestValidateKindHandTraces(t *testing.T) {
	for _, c := range kindTraces() {
		t.Run(c.name, func(t *testing.T) {
			evs := append([]trace.Event(nil), c.evs...)
			for i := range evs {
				evs[i].Seq = uint64(i)
			}
			rep, err := ValidateRings(ringHeader(8), evs)
			if err != nil {
				t.Fatal(err)
			}
			if c.ok {
				if rep.Violation != nil {
					t.Fatalf("rejected: %v", rep.Violation)
				}
				return
			}
			if rep.Violation == nil {
				t.Fatal("accepted")
			}
			if rep.Violation.Pos != c.pos || !strings.Contains(rep.Violation.Reason, c.reason) {
				t.Fatalf("violation at %d (%s), want at %d mentioning %q", rep.Violation.Pos, rep.Violation.Reason, c.pos, c.reason)
			}
			t.Logf("rejected at %d: %s", rep.Violation.Pos, rep.Violation.Reason)
		})
	}
}

// TLC with TxRingTrace.tla agrees on every hand-built trace.
func TestKindHandTracesSameVerdictAsTLC(t *testing.T) {
	jar := os.Getenv("TLA2TOOLS_JAR")
	if jar == "" {
		t.Skip("skipped TLC: TLA2TOOLS_JAR is not set (obtain tla2tools.jar from the TLA+ project's releases)")
	}
	if testing.Short() {
		t.Skip("skipped TLC in -short mode")
	}
	dir := t.TempDir()
	for _, c := range kindTraces() {
		evs := append([]trace.Event(nil), c.evs...)
		for i := range evs {
			evs[i].Seq, evs[i].T = uint64(i), int64(i)
		}
		g := genTrace{name: "kinds-" + c.name, dir: trace.TX, n: 8, header: genHeader(trace.TX, 8, c.name), events: evs}
		ok, out := tlcTraceVerdict(t, jar, dir, g)
		if ok != c.ok {
			t.Errorf("%s: TLC accepted=%v, want %v\n%s", c.name, ok, c.ok, lastLines(out, 12))
		}
	}
}

// genTxKinds generates a TX trace of TxRing{n, b, bug} with data
// descriptors without RS and context descriptors (as genTx does for the
// RS-only ring): the events the driver and the device record, which leave
// out the device's completions without write-back and the driver's
// reclaims of context slots.
func genTxKinds(seed uint64, n, b uint32, bug Bug, steps int, driverOnly bool) genTrace {
	rng := rand.New(rand.NewPCG(seed, 0x6b74))
	m := &TxRing{N: n, B: b, Bug: bug, NoRS: true, Ctx: true}
	var evs []trace.Event
	ctxq := make([]uint64, n)
	nctx := uint64(0)
	add := func(k trace.Kind, idx uint32, buf uint64, aux uint64) {
		if driverOnly && k >= trace.DevTailRead {
			return
		}
		e := trace.Event{Seq: uint64(len(evs)), T: int64(len(evs)), Kind: k, Dir: trace.TX, Index: idx, Buf: buf, Aux: aux}
		if buf != 0 && aux&trace.PostContext == 0 {
			e.Len = 60
		}
		evs = append(evs, e)
	}
	bad := walk(rng, m.Init(), steps, m.Next, m.Spec().Invariants, func(name string, s, t *TxState) {
		switch name {
		case "Post":
			add(trace.DrvPost, s.TXI, genAddr(t.Order[len(t.Order)-1]), 0)
		case "PostNoRS":
			add(trace.DrvPost, s.TXI, genAddr(t.Order[len(t.Order)-1]), trace.PostNoRS)
		case "PostCtx":
			nctx++
			ctxq[s.TXI] = 0x1c00 + nctx // a context's first quadword, varying
			add(trace.DrvPost, s.TXI, ctxq[s.TXI], trace.PostContext)
		case "WriteTail", "WriteTailEarly":
			add(trace.DrvTail, t.TDT, 0, 0)
		case "DevFetch":
			if s.Kind[s.TDH] == KindCtx {
				add(trace.DevFetch, s.TDH, ctxq[s.TDH], 0)
			} else {
				add(trace.DevFetch, s.TDH, genAddr(s.Desc[s.TDH].Buf), 0)
			}
		case "DevWriteBack":
			if s.Kind[s.WB] == KindRS {
				add(trace.DevWriteBack, s.WB, 0, 0)
			}
		case "Reclaim":
			// The data descriptor after a context goes with it.
			if end := m.recEnd(s); end < n && s.Slot[end] != NoBuf {
				add(trace.DrvReclaim, end, genAddr(s.Slot[end]), 0)
			}
		}
	})
	kind := "device"
	if driverOnly {
		kind = "driver-only"
	}
	name := fmt.Sprintf("txkinds-%s-%s-N%dB%d-seed%d", bug, kind, n, b, seed)
	return genTrace{name: name, dir: trace.TX, n: n, bad: bad, header: genHeader(trace.TX, n, name), events: evs}
}

// generatedKindTraces: behaviours of the protocol with every kind, and of
// the two broken variants about the kinds.
func generatedKindTraces() []genTrace {
	var out []genTrace
	seed := uint64(100)
	for _, bug := range []Bug{BugNone, BugReclaimPastRS, BugCtxBuf} {
		reps := 5
		if bug == BugNone {
			reps = 8
		}
		for i := range reps {
			out = append(out, genTxKinds(seed, 4+uint32(i%2), 4, bug, 80, i%2 == 1))
			seed++
		}
	}
	return out
}

// The Go validation accepts every generated behaviour of the protocol and
// rejects a behaviour of a broken variant only where the model broke an
// invariant; some are rejected.
func TestGeneratedKindTracesGoVerdicts(t *testing.T) {
	rejected, posts := 0, map[uint64]int{}
	for _, g := range generatedKindTraces() {
		for _, e := range g.events {
			if e.Kind == trace.DrvPost {
				posts[e.Aux]++
			}
		}
		ok, why := goVerdict(t, g)
		if strings.Contains(g.name, "-none-") && !ok {
			t.Errorf("%s: a behaviour of the protocol rejected: %s", g.name, why)
		}
		if !ok {
			rejected++
			if !g.bad {
				t.Errorf("%s: rejected, yet the model broke no invariant: %s", g.name, why)
			}
		}
	}
	if rejected == 0 || posts[0] == 0 || posts[trace.PostNoRS] == 0 || posts[trace.PostContext] == 0 {
		t.Fatalf("%d rejected, posts by aux %v: the kinds or the broken variants were not exercised", rejected, posts)
	}
	t.Logf("%d generated traces, %d rejected by the Go validation; posts by aux flags: %v", len(generatedKindTraces()), rejected, posts)
}

// TLC with TxRingTrace.tla gives the Go validation's verdict on each.
func TestGeneratedKindTracesSameVerdictAsTLC(t *testing.T) {
	jar := os.Getenv("TLA2TOOLS_JAR")
	if jar == "" {
		t.Skip("skipped TLC: TLA2TOOLS_JAR is not set (obtain tla2tools.jar from the TLA+ project's releases)")
	}
	if testing.Short() {
		t.Skip("skipped TLC in -short mode")
	}
	dir := t.TempDir()
	byKind := map[string]string{}
	for _, g := range generatedKindTraces() {
		goOK, why := goVerdict(t, g)
		tlcOK, out := tlcTraceVerdict(t, jar, dir, g)
		if goOK != tlcOK {
			t.Errorf("%s (%d events): Go accepted=%v (%s), TLC accepted=%v\n%s", g.name, len(g.events), goOK, why, tlcOK, lastLines(out, 12))
			continue
		}
		v := "r"
		if goOK {
			v = "a"
		}
		byKind[g.name[:strings.Index(g.name, "-N")]] += v
	}
	for k, v := range byKind {
		t.Logf("  %-40s %s", k, v)
	}
}

// EventuallyReturned is stated for buffers with an RS descriptor at or
// after them: without that condition it fails once descriptors without RS
// exist (a buffer behind the last RS descriptor waits for the next one,
// which the driver need never post), and holds with it (TxRing_rs).
func TestLivenessNeedsRSCoverage(t *testing.T) {
	m := &TxRing{N: 3, B: 2, Bug: BugNone, NoRS: true}
	spec := m.Spec()
	res, err := Explore(spec, 0, (*TxState).String)
	if err != nil || res.Violation != nil {
		t.Fatalf("with RS coverage: %v %v", err, res.Violation)
	}
	spec.Liveness[0].Pending = func(s *TxState, k int) bool { return slices.Contains(s.Slot, uint32(k+1)) }
	res, err = Explore(spec, 0, (*TxState).String)
	if err != nil {
		t.Fatal(err)
	}
	if res.Violation == nil || !strings.HasPrefix(res.Violation.Property, "liveness EventuallyReturned") {
		t.Fatalf("without RS coverage: want a liveness violation, got %+v", res.Violation)
	}
	t.Logf("%s: %s", res.Violation.Property, res.Violation.Trace[len(res.Violation.Trace)-1])
}
