package models

import (
	"fmt"
	"slices"
)

// Bug names a deliberately broken variant of a spec (the TLA+ constant Bug).
type Bug string

// The broken variants, with the same names as in the TLA+ configs.
const (
	BugNone             Bug = "none"
	BugReclaimWithoutDD Bug = "reclaim_without_dd"
	BugTailBeforeDesc   Bug = "tail_before_desc"
	BugDoublePost       Bug = "double_post"
	BugWrapOffByOne     Bug = "wrap_off_by_one"
	BugRefillOwnedSlot  Bug = "refill_owned_slot"
	// BugLenBeforeDD: RxRing.tla with Split, the driver loads the length
	// word before it checks DD.
	BugLenBeforeDD Bug = "len_before_dd"
	BugDoubleFree  Bug = "double_free"
	// BugTailBeforeCmdWord: TxRing.tla with Split, TDT written between the
	// descriptor's address store and its command-word store.
	BugTailBeforeCmdWord Bug = "tail_before_cmd_word"
	// BugReclaimPastRS: TxRing.tla with "nors", cleaning trusts any DD'ed
	// RS descriptor in the ring, also a stale one behind clean.
	BugReclaimPastRS Bug = "reclaim_past_rs"
	// BugCtxBuf: TxRing.tla with "ctx", the data descriptor's buffer is
	// recorded in the slot of the context descriptor before it as well.
	BugCtxBuf Bug = "ctx_buf"
)

// DescKind is the kind of a TX descriptor (TxRing.tla's kind).
type DescKind uint8

// The kinds, TxRing.tla's "rs", "nors" and "ctx".
const (
	// KindRS: a data descriptor with RS (datasheet 7.2.3.2.4): the device
	// writes DD back on it.
	KindRS DescKind = iota
	// KindNoRS: a data descriptor without RS (7.2.3.5.1, WTHRESH 0): no DD;
	// a later RS descriptor's DD tells the driver it is done.
	KindNoRS
	// KindCtx: an advanced context descriptor (7.2.3.2.3): no buffer,
	// nothing written back.
	KindCtx
)

func (k DescKind) String() string {
	switch k {
	case KindRS:
		return "rs"
	case KindNoRS:
		return "nors"
	case KindCtx:
		return "ctx"
	}
	return fmt.Sprintf("DescKind(%d)", uint8(k))
}

// Desc is a descriptor in memory: the buffer it points at and its DD bit.
type Desc struct {
	Buf uint32
	DD  bool
}

// TxState holds TxRing.tla's variables.
type TxState struct {
	Desc  []Desc
	Slot  []uint32
	TDT   uint32
	TDH   uint32
	WB    uint32
	TXI   uint32
	Clean uint32
	Pool  BufSet
	App   BufSet
	Order []uint32
	// CmdW: the command word was stored for the slot's buffer; Pend
	// (Split): the slot whose command-word store is due, N for none.
	CmdW []bool
	Pend uint32
	// Kind: the kind of the descriptor last written into each slot.
	Kind []DescKind
}

// Clone returns a deep copy.
func (s *TxState) Clone() *TxState {
	t := *s
	t.Desc = slices.Clone(s.Desc)
	t.Slot = slices.Clone(s.Slot)
	t.Pool = s.Pool.Clone()
	t.App = s.App.Clone()
	t.Order = slices.Clone(s.Order)
	t.CmdW = slices.Clone(s.CmdW)
	t.Kind = slices.Clone(s.Kind)
	return &t
}

func (s *TxState) String() string {
	return fmt.Sprintf("desc=%v slot=%v tdt=%d tdh=%d wb=%d txi=%d clean=%d pool=%v app=%v order=%v cmdw=%v pend=%d kind=%v",
		s.Desc, s.Slot, s.TDT, s.TDH, s.WB, s.TXI, s.Clean, setList(s.Pool), setList(s.App), s.Order, s.CmdW, s.Pend, s.Kind)
}

func setList(s BufSet) []uint32 {
	var out []uint32
	for b := range s.All() {
		out = append(out, b)
	}
	return out
}

// TxRing holds TxRing.tla's constants: N slots, buffers 1..B, the variant.
type TxRing struct {
	N   uint32
	B   uint32
	Bug Bug
	// Split: the descriptor write is two stores (address, command word).
	Split bool
	// NoRS and Ctx: Kinds holds "nors" and "ctx" besides "rs" (Split
	// only with neither).
	NoRS, Ctx bool
}

// hasKind reports k \in Kinds.
func (m *TxRing) hasKind(k DescKind) bool {
	return k == KindRS || k == KindNoRS && m.NoRS || k == KindCtx && m.Ctx
}

// rsFrom is RSFrom(i) and, with dd, DDFrom(i): an RS descriptor (with DD)
// in [i, txi).
func (m *TxRing) rsFrom(s *TxState, i uint32, dd bool) bool {
	n := m.N
	for k, to := uint32(0), dist(i, s.TXI, n); k < to; k++ {
		j := (i + k) % n
		if s.Kind[j] == KindRS && (!dd || s.Desc[j].DD) {
			return true
		}
	}
	return false
}

func (m *TxRing) prev(i uint32) uint32 { return (i + m.N - 1) % m.N }

// ctxOpen is CtxOpen: the last descriptor posted is a context.
func (m *TxRing) ctxOpen(s *TxState) bool {
	return s.TXI != s.Clean && s.Kind[m.prev(s.TXI)] == KindCtx
}

func (m *TxRing) devNext(i uint32) uint32 { return (i + 1) % m.N }

func (m *TxRing) drvNext(i uint32) uint32 {
	if m.Bug == BugWrapOffByOne {
		if i == m.N {
			return 0
		}
		return i + 1
	}
	return (i + 1) % m.N
}

// Init is TxRing.tla's Init.
func (m *TxRing) Init() *TxState {
	return &TxState{
		Desc: make([]Desc, m.N),
		Slot: make([]uint32, m.N),
		Pool: FullBufSet(m.B),
		App:  NewBufSet(m.B),
		CmdW: make([]bool, m.N),
		Pend: m.N,
		Kind: make([]DescKind, m.N), // KindRS
	}
}

// Alloc(b): the application takes b from the mempool.
func (m *TxRing) Alloc(s *TxState, b uint32) bool {
	if !s.Pool.Has(b) {
		return false
	}
	s.Pool.Del(b)
	s.App.Add(b)
	return true
}

// Free(b): the application frees a buffer it did not send.
func (m *TxRing) Free(s *TxState, b uint32) bool {
	if !s.App.Has(b) {
		return false
	}
	s.App.Del(b)
	s.Pool.Add(b)
	return true
}

// Post(b): TxBatch fills descriptor txi with buffer b, RS set.
func (m *TxRing) Post(s *TxState, b uint32) bool { return m.PostKind(s, b, KindRS) }

// PostKind is Post(b, k): TxBatch fills descriptor txi with buffer b in a
// data descriptor of kind k (KindRS or KindNoRS).
func (m *TxRing) PostKind(s *TxState, b uint32, k DescKind) bool {
	if !s.App.Has(b) || k == KindCtx || !m.hasKind(k) || m.drvNext(s.TXI) == s.Clean || s.Pend != m.N {
		return false
	}
	ctxBuf := m.Bug == BugCtxBuf && m.ctxOpen(s)
	if s.TXI < m.N { // [f EXCEPT ![i] = v] leaves f unchanged outside DOMAIN f
		s.Kind[s.TXI] = k
		if ctxBuf {
			s.Slot[(s.TXI+m.N-1)%m.N] = b
		}
		if m.Split {
			s.Desc[s.TXI].Buf = b // the address word; DD is in the other
			s.CmdW[s.TXI] = false
		} else {
			s.Desc[s.TXI] = Desc{Buf: b}
			s.CmdW[s.TXI] = true
		}
		s.Slot[s.TXI] = b
	}
	if m.Split {
		s.Pend = s.TXI
	}
	if m.Bug != BugDoublePost {
		s.App.Del(b)
	}
	s.TXI = m.drvNext(s.TXI)
	s.Order = append(s.Order, b)
	return true
}

// PostCtx: TxBatch writes a context descriptor into slot txi for the data
// descriptor it posts next (a packet to send, room for both).
func (m *TxRing) PostCtx(s *TxState) bool {
	return s.App.Len() != 0 && m.writeCtx(s)
}

// writeCtx is WriteCtx, PostCtx without its guard on the application (for
// the trace replay, which composes the application's steps).
func (m *TxRing) writeCtx(s *TxState) bool {
	if !m.Ctx || m.drvNext(s.TXI) == s.Clean || m.drvNext(m.drvNext(s.TXI)) == s.Clean || m.ctxOpen(s) {
		return false
	}
	if s.TXI < m.N {
		s.Desc[s.TXI] = Desc{}
		s.Kind[s.TXI] = KindCtx
		s.CmdW[s.TXI] = true
	}
	s.TXI = m.drvNext(s.TXI)
	return true
}

// PostCmd (Split): the command-word store (length, EOP|RS, DD clear) of
// the descriptor whose address was stored.
func (m *TxRing) PostCmd(s *TxState) bool {
	if !m.Split || s.Pend == m.N {
		return false
	}
	s.Desc[s.Pend].DD = false
	s.CmdW[s.Pend] = true
	s.Pend = m.N
	return true
}

// WriteTail: TDT = txi (with no command store due, but in the broken
// variant).
func (m *TxRing) WriteTail(s *TxState) bool {
	if s.TDT == s.TXI || (s.Pend != m.N && m.Bug != BugTailBeforeCmdWord) {
		return false
	}
	s.TDT = s.TXI
	return true
}

// WriteTailEarly: the broken variant's tail write ahead of the descriptor.
func (m *TxRing) WriteTailEarly(s *TxState) bool {
	if m.Bug != BugTailBeforeDesc || s.TDT != s.TXI || m.drvNext(s.TXI) == s.Clean || s.Pend != m.N {
		return false
	}
	s.TDT = m.drvNext(s.TXI)
	return true
}

// DevFetch: the device fetches descriptor tdh and reads its frame.
func (m *TxRing) DevFetch(s *TxState) bool {
	if s.TDH == s.TDT {
		return false
	}
	s.TDH = m.devNext(s.TDH)
	return true
}

// DevWriteBack: the device is done with descriptor wb and sets DD on it
// if it has RS.
func (m *TxRing) DevWriteBack(s *TxState) bool {
	if s.WB == s.TDH {
		return false
	}
	if s.Kind[s.WB] == KindRS {
		s.Desc[s.WB].DD = true
	}
	s.WB = m.devNext(s.WB)
	return true
}

// recEnd is RecEnd: the slot whose buffer Reclaim frees, the data
// descriptor after a context at clean.
func (m *TxRing) recEnd(s *TxState) uint32 {
	if s.Kind[s.Clean] == KindCtx {
		return m.drvNext(s.Clean)
	}
	return s.Clean
}

// Reclaim: once an RS descriptor at or after slot clean has DD, the
// buffer of slot clean returns to the pool; a context slot goes together
// with the data descriptor after it.
func (m *TxRing) Reclaim(s *TxState) bool {
	if s.Clean == s.TXI || s.Clean >= m.N || s.Pend != m.N {
		return false
	}
	end := m.recEnd(s)
	if end == s.TXI {
		return false
	}
	if !m.rsFrom(s, s.Clean, true) && m.Bug != BugReclaimWithoutDD && !(m.Bug == BugReclaimPastRS && anyDD(s)) {
		return false
	}
	b := s.Slot[end]
	if b != NoBuf {
		s.Pool.Add(b)
	}
	s.Slot[s.Clean], s.CmdW[s.Clean] = NoBuf, false
	if end < m.N {
		s.Slot[end], s.CmdW[end] = NoBuf, false
	}
	s.Clean = m.drvNext(end)
	s.Order = removeAll(s.Order, b)
	return true
}

// anyDD: some RS descriptor in the ring memory has DD (stale ones too).
func anyDD(s *TxState) bool {
	for j, d := range s.Desc {
		if d.DD && s.Kind[j] == KindRS {
			return true
		}
	}
	return false
}

// Next enumerates TxRing.tla's Next in the order of its disjuncts.
func (m *TxRing) Next(s *TxState, yield func(string, *TxState)) {
	for b := uint32(1); b <= m.B; b++ {
		try(s, func(t *TxState) bool { return m.Alloc(t, b) }, "Alloc", yield)
		try(s, func(t *TxState) bool { return m.Free(t, b) }, "Free", yield)
		try(s, func(t *TxState) bool { return m.Post(t, b) }, "Post", yield)
		if m.NoRS {
			try(s, func(t *TxState) bool { return m.PostKind(t, b, KindNoRS) }, "PostNoRS", yield)
		}
	}
	try(s, m.PostCtx, "PostCtx", yield)
	try(s, m.PostCmd, "PostCmd", yield)
	try(s, m.WriteTail, "WriteTail", yield)
	try(s, m.WriteTailEarly, "WriteTailEarly", yield)
	try(s, m.DevFetch, "DevFetch", yield)
	try(s, m.DevWriteBack, "DevWriteBack", yield)
	try(s, m.Reclaim, "Reclaim", yield)
}

type cloner[S any] interface{ Clone() S }

func try[S cloner[S]](s S, act func(S) bool, name string, yield func(string, S)) {
	t := s.Clone()
	if act(t) {
		yield(name, t)
	}
}

// AppendKey encodes s canonically.
func (m *TxRing) AppendKey(b []byte, s *TxState) []byte {
	for _, d := range s.Desc {
		b = appendU32(b, d.Buf)
		if d.DD {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	for _, x := range s.Slot {
		b = appendU32(b, x)
	}
	for _, x := range [...]uint32{s.TDT, s.TDH, s.WB, s.TXI, s.Clean} {
		b = appendU32(b, x)
	}
	b = appendSet(b, s.Pool)
	b = appendSet(b, s.App)
	b = appendU32(b, uint32(len(s.Order)))
	for _, x := range s.Order {
		b = appendU32(b, x)
	}
	for _, w := range s.CmdW {
		if w {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	for _, k := range s.Kind {
		b = append(b, byte(k))
	}
	return appendU32(b, s.Pend)
}

// ringSeq is RingSeq(start): the non-empty slots read cyclically from start.
func ringSeq(slot []uint32, start, n uint32) []uint32 {
	out := make([]uint32, 0, n)
	for k := uint32(0); k < n; k++ {
		if x := slot[(start+k)%n]; x != NoBuf {
			out = append(out, x)
		}
	}
	return out
}

// ringSeqEqual reports order = RingSeq(start) without building RingSeq.
func ringSeqEqual(order, slot []uint32, start, n uint32) bool {
	k := 0
	i := start % n
	for j := uint32(0); j < n; j++ {
		if x := slot[i]; x != NoBuf {
			if k >= len(order) || order[k] != x {
				return false
			}
			k++
		}
		if i++; i == n {
			i = 0
		}
	}
	return k == len(order)
}

// TypeOK is TxRing.tla's TypeOK.
func (m *TxRing) TypeOK(s *TxState) bool {
	for i := range s.Desc {
		if s.Desc[i].Buf > m.B || s.Slot[i] > m.B {
			return false
		}
	}
	for _, x := range [...]uint32{s.TDT, s.TDH, s.WB, s.TXI, s.Clean} {
		if x >= m.N {
			return false
		}
	}
	if !s.Pool.Within(m.B) || !s.App.Within(m.B) {
		return false
	}
	for _, x := range s.Order {
		if x == NoBuf || x > m.B {
			return false
		}
	}
	for _, k := range s.Kind {
		if !m.hasKind(k) {
			return false
		}
	}
	return len(s.CmdW) == int(m.N) && s.Pend <= m.N
}

// ContextNoBuf: a context slot has no buffer, in the driver's record or the
// descriptor, and never gets DD.
func (m *TxRing) ContextNoBuf(s *TxState) bool {
	for i, k := range s.Kind {
		if k == KindCtx && (s.Slot[i] != NoBuf || s.Desc[i].Buf != NoBuf || s.Desc[i].DD) {
			return false
		}
	}
	return true
}

// ReclaimedCovered: the driver reclaimed only descriptors covered by a
// DD'ed RS descriptor at or after them (the last slot reclaimed, clean-1,
// is that descriptor, or the covering one is still in the ring, or nothing
// was reclaimed there yet).
func (m *TxRing) ReclaimedCovered(s *TxState) bool {
	last := (s.Clean + m.N - 1) % m.N
	// The O(1) disjuncts first: the trace replay checks this at every
	// event, and cleaning usually stops right after a DD'ed RS descriptor.
	return s.Kind[last] == KindRS && (s.Desc[last].DD || s.Desc[last].Buf == NoBuf) ||
		m.rsFrom(s, s.Clean, true)
}

// FetchedComplete: the device has fetched only descriptors whose command
// word was stored (every slot in [wb, tdh)).
func (m *TxRing) FetchedComplete(s *TxState) bool {
	for i, n := s.WB%m.N, m.N; i != s.TDH%n; {
		if !s.CmdW[i] {
			return false
		}
		if i++; i == n {
			i = 0
		}
	}
	return true
}

// Conservation: every buffer is free, in exactly one slot, or in the app.
func (m *TxRing) Conservation(s *TxState) bool { return conservation(m.B, s.Pool, s.App, s.Slot) }

func conservation(nb uint32, pool, app BufSet, slot []uint32) bool {
	// Each b in 1..nb exactly once: no buffer in two places, and as many
	// places (counting only buffers in 1..nb) as buffers. Linear, so that
	// the trace replay can afford it at every event.
	var small [8]uint64
	seen := BufSet(small[:])
	if nb/64+1 > uint32(len(small)) {
		seen = NewBufSet(nb)
	} else {
		seen = seen[:nb/64+1]
	}
	in := func(b uint32) bool { return b != NoBuf && b <= nb }
	count := uint32(0)
	for _, x := range slot {
		if !in(x) {
			continue
		}
		if seen.Has(x) || pool.Has(x) || app.Has(x) {
			return false
		}
		seen.Add(x)
		count++
	}
	for b := range pool.All() {
		if in(b) {
			if app.Has(b) {
				return false
			}
			count++
		}
	}
	for b := range app.All() {
		if in(b) {
			count++
		}
	}
	return count == nb
}

// IndexOrder: clean <= wb <= tdh <= tdt <= txi cyclically.
func (m *TxRing) IndexOrder(s *TxState) bool {
	n := m.N
	return dist(s.Clean, s.WB, n)+dist(s.WB, s.TDH, n)+dist(s.TDH, s.TDT, n)+dist(s.TDT, s.TXI, n) == dist(s.Clean, s.TXI, n)
}

// DescriptorState: slots hold buffers exactly on [clean, txi) (but for
// contexts), descriptors point at them, DD exactly on the RS descriptors
// of [clean, wb).
func (m *TxRing) DescriptorState(s *TxState) bool {
	n := m.N
	if s.Clean < n {
		// Walking from clean (k = Dist(clean, i)): the same clauses
		// without a modulo per slot, as the trace replay checks them at
		// every event.
		filled, written := dist(s.Clean, s.TXI, n), dist(s.Clean, s.WB, n)
		i := s.Clean
		for k := uint32(0); k < n; k++ {
			full, rs := s.Slot[i] != NoBuf, s.Kind[i] == KindRS
			if full != (k < filled && s.Kind[i] != KindCtx) ||
				full && (s.Desc[i].Buf != s.Slot[i] || i != s.Pend && s.Desc[i].DD != (rs && k < written)) {
				return false
			}
			if i++; i == n {
				i = 0
			}
		}
		return true
	}
	for i := uint32(0); i < m.N; i++ {
		full, rs := s.Slot[i] != NoBuf, s.Kind[i] == KindRS
		if full != (inRange(s.Clean, s.TXI, i, m.N) && s.Kind[i] != KindCtx) {
			return false
		}
		if full && (s.Desc[i].Buf != s.Slot[i] || i != s.Pend && s.Desc[i].DD != (rs && inRange(s.Clean, s.WB, i, m.N))) {
			return false
		}
	}
	return true
}

// FIFO: order = RingSeq(clean).
func (m *TxRing) FIFO(s *TxState) bool { return ringSeqEqual(s.Order, s.Slot, s.Clean, m.N) }

// ownedCtx is OwnedCtx(i): a context slot in [clean, txi).
func (m *TxRing) ownedCtx(s *TxState, i uint32) bool {
	return s.Kind[i] == KindCtx && inRange(s.Clean, s.TXI, i, m.N)
}

// DeviceTouchesOwnedOnly is the action property of the same name.
func (m *TxRing) DeviceTouchesOwnedOnly(s, t *TxState) bool {
	if t.TDH != s.TDH && (s.Slot[s.TDH] == NoBuf && !m.ownedCtx(s, s.TDH) || s.Desc[s.TDH].Buf != s.Slot[s.TDH]) {
		return false
	}
	if t.WB != s.WB && s.Slot[s.WB] == NoBuf && !m.ownedCtx(s, s.WB) {
		return false
	}
	return true
}

// ReuseOnlyAfterDD is the action property of the same name: a buffer
// leaves its slot only after DD on an RS descriptor at or after it.
func (m *TxRing) ReuseOnlyAfterDD(s, t *TxState) bool {
	for i := range s.Slot {
		if s.Slot[i] != NoBuf && t.Slot[i] != s.Slot[i] && !m.rsFrom(s, uint32(i), true) {
			return false
		}
	}
	return true
}

// Spec returns the explorer's view of the TxRing spec.
func (m *TxRing) Spec() Spec[*TxState] {
	return Spec[*TxState]{
		Name:       "TxRing",
		Init:       func() []*TxState { return []*TxState{m.Init()} },
		Next:       m.Next,
		AppendKey:  m.AppendKey,
		Invariants: m.invariants(),
		Actions: []ActionProperty[*TxState]{
			{"DeviceTouchesOwnedOnly", m.DeviceTouchesOwnedOnly}, {"ReuseOnlyAfterDD", m.ReuseOnlyAfterDD},
		},
		Fair: []string{"WriteTail", "DevFetch", "DevWriteBack", "Reclaim", "PostCmd"},
		Liveness: []LeadsTo[*TxState]{{
			Name:  "EventuallyReturned",
			Count: int(m.B),
			Pending: func(s *TxState, k int) bool {
				i := slices.Index(s.Slot, uint32(k+1))
				return i >= 0 && m.rsFrom(s, uint32(i), false)
			},
		}},
	}
}

// invariants lists the invariants in the order of the configs' INVARIANTS:
// the two about the new kinds come last with Kinds = {"rs"} (the configs
// that were there before them) and right after TypeOK otherwise
// (TxRing_ctx*.cfg, TxRing_rs.cfg, their bug variants), so that the first
// violated one is the one TLC names.
func (m *TxRing) invariants() []Invariant[*TxState] {
	old := []Invariant[*TxState]{
		{"TypeOK", m.TypeOK}, {"Conservation", m.Conservation}, {"IndexOrder", m.IndexOrder},
		{"DescriptorState", m.DescriptorState}, {"FIFO", m.FIFO}, {"FetchedComplete", m.FetchedComplete},
	}
	kinds := []Invariant[*TxState]{{"ContextNoBuf", m.ContextNoBuf}, {"ReclaimedCovered", m.ReclaimedCovered}}
	if !m.NoRS && !m.Ctx {
		return append(old, kinds...)
	}
	return slices.Concat(old[:1], kinds, old[1:])
}

// reuseOnlyAfterDD: a buffer leaves its slot only after its own DD
// (RxRing.tla's ReuseOnlyAfterDD).
func reuseOnlyAfterDD(before, after []uint32, desc []Desc) bool {
	for i := range before {
		if before[i] != NoBuf && after[i] != before[i] && !desc[i].DD {
			return false
		}
	}
	return true
}
