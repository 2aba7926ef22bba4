package models

import (
	"fmt"
	"slices"
	"strings"

	"github.com/verinic/verinic/trace"
)

// The broken variants of Tcp.tla (its constant Bug), same names.
const (
	BugNoWrapCompare        Bug = "no_wrap_compare"
	BugAckBeyondSndNxt      Bug = "ack_beyond_snd_nxt"
	BugIgnoreWindow         Bug = "ignore_window"
	BugNoTimeWait           Bug = "no_time_wait"
	BugWindowOffByOne       Bug = "window_off_by_one"
	BugFinTwice             Bug = "fin_twice"
	BugRstOutOfWindow       Bug = "rst_out_of_window"
	BugDeliverOutOfOrder    Bug = "deliver_out_of_order"
	BugRetransmitWrongRange Bug = "retransmit_wrong_range"
)

// TCP states: trace's numbering, RFC 9293 3.3.2.
const (
	tcpClosed      = trace.TCPStateClosed
	tcpListen      = trace.TCPStateListen
	tcpSynSent     = trace.TCPStateSynSent
	tcpSynReceived = trace.TCPStateSynReceived
	tcpEstablished = trace.TCPStateEstablished
	tcpFinWait1    = trace.TCPStateFinWait1
	tcpFinWait2    = trace.TCPStateFinWait2
	tcpCloseWait   = trace.TCPStateCloseWait
	tcpClosing     = trace.TCPStateClosing
	tcpLastAck     = trace.TCPStateLastAck
	tcpTimeWait    = trace.TCPStateTimeWait
)

// synchronizedState is Tcp.tla's Synchronized: SYN-RECEIVED and later.
func synchronizedState(st uint8) bool { return st >= tcpSynReceived && st <= tcpTimeWait }

// TCB is a TCP endpoint's variables in Tcp.tla (ep[p]).
type TCB struct {
	St                      uint8
	ISS, IRS, Una, Nxt, Rcv uint32
	SWnd                    uint32 // SND.WND
	Buf                     uint32 // bytes delivered, not yet read
}

// TCPSeg is a segment of Tcp.tla: Data is the byte carried (0: none).
type TCPSeg struct {
	Src                uint8 // 0 = A, 1 = B
	Seq, Ack           uint32
	SYN, ACK, FIN, RST bool
	Wnd                uint32
	Data               uint8
}

func (s TCPSeg) len() uint32 {
	n := uint32(0)
	if s.SYN {
		n++
	}
	if s.FIN {
		n++
	}
	if s.Data != 0 {
		n++
	}
	return n
}

func (s TCPSeg) flags() uint8 {
	var f uint8
	for i, b := range [...]bool{s.SYN, s.ACK, s.FIN, s.RST} {
		if b {
			f |= 1 << i
		}
	}
	return f
}

func cmpSeg(a, b TCPSeg) int {
	switch {
	case a.Src != b.Src:
		return int(a.Src) - int(b.Src)
	case a.Seq != b.Seq:
		return cmpU32(a.Seq, b.Seq)
	case a.Ack != b.Ack:
		return cmpU32(a.Ack, b.Ack)
	case a.flags() != b.flags():
		return int(a.flags()) - int(b.flags())
	case a.Wnd != b.Wnd:
		return cmpU32(a.Wnd, b.Wnd)
	}
	return int(a.Data) - int(b.Data)
}

func cmpU32(a, b uint32) int {
	if a < b {
		return -1
	}
	return 1
}

func (s TCPSeg) String() string {
	var f []string
	for i, n := range [...]string{"SYN", "ACK", "FIN", "RST"} {
		if s.flags()&(1<<i) != 0 {
			f = append(f, n)
		}
	}
	return fmt.Sprintf("%c seq=%d ack=%d %s wnd=%d data=%d", "AB"[s.Src], s.Seq, s.Ack, strings.Join(f, ","), s.Wnd, s.Data)
}

// TCPModelState holds Tcp.tla's variables. Net is kept sorted (a set).
type TCPModelState struct {
	Ep       [2]TCB
	Net      []TCPSeg
	Dlv      [2][]uint8
	Injected uint8
	RstBad   bool
	Aborted  [2]bool
}

// Clone returns a deep copy.
func (s *TCPModelState) Clone() *TCPModelState {
	t := *s
	t.Net = slices.Clone(s.Net)
	t.Dlv[0] = slices.Clone(s.Dlv[0])
	t.Dlv[1] = slices.Clone(s.Dlv[1])
	return &t
}

func (s *TCPModelState) String() string {
	var b strings.Builder
	for p := 0; p < 2; p++ {
		e := s.Ep[p]
		fmt.Fprintf(&b, "%c:%s iss=%d irs=%d una=%d nxt=%d rcv=%d swnd=%d buf=%d dlv=%v; ", "AB"[p],
			trace.TCPStateName(e.St), e.ISS, e.IRS, e.Una, e.Nxt, e.Rcv, e.SWnd, e.Buf, s.Dlv[p])
	}
	fmt.Fprintf(&b, "net=%v injected=%d rstBad=%v aborted=%v", s.Net, s.Injected, s.RstBad, s.Aborted)
	return b.String()
}

func (s *TCPModelState) netHas(g TCPSeg) (int, bool) {
	return slices.BinarySearchFunc(s.Net, g, cmpSeg)
}

func (s *TCPModelState) netAdd(g TCPSeg) {
	if i, ok := s.netHas(g); !ok {
		s.Net = slices.Insert(s.Net, i, g)
	}
}

func (s *TCPModelState) netDel(g TCPSeg) {
	if i, ok := s.netHas(g); ok {
		s.Net = slices.Delete(s.Net, i, i+1)
	}
}

// TCP holds Tcp.tla's constants. M may be up to 2^32 (trace validation).
type TCP struct {
	M            uint64
	ISN          []uint32
	W            uint32
	NA, NB       uint32
	K            int
	Simultaneous bool // Opens = "simultaneous" (else "active_passive")
	MaxInject    int
	Lossy        bool
	Bug          Bug

	recvNames [2][]string
}

func (m *TCP) n(p int) uint32 {
	if p == 0 {
		return m.NA
	}
	return m.NB
}

func (m *TCP) active(p int) bool { return p == 0 || m.Simultaneous }

func (m *TCP) mod(x uint64) uint32 { return uint32(x % m.M) }

// off is Off(x, base): x - base modulo M.
func (m *TCP) off(x, base uint32) uint64 { return (uint64(x) + m.M - uint64(base)) % m.M }

// seqLt is SeqLt (RFC 9293 3.4), or plain < in the broken variant.
func (m *TCP) seqLt(a, b uint32) bool {
	if m.Bug == BugNoWrapCompare {
		return a < b
	}
	return a != b && m.off(b, a) < m.M/2
}

func (m *TCP) seqLeq(a, b uint32) bool { return a == b || m.seqLt(a, b) }

func (m *TCP) inWin(x, lo, w uint32) bool {
	if m.Bug == BugWindowOffByOne {
		return m.seqLeq(lo, x) && m.seqLeq(x, m.mod(uint64(lo)+uint64(w)))
	}
	return m.seqLeq(lo, x) && m.seqLt(x, m.mod(uint64(lo)+uint64(w)))
}

func (m *TCP) rcvWnd(e *TCB) uint32 { return m.W - e.Buf }
func (m *TCP) sndOff(e *TCB) uint64 { return m.off(e.Nxt, e.ISS) }

func (m *TCP) synSeg(p int, e *TCB) TCPSeg {
	return TCPSeg{Src: uint8(p), Seq: e.ISS, SYN: true, Wnd: m.rcvWnd(e)}
}
func (m *TCP) synAckSeg(p int, e *TCB) TCPSeg {
	return TCPSeg{Src: uint8(p), Seq: e.ISS, Ack: e.Rcv, SYN: true, ACK: true, Wnd: m.rcvWnd(e)}
}
func (m *TCP) ackSeg(p int, e *TCB) TCPSeg {
	return TCPSeg{Src: uint8(p), Seq: e.Nxt, Ack: e.Rcv, ACK: true, Wnd: m.rcvWnd(e)}
}
func (m *TCP) dataSeg(p int, e *TCB, seq uint32, b uint8) TCPSeg {
	return TCPSeg{Src: uint8(p), Seq: seq, Ack: e.Rcv, ACK: true, Wnd: m.rcvWnd(e), Data: b}
}
func (m *TCP) finSeg(p int, e *TCB, seq uint32) TCPSeg {
	return TCPSeg{Src: uint8(p), Seq: seq, Ack: e.Rcv, ACK: true, FIN: true, Wnd: m.rcvWnd(e)}
}
func rstSeg(p int, seq uint32) TCPSeg { return TCPSeg{Src: uint8(p), Seq: seq, RST: true} }
func rstAckSeg(p int, ack uint32) TCPSeg {
	return TCPSeg{Src: uint8(p), Ack: ack, ACK: true, RST: true}
}

// tcpRes is Tcp.tla's Res: the outcome of processing one segment.
type tcpRes struct {
	e      TCB
	out    TCPSeg
	hasOut bool
	byte   uint8
	rb, ab bool
}

func res(e TCB) tcpRes                { return tcpRes{e: e} }
func resOut(e TCB, out TCPSeg) tcpRes { return tcpRes{e: e, out: out, hasOut: true} }

func (m *TCP) tw() uint8 {
	if m.Bug == BugNoTimeWait {
		return tcpClosed
	}
	return tcpTimeWait
}

// ackOK: SND.UNA < SEG.ACK =< SND.NXT (RFC 9293 3.10.7.4, fifth check).
func (m *TCP) ackOK(e *TCB, a uint32) bool {
	if m.Bug == BugAckBeyondSndNxt {
		return m.seqLt(e.Una, a)
	}
	return m.seqLt(e.Una, a) && m.seqLeq(a, e.Nxt)
}

// acceptable is the segment acceptability test (RFC 9293 3.10.7.4 first).
func (m *TCP) acceptable(e *TCB, s TCPSeg) bool {
	switch {
	case m.Bug == BugFinTwice && s.FIN && m.mod(uint64(s.Seq)+1) == e.Rcv:
		return true
	case s.len() == 0:
		if m.rcvWnd(e) == 0 {
			return s.Seq == e.Rcv
		}
		return m.inWin(s.Seq, e.Rcv, m.rcvWnd(e))
	case m.Bug == BugIgnoreWindow && s.Data != 0:
		return true
	case m.Bug == BugWindowOffByOne:
		return m.inWin(s.Seq, e.Rcv, m.rcvWnd(e))
	}
	return m.rcvWnd(e) > 0 && m.inWin(s.Seq, e.Rcv, m.rcvWnd(e))
}

// trueInWin is TrueInWin: the correct window test, for the history.
func (m *TCP) trueInWin(x uint32, e *TCB) bool {
	w := uint64(m.rcvWnd(e))
	if w == 0 {
		w = 1
	}
	return m.off(x, e.Rcv) < w
}

func (m *TCP) listenAgain(e TCB) TCB {
	e.St, e.Nxt, e.Una, e.Rcv, e.IRS, e.SWnd = tcpListen, e.ISS, e.ISS, 0, 0, 0
	return e
}

func (m *TCP) reset(p int, e TCB, s TCPSeg) tcpRes {
	e1 := e
	if e.St == tcpSynReceived && !m.active(p) {
		e1 = m.listenAgain(e)
	} else {
		e1.St = tcpClosed
	}
	return tcpRes{e: e1, rb: !m.trueInWin(s.Seq, &e), ab: e.St != tcpTimeWait}
}

func (m *TCP) recvClosed(p int, e TCB, s TCPSeg) tcpRes {
	switch {
	case s.RST:
		return res(e)
	case s.ACK:
		return resOut(e, rstSeg(p, s.Ack))
	}
	return resOut(e, rstAckSeg(p, m.mod(uint64(s.Seq)+uint64(s.len()))))
}

func (m *TCP) recvListen(p int, e TCB, s TCPSeg) tcpRes {
	switch {
	case s.RST:
		return res(e)
	case s.ACK:
		return resOut(e, rstSeg(p, s.Ack))
	case s.SYN:
		e.St, e.IRS, e.Rcv, e.Una, e.Nxt, e.SWnd = tcpSynReceived, s.Seq, m.mod(uint64(s.Seq)+1), e.ISS, m.mod(uint64(e.ISS)+1), s.Wnd
		return resOut(e, m.synAckSeg(p, &e))
	}
	return res(e)
}

func (m *TCP) recvSynSent(p int, e TCB, s TCPSeg) tcpRes {
	switch {
	case s.ACK && !m.ackOK(&e, s.Ack):
		if s.RST {
			return res(e)
		}
		return resOut(e, rstSeg(p, s.Ack))
	case s.RST:
		if s.ACK {
			e.St = tcpClosed
			return tcpRes{e: e, ab: true}
		}
		return res(e)
	case s.SYN:
		e.IRS, e.Rcv, e.SWnd = s.Seq, m.mod(uint64(s.Seq)+1), s.Wnd
		if s.ACK {
			e.Una = s.Ack
		}
		if m.seqLt(e.ISS, e.Una) {
			e.St = tcpEstablished
			return resOut(e, m.ackSeg(p, &e))
		}
		e.St = tcpSynReceived
		return resOut(e, m.synAckSeg(p, &e))
	}
	return res(e)
}

func (m *TCP) ackUpdate(e TCB, s TCPSeg) TCB {
	st0 := e.St
	if st0 == tcpSynReceived {
		st0 = tcpEstablished
	}
	una := e.Una
	ok := m.ackOK(&e, s.Ack)
	if ok {
		una = s.Ack
	}
	swnd := e.SWnd
	if s.Ack == e.Una || ok {
		swnd = s.Wnd
	}
	st := st0
	if (st0 == tcpFinWait1 || st0 == tcpClosing || st0 == tcpLastAck) && una == e.Nxt {
		switch st0 {
		case tcpFinWait1:
			st = tcpFinWait2
		case tcpClosing:
			st = m.tw()
		case tcpLastAck:
			st = tcpClosed
		}
	}
	e.St, e.Una, e.SWnd = st, una, swnd
	return e
}

func (m *TCP) recvText(p int, e TCB, s TCPSeg) tcpRes {
	switch {
	case s.Data != 0:
		if e.St != tcpEstablished && e.St != tcpFinWait1 && e.St != tcpFinWait2 {
			return res(e)
		}
		if s.Seq == e.Rcv {
			e.Rcv, e.Buf = m.mod(uint64(e.Rcv)+1), e.Buf+1
			return tcpRes{e: e, out: m.ackSeg(p, &e), hasOut: true, byte: s.Data}
		}
		if m.Bug == BugDeliverOutOfOrder {
			e.Buf++
			return tcpRes{e: e, out: m.ackSeg(p, &e), hasOut: true, byte: s.Data}
		}
		return resOut(e, m.ackSeg(p, &e))
	case s.FIN:
		if s.Seq == e.Rcv || (m.Bug == BugFinTwice && m.mod(uint64(s.Seq)+1) == e.Rcv) {
			switch e.St {
			case tcpEstablished:
				e.St = tcpCloseWait
			case tcpFinWait1:
				e.St = tcpClosing
			case tcpFinWait2:
				e.St = m.tw()
			}
			e.Rcv = m.mod(uint64(e.Rcv) + 1)
			return resOut(e, m.ackSeg(p, &e))
		}
		return resOut(e, m.ackSeg(p, &e))
	}
	return res(e)
}

func (m *TCP) recvSync(p int, e TCB, s TCPSeg) tcpRes {
	switch {
	case s.RST && m.Bug == BugRstOutOfWindow:
		return m.reset(p, e, s)
	case !m.acceptable(&e, s):
		if s.RST || s.len() == 0 {
			return res(e)
		}
		return resOut(e, m.ackSeg(p, &e))
	case s.RST:
		if s.Seq == e.Rcv {
			return m.reset(p, e, s)
		}
		return resOut(e, m.ackSeg(p, &e))
	case s.SYN:
		if e.St == tcpSynReceived && !m.active(p) {
			return res(m.listenAgain(e))
		}
		return resOut(e, m.ackSeg(p, &e))
	case !s.ACK:
		return res(e)
	case e.St == tcpSynReceived && !m.ackOK(&e, s.Ack):
		return resOut(e, rstSeg(p, s.Ack))
	case m.Bug != BugAckBeyondSndNxt && m.seqLt(e.Nxt, s.Ack):
		return resOut(e, m.ackSeg(p, &e))
	}
	e1 := m.ackUpdate(e, s)
	if e1.St == tcpClosed {
		return res(e1)
	}
	return m.recvText(p, e1, s)
}

// process is Tcp.tla's Process(p, e, s).
func (m *TCP) process(p int, e TCB, s TCPSeg) tcpRes {
	switch e.St {
	case tcpClosed:
		return m.recvClosed(p, e, s)
	case tcpListen:
		return m.recvListen(p, e, s)
	case tcpSynSent:
		return m.recvSynSent(p, e, s)
	}
	return m.recvSync(p, e, s)
}

// put is Put(net, out): a segment joins the channel unless K are in flight.
func (m *TCP) put(s *TCPModelState, g TCPSeg) {
	if len(s.Net) < m.K {
		s.netAdd(g)
	}
}

// Init is Tcp.tla's Init: one state per pair of ISNs.
func (m *TCP) Init() []*TCPModelState {
	var out []*TCPModelState
	for _, ia := range m.ISN {
		for _, ib := range m.ISN {
			s := &TCPModelState{}
			for p, isn := range [2]uint32{ia, ib} {
				e := TCB{St: tcpListen, ISS: isn, Una: isn, Nxt: isn}
				if m.active(p) {
					e.St, e.Nxt = tcpSynSent, m.mod(uint64(isn)+1)
				}
				s.Ep[p] = e
			}
			for p := 0; p < 2; p++ {
				if m.active(p) {
					s.netAdd(m.synSeg(p, &s.Ep[p]))
				}
			}
			out = append(out, s)
		}
	}
	return out
}

// Receive(p, g) (keep false) and ReceiveDup(p, g) (keep true).
func (m *TCP) Receive(s *TCPModelState, p int, g TCPSeg, keep bool) bool {
	if int(g.Src) == p || (keep && !m.Lossy) {
		return false
	}
	r := m.process(p, s.Ep[p], g)
	s.Ep[p] = r.e
	if !keep {
		s.netDel(g)
	}
	if r.hasOut {
		m.put(s, r.out)
	}
	if r.byte != 0 {
		s.Dlv[p] = append(s.Dlv[p], r.byte)
	}
	s.RstBad = s.RstBad || r.rb
	s.Aborted[p] = s.Aborted[p] || r.ab
	return true
}

// Lose(g).
func (m *TCP) Lose(s *TCPModelState, g TCPSeg) bool {
	if !m.Lossy {
		return false
	}
	s.netDel(g)
	return true
}

// SendData(p): the next byte, inside the send window.
func (m *TCP) SendData(s *TCPModelState, p int) bool {
	e := &s.Ep[p]
	if (e.St != tcpEstablished && e.St != tcpCloseWait) || m.sndOff(e) > uint64(m.n(p)) ||
		!m.seqLt(e.Nxt, m.mod(uint64(e.Una)+uint64(e.SWnd))) {
		return false
	}
	g := m.dataSeg(p, e, e.Nxt, uint8(m.sndOff(e)))
	e.Nxt = m.mod(uint64(e.Nxt) + 1)
	m.put(s, g)
	return true
}

// Persist(p): one new byte beyond a zero window.
func (m *TCP) Persist(s *TCPModelState, p int) bool {
	e := &s.Ep[p]
	if (e.St != tcpEstablished && e.St != tcpCloseWait) || m.sndOff(e) > uint64(m.n(p)) ||
		e.SWnd != 0 || e.Una != e.Nxt {
		return false
	}
	g := m.dataSeg(p, e, e.Nxt, uint8(m.sndOff(e)))
	e.Nxt = m.mod(uint64(e.Nxt) + 1)
	m.put(s, g)
	return true
}

// Close(p): the FIN, once every byte is sent.
func (m *TCP) Close(s *TCPModelState, p int) bool {
	e := &s.Ep[p]
	if (e.St != tcpEstablished && e.St != tcpCloseWait) || m.sndOff(e) != uint64(m.n(p))+1 {
		return false
	}
	if !m.seqLt(e.Nxt, m.mod(uint64(e.Una)+uint64(e.SWnd))) && !(e.SWnd == 0 && e.Una == e.Nxt) {
		return false
	}
	g := m.finSeg(p, e, e.Nxt)
	e.Nxt = m.mod(uint64(e.Nxt) + 1)
	if e.St == tcpEstablished {
		e.St = tcpFinWait1
	} else {
		e.St = tcpLastAck
	}
	m.put(s, g)
	return true
}

// retransmission is Retransmission(p, e).
func (m *TCP) retransmission(p int, e *TCB) TCPSeg {
	off := m.off(e.Una, e.ISS)
	switch {
	case off == 0:
		if e.St == tcpSynSent {
			return m.synSeg(p, e)
		}
		return m.synAckSeg(p, e)
	case off <= uint64(m.n(p)):
		b := off
		if m.Bug == BugRetransmitWrongRange {
			b = m.sndOff(e) - 1
			if b > uint64(m.n(p)) {
				b = uint64(m.n(p))
			}
		}
		return m.dataSeg(p, e, e.Una, uint8(b))
	}
	return m.finSeg(p, e, e.Una)
}

// Timeout(p): the retransmission timer.
func (m *TCP) Timeout(s *TCPModelState, p int) bool {
	e := &s.Ep[p]
	switch e.St {
	case tcpSynSent, tcpSynReceived, tcpEstablished, tcpFinWait1, tcpCloseWait, tcpClosing, tcpLastAck:
	default:
		return false
	}
	if e.Una == e.Nxt {
		return false
	}
	m.put(s, m.retransmission(p, e))
	return true
}

// Read(p): the application reads a byte.
func (m *TCP) Read(s *TCPModelState, p int) bool {
	if s.Ep[p].Buf == 0 {
		return false
	}
	s.Ep[p].Buf--
	return true
}

// TimeWaitExpire(p): the 2MSL timer (see Tcp.tla).
func (m *TCP) TimeWaitExpire(s *TCPModelState, p int) bool {
	q := s.Ep[1-p].St
	if s.Ep[p].St != tcpTimeWait || len(s.Net) != 0 || q == tcpClosing || q == tcpLastAck {
		return false
	}
	s.Ep[p].St = tcpClosed
	return true
}

// Inject(g): an off-path attacker's segment.
func (m *TCP) Inject(s *TCPModelState, g TCPSeg) bool {
	if int(s.Injected) >= m.MaxInject || len(s.Net) >= m.K {
		return false
	}
	s.netAdd(g)
	s.Injected++
	return true
}

var tcpActionNames = func() (n [2][8]string) {
	for p, c := range [2]string{"A", "B"} {
		for i, a := range [...]string{"SendData", "Persist", "Close", "Timeout", "Read", "TimeWaitExpire", "Receive", "ReceiveDup"} {
			n[p][i] = a + "_" + c
		}
	}
	return
}()

// receiveName names Receive(p, s) by p and s.seq: the fairness classes.
func (m *TCP) receiveName(p int, seq uint32) string {
	if m.M > 256 {
		return "Receive_" + "AB"[p:p+1]
	}
	if m.recvNames[p] == nil {
		for q := 0; q < 2; q++ {
			m.recvNames[q] = make([]string, m.M)
			for sq := range m.recvNames[q] {
				m.recvNames[q][sq] = fmt.Sprintf("Receive_%c_%d", "AB"[q], sq)
			}
		}
	}
	return m.recvNames[p][seq]
}

// Next enumerates Tcp.tla's Next, disjunct by disjunct.
func (m *TCP) Next(s *TCPModelState, yield func(string, *TCPModelState)) {
	for p := 0; p < 2; p++ {
		n := &tcpActionNames[p]
		try(s, func(t *TCPModelState) bool { return m.SendData(t, p) }, n[0], yield)
		try(s, func(t *TCPModelState) bool { return m.Persist(t, p) }, n[1], yield)
		try(s, func(t *TCPModelState) bool { return m.Close(t, p) }, n[2], yield)
		try(s, func(t *TCPModelState) bool { return m.Timeout(t, p) }, n[3], yield)
		try(s, func(t *TCPModelState) bool { return m.Read(t, p) }, n[4], yield)
		try(s, func(t *TCPModelState) bool { return m.TimeWaitExpire(t, p) }, n[5], yield)
		for _, g := range s.Net {
			try(s, func(t *TCPModelState) bool { return m.Receive(t, p, g, false) }, m.receiveName(p, g.Seq), yield)
			try(s, func(t *TCPModelState) bool { return m.Receive(t, p, g, true) }, n[7], yield)
		}
	}
	for _, g := range s.Net {
		try(s, func(t *TCPModelState) bool { return m.Lose(t, g) }, "Lose", yield)
	}
	if int(s.Injected) < m.MaxInject {
		for p := 0; p < 2; p++ {
			for sq := uint64(0); sq < m.M; sq++ {
				try(s, func(t *TCPModelState) bool { return m.Inject(t, rstSeg(p, uint32(sq))) }, "Inject", yield)
				for a := uint64(0); a < m.M; a++ {
					g := TCPSeg{Src: uint8(p), Seq: uint32(sq), Ack: uint32(a), ACK: true, Wnd: m.W}
					try(s, func(t *TCPModelState) bool { return m.Inject(t, g) }, "Inject", yield)
				}
			}
		}
	}
}

// AppendKey encodes s canonically.
func (m *TCP) AppendKey(b []byte, s *TCPModelState) []byte {
	for p := 0; p < 2; p++ {
		e := &s.Ep[p]
		b = append(b, e.St)
		for _, x := range [...]uint32{e.ISS, e.IRS, e.Una, e.Nxt, e.Rcv, e.SWnd, e.Buf} {
			b = appendU32(b, x)
		}
		b = append(b, byte(len(s.Dlv[p])))
		b = append(b, s.Dlv[p]...)
	}
	b = append(b, byte(len(s.Net)))
	for _, g := range s.Net {
		b = append(b, g.Src, g.flags(), g.Data)
		b = appendU32(b, g.Seq)
		b = appendU32(b, g.Ack)
		b = appendU32(b, g.Wnd)
	}
	var f byte
	for i, x := range [...]bool{s.RstBad, s.Aborted[0], s.Aborted[1]} {
		if x {
			f |= 1 << i
		}
	}
	return append(b, s.Injected, f)
}

// Invariants, with correct modular arithmetic whatever the variant.

// TypeOK is Tcp.tla's TypeOK.
func (m *TCP) TypeOK(s *TCPModelState) bool {
	for p := 0; p < 2; p++ {
		e := &s.Ep[p]
		if e.St >= trace.TCPStateCount || e.SWnd > m.W {
			return false
		}
		for _, x := range [...]uint32{e.ISS, e.IRS, e.Una, e.Nxt, e.Rcv} {
			if uint64(x) >= m.M {
				return false
			}
		}
	}
	return len(s.Net) <= m.K && int(s.Injected) <= m.MaxInject
}

// SndSeqOrder: SND.UNA =< SND.NXT =< ISS + N + 2.
func (m *TCP) SndSeqOrder(s *TCPModelState) bool {
	for p := 0; p < 2; p++ {
		e := &s.Ep[p]
		if m.off(e.Una, e.ISS) > m.sndOff(e) || m.sndOff(e) > uint64(m.n(p))+2 {
			return false
		}
	}
	return true
}

// RcvNotBeyondSent: RCV.NXT never passes what the peer has sent.
func (m *TCP) RcvNotBeyondSent(s *TCPModelState) bool {
	for p := 0; p < 2; p++ {
		e := &s.Ep[p]
		if synchronizedState(e.St) && !s.Aborted[1-p] && m.off(e.Rcv, e.IRS) > m.sndOff(&s.Ep[1-p]) {
			return false
		}
	}
	return true
}

// RcvBufferBounded: the receive buffer stays within the window.
func (m *TCP) RcvBufferBounded(s *TCPModelState) bool {
	return s.Ep[0].Buf <= m.W && s.Ep[1].Buf <= m.W
}

func (m *TCP) sentBytes(s *TCPModelState, p int) uint64 {
	e := &s.Ep[p]
	o := m.sndOff(e)
	if o <= 1 || e.St == tcpListen || e.St == tcpSynSent {
		return 0
	}
	return min(o-1, uint64(m.n(p)))
}

// DeliveredInOrder: byte i delivered is the peer's byte i.
func (m *TCP) DeliveredInOrder(s *TCPModelState) bool {
	for p := 0; p < 2; p++ {
		for i, b := range s.Dlv[p] {
			if int(b) != i+1 {
				return false
			}
		}
	}
	return true
}

// DeliveredWasSent: no byte delivered that the peer has not sent.
func (m *TCP) DeliveredWasSent(s *TCPModelState) bool {
	for p := 0; p < 2; p++ {
		if uint64(len(s.Dlv[p])) > m.sentBytes(s, 1-p) {
			return false
		}
	}
	return true
}

// statesPairUp is Tcp.tla's StatesPairUp for states a (of p) and b (peer).
func statesPairUp(a, b uint8) bool {
	if synchronizedState(a) && a != tcpSynReceived && (b == tcpListen || b == tcpSynSent) {
		return false
	}
	switch a {
	case tcpCloseWait, tcpClosing, tcpLastAck, tcpTimeWait:
		switch b {
		case tcpFinWait1, tcpFinWait2, tcpClosing, tcpLastAck, tcpTimeWait, tcpClosed:
		default:
			return false
		}
	}
	switch a {
	case tcpFinWait2, tcpTimeWait:
		switch b {
		case tcpCloseWait, tcpClosing, tcpLastAck, tcpTimeWait, tcpClosed:
		default:
			return false
		}
	}
	return true
}

// StatesPairUp: the two states are a legal pair (unless one was reset).
func (m *TCP) StatesPairUp(s *TCPModelState) bool {
	if s.Aborted[0] || s.Aborted[1] {
		return true
	}
	return statesPairUp(s.Ep[0].St, s.Ep[1].St) && statesPairUp(s.Ep[1].St, s.Ep[0].St)
}

// RstInWindow: no RST accepted outside the receive window.
func (m *TCP) RstInWindow(s *TCPModelState) bool { return !s.RstBad }

// GracefulClose: nobody was reset.
func (m *TCP) GracefulClose(s *TCPModelState) bool { return !s.Aborted[0] && !s.Aborted[1] }

// Done: both endpoints CLOSED with every byte delivered.
func (m *TCP) Done(s *TCPModelState) bool {
	for p := 0; p < 2; p++ {
		if s.Ep[p].St != tcpClosed || uint32(len(s.Dlv[p])) != m.n(1-p) {
			return false
		}
	}
	return true
}

// Spec returns the explorer's view of Tcp.tla for these constants: the
// invariants of the configs (StatesPairUp and GracefulClose only without
// an attacker) and, for a channel that does not lose, the liveness
// property Terminates under the spec's fairness.
func (m *TCP) Spec() Spec[*TCPModelState] {
	inv := []Invariant[*TCPModelState]{
		{"TypeOK", m.TypeOK}, {"SndSeqOrder", m.SndSeqOrder}, {"RcvNotBeyondSent", m.RcvNotBeyondSent},
		{"RcvBufferBounded", m.RcvBufferBounded}, {"DeliveredInOrder", m.DeliveredInOrder},
		{"DeliveredWasSent", m.DeliveredWasSent},
	}
	if m.MaxInject == 0 {
		inv = append(inv, Invariant[*TCPModelState]{"StatesPairUp", m.StatesPairUp})
	}
	inv = append(inv, Invariant[*TCPModelState]{"RstInWindow", m.RstInWindow})
	if m.MaxInject == 0 {
		inv = append(inv, Invariant[*TCPModelState]{"GracefulClose", m.GracefulClose})
	}
	sp := Spec[*TCPModelState]{
		Name:       "Tcp",
		Init:       m.Init,
		Next:       m.Next,
		AppendKey:  m.AppendKey,
		Invariants: inv,
	}
	if !m.Lossy {
		for p := 0; p < 2; p++ {
			n := &tcpActionNames[p]
			sp.Fair = append(sp.Fair, n[0], n[1], n[2], n[4], n[5])
			sp.Strong = append(sp.Strong, n[3])
			for sq := uint64(0); sq < m.M; sq++ {
				sp.Fair = append(sp.Fair, m.receiveName(p, uint32(sq)))
			}
		}
		sp.Liveness = []LeadsTo[*TCPModelState]{{
			Name: "Terminates", Count: 1,
			Pending: func(s *TCPModelState, _ int) bool { return !m.Done(s) },
		}}
	}
	return sp
}
