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

import "time"

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
	// ssthresh "arbitrarily high" (RFC 5681 section 3.1).
	Init(mss int, now time.Time)
	// SetMSS changes the sender MSS (path MTU change); cwnd is scaled by
	// the same ratio.
	SetMSS(mss int)
	// Cwnd and Ssthresh return the current values in bytes.
	Cwnd() int
	Ssthresh() int
	// OnAck grows cwnd for an ACK of new data outside recovery: slow start
	// below ssthresh (RFC 5681 section 3.1, with appropriate byte counting
	// limited to one SMSS per ACK... RFC 3465 L=2*SMSS), congestion
	// avoidance above.
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
	// flight, cwnd to one SMSS (RFC 5681 section 3.1, equation 4; on a
	// repeated timeout of the same segment ssthresh is not lowered again,
	// RFC 5681 section 3.1 note), and the algorithm's epoch resets.
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
