package trace

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// NDJSON trace files (schema "verinic-trace", version 3). The format is
// documented in SCHEMA.md next to this file; in short:
//
//	line 1:  a Header object: {"schema":"verinic-trace","version":3,
//	         "devices":[{"dev":0,"name":"sim0","queues":[{"dir":"rx","queue":0,"ring":512},…]}],
//	         "events":N,"dropped":0,"clock":"monotonic-ns"}
//	line 2…: one Event object per line, in Seq order:
//	         {"seq":0,"t":1234,"kind":"post","dev":0,"dir":"tx","queue":0,"index":3,"len":60,"buf":"0x200080"}
//	         TCP events have their own layout (appendTCPEventJSON):
//	         {"seq":41,"t":88120,"kind":"app_write","conn":3,"state":0,"sn":0,"an":0,"flags":0,"wnd":0,
//	          "len":5,"index":0,"queue":0,"buf":"0x0","aux":"0x0","call":87950,"data":"aGVsbG8="}
//
// "buf" is a hexadecimal string so that 64-bit IOVAs survive JSON readers
// that hold numbers as float64 or 32-bit integers (TLC's Json module).
const (
	SchemaName    = "verinic-trace"
	SchemaVersion = 3
	// OldestVersion is the oldest version the reader accepts: version 2
	// added the TCP events and fields, version 3 the device-truth and
	// driver-load ring events with their aux and detail fields; neither
	// changed what older lines mean.
	OldestVersion = 1
	// ClockMonotonicNS names the clock of the "t" field: nanoseconds since
	// the recorder started, from one monotonic clock shared by every actor.
	ClockMonotonicNS = "monotonic-ns"
)

// QueueInfo describes one descriptor ring of a device.
type QueueInfo struct {
	Dir   string `json:"dir"`   // "rx" or "tx"
	Queue uint16 `json:"queue"` // queue number
	Ring  uint32 `json:"ring"`  // descriptors in the ring
}

// DeviceInfo describes one device whose events are in the trace.
type DeviceInfo struct {
	Dev    uint16      `json:"dev"`  // the number events carry in "dev"
	Name   string      `json:"name"` // PCI address or simulator name
	Queues []QueueInfo `json:"queues"`
}

// PoolInfo describes the buffer grid of one mempool whose buffers the
// trace's rings carry (version 3, optional): buffer k (0 <= k < Count)
// starts at Base + (k / PerPage) * Page + (k % PerPage) * Stride, with
// Headroom bytes before its data room of Size bytes. PerPage 0 means all
// buffers are Stride apart. Checkers use it to tell which buffer an
// address belongs to (models.CheckObservations, BufferOnGrid).
type PoolInfo struct {
	Dev      uint16 `json:"dev"`            // the device whose driver or application allocated it
	Name     string `json:"name,omitempty"` // the pool's name
	Base     Hex64  `json:"base"`           // IOVA of buffer 0
	Stride   uint32 `json:"stride"`
	Count    uint32 `json:"count"`
	Headroom uint32 `json:"headroom"`
	Size     uint32 `json:"size"`
	PerPage  uint32 `json:"per_page,omitempty"`
	Page     uint32 `json:"page,omitempty"`
}

// Hex64 is a 64-bit value written in JSON as a hexadecimal string, like
// the "buf" field of events.
type Hex64 uint64

// MarshalText writes h as 0x followed by hexadecimal digits.
func (h Hex64) MarshalText() ([]byte, error) {
	return strconv.AppendUint([]byte("0x"), uint64(h), 16), nil
}

// UnmarshalText reads a hexadecimal string with or without 0x.
func (h *Hex64) UnmarshalText(b []byte) error {
	v, err := parseHex64(string(b))
	if err != nil {
		return err
	}
	*h = Hex64(v)
	return nil
}

// Header is the first line of a trace file.
type Header struct {
	Schema  string       `json:"schema"`
	Version int          `json:"version"`
	Devices []DeviceInfo `json:"devices"`
	// Pools are the buffer grids of the mempools the rings use (version
	// 3; absent in older traces and where the recorder did not know them).
	Pools   []PoolInfo `json:"pools,omitempty"`
	Events  uint64     `json:"events"`  // event lines that follow (0: not known when the header was written)
	Dropped uint64     `json:"dropped"` // events the recorder could not keep
	Clock   string     `json:"clock"`
	// Note is free text: what was run, with which faults or bugs.
	Note string `json:"note,omitempty"`
}

// RingSize returns the ring size the header declares for (dev, dir, queue).
func (h *Header) RingSize(dev uint16, dir uint8, queue uint16) (uint32, bool) {
	d := DirString(dir)
	for _, di := range h.Devices {
		if di.Dev != dev {
			continue
		}
		for _, q := range di.Queues {
			if q.Dir == d && q.Queue == queue {
				return q.Ring, true
			}
		}
	}
	return 0, false
}

// DirString names a ring direction as written in NDJSON.
func DirString(d uint8) string {
	if d == TX {
		return "tx"
	}
	return "rx"
}

// DirFromString is the inverse of DirString.
func DirFromString(s string) (uint8, bool) {
	switch s {
	case "rx":
		return RX, true
	case "tx":
		return TX, true
	}
	return 0, false
}

// ErrSchema reports a trace file this package cannot read.
var ErrSchema = errors.New("not a verinic-trace file of a supported version")

// Writer writes a trace as NDJSON. It is not safe for concurrent use.
type Writer struct {
	w    *bufio.Writer
	line []byte
	n    uint64
}

// NewWriter writes h (with Schema, Version and Clock filled in) as the first
// line and returns a Writer for the events.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	h.Schema, h.Version = SchemaName, SchemaVersion
	if h.Clock == "" {
		h.Clock = ClockMonotonicNS
	}
	if h.Devices == nil {
		h.Devices = []DeviceInfo{}
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("trace: encoding header: %w", err)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	if _, err := bw.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("trace: writing header: %w", err)
	}
	return &Writer{w: bw, line: make([]byte, 0, 256)}, nil
}

// AppendEventJSON appends e's NDJSON encoding (without newline) to b.
func AppendEventJSON(b []byte, e Event) []byte {
	if e.Kind.IsTCP() {
		return appendTCPEventJSON(b, e)
	}
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, e.T, 10)
	b = append(b, `,"kind":"`...)
	b = append(b, e.Kind.String()...)
	b = append(b, `","dev":`...)
	b = strconv.AppendUint(b, uint64(e.Dev), 10)
	b = append(b, `,"dir":"`...)
	b = append(b, DirString(e.Dir)...)
	b = append(b, `","queue":`...)
	b = strconv.AppendUint(b, uint64(e.Queue), 10)
	b = append(b, `,"index":`...)
	b = strconv.AppendUint(b, uint64(e.Index), 10)
	b = append(b, `,"len":`...)
	b = strconv.AppendUint(b, uint64(e.Len), 10)
	b = append(b, `,"buf":"0x`...)
	b = strconv.AppendUint(b, e.Buf, 16)
	if e.Aux != 0 || e.Kind.hasAux() {
		b = append(b, `","aux":"0x`...)
		b = strconv.AppendUint(b, e.Aux, 16)
	}
	b = append(b, '"')
	if e.Data != "" {
		// Only dev_violation carries text: a rare event, encoded by
		// encoding/json for its escaping.
		d, _ := json.Marshal(e.Data)
		b = append(b, `,"detail":`...)
		b = append(b, d...)
	}
	b = append(b, '}')
	return b
}

// hasAux reports whether ring events of kind k always carry the aux field
// (schema version 3).
func (k Kind) hasAux() bool {
	switch k {
	case DevDescAtTail, DevStore, DevViolation, DrvLoad:
		return true
	}
	return false
}

// appendTCPEventJSON writes the TCP layout (SCHEMA.md, "TCP events"):
// every TCP field, "data" in standard base64 when the event carries data.
func appendTCPEventJSON(b []byte, e Event) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, e.T, 10)
	b = append(b, `,"kind":"`...)
	b = append(b, e.Kind.String()...)
	b = append(b, `","conn":`...)
	b = strconv.AppendUint(b, uint64(e.Conn), 10)
	b = append(b, `,"state":`...)
	b = strconv.AppendUint(b, uint64(e.State), 10)
	b = append(b, `,"sn":`...)
	b = strconv.AppendUint(b, uint64(e.TSeq), 10)
	b = append(b, `,"an":`...)
	b = strconv.AppendUint(b, uint64(e.TAck), 10)
	b = append(b, `,"flags":`...)
	b = strconv.AppendUint(b, uint64(e.Flags), 10)
	b = append(b, `,"wnd":`...)
	b = strconv.AppendUint(b, uint64(e.Wnd), 10)
	b = append(b, `,"len":`...)
	b = strconv.AppendUint(b, uint64(e.Len), 10)
	b = append(b, `,"index":`...)
	b = strconv.AppendUint(b, uint64(e.Index), 10)
	b = append(b, `,"queue":`...)
	b = strconv.AppendUint(b, uint64(e.Queue), 10)
	b = append(b, `,"buf":"0x`...)
	b = strconv.AppendUint(b, e.Buf, 16)
	b = append(b, `","aux":"0x`...)
	b = strconv.AppendUint(b, e.Aux, 16)
	b = append(b, `","call":`...)
	b = strconv.AppendInt(b, e.Call, 10)
	if e.Data != "" {
		b = append(b, `,"data":"`...)
		b = base64.StdEncoding.AppendEncode(b, unsafeBytes(e.Data))
		b = append(b, '"')
	}
	b = append(b, '}')
	return b
}

// Write appends one event line.
func (w *Writer) Write(e Event) error {
	w.line = AppendEventJSON(w.line[:0], e)
	w.line = append(w.line, '\n')
	if _, err := w.w.Write(w.line); err != nil {
		return fmt.Errorf("trace: writing event %d: %w", e.Seq, err)
	}
	w.n++
	return nil
}

// Count returns the number of events written.
func (w *Writer) Count() uint64 { return w.n }

// Flush writes buffered lines to the underlying writer.
func (w *Writer) Flush() error {
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("trace: flushing: %w", err)
	}
	return nil
}

// WriteEvents writes a header and events to w.
func WriteEvents(w io.Writer, h Header, events []Event) error {
	h.Events = uint64(len(events))
	tw, err := NewWriter(w, h)
	if err != nil {
		return err
	}
	for _, e := range events {
		if err := tw.Write(e); err != nil {
			return err
		}
	}
	return tw.Flush()
}

// WriteFile writes the recorder's events, preceded by header h (its Events
// and Dropped fields are filled in from r), to the file at path. Call it
// when the recording actors have stopped.
func WriteFile(path string, h Header, r *Recorder) error {
	if r == nil {
		return errors.New("trace: WriteFile: nil recorder (tracing was off)")
	}
	h.Dropped = r.Dropped()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("trace: %w", err)
	}
	if err := WriteEvents(f, h, r.Events()); err != nil {
		f.Close()
		return fmt.Errorf("trace: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("trace: closing %s: %w", path, err)
	}
	return nil
}

// eventJSON is the decoding form of an event line.
type eventJSON struct {
	Seq   *uint64 `json:"seq"`
	T     int64   `json:"t"`
	Kind  string  `json:"kind"`
	Dev   uint16  `json:"dev"`
	Dir   string  `json:"dir"`
	Queue uint16  `json:"queue"`
	Index uint32  `json:"index"`
	Len   uint32  `json:"len"`
	Buf   string  `json:"buf"`
	// TCP layout.
	Conn  uint32 `json:"conn"`
	State uint8  `json:"state"`
	SN    uint32 `json:"sn"`
	AN    uint32 `json:"an"`
	Flags uint8  `json:"flags"`
	Wnd   uint32 `json:"wnd"`
	Aux   string `json:"aux"`
	Call  int64  `json:"call"`
	Data  []byte `json:"data"` // base64 in JSON
	// Ring layout, version 3: dev_violation's text.
	Detail string `json:"detail"`
}

func parseHex64(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
	}
	return strconv.ParseUint(s, 16, 64)
}

// maxLineBytes bounds one line of a trace. An app_write or app_read event
// carries its bytes in base64 (4/3 of their size), and one Write may hand
// the connection megabytes: the bound is far above any event line, and
// only the longest line's worth of buffer is ever allocated.
const maxLineBytes = 1 << 30

// Reader reads an NDJSON trace.
type Reader struct {
	sc     *bufio.Scanner
	header Header
	line   int
}

// NewReader reads and checks the header line.
func NewReader(r io.Reader) (*Reader, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), maxLineBytes)
	rd := &Reader{sc: sc}
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("trace: reading header: %w", err)
		}
		return nil, fmt.Errorf("trace: empty file: %w", ErrSchema)
	}
	rd.line = 1
	if err := json.Unmarshal(sc.Bytes(), &rd.header); err != nil {
		return nil, fmt.Errorf("trace: line 1: header: %v: %w", err, ErrSchema)
	}
	if rd.header.Schema != SchemaName || rd.header.Version < OldestVersion || rd.header.Version > SchemaVersion {
		return nil, fmt.Errorf("trace: line 1: schema %q version %d (want %q version %d to %d): %w",
			rd.header.Schema, rd.header.Version, SchemaName, OldestVersion, SchemaVersion, ErrSchema)
	}
	return rd, nil
}

// Header returns the trace's header.
func (r *Reader) Header() Header { return r.header }

// Next returns the next event, or io.EOF after the last one.
func (r *Reader) Next() (Event, error) {
	for r.sc.Scan() {
		r.line++
		b := r.sc.Bytes()
		if len(b) == 0 {
			continue
		}
		if e, ok := parseEventFast(b); ok {
			return e, nil
		}
		if e, ok := parseTCPEventFast(b); ok {
			return e, nil
		}
		var j eventJSON
		if err := json.Unmarshal(b, &j); err != nil {
			return Event{}, fmt.Errorf("trace: line %d: %w", r.line, err)
		}
		k, ok := KindFromString(j.Kind)
		if !ok {
			return Event{}, fmt.Errorf("trace: line %d: unknown kind %q", r.line, j.Kind)
		}
		if k.IsTCP() {
			buf, err := parseHex64(j.Buf)
			if err != nil {
				return Event{}, fmt.Errorf("trace: line %d: buf %q: %w", r.line, j.Buf, err)
			}
			aux, err := parseHex64(j.Aux)
			if err != nil {
				return Event{}, fmt.Errorf("trace: line %d: aux %q: %w", r.line, j.Aux, err)
			}
			if j.Seq == nil {
				return Event{}, fmt.Errorf("trace: line %d: missing seq", r.line)
			}
			return Event{Seq: *j.Seq, T: j.T, Kind: k, Conn: j.Conn, State: j.State, TSeq: j.SN, TAck: j.AN,
				Flags: j.Flags, Wnd: j.Wnd, Len: j.Len, Index: j.Index, Queue: j.Queue, Buf: buf, Aux: aux,
				Call: j.Call, Data: string(j.Data)}, nil
		}
		dir, ok := DirFromString(j.Dir)
		if !ok {
			return Event{}, fmt.Errorf("trace: line %d: unknown dir %q", r.line, j.Dir)
		}
		if j.Seq == nil {
			return Event{}, fmt.Errorf("trace: line %d: missing seq", r.line)
		}
		var buf uint64
		if j.Buf != "" {
			s := j.Buf
			if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
				s = s[2:]
			}
			v, err := strconv.ParseUint(s, 16, 64)
			if err != nil {
				return Event{}, fmt.Errorf("trace: line %d: buf %q: %w", r.line, j.Buf, err)
			}
			buf = v
		}
		aux, err := parseHex64(j.Aux)
		if err != nil {
			return Event{}, fmt.Errorf("trace: line %d: aux %q: %w", r.line, j.Aux, err)
		}
		return Event{Seq: *j.Seq, T: j.T, Kind: k, Dir: dir, Dev: j.Dev, Queue: j.Queue,
			Index: j.Index, Len: j.Len, Buf: buf, Aux: aux, Data: j.Detail}, nil
	}
	if err := r.sc.Err(); err != nil {
		return Event{}, fmt.Errorf("trace: line %d: %w", r.line+1, err)
	}
	return Event{}, io.EOF
}

// ReadAll reads every remaining event.
func (r *Reader) ReadAll() ([]Event, error) {
	var out []Event
	if r.header.Events > 0 && r.header.Events < 1<<26 {
		out = make([]Event, 0, r.header.Events)
	}
	for {
		e, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
}

// ReadFile reads a whole trace file.
func ReadFile(path string) (Header, []Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, nil, fmt.Errorf("trace: %w", err)
	}
	defer f.Close()
	// The reader's errors say "trace: line N: ...": the path goes in
	// front of them, without a second "trace:".
	r, err := NewReader(f)
	if err != nil {
		return Header{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	ev, err := r.ReadAll()
	if err != nil {
		return r.header, ev, fmt.Errorf("%s: %w", path, err)
	}
	if r.header.Events != 0 && uint64(len(ev)) != r.header.Events {
		return r.header, ev, fmt.Errorf("trace: %s: the header announces %d events, the file holds %d (truncated?)", path, r.header.Events, len(ev))
	}
	return r.header, ev, nil
}
