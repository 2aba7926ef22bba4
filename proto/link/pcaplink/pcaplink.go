// Package pcaplink wraps a link.Link and records every frame it receives and
// transmits to a pcap file (the classic libpcap format, link type Ethernet),
// for tshark, Wireshark or tcpdump -r. Recording costs a copy per frame and
// a lock shared by the poll loops; it is for debugging and tests.
package pcaplink

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/proto/link"
)

// Link is a link.Link that records its frames.
type Link struct {
	link.Link
	mu      sync.Mutex
	w       *bufio.Writer
	err     error
	frames  uint64
	scratch [][]byte
	now     func() time.Time
}

// pcap file format constants (the libpcap "savefile" format).
const (
	magic        = 0xa1b2c3d4 // microsecond timestamps
	linkEthernet = 1
	snapLen      = 65535
)

// Wrap records inner's frames to w, starting with the pcap file header.
func Wrap(inner link.Link, w io.Writer) (*Link, error) {
	l := &Link{Link: inner, w: bufio.NewWriter(w), now: time.Now}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], magic)
	binary.LittleEndian.PutUint16(h[4:], 2) // version 2.4
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], snapLen)
	binary.LittleEndian.PutUint32(h[20:], linkEthernet)
	if _, err := l.w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("pcaplink: write header: %w", err)
	}
	return l, nil
}

func (l *Link) record(frame []byte) {
	if l.err != nil {
		return
	}
	t := l.now()
	n := min(len(frame), snapLen)
	var h [16]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(t.Unix()))
	binary.LittleEndian.PutUint32(h[4:], uint32(t.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(h[8:], uint32(n))
	binary.LittleEndian.PutUint32(h[12:], uint32(len(frame)))
	if _, err := l.w.Write(h[:]); err != nil {
		l.err = err
		return
	}
	if _, err := l.w.Write(frame[:n]); err != nil {
		l.err = err
		return
	}
	l.frames++
}

// RxBatch receives from the inner link and records what it got.
func (l *Link) RxBatch(q int, pkts []dma.Packet) (int, error) {
	n, err := l.Link.RxBatch(q, pkts)
	if n > 0 {
		l.mu.Lock()
		for i := 0; i < n; i++ {
			l.record(pkts[i].Data())
		}
		l.mu.Unlock()
	}
	return n, err
}

// TxBatch records the frames the inner link accepts.
func (l *Link) TxBatch(q int, pkts []dma.Packet) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Copy first: accepted buffers belong to the link once TxBatch returns.
	for len(l.scratch) < len(pkts) {
		l.scratch = append(l.scratch, make([]byte, 0, 2048))
	}
	for i := range pkts {
		l.scratch[i] = append(l.scratch[i][:0], pkts[i].Data()...)
	}
	n, err := l.Link.TxBatch(q, pkts)
	for i := 0; i < n; i++ {
		l.record(l.scratch[i])
	}
	return n, err
}

// Flush writes buffered records out and returns the first write error.
func (l *Link) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = l.w.Flush()
	}
	return l.err
}

// Frames returns the number of frames recorded.
func (l *Link) Frames() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.frames
}
