package models

import (
	"fmt"
	"slices"
)

// RxState holds RxRing.tla's variables.
type RxState struct {
	Desc  []Desc
	Slot  []uint32
	RDT   uint32
	RDH   uint32
	RXI   uint32
	Pool  BufSet
	App   BufSet
	Order []uint32
}

// Clone returns a deep copy.
func (s *RxState) Clone() *RxState {
	t := *s
	t.Desc = slices.Clone(s.Desc)
	t.Slot = slices.Clone(s.Slot)
	t.Pool = s.Pool.Clone()
	t.App = s.App.Clone()
	t.Order = slices.Clone(s.Order)
	return &t
}

func (s *RxState) String() string {
	return fmt.Sprintf("desc=%v slot=%v rdt=%d rdh=%d rxi=%d pool=%v app=%v order=%v",
		s.Desc, s.Slot, s.RDT, s.RDH, s.RXI, setList(s.Pool), setList(s.App), s.Order)
}

// RxRing holds RxRing.tla's constants.
type RxRing struct {
	N   uint32
	B   uint32
	Bug Bug
}

func (m *RxRing) devNext(i uint32) uint32 { return (i + 1) % m.N }

func (m *RxRing) drvNext(i uint32) uint32 {
	if m.Bug == BugWrapOffByOne {
		if i == m.N {
			return 0
		}
		return i + 1
	}
	return (i + 1) % m.N
}

func (m *RxRing) prev(i uint32) uint32 { return (i + m.N - 1) % m.N }

func (m *RxRing) refillSlot(s *RxState) uint32 {
	if m.Bug == BugRefillOwnedSlot {
		return m.drvNext(s.RXI)
	}
	return s.RXI
}

// Init is RxRing.tla's Init: an empty ring, every buffer in the pool.
func (m *RxRing) Init() *RxState {
	return &RxState{
		Desc: make([]Desc, m.N),
		Slot: make([]uint32, m.N),
		Pool: FullBufSet(m.B),
		App:  NewBufSet(m.B),
	}
}

// DevReceive: the device fills the buffer at rdh and writes back DD.
func (m *RxRing) DevReceive(s *RxState) bool {
	if s.RDH == s.RDT {
		return false
	}
	s.Desc[s.RDH].DD = true
	s.RDH = m.devNext(s.RDH)
	return true
}

// HandUp: RxBatch saw DD on rxi and hands the buffer up.
func (m *RxRing) HandUp(s *RxState) bool {
	if s.RXI >= m.N || s.Slot[s.RXI] == NoBuf || !s.Desc[s.RXI].DD {
		return false
	}
	b := s.Slot[s.RXI]
	s.App.Add(b)
	s.Slot[s.RXI] = NoBuf
	s.Order = removeAll(s.Order, b)
	return true
}

// Refill(b): fill the empty slot rxi with buffer b.
func (m *RxRing) Refill(s *RxState, b uint32) bool {
	if !s.Pool.Has(b) || s.RXI >= m.N || s.Slot[s.RXI] != NoBuf {
		return false
	}
	if i := m.refillSlot(s); i < m.N {
		s.Desc[i] = Desc{Buf: b}
		s.Slot[i] = b
	}
	s.Pool.Del(b)
	s.RXI = m.drvNext(s.RXI)
	s.Order = append(s.Order, b)
	return true
}

// WriteTail: RDT = the last filled slot.
func (m *RxRing) WriteTail(s *RxState) bool {
	t := m.prev(s.RXI)
	if t == s.RDT || s.Slot[t] == NoBuf {
		return false
	}
	s.RDT = t
	return true
}

// AppFree(b): the application frees a received buffer.
func (m *RxRing) AppFree(s *RxState, b uint32) bool {
	if !s.App.Has(b) {
		return false
	}
	s.App.Del(b)
	s.Pool.Add(b)
	return true
}

// Next enumerates RxRing.tla's Next.
func (m *RxRing) Next(s *RxState, yield func(string, *RxState)) {
	try(s, m.DevReceive, "DevReceive", yield)
	try(s, m.HandUp, "HandUp", yield)
	try(s, m.WriteTail, "WriteTail", yield)
	for b := uint32(1); b <= m.B; b++ {
		try(s, func(t *RxState) bool { return m.Refill(t, b) }, "Refill", yield)
		try(s, func(t *RxState) bool { return m.AppFree(t, b) }, "AppFree", yield)
	}
}

// AppendKey encodes s canonically.
func (m *RxRing) AppendKey(b []byte, s *RxState) []byte {
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
	b = appendU32(appendU32(appendU32(b, s.RDT), s.RDH), s.RXI)
	b = appendSet(b, s.Pool)
	b = appendSet(b, s.App)
	b = appendU32(b, uint32(len(s.Order)))
	for _, x := range s.Order {
		b = appendU32(b, x)
	}
	return b
}

// TypeOK is RxRing.tla's TypeOK.
func (m *RxRing) TypeOK(s *RxState) bool {
	for i := range s.Desc {
		if s.Desc[i].Buf > m.B || s.Slot[i] > m.B {
			return false
		}
	}
	if s.RDT >= m.N || s.RDH >= m.N || s.RXI >= m.N || !s.Pool.Within(m.B) || !s.App.Within(m.B) {
		return false
	}
	for _, x := range s.Order {
		if x == NoBuf || x > m.B {
			return false
		}
	}
	return true
}

// Conservation: every buffer is free, in exactly one slot, or in the app.
func (m *RxRing) Conservation(s *RxState) bool { return conservation(m.B, s.Pool, s.App, s.Slot) }

// IndexOrder: rxi <= rdh <= rdt cyclically.
func (m *RxRing) IndexOrder(s *RxState) bool {
	return dist(s.RXI, s.RDH, m.N)+dist(s.RDH, s.RDT, m.N) == dist(s.RXI, s.RDT, m.N)
}

// DescriptorState is RxRing.tla's DescriptorState.
func (m *RxRing) DescriptorState(s *RxState) bool {
	n := m.N
	if s.RXI < n {
		// Walking from rxi (k = Dist(rxi, i)): the same clauses without a
		// modulo per slot, as the trace replay checks them at every event.
		dh := dist(s.RXI, s.RDH, n)
		w := dist(s.RDH, s.RDT, n)
		i, filledSeen := s.RXI, false
		for k := uint32(0); k < n; k++ {
			kk := k + n - dh // Dist(rdh, i) + n or + 0
			if kk >= n {
				kk -= n
			}
			if s.Slot[i] != NoBuf {
				filledSeen = true
				if s.Desc[i].Buf != s.Slot[i] || s.Desc[i].DD != (k < dh) {
					return false
				}
			} else if filledSeen || kk < w {
				return false
			}
			if i++; i == n {
				i = 0
			}
		}
		return true
	}
	for i := uint32(0); i < n; i++ {
		if s.Slot[i] != NoBuf {
			if s.Desc[i].Buf != s.Slot[i] || s.Desc[i].DD != inRange(s.RXI, s.RDH, i, n) {
				return false
			}
		}
		if inRange(s.RDH, s.RDT, i, n) && s.Slot[i] == NoBuf {
			return false
		}
	}
	// The empty slots are a run starting at rxi: walking from rxi, no
	// empty slot after a filled one (linear form of the spec's clause).
	filled := false
	for k := uint32(0); k < n; k++ {
		if s.Slot[(s.RXI+k)%n] != NoBuf {
			filled = true
		} else if filled {
			return false
		}
	}
	return true
}

// FIFO: order = RingSeq(rxi).
func (m *RxRing) FIFO(s *RxState) bool { return ringSeqEqual(s.Order, s.Slot, s.RXI, m.N) }

// DeviceTouchesOwnedOnly is the action property of the same name.
func (m *RxRing) DeviceTouchesOwnedOnly(s, t *RxState) bool {
	if t.RDH == s.RDH {
		return true
	}
	i := s.RDH
	return s.Slot[i] != NoBuf && s.Desc[i].Buf == s.Slot[i] && !s.Desc[i].DD
}

// ReuseOnlyAfterDD is the action property of the same name.
func (m *RxRing) ReuseOnlyAfterDD(s, t *RxState) bool {
	return reuseOnlyAfterDD(s.Slot, t.Slot, s.Desc)
}

// Spec returns the explorer's view of the RxRing spec.
func (m *RxRing) Spec() Spec[*RxState] {
	return Spec[*RxState]{
		Name:      "RxRing",
		Init:      func() []*RxState { return []*RxState{m.Init()} },
		Next:      m.Next,
		AppendKey: m.AppendKey,
		Invariants: []Invariant[*RxState]{
			{"TypeOK", m.TypeOK}, {"Conservation", m.Conservation}, {"IndexOrder", m.IndexOrder},
			{"DescriptorState", m.DescriptorState}, {"FIFO", m.FIFO},
		},
		Actions: []ActionProperty[*RxState]{
			{"DeviceTouchesOwnedOnly", m.DeviceTouchesOwnedOnly}, {"ReuseOnlyAfterDD", m.ReuseOnlyAfterDD},
		},
		Fair: []string{"DevReceive", "HandUp", "WriteTail", "Refill", "AppFree"},
		Liveness: []LeadsTo[*RxState]{{
			Name:  "EventuallyReturned",
			Count: int(m.B),
			Pending: func(s *RxState, k int) bool {
				return slices.Contains(s.Slot, uint32(k+1))
			},
		}},
	}
}
