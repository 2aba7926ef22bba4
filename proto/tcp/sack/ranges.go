package sack

import (
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/tcp/seqnum"
)

// Ranges is a receiver's out-of-order data: the disjoint sequence ranges it
// holds above RCV.NXT, at most max of them, each remembering when a segment
// last landed in it so that SACK blocks can be ordered as RFC 2018 section 4
// requires.
//
// Use: for a segment [seq, seq+len) that arrives above RCV.NXT, call Insert
// (drop the segment if it is refused); for a segment that starts at or below
// RCV.NXT (after trimming and delivering it, RCV.NXT having advanced to its
// end), call Advance(RCV.NXT) to learn whether it closed a gap. Build the SACK
// option of every ACK with Blocks while Len() > 0.
type Ranges struct {
	set
	clock uint64 // stamp of the latest Insert
}

// NewRanges returns an empty Ranges holding at most max ranges (max < 1 is
// taken as 1).
func NewRanges(max int) *Ranges {
	return &Ranges{set: newSet(max)}
}

// Max returns the largest number of ranges held.
func (r *Ranges) Max() int { return cap(r.s) }

// Len returns how many disjoint ranges are held.
func (r *Ranges) Len() int { return len(r.s) }

// Bytes returns how many bytes the ranges cover.
func (r *Ranges) Bytes() seqnum.Size { return r.bytes }

// Reset empties the ranges.
func (r *Ranges) Reset() { r.reset(); r.clock = 0 }

// Range returns range i, 0 <= i < Len(), in ascending sequence order.
func (r *Ranges) Range(i int) (start, end seqnum.Value) { return r.s[i].start, r.s[i].end }

// Contains reports whether seq lies in one of the ranges.
func (r *Ranges) Contains(seq seqnum.Value) bool { return r.find(seq) >= 0 }

// Highest returns the end of the highest range (its last sequence number
// plus one) and true, or 0 and false when there are no ranges.
func (r *Ranges) Highest() (end seqnum.Value, ok bool) {
	if len(r.s) == 0 {
		return 0, false
	}
	return r.s[len(r.s)-1].end, true
}

// Insert records that [start, end) has been received, merging it with the
// ranges it overlaps or touches. It returns how many of its bytes were not
// already held (for accounting) and ok true; the range now containing
// [start, end) becomes the most recent one, reported first by Blocks (a
// duplicate falling entirely inside a range also makes that range the most
// recent: it contains the segment that triggered the ACK, RFC 2018 section
// 4). When Len() == Max() and [start, end) neither overlaps nor touches a
// range, nothing changes and Insert returns 0, false: the caller drops the
// segment (and counts the drop). An empty or inverted range (end <= start)
// changes nothing and returns 0, true.
//
// Insert does not know RCV.NXT: the caller inserts only data above it.
func (r *Ranges) Insert(start, end seqnum.Value) (added seqnum.Size, ok bool) {
	if end.LessThanEq(start) {
		return 0, true
	}
	added, ok = r.insert(start, end, r.clock+1)
	if ok {
		r.clock++
	}
	return added, ok
}

// Advance is called with the receiver's RCV.NXT. It drops every range that
// ends at or below rcvNxt; if the lowest remaining range starts at or below
// rcvNxt (the data up to rcvNxt reached or overlaps it), it removes that
// range and returns its end, the new RCV.NXT. Otherwise it returns rcvNxt.
// Since ranges never touch, one range at most can be absorbed.
func (r *Ranges) Advance(rcvNxt seqnum.Value) (newNxt seqnum.Value) {
	newNxt = rcvNxt
	k := 0
	for k < len(r.s) && r.s[k].end.LessThanEq(rcvNxt) {
		r.bytes -= r.s[k].size()
		k++
	}
	if k < len(r.s) && r.s[k].start.LessThanEq(rcvNxt) {
		newNxt = r.s[k].end
		r.bytes -= r.s[k].size()
		k++
	}
	if k > 0 {
		r.s = append(r.s[:0], r.s[k:]...)
	}
	return newNxt
}

// Blocks appends to dst the SACK blocks for the next ACK, at most max of
// them (3 when the timestamp option is present, 4 without; it also stops at
// Len()), and returns the extended slice. Per RFC 2018 section 4 the first
// block is the range containing the most recently received segment (the one
// of the latest Insert), and the following blocks repeat the most recently
// reported ones: the ranges in decreasing order of their latest Insert,
// which is the order in which they were last reported first. Ranges never
// overlap, so no block is a subset of another. It does not allocate when
// cap(dst)-len(dst) >= min(max, Len()).
//
// The caller must have called Advance with the current RCV.NXT, so that
// every block lies above it, as RFC 2018 section 4 requires.
func (r *Ranges) Blocks(dst []header.SACKBlock, max int) []header.SACKBlock {
	prev := ^uint64(0)
	for n := 0; n < max; n++ {
		best := -1
		for k := range r.s {
			if r.s[k].stamp < prev && (best < 0 || r.s[k].stamp > r.s[best].stamp) {
				best = k
			}
		}
		if best < 0 {
			break
		}
		prev = r.s[best].stamp
		dst = append(dst, header.SACKBlock{Left: uint32(r.s[best].start), Right: uint32(r.s[best].end)})
	}
	return dst
}
