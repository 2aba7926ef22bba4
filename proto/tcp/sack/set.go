// Package sack holds TCP selective acknowledgment state for both ends of a
// connection:
//
//   - Ranges, the receiver's record of out-of-order data above RCV.NXT and
//     the SACK blocks it reports (RFC 2018 section 4);
//   - Scoreboard, the sender's record of SACKed data above SND.UNA and the
//     loss-recovery routines of RFC 6675 section 4 built on it (IsLost,
//     SetPipe, NextSeg).
//
// All sequence arithmetic is modulo 2^32 (package seqnum): every value
// handled by one Ranges or Scoreboard must lie within 2^31 of the others,
// which TCP's window bounds guarantee (RFC 7323 section 2.3). Ranges are
// half-open, [start, end), like header.SACKBlock{Left, Right}.
//
// Neither type allocates after its constructor, and neither is safe for
// concurrent use.
package sack

import "github.com/verinic/verinic/proto/tcp/seqnum"

// span is one contiguous range [start, end) with the stamp of the last
// insert that touched it (Ranges only).
type span struct {
	start, end seqnum.Value
	stamp      uint64
}

func (s span) size() seqnum.Size { return s.start.Size(s.end) }

// set is a bounded, sorted list of disjoint, non-adjacent, non-empty spans.
type set struct {
	s     []span // len <= cap(s) == max
	bytes seqnum.Size
}

func newSet(max int) set {
	if max < 1 {
		max = 1
	}
	return set{s: make([]span, 0, max)}
}

func (t *set) reset() { t.s, t.bytes = t.s[:0], 0 }

// insert adds [start, end) (start < end), merging with every span it
// overlaps or touches; the merged span gets stamp. It returns the bytes that
// were new, and ok false (with nothing changed) when a new span is needed
// and the set is full.
func (t *set) insert(start, end seqnum.Value, stamp uint64) (added seqnum.Size, ok bool) {
	// i: first span that ends at or after start (overlaps or touches, or
	// lies above); j: first span that starts after end.
	i := 0
	for i < len(t.s) && t.s[i].end.LessThan(start) {
		i++
	}
	j := i
	for j < len(t.s) && t.s[j].start.LessThanEq(end) {
		j++
	}
	if i == j {
		if len(t.s) == cap(t.s) {
			return 0, false
		}
		t.s = t.s[:len(t.s)+1]
		copy(t.s[i+1:], t.s[i:])
		t.s[i] = span{start, end, stamp}
		n := start.Size(end)
		t.bytes += n
		return n, true
	}
	// The union of [start, end) and spans i..j-1 is one interval.
	var old seqnum.Size
	for k := i; k < j; k++ {
		old += t.s[k].size()
	}
	m := span{seqnum.Min(start, t.s[i].start), seqnum.Max(end, t.s[j-1].end), stamp}
	t.s[i] = m
	t.s = append(t.s[:i+1], t.s[j:]...)
	added = m.size() - old
	t.bytes += added
	return added, true
}

// trimBelow drops everything below v: spans ending at or below v go, a span
// straddling v is cut to start at v.
func (t *set) trimBelow(v seqnum.Value) {
	k := 0
	for k < len(t.s) && t.s[k].end.LessThanEq(v) {
		t.bytes -= t.s[k].size()
		k++
	}
	if k > 0 {
		t.s = append(t.s[:0], t.s[k:]...)
	}
	if len(t.s) > 0 && t.s[0].start.LessThan(v) {
		t.bytes -= t.s[0].start.Size(v)
		t.s[0].start = v
	}
}

// find returns the index of the span containing seq, or -1.
func (t *set) find(seq seqnum.Value) int {
	for k := range t.s {
		if seq.LessThan(t.s[k].start) {
			return -1
		}
		if seq.LessThan(t.s[k].end) {
			return k
		}
	}
	return -1
}
