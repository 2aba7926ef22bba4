package sack

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/tcp/seqnum"
	"pgregory.net/rapid"
)

// baseGen draws a base sequence number, half the time close below 2^32 so
// that windows cross the wrap.
var baseGen = rapid.OneOf(rapid.Uint32(), rapid.Uint32Range(math.MaxUint32-600, math.MaxUint32))

func blk(l, r uint32) header.SACKBlock { return header.SACKBlock{Left: l, Right: r} }

func wantBlocks(t *testing.T, what string, got []header.SACKBlock, want ...header.SACKBlock) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: blocks %v, want %v", what, got, want)
	}
}

// RFC 2018 section 6, case 2: the first of eight 500-byte segments from
// 5000 is lost; every later one extends the single block [5500, x).
func TestRangesRFC2018Case2(t *testing.T) {
	r := NewRanges(32)
	rcvNxt := seqnum.Value(5000)
	for seg := uint32(5500); seg <= 8500; seg += 500 {
		if _, ok := r.Insert(seqnum.Value(seg), seqnum.Value(seg+500)); !ok {
			t.Fatal("refused")
		}
		if n := r.Advance(rcvNxt); n != rcvNxt {
			t.Fatalf("Advance = %d", n)
		}
		wantBlocks(t, fmt.Sprint("segment ", seg), r.Blocks(nil, 4), blk(5500, seg+500))
	}
	// The lost segment arrives: RCV.NXT jumps to 9000.
	if n := r.Advance(5500); n != 9000 || r.Len() != 0 || r.Bytes() != 0 {
		t.Fatalf("Advance(5500) = %d, Len %d, Bytes %d", n, r.Len(), r.Bytes())
	}
}

// RFC 2018 section 6, case 3: segments 2, 4, 6 and 8 (5500, 6500, 7500,
// 8500) are lost, then 6500 and 5500 arrive late.
func TestRangesRFC2018Case3(t *testing.T) {
	for _, max := range []int{3, 4} {
		r := NewRanges(32)
		rcvNxt := r.Advance(5500) // segment 5000 arrived in order
		ins := func(seg uint32) {
			if _, ok := r.Insert(seqnum.Value(seg), seqnum.Value(seg+500)); !ok {
				t.Fatal("refused")
			}
			rcvNxt = r.Advance(rcvNxt)
		}
		ins(6000)
		wantBlocks(t, "6000", r.Blocks(nil, max), blk(6000, 6500))
		ins(7000)
		wantBlocks(t, "7000", r.Blocks(nil, max), blk(7000, 7500), blk(6000, 6500))
		ins(8000)
		wantBlocks(t, "8000", r.Blocks(nil, max), blk(8000, 8500), blk(7000, 7500), blk(6000, 6500))
		// "Suppose at this point, the 4th packet is received out of order."
		ins(6500)
		wantBlocks(t, "6500", r.Blocks(nil, max), blk(6000, 7500), blk(8000, 8500))
		// "Suppose at this point, the 2nd segment is received."
		rcvNxt = 5500 + 500
		if rcvNxt = r.Advance(rcvNxt); rcvNxt != 7500 {
			t.Fatalf("ACK %d, want 7500", rcvNxt)
		}
		wantBlocks(t, "5500", r.Blocks(nil, max), blk(8000, 8500))
	}
}

// Blocks caps the count and repeats the most recently reported blocks.
func TestRangesBlocksLimit(t *testing.T) {
	r := NewRanges(32)
	for _, s := range []uint32{100, 300, 500, 700, 900} {
		r.Insert(seqnum.Value(s), seqnum.Value(s+10))
	}
	r.Insert(305, 306) // duplicate inside [300,310): that range is reported first
	wantBlocks(t, "3", r.Blocks(nil, 3), blk(300, 310), blk(900, 910), blk(700, 710))
	wantBlocks(t, "4", r.Blocks(nil, 4), blk(300, 310), blk(900, 910), blk(700, 710), blk(500, 510))
}

func TestRangesFullAndWrap(t *testing.T) {
	r := NewRanges(2)
	base := seqnum.Value(math.MaxUint32 - 5)
	if a, ok := r.Insert(base, base+4); !ok || a != 4 {
		t.Fatalf("Insert = %d, %v", a, ok)
	}
	if a, ok := r.Insert(base+10, base+20); !ok || a != 10 { // crosses 2^32
		t.Fatalf("Insert = %d, %v", a, ok)
	}
	if a, ok := r.Insert(base+30, base+31); ok || a != 0 || r.Len() != 2 {
		t.Fatalf("Insert into full = %d, %v, Len %d", a, ok, r.Len())
	}
	// Merging is still allowed when full, and counts only new bytes.
	if a, ok := r.Insert(base+2, base+12); !ok || a != 6 || r.Len() != 1 || r.Bytes() != 20 {
		t.Fatalf("merging Insert = %d, %v, Len %d, Bytes %d", a, ok, r.Len(), r.Bytes())
	}
	if h, ok := r.Highest(); !ok || h != base+20 || !r.Contains(1) || r.Contains(base+20) {
		t.Fatalf("Highest %d %v", h, ok)
	}
	if n := r.Advance(base); n != base+20 || r.Len() != 0 {
		t.Fatalf("Advance = %d", n)
	}
}

// refRanges is the receiver's reference model: per-offset membership and
// the stamp of the insert that last touched each byte's range, over
// offsets from a base.
type refRanges struct {
	in    []bool
	stamp []uint64
}

// runs returns the maximal runs [s, e) of held offsets at or above from.
func (m *refRanges) runs(from int) [][2]int {
	var out [][2]int
	for i := from; i < len(m.in); i++ {
		if m.in[i] && (i == from || !m.in[i-1]) {
			j := i
			for j < len(m.in) && m.in[j] {
				j++
			}
			out = append(out, [2]int{i, j})
		}
	}
	return out
}

func TestRangesMatchReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const W = 400
		base := seqnum.Value(baseGen.Draw(t, "base"))
		max := rapid.IntRange(1, 6).Draw(t, "max")
		r := NewRanges(max)
		m := &refRanges{in: make([]bool, W+200), stamp: make([]uint64, W+200)}
		nxt := 0 // RCV.NXT offset
		clock := uint64(0)
		last := [2]int{-1, -1} // latest successful insert
		t.Repeat(map[string]func(*rapid.T){
			"": func(t *rapid.T) {
				runs := m.runs(nxt)
				if r.Len() != len(runs) {
					t.Fatalf("Len %d, reference runs %v", r.Len(), runs)
				}
				total := 0
				for i, rn := range runs {
					s, e := r.Range(i)
					if s != base.Add(seqnum.Size(rn[0])) || e != base.Add(seqnum.Size(rn[1])) {
						t.Fatalf("range %d = [%d,%d), want offsets %v", i, s-base, e-base, rn)
					}
					total += rn[1] - rn[0]
				}
				if int(r.Bytes()) != total {
					t.Fatalf("Bytes %d, want %d", r.Bytes(), total)
				}
				for off := nxt; off < nxt+W; off++ {
					if r.Contains(base.Add(seqnum.Size(off))) != m.in[off] {
						t.Fatalf("Contains(offset %d) wrong", off)
					}
				}
				h, ok := r.Highest()
				if ok != (len(runs) > 0) || ok && h != base.Add(seqnum.Size(runs[len(runs)-1][1])) {
					t.Fatalf("Highest = %d, %v", h-base, ok)
				}
				// Blocks: the runs in decreasing stamp order, at most n.
				n := rapid.IntRange(0, 5).Draw(t, "blocks")
				byStamp := slices.Clone(runs)
				slices.SortFunc(byStamp, func(a, b [2]int) int {
					return -cmpU64(m.stamp[a[0]], m.stamp[b[0]])
				})
				byStamp = byStamp[:min(n, len(byStamp))]
				got := r.Blocks(make([]header.SACKBlock, 0, 5), n)
				if len(got) != len(byStamp) {
					t.Fatalf("Blocks(%d): %d blocks, want %d", n, len(got), len(byStamp))
				}
				for i, b := range got {
					l, rr := seqnum.Value(b.Left), seqnum.Value(b.Right)
					if !l.LessThan(rr) || !base.Add(seqnum.Size(nxt)).LessThan(l) {
						t.Fatalf("block %v empty or not above RCV.NXT", b)
					}
					for _, c := range got[:i] {
						if seqnum.Overlap(l, l.Size(rr), seqnum.Value(c.Left), seqnum.Value(c.Left).Size(seqnum.Value(c.Right))) {
							t.Fatalf("blocks %v and %v overlap", b, c)
						}
					}
					want := byStamp[i]
					if int(l-base) != want[0] || int(rr-base) != want[1] {
						t.Fatalf("block %d = offsets [%d,%d), want %v", i, l-base, rr-base, want)
					}
				}
				if len(got) > 0 && last[0] >= nxt {
					l, rr := int(seqnum.Value(got[0].Left)-base), int(seqnum.Value(got[0].Right)-base)
					if l > last[0] || rr < last[1] {
						t.Fatalf("first block [%d,%d) does not contain the last insert %v", l, rr, last)
					}
				}
			},
			"Insert": func(t *rapid.T) {
				a := rapid.IntRange(nxt+1, nxt+W-1).Draw(t, "start")
				e := rapid.IntRange(a, min(a+60, nxt+W)).Draw(t, "end")
				newRun := true
				for i := max0(a - 1); i < e+1; i++ {
					if m.in[i] {
						newRun = false
					}
				}
				wantOK := e == a || !newRun || len(m.runs(nxt)) < max
				wantAdded := 0
				if wantOK {
					for i := a; i < e; i++ {
						if !m.in[i] {
							wantAdded++
						}
					}
				}
				added, ok := r.Insert(base.Add(seqnum.Size(a)), base.Add(seqnum.Size(e)))
				if ok != wantOK || int(added) != wantAdded {
					t.Fatalf("Insert [%d,%d) = %d, %v; want %d, %v", a, e, added, ok, wantAdded, wantOK)
				}
				if !ok || a == e {
					return
				}
				clock++
				last = [2]int{a, e}
				for i := a; i < e; i++ {
					m.in[i] = true
				}
				lo, hi := a, e
				for lo > 0 && m.in[lo-1] {
					lo--
				}
				for m.in[hi] {
					hi++
				}
				for i := lo; i < hi; i++ {
					m.stamp[i] = clock
				}
			},
			"Deliver": func(t *rapid.T) {
				// In-order data [nxt, nxt+k) arrives; RCV.NXT passes it, then
				// Advance absorbs a range it reaches.
				k := rapid.IntRange(0, 80).Draw(t, "k")
				nxt += k
				want := nxt
				for m.in[want] {
					want++
				}
				got := r.Advance(base.Add(seqnum.Size(nxt)))
				if got != base.Add(seqnum.Size(want)) {
					t.Fatalf("Advance(offset %d) = offset %d, want %d", nxt, got-base, want)
				}
				nxt = want
				// Keep the model within its arrays by sliding everything down.
				if nxt > 100 {
					sh := nxt
					copy(m.in, m.in[sh:])
					copy(m.stamp, m.stamp[sh:])
					clear(m.in[len(m.in)-sh:])
					base = base.Add(seqnum.Size(sh))
					last[0], last[1] = last[0]-sh, last[1]-sh
					nxt = 0
				}
			},
		})
	})
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestRangesNoAllocs(t *testing.T) {
	r := NewRanges(32)
	dst := make([]header.SACKBlock, 0, 4)
	base := seqnum.Value(math.MaxUint32 - 1000)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		s := base.Add(seqnum.Size(i * 7 % 3000))
		r.Insert(s, s+3)
		dst = r.Blocks(dst[:0], 4)
		_ = r.Contains(s)
		_, _ = r.Highest()
		if i%50 == 0 {
			base = r.Advance(base.Add(100))
		}
		i++
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}

func BenchmarkRangesInsertBlocks(b *testing.B) {
	r := NewRanges(32)
	dst := make([]header.SACKBlock, 0, 4)
	i := 0
	for b.Loop() {
		s := seqnum.Value(1000 + (i%16)*3000 + (i/16%8)*100)
		r.Insert(s, s+100)
		dst = r.Blocks(dst[:0], 3)
		i++
		if i%128 == 0 {
			r.Reset()
		}
	}
}
