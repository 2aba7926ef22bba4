package tcp

import (
	"time"

	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/tcp/cc"
	"github.com/verinic/verinic/proto/tcp/sack"
	"github.com/verinic/verinic/proto/tcp/seqnum"
	"github.com/verinic/verinic/trace"
)

const (
	flagFIN = header.TCPFlagFIN
	flagSYN = header.TCPFlagSYN
	flagRST = header.TCPFlagRST
	flagPSH = header.TCPFlagPSH
	flagACK = header.TCPFlagACK
)

// dupThresh is the duplicate-ACK threshold (RFC 5681 3.2, RFC 6675 2).
const dupThresh = 3

// pawsIdle is how long TS.Recent stays valid for PAWS: 24 days (RFC 7323
// 5.5).
const pawsIdle = 24 * 24 * time.Hour

// recordSeg records a segment in the trace.
func (c *Conn) recordSeg(sent bool, f *header.TCPFields, payload int, opt *header.TCPOptions, wnd uint32, tsoMSS int) {
	if c.p.rec == nil {
		return
	}
	s := trace.TCPSegment{Seq: f.Seq, Ack: f.Ack, Flags: uint8(f.Flags), Wnd: wnd, Len: uint32(payload)}
	var bits uint32
	if opt.HasMSS {
		bits |= trace.SegOptMSS
	}
	if opt.HasWindowScale {
		bits |= trace.SegOptWScale
	}
	if opt.SACKPermitted {
		bits |= trace.SegOptSACKPerm
	}
	if opt.HasTimestamps {
		bits |= trace.SegOptTimestamp
		s.TSVal, s.TSEcr = opt.TSVal, opt.TSEcr
	}
	if opt.SACKBlockCount > 0 {
		bits |= trace.SegOptSACK
		s.SACKBlocks = uint16(opt.SACKBlockCount)
		s.FirstSACK = uint64(opt.SACKBlocks[0].Left)<<32 | uint64(opt.SACKBlocks[0].Right)
	}
	mss := opt.MSS
	if tsoMSS > 0 {
		bits |= trace.SegOptTSO
		mss = uint16(tsoMSS)
	}
	s.Opts = trace.SegOpts(bits, mss, opt.WindowScale)
	c.p.rec.TCPSeg(sent, c.id, uint8(c.state), &s)
}

// segmentArrives processes a segment for this connection (RFC 9293
// 3.10.7.3 and 3.10.7.4). c.mu is held; it runs on the home loop.
func (c *Conn) segmentArrives(now time.Time, seg header.TCP) {
	if c.gone {
		return
	}
	var opt header.TCPOptions
	if err := header.ParseTCPOptions(seg, &opt); err != nil {
		c.p.c.inc(InErrs)
		return
	}
	flags := seg.Flags()
	if c.p.rec != nil {
		f := header.TCPFields{Seq: seg.Seq(), Ack: seg.Ack(), Flags: flags}
		w := uint32(seg.Window())
		if !flags.Has(flagSYN) {
			w <<= c.sndShift
		}
		c.recordSeg(false, &f, len(seg.Payload()), &opt, w, 0)
	}
	c.keepAliveProbe = 0
	c.lastAck = now
	if c.state == SynSent {
		c.synSentArrives(now, seg, &opt)
		return
	}
	segSeq := seqnum.Value(seg.Seq())
	segAck := seqnum.Value(seg.Ack())
	data := seg.Payload()
	fin := flags.Has(flagFIN)
	segLen := seqnum.Size(seg.SegmentLen())
	if c.state == SynReceived && flags.Has(flagSYN|flagACK) && !flags.Has(flagRST) && segSeq == c.irs {
		// Simultaneous open (RFC 9293 3.5 figure 7, line 6): the peer's
		// SYN,ACK repeats the SYN we already acknowledged, and only its
		// ACK (and any data) is new. Drop the SYN from it (RFC 9293
		// 3.10.7.4: of a segment that straddles RCV.NXT only the new part
		// is processed) so that the ACK completes the handshake; left
		// whole it fails the acceptability test and both ends answer each
		// other's SYN,ACK with their own forever.
		segSeq = segSeq.Add(1)
		segLen--
		flags &^= flagSYN
	}

	// RFC 7323 5.3 (PAWS): a segment whose TSval is older than TS.Recent
	// is an old duplicate: acknowledge and drop. RSTs are exempt (R1).
	if c.tsOK && opt.HasTimestamps && !flags.Has(flagRST) && c.state.synchronized() &&
		int32(opt.TSVal-c.tsRecent) < 0 && now.Sub(c.tsRecentAge) < pawsIdle && !mutated(MutIgnorePAWS) {
		c.p.c.inc(PAWSRejected)
		c.ackNow = true
		c.output(now)
		return
	}

	if mutated(MutRstOutOfWindow) && flags.Has(flagRST) {
		c.resetArrived()
		return
	}
	// First: sequence number acceptability (RFC 9293 3.10.7.4, table).
	rcvWnd := seqnum.Size(c.advertised())
	if !c.acceptable(segSeq, segLen, rcvWnd) {
		c.p.c.inc(TCPOutOfWindow)
		if flags.Has(flagSYN) && !flags.Has(flagRST) && c.state.synchronized() {
			// RFC 5961 4.2: a SYN in a synchronized state, whatever its
			// sequence number, gets a challenge ACK, rate limited (7).
			c.p.c.inc(TCPSYNChallenge)
			c.challengeAck(now)
			return
		}
		if c.state == TimeWait && fin && !flags.Has(flagRST) {
			// A retransmitted FIN lies before RCV.NXT: acknowledge it
			// and restart the 2 MSL timeout (RFC 9293 3.10.7.4 eighth,
			// TIME-WAIT; RFC 1122 4.2.2.13), as Linux does.
			c.home.lp.Timers().Schedule(&c.twTimer, now.Add(c.p.cfg.TimeWait))
		}
		if mutated(MutFinTwice) && fin && c.finRcvd && segSeq.Add(segLen) == c.rcvNxt {
			c.rcvNxt = c.rcvNxt.Add(1)
		}
		if !flags.Has(flagRST) {
			c.ackNow = true
			c.output(now)
		}
		if segSeq.Add(segLen).LessThanEq(c.rcvNxt) && segLen > 0 && c.sackOK {
			// An entire duplicate: report it with D-SACK (RFC 2883 4.1).
			c.dsack = header.SACKBlock{Left: uint32(segSeq), Right: uint32(segSeq.Add(segLen))}
			c.haveDSACK = true
		}
		return
	}

	// Second: RST (RFC 9293 3.10.7.4 second, with RFC 5961 3.2: only an
	// RST at exactly RCV.NXT resets; one elsewhere in the window gets a
	// challenge ACK).
	if flags.Has(flagRST) {
		if segSeq != c.rcvNxt {
			c.p.c.inc(TCPRSTInWindow)
			c.challengeAck(now)
			return
		}
		c.resetArrived()
		return
	}

	// Fourth: SYN in a synchronized state, or SYN-RECEIVED (RFC 5961 4.2):
	// challenge ACK.
	if flags.Has(flagSYN) {
		if c.state == SynReceived && c.ln != nil && segSeq == c.irs {
			c.ackNow = true // a retransmitted SYN: resend the SYN-ACK
			c.output(now)
			return
		}
		c.p.c.inc(TCPSYNChallenge)
		c.challengeAck(now)
		return
	}

	// Fifth: ACK.
	if !flags.Has(flagACK) {
		return
	}
	if c.state == SynReceived {
		if !(c.sndUna.LessThan(segAck) && segAck.LessThanEq(c.sndMax)) {
			c.sendResetFor(now, segAck)
			return
		}
		if c.ln != nil && !c.ln.canAccept() {
			// Accept queue full: drop the ACK and stay in SYN-RECEIVED
			// (Linux, tcp_abort_on_overflow=0); our SYN-ACK timer retries.
			c.p.c.inc(ListenOverflows)
			c.p.c.inc(ListenDrops)
			return
		}
		c.sndWnd = uint32(seg.Window())
		if !seg.Flags().Has(flagSYN) {
			c.sndWnd <<= c.sndShift // a SYN's window is never scaled (RFC 7323 2.2)
		}
		c.maxSndWnd = max(c.maxSndWnd, c.sndWnd)
		c.sndWl1, c.sndWl2 = segSeq, segAck
		c.establish(now)
	}
	if c.tsOK && opt.HasTimestamps && segSeq.LessThanEq(c.lastAckSent) {
		// RFC 7323 4.3: TS.Recent from a segment that covers
		// Last.ACK.sent.
		c.tsRecent, c.tsRecentAge = opt.TSVal, now
	}
	if !c.processAck(now, seg, segSeq, segAck, &opt) {
		return
	}
	if c.gone {
		return
	}

	// Seventh: segment text (RFC 9293 3.10.7.4 seventh). Urgent data is
	// delivered inline as ordinary bytes (RFC 6093 4).
	delivered := 0
	if len(data) > 0 || fin {
		if c.state.canReceive() {
			if c.appClosed && len(data) > 0 {
				// Data for a closed socket: reset (RFC 2525 2.17, as
				// Linux's TCPAbortOnData).
				c.p.c.inc(TCPAbortOnData)
				c.sendReset(now, c.sndNxt)
				c.destroy(ErrConnReset)
				return
			}
			delivered = c.receiveData(now, segSeq, data, fin)
		} else if len(data) > 0 {
			// CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: the peer already
			// sent its FIN; more data is an error. Acknowledge.
			c.ackNow = true
		}
	}
	if c.state == TimeWait && fin {
		// A retransmitted FIN: acknowledge it and restart the 2 MSL
		// timeout (RFC 9293 3.10.7.4 eighth, TIME-WAIT).
		c.ackNow = true
		c.home.lp.Timers().Schedule(&c.twTimer, now.Add(c.p.cfg.TimeWait))
	}
	if delivered > 0 {
		c.base.Readable.Notify()
	}
	c.output(now)
}

// acceptable is RFC 9293 3.10.7.4's acceptability test.
func (c *Conn) acceptable(seq seqnum.Value, n, wnd seqnum.Size) bool {
	if mutated(MutWindowOffByOne) {
		wnd++
	}
	if mutated(MutNoWrapCompare) && n > 0 && wnd > 0 {
		lo, hi, last := uint32(c.rcvNxt), uint32(c.rcvNxt)+uint32(wnd), uint32(seq.Add(n-1))
		return uint32(seq) >= lo && uint32(seq) < hi || last >= lo && last < hi
	}
	switch {
	case n == 0 && wnd == 0:
		return seq == c.rcvNxt
	case n == 0:
		return seq.InWindow(c.rcvNxt, wnd)
	case wnd == 0:
		return false
	default:
		return seq.InWindow(c.rcvNxt, wnd) || seq.Add(n-1).InWindow(c.rcvNxt, wnd)
	}
}

// challengeAck sends an ACK for the current state, rate limited (RFC 5961
// 3.2, 4.2, 5.2, 7).
func (c *Conn) challengeAck(now time.Time) {
	if !c.p.allowChallengeAck(now) {
		return
	}
	c.p.c.inc(TCPChallengeACK)
	c.ackNow = true
	c.output(now)
}

// resetArrived handles an acceptable RST (RFC 9293 3.10.7.4 second).
func (c *Conn) resetArrived() {
	switch c.state {
	case SynReceived:
		c.p.c.inc(AttemptFails)
		if c.ln != nil { // passive: back to LISTEN means forgetting it
			c.destroy(ErrConnRefused)
			return
		}
		c.destroy(ErrConnRefused)
	case Established, CloseWait:
		c.p.c.inc(EstabResets)
		c.destroy(ErrConnReset)
	case FinWait1, FinWait2:
		c.destroy(ErrConnReset)
	case Closing, LastAck:
		c.destroy(nil)
	case TimeWait:
		// RFC 1337: ignore RSTs in TIME-WAIT (TIME-WAIT assassination).
		c.p.c.inc(TCPTimeWaitRST)
	}
}

// establish completes the handshake.
func (c *Conn) establish(now time.Time) {
	c.setState(Established)
	c.cc.Init(c.mss, now)
	c.retries = 0
	c.rtt.ResetBackoff()
	if c.ln != nil {
		ln := c.ln
		c.ln = nil
		ln.established(c)
	}
	c.markEstablished()
	c.base.Writable.Notify()
	c.armKeepalive(now)
}

// synSentArrives is RFC 9293 3.10.7.3 (SYN-SENT).
func (c *Conn) synSentArrives(now time.Time, seg header.TCP, opt *header.TCPOptions) {
	flags := seg.Flags()
	segSeq, segAck := seqnum.Value(seg.Seq()), seqnum.Value(seg.Ack())
	// First: the ACK.
	if flags.Has(flagACK) && (segAck.LessThanEq(c.iss) || segAck.GreaterThan(c.sndMax)) {
		if !flags.Has(flagRST) {
			c.sendResetFor(now, segAck)
		}
		return
	}
	ackOK := flags.Has(flagACK)
	// Second: RST (acceptable only with an acceptable ACK; RFC 5961 3.2
	// for SYN-SENT: the ACK check above suffices).
	if flags.Has(flagRST) {
		if ackOK {
			c.p.c.inc(AttemptFails)
			c.destroy(ErrConnRefused)
		}
		return
	}
	// Fourth: SYN.
	if !flags.Has(flagSYN) {
		return
	}
	// Our SYN offered an unscaled window of RCV.ADV - RCV.NXT bytes,
	// counted before the IRS was known (RFC 7323 2.2): it starts at the
	// IRS+1 now. Left as it was, RCV.ADV lies anywhere relative to the
	// peer's sequence space, and windowField advertised up to 65535 << shift
	// bytes (8 MiB), far past the receive buffer.
	synWnd := c.rcvAdv - c.rcvNxt
	c.irs = segSeq
	c.rcvNxt = segSeq.Add(1)
	c.rcvAdv = c.rcvNxt.Add(seqnum.Size(synWnd))
	c.applySynOptions(opt)
	if c.tsOK {
		c.tsRecent, c.tsRecentAge = opt.TSVal, now
	}
	if ackOK {
		c.sndUna = segAck
		c.sndWnd = uint32(seg.Window()) // a SYN's window is never scaled (RFC 7323 2.2)
		c.maxSndWnd = c.sndWnd
		c.sndWl1, c.sndWl2 = segSeq, segAck
		c.home.lp.Timers().Stop(&c.rtoTimer)
		if c.rttTiming {
			c.rtt.Sample(now.Sub(c.rttTime))
			c.rttTiming = false
		}
		c.establish(now)
		c.ackNow = true
		// Data in the SYN-ACK is queued per RFC 9293 (rare); process it.
		if d := seg.Payload(); len(d) > 0 {
			c.receiveData(now, segSeq.Add(1), d, flags.Has(flagFIN))
		}
		c.output(now)
		return
	}
	// Simultaneous open: SYN-RECEIVED, and send SYN,ACK.
	c.sndWnd = uint32(seg.Window())
	c.maxSndWnd = c.sndWnd
	c.sndWl1 = segSeq
	c.setState(SynReceived)
	c.sndNxt = c.iss // resend the SYN, now with ACK
	c.output(now)
}

// applySynOptions records what the peer's SYN offered (RFC 7323 1.3: an
// option is on only if both SYNs carry it; RFC 9293 3.7.1 MSS: 536 when
// absent) and derives the send MSS.
func (c *Conn) applySynOptions(opt *header.TCPOptions) {
	c.tsOK = c.tsOK && opt.HasTimestamps
	c.sackOK = c.sackOK && opt.SACKPermitted
	c.wsOK = c.wsOK && opt.HasWindowScale
	if c.wsOK {
		c.sndShift = opt.WindowScale
	} else {
		c.sndShift, c.rcvShift = 0, 0
	}
	c.peerMSS = 536
	if opt.HasMSS && opt.MSS > 0 {
		c.peerMSS = int(opt.MSS)
	}
	c.updateMSS(c.home.lp.PathMTU(c.rip))
}

// updateMSS derives the send MSS from the peer's MSS and the path MTU, less
// the timestamps option every segment carries (RFC 9293 3.7.1, RFC 6691).
func (c *Conn) updateMSS(pmtu int) {
	m := min(c.peerMSS, pmtu-header.IPv4MinHeaderLen-header.TCPMinHeaderLen)
	if c.tsOK {
		m -= 12
	}
	m = max(m, 64)
	if c.mss != 0 && m != c.mss && c.state.synchronized() {
		c.cc.SetMSS(m)
	}
	c.mss = m
}

// processAck is RFC 9293 3.10.7.4 fifth for the synchronized states. It
// reports whether processing of the segment goes on.
func (c *Conn) processAck(now time.Time, seg header.TCP, segSeq, segAck seqnum.Value, opt *header.TCPOptions) bool {
	// RFC 5961 5.2: acceptable ACKs lie in [SND.UNA - MAX.SND.WND,
	// SND.NXT] (SND.MAX here: bytes once sent, see Conn.sndMax).
	if segAck.GreaterThan(c.sndMax) && !mutated(MutAckBeyondSndNxt) {
		c.p.c.inc(TCPACKUnacceptable)
		c.ackNow = true
		c.output(now)
		return false
	}
	if segAck.LessThan(c.sndUna.Sub(seqnum.Size(max(c.maxSndWnd, 1)))) {
		c.p.c.inc(TCPACKUnacceptable)
		c.challengeAck(now)
		return false
	}
	data := seg.Payload()
	flags := seg.Flags()
	wnd := uint32(seg.Window()) << c.sndShift
	if flags.Has(flagSYN) {
		wnd = uint32(seg.Window()) // RFC 7323 2.2: never scaled (a SYN,ACK in simultaneous open)
	}
	if len(data) == 0 && !flags.Has(flagFIN) {
		c.p.c.inc(TCPPureAcks)
	}

	// SACK information (RFC 2018, RFC 6675 section 5 step "update the
	// scoreboard").
	sackNew := seqnum.Size(0)
	if c.sackOK && opt.SACKBlockCount > 0 {
		c.p.c.add(TCPSACKBlocksRecv, uint64(opt.SACKBlockCount))
		before := c.board.DSACKs()
		sackNew = c.board.Update(segAck, c.sndMax, opt.SACKBlocks[:opt.SACKBlockCount])
		if d := c.board.DSACKs() - before; d > 0 {
			c.p.c.add(TCPDSACKRecv, uint64(d))
		}
	}

	flight := int(c.sndMax - c.sndUna)
	advanced := segAck.GreaterThan(c.sndUna)
	if advanced {
		c.ackedNewData(now, segAck, opt, flight)
	} else if segAck == c.sndUna && flight > 0 && len(data) == 0 && !flags.Has(flagSYN|flagFIN) &&
		(wnd == c.sndWnd || sackNew > 0) && wnd > 0 {
		// A duplicate ACK (RFC 5681 2; with SACK, RFC 6675 counts ACKs
		// that carry new SACK information). A zero window's ACK is not
		// one: it answers a zero-window probe (RFC 9293 3.8.6.1), whose
		// byte is all that is in flight, and three of them must not
		// fast-retransmit a full segment into the closed window.
		c.duplicateAck(now)
	}

	// Window update (RFC 9293 3.10.7.4 fifth, SND.WL1/SND.WL2 rule), and
	// from every segment that acknowledges new data, as Linux does
	// (tcp_may_update_window): SND.WND counts from SND.UNA, so an ACK that
	// moves SND.UNA must bring its window along. Left to the WL1 test
	// alone, a retransmission that fills a hole (a sequence number below
	// the out-of-order segments that set SND.WL1) moved SND.UNA but not
	// SND.WND, the usable window's right edge ran past the one the peer
	// offered, and new data went beyond the peer's window.
	if advanced || c.sndWl1.LessThan(segSeq) || (c.sndWl1 == segSeq && c.sndWl2.LessThanEq(segAck)) {
		opened := c.sndWnd == 0 && wnd > 0
		c.sndWnd = wnd
		c.maxSndWnd = max(c.maxSndWnd, wnd)
		c.sndWl1, c.sndWl2 = segSeq, segAck
		if opened {
			c.home.lp.Timers().Stop(&c.persistTimer)
			c.persistBackoff = 0
		}
	}

	// FIN acknowledged? ackedNewData recorded it: SND.UNA has already
	// moved past the FIN, so finSeq() (SND.UNA plus the bytes buffered) no
	// longer names it here.
	finAcked := c.finSent && c.finAcked
	switch c.state {
	case FinWait1:
		if finAcked {
			c.setState(FinWait2)
			if c.appClosed {
				// An orphaned FIN-WAIT-2 ends after the TIME-WAIT period
				// (Linux's tcp_fin_timeout).
				c.home.lp.Timers().Schedule(&c.twTimer, now.Add(c.p.cfg.TimeWait))
			}
		}
	case Closing:
		if finAcked {
			c.enterTimeWait(now)
		}
	case LastAck:
		if finAcked {
			c.destroy(nil)
			return false
		}
	}
	return true
}

// finSeq is the sequence number of our FIN: after the last data byte.
func (c *Conn) finSeq() seqnum.Value {
	if c.sndBuf == nil {
		return c.finAt
	}
	return c.sndUna.Add(seqnum.Size(c.sndBuf.Len()))
}

// ackedNewData handles an ACK that advances SND.UNA.
func (c *Conn) ackedNewData(now time.Time, segAck seqnum.Value, opt *header.TCPOptions, flight int) {
	acked := int(segAck - c.sndUna)
	dataAcked := acked
	if c.sndUna == c.iss {
		dataAcked-- // the SYN
	}
	if c.finSent && segAck == c.finSeq().Add(1) {
		dataAcked-- // the FIN
		c.finAcked = true
		c.finAt = c.finSeq()
	}
	if c.sndBuf != nil && dataAcked > 0 {
		c.sndBuf.Discard(min(dataAcked, c.sndBuf.Len()))
		c.base.Writable.Notify()
	}
	c.sndUna = segAck
	if c.sndNxt.LessThan(c.sndUna) {
		c.sndNxt = c.sndUna
	}
	if c.highRxt.LessThan(c.sndUna) {
		c.highRxt = c.sndUna
	}

	// RTT sample (RFC 7323 4.1 with timestamps; otherwise one timed
	// segment, never a retransmitted one: Karn's algorithm, RFC 6298 3).
	var sample time.Duration
	if c.tsOK && opt.HasTimestamps && opt.TSEcr != 0 {
		ms := int32(c.p.tsNow(now) + c.tsOffset - opt.TSEcr)
		if ms >= 0 {
			sample = time.Duration(ms)*time.Millisecond + time.Millisecond/2
		}
	} else if c.rttTiming && c.rttSeq.LessThan(segAck) {
		sample = now.Sub(c.rttTime)
		c.rttTiming = false
	}
	if sample > 0 {
		c.rtt.Sample(sample)
	}
	c.retries = 0
	c.rtt.ResetBackoff()
	c.dupAcks = 0
	c.limitedTx = 0

	if c.inRecovery {
		if c.recoverPt.LessThanEq(segAck) {
			// Full acknowledgment: recovery ends (RFC 6582 3.2 step 3,
			// RFC 6675 5).
			c.inRecovery = false
			c.renoInflate = 0
			c.cc.ExitRecovery(int(c.sndMax-c.sndUna), now)
		} else if !c.sackOK {
			// Partial acknowledgment (RFC 6582 3.2 step 4): retransmit
			// the first unacknowledged segment, deflate by the amount
			// acknowledged, add back one SMSS if that was at least one.
			c.renoInflate -= acked
			if acked >= c.mss {
				c.renoInflate += c.mss
			}
			c.renoInflate = max(c.renoInflate, 0)
			c.rxtUna = true
		}
	} else {
		c.cc.OnAck(cc.AckSample{Now: now, Acked: acked, RTT: sample, MinRTT: c.rtt.MinRTT(), Flight: flight, AppLimited: c.appLimited})
	}
	if c.sackOK {
		c.board.Update(c.sndUna, c.sndMax, nil)
	}

	// RFC 6298 5.2/5.3: stop the timer when everything is acknowledged,
	// restart it otherwise.
	if c.sndUna == c.sndMax {
		c.home.lp.Timers().Stop(&c.rtoTimer)
	} else {
		c.home.lp.Timers().Schedule(&c.rtoTimer, now.Add(c.rtt.RTO()))
	}
}

// duplicateAck counts a duplicate ACK: limited transmit (RFC 3042) for the
// first two, fast retransmit and recovery at the threshold (RFC 5681 3.2,
// RFC 6582, RFC 6675 5).
func (c *Conn) duplicateAck(now time.Time) {
	c.dupAcks++
	if c.inRecovery {
		if !c.sackOK {
			c.renoInflate += c.mss // RFC 6582 3.2 step 4 (inflate)
		}
		return
	}
	lost := c.dupAcks >= dupThresh || (c.sackOK && c.board.IsLost(c.sndUna, dupThresh, c.mss))
	if !lost {
		if c.dupAcks <= 2 {
			c.limitedTx = c.dupAcks // RFC 3042: up to two new segments
		}
		return
	}
	// RFC 6582 4.1: no new recovery for duplicate ACKs of data sent
	// before the last one began (the "recover" check), unless it
	// acknowledges beyond it.
	if !c.sndUna.GreaterThan(c.recoverPt) && c.recoverValid {
		return
	}
	c.inRecovery = true
	c.recoverValid = true
	c.recoverPt = c.sndMax
	c.highRxt = c.sndUna
	c.rescue = sack.Rescue{RecoveryPoint: c.sndMax}
	c.cc.EnterRecovery(int(c.sndMax-c.sndUna), now)
	c.limitedTx = 0
	c.renoInflate = 0
	if c.sackOK {
		c.p.c.inc(TCPSACKRecovery)
	} else {
		c.p.c.inc(TCPRenoRecovery)
		c.renoInflate = dupThresh * c.mss // RFC 6582 3.2 step 2 (cwnd = ssthresh + 3*SMSS)
	}
	c.p.c.inc(TCPFastRetrans)
	c.rxtUna = true // fast retransmit of the first unacknowledged segment
	c.rttTiming = false
}

// receiveData places data (starting at seq) in the receive buffer and
// handles a FIN after it. It returns the bytes made readable.
func (c *Conn) receiveData(now time.Time, seq seqnum.Value, data []byte, fin bool) int {
	// Trim what precedes RCV.NXT (already received).
	if seq.LessThan(c.rcvNxt) {
		skip := int(c.rcvNxt - seq)
		if skip > len(data) {
			if c.sackOK {
				c.dsack = header.SACKBlock{Left: uint32(seq), Right: uint32(c.rcvNxt)}
				c.haveDSACK = true
			}
			skip = len(data)
		} else if skip > 0 && c.sackOK {
			c.dsack = header.SACKBlock{Left: uint32(seq), Right: uint32(c.rcvNxt)}
			c.haveDSACK = true
		}
		data = data[skip:]
		seq = c.rcvNxt
	}
	// Trim what lies past the buffer (the window we advertised, bounded by
	// the ring); a trimmed tail takes the FIN with it.
	off := int(seq - c.rcvNxt)
	room := c.rcvCap - c.rcvBuf.Len() - off
	if need := c.rcvBuf.Len() + off + len(data); need > c.rcvBuf.Cap() && len(data) > 0 && !c.growRecv(need) {
		room = c.rcvBuf.Cap() - c.rcvBuf.Len() - off // the memory cap refused more storage
	}
	if room < len(data) {
		if room < 0 {
			room = 0
		}
		c.p.c.add(TCPRcvPruned, uint64(len(data)-room))
		data = data[:room]
		fin = false
	}
	if fin {
		c.finPending = true
		c.finRcvSeq = seq.Add(seqnum.Size(len(data)))
	}
	before := c.rcvNxt
	hadGap := c.ooo.Len() > 0
	if off == 0 {
		// WriteAt+Extend rather than Write: bytes already parked out of
		// order at these offsets stay as first received.
		n := c.rcvBuf.WriteAt(c.rcvBuf.Len(), data)
		c.rcvBuf.Extend(n)
		c.rcvNxt = c.rcvNxt.Add(seqnum.Size(n))
		if hadGap {
			next := c.ooo.Advance(c.rcvNxt)
			if next.GreaterThan(c.rcvNxt) {
				c.rcvBuf.Extend(int(next - c.rcvNxt))
				c.rcvNxt = next
			}
			c.ackNow = true // a gap filled: ACK at once (RFC 5681 4.2)
		}
	} else if len(data) > 0 {
		if mutated(MutDeliverOutOfOrder) {
			n := c.rcvBuf.WriteAt(c.rcvBuf.Len(), data)
			c.rcvBuf.Extend(n)
			c.ackNow = true
			return n
		}
		if _, ok := c.ooo.Insert(seq, seq.Add(seqnum.Size(len(data)))); !ok {
			c.p.c.inc(TCPOFODrop)
			c.ackNow = true
			return 0
		}
		c.rcvBuf.WriteAt(c.rcvBuf.Len()+off, data)
		c.p.c.inc(TCPOFOQueue)
		c.ackNow = true // out of order: immediate duplicate ACK (RFC 5681 4.2)
	}
	delivered := int(c.rcvNxt - before)
	if delivered > 0 {
		c.measureRcvRTT(now)
	}
	if c.finPending && c.finRcvSeq == c.rcvNxt {
		c.finPending = false
		c.finArrived(now)
		c.ackNow = true
	} else if delivered > 0 {
		// Delayed ACK: at least every second full-sized segment, within
		// DelayedAck (RFC 9293 3.8.6.3, RFC 5681 4.2).
		c.ackPending += delivered
		if c.ackPending >= 2*c.rcvMSSOrDefault() {
			c.ackNow = true
		} else if !c.delackTimer.Pending() {
			c.home.lp.Timers().Schedule(&c.delackTimer, now.Add(c.p.cfg.DelayedAck))
		}
	}
	return delivered
}

// rcvMSSOrDefault is the size of a full-sized segment from the peer: with
// timestamps its MSS includes the 12 bytes of the option (RFC 6691 2,
// RFC 7323 as the peer applies it in updateMSS), so two full segments are
// 2*(MSS-12) bytes, not 2*MSS.
func (c *Conn) rcvMSSOrDefault() int {
	m := max(min(c.rcvMSS, c.peerMSS), 536)
	if c.tsOK {
		m -= 12
	}
	return m
}

// finArrived is RFC 9293 3.10.7.4 eighth: the peer's FIN, in order.
func (c *Conn) finArrived(now time.Time) {
	c.rcvNxt = c.rcvNxt.Add(1)
	c.finRcvd = true
	c.base.Readable.Notify()
	switch c.state {
	case SynReceived, Established:
		c.setState(CloseWait)
	case FinWait1:
		if c.finAcked {
			c.enterTimeWait(now)
		} else {
			c.setState(Closing)
		}
	case FinWait2:
		c.enterTimeWait(now)
	}
}

// enterTimeWait starts the 2 MSL wait (RFC 9293 3.4.2, 3.10.7.4).
func (c *Conn) enterTimeWait(now time.Time) {
	c.setState(TimeWait)
	t := c.home.lp.Timers()
	t.Stop(&c.rtoTimer)
	t.Stop(&c.persistTimer)
	t.Stop(&c.keepTimer)
	t.Stop(&c.delackTimer)
	t.Schedule(&c.twTimer, now.Add(c.p.cfg.TimeWait))
	if c.sndBuf != nil {
		c.finAt = c.finSeq()
	}
	c.freeBuffers()
	c.base.Writable.Notify()
}

// newIncarnation reports whether seg, arriving in TIME-WAIT, is a SYN that
// may open a new incarnation of the connection (RFC 6191 2): its sequence
// number is above RCV.NXT, or with timestamps its TSval is above TS.Recent.
func (c *Conn) newIncarnation(seg header.TCP) bool {
	f := seg.Flags()
	if !f.Has(flagSYN) || f.Has(flagACK) || f.Has(flagRST) {
		return false
	}
	if c.tsOK {
		var opt header.TCPOptions
		if header.ParseTCPOptions(seg, &opt) == nil && opt.HasTimestamps {
			return int32(opt.TSVal-c.tsRecent) > 0
		}
	}
	return seqnum.Value(seg.Seq()).GreaterThan(c.rcvNxt)
}

// measureRcvRTT estimates the round trip as the receiver sees it, for
// auto-tuning: the time the peer takes to send one window of data, measured
// from when that window was offered (Linux's tcp_rcv_rtt_measure, which
// keeps the minimum: a window-dependent sample grows with queueing).
func (c *Conn) measureRcvRTT(now time.Time) {
	if c.rcvRTTMark == (time.Time{}) {
		c.rcvRTTSeq = c.rcvNxt.Add(seqnum.Size(max(c.advertised(), 1)))
		c.rcvRTTMark = now
		return
	}
	if c.rcvNxt.LessThan(c.rcvRTTSeq) {
		return
	}
	if r := now.Sub(c.rcvRTTMark); r > 0 && (c.rcvRTT == 0 || r < c.rcvRTT) {
		c.rcvRTT = r
	}
	c.rcvRTTMark = time.Time{}
}

// growRecv gives the receive ring storage for need bytes (at most rcvCap),
// doubling, within the memory cap. It allocates only while the ring grows
// to the size the traffic needs; the steady state allocates nothing.
func (c *Conn) growRecv(need int) bool {
	cur := c.rcvBuf.Cap()
	next := min(c.rcvCap, max(need, 2*cur, 4096))
	if next <= cur || !c.p.reserve(next-cur) {
		return false
	}
	c.rcvBuf.Grow(next)
	return true
}
