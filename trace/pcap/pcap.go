// Package pcap records Ethernet frames to pcap files (the classic libpcap
// format with nanosecond timestamps, link type Ethernet) that tcpdump,
// tshark and Wireshark read, and taps frame paths to feed them: a wrapper
// around a simulated NIC's wire (Tap) and a recording wire between two
// simulated NICs (Wire).
//
// The format is written here rather than with gopacket's pcapgo, which
// would pull golang.org/x/net into the module for its live-capture half.
// A Writer is safe for concurrent use (frames from both directions of a wire
// arrive on different goroutines); it buffers, and Flush or Close pushes the
// buffer out. Reader reads the files back (and any classic pcap file of
// Ethernet frames), for replay and tests.
package pcap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// File format constants (libpcap savefile format, "pcap-savefile(5)";
// draft-ietf-opsawg-pcap).
const (
	magicMicros      = 0xa1b2c3d4
	magicNanos       = 0xa1b23c4d
	versionMajor     = 2
	versionMinor     = 4
	linkTypeEthernet = 1 // LINKTYPE_ETHERNET
	fileHeaderLen    = 24
	recordHeaderLen  = 16
)

// DefaultSnapLen is the most bytes of a frame recorded: enough for any
// jumbo frame the 82599 handles (MAXFRS up to 15.5 KB, datasheet 8.2.3.22.13).
const DefaultSnapLen = 16384

// ErrClosed is returned by WriteFrame after Close.
var ErrClosed = errors.New("pcap: writer closed")

// Writer writes frames to a pcap stream.
type Writer struct {
	mu      sync.Mutex
	bw      *bufio.Writer
	hdr     [recordHeaderLen]byte
	closer  io.Closer // the file Create opened, closed by Close
	snapLen int
	frames  uint64
	bytes   uint64
	err     error // first write error; sticky
	closed  bool
}

// Options configure a Writer. Zero fields take defaults.
type Options struct {
	SnapLen int // bytes kept per frame (DefaultSnapLen)
}

// NewWriter writes the pcap file header to w and returns a Writer for it.
// Close flushes the buffer but does not close w.
func NewWriter(w io.Writer, o Options) (*Writer, error) {
	if o.SnapLen <= 0 {
		o.SnapLen = DefaultSnapLen
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var h [fileHeaderLen]byte
	binary.LittleEndian.PutUint32(h[0:], magicNanos)
	binary.LittleEndian.PutUint16(h[4:], versionMajor)
	binary.LittleEndian.PutUint16(h[6:], versionMinor)
	// thiszone and sigfigs stay 0 (timestamps are UTC).
	binary.LittleEndian.PutUint32(h[16:], uint32(o.SnapLen))
	binary.LittleEndian.PutUint32(h[20:], linkTypeEthernet)
	if _, err := bw.Write(h[:]); err != nil {
		return nil, fmt.Errorf("pcap: write file header: %w", err)
	}
	return &Writer{bw: bw, snapLen: o.SnapLen}, nil
}

// Create creates (or truncates) the file at path and returns a Writer to
// it; Close closes the file.
func Create(path string, o Options) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("pcap: %w", err)
	}
	w, err := NewWriter(f, o)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pcap: %s: %w", path, err)
	}
	w.closer = f
	return w, nil
}

// WriteFrame records one frame (without FCS) seen at ts; frames longer than
// the snap length are cut, with their original length kept. It copies what
// it needs before returning. Errors are sticky: once a write fails, every
// later call returns that error.
func (w *Writer) WriteFrame(ts time.Time, frame []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	data := frame[:min(len(frame), w.snapLen)]
	ns := ts.UnixNano()
	binary.LittleEndian.PutUint32(w.hdr[0:], uint32(ns/1e9))
	binary.LittleEndian.PutUint32(w.hdr[4:], uint32(ns%1e9))
	binary.LittleEndian.PutUint32(w.hdr[8:], uint32(len(data)))
	binary.LittleEndian.PutUint32(w.hdr[12:], uint32(len(frame)))
	if _, err := w.bw.Write(w.hdr[:]); err != nil {
		w.err = fmt.Errorf("pcap: write frame: %w", err)
		return w.err
	}
	if _, err := w.bw.Write(data); err != nil {
		w.err = fmt.Errorf("pcap: write frame: %w", err)
		return w.err
	}
	w.frames++
	w.bytes += uint64(len(frame))
	return nil
}

// Flush writes buffered frames out.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

func (w *Writer) flushLocked() error {
	if w.err != nil || w.closed {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("pcap: flush: %w", err)
	}
	return w.err
}

// Close flushes and, for a Writer made by Create, closes the file. Later
// WriteFrame calls return ErrClosed. Close is idempotent.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	err := w.flushLocked()
	w.closed = true
	if w.closer != nil {
		if cerr := w.closer.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("pcap: close: %w", cerr)
		}
	}
	return err
}

// Stats returns how many frames and bytes (original lengths) were recorded.
func (w *Writer) Stats() (frames, bytes uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.frames, w.bytes
}

// Err returns the first write error, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
