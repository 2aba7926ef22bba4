package models

import (
	"fmt"
	"sort"
	"strings"

	"github.com/verinic/verinic/trace"
)

// RingKey names one descriptor ring in a trace.
type RingKey struct {
	Dev   uint16
	Dir   uint8
	Queue uint16
}

func (k RingKey) String() string {
	return fmt.Sprintf("dev %d %s queue %d", k.Dev, trace.DirString(k.Dir), k.Queue)
}

// RingStats summarizes the replay of one ring.
type RingStats struct {
	Size        uint32
	Buffers     int // distinct buffers seen
	Events      int // events of this ring replayed
	DriverSteps int // driver actions (post, tail, hand-up/reclaim)
	DeviceSteps int // device actions recorded in the trace
	Implied     int // device actions inserted because the trace has no device events
}

// TraceViolation is the first event no action of the spec explains.
type TraceViolation struct {
	Ring    RingKey
	Pos     int         // position of the event in the trace (0-based)
	Event   trace.Event // the event
	Reason  string
	Context []trace.Event // the ring's preceding events, oldest first
	State   string        // the model state before the event
}

func (v *TraceViolation) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: event #%d (seq %d) %s index %d buf %#x len %d: %s\n", v.Ring, v.Pos, v.Event.Seq,
		v.Event.Kind, v.Event.Index, v.Event.Buf, v.Event.Len, v.Reason)
	b.WriteString("  preceding events on this ring:\n")
	for _, e := range v.Context {
		fmt.Fprintf(&b, "    seq %d %s index %d buf %#x len %d\n", e.Seq, e.Kind, e.Index, e.Buf, e.Len)
	}
	fmt.Fprintf(&b, "  model state: %s", v.State)
	return b.String()
}

// RingReport is the outcome of ring-level trace validation.
type RingReport struct {
	Events    int // ring events checked
	Rings     map[RingKey]*RingStats
	Violation *TraceViolation
	Truth     *TruthReport // the device-truth checks (devtruth.go)
}

// ringReplay replays one ring against its spec.
type ringReplay interface {
	step(e trace.Event) (reason string)
	check() (reason string)
	state() string
	stats() *RingStats
}

const contextEvents = 8

// isRingEvent reports whether k is a driver or device ring event.
func isRingEvent(k trace.Kind) bool { return k >= trace.DrvPost && k <= trace.DevDrop }

// ValidateRings replays every ring's events in seq order against TxRing or
// RxRing (Bug = none). Device steps absent from the trace (a trace with no
// device events for a ring, as recorded against real hardware) are
// inserted when a driver event needs them; application steps (mempool
// alloc and free) are never recorded and are inserted when a post needs
// them. It reports the first event no action explains, or the first
// violation of CheckObservations (loads.go) when that comes earlier.
func ValidateRings(h trace.Header, events []trace.Event) (*RingReport, error) {
	if h.Dropped > 0 {
		return nil, fmt.Errorf("models: trace is incomplete: the recorder dropped %d events", h.Dropped)
	}
	type ringInfo struct {
		bufs   map[uint64]uint32
		device bool
		n      int
	}
	infos := map[RingKey]*ringInfo{}
	for _, e := range events {
		if !isRingEvent(e.Kind) {
			continue
		}
		k := RingKey{e.Dev, e.Dir, e.Queue}
		ri := infos[k]
		if ri == nil {
			ri = &ringInfo{bufs: map[uint64]uint32{}}
			infos[k] = ri
		}
		ri.n++
		switch e.Kind {
		case trace.DrvPost, trace.DrvReclaim, trace.DevFetch, trace.DevDMA:
			if isCtxPost(e) {
				break // a context descriptor's first quadword: no buffer
			}
			if _, ok := ri.bufs[e.Buf]; !ok {
				ri.bufs[e.Buf] = uint32(len(ri.bufs) + 1)
			}
		}
		if e.Kind >= trace.DevTailRead {
			ri.device = true
		}
	}
	rep := &RingReport{Rings: map[RingKey]*RingStats{}, Truth: CheckDeviceTruth(h, events)}
	replays := map[RingKey]ringReplay{}
	for k, ri := range infos {
		size, ok := h.RingSize(k.Dev, k.Dir, k.Queue)
		if !ok || size < 2 {
			return nil, fmt.Errorf("models: trace header gives no ring size for %s", k)
		}
		st := &RingStats{Size: size, Buffers: len(ri.bufs)}
		rep.Rings[k] = st
		nb := uint32(len(ri.bufs))
		if k.Dir == trace.TX {
			m := &TxRing{N: size, B: nb, Bug: BugNone, NoRS: true, Ctx: true}
			replays[k] = &txReplay{m: m, s: m.Init(), ids: ri.bufs, strict: ri.device, st: st, invs: m.Spec().Invariants,
				ctxq: make([]uint64, size)}
		} else {
			m := &RxRing{N: size, B: nb, Bug: BugNone}
			replays[k] = &rxReplay{m: m, s: m.Init(), ids: ri.bufs, strict: ri.device, st: st, invs: m.Spec().Invariants}
		}
	}
	ctx := map[RingKey][]trace.Event{}
	obs := CheckObservations(h, events) // loads.go: the driver's loads, the buffer grid, device-wide ownership
	fail := func(k RingKey, pos int, e trace.Event, reason string) *RingReport {
		if obs != nil && obs.Pos < pos {
			rep.Violation = obs
			return rep
		}
		rep.Violation = &TraceViolation{Ring: k, Pos: pos, Event: e, Reason: reason,
			Context: ctx[k], State: replays[k].state()}
		return rep
	}
	for pos, e := range events {
		if !isRingEvent(e.Kind) {
			continue
		}
		k := RingKey{e.Dev, e.Dir, e.Queue}
		r := replays[k]
		st := r.stats()
		steps := st.DriverSteps + st.DeviceSteps + st.Implied
		if reason := r.step(e); reason != "" {
			return fail(k, pos, e, reason), nil
		}
		rep.Events++
		st.Events++
		// Every invariant of the spec holds after every event (the
		// invariants are linear in the ring and buffer counts). An event
		// that took no step (a stutter: DD seen, DMA, head, tail read or
		// the same tail again) left the model state as it was, where they
		// held: every step that changes the state counts itself in st.
		if st.DriverSteps+st.DeviceSteps+st.Implied != steps {
			if reason := r.check(); reason != "" {
				return fail(k, pos, e, "after this event: "+reason), nil
			}
		}
		c := append(ctx[k], e)
		if len(c) > contextEvents {
			c = c[1:]
		}
		ctx[k] = c
	}
	if obs != nil {
		rep.Violation = obs
		return rep, nil
	}
	keys := make([]RingKey, 0, len(replays))
	for k := range replays {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		if reason := replays[k].check(); reason != "" {
			rep.Violation = &TraceViolation{Ring: k, Pos: len(events), Reason: "at the end of the trace: " + reason,
				Context: ctx[k], State: replays[k].state()}
			return rep, nil
		}
	}
	return rep, nil
}

// summarizeSlots shows the slots around the given indices, for messages.
func summarizeSlots(slot []uint32, desc []Desc, rev []uint64, around ...uint32) string {
	n := uint32(len(slot))
	seen := map[uint32]bool{}
	var parts []string
	for _, c := range around {
		for d := int64(-2); d <= 2; d++ {
			i := uint32((int64(c) + d + int64(n)) % int64(n))
			if seen[i] {
				continue
			}
			seen[i] = true
			b := "-"
			if slot[i] != NoBuf {
				b = fmt.Sprintf("%#x", rev[slot[i]])
			}
			dd := ""
			if desc[i].DD {
				dd = " DD"
			}
			parts = append(parts, fmt.Sprintf("[%d]=%s%s", i, b, dd))
		}
	}
	return strings.Join(parts, " ")
}

func reverse(ids map[uint64]uint32) []uint64 {
	rev := make([]uint64, len(ids)+1)
	for a, id := range ids {
		rev[id] = a
	}
	return rev
}

// ---- TX ----

type txReplay struct {
	m      *TxRing
	s      *TxState
	invs   []Invariant[*TxState]
	ids    map[uint64]uint32
	rev    []uint64
	strict bool
	st     *RingStats
	ctxq   []uint64 // per slot: the first quadword of the context posted there
}

// isCtxPost: a TX post of a context descriptor (trace.PostContext).
func isCtxPost(e trace.Event) bool {
	return e.Kind == trace.DrvPost && e.Dir == trace.TX && e.Aux&trace.PostContext != 0
}

func (r *txReplay) stats() *RingStats { return r.st }

func (r *txReplay) state() string {
	if r.rev == nil {
		r.rev = reverse(r.ids)
	}
	s := r.s
	// The descriptors in flight that are not data with RS, up to a few.
	var kinds []string
	for i := s.Clean; i != s.TXI && len(kinds) < 8; i = (i + 1) % r.m.N {
		if s.Kind[i] != KindRS {
			kinds = append(kinds, fmt.Sprintf("[%d]=%s", i, s.Kind[i]))
		}
	}
	k := ""
	if len(kinds) > 0 {
		k = " kinds " + strings.Join(kinds, " ")
	}
	return fmt.Sprintf("tdt=%d tdh=%d wb=%d txi=%d clean=%d slots %s%s", s.TDT, s.TDH, s.WB, s.TXI, s.Clean,
		summarizeSlots(s.Slot, s.Desc, r.rev, s.Clean, s.TXI), k)
}

func (r *txReplay) check() string {
	for _, inv := range r.invs {
		if !inv.Holds(r.s) {
			return "invariant " + inv.Name + " violated"
		}
	}
	return ""
}

// catchUp inserts the device steps a driver observation needs when the
// trace records none: fetch and write back, in order, until slot i has DD
// (or, with covered, until an RS descriptor at or after clean has DD).
func (r *txReplay) catchUp(i uint32, covered bool) {
	if r.strict || i >= r.m.N {
		return
	}
	for !(covered && r.m.rsFrom(r.s, r.s.Clean, true) || !covered && r.s.Desc[i].DD) {
		if r.m.DevWriteBack(r.s) || r.m.DevFetch(r.s) {
			r.st.Implied++
			continue
		}
		return
	}
}

func (r *txReplay) step(e trace.Event) string {
	m, s := r.m, r.s
	id := r.ids[e.Buf]
	n := m.N
	if e.Index >= n && e.Kind != trace.DrvTail && e.Kind != trace.DevTailRead && e.Kind != trace.DevHead {
		return fmt.Sprintf("index %d outside the ring of %d descriptors", e.Index, n)
	}
	switch e.Kind {
	case trace.DrvPost:
		if e.Index != s.TXI {
			return fmt.Sprintf("Post: the driver's next slot is %d, not %d", s.TXI, e.Index)
		}
		if e.Aux&trace.PostContext != 0 {
			if m.ctxOpen(s) {
				return fmt.Sprintf("PostCtx: descriptor %d is a context too, with no data descriptor after it", m.prev(s.TXI))
			}
			if !m.writeCtx(s) {
				return fmt.Sprintf("PostCtx: no room for a context and its data descriptor (slot %d, clean=%d)", s.TXI, s.Clean)
			}
			r.ctxq[e.Index] = e.Buf
			r.st.DriverSteps++
			return ""
		}
		if !s.App.Has(id) {
			if !s.Pool.Has(id) {
				return fmt.Sprintf("Post: buffer %#x is already in the ring (posted twice)", e.Buf)
			}
			m.Alloc(s, id)
		}
		k := KindRS
		if e.Aux&trace.PostNoRS != 0 {
			k = KindNoRS
		}
		if !m.PostKind(s, id, k) {
			return fmt.Sprintf("Post: ring full (slot %d is next to clean=%d)", s.TXI, s.Clean)
		}
		r.st.DriverSteps++
	case trace.DrvTail:
		if e.Index == s.TDT {
			return "" // rewriting the same tail is a stutter step
		}
		if e.Index != s.TXI {
			return fmt.Sprintf("WriteTail: tail %d publishes descriptors the driver has not written (filled up to %d)", e.Index, s.TXI)
		}
		m.WriteTail(s)
		r.st.DriverSteps++
	case trace.DrvDDSeen:
		r.catchUp(e.Index, false)
		if !inRange(s.Clean, s.TXI, e.Index, n) || !s.Desc[e.Index].DD {
			return fmt.Sprintf("DD seen on descriptor %d (%s), which the device has not written back", e.Index, s.Kind[e.Index])
		}
	case trace.DrvReclaim:
		r.catchUp(s.Clean, true)
		// A context slot goes with the data descriptor after it, whose
		// buffer the event names.
		if end := m.recEnd(s); e.Index != end {
			return fmt.Sprintf("Reclaim: the next slot to clean is %d, not %d", end, e.Index)
		}
		if s.Slot[e.Index] != id || id == NoBuf {
			return fmt.Sprintf("Reclaim: slot %d holds %#x, not %#x", e.Index, r.addr(s.Slot[e.Index]), e.Buf)
		}
		if !m.Reclaim(s) {
			return fmt.Sprintf("ReuseOnlyAfterDD: no DD on an RS descriptor from %d to the last posted (%d): reclaimed before the device was done",
				e.Index, m.prev(s.TXI))
		}
		r.st.DriverSteps++
	case trace.DevTailRead:
		// Informational: the device's read may precede the driver's store
		// of a tail already recorded.
	case trace.DevFetch:
		if e.Index != s.TDH {
			return fmt.Sprintf("DevFetch: the device's head is %d, not %d", s.TDH, e.Index)
		}
		if s.TDH == s.TDT {
			return fmt.Sprintf("DevFetch: descriptor %d is not the device's (tail %d)", e.Index, s.TDT)
		}
		if m.ownedCtx(s, e.Index) {
			if r.ctxq[e.Index] != e.Buf {
				return fmt.Sprintf("DevFetch: the device read %#x from context descriptor %d, where the driver wrote %#x",
					e.Buf, e.Index, r.ctxq[e.Index])
			}
		} else if s.Slot[e.Index] == NoBuf || s.Desc[e.Index].Buf != id {
			return fmt.Sprintf("DeviceTouchesOwnedOnly: the device read buffer %#x from descriptor %d, where the driver posted %#x",
				e.Buf, e.Index, r.addr(s.Slot[e.Index]))
		}
		m.DevFetch(s)
		r.st.DeviceSteps++
	case trace.DevDMA:
		if !inRange(s.WB, s.TDH, e.Index, n) || s.Slot[e.Index] != id || id == NoBuf {
			return fmt.Sprintf("DeviceTouchesOwnedOnly: DMA from buffer %#x of descriptor %d, which the ring does not hold there", e.Buf, e.Index)
		}
	case trace.DevWriteBack:
		// The device's completions of descriptors without RS (and of
		// contexts) before this one write nothing and are not recorded.
		for s.WB != e.Index && s.WB != s.TDH && s.Kind[s.WB] != KindRS {
			m.DevWriteBack(s)
			r.st.Implied++
		}
		if e.Index != s.WB || s.WB == s.TDH {
			return fmt.Sprintf("DevWriteBack: next write-back is %d (fetched up to %d), not %d", s.WB, s.TDH, e.Index)
		}
		if s.Slot[e.Index] == NoBuf {
			return fmt.Sprintf("DeviceTouchesOwnedOnly: write-back of descriptor %d, which the driver already reclaimed", e.Index)
		}
		if s.Kind[e.Index] != KindRS {
			return fmt.Sprintf("DevWriteBack: descriptor %d has no RS: the device writes nothing back on it", e.Index)
		}
		m.DevWriteBack(s)
		r.st.DeviceSteps++
	case trace.DevHead:
		if e.Index != s.TDH {
			return fmt.Sprintf("head %d, but the device has fetched up to %d", e.Index, s.TDH)
		}
	case trace.DevDrop:
		return "a transmit ring does not drop"
	}
	return ""
}

func (r *txReplay) addr(id uint32) uint64 {
	if id == NoBuf {
		return 0
	}
	if r.rev == nil {
		r.rev = reverse(r.ids)
	}
	return r.rev[id]
}

// ---- RX ----

type rxReplay struct {
	m      *RxRing
	s      *RxState
	invs   []Invariant[*RxState]
	ids    map[uint64]uint32
	rev    []uint64
	strict bool
	st     *RingStats
}

func (r *rxReplay) stats() *RingStats { return r.st }

func (r *rxReplay) addr(id uint32) uint64 {
	if id == NoBuf {
		return 0
	}
	if r.rev == nil {
		r.rev = reverse(r.ids)
	}
	return r.rev[id]
}

func (r *rxReplay) state() string {
	if r.rev == nil {
		r.rev = reverse(r.ids)
	}
	s := r.s
	return fmt.Sprintf("rdt=%d rdh=%d rxi=%d slots %s", s.RDT, s.RDH, s.RXI,
		summarizeSlots(s.Slot, s.Desc, r.rev, s.RXI, s.RDH))
}

func (r *rxReplay) check() string {
	for _, inv := range r.invs {
		if !inv.Holds(r.s) {
			return "invariant " + inv.Name + " violated"
		}
	}
	return ""
}

func (r *rxReplay) catchUp(i uint32) {
	if r.strict {
		return
	}
	for !r.s.Desc[i].DD && r.m.DevReceive(r.s) {
		r.st.Implied++
	}
}

func (r *rxReplay) deviceOwned(e trace.Event, id uint32) string {
	s := r.s
	if e.Index != s.RDH {
		return fmt.Sprintf("the device's head is %d, not %d", s.RDH, e.Index)
	}
	if s.RDH == s.RDT {
		return fmt.Sprintf("DeviceTouchesOwnedOnly: descriptor %d is not the device's (ring full, tail %d)", e.Index, s.RDT)
	}
	if s.Slot[e.Index] == NoBuf || s.Desc[e.Index].Buf != id || s.Desc[e.Index].DD {
		return fmt.Sprintf("DeviceTouchesOwnedOnly: the device used buffer %#x at descriptor %d, where the ring holds %#x",
			e.Buf, e.Index, r.addr(s.Slot[e.Index]))
	}
	return ""
}

func (r *rxReplay) step(e trace.Event) string {
	m, s := r.m, r.s
	id := r.ids[e.Buf]
	n := m.N
	if e.Index >= n && e.Kind != trace.DevTailRead {
		return fmt.Sprintf("index %d outside the ring of %d descriptors", e.Index, n)
	}
	switch e.Kind {
	case trace.DrvPost:
		if e.Index != s.RXI {
			return fmt.Sprintf("Refill: the driver's next slot is %d, not %d (a slot the device owns?)", s.RXI, e.Index)
		}
		if cur := s.Slot[e.Index]; cur != NoBuf {
			// Re-posting the same buffer after DD (a dropped frame): the
			// buffer is handed up and freed, unobserved, then refilled.
			if cur != id || !s.Desc[e.Index].DD {
				return fmt.Sprintf("ReuseOnlyAfterDD: slot %d still holds %#x without DD; the driver overwrote it with %#x",
					e.Index, r.addr(cur), e.Buf)
			}
			m.HandUp(s)
		}
		if s.App.Has(id) {
			m.AppFree(s, id)
		}
		if !m.Refill(s, id) {
			return fmt.Sprintf("Refill: buffer %#x is already in the ring", e.Buf)
		}
		r.st.DriverSteps++
	case trace.DrvTail:
		if e.Index == s.RDT {
			return ""
		}
		if !m.WriteTail(s) || s.RDT != e.Index {
			return fmt.Sprintf("WriteTail: tail %d, but the last filled slot is %d", e.Index, m.prev(s.RXI))
		}
		r.st.DriverSteps++
	case trace.DrvDDSeen:
		r.catchUp(e.Index)
		if e.Index != s.RXI || s.Slot[e.Index] == NoBuf || !s.Desc[e.Index].DD {
			return fmt.Sprintf("DD seen on descriptor %d, which the device has not written back (next to check: %d)", e.Index, s.RXI)
		}
	case trace.DrvReclaim:
		r.catchUp(e.Index)
		if e.Index != s.RXI || s.Slot[e.Index] != id || id == NoBuf {
			return fmt.Sprintf("HandUp: slot %d (next to check %d) holds %#x, not %#x", e.Index, s.RXI, r.addr(s.Slot[e.Index]), e.Buf)
		}
		if !m.HandUp(s) {
			return fmt.Sprintf("HandUp: descriptor %d has no DD", e.Index)
		}
		r.st.DriverSteps++
	case trace.DevTailRead:
	case trace.DevFetch, trace.DevDMA:
		if reason := r.deviceOwned(e, id); reason != "" {
			return "DevReceive: " + reason
		}
	case trace.DevWriteBack:
		if reason := r.deviceOwned(e, s.Desc[e.Index].Buf); reason != "" {
			return "DevReceive: " + reason
		}
		m.DevReceive(s)
		r.st.DeviceSteps++
	case trace.DevHead:
		if e.Index != s.RDH {
			return fmt.Sprintf("head %d, but the device has written back up to %d", e.Index, s.RDH)
		}
	case trace.DevDrop:
		// The device decides "full" from the tail it last read, which may
		// be older than the model's: a drop changes no ring state.
	}
	return ""
}
