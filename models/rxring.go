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
	// Split's variables: the length word of each slot holds this frame's
	// length (WLen); status_first's slot whose length store is still due
	// (Lag, N for none); what the driver has read of rxi (RDD, RLen).
	WLen []bool
	Lag  uint32
	RDD  bool
	RLen RxLen
}

// RxLen is what the driver read of a descriptor's length word (rlen).
type RxLen uint8

// The values of rlen.
const (
	LenNone RxLen = iota
	LenStale
	LenFresh
)

// Clone returns a deep copy.
func (s *RxState) Clone() *RxState {
	t := *s
	t.Desc = slices.Clone(s.Desc)
	t.Slot = slices.Clone(s.Slot)
	t.Pool = s.Pool.Clone()
	t.App = s.App.Clone()
	t.Order = slices.Clone(s.Order)
	t.WLen = slices.Clone(s.WLen)
	return &t
}

func (s *RxState) String() string {
	return fmt.Sprintf("desc=%v slot=%v rdt=%d rdh=%d rxi=%d pool=%v app=%v order=%v wlen=%v lag=%d rdd=%v rlen=%d",
		s.Desc, s.Slot, s.RDT, s.RDH, s.RXI, setList(s.Pool), setList(s.App), s.Order, s.WLen, s.Lag, s.RDD, s.RLen)
}

// RxRing holds RxRing.tla's constants.
type RxRing struct {
	N   uint32
	B   uint32
	Bug Bug
	// Split: the write-back is two stores and the driver's loads of DD
	// and of the length are two steps; StatusFirst is Dev =
	// "status_first" (else "len_first").
	Split       bool
	StatusFirst bool
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
		WLen: make([]bool, m.N),
		Lag:  m.N,
	}
}

// DevReceive: the device fills the buffer at rdh and writes back length
// and DD|EOP in one step.
func (m *RxRing) DevReceive(s *RxState) bool {
	if m.Split || s.RDH == s.RDT {
		return false
	}
	s.Desc[s.RDH].DD = true
	s.WLen[s.RDH] = true
	s.RDH = m.devNext(s.RDH)
	return true
}

// DevWriteLen (Split): the device stores the length word of the frame at
// rdh (len_first) or of the frame whose status it stored last
// (status_first).
func (m *RxRing) DevWriteLen(s *RxState) bool {
	if !m.Split {
		return false
	}
	if !m.StatusFirst {
		if s.RDH == s.RDT || s.WLen[s.RDH] || s.Desc[s.RDH].DD {
			return false
		}
		s.WLen[s.RDH] = true
		return true
	}
	if s.Lag == m.N {
		return false
	}
	s.WLen[s.Lag] = true
	s.Lag = m.N
	return true
}

// DevWriteStatus (Split): the device stores the status word with DD|EOP
// at rdh and advances its head.
func (m *RxRing) DevWriteStatus(s *RxState) bool {
	if !m.Split || s.RDH == s.RDT {
		return false
	}
	if !m.StatusFirst {
		if !s.WLen[s.RDH] {
			return false
		}
	} else {
		if s.Lag != m.N {
			return false
		}
		s.Lag = s.RDH
	}
	s.Desc[s.RDH].DD = true
	s.RDH = m.devNext(s.RDH)
	return true
}

// ReadDD (Split): RxBatch loads rxi's status word and sees DD; the broken
// driver, having loaded the length first, forgets it when DD is clear.
func (m *RxRing) ReadDD(s *RxState) bool {
	if !m.Split || s.RXI >= m.N || s.Slot[s.RXI] == NoBuf || s.RDD {
		return false
	}
	bug := m.Bug == BugLenBeforeDD
	if bug != (s.RLen != LenNone) {
		return false
	}
	if s.Desc[s.RXI].DD {
		s.RDD = true
		return true
	}
	if !bug {
		return false
	}
	s.RLen = LenNone
	return true
}

// ReadLen (Split): RxBatch loads rxi's length word (after DD; the broken
// driver before).
func (m *RxRing) ReadLen(s *RxState) bool {
	if !m.Split || s.RXI >= m.N || s.Slot[s.RXI] == NoBuf || s.RLen != LenNone {
		return false
	}
	if s.RDD == (m.Bug == BugLenBeforeDD) {
		return false
	}
	if s.WLen[s.RXI] {
		s.RLen = LenFresh
	} else {
		s.RLen = LenStale
	}
	return true
}

// HandUp: RxBatch saw DD on rxi (Split: has read DD and the length) and
// hands the buffer up.
func (m *RxRing) HandUp(s *RxState) bool {
	if s.RXI >= m.N || s.Slot[s.RXI] == NoBuf {
		return false
	}
	if m.Split {
		if !s.RDD || s.RLen == LenNone {
			return false
		}
	} else if !s.Desc[s.RXI].DD {
		return false
	}
	b := s.Slot[s.RXI]
	s.App.Add(b)
	s.Slot[s.RXI] = NoBuf
	s.Order = removeAll(s.Order, b)
	s.RDD, s.RLen = false, LenNone
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
		s.WLen[i] = false
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
	if m.Split {
		try(s, m.DevWriteLen, "DevWriteLen", yield)
		try(s, m.DevWriteStatus, "DevWriteStatus", yield)
		try(s, m.ReadDD, "ReadDD", yield)
		try(s, m.ReadLen, "ReadLen", yield)
	}
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
	for _, w := range s.WLen {
		if w {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	b = appendU32(b, s.Lag)
	if s.RDD {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return append(b, byte(s.RLen))
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
	return len(s.WLen) == int(m.N) && s.Lag <= m.N && s.RLen <= LenFresh
}

// NoStaleLength: the driver never holds DD of rxi together with a length
// not written back for this frame.
func (m *RxRing) NoStaleLength(s *RxState) bool {
	return !s.RDD || s.RLen == LenNone || s.RLen == LenFresh
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
			{"DescriptorState", m.DescriptorState}, {"FIFO", m.FIFO}, {"NoStaleLength", m.NoStaleLength},
		},
		Actions: []ActionProperty[*RxState]{
			{"DeviceTouchesOwnedOnly", m.DeviceTouchesOwnedOnly}, {"ReuseOnlyAfterDD", m.ReuseOnlyAfterDD},
		},
		Fair: []string{"DevReceive", "HandUp", "WriteTail", "Refill", "AppFree", "DevWriteLen", "DevWriteStatus", "ReadDD", "ReadLen"},
		Liveness: []LeadsTo[*RxState]{{
			Name:  "EventuallyReturned",
			Count: int(m.B),
			Pending: func(s *RxState, k int) bool {
				return slices.Contains(s.Slot, uint32(k+1))
			},
		}},
	}
}
