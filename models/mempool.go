package models

import (
	"fmt"
	"slices"
)

// MempoolState holds Mempool.tla's variables: the LIFO free stack and the
// in-use flags (index 0 unused; buffers are 1..B).
type MempoolState struct {
	Free  []uint32
	InUse []bool
}

// Clone returns a deep copy.
func (s *MempoolState) Clone() *MempoolState {
	return &MempoolState{Free: slices.Clone(s.Free), InUse: slices.Clone(s.InUse)}
}

func (s *MempoolState) String() string {
	return fmt.Sprintf("free=%v inUse=%v", s.Free, s.InUse[1:])
}

// Mempool holds Mempool.tla's constants.
type Mempool struct {
	B   uint32
	Bug Bug
}

// Init: nothing free yet, every buffer out (construction frees them).
func (m *Mempool) Init() *MempoolState {
	s := &MempoolState{InUse: make([]bool, m.B+1)}
	for b := uint32(1); b <= m.B; b++ {
		s.InUse[b] = true
	}
	return s
}

// Alloc pops the most recently freed buffer.
func (m *Mempool) Alloc(s *MempoolState) bool {
	n := len(s.Free)
	if n == 0 {
		return false
	}
	s.InUse[s.Free[n-1]] = true
	s.Free = s.Free[:n-1]
	return true
}

// Free(b) pushes b; a double free is refused unless the variant allows it.
func (m *Mempool) Free(s *MempoolState, b uint32) bool {
	if !s.InUse[b] && m.Bug != BugDoubleFree {
		return false
	}
	s.Free = append(s.Free, b)
	s.InUse[b] = false
	return true
}

// Next enumerates Mempool.tla's Next.
func (m *Mempool) Next(s *MempoolState, yield func(string, *MempoolState)) {
	try(s, m.Alloc, "Alloc", yield)
	for b := uint32(1); b <= m.B; b++ {
		try(s, func(t *MempoolState) bool { return m.Free(t, b) }, "Free", yield)
	}
}

// NoDuplicates: no buffer is on the free stack twice.
func (m *Mempool) NoDuplicates(s *MempoolState) bool {
	seen := make([]bool, m.B+1)
	for _, b := range s.Free {
		if seen[b] {
			return false
		}
		seen[b] = true
	}
	return true
}

// FreeIffNotInUse: a buffer is on the stack exactly when it is not in use.
func (m *Mempool) FreeIffNotInUse(s *MempoolState) bool {
	for b := uint32(1); b <= m.B; b++ {
		if slices.Contains(s.Free, b) == s.InUse[b] {
			return false
		}
	}
	return true
}

// TypeOK: stack entries are buffers.
func (m *Mempool) TypeOK(s *MempoolState) bool {
	for _, b := range s.Free {
		if b == 0 || b > m.B {
			return false
		}
	}
	return len(s.InUse) == int(m.B)+1
}

// Spec returns the explorer's view of the Mempool spec.
func (m *Mempool) Spec() Spec[*MempoolState] {
	return Spec[*MempoolState]{
		Name: "Mempool",
		Init: func() []*MempoolState { return []*MempoolState{m.Init()} },
		Next: m.Next,
		AppendKey: func(b []byte, s *MempoolState) []byte {
			b = appendU32(b, uint32(len(s.Free)))
			for _, x := range s.Free {
				b = appendU32(b, x)
			}
			for _, u := range s.InUse {
				if u {
					b = append(b, 1)
				} else {
					b = append(b, 0)
				}
			}
			return b
		},
		Invariants: []Invariant[*MempoolState]{
			{"TypeOK", m.TypeOK}, {"NoDuplicates", m.NoDuplicates}, {"FreeIffNotInUse", m.FreeIffNotInUse},
		},
	}
}
