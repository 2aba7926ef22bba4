// Package checksum computes the Internet checksum of RFC 1071, the one used
// by IPv4, ICMP, UDP and TCP, and updates it incrementally as RFC 1624
// describes.
//
// Vocabulary used throughout:
//
//   - A "sum" is the 16-bit one's complement sum of the data read as
//     big-endian 16-bit words, the last odd byte padded with a zero byte
//     (RFC 1071 §1 steps 1–2). It is NOT complemented. Sums of adjacent
//     pieces combine with Combine (and CombineAt when a piece starts at an
//     odd byte offset), and a pseudo-header's sum is just another piece.
//   - A "checksum" is the complement of a sum: the value stored in a header
//     field (RFC 1071 §1 step 3). Data whose checksum field is correct sums,
//     field included, to 0xFFFF.
//
// The bulk loop adds 64-bit little-endian words with bits.Add64, eight per
// iteration, carrying the end-around carry between them; one's complement
// addition is byte-order independent (RFC 1071 §2(B)), so the folded result
// is byte-swapped once at the end. Nothing here allocates.
package checksum

import (
	"encoding/binary"
	"math/bits"
)

// Sum returns the one's complement sum of b added to initial (a sum of
// preceding data, 0 for none). The first byte of b is taken to lie at an even
// offset of the whole being summed; see CombineAt for pieces at odd offsets.
func Sum(b []byte, initial uint16) uint16 {
	acc := uint64(bits.ReverseBytes16(initial))
	return bits.ReverseBytes16(fold(sumLE(b, acc)))
}

// Checksum returns the Internet checksum of b preceded by data whose sum is
// initial (for example a pseudo-header sum): the complement of
// Sum(b, initial), ready to be stored in a header's checksum field. To verify
// received data, sum it checksum field included: the result is 0xFFFF (and
// Checksum returns 0) exactly when the field is correct.
func Checksum(b []byte, initial uint16) uint16 {
	return ^Sum(b, initial)
}

// Combine adds two sums in one's complement arithmetic: the sum of a piece
// followed by another piece that starts at an even offset.
func Combine(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s) + uint16(s>>16)
}

// CombineAt adds sum b of a piece that starts at byte offset off of the whole
// to a, the sum of everything before it. A piece at an odd offset contributes
// its sum byte-swapped (RFC 1071 §2(B)).
func CombineAt(a, b uint16, off int) uint16 {
	if off&1 != 0 {
		b = bits.ReverseBytes16(b)
	}
	return Combine(a, b)
}

// Fold reduces a 64-bit accumulation of big-endian 16-bit words (or of sums)
// to a 16-bit one's complement sum. It lets callers add many 16-bit fields in
// plain integer arithmetic and fold once.
func Fold(acc uint64) uint16 {
	return fold(acc)
}

// PseudoHeaderSum returns the sum of the IPv4 pseudo-header that UDP and TCP
// checksums cover (RFC 768; RFC 9293 §3.1): source and destination address,
// a zero byte, the protocol number and the transport length (header plus
// data). It accepts header.IPv4Addr values as [4]byte.
func PseudoHeaderSum(src, dst [4]byte, protocol uint8, length uint16) uint16 {
	acc := uint64(binary.BigEndian.Uint16(src[0:2])) +
		uint64(binary.BigEndian.Uint16(src[2:4])) +
		uint64(binary.BigEndian.Uint16(dst[0:2])) +
		uint64(binary.BigEndian.Uint16(dst[2:4])) +
		uint64(protocol) + uint64(length)
	return fold(acc)
}

// Update16 returns the checksum field's new value after a 16-bit field it
// covers changed from oldField to newField, without re-summing the data:
// HC' = ~(~HC + ~m + m') (RFC 1624 §3, eqn. 3), the form that RFC 1624 §4
// shows gives the same result as recomputing, unlike RFC 1141's eqn. 2.
// An unchanged field leaves the checksum as it is (RFC 1624 erratum 4782:
// eqn. 3 would turn a checksum of 0x0000 into 0xFFFF). Like eqn. 3 itself it
// assumes the covered data has a non-zero word besides the checksum (true of
// every IP, ICMP, UDP and TCP header); data that becomes all zeros gets
// 0x0000, the other one's complement zero, where recomputing gives 0xFFFF.
func Update16(checksum, oldField, newField uint16) uint16 {
	if oldField == newField {
		return checksum
	}
	acc := uint64(^checksum) + uint64(^oldField) + uint64(newField)
	return ^fold(acc)
}

// Update32 is Update16 for a 32-bit field (an IPv4 address, a TCP sequence
// number) that starts at an even offset of the covered data.
func Update32(checksum uint16, oldField, newField uint32) uint16 {
	if oldField == newField {
		return checksum
	}
	acc := uint64(^checksum) +
		uint64(^uint16(oldField>>16)) + uint64(^uint16(oldField)) +
		uint64(uint16(newField>>16)) + uint64(uint16(newField))
	return ^fold(acc)
}

// fold folds a 64-bit one's complement accumulator to 16 bits, keeping every
// end-around carry. It is byte-order neutral: lanes stay lanes.
func fold(acc uint64) uint16 {
	lo, c := bits.Add32(uint32(acc), uint32(acc>>32), 0)
	lo += c // cannot carry again: lo <= 2^32-2 when c == 1
	s := (lo & 0xffff) + (lo >> 16)
	s = (s & 0xffff) + (s >> 16)
	return uint16(s)
}

// sumLE adds b to acc as little-endian words in one's complement arithmetic
// (modulo 2^64-1, which 2^16-1 divides, so folding afterwards is exact).
func sumLE(b []byte, acc uint64) uint64 {
	var carry uint64
	for len(b) >= 64 {
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[8:16]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[16:24]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[24:32]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[32:40]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[40:48]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[48:56]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[56:64]), carry)
		b = b[64:]
	}
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), carry)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, carry = bits.Add64(acc, uint64(binary.LittleEndian.Uint32(b[0:4])), carry)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, carry = bits.Add64(acc, uint64(binary.LittleEndian.Uint16(b[0:2])), carry)
		b = b[2:]
	}
	if len(b) == 1 {
		// The odd last byte is the high byte of a big-endian word padded
		// with zero: the low byte of a little-endian one.
		acc, carry = bits.Add64(acc, uint64(b[0]), carry)
	}
	acc, carry = bits.Add64(acc, 0, carry)
	return acc + carry // at most 1 more; cannot overflow again
}
