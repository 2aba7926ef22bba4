package models

import (
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/verinic/verinic/trace"
)

func ringHeader(n uint32) trace.Header {
	qs := []trace.QueueInfo{{Dir: "rx", Queue: 0, Ring: n}, {Dir: "tx", Queue: 0, Ring: n}}
	return trace.Header{Devices: []trace.DeviceInfo{{Dev: 0, Name: "t", Queues: qs}}}
}

func bufAddr(b uint32) uint64 { return 0x100000 + 0x800*uint64(b) }

// walk takes random steps of a ring spec (possibly a broken variant) and
// emits the events the driver and the device record for them. It reports
// whether some step's events differ from what the protocol (Bug = none)
// does from the same state: the bug became visible in the trace.
type walker struct {
	evs    []trace.Event
	buggy  bool
	device bool // emit device events
}

func (w *walker) emit(dir uint8, k trace.Kind, index uint32, buf uint64) {
	if !w.device && k >= trace.DevTailRead && k <= trace.DevDrop {
		return
	}
	w.evs = append(w.evs, trace.Event{Kind: k, Dir: dir, Index: index, Buf: buf})
}

func walkTx(t *rapid.T, m *TxRing, steps int, device bool) *walker {
	good := &TxRing{N: m.N, B: m.B, Bug: BugNone}
	s := m.Init()
	w := &walker{device: device}
	for k := 0; k < steps; k++ {
		type step struct {
			name string
			act  func(*TxRing, *TxState) bool
		}
		var enabled []step
		for b := uint32(1); b <= m.B; b++ {
			b := b
			enabled = append(enabled,
				step{"Alloc", func(m *TxRing, s *TxState) bool { return m.Alloc(s, b) }},
				step{"Free", func(m *TxRing, s *TxState) bool { return m.Free(s, b) }},
				step{"Post", func(m *TxRing, s *TxState) bool { return m.Post(s, b) }})
		}
		enabled = append(enabled, step{"WriteTail", (*TxRing).WriteTail}, step{"WriteTailEarly", (*TxRing).WriteTailEarly},
			step{"DevFetch", (*TxRing).DevFetch}, step{"DevWriteBack", (*TxRing).DevWriteBack}, step{"Reclaim", (*TxRing).Reclaim})
		var ok []step
		for _, st := range enabled {
			if st.act(m, s.Clone()) {
				ok = append(ok, st)
			}
		}
		if len(ok) == 0 {
			break
		}
		st := rapid.SampledFrom(ok).Draw(t, "step")
		before := s.Clone()
		ref := s.Clone()
		goodOK := st.act(good, ref)
		st.act(m, s)
		got := txEvents(w.device, st.name, before, s)
		if !goodOK || !slices.Equal(got, txEvents(w.device, st.name, before, ref)) {
			w.buggy = true
		}
		for _, e := range got {
			e.Seq = uint64(len(w.evs))
			w.evs = append(w.evs, e)
		}
	}
	return w
}

// txEvents is what the driver and device record for a TxRing step.
func txEvents(device bool, name string, before, s *TxState) []trace.Event {
	w := &walker{device: device}
	{
		switch name {
		case "Post":
			w.emit(trace.TX, trace.DrvPost, before.TXI, bufAddr(s.Order[len(s.Order)-1]))
		case "WriteTail", "WriteTailEarly":
			w.emit(trace.TX, trace.DrvTail, s.TDT, 0)
		case "DevFetch":
			w.emit(trace.TX, trace.DevFetch, before.TDH, bufAddr(before.Desc[before.TDH].Buf))
			w.emit(trace.TX, trace.DevHead, s.TDH, 0)
		case "DevWriteBack":
			w.emit(trace.TX, trace.DevWriteBack, before.WB, 0)
		case "Reclaim":
			w.emit(trace.TX, trace.DrvDDSeen, before.Clean, 0)
			w.emit(trace.TX, trace.DrvReclaim, before.Clean, bufAddr(before.Slot[before.Clean]))
		}
	}
	return w.evs
}

func walkRx(t *rapid.T, m *RxRing, steps int, device bool) *walker {
	good := &RxRing{N: m.N, B: m.B, Bug: BugNone}
	s := m.Init()
	w := &walker{device: device}
	for k := 0; k < steps; k++ {
		type step struct {
			name string
			act  func(*RxRing, *RxState) bool
		}
		var enabled []step
		for b := uint32(1); b <= m.B; b++ {
			b := b
			enabled = append(enabled,
				step{"Refill", func(m *RxRing, s *RxState) bool { return m.Refill(s, b) }},
				step{"AppFree", func(m *RxRing, s *RxState) bool { return m.AppFree(s, b) }})
		}
		enabled = append(enabled, step{"DevReceive", (*RxRing).DevReceive}, step{"HandUp", (*RxRing).HandUp},
			step{"WriteTail", (*RxRing).WriteTail})
		var ok []step
		for _, st := range enabled {
			if st.act(m, s.Clone()) {
				ok = append(ok, st)
			}
		}
		if len(ok) == 0 {
			break
		}
		st := rapid.SampledFrom(ok).Draw(t, "step")
		before := s.Clone()
		ref := s.Clone()
		goodOK := st.act(good, ref)
		st.act(m, s)
		got := rxEvents(w.device, st.name, m, before, s)
		if !goodOK || !slices.Equal(got, rxEvents(w.device, st.name, good, before, ref)) {
			w.buggy = true
		}
		for _, e := range got {
			e.Seq = uint64(len(w.evs))
			w.evs = append(w.evs, e)
		}
	}
	return w
}

// rxEvents is what the driver and device record for an RxRing step.
func rxEvents(device bool, name string, m *RxRing, before, s *RxState) []trace.Event {
	w := &walker{device: device}
	{
		switch name {
		case "Refill":
			nb := s.Order[len(s.Order)-1]
			w.emit(trace.RX, trace.DrvPost, m.refillSlot(before), bufAddr(nb))
		case "WriteTail":
			w.emit(trace.RX, trace.DrvTail, s.RDT, 0)
		case "DevReceive":
			w.emit(trace.RX, trace.DevFetch, before.RDH, bufAddr(before.Desc[before.RDH].Buf))
			w.emit(trace.RX, trace.DevWriteBack, before.RDH, 0)
			w.emit(trace.RX, trace.DevHead, s.RDH, 0)
		case "HandUp":
			w.emit(trace.RX, trace.DrvDDSeen, before.RXI, 0)
			w.emit(trace.RX, trace.DrvReclaim, before.RXI, bufAddr(before.Slot[before.RXI]))
		}
	}
	return w.evs
}

// Property: every behaviour of the ring specs, recorded as events (with or
// without the device's events), is accepted by trace validation.
func TestValidateAcceptsSpecBehaviours(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.Uint32Range(2, 8).Draw(t, "N")
		b := rapid.Uint32Range(1, 10).Draw(t, "B")
		device := rapid.Bool().Draw(t, "device events")
		var w *walker
		if rapid.Bool().Draw(t, "tx") {
			w = walkTx(t, &TxRing{N: n, B: b, Bug: BugNone}, 200, device)
		} else {
			w = walkRx(t, &RxRing{N: n, B: b, Bug: BugNone}, 200, device)
		}
		rep, err := ValidateRings(ringHeader(n), w.evs)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Violation != nil {
			t.Fatalf("a behaviour of the spec was rejected:\n%v", rep.Violation)
		}
	})
}

// Property: a behaviour of a broken variant whose events show the bug,
// recorded with the device's events, is rejected.
func TestValidateRejectsBuggyBehaviours(t *testing.T) {
	visible := 0
	// Rounds of rapid.Check until enough walks showed a bug (-short runs
	// few checks per round).
	for round := 0; visible < 20 && round < 100; round++ {
		rapid.Check(t, func(t *rapid.T) {
			n := rapid.Uint32Range(2, 8).Draw(t, "N")
			b := rapid.Uint32Range(n, 10).Draw(t, "B")
			var w *walker
			if rapid.Bool().Draw(t, "tx") {
				bug := rapid.SampledFrom([]Bug{BugReclaimWithoutDD, BugTailBeforeDesc, BugDoublePost, BugWrapOffByOne}).Draw(t, "bug")
				w = walkTx(t, &TxRing{N: n, B: b, Bug: bug}, 60, true)
			} else {
				bug := rapid.SampledFrom([]Bug{BugRefillOwnedSlot, BugWrapOffByOne}).Draw(t, "bug")
				w = walkRx(t, &RxRing{N: n, B: b, Bug: bug}, 60, true)
			}
			if !w.buggy {
				return // the bug never showed in the events
			}
			device := false
			for _, e := range w.evs {
				device = device || e.Kind >= trace.DevTailRead && e.Kind <= trace.DevDrop
			}
			if !device {
				// With no device event at all the validator must infer the
				// device's steps, and a driver that reclaimed without DD is
				// indistinguishable from one whose device was fast.
				return
			}
			visible++
			rep, err := ValidateRings(ringHeader(n), w.evs)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Violation == nil {
				t.Fatalf("a buggy behaviour was accepted (%d events)", len(w.evs))
			}
		})
	}
	if visible < 20 {
		t.Fatalf("only %d of the random walks showed a bug: the property was hardly tested", visible)
	}
}

// Hand-written traces: the reasons are specific and point at the event.
func TestValidateHandTraces(t *testing.T) {
	ev := func(k trace.Kind, i uint32, b uint64) trace.Event {
		return trace.Event{Kind: k, Dir: trace.TX, Index: i, Buf: b}
	}
	good := []trace.Event{
		ev(trace.DrvPost, 0, 0xA000), ev(trace.DrvPost, 1, 0xB000), ev(trace.DrvTail, 2, 0),
		ev(trace.DevFetch, 0, 0xA000), ev(trace.DevDMA, 0, 0xA000), ev(trace.DevHead, 1, 0), ev(trace.DevWriteBack, 0, 0),
		ev(trace.DrvDDSeen, 0, 0), ev(trace.DrvReclaim, 0, 0xA000),
	}
	cases := []struct {
		name   string
		mutate func([]trace.Event) []trace.Event
		pos    int
		reason string
	}{
		{"clean", func(e []trace.Event) []trace.Event { return e }, -1, ""},
		{"reclaim before write-back", func(e []trace.Event) []trace.Event {
			return append(append([]trace.Event{}, e[:6]...), e[8])
		}, 6, "no DD"},
		{"fetch beyond tail", func(e []trace.Event) []trace.Event {
			return []trace.Event{e[0], e[3]}
		}, 1, "not the device's"},
		{"posted twice", func(e []trace.Event) []trace.Event {
			return []trace.Event{e[0], ev(trace.DrvPost, 1, 0xA000)}
		}, 1, "posted twice"},
		{"index past the ring", func(e []trace.Event) []trace.Event {
			return []trace.Event{ev(trace.DrvPost, 4, 0xA000)}
		}, 0, "outside the ring"},
		{"tail ahead of posts", func(e []trace.Event) []trace.Event {
			return []trace.Event{e[0], ev(trace.DrvTail, 2, 0)}
		}, 1, "not written"},
		{"device read stale descriptor", func(e []trace.Event) []trace.Event {
			return []trace.Event{e[0], ev(trace.DrvTail, 1, 0), ev(trace.DevFetch, 0, 0xFFFF)}
		}, 2, "DeviceTouchesOwnedOnly"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs := c.mutate(good)
			for i := range evs {
				evs[i].Seq = uint64(i)
			}
			rep, err := ValidateRings(ringHeader(4), evs)
			if err != nil {
				t.Fatal(err)
			}
			if c.pos < 0 {
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
		})
	}
	// Driver events only: the device's steps are inferred; a reclaim of a
	// descriptor never published by a tail write cannot be explained.
	drv := []trace.Event{ev(trace.DrvPost, 0, 0xA000), ev(trace.DrvTail, 1, 0), ev(trace.DrvDDSeen, 0, 0), ev(trace.DrvReclaim, 0, 0xA000)}
	for i := range drv {
		drv[i].Seq = uint64(i)
	}
	if rep, _ := ValidateRings(ringHeader(4), drv); rep.Violation != nil || rep.Rings[RingKey{0, trace.TX, 0}].Implied != 2 {
		t.Fatalf("driver-only trace: %+v", rep)
	}
	unpublished := []trace.Event{drv[0], drv[2]}
	if rep, _ := ValidateRings(ringHeader(4), unpublished); rep.Violation == nil {
		t.Fatal("DD on an unpublished descriptor accepted")
	}
	if _, err := ValidateRings(trace.Header{}, drv); err == nil {
		t.Fatal("trace without ring sizes accepted")
	}
	if _, err := ValidateRings(trace.Header{Dropped: 1}, drv); err == nil {
		t.Fatal("incomplete trace accepted")
	}
}
