package trace

import (
	"net/netip"
	"unsafe"
)

// TCP events (schema version 2). The TCP layer (proto/tcp) records, per
// connection:
//
//	tcp_open      a connection endpoint came to be. Conn; State: its first
//	              state (SYN_SENT for an active open, SYN_RECEIVED for one
//	              accepted from a listener); Buf: local address, Aux: remote
//	              address, both packed by PackAddrPort; Flags: 1 when active.
//	tcp_state     a state change: Index = old state, State = new state.
//	tcp_seg_sent  a segment left (recorded before it is handed to the link),
//	tcp_seg_recv  a segment arrived for the connection (recorded before it is
//	              processed): TSeq, TAck, Flags (header.TCPFlags), Wnd (the
//	              window field after scaling, in bytes), Len (payload bytes),
//	              State (the connection's state when recorded), Index (the
//	              options, SegOpts), Aux (TSval<<32 | TSecr when the
//	              timestamps option is present), Queue (SACK blocks carried)
//	              and Buf (the first SACK block, left<<32 | right).
//	tcp_timer     a timer fired: Index = TimerKind, Len = its backoff count.
//	app_write     a Write call returned: Call and T are its call and return
//	              times, Len the bytes accepted, Buf the stream offset of the
//	              first (bytes the connection accepted before), Data the
//	              bytes (when the recorder keeps data).
//	app_read      a Read call returned: as app_write, with Len the bytes
//	              returned; Flags = 1 when it reported the end of the stream.
//	app_close     Close (Index 0) or CloseWrite (Index 1) returned, or the
//	              connection was aborted (Index 2, CloseAbort: RFC 9293
//	              3.10.5 ABORT, by the application or the stack closing).
//
// Write offsets count the bytes written on this connection; read offsets
// the bytes read. A checker pairs connection C's writes with the reads of the
// connection at the other end (the one whose addresses are C's, swapped).

// TCP states, numbered as RFC 9293 section 3.3.2 lists them.
const (
	TCPStateClosed uint8 = iota
	TCPStateListen
	TCPStateSynSent
	TCPStateSynReceived
	TCPStateEstablished
	TCPStateFinWait1
	TCPStateFinWait2
	TCPStateCloseWait
	TCPStateClosing
	TCPStateLastAck
	TCPStateTimeWait
	TCPStateCount
)

var tcpStateNames = [TCPStateCount]string{
	"CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1",
	"FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT",
}

// TCPStateName returns RFC 9293's name of state s.
func TCPStateName(s uint8) string {
	if s < TCPStateCount {
		return tcpStateNames[s]
	}
	return "UNKNOWN"
}

// Segment option bits in tcp_seg_* events' Index. The MSS value is in bits
// 16-31, the window-scale shift in bits 8-15.
const (
	SegOptMSS       = 1 << 0
	SegOptWScale    = 1 << 1
	SegOptSACKPerm  = 1 << 2
	SegOptTimestamp = 1 << 3
	SegOptSACK      = 1 << 4
	// SegOptTSO marks a tcp_seg_sent that TCP handed to the device for
	// segmentation (TSO): bits 16-31 hold the segment size the device
	// cuts it at, not an MSS option (a TSO burst never carries one).
	SegOptTSO = 1 << 5
)

// SegOpts packs a segment's options for an event's Index.
func SegOpts(flags uint32, mss uint16, wscale uint8) uint32 {
	return flags&0xff | uint32(wscale)<<8 | uint32(mss)<<16
}

// TimerKind names a TCP timer in tcp_timer events.
type TimerKind uint32

// TCP timers.
const (
	TimerRetransmit TimerKind = 1 + iota // RFC 6298 retransmission timeout
	TimerDelayedAck                      // RFC 1122 4.2.3.2 / RFC 9293 3.8.6.3
	TimerPersist                         // zero-window probe (RFC 9293 3.8.6.1)
	TimerKeepalive                       // RFC 1122 4.2.3.6
	TimerTimeWait                        // 2*MSL (RFC 9293 3.6.1)
	TimerTLP                             // tail loss probe (RFC 8985)
)

// PackAddrPort packs an IPv4 address and port as address<<16 | port.
func PackAddrPort(ap netip.AddrPort) uint64 {
	a := ap.Addr().Unmap()
	if !a.Is4() {
		return uint64(ap.Port())
	}
	b := a.As4()
	return uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 | uint64(b[3])<<16 | uint64(ap.Port())
}

// UnpackAddrPort is the inverse of PackAddrPort.
func UnpackAddrPort(v uint64) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16)}), uint16(v))
}

// IsTCP reports whether events of kind k carry the TCP fields (and are
// written in the TCP layout).
func (k Kind) IsTCP() bool {
	switch k {
	case TCPState, TCPSegSent, TCPSegRecv, AppWrite, AppRead, TCPOpen, TCPTimer, AppClose:
		return true
	}
	return false
}

// NewConnID returns a connection number unique within this recorder's
// trace (several stacks may record into one recorder).
func (r *Recorder) NewConnID() uint32 { return r.conns.Add(1) }

// NewRecorderWithData returns a recorder with room for capacity events and
// dataBytes of application data (the bytes of app_write/app_read events).
func NewRecorderWithData(capacity, dataBytes int) *Recorder {
	r := NewRecorder(capacity)
	r.data = make([]byte, dataBytes)
	return r
}

// DataDropped returns the bytes of application data the arena had no room
// for (their events were recorded with Data empty).
func (r *Recorder) DataDropped() uint64 {
	if r == nil {
		return 0
	}
	return r.dataDropped.Load()
}

// keep copies b into the data arena and returns the copy as a string, or ""
// when the arena is absent or full.
func (r *Recorder) keep(b []byte) string {
	if len(b) == 0 || len(r.data) == 0 {
		return ""
	}
	end := r.dataNext.Add(uint64(len(b)))
	if end > uint64(len(r.data)) {
		r.dataDropped.Add(uint64(len(b)))
		return ""
	}
	dst := r.data[end-uint64(len(b)) : end]
	copy(dst, b)
	return unsafe.String(&dst[0], len(dst))
}

// TCPOpen records a new connection endpoint.
func (r *Recorder) TCPOpen(conn uint32, local, remote netip.AddrPort, state uint8, active bool) {
	if r == nil {
		return
	}
	e := Event{Kind: TCPOpen, Conn: conn, State: state, Buf: PackAddrPort(local), Aux: PackAddrPort(remote)}
	if active {
		e.Flags = 1
	}
	r.Record(e)
}

// TCPStateChange records a state change of connection conn.
func (r *Recorder) TCPStateChange(conn uint32, from, to uint8) {
	if r == nil {
		return
	}
	r.Record(Event{Kind: TCPState, Conn: conn, Index: uint32(from), State: to})
}

// TCPSegment describes a segment for TCPSeg.
type TCPSegment struct {
	Seq, Ack   uint32
	Flags      uint8
	Wnd        uint32 // after scaling
	Len        uint32 // payload bytes
	Opts       uint32 // SegOpts
	TSVal      uint32
	TSEcr      uint32
	SACKBlocks uint16
	FirstSACK  uint64 // left<<32 | right
}

// TCPSeg records a segment sent (sent true) or received by connection conn
// in state state.
func (r *Recorder) TCPSeg(sent bool, conn uint32, state uint8, s *TCPSegment) {
	if r == nil {
		return
	}
	k := TCPSegRecv
	if sent {
		k = TCPSegSent
	}
	r.Record(Event{Kind: k, Conn: conn, State: state, TSeq: s.Seq, TAck: s.Ack, Flags: s.Flags, Wnd: s.Wnd,
		Len: s.Len, Index: s.Opts, Aux: uint64(s.TSVal)<<32 | uint64(s.TSEcr), Queue: s.SACKBlocks, Buf: s.FirstSACK})
}

// TCPTimerFired records that timer kind fired on connection conn.
func (r *Recorder) TCPTimerFired(conn uint32, kind TimerKind, backoff uint32) {
	if r == nil {
		return
	}
	r.Record(Event{Kind: TCPTimer, Conn: conn, Index: uint32(kind), Len: backoff})
}

// AppWrite records a Write on connection conn that started at call
// (r.Now() when it was called), accepted data, whose first byte has stream
// offset off.
func (r *Recorder) AppWrite(conn uint32, call int64, off uint64, data []byte) {
	if r == nil {
		return
	}
	r.Record(Event{Kind: AppWrite, Conn: conn, Call: call, Len: uint32(len(data)), Buf: off, Data: r.keep(data)})
}

// AppRead records a Read on connection conn that started at call and
// returned data (eof: it reported the end of the stream), the first byte at
// read offset off.
func (r *Recorder) AppRead(conn uint32, call int64, off uint64, data []byte, eof bool) {
	if r == nil {
		return
	}
	e := Event{Kind: AppRead, Conn: conn, Call: call, Len: uint32(len(data)), Buf: off, Data: r.keep(data)}
	if eof {
		e.Flags = 1
	}
	r.Record(e)
}

// app_close Index values.
const (
	CloseFull  = 0
	CloseWrite = 1
	CloseAbort = 2
)

// AppAbort records that connection conn was aborted (RFC 9293 3.10.5): its
// state may go to CLOSED from anywhere, with or without an RST.
func (r *Recorder) AppAbort(conn uint32, call int64) {
	if r == nil {
		return
	}
	r.Record(Event{Kind: AppClose, Conn: conn, Call: call, Index: CloseAbort})
}

// AppCloseCall records Close (half false) or CloseWrite (half true) on
// connection conn, called at call.
func (r *Recorder) AppCloseCall(conn uint32, call int64, half bool) {
	if r == nil {
		return
	}
	e := Event{Kind: AppClose, Conn: conn, Call: call}
	if half {
		e.Index = 1
	}
	r.Record(e)
}
