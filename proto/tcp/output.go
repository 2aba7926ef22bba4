package tcp

import (
	"time"

	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/tcp/seqnum"
)

// outSeg is the segment being built: output fills it, then the stack calls
// BuildPayload with the frame's buffer.
type outSeg struct {
	f       header.TCPFields
	opts    [40]byte
	payload int // bytes of data, taken from the send buffer at dataOff
	dataOff int
	src     *Conn // nil for stateless segments (RST, cookie SYN-ACK)
}

// BuildPayload implements stack.PayloadBuilder: data first (copied from
// the send ring straight into the frame), then the header and checksum.
func (o *outSeg) BuildPayload(b []byte, src, dst header.IPv4Addr) {
	hl := o.f.HeaderLen()
	if o.payload > 0 {
		o.src.sndBuf.Peek(o.dataOff, b[hl:hl+o.payload])
	}
	header.EncodeTCP(b, o.f, o.payload, src, dst)
}

// BuildPayloadNoChecksum implements stack.NoChecksumBuilder: BuildPayload
// leaving the checksum to the device.
func (o *outSeg) BuildPayloadNoChecksum(b []byte) {
	hl := o.f.HeaderLen()
	if o.payload > 0 {
		o.src.sndBuf.Peek(o.dataOff, b[hl:hl+o.payload])
	}
	header.EncodeTCPNoChecksum(b, o.f, o.payload)
}

// BuildPayloadNoChecksum lets a Conn build its own segments for a device
// that inserts the checksum.
func (c *Conn) BuildPayloadNoChecksum(b []byte) { c.out.BuildPayloadNoChecksum(b) }

// BuildPayload lets a Conn build its own segments (its out field).
func (c *Conn) BuildPayload(b []byte, src, dst header.IPv4Addr) { c.out.BuildPayload(b, src, dst) }

// rcvWindow is the free receive space from RCV.NXT (out-of-order data
// already lies inside it).
func (c *Conn) rcvWindow() int {
	if c.rcvBuf == nil {
		return 0
	}
	return c.rcvCap - c.rcvBuf.Len()
}

// advertised is what is left of the window last advertised: RCV.ADV -
// RCV.NXT, 0 once data beyond the edge (which fitted the buffer) was taken.
func (c *Conn) advertised() int { return max(int(int32(c.rcvAdv-c.rcvNxt)), 0) }

// windowField computes the window to advertise and moves RCV.ADV (the
// right edge) forward. The edge never moves back by a whole scaling unit
// (RFC 9293 3.8.6: shrinking is strongly discouraged); the scaled field is
// rounded down, so it may fall back by less than one unit (RFC 7323 2.4),
// and the edge never passes the buffer's free space: every byte advertised
// fits. A SYN's window is never scaled (RFC 7323 2.2).
func (c *Conn) windowField(syn bool) uint16 {
	w := c.rcvWindow()
	if syn {
		w = min(w, 0xffff)
		c.rcvAdv = c.rcvNxt.Add(seqnum.Size(w))
		return uint16(w)
	}
	if adv := c.advertised(); w > adv && w-adv < min((w+c.rcvBuf.Len())/2, max(c.rcvMSS, 536)) {
		// Receiver SWS avoidance (RFC 9293 3.8.6.2.2): the right edge
		// stays until it can move by min(RCV.BUFF/2, MSS), whatever
		// segment carries the window (the same rule as afterRead's
		// window update).
		w = adv
	}
	field := max(w, c.advertised()) >> c.rcvShift
	if mutated(MutAdvertiseBeyondBuffer) {
		field = (max(w, c.advertised()) + 1<<c.rcvShift - 1) >> c.rcvShift
	}
	field = min(field, 0xffff)
	if right := c.rcvNxt.Add(seqnum.Size(field << c.rcvShift)); right.GreaterThan(c.rcvAdv) {
		c.rcvAdv = right
	}
	return uint16(field)
}

// putOptions writes the options of a segment into c.out and returns their
// length; room is the option space the path MTU leaves next to the data. A SYN offers MSS, SACK-permitted, timestamps and window scale
// (RFC 9293 3.7.1, RFC 2018, RFC 7323); other segments carry timestamps and
// SACK blocks (RFC 2018 4: first the block of the latest segment; a D-SACK
// block first when there is one, RFC 2883).
func (c *Conn) putOptions(now time.Time, syn bool, room int) int {
	b := c.out.opts[:]
	n := 0
	if syn {
		n += header.PutTCPOptionMSS(b[n:], uint16(c.rcvMSS))
		if c.sackOK {
			n += header.PutTCPOptionSACKPermitted(b[n:])
		} else if c.tsOK {
			n += header.PutTCPOptionNOP(b[n:])
			n += header.PutTCPOptionNOP(b[n:])
		}
		if c.tsOK {
			n += header.PutTCPOptionTimestamps(b[n:], c.p.tsNow(now)+c.tsOffset, c.tsRecentEcho())
		}
		if c.wsOK {
			n += header.PutTCPOptionNOP(b[n:])
			n += header.PutTCPOptionWindowScale(b[n:], c.rcvShift)
		}
		return n
	}
	if c.tsOK {
		n += header.PutTCPOptionNOP(b[n:])
		n += header.PutTCPOptionNOP(b[n:])
		n += header.PutTCPOptionTimestamps(b[n:], c.p.tsNow(now)+c.tsOffset, c.tsRecent)
	}
	if c.sackOK && (c.ooo.Len() > 0 || c.haveDSACK) {
		// As many blocks as fit in 40 bytes of options and, on a data
		// segment, in the path MTU next to the data: a full-sized
		// segment carries none (RFC 2018 3; RFC 6691).
		max := min((len(b)-n-4)/8, (room-n-4)/8)
		if max <= 0 {
			return n
		}
		blocks := c.sackBlocks[:0]
		if c.haveDSACK {
			blocks = append(blocks, c.dsack)
			c.haveDSACK = false
		}
		// The D-SACK block counts against the limit: with timestamps, four
		// blocks would need 48 bytes of options, more than 40 (RFC 2018 3).
		blocks = c.ooo.Blocks(blocks, max-len(blocks))
		if len(blocks) > 0 {
			n += header.PutTCPOptionNOP(b[n:])
			n += header.PutTCPOptionNOP(b[n:])
			n += header.PutTCPOptionSACK(b[n:], blocks)
		}
	}
	return n
}

// tsRecentEcho is the TSecr of a SYN: 0 on an active open, the peer's
// TSval on a SYN-ACK (RFC 7323 3.2).
func (c *Conn) tsRecentEcho() uint32 {
	if c.state == SynSent {
		return 0
	}
	return c.tsRecent
}

// send builds and transmits one segment: flags, sequence number seq, n data
// bytes from the send buffer (at seq's offset). c.mu is held, on the home
// loop.
func (c *Conn) send(now time.Time, seq seqnum.Value, n int, flags header.TCPFlags) bool {
	return c.sendSeg(now, seq, n, flags, false)
}

// sendSeg is send; with tso, the segment is a burst of whole c.mss-sized
// segments that the device cuts (the stack's OutputTSO, after TSOMax): its
// header is that of a full-sized segment, which the device copies into
// every one, so the wire carries what one-MSS sends would have carried.
func (c *Conn) sendSeg(now time.Time, seq seqnum.Value, n int, flags header.TCPFlags, tso bool) bool {
	syn := flags.Has(flagSYN)
	o := &c.out
	o.src = c
	o.f = header.TCPFields{SrcPort: c.local.Port(), DstPort: c.remote.Port(), Seq: uint32(seq), Flags: flags}
	if flags.Has(flagACK) {
		o.f.Ack = uint32(c.rcvNxt)
		c.lastAckSent = c.rcvNxt
		if e, ok := c.ooo.Highest(); ok && mutated(MutAckUnreceived) {
			o.f.Ack = uint32(e)
		}
	}
	o.f.Window = c.windowField(syn)
	room := 40
	if n > 0 {
		// The option space next to the data of one segment (of each
		// device segment of a TSO burst: none is short but the last).
		room = c.mss - min(n, c.mss)
		if c.tsOK {
			room += 12
		}
	}
	o.f.Options = o.opts[:c.putOptions(now, syn, room)]
	o.payload = n
	if n > 0 {
		o.dataOff = int(seq - c.sndUna)
		if off := int(c.sndNxt-c.sndUna) - n; mutated(MutRetransmitWrongRange) && seq.LessThan(c.sndNxt) && off >= 0 && off+n <= c.sndBuf.Len() {
			o.dataOff = off
		}
	}
	segs := 1
	if tso {
		segs = (n + c.mss - 1) / c.mss
	}
	if c.p.rec != nil {
		var opt header.TCPOptions
		c.recordSent(o, &opt, tso)
	}
	var ok bool
	if tso {
		ok = c.home.lp.OutputTSO(c.lip, c.rip, 0, header.DefaultTTL, o.f.HeaderLen()+n, c.mss, c)
	} else {
		ok = c.home.lp.OutputBuilt(c.lip, c.rip, Proto, 0, header.DefaultTTL, true, o.f.HeaderLen()+n, c)
	}
	if !ok {
		return false
	}
	if flags.Has(flagACK) {
		c.ackNow, c.ackPending, c.windowUpdate = false, 0, false
		c.home.lp.Timers().Stop(&c.delackTimer)
	}
	c.lastSend = now
	if seq.LessThan(c.sndMax) && (n > 0 || syn || flags.Has(flagFIN)) {
		c.p.c.add(RetransSegs, uint64(segs))
	} else {
		c.p.c.add(OutSegs, uint64(segs))
	}
	if tso {
		c.p.c.inc(TSOBursts)
	}
	return true
}

// recordSent records the segment in c.out in the trace; a TSO burst is one
// event with its full length, marked trace.SegOptTSO with the segment size
// (trace/SCHEMA.md).
func (c *Conn) recordSent(o *outSeg, opt *header.TCPOptions, tso bool) {
	*opt = header.TCPOptions{}
	var hdr [60]byte
	hl := o.f.HeaderLen()
	hdr[12] = uint8(hl/4) << 4
	copy(hdr[20:hl], o.f.Options)
	_ = header.ParseTCPOptions(header.TCP(hdr[:hl]), opt)
	w := uint32(o.f.Window)
	if !o.f.Flags.Has(flagSYN) {
		w <<= c.rcvShift
	}
	tsoMSS := 0
	if tso {
		tsoMSS = c.mss
	}
	c.recordSeg(true, &o.f, o.payload, opt, w, tsoMSS)
}

// sendAck sends an ACK-only segment (with SYN in SYN-RECEIVED).
func (c *Conn) sendAck(now time.Time) {
	if c.state == SynReceived {
		c.send(now, c.iss, 0, flagSYN|flagACK)
		return
	}
	c.send(now, c.sndNxt, 0, flagACK)
}

// output sends what the state, the windows and the congestion window allow
// (RFC 9293 3.10.2, 3.8.6; RFC 5681; RFC 6675 5; RFC 6582). c.mu is held,
// on the home loop.
func (c *Conn) output(now time.Time) {
	if c.gone {
		return
	}
	switch c.state {
	case Closed, Listen:
		return
	case SynSent:
		if c.sndNxt == c.iss {
			c.sendSyn(now, flagSYN)
		}
		return
	case SynReceived:
		if c.sndNxt == c.iss || c.ackNow {
			c.sendSyn(now, flagSYN|flagACK)
			c.ackNow = false
		}
		return
	case TimeWait:
		if c.ackNow {
			c.send(now, c.sndNxt, 0, flagACK)
		}
		return
	}
	// Follow the stack's path MTU towards the peer (as Linux's
	// tcp_current_mss): an ICMP about this connection flags it, but the
	// cache is per destination, and a segment larger than it is refused
	// by the stack (DF), so a connection that missed the change (another
	// connection's ICMP, or one TCP ignored, RFC 5927 5.1) stalled.
	pmtu := c.home.lp.PathMTU(c.rip)
	full := c.mss + header.IPv4MinHeaderLen + header.TCPMinHeaderLen
	if c.tsOK {
		full += 12
	}
	if c.pmtuChanged.Swap(false) || full > pmtu {
		c.updateMSS(pmtu)
	}
	sent := false
	if c.keepAliveChanged {
		c.keepAliveChanged = false
		c.armKeepalive(now)
	}
	if !c.lastSend.IsZero() && c.sndUna == c.sndMax && now.Sub(c.lastSend) > c.rtt.RTO() && c.state.canSend() {
		c.cc.OnIdle(now) // RFC 5681 4.1 restart window
		c.lastSend = now
	}

	// Fast retransmit / NewReno partial-ACK retransmission of SND.UNA.
	if c.rxtUna && c.sndBuf != nil {
		c.rxtUna = false
		n := min(c.mss, c.sndBuf.Len())
		if n > 0 && c.send(now, c.sndUna, n, flagACK) {
			sent = true
			c.highRxt = seqnum.Max(c.highRxt, c.sndUna.Add(seqnum.Size(n)))
			c.armRTO(now)
		} else if n == 0 && c.finSent {
			c.send(now, c.sndUna, 0, flagFIN|flagACK)
			sent = true
		}
	}

	// RFC 6675 5 step (C): while pipe allows, send what NextSeg picks: a
	// lost segment (rule 1), new data (rule 2), else an unSACKed segment
	// (rule 3) or the rescue retransmission (rule 4).
	if c.inRecovery && c.sackOK && c.sndBuf != nil {
		for i := 0; i < 256; i++ {
			pipe := c.board.Pipe(c.sndUna, c.sndMax, c.highRxt, c.mss, dupThresh)
			if mutated(MutSACKDoubleCount) {
				pipe += int(c.board.SackedBytes())
			}
			if c.cc.Cwnd()-pipe < c.mss {
				break
			}
			start, length, rule, ok := c.board.NextSeg(c.sndUna, c.sndMax, c.highRxt, c.mss, dupThresh)
			if ok && rule == 2 {
				if c.sendOneNew(now) {
					sent = true
					continue
				}
				start, length, rule, ok = c.board.NextSegNoNewData(c.sndUna, c.sndMax, c.highRxt, c.mss, dupThresh, &c.rescue)
			}
			if !ok {
				break
			}
			length = min(length, c.mss, int(c.finSeq()-start))
			if length <= 0 || !c.send(now, start, length, flagACK) {
				break
			}
			sent = true
			if rule != 4 {
				c.highRxt = seqnum.Max(c.highRxt, start.Add(seqnum.Size(length)))
			}
			c.armRTO(now)
		}
	}

	// New data (and retransmission after a timeout: SND.NXT went back).
	if c.sndBuf != nil && !(c.inRecovery && c.sackOK) && (c.state.canSend() || c.state == FinWait1 || c.state == Closing || c.state == LastAck) {
		sent = c.sendData(now) || sent
	}

	// FIN once every byte is out (RFC 9293 3.10.4).
	if c.finQueued && !c.finAcked && c.sndBuf != nil && c.sndNxt == c.finSeq() {
		if c.send(now, c.sndNxt, 0, flagFIN|flagACK) {
			sent = true
			if !c.finSent {
				c.finSent = true
				switch c.state {
				case Established, SynReceived:
					c.setState(FinWait1)
				case CloseWait:
					c.setState(LastAck)
				}
			}
			c.sndNxt = c.sndNxt.Add(1)
			c.sndMax = seqnum.Max(c.sndMax, c.sndNxt)
			c.armRTO(now)
		}
	}

	if !sent && (c.ackNow || c.windowUpdate) {
		if c.windowUpdate && !c.ackNow {
			c.p.c.inc(TCPWinUpdates)
		}
		c.send(now, c.sndNxt, 0, flagACK)
	}
}

// sendData sends new data while the receive window, the congestion window
// (pipe during SACK recovery), Nagle and sender SWS avoidance allow.
func (c *Conn) sendData(now time.Time) bool {
	sent := false
	for i := 0; i < 256; i++ {
		inFlight := int(c.sndNxt - c.sndUna)
		unsent := c.sndBuf.Len() - inFlight
		if unsent <= 0 {
			c.appLimited = true
			break
		}
		// Receive window (RFC 9293 3.8.6.2.1).
		rwnd := 0
		if d := c.sndUna.Add(seqnum.Size(c.sndWnd)); d.GreaterThan(c.sndNxt) {
			rwnd = int(d - c.sndNxt)
		}
		// Congestion window.
		cwnd := c.cc.Cwnd()
		var room int
		switch {
		case c.inRecovery && c.sackOK:
			room = cwnd - c.board.Pipe(c.sndUna, c.sndMax, c.highRxt, c.mss, dupThresh)
		case c.inRecovery:
			room = cwnd + c.renoInflate - int(c.sndMax-c.sndUna)
		default:
			room = cwnd - inFlight + c.limitedTx*c.mss
		}
		n := min(unsent, c.mss, rwnd, max(room, 0))
		// TSO: the whole segments that one-MSS sends would put out one
		// after the other (each full-sized, so Nagle and SWS avoidance
		// pass them) go out as one burst that the device cuts; a short
		// tail is left to the next iteration, as it would be.
		tso := false
		if full := min(unsent, rwnd, room) / c.mss; full >= 2 && n == c.mss {
			if lim := c.home.lp.TSOMax(c.rip); lim > 0 {
				hl := header.TCPMinHeaderLen
				if c.tsOK {
					hl += 12
				}
				if full = min(full, (lim-hl)/c.mss); full >= 2 {
					n, tso = full*c.mss, true
				}
			}
		}
		if n <= 0 {
			if rwnd <= 0 && inFlight == 0 {
				c.armPersist(now)
			}
			// cwnd grows only while it is what limits the sender (RFC
			// 7661 4.3, RFC 5681 4.1's spirit): not when the peer's window
			// stopped us.
			c.appLimited = room > 0 || rwnd < c.mss
			break
		}
		// Nagle (RFC 9293 3.7.4) and sender SWS avoidance (3.8.6.2.1):
		// a short segment goes out only when it is all there is and
		// nothing is in flight (or Nagle is off), or it is at least half
		// the largest window the peer offered.
		if n < c.mss && !(n == unsent && (c.nodelay || inFlight == 0 && !mutated(MutNagleAlways) || c.finQueued)) && n < int(c.maxSndWnd)/2 && !c.swsOverride {
			if inFlight == 0 {
				// Nothing in flight will bring an ACK: the persist
				// timer doubles as SWS avoidance's override timer (RFC
				// 9293 3.8.6.2.1), in case the window update was lost.
				c.armPersist(now)
			}
			break
		}
		c.swsOverride = false
		retransmit := c.sndNxt.LessThan(c.sndMax)
		flags := flagACK
		if n == unsent {
			flags |= flagPSH
		}
		if !c.sendSeg(now, c.sndNxt, n, flags, tso) {
			break
		}
		sent = true
		if !retransmit && !c.rttTiming && !c.tsOK {
			c.rttTiming, c.rttSeq, c.rttTime = true, c.sndNxt, now
		}
		if room < n+c.mss && c.limitedTx > 0 && room-c.limitedTx*c.mss < n {
			c.p.c.inc(TCPLimitedTransmit)
		}
		c.sndNxt = c.sndNxt.Add(seqnum.Size(n))
		c.sndMax = seqnum.Max(c.sndMax, c.sndNxt)
		c.appLimited = false
		c.armRTO(now)
	}
	return sent
}

// sendOneNew sends one segment of new data at SND.NXT if the receive
// window allows (RFC 6675 NextSeg rule 2, congestion checked by the caller).
func (c *Conn) sendOneNew(now time.Time) bool {
	unsent := c.sndBuf.Len() - int(c.sndNxt-c.sndUna)
	rwnd := 0
	if d := c.sndUna.Add(seqnum.Size(c.sndWnd)); d.GreaterThan(c.sndNxt) {
		rwnd = int(d - c.sndNxt)
	}
	n := min(unsent, c.mss, rwnd)
	if n <= 0 || !c.send(now, c.sndNxt, n, flagACK) {
		return false
	}
	c.sndNxt = c.sndNxt.Add(seqnum.Size(n))
	c.sndMax = seqnum.Max(c.sndMax, c.sndNxt)
	c.armRTO(now)
	return true
}

// sendSyn sends (or resends) our SYN or SYN-ACK.
func (c *Conn) sendSyn(now time.Time, flags header.TCPFlags) {
	if c.send(now, c.iss, 0, flags) {
		if c.sndNxt == c.iss && !c.rttTiming && c.retries == 0 {
			c.rttTiming, c.rttSeq, c.rttTime = true, c.iss, now
		}
		c.sndNxt = c.iss.Add(1)
		c.sndMax = seqnum.Max(c.sndMax, c.sndNxt)
	}
	c.armRTO(now)
}

// armRTO starts the retransmission timer if it is not running (RFC 6298
// 5.1).
func (c *Conn) armRTO(now time.Time) {
	if !c.rtoTimer.Pending() {
		c.home.lp.Timers().Schedule(&c.rtoTimer, now.Add(c.rtt.RTO()))
	}
}

// sendReset sends a RST with sequence number seq (RFC 9293 3.10.4 ABORT).
func (c *Conn) sendReset(now time.Time, seq seqnum.Value) {
	c.send(now, seq, 0, flagRST|flagACK)
	c.p.c.inc(OutRsts)
}

// sendResetFor answers an unacceptable ACK with <SEQ=SEG.ACK><CTL=RST>
// (RFC 9293 3.10.7.3, 3.10.7.4).
func (c *Conn) sendResetFor(now time.Time, segAck seqnum.Value) {
	o := &c.out
	o.src = nil
	o.f = header.TCPFields{SrcPort: c.local.Port(), DstPort: c.remote.Port(), Seq: uint32(segAck), Flags: flagRST}
	o.payload = 0
	if c.home.lp.OutputBuilt(c.lip, c.rip, Proto, 0, header.DefaultTTL, true, header.TCPMinHeaderLen, o) {
		c.p.c.inc(OutRsts)
		c.p.c.inc(OutSegs)
	}
}
