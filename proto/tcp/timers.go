package tcp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"github.com/verinic/verinic/proto/demux"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/stack"
	"github.com/verinic/verinic/proto/tcp/seqnum"
	"github.com/verinic/verinic/trace"
)

// Timer callbacks run on the home loop (its timer queue), each under c.mu.

// onRetransmitTimer is RFC 6298 5.4-5.7 with RFC 9293 3.8.3's limits: back
// off, go back to SND.UNA, collapse cwnd (RFC 5681 3.1), and give up after
// MaxRetries (SynRetries for a SYN) with ETIMEDOUT.
func (c *Conn) onRetransmitTimer(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone || c.sndUna == c.sndMax && c.state != SynSent && c.state != SynReceived {
		return
	}
	c.retries++
	c.p.rec.TCPTimerFired(c.id, trace.TimerRetransmit, uint32(c.retries))
	c.p.c.inc(TCPTimeouts)
	limit := c.p.cfg.MaxRetries
	if c.state == SynSent || c.state == SynReceived {
		limit = c.p.cfg.SynRetries
	}
	if c.retries > limit {
		c.p.c.inc(TCPAbortOnTimeout)
		if c.state == SynSent || c.state == SynReceived {
			c.p.c.inc(AttemptFails)
		}
		err := ErrTimedOut
		if c.softErr != nil {
			err = c.softErr // RFC 1122 4.2.3.9: report the ICMP error seen
		}
		c.destroy(err)
		return
	}
	c.rtt.Backoff()
	c.rttTiming = false // Karn (RFC 6298 3)
	switch c.state {
	case SynSent, SynReceived:
		c.sndNxt = c.iss
		c.output(now)
		return
	}
	// A repeated timeout of the same data does not lower ssthresh again
	// (RFC 5681 3.1): the controller sees no ACK between the two calls.
	c.cc.OnRTO(int(c.sndMax-c.sndUna), now)
	c.inRecovery = false
	c.renoInflate = 0
	c.dupAcks = 0
	c.limitedTx = 0
	c.recoverPt = c.sndMax // RFC 6582 4: no fast recovery for data sent before the timeout
	c.recoverValid = true
	c.board.Reset()
	c.sndNxt = c.sndUna
	c.highRxt = c.sndUna
	if c.finSent && c.sndBuf != nil && c.sndUna == c.finSeq() {
		// Only the FIN is outstanding.
		c.send(now, c.sndUna, 0, flagFIN|flagACK)
		c.sndNxt = c.sndUna.Add(1)
		c.home.lp.Timers().Schedule(&c.rtoTimer, now.Add(c.rtt.RTO()))
		return
	}
	c.output(now)
	if !c.rtoTimer.Pending() && c.sndUna != c.sndMax {
		c.home.lp.Timers().Schedule(&c.rtoTimer, now.Add(c.rtt.RTO()))
	}
}

// onDelayedAckTimer sends the ACK that was held back.
func (c *Conn) onDelayedAckTimer(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone || c.ackPending == 0 && !c.ackNow {
		return
	}
	c.p.rec.TCPTimerFired(c.id, trace.TimerDelayedAck, 0)
	c.p.c.inc(TCPDelayedACKs)
	c.ackNow = true
	c.output(now)
}

// armPersist starts the persist timer for a zero window (RFC 9293 3.8.6.1).
func (c *Conn) armPersist(now time.Time) {
	if c.persistTimer.Pending() || c.rtoTimer.Pending() {
		return
	}
	d := c.rtt.RTO() << min(c.persistBackoff, 10)
	d = min(max(d, c.p.cfg.MinRTO), 60*time.Second)
	c.home.lp.Timers().Schedule(&c.persistTimer, now.Add(d))
}

// onPersistTimer sends a zero-window probe: one byte of new data beyond
// the window (RFC 9293 3.8.6.1; RFC 1122 4.2.2.17), with exponential
// backoff. The peer acknowledges it if its window opened, or answers with
// its current window.
func (c *Conn) onPersistTimer(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone || c.sndBuf == nil || !(c.state.canSend() || c.state == FinWait1 || c.state == LastAck) {
		return
	}
	c.p.rec.TCPTimerFired(c.id, trace.TimerPersist, uint32(c.persistBackoff))
	unsent := c.sndBuf.Len() - int(c.sndNxt-c.sndUna)
	if unsent <= 0 {
		return
	}
	if c.sndWnd > 0 {
		// A small window that SWS avoidance would not fill: send what
		// it allows (the override timeout, RFC 9293 3.8.6.2.1).
		c.swsOverride = true
		c.output(now)
		c.swsOverride = false
		return
	}
	c.p.c.inc(TCPWinProbe)
	c.send(now, c.sndNxt, 1, flagACK)
	if c.sndMax == c.sndNxt {
		c.sndMax = c.sndNxt.Add(1) // the probe byte is outstanding
	}
	c.persistBackoff++
	if c.persistBackoff > c.p.cfg.MaxRetries*2 {
		c.destroy(ErrTimedOut)
		return
	}
	c.armPersist(now)
}

// armKeepalive (re)starts the keepalive timer when keepalive is on.
func (c *Conn) armKeepalive(now time.Time) {
	t := c.home.lp.Timers()
	if !c.keepAlive || !c.state.synchronized() || c.state == TimeWait {
		t.Stop(&c.keepTimer)
		return
	}
	t.Schedule(&c.keepTimer, now.Add(c.p.cfg.KeepAliveIdle))
}

// onKeepaliveTimer sends a keepalive probe (RFC 1122 4.2.3.6: sequence
// number SND.NXT-1, no data) when the connection was idle long enough, and
// gives up after KeepAliveCount unanswered probes.
func (c *Conn) onKeepaliveTimer(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone || !c.keepAlive {
		return
	}
	idle := now.Sub(c.lastAck)
	if c.keepAliveProbe == 0 && idle < c.p.cfg.KeepAliveIdle {
		c.home.lp.Timers().Schedule(&c.keepTimer, c.lastAck.Add(c.p.cfg.KeepAliveIdle))
		return
	}
	if c.keepAliveProbe >= c.p.cfg.KeepAliveCount {
		c.destroy(ErrTimedOut)
		return
	}
	c.p.rec.TCPTimerFired(c.id, trace.TimerKeepalive, uint32(c.keepAliveProbe))
	c.keepAliveProbe++
	c.p.c.inc(TCPKeepAlive)
	c.send(now, c.sndNxt.Sub(1), 0, flagACK)
	c.home.lp.Timers().Schedule(&c.keepTimer, now.Add(c.p.cfg.KeepAliveInterval))
}

// onTimeWaitTimer ends TIME-WAIT (or an orphaned FIN-WAIT-2).
func (c *Conn) onTimeWaitTimer(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return
	}
	c.p.rec.TCPTimerFired(c.id, trace.TimerTimeWait, 0)
	c.destroy(nil)
}

// icmpError handles an ICMP error about a segment we sent (RFC 1122
// 4.2.3.9, RFC 1191, RFC 5927 5.1: only for a sequence number in flight).
// It may run on any loop: it changes no protocol state itself, it flags the
// connection for its home loop.
func (p *Protocol) icmpError(lp *stack.Loop, typ, code uint8, rest uint32, quoted header.IPv4) bool {
	hl := quoted.HeaderLen()
	if len(quoted) < hl+8 {
		return false
	}
	l4 := quoted[hl:]
	local := netip.AddrPortFrom(netip.AddrFrom4(quoted.Src()), binary.BigEndian.Uint16(l4[0:2]))
	remote := netip.AddrPortFrom(netip.AddrFrom4(quoted.Dst()), binary.BigEndian.Uint16(l4[2:4]))
	seq := seqnum.Value(binary.BigEndian.Uint32(l4[4:8]))
	e, ok := p.table.Get(demux.Key{Proto: Proto, LocalAddr: local.Addr(), LocalPort: local.Port(), RemoteAddr: remote.Addr(), RemotePort: remote.Port()})
	if !ok {
		return false
	}
	c, ok := e.(*Conn)
	if !ok {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone || !seq.InRange(c.sndUna, c.sndMax.Add(1)) {
		return false // not a segment in flight: ignore (RFC 5927 5.1)
	}
	p.c.inc(TCPICMPErrors)
	if typ != header.ICMPv4DestinationUnreachable {
		return true
	}
	if code == header.ICMPv4FragmentationNeeded {
		// RFC 1191 6.4: the stack's path MTU cache has the new value;
		// the home loop lowers the MSS and retransmits.
		p.c.inc(TCPPMTUUpdates)
		c.pmtuChanged.Store(true)
		c.rxtUna = true
		c.schedule()
		return true
	}
	err := icmpUnreachError(code)
	if c.state == SynSent {
		// A hard error while connecting aborts the attempt, as Linux.
		c.err = err
		c.abortRequested = true
		c.schedule()
		return true
	}
	c.softErr = err // RFC 1122 4.2.3.9: soft; reported if the connection times out
	return true
}

// icmpUnreachError maps a destination-unreachable code to the errno Linux
// reports.
func icmpUnreachError(code uint8) error {
	switch code {
	case header.ICMPv4PortUnreachable, header.ICMPv4ProtocolUnreachable:
		return ErrConnRefused
	case header.ICMPv4NetUnreachable:
		return fmt.Errorf("network is unreachable: %w", syscall.ENETUNREACH)
	}
	return fmt.Errorf("no route to host: %w", syscall.EHOSTUNREACH)
}
