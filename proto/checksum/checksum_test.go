package checksum

import (
	"encoding/binary"
	"testing"

	"pgregory.net/rapid"
)

// refSum is RFC 1071 §1 taken literally: big-endian 16-bit words, the odd
// last byte padded with zero, added with end-around carry one at a time.
func refSum(b []byte, initial uint16) uint16 {
	s := uint32(initial)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
		s = s&0xffff + s>>16
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// Property: Sum equals the reference for every length, content and start
// offset (odd offsets mean unaligned loads), with any initial value.
func TestSumMatchesReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		data := rapid.SliceOfN(rapid.Byte(), 0, 3000).Draw(t, "data")
		off := rapid.IntRange(0, 7).Draw(t, "offset")
		initial := rapid.Uint16().Draw(t, "initial")
		buf := make([]byte, off+len(data))
		copy(buf[off:], data)
		b := buf[off:]
		if got, want := Sum(b, initial), refSum(b, initial); got != want {
			t.Fatalf("Sum(len %d, off %d, initial %#04x) = %#04x, reference %#04x", len(b), off, initial, got, want)
		}
	})
}

// Property: all-0xFF data exercises every carry path (the accumulator hits
// 2^64-1 and the folds carry twice); it must still match the reference.
func TestSumCarryHeavy(t *testing.T) {
	for n := 0; n <= 1600; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = 0xff
		}
		for _, initial := range []uint16{0, 1, 0xfffe, 0xffff} {
			if got, want := Sum(b, initial), refSum(b, initial); got != want {
				t.Fatalf("len %d initial %#x: Sum = %#04x, reference %#04x", n, initial, got, want)
			}
		}
	}
}

// Property: splitting data anywhere (odd boundaries included) and combining
// the pieces' sums with CombineAt gives the sum of the whole; Combine alone
// is right when the boundary is even.
func TestCombineAtAnySplit(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		data := rapid.SliceOfN(rapid.Byte(), 0, 600).Draw(t, "data")
		cuts := rapid.SliceOfN(rapid.IntRange(0, len(data)), 0, 5).Draw(t, "cuts")
		want := refSum(data, 0)
		// Sort the cut points and sum piece by piece.
		for i := range cuts {
			for j := i + 1; j < len(cuts); j++ {
				if cuts[j] < cuts[i] {
					cuts[i], cuts[j] = cuts[j], cuts[i]
				}
			}
		}
		var acc uint16
		prev := 0
		for _, c := range append(cuts, len(data)) {
			piece := Sum(data[prev:c], 0)
			if prev%2 == 0 {
				acc = Combine(acc, piece)
			} else {
				acc = CombineAt(acc, piece, prev)
			}
			prev = c
		}
		// ±0: one's complement sums of the same data may differ only as
		// 0x0000 versus 0xFFFF when a piece sums to zero; checksums
		// compare equal modulo 0xFFFF.
		if acc%0xffff != want%0xffff {
			t.Fatalf("combined %#04x, whole %#04x (cuts %v)", acc, want, cuts)
		}
	})
}

// Property: a checksum written into data makes the data verify: the sum
// including the field is 0xFFFF and Checksum returns 0.
func TestChecksumVerifies(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 1600).Draw(t, "len")
		b := rapid.SliceOfN(rapid.Byte(), n, n).Draw(t, "data")
		at := rapid.IntRange(0, (n-2)/2).Draw(t, "field") * 2
		ph := rapid.Uint16().Draw(t, "pseudo")
		b[at], b[at+1] = 0, 0
		binary.BigEndian.PutUint16(b[at:], Checksum(b, ph))
		if s := Sum(b, ph); s != 0xffff {
			t.Fatalf("sum with checksum field = %#04x, want 0xffff", s)
		}
		if c := Checksum(b, ph); c != 0 {
			t.Fatalf("Checksum over verified data = %#04x, want 0", c)
		}
		// Flipping any single bit must break verification.
		bit := rapid.IntRange(0, 8*n-1).Draw(t, "bit")
		b[bit/8] ^= 1 << (bit % 8)
		if Sum(b, ph) == 0xffff {
			t.Fatalf("single bit flip at %d not detected", bit)
		}
	})
}

// RFC 1071 §3 gives the sum of bytes 00 01 f2 03 f4 f5 f6 f7 as ddf2.
func TestRFC1071Example(t *testing.T) {
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Sum(b, 0); got != 0xddf2 {
		t.Fatalf("Sum = %#04x, want 0xddf2", got)
	}
	if got := Checksum(b, 0); got != 0x220d {
		t.Fatalf("Checksum = %#04x, want 0x220d", got)
	}
}

// RFC 1624 §4: the other header words sum to 0xCD7A and a field changes
// from 0x5555 to 0x3285. The old checksum is 0xDD2F; eqn. 3 gives 0x0000,
// the same as recomputing, where RFC 1141's eqn. 2 gave 0xFFFF. The errata
// 5864 examples: an unchanged field with HC 0 stays 0; 0x5555→0x5556 with
// HC 0 gives 0xFFFE.
func TestRFC1624Examples(t *testing.T) {
	if hc := ^Combine(0xcd7a, 0x5555); hc != 0xdd2f {
		t.Fatalf("old checksum %#04x, want 0xdd2f", hc)
	}
	if got := Update16(0xdd2f, 0x5555, 0x3285); got != 0x0000 {
		t.Fatalf("Update16 = %#04x, want 0x0000", got)
	}
	if got, want := Update16(0xdd2f, 0x5555, 0x3285), ^Combine(0xcd7a, 0x3285); got != want {
		t.Fatalf("Update16 = %#04x, recomputed %#04x", got, want)
	}
	if got := Update16(0, 0x5555, 0x5555); got != 0 {
		t.Fatalf("unchanged field: %#04x, want 0", got)
	}
	if got := Update16(0, 0x5555, 0x5556); got != 0xfffe {
		t.Fatalf("0x5555→0x5556: %#04x, want 0xfffe", got)
	}
}

// Property: patching a 16- or 32-bit field with Update16/Update32 gives a
// checksum under which the modified data verifies, and (RFC 1624's point)
// the same value as recomputing from scratch, whenever the data keeps a
// non-zero word besides the checksum (as every real header does: see
// Update16). Otherwise the two agree as one's complement numbers.
func TestUpdateMatchesRecompute(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		words := rapid.IntRange(4, 40).Draw(t, "words")
		b := rapid.SliceOfN(rapid.Byte(), 2*words, 2*words).Draw(t, "data")
		b[0], b[1] = 0, 0 // the checksum field
		binary.BigEndian.PutUint16(b, Checksum(b, 0))
		wide := rapid.Bool().Draw(t, "32-bit")
		at := 2 * rapid.IntRange(1, words-2).Draw(t, "field")
		old := binary.BigEndian.Uint16(b)
		var got uint16
		if wide {
			o := binary.BigEndian.Uint32(b[at:])
			n := rapid.Uint32().Draw(t, "new32")
			binary.BigEndian.PutUint32(b[at:], n)
			got = Update32(old, o, n)
		} else {
			o := binary.BigEndian.Uint16(b[at:])
			n := rapid.Uint16().Draw(t, "new16")
			if n == o {
				n ^= 1 // errata 4782: an unchanged field is not an update
			}
			binary.BigEndian.PutUint16(b[at:], n)
			got = Update16(old, o, n)
		}
		b[0], b[1] = 0, 0
		want := Checksum(b, 0)
		if Sum(b, 0) == 0 { // all zeros besides the checksum
			if got%0xffff != want%0xffff {
				t.Fatalf("incremental %#04x, recomputed %#04x", got, want)
			}
			return
		}
		binary.BigEndian.PutUint16(b, got)
		if Sum(b, 0) != 0xffff {
			t.Fatalf("data does not verify after update (checksum %#04x)", got)
		}
		if got != want {
			t.Fatalf("incremental %#04x, recomputed %#04x", got, want)
		}
	})
}

// Property: the pseudo-header sum is the sum of the 12-byte pseudo-header
// laid out as RFC 768 draws it.
func TestPseudoHeaderSum(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var src, dst [4]byte
		binary.BigEndian.PutUint32(src[:], rapid.Uint32().Draw(t, "src"))
		binary.BigEndian.PutUint32(dst[:], rapid.Uint32().Draw(t, "dst"))
		proto := rapid.Uint8().Draw(t, "proto")
		n := rapid.Uint16().Draw(t, "len")
		ph := make([]byte, 12)
		copy(ph[0:4], src[:])
		copy(ph[4:8], dst[:])
		ph[9] = proto
		binary.BigEndian.PutUint16(ph[10:12], n)
		if got, want := PseudoHeaderSum(src, dst, proto, n), refSum(ph, 0); got != want {
			t.Fatalf("PseudoHeaderSum = %#04x, reference %#04x", got, want)
		}
	})
}

// Property: Fold of a plain integer sum of words equals one's complement
// addition of those words.
func TestFold(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ws := rapid.SliceOfN(rapid.Uint16(), 0, 5000).Draw(t, "words")
		var acc uint64
		var s uint16
		for _, w := range ws {
			acc += uint64(w)
			s = Combine(s, w)
		}
		if Fold(acc)%0xffff != s%0xffff {
			t.Fatalf("Fold = %#04x, one's complement sum %#04x", Fold(acc), s)
		}
	})
	if Fold(^uint64(0)) != 0xffff {
		t.Fatalf("Fold(2^64-1) = %#04x, want 0xffff", Fold(^uint64(0)))
	}
}

func TestSumAllocatesNothing(t *testing.T) {
	b := make([]byte, 1500)
	if n := testing.AllocsPerRun(100, func() { _ = Sum(b, 0) }); n != 0 {
		t.Fatalf("Sum allocates %v times per call", n)
	}
}

var sink uint16

func benchSum(b *testing.B, n, off int) {
	buf := make([]byte, n+off)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	data := buf[off:]
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		sink = Checksum(data, 0)
	}
}

func BenchmarkChecksum1500(b *testing.B)    { benchSum(b, 1500, 0) }
func BenchmarkChecksum1500Odd(b *testing.B) { benchSum(b, 1500, 1) }
func BenchmarkChecksum64(b *testing.B)      { benchSum(b, 64, 0) }
func BenchmarkChecksum9000(b *testing.B)    { benchSum(b, 9000, 0) }
func BenchmarkChecksumReference1500(b *testing.B) {
	buf := make([]byte, 1500)
	b.SetBytes(1500)
	for b.Loop() {
		sink = ^refSum(buf, 0)
	}
}

// bytewise is gopacket's approach (layers/tcpip.go): one byte pair at a time
// into a 32-bit accumulator, folded at the end. Kept as a baseline.
func bytewise(b []byte) uint16 {
	var csum uint32
	for i := 0; i+1 < len(b); i += 2 {
		csum += uint32(b[i]) << 8
		csum += uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		csum += uint32(b[len(b)-1]) << 8
	}
	for csum > 0xffff {
		csum = (csum >> 16) + (csum & 0xffff)
	}
	return ^uint16(csum)
}

func BenchmarkChecksumBytewise1500(b *testing.B) {
	buf := make([]byte, 1500)
	b.SetBytes(1500)
	for b.Loop() {
		sink = bytewise(buf)
	}
}
