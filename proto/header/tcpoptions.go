package header

import "encoding/binary"

// TCP option kinds (RFC 9293 §3.2; RFC 7323; RFC 2018) and their lengths.
const (
	TCPOptionEOL           uint8 = 0
	TCPOptionNOP           uint8 = 1
	TCPOptionMSS           uint8 = 2
	TCPOptionWindowScale   uint8 = 3
	TCPOptionSACKPermitted uint8 = 4
	TCPOptionSACK          uint8 = 5
	TCPOptionTimestamps    uint8 = 8

	TCPOptionMSSLen           = 4
	TCPOptionWindowScaleLen   = 3
	TCPOptionSACKPermittedLen = 2
	TCPOptionTimestampsLen    = 10

	// TCPMaxWindowScale is the largest shift RFC 7323 §2.3 allows; a
	// receiver uses 14 in place of anything larger.
	TCPMaxWindowScale = 14
	// TCPMaxSACKBlocks is how many SACK blocks fit in 40 bytes of options.
	TCPMaxSACKBlocks = 4
)

// SACKBlock is one block of a SACK option: the sequence space [Left, Right)
// that the receiver holds (RFC 2018 §3).
type SACKBlock struct{ Left, Right uint32 }

// TCPOption is one option as the iterator yields it. Data is the option's
// value: the bytes after kind and length (empty for NOP).
type TCPOption struct {
	Kind uint8
	Data []byte
}

// MSS returns the value of an MSS option.
func (o TCPOption) MSS() uint16 { return binary.BigEndian.Uint16(o.Data) }

// WindowScale returns the shift count of a window-scale option, limited to
// 14 as RFC 7323 §2.3 requires of a receiver.
func (o TCPOption) WindowScale() uint8 { return min(o.Data[0], TCPMaxWindowScale) }

// Timestamps returns TSval and TSecr of a timestamps option (RFC 7323 §3).
func (o TCPOption) Timestamps() (val, ecr uint32) {
	return binary.BigEndian.Uint32(o.Data[0:4]), binary.BigEndian.Uint32(o.Data[4:8])
}

// SACKBlocks returns how many blocks a SACK option holds.
func (o TCPOption) SACKBlocks() int { return len(o.Data) / 8 }

// SACKBlock returns block i of a SACK option.
func (o TCPOption) SACKBlock(i int) SACKBlock {
	d := o.Data[8*i:]
	return SACKBlock{Left: binary.BigEndian.Uint32(d[0:4]), Right: binary.BigEndian.Uint32(d[4:8])}
}

// tcpOptionLenOK reports whether n is a valid total length for kind.
func tcpOptionLenOK(kind uint8, n int) bool {
	switch kind {
	case TCPOptionMSS:
		return n == TCPOptionMSSLen
	case TCPOptionWindowScale:
		return n == TCPOptionWindowScaleLen
	case TCPOptionSACKPermitted:
		return n == TCPOptionSACKPermittedLen
	case TCPOptionSACK:
		return n >= 10 && (n-2)%8 == 0
	case TCPOptionTimestamps:
		return n == TCPOptionTimestampsLen
	}
	return n >= 2
}

// validTCPOptions checks the option list syntax; see ParseTCP. It is the
// iterator's logic in a tight loop, with a fast path for the layout nearly
// every segment of a timestamp-using connection carries: NOP, NOP,
// Timestamps (RFC 7323 Appendix A).
func validTCPOptions(o []byte) error {
	if len(o) == 12 && binary.BigEndian.Uint32(o) == 0x0101080a {
		return nil
	}
	for i := 0; i < len(o); {
		switch o[i] {
		case TCPOptionEOL:
			return nil
		case TCPOptionNOP:
			i++
			continue
		}
		if i+1 >= len(o) {
			return ErrTCPOptionLength
		}
		n := int(o[i+1])
		if n < 2 || n > len(o)-i {
			return ErrTCPOptionLength
		}
		if !tcpOptionLenOK(o[i], n) {
			return ErrTCPOptionSize
		}
		i += n
	}
	return nil
}

// TCPOptionIterator walks a TCP option list without allocating:
//
//	it := seg.Options()
//	for opt, ok := it.Next(); ok; opt, ok = it.Next() { … }
//	if err := it.Err(); err != nil { … }
//
// It stops at End of Option List, at the end of the header, or at the first
// malformed option, which Err then reports. NOP options are skipped.
type TCPOptionIterator struct {
	rest []byte
	err  error
}

// Next returns the next option, or false when there is none.
func (it *TCPOptionIterator) Next() (TCPOption, bool) {
	for len(it.rest) > 0 {
		kind := it.rest[0]
		switch kind {
		case TCPOptionEOL:
			it.rest = nil
			return TCPOption{}, false
		case TCPOptionNOP:
			it.rest = it.rest[1:]
			continue
		}
		if len(it.rest) < 2 || it.rest[1] < 2 || int(it.rest[1]) > len(it.rest) {
			it.err, it.rest = ErrTCPOptionLength, nil
			return TCPOption{}, false
		}
		n := int(it.rest[1])
		if !tcpOptionLenOK(kind, n) {
			it.err, it.rest = ErrTCPOptionSize, nil
			return TCPOption{}, false
		}
		opt := TCPOption{Kind: kind, Data: it.rest[2:n:n]}
		it.rest = it.rest[n:]
		return opt, true
	}
	return TCPOption{}, false
}

// Err returns the error that stopped the iteration, if any.
func (it *TCPOptionIterator) Err() error { return it.err }

// TCPOptions is the set of options a TCP implementation acts on, decoded in
// one pass by ParseTCPOptions. A zero value means none present.
type TCPOptions struct {
	HasMSS         bool
	MSS            uint16
	HasWindowScale bool
	WindowScale    uint8 // limited to 14
	SACKPermitted  bool
	HasTimestamps  bool
	TSVal, TSEcr   uint32
	SACKBlockCount int
	SACKBlocks     [TCPMaxSACKBlocks]SACKBlock
}

// ParseTCPOptions decodes the options of seg into o, overwriting it. Unknown
// options are skipped; a repeated option keeps its last value.
func ParseTCPOptions(seg TCP, o *TCPOptions) error {
	*o = TCPOptions{}
	it := seg.Options()
	for opt, ok := it.Next(); ok; opt, ok = it.Next() {
		switch opt.Kind {
		case TCPOptionMSS:
			o.HasMSS, o.MSS = true, opt.MSS()
		case TCPOptionWindowScale:
			o.HasWindowScale, o.WindowScale = true, opt.WindowScale()
		case TCPOptionSACKPermitted:
			o.SACKPermitted = true
		case TCPOptionTimestamps:
			o.HasTimestamps = true
			o.TSVal, o.TSEcr = opt.Timestamps()
		case TCPOptionSACK:
			o.SACKBlockCount = min(opt.SACKBlocks(), TCPMaxSACKBlocks)
			for i := 0; i < o.SACKBlockCount; i++ {
				o.SACKBlocks[i] = opt.SACKBlock(i)
			}
		}
	}
	return it.Err()
}

// Option writers: each writes one option at the start of b and returns its
// length. Callers concatenate them into TCPFields.Options; EncodeTCP pads
// the list to a multiple of 4.

// PutTCPOptionNOP writes a No-Operation option (used to align others).
func PutTCPOptionNOP(b []byte) int { b[0] = TCPOptionNOP; return 1 }

// PutTCPOptionMSS writes a Maximum Segment Size option (RFC 9293 §3.7.1).
func PutTCPOptionMSS(b []byte, mss uint16) int {
	_ = b[3]
	b[0], b[1] = TCPOptionMSS, TCPOptionMSSLen
	binary.BigEndian.PutUint16(b[2:4], mss)
	return TCPOptionMSSLen
}

// PutTCPOptionWindowScale writes a Window Scale option (RFC 7323 §2.2).
func PutTCPOptionWindowScale(b []byte, shift uint8) int {
	_ = b[2]
	b[0], b[1], b[2] = TCPOptionWindowScale, TCPOptionWindowScaleLen, shift
	return TCPOptionWindowScaleLen
}

// PutTCPOptionSACKPermitted writes a SACK-Permitted option (RFC 2018 §2).
func PutTCPOptionSACKPermitted(b []byte) int {
	_ = b[1]
	b[0], b[1] = TCPOptionSACKPermitted, TCPOptionSACKPermittedLen
	return TCPOptionSACKPermittedLen
}

// PutTCPOptionTimestamps writes a Timestamps option (RFC 7323 §3.2).
func PutTCPOptionTimestamps(b []byte, val, ecr uint32) int {
	_ = b[9]
	b[0], b[1] = TCPOptionTimestamps, TCPOptionTimestampsLen
	binary.BigEndian.PutUint32(b[2:6], val)
	binary.BigEndian.PutUint32(b[6:10], ecr)
	return TCPOptionTimestampsLen
}

// PutTCPOptionSACK writes a SACK option with up to 4 blocks (RFC 2018 §3);
// blocks beyond 4 are left out, and with no blocks nothing is written.
func PutTCPOptionSACK(b []byte, blocks []SACKBlock) int {
	if len(blocks) == 0 {
		return 0
	}
	blocks = blocks[:min(len(blocks), TCPMaxSACKBlocks)]
	n := 2 + 8*len(blocks)
	_ = b[n-1]
	b[0], b[1] = TCPOptionSACK, uint8(n)
	for i, blk := range blocks {
		binary.BigEndian.PutUint32(b[2+8*i:], blk.Left)
		binary.BigEndian.PutUint32(b[6+8*i:], blk.Right)
	}
	return n
}
