package pcap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// maxRecord is the largest record Reader accepts.
const maxRecord = 256 << 10

// Reader reads a classic pcap file of Ethernet frames, in either byte order,
// with microsecond or nanosecond timestamps.
type Reader struct {
	r       io.Reader
	order   binary.ByteOrder
	nanos   bool
	snapLen uint32
	buf     []byte
	hdr     [recordHeaderLen]byte
}

// Frame is one record: when it was seen, the bytes kept, and the length the
// frame had on the wire.
type Frame struct {
	Time    time.Time
	Data    []byte // valid until the next call to Next
	OrigLen int
}

// NewReader reads and checks the file header.
func NewReader(r io.Reader) (*Reader, error) {
	var h [fileHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("pcap: read file header: %w", err)
	}
	rd := &Reader{r: r}
	switch {
	case binary.LittleEndian.Uint32(h[0:]) == magicMicros:
		rd.order = binary.LittleEndian
	case binary.LittleEndian.Uint32(h[0:]) == magicNanos:
		rd.order, rd.nanos = binary.LittleEndian, true
	case binary.BigEndian.Uint32(h[0:]) == magicMicros:
		rd.order = binary.BigEndian
	case binary.BigEndian.Uint32(h[0:]) == magicNanos:
		rd.order, rd.nanos = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("pcap: not a pcap file (magic %#08x; pcapng is not supported)", binary.LittleEndian.Uint32(h[0:]))
	}
	if major := rd.order.Uint16(h[4:]); major != versionMajor {
		return nil, fmt.Errorf("pcap: unsupported version %d.%d", major, rd.order.Uint16(h[6:]))
	}
	if lt := rd.order.Uint32(h[20:]) & 0x0fffffff; lt != linkTypeEthernet {
		return nil, fmt.Errorf("pcap: link type %d, want Ethernet (1)", lt)
	}
	// The snap length bounds every record. Files claim anything here
	// (0, or 2^32-1); no Ethernet frame, even a captured GSO super-packet,
	// exceeds 256 KiB, so that is the most a record may hold.
	rd.snapLen = rd.order.Uint32(h[16:])
	if rd.snapLen == 0 || rd.snapLen > maxRecord {
		rd.snapLen = maxRecord
	}
	rd.buf = make([]byte, rd.snapLen)
	return rd, nil
}

// Nanosecond reports whether the file's timestamps have nanosecond
// resolution.
func (r *Reader) Nanosecond() bool { return r.nanos }

// SnapLen returns the file's snap length.
func (r *Reader) SnapLen() int { return int(r.snapLen) }

// Next returns the next frame, or io.EOF at the end of the file.
func (r *Reader) Next() (Frame, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return Frame{}, io.EOF
		}
		return Frame{}, fmt.Errorf("pcap: read record header: %w", err)
	}
	sec, frac := r.order.Uint32(r.hdr[0:]), r.order.Uint32(r.hdr[4:])
	incl, orig := r.order.Uint32(r.hdr[8:]), r.order.Uint32(r.hdr[12:])
	if incl > r.snapLen || incl > orig {
		return Frame{}, fmt.Errorf("pcap: corrupt record: %d bytes kept of %d, snap length %d", incl, orig, r.snapLen)
	}
	if _, err := io.ReadFull(r.r, r.buf[:incl]); err != nil {
		return Frame{}, fmt.Errorf("pcap: read record data: %w", err)
	}
	ns := int64(frac)
	if !r.nanos {
		ns *= 1000
	}
	return Frame{Time: time.Unix(int64(sec), ns).UTC(), Data: r.buf[:incl], OrigLen: int(orig)}, nil
}
