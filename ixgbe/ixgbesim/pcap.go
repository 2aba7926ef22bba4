package ixgbesim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"time"
)

// Classic pcap file format (as libpcap writes it): a 24-byte file header
// and a 16-byte header before each packet. Link type 1 is Ethernet.
const (
	pcapMagicMicro = 0xA1B2C3D4
	pcapMagicNano  = 0xA1B23C4D
	pcapEthernet   = 1
)

func writePcapHeader(w io.Writer, snaplen int) error {
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], pcapMagicMicro)
	binary.LittleEndian.PutUint16(h[4:], 2) // version 2.4
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], uint32(snaplen))
	binary.LittleEndian.PutUint32(h[20:], pcapEthernet)
	_, err := w.Write(h[:])
	return err
}

func writePcapRecord(w io.Writer, ts time.Time, data []byte, hdr *[16]byte) error {
	us := ts.UnixMicro()
	binary.LittleEndian.PutUint32(hdr[0:], uint32(us/1e6))
	binary.LittleEndian.PutUint32(hdr[4:], uint32(us%1e6))
	binary.LittleEndian.PutUint32(hdr[8:], uint32(len(data)))
	binary.LittleEndian.PutUint32(hdr[12:], uint32(len(data)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// pcapReader reads classic pcap files of either byte order and timestamp
// precision.
type pcapReader struct {
	r     io.Reader
	order binary.ByteOrder
	buf   []byte
}

func newPcapReader(r io.Reader) (*pcapReader, error) {
	var h [24]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("pcap file header: %w", err)
	}
	pr := &pcapReader{r: r}
	switch {
	case binary.LittleEndian.Uint32(h[0:]) == pcapMagicMicro || binary.LittleEndian.Uint32(h[0:]) == pcapMagicNano:
		pr.order = binary.LittleEndian
	case binary.BigEndian.Uint32(h[0:]) == pcapMagicMicro || binary.BigEndian.Uint32(h[0:]) == pcapMagicNano:
		pr.order = binary.BigEndian
	default:
		return nil, fmt.Errorf("not a pcap file (magic %#08x)", binary.LittleEndian.Uint32(h[0:]))
	}
	if lt := pr.order.Uint32(h[20:]) & 0x0FFFFFFF; lt != pcapEthernet {
		return nil, fmt.Errorf("pcap link type %d, want Ethernet (1)", lt)
	}
	return pr, nil
}

// next returns the next packet's captured bytes (valid until the next
// call), or io.EOF at the end.
func (pr *pcapReader) next() ([]byte, error) {
	var h [16]byte
	if _, err := io.ReadFull(pr.r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("truncated packet header: %w", err)
		}
		return nil, err
	}
	n := int(pr.order.Uint32(h[8:]))
	if n > maxFrame-4 {
		return nil, fmt.Errorf("%d-byte packet exceeds the %d-byte maximum frame", n, maxFrame-4)
	}
	if cap(pr.buf) < n {
		pr.buf = make([]byte, n)
	}
	pr.buf = pr.buf[:n]
	if _, err := io.ReadFull(pr.r, pr.buf); err != nil {
		return nil, fmt.Errorf("truncated packet: %w", err)
	}
	return pr.buf, nil
}

// PcapCapture is a Link that records every frame a NIC transmits to a pcap
// stream (Ethernet link type, FCS removed, timestamps from the NIC's
// clock), then passes it on to an inner Link (none: the frames go nowhere,
// with the link up).
type PcapCapture struct {
	inner Link
	clock *Clock

	mu     sync.Mutex
	w      io.Writer
	hdr    [16]byte
	frames int
	err    error
}

// NewPcapCapture writes a pcap file header to w and returns the capturing
// Link. Attach it to a NIC with (*NIC).Attach.
func NewPcapCapture(w io.Writer, inner Link, clock *Clock) (*PcapCapture, error) {
	if err := writePcapHeader(w, maxFrame); err != nil {
		return nil, fmt.Errorf("ixgbesim: pcap header: %w", err)
	}
	if clock == nil {
		clock = NewClock(FreeRunning)
	}
	return &PcapCapture{inner: inner, clock: clock, w: w}, nil
}

// Transmit implements Link.
func (c *PcapCapture) Transmit(frame []byte) {
	if len(frame) >= 4 {
		data := frame[:len(frame)-4]
		c.mu.Lock()
		if c.err == nil {
			if err := writePcapRecord(c.w, c.clock.Now(), data, &c.hdr); err != nil {
				c.err = fmt.Errorf("ixgbesim: pcap write: %w", err)
			} else {
				c.frames++
			}
		}
		c.mu.Unlock()
	}
	if c.inner != nil {
		c.inner.Transmit(frame)
	}
}

// Up implements Link.
func (c *PcapCapture) Up() bool { return c.inner == nil || c.inner.Up() }

// Frames returns how many frames were written, and the first write error.
func (c *PcapCapture) Frames() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames, c.err
}

// ReplayPcap delivers the Ethernet frames of a pcap stream to n as if they
// arrived from the wire: each is padded to the 60-byte minimum and gets its
// FCS. It returns how many frames it offered and how many the NIC's MAC
// accepted. Timestamps are ignored (frames go in back to back).
func ReplayPcap(r io.Reader, n *NIC) (offered, accepted int, err error) {
	pr, err := newPcapReader(r)
	if err != nil {
		return 0, 0, fmt.Errorf("ixgbesim: pcap replay: %w", err)
	}
	buf := make([]byte, 0, maxFrame)
	for {
		data, err := pr.next()
		if errors.Is(err, io.EOF) {
			return offered, accepted, nil
		}
		if err != nil {
			return offered, accepted, fmt.Errorf("ixgbesim: pcap replay, frame %d: %w", offered+1, err)
		}
		buf = append(buf[:0], data...)
		for len(buf) < 60 {
			buf = append(buf, 0)
		}
		buf = binary.LittleEndian.AppendUint32(buf, crc32.ChecksumIEEE(buf))
		offered++
		if n.Receive(buf) {
			accepted++
		}
	}
}
