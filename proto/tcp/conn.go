package tcp

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verinic/verinic/proto/demux"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/socket"
	"github.com/verinic/verinic/proto/tcp/buffer"
	"github.com/verinic/verinic/proto/tcp/cc"
	"github.com/verinic/verinic/proto/tcp/rtt"
	"github.com/verinic/verinic/proto/tcp/sack"
	"github.com/verinic/verinic/proto/tcp/seqnum"
	"github.com/verinic/verinic/proto/timer"
	"github.com/verinic/verinic/trace"
)

// State is a connection state (RFC 9293 3.3.2), numbered as trace numbers
// them.
type State uint8

// Connection states.
const (
	Closed      = State(trace.TCPStateClosed)
	Listen      = State(trace.TCPStateListen)
	SynSent     = State(trace.TCPStateSynSent)
	SynReceived = State(trace.TCPStateSynReceived)
	Established = State(trace.TCPStateEstablished)
	FinWait1    = State(trace.TCPStateFinWait1)
	FinWait2    = State(trace.TCPStateFinWait2)
	CloseWait   = State(trace.TCPStateCloseWait)
	Closing     = State(trace.TCPStateClosing)
	LastAck     = State(trace.TCPStateLastAck)
	TimeWait    = State(trace.TCPStateTimeWait)
)

func (s State) String() string { return trace.TCPStateName(uint8(s)) }

// synchronized reports the states after the handshake (RFC 9293 3.5).
func (s State) synchronized() bool { return s >= Established }

// canSend reports whether the application's data may still be sent.
func (s State) canSend() bool { return s == Established || s == CloseWait }

// canReceive reports whether data from the peer is still accepted.
func (s State) canReceive() bool {
	return s == Established || s == FinWait1 || s == FinWait2
}

// Conn is a TCP connection endpoint.
type Conn struct {
	p    *Protocol
	id   uint32
	home *loopState
	key  demux.Key
	base socket.Base // deadlines, readiness, closed-by-application

	local, remote netip.AddrPort
	lip, rip      header.IPv4Addr

	rmu, wmu sync.Mutex // serialize Read calls, and Write calls

	mu     sync.Mutex
	state  State
	queued bool // on the home loop's ready list
	ln     *Listener
	// established is closed once the handshake completes or fails.
	established chan struct{}
	estDone     bool
	err         error // why the connection ended (reported to the application)
	inTable     bool
	gone        bool // released: timers stopped, buffers freed

	// Send sequence space (RFC 9293 3.3.1). sndBuf holds the bytes from
	// SND.UNA on: unacknowledged, then unsent.
	sndBuf             *buffer.Ring
	sndCap             int // the send buffer's bound (the ring grows to it)
	iss                seqnum.Value
	sndUna, sndNxt     seqnum.Value
	sndMax             seqnum.Value // highest sequence sent + 1 (SND.NXT can go back after a timeout)
	sndWnd             uint32       // peer's window, scaled
	maxSndWnd          uint32       // largest window the peer offered (RFC 5961 5.2 MAX.SND.WND)
	sndWl1, sndWl2     seqnum.Value
	finQueued, finSent bool // the application closed its side; the FIN went out
	mss                int  // send MSS: data bytes per segment, options excluded
	peerMSS            int
	nodelay            bool

	// Receive sequence space. rcvBuf holds unread in-order bytes, then
	// out-of-order bytes at their offset from RCV.NXT.
	rcvBuf      *buffer.Ring
	rcvCap      int // the receive buffer's size: what the window offers (the ring's storage grows to it)
	irs, rcvNxt seqnum.Value
	rcvAdv      seqnum.Value // right edge of the window last advertised
	ooo         *sack.Ranges
	finRcvd     bool
	rcvMSS      int // our advertised MSS

	// Options (RFC 7323, RFC 2018).
	wsOK, tsOK, sackOK bool
	sndShift, rcvShift uint8
	tsRecent           uint32
	tsRecentAge        time.Time
	tsOffset           uint32
	lastAckSent        seqnum.Value
	sackBlocks         [4]header.SACKBlock
	dsack              header.SACKBlock // D-SACK to report once (RFC 2883)
	haveDSACK          bool
	rcvRTT             time.Duration // round trip seen by the receiver (minimum)
	rcvRTTMark         time.Time     // when the window ending at rcvRTTSeq was offered
	rcvRTTSeq          seqnum.Value
	rcvTuneTime        time.Time // auto-tuning: start of the measurement
	rcvTuneBytes       int       // bytes the application read since rcvTuneTime

	// Congestion control and loss recovery.
	rtt            rtt.Estimator
	cc             cc.Controller
	rttSeq         seqnum.Value // segment being timed without timestamps (Karn)
	rttTime        time.Time
	rttTiming      bool
	dupAcks        int
	inRecovery     bool
	recoverPt      seqnum.Value // RFC 6582 "recover"
	highRxt        seqnum.Value // RFC 6675 HighRxt
	board          *sack.Scoreboard
	lastSend       time.Time
	lastAck        time.Time
	retries        int
	appLimited     bool
	limitedTx      int
	ackPending     int  // full segments received since the last ACK
	ackNow         bool // an ACK must go out at the next output
	windowUpdate   bool
	closeRequested bool // application Close: act on the loop
	abortRequested bool // Close with unread data: reset

	keepAlive        bool
	keepAliveChanged bool
	keepAliveProbe   int
	persistBackoff   int
	swsOverride      bool // send a short segment despite SWS avoidance (override timeout)

	appClosed    bool // Close was called: data arriving now is an error
	finAcked     bool
	finAt        seqnum.Value // our FIN's sequence number once the send buffer is gone
	finPending   bool         // the peer's FIN arrived out of order, at finRcvSeq
	finRcvSeq    seqnum.Value
	renoInflate  int  // NewReno's temporary cwnd inflation (RFC 6582 3.2)
	rxtUna       bool // retransmit the segment at SND.UNA at the next output
	recoverValid bool // recoverPt has been set
	rescue       sack.Rescue
	softErr      error       // last ICMP error (RFC 1122 4.2.3.9)
	pmtuChanged  atomic.Bool // an ICMP "fragmentation needed" arrived (any loop)

	rtoTimer, delackTimer, persistTimer, keepTimer, twTimer timer.Timer

	// Segment being built (BuildPayload reads these).
	out outSeg

	// Application byte offsets (traces).
	wrOff, rdOff uint64
}

func (*Conn) isEndpoint() {}

// newConnID numbers a connection: unique within the trace when recording
// (the recorder may serve several stacks), else within the protocol.
func (p *Protocol) newConnID() uint32 {
	if p.rec != nil {
		return p.rec.NewConnID()
	}
	return p.connIDs.Add(1)
}

// newConn makes an endpoint between local and remote homed on ls.
func (p *Protocol) newConn(ls *loopState, local, remote netip.AddrPort) (*Conn, error) {
	if int(p.conns.Add(1)) > p.cfg.MaxConnections {
		p.conns.Add(-1)
		p.c.inc(TCPAbortOnMemory)
		return nil, ErrTooMany
	}
	ctl, err := cc.New(p.cfg.Congestion)
	if err != nil {
		p.conns.Add(-1)
		return nil, err
	}
	c := &Conn{
		p: p, id: p.newConnID(), home: ls, local: local, remote: remote,
		lip: local.Addr().As4(), rip: remote.Addr().As4(),
		established: make(chan struct{}),
		// The rings' storage comes on demand (growRecv, growSendBuffer):
		// an idle connection holds none.
		sndBuf: buffer.NewRing(0), sndCap: p.cfg.SendBuffer,
		rcvBuf: buffer.NewRing(0), rcvCap: p.cfg.RecvBuffer,
		ooo:   sack.NewRanges(p.cfg.OutOfOrderRanges),
		board: sack.NewScoreboard(64),
		cc:    ctl,
	}
	c.rtt = rtt.New(rtt.Config{Min: p.cfg.MinRTO, Max: p.cfg.MaxRTO, Initial: p.cfg.InitialRTO})
	c.base.Init(p.st.Clock())
	c.rtoTimer.Init(c.onRetransmitTimer)
	c.delackTimer.Init(c.onDelayedAckTimer)
	c.persistTimer.Init(c.onPersistTimer)
	c.keepTimer.Init(c.onKeepaliveTimer)
	c.twTimer.Init(c.onTimeWaitTimer)
	c.key = demux.Key{Proto: Proto, LocalAddr: local.Addr(), LocalPort: local.Port(), RemoteAddr: remote.Addr(), RemotePort: remote.Port()}
	p.allMu.Lock()
	p.all[c] = struct{}{}
	p.allMu.Unlock()
	return c, nil
}

// setState moves the connection to s, recording it.
func (c *Conn) setState(s State) {
	if c.state == s {
		return
	}
	old := c.state
	wasEstab := old == Established || old == CloseWait
	isEstab := s == Established || s == CloseWait
	if wasEstab && !isEstab {
		c.p.estab.Add(-1)
	} else if isEstab && !wasEstab {
		c.p.estab.Add(1)
	}
	c.state = s
	c.p.rec.TCPStateChange(c.id, uint8(old), uint8(s))
}

// markEstablished wakes a Dial waiting for the handshake.
func (c *Conn) markEstablished() {
	if !c.estDone {
		c.estDone = true
		close(c.established)
	}
}

// destroy ends the connection at once (reset, timeout, abort, stack close):
// CLOSED, removed from the table, timers stopped, buffers freed, waiters
// woken with err. Called on the home loop, or after the loops stopped.
func (c *Conn) destroy(err error) {
	if c.gone {
		return
	}
	if c.err == nil {
		c.err = err
	}
	c.setState(Closed)
	c.release()
}

// release removes a CLOSED connection from the stack's tables and frees
// what it holds.
func (c *Conn) release() {
	if c.gone {
		return
	}
	c.gone = true
	t := c.home.lp.Timers()
	t.Stop(&c.rtoTimer)
	t.Stop(&c.delackTimer)
	t.Stop(&c.persistTimer)
	t.Stop(&c.keepTimer)
	t.Stop(&c.twTimer)
	if c.inTable {
		c.p.table.Remove(c.key, c)
		c.inTable = false
	}
	c.p.conns.Add(-1)
	c.freeBuffers()
	c.p.allMu.Lock()
	delete(c.p.all, c)
	c.p.allMu.Unlock()
	if c.ln != nil {
		c.ln.handshakeFailed(c)
		c.ln = nil
	}
	c.markEstablished()
	c.base.Readable.Notify()
	c.base.Writable.Notify()
}

// freeBuffers returns the buffers' memory (entering TIME_WAIT or CLOSED).
// Unread data stays readable: the receive ring is kept while it holds any.
func (c *Conn) freeBuffers() {
	if c.sndBuf != nil {
		c.p.release(c.sndBuf.Cap())
		c.sndBuf = nil
	}
	if c.rcvBuf != nil && c.rcvBuf.Len() == 0 {
		c.p.release(c.rcvBuf.Cap())
		c.rcvBuf = nil
	}
}

// onLoop runs on the home loop for what the application asked (c.mu held).
func (c *Conn) onLoop(now time.Time) {
	if c.gone {
		return
	}
	if c.abortRequested {
		c.abortRequested = false
		if c.state != Closed && c.state != Listen && c.state != TimeWait {
			c.p.rec.AppAbort(c.id, c.p.rec.Now())
			if c.state != SynSent {
				c.sendReset(now, c.sndNxt)
			}
			c.p.c.inc(TCPAbortOnClose)
			c.destroy(ErrAborted)
			return
		}
	}
	if c.closeRequested {
		c.closeRequested = false
		c.startClose(now)
		if c.gone {
			return
		}
	}
	c.output(now)
}

// startClose handles the application's close of its sending side (RFC 9293
// 3.10.4 CLOSE call).
func (c *Conn) startClose(now time.Time) {
	switch c.state {
	case SynSent:
		c.destroy(ErrAborted)
	case SynReceived, Established:
		c.finQueued = true
	case CloseWait:
		c.finQueued = true
	}
}

// Info describes a connection as `ss -ti` would.
type Info struct {
	Local, Remote    netip.AddrPort
	State            State
	RecvQ, SendQ     int // bytes unread; bytes unacknowledged or unsent (listener: accept queue, backlog)
	Cwnd, Ssthresh   int // bytes
	SRTT, RTTVar     time.Duration
	RTO              time.Duration
	MSS              int
	SndWnd, RcvWnd   int
	WScale           [2]int // send, receive shifts (-1: off)
	SACK, Timestamps bool
	Retrans          int
	Congestion       string
}

// Info returns a snapshot of the connection.
func (c *Conn) Info() Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	in := Info{Local: c.local, Remote: c.remote, State: c.state, Cwnd: c.cc.Cwnd(), Ssthresh: c.cc.Ssthresh(),
		SRTT: c.rtt.SRTT(), RTTVar: c.rtt.RTTVar(), RTO: c.rtt.RTO(), MSS: c.mss, SndWnd: int(c.sndWnd),
		SACK: c.sackOK, Timestamps: c.tsOK, Retrans: c.retries, Congestion: c.cc.Name(), WScale: [2]int{-1, -1}}
	if c.rcvBuf != nil {
		in.RecvQ = c.rcvBuf.Len()
		in.RcvWnd = c.rcvWindow()
	}
	if c.sndBuf != nil {
		in.SendQ = c.sndBuf.Len()
	}
	if c.wsOK {
		in.WScale = [2]int{int(c.sndShift), int(c.rcvShift)}
	}
	return in
}

// LocalAddr returns the local endpoint.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// RemoteAddr returns the remote endpoint.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.remote }

// Protocol returns the TCP layer the connection belongs to.
func (c *Conn) Protocol() *Protocol { return c.p }

// ID returns the connection's number in traces.
func (c *Conn) ID() uint32 { return c.id }

// State returns the connection's state.
func (c *Conn) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}
