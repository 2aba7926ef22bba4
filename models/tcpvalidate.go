package models

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/verinic/verinic/trace"
)

// TCP trace validation: recorded TCP events (trace/tcp.go) replayed against
// the abstract protocol of tla/Tcp.tla, with the real modulus 2^32. Each
// endpoint is replayed alone against its half of the spec (the segments it
// received are the channel's output, whatever produced them: a Linux peer,
// a simulated network); when both endpoints of a connection are in the
// trace they are paired and cross-checked too. The replay keeps the
// abstract TCB of the spec (SND.UNA, SND.NXT, RCV.NXT, the FINs) as 64-bit
// stream offsets unwrapped from the 32-bit sequence numbers, so bulk
// transfers of any size and any ISN check the same way; options (window
// scale, timestamps, SACK, MSS) only matter through the window the event
// already carries scaled.

// TCP trace properties, named after Tcp.tla's where they correspond.
const (
	PropStateConsistent   = "StateConsistent"   // events' State fields follow the tcp_state changes
	PropLegalTransition   = "LegalTransition"   // RFC 9293 figure 5, with each change's cause
	PropSndSeqOrder       = "SndSeqOrder"       // sent segments within [SND.UNA, SND.NXT], no gap
	PropSendWindow        = "SendWindow"        // new data within the peer's advertised window
	PropRcvNotBeyondSent  = "RcvNotBeyondSent"  // an ACK sent never covers what was not received
	PropDeliveredInOrder  = "DeliveredInOrder"  // reads contiguous, each byte once, only bytes received in order
	PropDeliveredWasSent  = "DeliveredWasSent"  // no byte sent that was not written; reads within the peer's writes
	PropRstInWindow       = "RstInWindow"       // a reset only by an RST in the receive window (RFC 5961 3.2)
	PropSegmentWasSent    = "SegmentWasSent"    // (pairs) every segment received was sent by the peer
	PropISNAgrees         = "ISNAgrees"         // (pairs) IRS = the peer's ISS
	PropStatesPairUpAtEnd = "StatesPairUpAtEnd" // (pairs) the final states are a legal pair
)

var tcpTraceProps = []string{PropStateConsistent, PropLegalTransition, PropSndSeqOrder, PropSendWindow,
	PropRcvNotBeyondSent, PropDeliveredInOrder, PropDeliveredWasSent, PropRstInWindow}

// TCPTraceViolation is the first event of a connection that the spec does
// not explain.
type TCPTraceViolation struct {
	Conn     uint32
	Pos      int // position of the event in the trace
	Event    trace.Event
	Property string
	Message  string
	State    string // the replayed endpoint before the event
}

func (v *TCPTraceViolation) Error() string {
	return fmt.Sprintf("conn %d: event #%d (seq %d) %s: %s violated: %s\n  endpoint: %s", v.Conn, v.Pos, v.Event.Seq,
		v.Event.Kind, v.Property, v.Message, v.State)
}

// TCPConnReport is what held for one endpoint (connection number Conn).
type TCPConnReport struct {
	Conn          uint32
	Local, Remote netip.AddrPort
	Active        bool
	Peer          uint32 // the other endpoint's Conn when it is in the trace
	HasPeer       bool
	Events        int
	SegsSent      int
	SegsRecv      int
	Retransmitted int     // segments sent again (start below SND.NXT)
	BytesSent     uint64  // stream bytes sent (SND.NXT, without SYN and FIN)
	BytesAcked    uint64  // acknowledged by the peer
	BytesReceived uint64  // received in order
	BytesRead     uint64  // returned by Read
	States        []uint8 // the states it went through
	Held          []string
	Violation     *TCPTraceViolation
}

// TCPTraceReport is the outcome of ValidateTCPTrace.
type TCPTraceReport struct {
	Events    int // TCP events replayed
	Conns     []*TCPConnReport
	Pairs     int
	Violation *TCPTraceViolation // the first, in trace order
}

// OK reports whether every endpoint's replay succeeded.
func (r *TCPTraceReport) OK() bool { return r.Violation == nil }

func (r *TCPTraceReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d TCP events, %d endpoints, %d pairs\n", r.Events, len(r.Conns), r.Pairs)
	for _, c := range r.Conns {
		fmt.Fprintf(&b, "  conn %d %v->%v: %d events, sent %d B, received %d B, read %d B, states", c.Conn,
			c.Local, c.Remote, c.Events, c.BytesSent, c.BytesReceived, c.BytesRead)
		for _, s := range c.States {
			b.WriteString(" " + trace.TCPStateName(s))
		}
		if c.Violation != nil {
			fmt.Fprintf(&b, "\n    VIOLATION %v", c.Violation)
		} else {
			fmt.Fprintf(&b, "; held: %s", strings.Join(c.Held, ", "))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// seg32 is 2^32 arithmetic: Tcp.tla's SeqLt with M = 2^32 (RFC 9293 3.4).
var seg32 = &TCP{M: 1 << 32}

// unwrap maps a 32-bit sequence number to the 64-bit stream offset nearest
// ref, where the offset of base is 0.
func unwrap(seq, base uint32, ref int64) int64 {
	return ref + int64(int32(seq-base-uint32(ref)))
}

type interval struct{ lo, hi int64 }

const maxOOO = 4096

// tcpEnd replays one endpoint.
type tcpEnd struct {
	rep       *TCPConnReport
	st        uint8
	openState uint8 // the state tcp_open announced, until entered
	active    bool

	haveISS        bool
	iss            uint32
	sndUna, sndNxt int64 // offsets from ISS: SYN 0, byte k at k, FIN after
	finSent        bool
	finOff         int64
	edge           int64 // highest SND.UNA + SND.WND the peer advertised
	haveEdge       bool

	haveIRS     bool
	irs         uint32
	rcvNxt      int64 // offsets from IRS: highest in-order point the receiver can have
	ooo         []interval
	peerFin     bool
	peerFinOff  int64
	finConsumed bool
	ackSent     int64 // highest ACK sent (offset from IRS)
	bufMax      int64 // largest receive buffer the advertised windows show
	advEdge     int64 // highest ACK + window it advertised
	haveAdv     bool

	written uint64
	read    uint64
	eof     bool
	wdata   []byte // the bytes written, while every write has its data
	wgap    bool
	reads   []appRead

	lastRecv      trace.Event // the last segment received
	lastWasRecv   bool        // the last event of this endpoint was tcp_seg_recv
	lastWasTimer  bool        // ... was tcp_timer
	timerFired    bool
	aborted       bool // an ABORT (app_close with Index CloseAbort) was recorded
	timeWaitTimer bool
	rstSent       bool
	reset         bool // reset by an RST
	closed        bool // app_close seen
}

func (e *tcpEnd) String() string {
	return fmt.Sprintf("%s iss=%d una=+%d nxt=+%d fin=%v@%d edge=+%d irs=%d rcv=+%d ooo=%d peerFin=%v@%d consumed=%v ack=+%d adv=+%d written=%d read=%d",
		trace.TCPStateName(e.st), e.iss, e.sndUna, e.sndNxt, e.finSent, e.finOff, e.edge, e.irs, e.rcvNxt, len(e.ooo),
		e.peerFin, e.peerFinOff, e.finConsumed, e.ackSent, e.advEdge, e.written, e.read)
}

// TSO flag masks: the TCP flags the 82599 keeps in the first, middle and
// last segments it cuts from a TSO burst, DTXTCPFLGL/H's reset values (FIN
// and PSH only on the last segment, CWR only on the first; datasheet
// 8.2.3.9.12-13, cited from memory: docs/NOTES.md). The stack never
// reprograms them.
const (
	tsoFirstFlags = 0xF6
	tsoMidFlags   = 0x76
	tsoLastFlags  = 0x7F
)

// addSentSegs adds what the peer may receive of the sent segment ev to m:
// ev itself, or for a TSO burst (trace.SegOptTSO, the segment size in bits
// 16-31 of Index) the segments the device cuts it into, each with its
// sequence number, length and flags.
func addSentSegs(m map[tcpSegKey]struct{}, ev *trace.Event) {
	size := ev.Index >> 16
	if ev.Index&trace.SegOptTSO == 0 || size == 0 || ev.Len <= size || ev.Len/size > 1<<16 {
		m[tcpSegKey{ev.TSeq, ev.TAck, ev.Flags, ev.Len}] = struct{}{}
		return
	}
	for off := uint32(0); off < ev.Len; off += size {
		n := min(size, ev.Len-off)
		mask := uint8(tsoMidFlags)
		switch {
		case off == 0:
			mask = tsoFirstFlags
		case off+n == ev.Len:
			mask = tsoLastFlags
		}
		m[tcpSegKey{ev.TSeq + off, ev.TAck, ev.Flags & mask, n}] = struct{}{}
	}
}

// segLen is the sequence space of a recorded segment.
func segLen(ev *trace.Event) int64 {
	n := int64(ev.Len)
	if ev.Flags&0x02 != 0 { // SYN
		n++
	}
	if ev.Flags&0x01 != 0 { // FIN
		n++
	}
	return n
}

const (
	flFIN = 0x01
	flSYN = 0x02
	flRST = 0x04
	flACK = 0x10
)

// legalTransition is RFC 9293 figure 5 (with RST and timeouts to CLOSED).
func legalTransition(from, to uint8) bool {
	if to == tcpClosed {
		return true
	}
	switch from {
	case tcpClosed:
		// (A connection a listener spawns for a SYN starts in
		// SYN-RECEIVED: LISTEN is the listener's state, not its own.)
		return to == tcpSynSent || to == tcpListen || to == tcpSynReceived
	case tcpListen:
		return to == tcpSynReceived || to == tcpSynSent
	case tcpSynSent:
		return to == tcpSynReceived || to == tcpEstablished
	case tcpSynReceived:
		return to == tcpEstablished || to == tcpFinWait1 || to == tcpListen || to == tcpCloseWait
	case tcpEstablished:
		return to == tcpFinWait1 || to == tcpCloseWait
	case tcpFinWait1:
		return to == tcpFinWait2 || to == tcpClosing || to == tcpTimeWait
	case tcpFinWait2:
		return to == tcpTimeWait
	case tcpCloseWait:
		return to == tcpLastAck
	case tcpClosing:
		return to == tcpTimeWait
	}
	return false
}

// sent replays tcp_seg_sent.
func (e *tcpEnd) sent(ev *trace.Event) (string, string) {
	e.rep.SegsSent++
	if ev.Flags&flRST != 0 {
		e.rstSent = true
		return "", "" // an RST's numbers echo the segment it answers
	}
	if ev.Flags&flSYN != 0 && !e.haveISS {
		e.haveISS, e.iss, e.sndUna, e.sndNxt = true, ev.TSeq, 0, 1
		return e.sentAck(ev)
	}
	if !e.haveISS {
		return PropSndSeqOrder, "a segment before the SYN"
	}
	start := unwrap(ev.TSeq, e.iss, e.sndUna)
	n := segLen(ev)
	end := start + n
	if start > e.sndNxt {
		return PropSndSeqOrder, fmt.Sprintf("segment starts at +%d beyond SND.NXT +%d (a gap)", start, e.sndNxt)
	}
	// (Data below the highest ACK received may be sent again: the
	// endpoint ignores the ACK of an unacceptable segment, RFC 9293
	// 3.10.7.4. What it carries is checked against what was written.)
	if e.finSent && end > e.finOff+1 {
		return PropSndSeqOrder, fmt.Sprintf("segment [+%d,+%d) beyond the FIN at +%d", start, end, e.finOff)
	}
	if ev.Flags&flFIN != 0 {
		f := end - 1
		if e.finSent && f != e.finOff {
			return PropSndSeqOrder, fmt.Sprintf("a second FIN at +%d (first at +%d)", f, e.finOff)
		}
		e.finSent, e.finOff = true, f
	}
	if ev.Len > 0 && end > e.sndNxt {
		// New data: inside the window the peer advertised; a single
		// byte may probe a zero window (RFC 9293 3.8.6.1).
		dataEnd := start + int64(ev.Len)
		if ev.Flags&flSYN != 0 {
			dataEnd++
		}
		if e.haveEdge && dataEnd > e.edge && !(ev.Len == 1 && start == e.edge && e.sndUna == e.sndNxt) {
			return PropSendWindow, fmt.Sprintf("data up to +%d beyond the peer's window edge +%d", dataEnd, e.edge)
		}
	}
	if start < e.sndNxt && n > 0 {
		e.rep.Retransmitted++
	}
	if end > e.sndNxt {
		e.sndNxt = end
	}
	return e.sentAck(ev)
}

// sentAck checks the acknowledgment and window a sent segment carries.
func (e *tcpEnd) sentAck(ev *trace.Event) (string, string) {
	if ev.Flags&flACK == 0 {
		return "", ""
	}
	if !e.haveIRS {
		return PropRcvNotBeyondSent, "an ACK before the peer's SYN was received"
	}
	a := unwrap(ev.TAck, e.irs, e.rcvNxt)
	if a > e.rcvNxt {
		return PropRcvNotBeyondSent, fmt.Sprintf("acknowledges +%d but only +%d was received in order", a, e.rcvNxt)
	}
	if a < e.ackSent {
		return PropRcvNotBeyondSent, fmt.Sprintf("acknowledgment went back from +%d to +%d", e.ackSent, a)
	}
	e.ackSent = a
	if edge := a + int64(ev.Wnd); !e.haveAdv || edge > e.advEdge {
		e.advEdge, e.haveAdv = edge, true
	}
	// The receive buffer is at least the window plus what it holds.
	if b := int64(ev.Wnd) + int64(e.receivedBytes()) - int64(e.read); b > e.bufMax {
		e.bufMax = b
	}
	return "", ""
}

// recv replays tcp_seg_recv: the channel's output becomes what the endpoint
// can know.
func (e *tcpEnd) recv(ev *trace.Event) (string, string) {
	e.rep.SegsRecv++
	e.lastRecv = *ev
	if ev.Flags&flRST != 0 {
		return "", ""
	}
	if ev.Flags&flSYN != 0 && !e.haveIRS {
		e.haveIRS, e.irs, e.rcvNxt, e.ackSent = true, ev.TSeq, 1, 1
	}
	if ev.Flags&flACK != 0 && e.haveISS {
		a := unwrap(ev.TAck, e.iss, e.sndUna)
		if a > e.sndUna && a <= e.sndNxt {
			e.sndUna = a
		}
		if a >= e.sndUna && a <= e.sndNxt {
			if edge := a + int64(ev.Wnd); !e.haveEdge || edge > e.edge {
				e.edge, e.haveEdge = edge, true
			}
		}
	}
	if !e.haveIRS || (ev.Len == 0 && ev.Flags&flFIN == 0) {
		return "", ""
	}
	start := unwrap(ev.TSeq, e.irs, e.rcvNxt)
	if ev.Flags&flSYN != 0 {
		start++
	}
	end := start + int64(ev.Len)
	// Only what falls inside the window the endpoint advertised can be
	// accepted (RFC 9293 3.10.7.4): an endpoint that acknowledges more has
	// taken data outside its window.
	// The window opens as the application reads, before it is advertised
	// again: the edge is also what was read plus the buffer.
	limit := end
	if lim := max(e.advEdge, 1+int64(e.read)+e.bufMax); e.haveAdv && limit > lim {
		limit = lim
	}
	if limit > start {
		e.addRange(start, limit)
	}
	if ev.Flags&flFIN != 0 && (!e.haveAdv || end <= max(e.advEdge, 1+int64(e.read)+e.bufMax)) {
		if !e.peerFin {
			e.peerFin, e.peerFinOff = true, end
		}
	}
	e.advance()
	return "", ""
}

func (e *tcpEnd) addRange(lo, hi int64) {
	if hi <= e.rcvNxt {
		return
	}
	if lo <= e.rcvNxt {
		e.rcvNxt = hi
		return
	}
	i := sort.Search(len(e.ooo), func(i int) bool { return e.ooo[i].hi >= lo })
	j := i
	for j < len(e.ooo) && e.ooo[j].lo <= hi {
		lo, hi = min(lo, e.ooo[j].lo), max(hi, e.ooo[j].hi)
		j++
	}
	if i == j && len(e.ooo) >= maxOOO {
		return
	}
	e.ooo = append(e.ooo[:i], append([]interval{{lo, hi}}, e.ooo[j:]...)...)
}

// advance moves RCV.NXT over the held ranges and an in-order FIN.
func (e *tcpEnd) advance() {
	for len(e.ooo) > 0 && e.ooo[0].lo <= e.rcvNxt {
		e.rcvNxt = max(e.rcvNxt, e.ooo[0].hi)
		e.ooo = e.ooo[1:]
	}
	if e.peerFin && !e.finConsumed && e.rcvNxt >= e.peerFinOff {
		e.rcvNxt, e.finConsumed = e.peerFinOff+1, true
	}
}

func (e *tcpEnd) finAcked() bool { return e.finSent && e.sndUna > e.finOff }

// state replays tcp_state: a change must be legal and have its cause.
func (e *tcpEnd) state(ev *trace.Event) (string, string) {
	from, to := uint8(ev.Index), ev.State
	if from != e.st {
		return PropStateConsistent, fmt.Sprintf("change from %s but the endpoint is in %s", trace.TCPStateName(from), trace.TCPStateName(e.st))
	}
	if !legalTransition(from, to) {
		return PropLegalTransition, fmt.Sprintf("%s -> %s is not a transition of RFC 9293 figure 5", trace.TCPStateName(from), trace.TCPStateName(to))
	}
	rst := e.lastWasRecv && e.lastRecv.Flags&flRST != 0
	switch {
	case rst && (to == tcpClosed || (to == tcpListen && from == tcpSynReceived)):
		if p, m := e.rstCheck(); p != "" {
			return p, m
		}
		e.reset = true
	case to == tcpEstablished:
		if e.sndUna < 1 || !e.haveIRS {
			return PropLegalTransition, "ESTABLISHED before the SYN was acknowledged and the peer's SYN received"
		}
	case to == tcpCloseWait || to == tcpClosing || (to == tcpTimeWait && from == tcpFinWait2):
		if !e.finConsumed {
			return PropLegalTransition, fmt.Sprintf("%s without the peer's FIN received in order", trace.TCPStateName(to))
		}
	case to == tcpTimeWait && from == tcpFinWait1:
		if !e.finConsumed || !e.finAcked() {
			return PropLegalTransition, "TIME-WAIT from FIN-WAIT-1 needs the peer's FIN and the ACK of ours"
		}
	case to == tcpFinWait2 || (to == tcpTimeWait && from == tcpClosing):
		if !e.finAcked() {
			return PropLegalTransition, fmt.Sprintf("%s before our FIN was acknowledged", trace.TCPStateName(to))
		}
	case to == tcpClosed && e.aborted:
		// ABORT (RFC 9293 3.10.5): the application, or the stack closing,
		// deleted the connection; any state may go to CLOSED.
	case to == tcpClosed && from == tcpLastAck:
		if !e.finAcked() && !e.lastWasTimer && !e.rstSent {
			return PropLegalTransition, "LAST-ACK -> CLOSED before our FIN was acknowledged"
		}
	case to == tcpClosed && from == tcpTimeWait:
		if !e.timeWaitTimer {
			return PropLegalTransition, "TIME-WAIT -> CLOSED before the 2MSL timer fired"
		}
	case to == tcpClosed && from != tcpSynSent && from != tcpListen:
		if !e.lastWasTimer && !e.rstSent {
			return PropLegalTransition, fmt.Sprintf("%s -> CLOSED without an RST (received or sent) or a timeout", trace.TCPStateName(from))
		}
	}
	e.st = to
	e.rep.States = append(e.rep.States, to)
	return "", ""
}

// rstCheck: the RST that reset the endpoint was acceptable (RFC 9293
// 3.10.7.3: in SYN-SENT it acknowledges the SYN; 3.10.7.4 / RFC 5961 3.2:
// otherwise its sequence number is in the receive window).
func (e *tcpEnd) rstCheck() (string, string) {
	r := &e.lastRecv
	if e.st == tcpSynSent {
		if r.Flags&flACK == 0 || !e.haveISS {
			return PropRstInWindow, "SYN-SENT reset by an RST without ACK"
		}
		a := unwrap(r.TAck, e.iss, e.sndUna)
		if a < 1 || a > e.sndNxt {
			return PropRstInWindow, fmt.Sprintf("SYN-SENT reset by an RST whose ACK +%d does not acknowledge the SYN", a)
		}
		return "", ""
	}
	if !e.haveIRS {
		return "", ""
	}
	s := unwrap(r.TSeq, e.irs, e.rcvNxt)
	hi := max(e.advEdge, e.ackSent+1)
	if s < e.ackSent || s >= max(hi, e.rcvNxt+1) {
		return PropRstInWindow, fmt.Sprintf("reset by an RST at +%d outside the receive window [+%d, +%d)", s, e.ackSent, max(hi, e.rcvNxt+1))
	}
	return "", ""
}

// app replays app_write, app_read and app_close.
func (e *tcpEnd) app(ev *trace.Event) (string, string) {
	switch ev.Kind {
	case trace.AppWrite:
		if ev.Buf != e.written {
			return PropDeliveredWasSent, fmt.Sprintf("write at offset %d, %d bytes written before", ev.Buf, e.written)
		}
		if ev.Len > 0 && (ev.Data == "" || len(e.wdata)+len(ev.Data) > maxKeptData) {
			e.wgap = true
		}
		if !e.wgap {
			e.wdata = append(e.wdata, ev.Data...)
		}
		e.written += uint64(ev.Len)
	case trace.AppRead:
		if ev.Buf != e.read {
			return PropDeliveredInOrder, fmt.Sprintf("read at offset %d, %d bytes read before (a byte skipped or read twice)", ev.Buf, e.read)
		}
		if ev.Data != "" {
			e.reads = append(e.reads, appRead{off: e.read, data: ev.Data, ev: ev})
		}
		e.read += uint64(ev.Len)
		if got := e.receivedBytes(); e.read > got {
			return PropDeliveredInOrder, fmt.Sprintf("read up to offset %d, only %d bytes received in order", e.read, got)
		}
		if ev.Flags&1 != 0 {
			if !e.finConsumed || int64(e.read) != e.peerFinOff-1 {
				return PropDeliveredInOrder, fmt.Sprintf("end of stream at offset %d (peer's FIN consumed: %v)", e.read, e.finConsumed)
			}
			e.eof = true
		}
	case trace.AppClose:
		e.closed = true
		if ev.Index == trace.CloseAbort {
			e.aborted = true
		}
	}
	return "", ""
}

// receivedBytes: stream bytes received in order (without SYN and FIN).
func (e *tcpEnd) receivedBytes() uint64 {
	n := e.rcvNxt - 1
	if e.finConsumed {
		n--
	}
	return uint64(max(n, 0))
}

func (e *tcpEnd) sentBytes() uint64 {
	n := e.sndNxt - 1
	if e.finSent {
		n--
	}
	return uint64(max(n, 0))
}

type appRead struct {
	pos  int
	ev   *trace.Event
	off  uint64
	data string
}

const maxKeptData = 256 << 20

type tcpSegKey struct {
	seq, ack uint32
	flags    uint8
	len      uint32
}

// ValidateTCPTrace replays every TCP connection endpoint of the trace, in
// seq order, against the abstract TCP of tla/Tcp.tla; endpoints whose
// addresses are each other's swapped are paired and cross-checked. Each
// endpoint's replay stops at its first violation; the report gives, per
// endpoint, what held.
func ValidateTCPTrace(events []trace.Event) TCPTraceReport {
	var rep TCPTraceReport
	ends := map[uint32]*tcpEnd{}
	byAddr := map[[2]uint64]uint32{}
	var order []uint32
	sentSegs := map[uint32]map[tcpSegKey]struct{}{}
	type pending struct {
		pos int
		ev  trace.Event
	}
	var recvs []pending // received segments to match once pairs are known
	fail := func(e *tcpEnd, pos int, ev *trace.Event, prop, msg string) {
		if e.rep.Violation != nil {
			return
		}
		e.rep.Violation = &TCPTraceViolation{Conn: ev.Conn, Pos: pos, Event: *ev, Property: prop, Message: msg, State: e.String()}
	}
	for pos := range events {
		ev := &events[pos]
		if !ev.Kind.IsTCP() {
			continue
		}
		rep.Events++
		e := ends[ev.Conn]
		if ev.Kind == trace.TCPOpen {
			if e != nil {
				continue
			}
			// proto/tcp records tcp_open with the first state, then the
			// change from CLOSED to it (the passive side after the SYN's
			// tcp_seg_recv, recorded in CLOSED); a recorder that writes no
			// such change enters the state with its first event.
			e = &tcpEnd{active: ev.Flags&1 != 0, st: tcpClosed, openState: ev.State}
			e.rep = &TCPConnReport{Conn: ev.Conn, Local: trace.UnpackAddrPort(ev.Buf), Remote: trace.UnpackAddrPort(ev.Aux),
				Active: e.active}
			ends[ev.Conn] = e
			order = append(order, ev.Conn)
			byAddr[[2]uint64{ev.Buf, ev.Aux}] = ev.Conn
			e.rep.Events++
			continue
		}
		if e == nil {
			e = &tcpEnd{st: tcpClosed}
			e.rep = &TCPConnReport{Conn: ev.Conn}
			ends[ev.Conn] = e
			order = append(order, ev.Conn)
			fail(e, pos, ev, PropStateConsistent, "event of a connection with no tcp_open")
		}
		e.rep.Events++
		if e.rep.Violation != nil {
			continue
		}
		if e.st == tcpClosed && e.openState != tcpClosed {
			if (ev.Kind == trace.TCPState && uint8(ev.Index) == e.openState) ||
				((ev.Kind == trace.TCPSegSent || ev.Kind == trace.TCPSegRecv) && ev.State == e.openState) {
				e.st = e.openState
				e.rep.States = append(e.rep.States, e.st)
				e.openState = tcpClosed
			} else if ev.Kind == trace.TCPState && ev.State == e.openState {
				e.openState = tcpClosed
			}
		}
		var prop, msg string
		switch ev.Kind {
		case trace.TCPSegSent, trace.TCPSegRecv:
			if ev.State != e.st {
				prop, msg = PropStateConsistent, fmt.Sprintf("segment recorded in %s, endpoint in %s", trace.TCPStateName(ev.State), trace.TCPStateName(e.st))
				break
			}
			if ev.Kind == trace.TCPSegSent {
				prop, msg = e.sent(ev)
				if ev.Flags&flRST == 0 {
					m := sentSegs[ev.Conn]
					if m == nil {
						m = map[tcpSegKey]struct{}{}
						sentSegs[ev.Conn] = m
					}
					addSentSegs(m, ev)
				}
			} else {
				prop, msg = e.recv(ev)
				if ev.Flags&flRST == 0 {
					recvs = append(recvs, pending{pos, *ev})
				}
			}
		case trace.TCPState:
			prop, msg = e.state(ev)
		case trace.TCPTimer:
			if trace.TimerKind(ev.Index) == trace.TimerTimeWait {
				e.timeWaitTimer = true
			} else if trace.TimerKind(ev.Index) == trace.TimerRetransmit {
				e.timerFired = true
			}
		default:
			prop, msg = e.app(ev)
		}
		e.lastWasRecv = ev.Kind == trace.TCPSegRecv
		e.lastWasTimer = ev.Kind == trace.TCPTimer
		if prop != "" {
			fail(e, pos, ev, prop, msg)
		}
	}
	// End of trace: nothing sent that was not written.
	for _, c := range order {
		e := ends[c]
		if e.rep.Violation == nil && e.written > 0 && e.sentBytes() > e.written {
			fail(e, len(events)-1, &trace.Event{Conn: c}, PropDeliveredWasSent,
				fmt.Sprintf("%d bytes sent, %d written", e.sentBytes(), e.written))
		}
	}
	// Pairs.
	held := map[uint32][]string{}
	for _, c := range order {
		e := ends[c]
		if e.rep.Local == (netip.AddrPort{}) {
			continue
		}
		pk := [2]uint64{trace.PackAddrPort(e.rep.Remote), trace.PackAddrPort(e.rep.Local)}
		if q, ok := byAddr[pk]; ok && q != c {
			e.rep.Peer, e.rep.HasPeer = q, true
		}
	}
	for _, c := range order {
		e := ends[c]
		if !e.rep.HasPeer || c > e.rep.Peer {
			continue
		}
		rep.Pairs++
		f := ends[e.rep.Peer]
		for _, x := range [2][2]*tcpEnd{{e, f}, {f, e}} {
			a, b := x[0], x[1]
			if a.haveIRS && b.haveISS && a.irs != b.iss && a.rep.Violation == nil {
				fail(a, len(events)-1, &trace.Event{Conn: a.rep.Conn}, PropISNAgrees, fmt.Sprintf("IRS %d, peer's ISS %d", a.irs, b.iss))
			}
			if a.rep.Violation == nil && b.written > 0 && a.read > b.written {
				fail(a, len(events)-1, &trace.Event{Conn: a.rep.Conn}, PropDeliveredWasSent,
					fmt.Sprintf("read %d bytes, the peer wrote %d", a.read, b.written))
			}
			for _, r := range a.reads {
				if a.rep.Violation != nil || r.off+uint64(len(r.data)) > uint64(len(b.wdata)) {
					break
				}
				if w := string(b.wdata[r.off : r.off+uint64(len(r.data))]); w != r.data {
					i := 0
					for i < len(w) && w[i] == r.data[i] {
						i++
					}
					fail(a, int(r.ev.Seq), r.ev, PropDeliveredInOrder, fmt.Sprintf("byte at stream offset %d is %q, the peer wrote %q there",
						r.off+uint64(i), r.data[i], w[i]))
				}
			}
		}
		if e.rep.Violation == nil && f.rep.Violation == nil && !e.reset && !f.reset &&
			(!statesPairUp(e.st, f.st) || !statesPairUp(f.st, e.st)) {
			fail(e, len(events)-1, &trace.Event{Conn: c}, PropStatesPairUpAtEnd,
				fmt.Sprintf("final states %s and %s", trace.TCPStateName(e.st), trace.TCPStateName(f.st)))
		}
		held[c] = append(held[c], PropSegmentWasSent, PropISNAgrees, PropStatesPairUpAtEnd)
		held[f.rep.Conn] = append(held[f.rep.Conn], PropSegmentWasSent, PropISNAgrees, PropStatesPairUpAtEnd)
	}
	for _, p := range recvs {
		e := ends[p.ev.Conn]
		if !e.rep.HasPeer || e.rep.Violation != nil && e.rep.Violation.Pos < p.pos {
			continue
		}
		if _, ok := sentSegs[e.rep.Peer][tcpSegKey{p.ev.TSeq, p.ev.TAck, p.ev.Flags, p.ev.Len}]; !ok {
			if v := e.rep.Violation; v == nil || v.Pos > p.pos {
				e.rep.Violation = nil
				fail(e, p.pos, &p.ev, PropSegmentWasSent, fmt.Sprintf("seq %d ack %d flags %#x len %d was never sent by conn %d",
					p.ev.TSeq, p.ev.TAck, p.ev.Flags, p.ev.Len, e.rep.Peer))
			}
		}
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	for _, c := range order {
		e := ends[c]
		r := e.rep
		r.BytesSent, r.BytesReceived, r.BytesRead = e.sentBytes(), e.receivedBytes(), e.read
		if e.sndUna > 1 {
			r.BytesAcked = uint64(e.sndUna - 1)
			if e.finAcked() {
				r.BytesAcked--
			}
		}
		if r.Violation == nil {
			r.Held = append(append([]string(nil), tcpTraceProps...), held[c]...)
		}
		rep.Conns = append(rep.Conns, r)
		if r.Violation != nil && (rep.Violation == nil || r.Violation.Pos < rep.Violation.Pos) {
			rep.Violation = r.Violation
		}
	}
	return rep
}
