package sack

import (
	"math"
	"testing"

	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/tcp/seqnum"
	"pgregory.net/rapid"
)

func sb(blocks ...header.SACKBlock) []header.SACKBlock { return blocks }

// An RFC 6675 loss-recovery walk: ten 100-byte segments from 1000, the
// first lost, the rest SACKed one by one (SMSS 100, DupThresh 3).
func TestScoreboardRFC6675Recovery(t *testing.T) {
	const smss, dt = 100, 3
	s := NewScoreboard(32)
	una, nxt := seqnum.Value(1000), seqnum.Value(2000)
	if n := s.Update(una, nxt, sb(blk(1100, 1200))); n != 100 {
		t.Fatalf("newly SACKed %d", n)
	}
	s.Update(una, nxt, sb(blk(1100, 1300)))
	// 200 bytes above 1000 in one range: not more than (DupThresh-1)*SMSS.
	if s.IsLost(1000, dt, smss) {
		t.Fatal("1000 lost after two SACKed segments")
	}
	// Pipe: 100 unSACKed below, 700 above the SACKed data, none lost.
	if p := s.Pipe(una, nxt, una, smss, dt); p != 800 {
		t.Fatalf("pipe %d, want 800", p)
	}
	if st, n, rule, ok := s.NextSeg(una, nxt, una, smss, dt); !ok || rule != 2 || st != nxt || n != smss {
		t.Fatalf("NextSeg = %d %d rule %d %v, want new data", st, n, rule, ok)
	}
	// Third SACKed segment: 1000 is lost (RFC 6675 section 5, DupThresh
	// segments SACKed above it).
	if n := s.Update(una, nxt, sb(blk(1100, 1400))); n != 100 || s.SackedBytes() != 300 || s.HighSacked() != 1400 {
		t.Fatalf("Update = %d, SackedBytes %d, HighSacked %d", n, s.SackedBytes(), s.HighSacked())
	}
	if !s.IsLost(1000, dt, smss) || s.IsLost(1400, dt, smss) {
		t.Fatal("IsLost wrong after three SACKed segments")
	}
	if p := s.Pipe(una, nxt, una, smss, dt); p != 600 {
		t.Fatalf("pipe %d, want 600 (the lost segment leaves the pipe)", p)
	}
	st, n, rule, ok := s.NextSeg(una, nxt, una, smss, dt)
	if !ok || rule != 1 || st != 1000 || n != 100 {
		t.Fatalf("NextSeg = %d %d rule %d %v, want retransmission of 1000", st, n, rule, ok)
	}
	highRxt := st.Add(seqnum.Size(n))
	// The retransmission is in the pipe again (SetPipe rule (b)).
	if p := s.Pipe(una, nxt, highRxt, smss, dt); p != 700 {
		t.Fatalf("pipe %d, want 700", p)
	}
	if _, _, rule, _ := s.NextSeg(una, nxt, highRxt, smss, dt); rule != 2 {
		t.Fatalf("rule %d after retransmitting the only hole, want 2", rule)
	}
	// The retransmission arrives: the cumulative ACK jumps to 1400.
	s.Update(1400, nxt, nil)
	if s.SackedBytes() != 0 || s.Len() != 0 || s.HighSacked() != 1400 {
		t.Fatalf("after the ACK: SackedBytes %d Len %d HighSacked %d", s.SackedBytes(), s.Len(), s.HighSacked())
	}
}

// DupThresh discontiguous SACKed runs mark a sequence lost even when they
// hold few bytes (small segments).
func TestScoreboardIsLostDiscontiguous(t *testing.T) {
	s := NewScoreboard(32)
	s.Update(0, 1000, sb(blk(10, 11), blk(20, 21)))
	if s.IsLost(0, 3, 100) {
		t.Fatal("lost with two runs")
	}
	s.Update(0, 1000, sb(blk(30, 31)))
	if !s.IsLost(0, 3, 100) || !s.IsLost(9, 3, 100) || s.IsLost(10, 3, 100) {
		t.Fatal("IsLost wrong with three runs")
	}
}

// Rules (3) and (4): a hole that is not yet lost, then a rescue
// retransmission of the tail, once per recovery.
func TestScoreboardRule3AndRescue(t *testing.T) {
	const smss, dt = 100, 3
	s := NewScoreboard(32)
	una, nxt := seqnum.Value(math.MaxUint32-49), seqnum.Value(450) // crosses 2^32
	s.Update(una, nxt, sb(blk(50, 150)))
	resc := &Rescue{RecoveryPoint: nxt}
	st, n, rule, ok := s.NextSegNoNewData(una, nxt, una, smss, dt, resc)
	if !ok || rule != 3 || st != una || n != 100 {
		t.Fatalf("NextSegNoNewData = %d %d rule %d %v, want rule 3 at una", st, n, rule, ok)
	}
	highRxt := st.Add(seqnum.Size(n))
	st, n, rule, ok = s.NextSegNoNewData(una, nxt, highRxt, smss, dt, resc)
	if !ok || rule != 4 || st != 350 || n != 100 || !resc.Defined || resc.RescueRxt != nxt {
		t.Fatalf("NextSegNoNewData = %d %d rule %d %v (%+v), want rescue [350,450)", st, n, rule, ok, *resc)
	}
	if _, _, _, ok := s.NextSegNoNewData(una, nxt, highRxt, smss, dt, resc); ok {
		t.Fatal("second rescue in the same recovery")
	}
	if _, _, _, ok := s.NextSegNoNewData(una, nxt, highRxt, smss, dt, nil); ok {
		t.Fatal("rescue without Rescue state")
	}
	// Rescue of a tail hole that is shorter than SMSS, below SACKed data.
	s.Update(una, nxt, sb(blk(400, 450)))
	resc = &Rescue{RecoveryPoint: nxt}
	if st, n, rule, ok := s.NextSegNoNewData(una, nxt, highRxt, smss, dt, resc); !ok || rule != 3 || st != 150 || n != 100 {
		t.Fatalf("NextSegNoNewData = %d %d rule %d %v, want rule 3 at 150", st, n, rule, ok)
	}
	if st, n, rule, ok := s.NextSegNoNewData(una, nxt, 400, smss, dt, resc); !ok || rule != 4 || st != 300 || n != 100 {
		t.Fatalf("rescue = %d %d rule %d %v, want [300,400)", st, n, rule, ok)
	}
}

func TestScoreboardUpdateValidity(t *testing.T) {
	s := NewScoreboard(2)
	// D-SACK below the cumulative ACK, then a block beyond nxt, an empty
	// block and a block straddling una: only the last counts, cut at una.
	if n := s.Update(1000, 2000, sb(blk(900, 1000), blk(1500, 2100), blk(1600, 1600), blk(950, 1100))); n != 100 {
		t.Fatalf("newly SACKed %d, want 100", n)
	}
	if s.DSACKs() != 1 || !s.IsSacked(1000) || s.IsSacked(999) || s.IsSacked(1500) {
		t.Fatalf("DSACKs %d, SACKed %v %v", s.DSACKs(), s.IsSacked(1000), s.IsSacked(1500))
	}
	// D-SACK inside the second block (RFC 2883 section 4.2).
	if n := s.Update(1000, 2000, sb(blk(1300, 1400), blk(1200, 1500))); n != 300 || s.DSACKs() != 2 {
		t.Fatalf("newly %d DSACKs %d", n, s.DSACKs())
	}
	// Full: a third disjoint range is ignored and counted.
	if n := s.Update(1000, 2000, sb(blk(1700, 1800))); n != 0 || s.Overflows() != 1 || s.Len() != 2 {
		t.Fatalf("newly %d Overflows %d Len %d", n, s.Overflows(), s.Len())
	}
}

// refBoard is the sender's reference: per-offset SACKed flags from una.
type refBoard struct{ sacked []bool }

func (m *refBoard) runs(lo, hi int) (count, bytes int) {
	for i := lo; i < hi; i++ {
		if m.sacked[i] {
			bytes++
			if i == lo || !m.sacked[i-1] {
				count++
			}
		}
	}
	return
}

// isLost is RFC 6675's IsLost read literally, byte by byte: count the
// discontiguous SACKed runs and the SACKed bytes above off.
func (m *refBoard) isLost(off, nxt, dupThresh, smss int) bool {
	count, bytes := m.runs(off+1, nxt)
	return count >= dupThresh || bytes > (dupThresh-1)*smss
}

func TestScoreboardMatchesReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const W = 300
		base := seqnum.Value(baseGen.Draw(t, "base")) // una's sequence number
		max := rapid.IntRange(1, 6).Draw(t, "max")
		s := NewScoreboard(max)
		s.Update(base, base, nil)
		m := &refBoard{sacked: make([]bool, 2*W)}
		nxt := 0 // offsets from base; una is offset 0
		seq := func(off int) seqnum.Value { return base.Add(seqnum.Size(off)) }
		offGen := func(label string) int { return rapid.IntRange(-20, nxt+20).Draw(t, label) }
		t.Repeat(map[string]func(*rapid.T){
			"": func(t *rapid.T) {
				count, bytes := m.runs(0, nxt)
				if int(s.SackedBytes()) != bytes || s.Len() != count {
					t.Fatalf("SackedBytes %d Len %d, want %d %d", s.SackedBytes(), s.Len(), bytes, count)
				}
				high := 0
				for i := 0; i < nxt; i++ {
					if s.IsSacked(seq(i)) != m.sacked[i] {
						t.Fatalf("IsSacked(offset %d) wrong", i)
					}
					if m.sacked[i] {
						high = i + 1
					}
				}
				if s.HighSacked() != seq(high) {
					t.Fatalf("HighSacked offset %d, want %d", s.HighSacked()-base, high)
				}
				smss := rapid.IntRange(1, 40).Draw(t, "smss")
				dt := rapid.IntRange(1, 4).Draw(t, "dupThresh")
				for i := 0; i < nxt; i++ {
					if got, want := s.IsLost(seq(i), dt, smss), m.isLost(i, nxt, dt, smss); got != want {
						t.Fatalf("IsLost(offset %d, %d, %d) = %v, want %v", i, dt, smss, got, want)
					}
				}
				hr := rapid.IntRange(-5, nxt+5).Draw(t, "highRxt")
				// SetPipe by the letter of RFC 6675 section 4.
				pipe := 0
				for i := 0; i < nxt; i++ {
					if m.sacked[i] {
						continue
					}
					if !m.isLost(i, nxt, dt, smss) {
						pipe++
					}
					if i < hr {
						pipe++
					}
				}
				if got := s.Pipe(seq(0), seq(nxt), seq(hr), smss, dt); got != pipe {
					t.Fatalf("Pipe(highRxt offset %d, smss %d, dupThresh %d) = %d, want %d", hr, smss, dt, got, pipe)
				}
				// NextSeg by the letter: the smallest unSACKed S >= highRxt
				// below the highest SACKed octet; rule 1 if lost, else 2
				// (NextSeg) or 3 (NextSegNoNewData); else rule 4.
				wantRule, wantStart, wantLen := 0, 0, 0
				for i := max0(hr); i < high; i++ {
					if !m.sacked[i] {
						wantStart = i
						for j := i; j < nxt && !m.sacked[j] && j-i < smss; j++ {
							wantLen++
						}
						wantRule = 3
						if m.isLost(i, nxt, dt, smss) {
							wantRule = 1
						}
						break
					}
				}
				st, n, rule, ok := s.NextSeg(seq(0), seq(nxt), seq(hr), smss, dt)
				if wantRule == 1 {
					if !ok || rule != 1 || st != seq(wantStart) || n != wantLen {
						t.Fatalf("NextSeg = offset %d len %d rule %d, want rule 1 at %d len %d", st-base, n, rule, wantStart, wantLen)
					}
				} else if !ok || rule != 2 || st != seq(nxt) || n != smss {
					t.Fatalf("NextSeg = offset %d len %d rule %d, want rule 2", st-base, n, rule)
				}
				resc := &Rescue{RecoveryPoint: seq(nxt)}
				st, n, rule, ok = s.NextSegNoNewData(seq(0), seq(nxt), seq(hr), smss, dt, resc)
				if wantRule == 0 {
					top := -1 // highest unSACKed offset
					for i := nxt - 1; i >= 0; i-- {
						if !m.sacked[i] {
							top = i
							break
						}
					}
					if top >= 0 {
						wantRule, wantStart = 4, top
						for wantStart > 0 && !m.sacked[wantStart-1] && top-wantStart+1 < smss {
							wantStart--
						}
						wantLen = top - wantStart + 1
					}
				}
				if wantRule == 0 {
					if ok {
						t.Fatalf("NextSegNoNewData = offset %d len %d rule %d, want nothing", st-base, n, rule)
					}
				} else if !ok || rule != wantRule || st != seq(wantStart) || n != wantLen {
					t.Fatalf("NextSegNoNewData = offset %d len %d rule %d %v, want rule %d at %d len %d", st-base, n, rule, ok, wantRule, wantStart, wantLen)
				}
			},
			"Send": func(t *rapid.T) {
				nxt = min(nxt+rapid.IntRange(1, 100).Draw(t, "n"), W)
			},
			"Ack": func(t *rapid.T) {
				newUna := rapid.IntRange(0, nxt).Draw(t, "una")
				nb := rapid.IntRange(0, 4).Draw(t, "nblocks")
				blocks := make([]header.SACKBlock, nb)
				for i := range blocks {
					l := offGen("left")
					r := rapid.IntRange(l-5, l+60).Draw(t, "right")
					blocks[i] = blk(uint32(seq(l)), uint32(seq(r)))
				}
				// The reference: shift to the new una, then apply the blocks.
				copy(m.sacked, m.sacked[newUna:])
				clear(m.sacked[len(m.sacked)-newUna:])
				base, nxt = seq(newUna), nxt-newUna
				want := 0
				for k, b := range blocks {
					l, r := int(int32(uint32(b.Left)-uint32(base))), int(int32(uint32(b.Right)-uint32(base)))
					if k == 0 && (l < 0 || nb > 1 && l < r && refContains(blocks[1], base, l, r)) {
						continue // D-SACK
					}
					if r <= 0 || r <= l || r > nxt {
						continue
					}
					l = max0(l)
					c, _ := m.runs(0, nxt)
					touches := false
					for i := max0(l - 1); i <= r && i < len(m.sacked); i++ {
						touches = touches || m.sacked[i]
					}
					if !touches && c == max {
						continue // scoreboard full
					}
					for i := l; i < r; i++ {
						if !m.sacked[i] {
							m.sacked[i] = true
							want++
						}
					}
				}
				if got := s.Update(base, seq(nxt), blocks); int(got) != want {
					t.Fatalf("Update(%v) newly SACKed %d, want %d", blocks, got, want)
				}
			},
		})
	})
}

func refContains(b header.SACKBlock, base seqnum.Value, l, r int) bool {
	l1, r1 := int(int32(uint32(b.Left)-uint32(base))), int(int32(uint32(b.Right)-uint32(base)))
	return l1 <= l && r <= r1
}

func max0(i int) int { return max(i, 0) }

func TestScoreboardNoAllocs(t *testing.T) {
	s := NewScoreboard(32)
	una := seqnum.Value(math.MaxUint32 - 5000)
	blocks := make([]header.SACKBlock, 3)
	resc := &Rescue{}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		nxt := una.Add(20000)
		for k := range blocks {
			l := una.Add(seqnum.Size(100 + (i*37+k*1000)%15000))
			blocks[k] = blk(uint32(l), uint32(l+50))
		}
		s.Update(una, nxt, blocks)
		_ = s.IsLost(una, 3, 1460)
		_ = s.Pipe(una, nxt, una.Add(300), 1460, 3)
		s.NextSeg(una, nxt, una, 1460, 3)
		s.NextSegNoNewData(una, nxt, una, 1460, 3, resc)
		_ = s.IsSacked(una.Add(150))
		if i%20 == 19 {
			una = una.Add(700)
		}
		i++
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}

func BenchmarkScoreboardUpdatePipe(b *testing.B) {
	s := NewScoreboard(32)
	blocks := make([]header.SACKBlock, 3)
	una, nxt := seqnum.Value(0), seqnum.Value(1460*100)
	i := 0
	for b.Loop() {
		for k := range blocks {
			l := seqnum.Value(1460 * (1 + (i*7+k*13)%99))
			blocks[k] = blk(uint32(l), uint32(l+1460))
		}
		s.Update(una, nxt, blocks)
		_ = s.Pipe(una, nxt, una, 1460, 3)
		s.NextSeg(una, nxt, una, 1460, 3)
		i++
		if i%64 == 0 {
			s.Reset()
		}
	}
}
