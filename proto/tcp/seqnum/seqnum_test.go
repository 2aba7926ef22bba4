package seqnum

import (
	"testing"

	"pgregory.net/rapid"
)

// Property: comparisons agree with integer comparison of the unwrapped
// values for any base and any two offsets less than 2^31 apart.
func TestComparisonsAcrossWrap(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		base := rapid.Uint32().Draw(t, "base")
		a := rapid.Int64Range(0, 1<<30).Draw(t, "a")
		b := rapid.Int64Range(0, 1<<30).Draw(t, "b")
		va, vb := Value(base)+Value(a), Value(base)+Value(b)
		if va.LessThan(vb) != (a < b) || va.LessThanEq(vb) != (a <= b) ||
			va.GreaterThan(vb) != (a > b) || va.GreaterThanEq(vb) != (a >= b) {
			t.Fatalf("base %#x a %d b %d: wrong comparison", base, a, b)
		}
		n := rapid.Int64Range(0, 1<<30).Draw(t, "n")
		if va.InWindow(vb, Size(n)) != (b <= a && a < b+n) {
			t.Fatalf("InWindow(%d in [%d,%d)) wrong at base %#x", a, b, b+n, base)
		}
		if a <= b && va.Size(vb) != Size(b-a) {
			t.Fatalf("Size wrong")
		}
	})
}

func TestOverlap(t *testing.T) {
	top := Value(0xffff_fff0)
	if !Overlap(top, 32, 5, 1) || Overlap(top, 16, 0, 10) || Overlap(0, 0, 0, 10) {
		t.Fatal("Overlap wrong across wrap")
	}
}
