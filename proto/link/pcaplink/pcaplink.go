// Package pcaplink wraps a link.Link and records every frame it receives and
// transmits to a pcap file (the classic libpcap format, link type Ethernet),
// for tshark, Wireshark or tcpdump -r. Recording costs a copy per frame and
// a lock shared by the poll loops; it is for debugging and tests.
package pcaplink

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/proto/link"
	"github.com/verinic/verinic/trace/pcap"
)

// Link is a link.Link that records its frames.
type Link struct {
	link.Link
	w       *pcap.Writer
	mu      sync.Mutex // guards scratch
	scratch [][]byte
	now     func() time.Time
}

// Wrap records inner's frames to w, starting with the pcap file header.
func Wrap(inner link.Link, w io.Writer) (*Link, error) {
	pw, err := pcap.NewWriter(w, pcap.Options{})
	if err != nil {
		return nil, fmt.Errorf("pcaplink: %w", err)
	}
	return &Link{Link: inner, w: pw, now: time.Now}, nil
}

// record writes one frame; a failed write is kept by the writer (see Flush)
// and never disturbs the traffic.
func (l *Link) record(frame []byte) { _ = l.w.WriteFrame(l.now(), frame) }

// RxBatch receives from the inner link and records what it got.
func (l *Link) RxBatch(q int, pkts []dma.Packet) (int, error) {
	n, err := l.Link.RxBatch(q, pkts)
	for i := 0; i < n; i++ {
		l.record(pkts[i].Data())
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

// RxDrops forwards the inner link's device drop counts (link.DropCounter),
// all zero when the inner link has none.
func (l *Link) RxDrops() (missed, ringFull, crcErrors, undersize, oversize, filtered, driver uint64) {
	if dc, ok := l.Link.(link.DropCounter); ok {
		return dc.RxDrops()
	}
	return
}

// SetRxNotify forwards to the inner link (link.RxNotifier), so that a
// recorded link keeps its interrupt mode: the frames the wake-up announces
// are recorded when the loop's RxBatch, which goes through this wrapper,
// takes them. It reports false when the inner link cannot notify.
func (l *Link) SetRxNotify(q int, wake func()) bool {
	if rn, ok := l.Link.(link.RxNotifier); ok {
		return rn.SetRxNotify(q, wake)
	}
	return false
}

// Flush writes buffered records out and returns the first write error.
func (l *Link) Flush() error { return l.w.Flush() }

// Frames returns the number of frames recorded.
func (l *Link) Frames() uint64 {
	frames, _ := l.w.Stats()
	return frames
}
