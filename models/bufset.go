package models

import "math/bits"

// NoBuf is the "no buffer" marker of the specs (NoBuf = 0 in the configs);
// buffers are numbered from 1.
const NoBuf uint32 = 0

// BufSet is a set of buffer numbers, a bitset. The specs' pool and app.
type BufSet []uint64

// NewBufSet returns an empty set with room for buffers 0..max.
func NewBufSet(max uint32) BufSet { return make(BufSet, max/64+1) }

// FullBufSet returns {1..n} with room for 0..n.
func FullBufSet(n uint32) BufSet {
	s := NewBufSet(n)
	for b := uint32(1); b <= n; b++ {
		s.Add(b)
	}
	return s
}

// Has reports whether b is in s.
func (s BufSet) Has(b uint32) bool {
	w := b / 64
	return int(w) < len(s) && s[w]&(1<<(b%64)) != 0
}

// Add puts b in s (b must be within the set's room).
func (s BufSet) Add(b uint32) {
	if int(b/64) < len(s) {
		s[b/64] |= 1 << (b % 64)
	}
}

// Del removes b from s.
func (s BufSet) Del(b uint32) {
	if int(b/64) < len(s) {
		s[b/64] &^= 1 << (b % 64)
	}
}

// Len returns the number of elements.
func (s BufSet) Len() int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

// Clone copies s.
func (s BufSet) Clone() BufSet { return append(BufSet(nil), s...) }

// Within reports whether every element is in 1..n.
func (s BufSet) Within(n uint32) bool {
	for b := range s.All() {
		if b == 0 || b > n {
			return false
		}
	}
	return true
}

// All iterates over the elements in increasing order.
func (s BufSet) All() func(yield func(uint32) bool) {
	return func(yield func(uint32) bool) {
		for wi, w := range s {
			for w != 0 {
				t := bits.TrailingZeros64(w)
				if !yield(uint32(wi*64 + t)) {
					return
				}
				w &^= 1 << t
			}
		}
	}
}

func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

func appendSet(b []byte, s BufSet) []byte {
	for _, w := range s {
		b = append(b, byte(w), byte(w>>8), byte(w>>16), byte(w>>24), byte(w>>32), byte(w>>40), byte(w>>48), byte(w>>56))
	}
	return b
}

// dist is the specs' Dist(a, b) == (b - a + N) % N (a <= N always, even
// in the wrap-around variant, so there is no underflow).
func dist(a, b, n uint32) uint32 { return (b + n - a) % n }

// inRange is the specs' InRange(from, to, i).
func inRange(from, to, i, n uint32) bool { return dist(from, i, n) < dist(from, to, n) }

// removeAll is the specs' Remove(s, b) == SelectSeq(s, LAMBDA x: x # b).
func removeAll(s []uint32, b uint32) []uint32 {
	if len(s) > 0 && s[0] == b {
		k := 1
		for k < len(s) && s[k] != b {
			k++
		}
		if k == len(s) {
			return s[1:]
		}
	}
	out := make([]uint32, 0, len(s))
	for _, x := range s {
		if x != b {
			out = append(out, x)
		}
	}
	return out
}
