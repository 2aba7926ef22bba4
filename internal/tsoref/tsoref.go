// Package tsoref is the reference that hardware TCP segmentation (TSO) is
// checked against: software segmentation of an IPv4/TCP frame, as a
// device's TSO must produce it (82599 datasheet 7.2.4; 82576 datasheet
// 7.2.x). The simulator's tests (ixgbe/ixgbesim) and the tests of the igb
// driver against QEMU's 82576 use it, so that both are held to one
// definition. Checksums come from proto/checksum (RFC 1071).
package tsoref

import (
	"encoding/binary"

	"github.com/verinic/verinic/proto/checksum"
)

// Segment cuts an IPv4/TCP frame (an Ethernet header of eth bytes, correct
// checksums) into segments of mss payload bytes: each has the frame's
// headers with the IP total length, the IP ID plus the segment's index and
// the IP header checksum updated; the TCP sequence number advanced by the
// segment's offset; FIN and PSH on the last segment only, CWR on the first
// only; and the TCP checksum recomputed.
func Segment(f []byte, eth, mss int) [][]byte {
	ip := f[eth:]
	ihl := int(ip[0]&0xF) * 4
	tcp := ip[ihl:]
	thl := int(tcp[12]>>4) * 4
	h := eth + ihl + thl
	pay := f[h:]
	var out [][]byte
	for off, k := 0, 0; off < len(pay); off, k = off+mss, k+1 {
		m := min(mss, len(pay)-off)
		s := append(append([]byte(nil), f[:h]...), pay[off:off+m]...)
		sip, st := s[eth:], s[eth+ihl:]
		binary.BigEndian.PutUint16(sip[2:], uint16(ihl+thl+m))
		binary.BigEndian.PutUint16(sip[4:], binary.BigEndian.Uint16(ip[4:])+uint16(k))
		sip[10], sip[11] = 0, 0
		binary.BigEndian.PutUint16(sip[10:], checksum.Checksum(sip[:ihl], 0))
		binary.BigEndian.PutUint32(st[4:], binary.BigEndian.Uint32(tcp[4:])+uint32(off))
		if off+m < len(pay) {
			st[13] &^= 0x01 | 0x08 // FIN, PSH
		}
		if k > 0 {
			st[13] &^= 0x80 // CWR
		}
		st[16], st[17] = 0, 0
		var src, dst [4]byte
		copy(src[:], sip[12:16])
		copy(dst[:], sip[16:20])
		ph := checksum.PseudoHeaderSum(src, dst, 6, uint16(thl+m))
		binary.BigEndian.PutUint16(st[16:], checksum.Checksum(st[:thl+m], ph))
		out = append(out, s)
	}
	return out
}
