// Package trace records what the driver, the device and the stack do, as a
// sequence of small fixed-size events in a preallocated buffer, and writes
// and reads them as NDJSON for the checkers in models/ and tla/.
//
// Recording is off when the *Recorder is nil: every Record call starts with a
// nil check and nothing else, so the data path pays one predictable branch.
// When on, Record claims a slot with one atomic add and copies the event into
// it; it never allocates. A full recorder counts what it could not keep.
//
// Ordering rule (what makes a trace checkable): an actor records an event
// that publishes something to the other side (a descriptor handed over, a
// tail write, a device write-back) BEFORE the store that publishes it, and an
// event that observes something (DD seen, tail read) AFTER the load that
// observed it. The slot order is then a linearization consistent with the
// causality between driver and device, and Seq (the slot number) is the
// order checkers use. T is a monotonic timestamp, comparable between actors.
package trace

import (
	"sync/atomic"
	"time"
	"unsafe"
)

// unsafeBytes views s's bytes without copying (for encoding only).
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// Kind says what an event records.
type Kind uint8

// Ring events. Driver-side events are "Drv...", device-side "Dev...".
const (
	KindNone Kind = iota

	// DrvPost: the driver filled descriptor Index of a ring with buffer Buf
	// (IOVA) of length Len, handing it to the device once the tail moves.
	DrvPost
	// DrvTail: the driver is about to write Index to the tail register.
	DrvTail
	// DrvDDSeen: the driver observed DD on descriptor Index (Len: RX length).
	DrvDDSeen
	// DrvReclaim: the driver took buffer Buf of descriptor Index back (TX
	// cleaned and freed it; RX handed it up to the application).
	DrvReclaim

	// DevTailRead: the device read tail value Index.
	DevTailRead
	// DevFetch: the device fetched descriptor Index (buffer Buf, Len).
	DevFetch
	// DevDMA: the device finished moving the frame to or from buffer Buf.
	DevDMA
	// DevWriteBack: the device is about to write back descriptor Index with
	// DD (RX: length Len).
	DevWriteBack
	// DevHead: the device advanced the head to Index.
	DevHead
	// DevDrop: the device dropped a frame (RX ring full: Index = head).
	DevDrop

	// Device-side truth (schema version 3): what the device saw and did in
	// memory, recorded by the device model at the moment it happens, so
	// that checkers compare the driver's claims with the device's view.

	// DevTailWrite: the device's register file received the value Index in
	// a queue's tail register (RDT/TDT), recorded in the register-write
	// path itself, i.e. at the doorbell, before any engine runs.
	DevTailWrite
	// DevDescAtTail: at that tail write, descriptor Index (one of those
	// the write hands over, from the old tail to the new one) held Buf in
	// its first quadword and Aux in its second (the raw read format).
	DevDescAtTail
	// DevStore: the device is about to store the 32-bit value Len into
	// dword Aux (0..3) of descriptor Index; one event per store, in the
	// order the device makes them (write-back words, datasheet 7.1.6.2
	// and 7.2.3.2.4).
	DevStore
	// DevViolation: the device found a rule of the ring protocol or of
	// the IOMMU broken. Index is the descriptor, Buf the buffer IOVA, Aux
	// the rule's code (ixgbesim's violation kinds) and Data the rule's
	// name and details. Any such event makes a trace fail verification.
	DevViolation
	// DrvLoad: the driver loaded dword Aux (0..3) of descriptor Index and
	// got the value Len; recorded after the load (what the driver really
	// observed, to be checked against the device's stores).
	DrvLoad

	// Application events on a ring or queue used as a FIFO (porcupine).
	// AppCallTx/AppRetTx bracket a TxBatch call; Len = frames accepted and
	// Buf carries the first frame's identifying tag. AppCallRx/AppRetRx
	// bracket an RxBatch call.
	AppCallTx
	AppRetTx
	AppCallRx
	AppRetRx
	// AppPacket: a frame with tag Buf passed through a Tx or Rx call
	// (recorded between that call's Call and Ret events).
	AppPacket

	// TCP events (trace/tcp.go, SCHEMA.md "TCP events").
	TCPState
	TCPSegSent
	TCPSegRecv
	AppWrite
	AppRead
	TCPOpen
	TCPTimer
	AppClose

	kindCount
)

var kindNames = [...]string{
	KindNone:      "none",
	DrvPost:       "post",
	DrvTail:       "tail",
	DrvDDSeen:     "dd_seen",
	DrvReclaim:    "reclaim",
	DevTailRead:   "dev_tail_read",
	DevFetch:      "dev_fetch",
	DevDMA:        "dev_dma",
	DevWriteBack:  "dev_writeback",
	DevHead:       "dev_head",
	DevDrop:       "dev_drop",
	DevTailWrite:  "dev_tail_write",
	DevDescAtTail: "dev_desc_at_tail",
	DevStore:      "dev_store",
	DevViolation:  "dev_violation",
	DrvLoad:       "drv_load",
	AppCallTx:     "app_call_tx",
	AppRetTx:      "app_ret_tx",
	AppCallRx:     "app_call_rx",
	AppRetRx:      "app_ret_rx",
	AppPacket:     "app_packet",
	TCPState:      "tcp_state",
	TCPSegSent:    "tcp_seg_sent",
	TCPSegRecv:    "tcp_seg_recv",
	AppWrite:      "app_write",
	AppRead:       "app_read",
	TCPOpen:       "tcp_open",
	TCPTimer:      "tcp_timer",
	AppClose:      "app_close",
}

// String returns the event kind's name as written in NDJSON.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// KindFromString is the inverse of Kind.String.
func KindFromString(s string) (Kind, bool) {
	for k, n := range kindNames {
		if n == s && k != int(KindNone) {
			return Kind(k), true
		}
	}
	return KindNone, false
}

// Flags in the Aux field of a TX DrvPost event (schema version 3). Zero,
// the value every version 1 and 2 trace carries, is a data descriptor with
// RS set (the device writes back DD on it).
const (
	// PostContext: the descriptor is an advanced context descriptor
	// (datasheet 7.2.3.2.3): no buffer, Buf holds its first quadword, Len
	// is 0; the device fetches it and writes nothing back.
	PostContext uint64 = 1 << 0
	// PostNoRS: a data descriptor without RS: the device writes back no DD
	// on it (datasheet 7.2.3.5); the driver learns of its completion from a
	// later descriptor's DD.
	PostNoRS uint64 = 1 << 1
)

// Direction of a ring.
const (
	RX uint8 = 0
	TX uint8 = 1
)

// Event is one recorded step. Its fields are interpreted per Kind; unused
// fields are zero.
type Event struct {
	Seq   uint64 // slot number: the order of the trace
	T     int64  // monotonic nanoseconds since the recorder started
	Kind  Kind
	Dir   uint8  // RX or TX
	Dev   uint16 // device number (the recorder's user assigns them)
	Queue uint16
	Index uint32 // descriptor index, or register value
	Len   uint32
	Buf   uint64 // buffer IOVA, or a frame tag

	// TCP fields (tcp_* and app_write/app_read/app_close events; zero in
	// ring events). See trace/tcp.go for their meaning per kind.
	Conn  uint32 // connection number, unique within a trace
	TSeq  uint32 // segment sequence number
	TAck  uint32 // segment acknowledgment number
	Wnd   uint32 // window field of the segment, in bytes after scaling
	Flags uint8  // TCP control bits; app_read: 1 = end of stream
	State uint8  // TCP state (TCPStateClosed...)
	Call  int64  // app_* events: when the call started (T is its return)
	Aux   uint64 // per kind: timestamps option, remote endpoint
	// Data is the bytes an app_write wrote or an app_read returned, when
	// the recorder had room for them (Recorder with a data arena); else "".
	// It is a string so that Event stays comparable; the recorder's copy
	// lives in its arena and costs no allocation.
	Data string
}

// Recorder holds a trace being recorded. A nil *Recorder records nothing.
type Recorder struct {
	start   time.Time
	next    atomic.Uint64
	dropped atomic.Uint64
	events  []Event

	// The data arena keeps the bytes of app_write/app_read events.
	data        []byte
	dataNext    atomic.Uint64
	dataDropped atomic.Uint64

	conns atomic.Uint32 // connection numbers handed out (NewConnID)
}

// NewRecorder returns a recorder with room for capacity events.
func NewRecorder(capacity int) *Recorder {
	return &Recorder{start: time.Now(), events: make([]Event, capacity)}
}

// Now returns the recorder's monotonic clock in nanoseconds (0 on a nil
// recorder).
func (r *Recorder) Now() int64 {
	if r == nil {
		return 0
	}
	return int64(time.Since(r.start))
}

// Record appends e, stamping Seq and T. It is safe for concurrent use and
// does not allocate. On a nil recorder it does nothing.
func (r *Recorder) Record(e Event) {
	if r == nil {
		return
	}
	seq := r.next.Add(1) - 1
	if seq >= uint64(len(r.events)) {
		r.dropped.Add(1)
		return
	}
	e.Seq = seq
	e.T = int64(time.Since(r.start))
	r.events[seq] = e
}

// Events returns the events recorded so far, in Seq order. Call it when the
// recording actors have stopped.
func (r *Recorder) Events() []Event {
	n := r.next.Load()
	if n > uint64(len(r.events)) {
		n = uint64(len(r.events))
	}
	return r.events[:n]
}

// Dropped returns how many events did not fit.
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// Reset empties the recorder, keeping its buffers: the Data of events taken
// before the Reset points into the data arena and is overwritten by later
// recording, so copy what must survive.
func (r *Recorder) Reset() {
	r.next.Store(0)
	r.dropped.Store(0)
	r.dataNext.Store(0)
	r.dataDropped.Store(0)
	r.start = time.Now()
}
