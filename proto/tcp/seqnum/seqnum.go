// Package seqnum is TCP sequence-number arithmetic modulo 2^32 (RFC 9293
// section 3.4): comparisons are made on the signed difference, so they hold
// across wrap-around as long as the values compared are less than 2^31
// apart, which TCP's window limits guarantee (RFC 7323 section 2.3).
package seqnum

// Value is a sequence number.
type Value uint32

// Size is a length in sequence space.
type Size uint32

// LessThan reports v < w modulo 2^32.
func (v Value) LessThan(w Value) bool { return int32(v-w) < 0 }

// LessThanEq reports v <= w modulo 2^32.
func (v Value) LessThanEq(w Value) bool { return int32(v-w) <= 0 }

// GreaterThan reports v > w modulo 2^32.
func (v Value) GreaterThan(w Value) bool { return int32(v-w) > 0 }

// GreaterThanEq reports v >= w modulo 2^32.
func (v Value) GreaterThanEq(w Value) bool { return int32(v-w) >= 0 }

// InRange reports a <= v < b modulo 2^32.
func (v Value) InRange(a, b Value) bool { return v-a < b-a }

// InWindow reports whether v lies in the window of size n starting at first:
// first <= v < first+n.
func (v Value) InWindow(first Value, n Size) bool { return v.InRange(first, first.Add(n)) }

// Add returns v+n.
func (v Value) Add(n Size) Value { return v + Value(n) }

// Sub returns v-n.
func (v Value) Sub(n Size) Value { return v - Value(n) }

// Size returns the distance from v to w (w-v), for v <= w.
func (v Value) Size(w Value) Size { return Size(w - v) }

// Max returns the later of v and w.
func Max(v, w Value) Value {
	if v.LessThan(w) {
		return w
	}
	return v
}

// Min returns the earlier of v and w.
func Min(v, w Value) Value {
	if v.LessThan(w) {
		return v
	}
	return w
}

// Overlap reports whether segment [a, a+an) overlaps [b, b+bn).
func Overlap(a Value, an Size, b Value, bn Size) bool {
	return an > 0 && bn > 0 && a.LessThan(b.Add(bn)) && b.LessThan(a.Add(an))
}
