package tcp

import (
	"fmt"

	"github.com/verinic/verinic/proto/tcp/seqnum"
)

// Snapshot is a connection's sequence variables and buffer fill, for tests
// and invariant checks (RFC 9293 3.3.1 names).
type Snapshot struct {
	State                  State
	Gone                   bool // released: CLOSED, out of the tables
	ISS, IRS               seqnum.Value
	SndUna, SndNxt, SndMax seqnum.Value
	RcvNxt, RcvAdv         seqnum.Value
	SndBuf, SndBufCap      int // bytes held for sending (-1: no buffer)
	RcvBuf, RcvBufCap      int // bytes unread (-1: no buffer)
	FinSent, FinRcvd       bool
}

// Snapshot returns the connection's sequence variables.
func (c *Conn) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Snapshot{State: c.state, Gone: c.gone, ISS: c.iss, IRS: c.irs, SndUna: c.sndUna, SndNxt: c.sndNxt, SndMax: c.sndMax,
		RcvNxt: c.rcvNxt, RcvAdv: c.rcvAdv, SndBuf: -1, SndBufCap: -1, RcvBuf: -1, RcvBufCap: -1, FinSent: c.finSent, FinRcvd: c.finRcvd}
	if c.sndBuf != nil {
		s.SndBuf, s.SndBufCap = c.sndBuf.Len(), c.sndBuf.Cap()
	}
	if c.rcvBuf != nil {
		s.RcvBuf, s.RcvBufCap = c.rcvBuf.Len(), c.rcvBuf.Cap()
	}
	return s
}

// CheckInvariants checks what must hold of a connection between segments,
// and returns the first violation:
//
//   - SND.UNA <= SND.NXT <= SND.MAX, and what is in flight (SND.MAX -
//     SND.UNA) is at most the send buffer's bytes plus SYN and FIN;
//   - the buffers hold no more than their capacity, the send buffer no more
//     than SendBuffer;
//   - out-of-order ranges lie after RCV.NXT and inside the receive buffer,
//     and their count stays within OutOfOrderRanges;
//   - the advertised window's right edge (RCV.ADV) never passes the
//     receive buffer's free space: every byte advertised fits.
func (c *Conn) CheckInvariants() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		if c.state != Closed {
			return fmt.Errorf("released connection in state %v", c.state)
		}
		return nil
	}
	if c.state == Closed || c.state == Listen {
		return nil
	}
	if !(c.sndUna.LessThanEq(c.sndNxt) && c.sndNxt.LessThanEq(c.sndMax)) {
		return fmt.Errorf("%v: SND.UNA %d, SND.NXT %d, SND.MAX %d out of order", c.state, c.sndUna, c.sndNxt, c.sndMax)
	}
	if c.sndBuf != nil {
		if c.sndBuf.Len() > c.sndBuf.Cap() || c.sndBuf.Cap() > c.sndCap {
			return fmt.Errorf("%v: send buffer %d/%d (bound %d)", c.state, c.sndBuf.Len(), c.sndBuf.Cap(), c.sndCap)
		}
		// SYN and FIN take one sequence number each; the rest is data.
		extra := 0
		if c.sndUna == c.iss {
			extra++
		}
		if c.finSent {
			extra++
		}
		if flight := int(c.sndMax - c.sndUna); flight > c.sndBuf.Len()+extra {
			return fmt.Errorf("%v: %d bytes in flight but %d buffered (SND.UNA %d, SND.MAX %d)", c.state, flight, c.sndBuf.Len(), c.sndUna, c.sndMax)
		}
	}
	if c.rcvBuf != nil {
		if c.rcvBuf.Len() > c.rcvBuf.Cap() || c.rcvBuf.Cap() > c.rcvCap {
			return fmt.Errorf("%v: receive buffer %d in %d bytes of storage, size %d", c.state, c.rcvBuf.Len(), c.rcvBuf.Cap(), c.rcvCap)
		}
		if c.ooo.Len() > c.p.cfg.OutOfOrderRanges {
			return fmt.Errorf("%v: %d out-of-order ranges, bound %d", c.state, c.ooo.Len(), c.p.cfg.OutOfOrderRanges)
		}
		right := c.rcvNxt.Add(seqnum.Size(c.rcvCap - c.rcvBuf.Len()))
		if c.state != SynSent && c.state.canReceive() && c.rcvAdv.GreaterThan(right) {
			return fmt.Errorf("%v: advertised edge RCV.ADV %d past the free buffer (RCV.NXT %d + %d free = %d)", c.state, c.rcvAdv, c.rcvNxt, c.rcvCap-c.rcvBuf.Len(), right)
		}
		for i := 0; i < c.ooo.Len(); i++ {
			s, e := c.ooo.Range(i)
			if !(c.rcvNxt.LessThan(s) && s.LessThan(e) && e.LessThanEq(right)) {
				return fmt.Errorf("%v: out-of-order range [%d, %d) outside (RCV.NXT %d, %d]", c.state, s, e, c.rcvNxt, right)
			}
		}
	}
	return nil
}

// CheckInvariants checks the protocol's accounting: the connection count
// matches the connections known, the established gauge their states, and
// the memory in use covers every live connection's buffers and stays
// within MemoryLimit.
func (p *Protocol) CheckInvariants() error {
	p.allMu.Lock()
	conns := make([]*Conn, 0, len(p.all))
	for c := range p.all {
		conns = append(conns, c)
	}
	p.allMu.Unlock()
	if n := p.conns.Load(); n != int64(len(conns)) {
		return fmt.Errorf("connection count %d, but %d connections exist", n, len(conns))
	}
	var bufs, estab int64
	for _, c := range conns {
		c.mu.Lock()
		if c.sndBuf != nil {
			bufs += int64(c.sndBuf.Cap())
		}
		if c.rcvBuf != nil {
			bufs += int64(c.rcvBuf.Cap())
		}
		if c.state == Established || c.state == CloseWait {
			estab++
		}
		c.mu.Unlock()
	}
	if m := p.memory.Load(); m < bufs || m > p.cfg.MemoryLimit {
		return fmt.Errorf("memory in use %d, live buffers %d, limit %d", m, bufs, p.cfg.MemoryLimit)
	}
	if e := p.estab.Load(); e != estab {
		return fmt.Errorf("established gauge %d, but %d connections are ESTABLISHED or CLOSE-WAIT", e, estab)
	}
	return nil
}
