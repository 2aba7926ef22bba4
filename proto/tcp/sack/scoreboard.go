package sack

import (
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/tcp/seqnum"
)

// Scoreboard is a sender's record of the data above SND.UNA that the
// receiver has selectively acknowledged (RFC 6675 section 3), as at most max
// disjoint ranges, with the routines of RFC 6675 section 4 that read it.
//
// Conventions. RFC 6675 names octets: HighACK is the highest octet
// cumulatively acknowledged, HighData the highest octet sent, HighRxt the
// highest octet retransmitted. The methods here take RFC 9293 style
// exclusive bounds instead:
//
//	una     = SND.UNA = HighACK + 1 (first unacknowledged octet)
//	nxt     = SND.NXT = HighData + 1 (first octet never sent; with
//	          retransmissions after a timeout, SND.MAX rather than SND.NXT)
//	highRxt = HighRxt + 1: the octet after the last one retransmitted in
//	          this recovery. Set it to una on entering loss recovery (RFC
//	          6675 section 5 sets HighRxt = HighACK) and to start+length
//	          after each retransmission NextSeg returns under rules (1) or
//	          (3). A highRxt below una is taken as una.
//
// smss is the sender MSS and dupThresh is DupThresh (3, RFC 6675 section 2).
type Scoreboard struct {
	set
	una       seqnum.Value
	dsacks    uint64
	overflows uint64
}

// NewScoreboard returns an empty scoreboard holding at most max ranges
// (max < 1 is taken as 1). A receiver reports at most 4 blocks per ACK but
// may hold many more holes; 32 or 64 is a reasonable max.
func NewScoreboard(max int) *Scoreboard {
	return &Scoreboard{set: newSet(max)}
}

// Reset empties the scoreboard (after a retransmission timeout, RFC 6675
// section 5.1, or when the connection is reused). The counters are kept.
func (s *Scoreboard) Reset() { s.reset() }

// Len returns how many disjoint SACKed ranges are held.
func (s *Scoreboard) Len() int { return len(s.s) }

// Range returns SACKed range i, 0 <= i < Len(), in ascending order.
func (s *Scoreboard) Range(i int) (start, end seqnum.Value) { return s.s[i].start, s.s[i].end }

// DSACKs returns how many D-SACK blocks (RFC 2883 section 4) Update has
// seen and ignored.
func (s *Scoreboard) DSACKs() uint64 { return s.dsacks }

// Overflows returns how many valid SACK blocks Update had to ignore because
// they needed a new range while the scoreboard was full. Ignoring them is
// conservative: the data is treated as not SACKed and may be retransmitted.
func (s *Scoreboard) Overflows() uint64 { return s.overflows }

// isDSACK reports whether the first block of an ACK is a D-SACK, per RFC
// 2883 section 4: it lies (at least partly) below the cumulative ACK, or
// it is contained in the second block.
func isDSACK(blocks []header.SACKBlock, una seqnum.Value) bool {
	l, r := seqnum.Value(blocks[0].Left), seqnum.Value(blocks[0].Right)
	if l.LessThan(una) {
		return true
	}
	if len(blocks) > 1 {
		l1, r1 := seqnum.Value(blocks[1].Left), seqnum.Value(blocks[1].Right)
		return l1.LessThanEq(l) && r.LessThanEq(r1) && l.LessThan(r)
	}
	return false
}

// Update processes an ACK whose cumulative acknowledgment is una, sent while
// nxt was the send limit, carrying the SACK blocks blocks. It first drops
// everything below una. Then for each block [Left, Right): the first block
// is a D-SACK if it starts below una or lies within the second block (RFC
// 2883 section 4), and is counted (DSACKs) and ignored; any other block is
// ignored unless una < Right <= nxt and Left < Right, and a block starting
// below una is cut to start at una (RFC 6675 section 5: the scoreboard holds
// data above the cumulative ACK only). Valid blocks are merged into the
// scoreboard. It returns how many bytes became SACKed that were not before
// (bytes leaving the scoreboard because una advanced are not counted).
func (s *Scoreboard) Update(una, nxt seqnum.Value, blocks []header.SACKBlock) (newlySacked seqnum.Size) {
	s.trimBelow(una)
	s.una = una
	for k, b := range blocks {
		l, r := seqnum.Value(b.Left), seqnum.Value(b.Right)
		if k == 0 && isDSACK(blocks, una) {
			s.dsacks++
			continue
		}
		if r.LessThanEq(una) || r.LessThanEq(l) || nxt.LessThan(r) {
			continue
		}
		l = seqnum.Max(l, una)
		added, ok := s.insert(l, r, 0)
		if !ok {
			s.overflows++
			continue
		}
		newlySacked += added
	}
	return newlySacked
}

// IsSacked reports whether seq has been SACKed.
func (s *Scoreboard) IsSacked(seq seqnum.Value) bool { return s.find(seq) >= 0 }

// SackedBytes returns how many bytes above the last Update's una are SACKed.
func (s *Scoreboard) SackedBytes() seqnum.Size { return s.bytes }

// HighSacked returns the highest SACKed sequence number plus one, or the
// una of the last Update when nothing is SACKed (0 before any Update).
func (s *Scoreboard) HighSacked() seqnum.Value {
	if len(s.s) == 0 {
		return s.una
	}
	return s.s[len(s.s)-1].end
}

// lost applies RFC 6675's IsLost test to count discontiguous SACKed ranges
// and bytes SACKed above a sequence number.
func lost(count int, bytes seqnum.Size, dupThresh, smss int) bool {
	return count >= dupThresh || int64(bytes) > int64(dupThresh-1)*int64(smss)
}

// IsLost implements IsLost(SeqNum) of RFC 6675 section 4: seq is deemed
// lost when DupThresh discontiguous SACKed sequences lie above it, or more
// than (DupThresh - 1) * SMSS bytes above it are SACKed. "Above" is strictly
// greater than seq. The scoreboard keeps bytes, not segments, so a
// "discontiguous SACKed sequence" is a maximal run of SACKed bytes (a
// range, or the part of one above seq). With full-sized segments the byte
// test alone decides (DupThresh SACKed segments exceed (DupThresh-1)*SMSS
// bytes); the range count catches small segments.
func (s *Scoreboard) IsLost(seq seqnum.Value, dupThresh int, smss int) bool {
	above := seq.Add(1)
	count, bytes := 0, seqnum.Size(0)
	for k := len(s.s) - 1; k >= 0; k-- {
		sp := s.s[k]
		if sp.end.LessThanEq(above) {
			break
		}
		count++
		bytes += seqnum.Max(sp.start, above).Size(sp.end)
		if lost(count, bytes, dupThresh, smss) {
			return true
		}
	}
	return lost(count, bytes, dupThresh, smss)
}

// firstHole returns the smallest unSACKed sequence number at or above from,
// and the end of the hole it starts (the start of the next SACKed range, or
// nxt when none lies above), clipped to nxt.
func (s *Scoreboard) firstHole(from, nxt seqnum.Value) (start, end seqnum.Value) {
	start, end = from, nxt
	for _, sp := range s.s {
		if sp.end.LessThanEq(start) {
			continue
		}
		if sp.start.LessThanEq(start) {
			start = sp.end
			continue
		}
		end = sp.start
		break
	}
	return start, seqnum.Min(end, nxt)
}

// candidate returns the start and end of the first hole at or above
// max(una, highRxt) that lies below HighSacked (RFC 6675 NextSeg criteria
// (1.a) and (1.b)), and whether such a hole exists.
func (s *Scoreboard) candidate(una, nxt, highRxt seqnum.Value) (start, end seqnum.Value, ok bool) {
	start, end = s.firstHole(seqnum.Max(una, highRxt), nxt)
	high := s.HighSacked()
	if !start.LessThan(high) || !start.LessThan(nxt) || start.LessThan(una) {
		return 0, 0, false
	}
	return start, end, true
}

// segLen is min(smss, end-start) as an int.
func segLen(start, end seqnum.Value, smss int) int {
	return int(min(int64(start.Size(end)), int64(smss)))
}

// NextSeg implements rules (1) and (2) of NextSeg() in RFC 6675 section 4.
//
// Rule (1): if there is a smallest unSACKed sequence number S2 with S2 >=
// highRxt (RFC: S2 > HighRxt), S2 below the highest SACKed octet, and
// IsLost(S2), it returns start = S2, length = min(smss, bytes up to the next
// SACKed range), rule 1, ok true: retransmit that, then set highRxt =
// start+length. (IsLost only gets weaker as sequence numbers rise, so the
// smallest unSACKed number at or above highRxt is the only candidate.)
//
// Rule (2): otherwise it returns start = nxt, length = smss, rule 2, ok true,
// without knowing whether there is unsent data or window: the caller sends
// up to length bytes of new data from nxt if it has them and the
// receiver's window allows it (RFC 6675 rule (2)); if it cannot send any, it
// calls NextSegNoNewData for rules (3) and (4).
//
// ok is false only when smss <= 0.
func (s *Scoreboard) NextSeg(una, nxt, highRxt seqnum.Value, smss int, dupThresh int) (start seqnum.Value, length int, rule int, ok bool) {
	if smss <= 0 {
		return 0, 0, 0, false
	}
	if st, end, found := s.candidate(una, nxt, highRxt); found && s.IsLost(st, dupThresh, smss) {
		return st, segLen(st, end, smss), 1, true
	}
	return nxt, smss, 2, true
}

// Rescue is the state of RFC 6675's rescue retransmission (NextSeg rule
// (4)), owned by the caller and passed to NextSegNoNewData. The zero value
// is "RescueRxt undefined".
type Rescue struct {
	// RecoveryPoint is SND.NXT when loss recovery was entered (RFC 6675
	// RecoveryPoint + 1); the caller sets it on each entry into recovery.
	RecoveryPoint seqnum.Value
	// RescueRxt (RFC 6675 RescueRxt + 1) and whether it is defined; set by
	// NextSegNoNewData when it returns a rescue retransmission.
	RescueRxt seqnum.Value
	Defined   bool
}

// NextSegNoNewData is NextSeg for when rule (2) does not apply (no unsent
// data, or the receiver's window does not allow sending it): it implements
// rules (1), (3) and, when rescue is not nil, (4) of RFC 6675 section 4.
//
// Rule (1) is as in NextSeg (rule 1).
//
// Rule (3): if the smallest unSACKed S3 >= highRxt below the highest SACKed
// octet exists but is not lost, it returns that segment (start S3, length
// up to smss, not crossing SACKed data) with rule 3: the RFC says SHOULD
// retransmit it. The caller sets highRxt = start+length after sending.
//
// Rule (4): otherwise, if rescue != nil, unSACKed data is outstanding
// (some octet in [una, nxt) is not SACKed) and either rescue.Defined is
// false or una > rescue.RescueRxt (RFC: HighACK > RescueRxt), it returns the
// segment of up to smss bytes ending at the highest unSACKed octet, within
// its hole, with rule 4, and sets rescue.RescueRxt = rescue.RecoveryPoint,
// rescue.Defined = true. HighRxt must not be updated after a rescue
// retransmission (RFC 6675 rule (4)).
//
// Otherwise ok is false (rule (5): nothing to send).
func (s *Scoreboard) NextSegNoNewData(una, nxt, highRxt seqnum.Value, smss int, dupThresh int, rescue *Rescue) (start seqnum.Value, length int, rule int, ok bool) {
	if smss <= 0 {
		return 0, 0, 0, false
	}
	if st, end, found := s.candidate(una, nxt, highRxt); found {
		if s.IsLost(st, dupThresh, smss) {
			return st, segLen(st, end, smss), 1, true
		}
		return st, segLen(st, end, smss), 3, true
	}
	if rescue == nil || (rescue.Defined && !una.GreaterThan(rescue.RescueRxt)) {
		return 0, 0, 0, false
	}
	// The highest unSACKed octet below nxt: the top of the highest hole.
	holeEnd := nxt
	for k := len(s.s) - 1; k >= 0; k-- {
		sp := s.s[k]
		if sp.start.GreaterThanEq(holeEnd) {
			continue
		}
		if sp.end.GreaterThanEq(holeEnd) {
			holeEnd = sp.start
			continue
		}
		break
	}
	if !una.LessThan(holeEnd) {
		return 0, 0, 0, false
	}
	holeStart := una
	for k := len(s.s) - 1; k >= 0; k-- {
		if s.s[k].end.LessThanEq(holeEnd) {
			holeStart = seqnum.Max(s.s[k].end, una)
			break
		}
	}
	n := segLen(holeStart, holeEnd, smss)
	rescue.RescueRxt, rescue.Defined = rescue.RecoveryPoint, true
	return holeEnd.Sub(seqnum.Size(n)), n, 4, true
}

// Pipe implements SetPipe() of RFC 6675 section 4: the number of octets
// estimated to be in flight. For each octet S1 in [una, nxt) that is not
// SACKed, pipe gains 1 if IsLost(S1) is false (the original transmission
// may still be in the network) and 1 more if S1 < highRxt (RFC: S1 <=
// HighRxt; the retransmission may be in the network).
//
// Within one hole IsLost is the same for every octet (the SACKed data above
// each is the same), so this costs O(Len()).
func (s *Scoreboard) Pipe(una, nxt, highRxt seqnum.Value, smss int, dupThresh int) int {
	if !una.LessThan(nxt) {
		return 0
	}
	highRxt = seqnum.Min(seqnum.Max(highRxt, una), nxt)
	pipe := 0
	count, bytes := 0, seqnum.Size(0) // SACKed ranges and bytes above the hole
	holeEnd := nxt
	add := func(h0, h1 seqnum.Value) {
		if !h0.LessThan(h1) {
			return
		}
		if !lost(count, bytes, dupThresh, smss) {
			pipe += int(h0.Size(h1))
		}
		if h0.LessThan(highRxt) {
			pipe += int(h0.Size(seqnum.Min(h1, highRxt)))
		}
	}
	for k := len(s.s) - 1; k >= 0; k-- {
		sp := s.s[k]
		st, en := seqnum.Max(sp.start, una), seqnum.Min(sp.end, nxt)
		if !st.LessThan(en) {
			if !sp.start.LessThan(nxt) {
				continue // wholly above nxt
			}
			break // wholly below una
		}
		add(en, holeEnd)
		count++
		bytes += st.Size(en)
		holeEnd = st
	}
	add(una, holeEnd)
	return pipe
}
