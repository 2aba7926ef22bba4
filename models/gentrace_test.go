package models

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verinic/verinic/trace"
)

// Generated traces: random behaviours of the Go transcriptions (of the
// protocol and of each broken variant) written as NDJSON traces, so that
// the Go trace validation (ValidateRings) and TLC with the trace specs
// (TxRingTrace.tla, RxRingTrace.tla) can be compared on many traces, not
// only on the recorded samples in tla/traces.

// genAddr is buffer b's IOVA in generated traces.
func genAddr(b uint32) uint64 { return 0x100000 + uint64(b)*0x800 }

// genTrace is one generated trace of one ring (device 0, queue 0).
type genTrace struct {
	name   string
	dir    uint8
	n      uint32
	bad    bool // the behaviour reached a state that violates an invariant
	header trace.Header
	events []trace.Event
}

func genHeader(dir uint8, n uint32, note string) trace.Header {
	d := "tx"
	if dir == trace.RX {
		d = "rx"
	}
	return trace.Header{Schema: trace.SchemaName, Version: trace.SchemaVersion, Clock: trace.ClockMonotonicNS, Note: note,
		Devices: []trace.DeviceInfo{{Dev: 0, Name: "gen", Queues: []trace.QueueInfo{{Dir: d, Queue: 0, Ring: n}}}}}
}

// walk runs a random behaviour of steps actions: at each step one enabled
// action of next, chosen uniformly. A broken variant keeps going after it
// breaks an invariant (its damage shows in later events: a buffer posted
// again, an index past the ring); bad reports that one was broken. A step
// the Go model cannot take from a state outside TypeOK (a panic) ends the
// behaviour.
func walk[S any](rng *rand.Rand, init S, steps int, next func(S, func(string, S)), invs []Invariant[S], emit func(name string, s, t S)) (bad bool) {
	s := init
	type succ struct {
		name string
		t    S
	}
	defer func() {
		if recover() != nil {
			bad = true
		}
	}()
	for range steps {
		var opts []succ
		next(s, func(name string, t S) { opts = append(opts, succ{name, t}) })
		if len(opts) == 0 {
			return bad
		}
		o := opts[rng.IntN(len(opts))]
		emit(o.name, s, o.t)
		s = o.t
		for _, inv := range invs {
			if !inv.Holds(s) {
				bad = true
			}
		}
	}
	return bad
}

// genTx generates a TX trace of TxRing{n, b, bug}; without device events
// when driverOnly.
func genTx(seed uint64, n, b uint32, bug Bug, steps int, driverOnly bool) genTrace {
	rng := rand.New(rand.NewPCG(seed, 0x7478))
	m := &TxRing{N: n, B: b, Bug: bug}
	var evs []trace.Event
	add := func(k trace.Kind, idx uint32, buf uint32) {
		if driverOnly && k >= trace.DevTailRead {
			return
		}
		e := trace.Event{Seq: uint64(len(evs)), T: int64(len(evs)), Kind: k, Dir: trace.TX, Index: idx}
		if buf != NoBuf {
			e.Buf, e.Len = genAddr(buf), 60
		}
		evs = append(evs, e)
	}
	bad := walk(rng, m.Init(), steps, m.Next, m.Spec().Invariants, func(name string, s, t *TxState) {
		switch name {
		case "Post":
			add(trace.DrvPost, s.TXI, t.Order[len(t.Order)-1])
		case "WriteTail", "WriteTailEarly":
			add(trace.DrvTail, t.TDT, NoBuf)
		case "DevFetch":
			add(trace.DevFetch, s.TDH, s.Desc[s.TDH].Buf)
		case "DevWriteBack":
			add(trace.DevWriteBack, s.WB, NoBuf)
		case "Reclaim":
			add(trace.DrvReclaim, s.Clean, s.Slot[s.Clean])
		}
	})
	kind := "device"
	if driverOnly {
		kind = "driver-only"
	}
	name := fmt.Sprintf("tx-%s-%s-N%dB%d-seed%d", bug, kind, n, b, seed)
	return genTrace{name: name, dir: trace.TX, n: n, bad: bad, header: genHeader(trace.TX, n, name), events: evs}
}

// genRx generates an RX trace of RxRing{n, b, bug} (Split = FALSE: the
// trace format has one write-back event).
func genRx(seed uint64, n, b uint32, bug Bug, steps int, driverOnly bool) genTrace {
	rng := rand.New(rand.NewPCG(seed, 0x7278))
	m := &RxRing{N: n, B: b, Bug: bug}
	var evs []trace.Event
	add := func(k trace.Kind, idx uint32, buf uint32) {
		if driverOnly && k >= trace.DevTailRead {
			return
		}
		e := trace.Event{Seq: uint64(len(evs)), T: int64(len(evs)), Kind: k, Dir: trace.RX, Index: idx}
		if buf != NoBuf {
			e.Buf, e.Len = genAddr(buf), 60
		}
		evs = append(evs, e)
	}
	bad := walk(rng, m.Init(), steps, m.Next, m.Spec().Invariants, func(name string, s, t *RxState) {
		switch name {
		case "Refill":
			// The slot written (refill_owned_slot: the one after rxi).
			add(trace.DrvPost, m.refillSlot(s), t.Order[len(t.Order)-1])
		case "WriteTail":
			add(trace.DrvTail, t.RDT, NoBuf)
		case "DevReceive":
			add(trace.DevDMA, s.RDH, s.Desc[s.RDH].Buf)
			add(trace.DevWriteBack, s.RDH, NoBuf)
			add(trace.DevHead, t.RDH, NoBuf)
		case "HandUp":
			add(trace.DrvDDSeen, s.RXI, NoBuf)
			add(trace.DrvReclaim, s.RXI, s.Slot[s.RXI])
		}
	})
	kind := "device"
	if driverOnly {
		kind = "driver-only"
	}
	name := fmt.Sprintf("rx-%s-%s-N%dB%d-seed%d", bug, kind, n, b, seed)
	return genTrace{name: name, dir: trace.RX, n: n, bad: bad, header: genHeader(trace.RX, n, name), events: evs}
}

// generatedTraces is the set compared with TLC: per ring kind, clean
// behaviours with and without device events, and behaviours of every
// broken variant.
func generatedTraces() []genTrace {
	var out []genTrace
	seed := uint64(1)
	for _, bug := range []Bug{BugNone, BugReclaimWithoutDD, BugTailBeforeDesc, BugDoublePost, BugWrapOffByOne} {
		reps := 5
		if bug == BugNone {
			reps = 8
		}
		for i := range reps {
			out = append(out, genTx(seed, 3+uint32(i%2), 4, bug, 60, i%2 == 1))
			seed++
		}
	}
	for _, bug := range []Bug{BugNone, BugRefillOwnedSlot, BugWrapOffByOne} {
		reps := 5
		if bug == BugNone {
			reps = 8
		}
		for i := range reps {
			out = append(out, genRx(seed, 3+uint32(i%2), 5, bug, 60, i%2 == 1))
			seed++
		}
	}
	return out
}

// goVerdict is the Go trace validation's verdict on g.
func goVerdict(t *testing.T, g genTrace) (accepted bool, why string) {
	rep, err := ValidateRings(g.header, g.events)
	if err != nil {
		t.Fatalf("%s: %v", g.name, err)
	}
	if rep.Violation != nil {
		return false, rep.Violation.Error()
	}
	return true, ""
}

// The Go validation accepts every generated behaviour of the protocol and
// rejects every generated behaviour of a broken variant that reached a
// state violating an invariant (runs everywhere, without TLC).
func TestGeneratedTracesGoVerdicts(t *testing.T) {
	rejected := 0
	for _, g := range generatedTraces() {
		ok, why := goVerdict(t, g)
		if strings.Contains(g.name, "-none-") && !ok {
			t.Errorf("%s: a behaviour of the protocol rejected: %s", g.name, why)
		}
		if !ok {
			rejected++
		}
		if !ok && !g.bad {
			t.Errorf("%s: rejected, yet the model broke no invariant: %s", g.name, why)
		}
	}
	if rejected == 0 {
		t.Fatal("no generated trace was rejected: the broken variants were never exercised")
	}
	t.Logf("%d generated traces, %d rejected by the Go validation", len(generatedTraces()), rejected)
}

// tlcTraceVerdict runs TLC with the trace spec on g: accepted iff TLC exits
// 0; rejected on a deadlock (11: no action explains the next event) or a
// violated invariant (12).
func tlcTraceVerdict(t *testing.T, jar, dir string, g genTrace) (accepted bool, out string) {
	t.Helper()
	file := filepath.Join(dir, g.name+".ndjson")
	var buf bytes.Buffer
	if err := trace.WriteEvents(&buf, g.header, g.events); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	module := "TxRingTrace"
	if g.dir == trace.RX {
		module = "RxRingTrace"
	}
	cfg := filepath.Join(dir, g.name+".cfg")
	// The trace specs' own configs, with this trace.
	src, err := os.ReadFile(filepath.Join("..", "tla", module+".cfg"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(src), "\n") {
		switch {
		case strings.Contains(l, "TraceFile ="):
			l = fmt.Sprintf("CONSTANTS TraceFile = %q", file)
		case strings.Contains(l, "TraceDev ="):
			l = "          TraceDev = 0"
		case strings.Contains(l, "TraceQueue ="):
			l = "          TraceQueue = 0"
		}
		lines = append(lines, l)
	}
	if err := os.WriteFile(cfg, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(filepath.Join("..", "tla"))
	cmd := exec.Command("java", "-XX:+UseParallelGC", "-cp", jar, "tlc2.TLC", "-noGenerateSpecTE", "-workers", "1",
		"-metadir", filepath.Join(dir, g.name+".states"), "-config", cfg, module+".tla")
	cmd.Dir = abs
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return true, string(b)
	case errors.As(err, &ee) && (ee.ExitCode() == 11 || ee.ExitCode() == 12):
		return false, string(b)
	default:
		t.Fatalf("%s: TLC: %v\n%s", g.name, err, b)
	}
	return false, ""
}

// The Go trace validation and TLC with the trace specs give the same
// verdict on every generated trace (runs when TLA2TOOLS_JAR is set).
func TestGeneratedTracesSameVerdictAsTLC(t *testing.T) {
	jar := os.Getenv("TLA2TOOLS_JAR")
	if jar == "" {
		t.Skip("skipped TLC: TLA2TOOLS_JAR is not set (obtain tla2tools.jar from the TLA+ project's releases)")
	}
	if testing.Short() {
		t.Skip("skipped TLC in -short mode")
	}
	dir := t.TempDir()
	start := time.Now()
	var agree, accepted, rejected int
	byKind := map[string]string{} // per variant: a (accepted) or r (rejected) per trace
	for _, g := range generatedTraces() {
		goOK, why := goVerdict(t, g)
		tlcOK, out := tlcTraceVerdict(t, jar, dir, g)
		if goOK != tlcOK {
			t.Errorf("%s (%d events): Go accepted=%v (%s), TLC accepted=%v\n%s", g.name, len(g.events), goOK, why, tlcOK, lastLines(out, 12))
			continue
		}
		agree++
		k := g.name[:strings.Index(g.name, "-N")]
		v := "rejected"
		if goOK {
			v = "accepted"
		}
		byKind[k] += v[:1]
		if goOK {
			accepted++
		} else {
			rejected++
		}
	}
	t.Logf("generated traces: %d agree (%d accepted by both, %d rejected by both), %d in all, %v",
		agree, accepted, rejected, len(generatedTraces()), time.Since(start).Round(time.Second))
	for _, k := range slices.Sorted(maps.Keys(byKind)) {
		t.Logf("  %-40s %s", k, byKind[k])
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
