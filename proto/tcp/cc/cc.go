// Package cc holds TCP congestion control: the Controller interface the TCP
// sender drives, and its implementations, NewReno (RFC 5681, RFC 6582) and
// CUBIC (RFC 9438, the default).
//
// Division of labour with the sender (proto/tcp): the sender detects loss
// (duplicate ACKs, SACK scoreboard per RFC 6675, retransmission timeout),
// decides what to (re)transmit, and runs loss recovery; the controller owns
// cwnd and ssthresh and how they change on each event. During recovery the
// sender keeps the controller's cwnd as the limit on pipe (RFC 6675 section
// 5); a sender without SACK adds NewReno's temporary inflation itself
// (RFC 6582 section 3.2).
//
// All sizes are bytes. A Controller is used by one connection at a time and
// need not be safe for concurrent use. It must not allocate after New.
package cc

import (
	"fmt"
	"time"
)

// AckSample is what the sender tells the controller about an ACK that
// acknowledged new data (cumulatively or by SACK) outside loss recovery.
type AckSample struct {
	Now time.Time
	// Acked is the number of bytes newly acknowledged by this ACK.
	Acked int
	// RTT is the round-trip sample this ACK gave (0: none, e.g. Karn's
	// algorithm excluded it); MinRTT the smallest sample seen so far.
	RTT, MinRTT time.Duration
	// Flight is the bytes outstanding before this ACK (FlightSize, RFC 5681).
	Flight int
	// AppLimited reports that the sender had less data than cwnd allowed in
	// the last round trip, so cwnd should not grow (RFC 7661 section 4.3).
	AppLimited bool
}

// Controller is one connection's congestion control state.
type Controller interface {
	// Name is the algorithm's name ("cubic", "newreno").
	Name() string
	// Init resets the state for a connection whose sender MSS is mss, with
	// the initial window of RFC 6928 (min(10*mss, max(2*mss, 14600))),
	// ssthresh "arbitrarily high" (RFC 5681 section 3.1): MaxWindow. An
	// mss below 1 is taken as 1.
	Init(mss int, now time.Time)
	// SetMSS changes the sender MSS (path MTU change); cwnd (and a finite
	// ssthresh) is scaled by the same ratio, and kept at least one new MSS.
	SetMSS(mss int)
	// Cwnd and Ssthresh return the current values in bytes.
	Cwnd() int
	Ssthresh() int
	// OnAck grows cwnd for an ACK of new data outside recovery: slow start
	// below ssthresh (RFC 5681 section 3.1, with appropriate byte counting,
	// RFC 3465 section 2.2: cwnd grows by min(Acked, L) with L = 2*SMSS,
	// or L = 1*SMSS in the slow start that follows a timeout, RFC 3465
	// section 2.3), congestion avoidance at or above. An ACK with
	// AppLimited set does not grow cwnd.
	OnAck(s AckSample)
	// EnterRecovery is called once per loss event detected by duplicate
	// ACKs or SACK (RFC 5681 section 3.2 step 2, RFC 6675 section 5 step
	// 4.2): sets ssthresh from flight (bytes outstanding) and cwnd to
	// ssthresh.
	EnterRecovery(flight int, now time.Time)
	// ExitRecovery is called when the recovery point is acknowledged
	// (RFC 6582 section 3.2 step 3, RFC 6675 section 5): cwnd is set to
	// ssthresh, or less when flight is smaller (RFC 6582 option (1)).
	ExitRecovery(flight int, now time.Time)
	// OnRTO is called when the retransmission timer expires: ssthresh from
	// flight, cwnd to one SMSS (RFC 5681 section 3.1, equation 4), and the
	// algorithm's epoch resets. On a repeated timeout of the same segment
	// ssthresh is held constant (RFC 5681 section 3.1, the paragraph after
	// equation 4): the controller treats an OnRTO with no OnAck,
	// EnterRecovery or Init since the previous OnRTO as such a repeat.
	OnRTO(flight int, now time.Time)
	// OnIdle is called before sending after the connection was idle for
	// more than an RTO: cwnd is cut to the restart window (RFC 5681
	// section 4.1, RW = min(IW, cwnd)).
	OnIdle(now time.Time)
}

// Algorithm names accepted by New.
const (
	CUBIC   = "cubic"
	NewReno = "newreno"
)

// InitialWindow returns RFC 6928's initial window for mss:
// min(10*mss, max(2*mss, 14600)).
func InitialWindow(mss int) int { return min(10*mss, max(2*mss, 14600)) }

// MaxWindow bounds cwnd and ssthresh: 2^30 bytes, the largest window TCP
// window scaling can express (RFC 7323 section 2.3); a larger cwnd could
// never be used. It is also the "arbitrarily high" initial ssthresh.
const MaxWindow = 1 << 30

// New returns a controller for the named algorithm: CUBIC (also for "") or
// NewReno. Call Init before use.
func New(name string) (Controller, error) {
	switch name {
	case "", CUBIC:
		return &cubic{}, nil
	case NewReno:
		return &reno{}, nil
	}
	return nil, fmt.Errorf("cc: unknown congestion control algorithm %q (known: %q, %q)", name, CUBIC, NewReno)
}

// window is the state and behaviour NewReno and CUBIC share: slow start,
// RFC 3465 byte counting, recovery exit, timeout and restart after idle.
type window struct {
	mss      int
	cwnd     int
	ssthresh int
	// bytesAcked counts bytes acknowledged in congestion avoidance (RFC
	// 3465 section 2.1): cwnd grows by one SMSS each time it reaches cwnd.
	bytesAcked int
	// afterRTO is set from a timeout until slow start ends or the next
	// loss: slow start then uses L = 1*SMSS (RFC 3465 section 2.3).
	afterRTO bool
	// rtoRepeat is set by a timeout and cleared by any ACK of new data, a
	// loss event or Init: a timeout while it is set retransmits the same
	// segment again, and ssthresh is held (RFC 5681 section 3.1).
	rtoRepeat bool
}

func (w *window) init(mss int) {
	mss = max(mss, 1)
	*w = window{mss: mss, cwnd: min(InitialWindow(mss), MaxWindow), ssthresh: MaxWindow}
}

// Cwnd returns the congestion window in bytes.
func (w *window) Cwnd() int { return w.cwnd }

// Ssthresh returns the slow start threshold in bytes.
func (w *window) Ssthresh() int { return w.ssthresh }

// setMSS rescales cwnd, a finite ssthresh and the byte counter by new/old.
func (w *window) setMSS(mss int) {
	mss = max(mss, 1)
	old := w.mss
	if old <= 0 || mss == old {
		w.mss = mss
		return
	}
	scale := func(v int) int { return int(int64(v) * int64(mss) / int64(old)) }
	w.cwnd = min(max(scale(w.cwnd), mss), MaxWindow)
	if w.ssthresh < MaxWindow {
		w.ssthresh = min(max(scale(w.ssthresh), 2*mss), MaxWindow)
	}
	w.bytesAcked = scale(w.bytesAcked)
	w.mss = mss
}

// slowStart grows cwnd by min(acked, L), RFC 5681 section 3.1 with RFC 3465
// section 2.2's L = 2*SMSS (2.3: L = 1*SMSS after a timeout), without
// passing ssthresh; congestion avoidance takes over there.
func (w *window) slowStart(acked int) {
	l := 2 * w.mss
	if w.afterRTO {
		l = w.mss
	}
	w.cwnd = min(w.cwnd+min(acked, l), w.ssthresh, MaxWindow)
	if w.cwnd >= w.ssthresh {
		w.afterRTO = false
	}
}

// lossThreshold sets ssthresh to max(num/den * flight, 2*SMSS): RFC 5681
// equation 4 with 1/2, RFC 9438 section 4.6 with beta_cubic.
func (w *window) lossThreshold(flight int, num, den int64) {
	flight = max(flight, 0)
	w.ssthresh = min(max(int(int64(flight)*num/den), 2*w.mss), MaxWindow)
}

// exitRecovery is RFC 6582 section 3.2 step 3 option (1):
// cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS).
func (w *window) exitRecovery(flight int) {
	w.cwnd = max(min(w.ssthresh, max(flight, w.mss)+w.mss), w.mss)
	w.bytesAcked = 0
}

// timeout sets cwnd to the loss window, one SMSS (RFC 5681 section 3.1),
// after the caller set ssthresh (unless the timeout repeats).
func (w *window) timeout() {
	w.cwnd = w.mss
	w.bytesAcked = 0
	w.afterRTO = true
	w.rtoRepeat = true
}

// idle cuts cwnd to the restart window RW = min(IW, cwnd), RFC 5681
// section 4.1; ssthresh is unchanged.
func (w *window) idle() {
	w.cwnd = min(InitialWindow(w.mss), w.cwnd)
	w.bytesAcked = 0
}
