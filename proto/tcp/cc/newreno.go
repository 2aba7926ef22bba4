package cc

import "time"

// reno is NewReno: RFC 5681 slow start and congestion avoidance with
// appropriate byte counting (RFC 3465), ssthresh = max(FlightSize/2,
// 2*SMSS) on loss (RFC 5681 equation 4) and RFC 6582's exit of recovery.
type reno struct {
	window
}

var _ Controller = (*reno)(nil)

func (r *reno) Name() string { return NewReno }

func (r *reno) Init(mss int, now time.Time) { r.init(mss) }

func (r *reno) SetMSS(mss int) { r.setMSS(mss) }

func (r *reno) OnAck(s AckSample) {
	r.rtoRepeat = false
	if s.AppLimited || s.Acked <= 0 {
		// RFC 7661 section 4.3: a window the sender did not fill has not
		// been validated, so it must not grow.
		return
	}
	if r.cwnd < r.ssthresh {
		r.slowStart(s.Acked)
		return
	}
	// Congestion avoidance, RFC 5681 section 3.1 with RFC 3465 section 2.1:
	// one SMSS per cwnd of bytes acknowledged, so about one SMSS per RTT.
	r.afterRTO = false
	r.bytesAcked += s.Acked
	if r.bytesAcked >= r.cwnd {
		r.bytesAcked -= r.cwnd
		r.cwnd = min(r.cwnd+r.mss, MaxWindow)
		// Never carry more than one window's credit into the next round.
		r.bytesAcked = min(r.bytesAcked, r.cwnd-1)
	}
}

func (r *reno) EnterRecovery(flight int, now time.Time) {
	// RFC 5681 section 3.2 step 2 (equation 4); the sender adds any
	// temporary inflation itself.
	r.lossThreshold(flight, 1, 2)
	r.cwnd = r.ssthresh
	r.bytesAcked = 0
	r.afterRTO = false
	r.rtoRepeat = false
}

func (r *reno) ExitRecovery(flight int, now time.Time) { r.exitRecovery(flight) }

func (r *reno) OnRTO(flight int, now time.Time) {
	if !r.rtoRepeat {
		r.lossThreshold(flight, 1, 2)
	}
	r.timeout()
}

func (r *reno) OnIdle(now time.Time) { r.idle() }
