package dma

import "testing"

// The reciprocal in Mempool.offset agrees with the division it replaces
// for every buffer of pools of several geometries, and at the 32-bit edge.
func TestMempoolOffsetReciprocal(t *testing.T) {
	for _, stride := range []int{128, 2176, 2304, 4096, 9216, 16512, 700 * 1024, 1 << 20, 1<<20 + 128} {
		perPage := HugepageSize / stride
		p := &Mempool{stride: stride, perPage: perPage, perPageM: ^uint64(0)/uint64(perPage) + 1, page: HugepageSize}
		check := func(i uint32) {
			want := int(i)/perPage*HugepageSize + int(i)%perPage*stride
			if got := p.offset(i); got != want {
				t.Fatalf("stride %d: offset(%d) = %d, want %d", stride, i, got, want)
			}
		}
		for i := uint32(0); i < 100000; i++ {
			check(i)
		}
		for i := uint32(1<<32 - 100000); i != 0; i++ {
			check(i)
		}
	}
}
