package cc

import (
	"math"
	"time"
)

// RFC 9438 constants.
const (
	// cubicC is C, the cubic function's scaling constant (section 4.2), in
	// segments per second cubed.
	cubicC = 0.4
	// betaCubic is the multiplicative decrease factor (section 4.6). The
	// integer form is used where ssthresh is computed in bytes.
	betaCubic               = 0.7
	betaNum, betaDen        = 7, 10
	alphaCubic              = 3 * (1 - betaCubic) / (1 + betaCubic) // section 4.3
	fastConvergenceFraction = (1 + betaCubic) / 2                   // section 4.7
)

// cubic is CUBIC, RFC 9438. Below ssthresh it slow-starts as Reno does
// (section 4.10; HyStart++ is not implemented). In congestion avoidance the
// window follows W_cubic(t) = C*(t-K)^3 + W_max (section 4.2) with the
// Reno-friendly estimate W_est as a floor (section 4.3). Window sizes in the
// cubic arithmetic are in segments (float64), as in the RFC; cwnd itself is
// kept in bytes and the fraction of a byte the per-ACK growth yields is
// carried to the next ACK.
type cubic struct {
	window

	// epochValid reports that a congestion avoidance stage is under way,
	// started at epochStart with cwnd cwndEpoch (segments).
	epochValid bool
	epochStart time.Time
	cwndEpoch  float64
	// k is K in seconds (section 4.2, figure 2).
	k float64
	// wMax is W_max in segments: cwnd before the last reduction, lowered
	// by fast convergence (section 4.7).
	wMax float64
	// cwndPrior is cwnd (segments) when ssthresh was last set, at which
	// alpha_cubic becomes 1 (section 4.3).
	cwndPrior float64
	// wEst is the Reno-friendly estimate W_est in segments (section 4.3).
	wEst float64
	// frac is growth (bytes) not yet added to cwnd, in [0, 1).
	frac float64
	// timeoutEpoch marks the first congestion avoidance stage after a
	// timeout: K = 0 and W_max = cwnd at its start (section 4.8).
	timeoutEpoch bool
	// srtt smooths the RTT samples of the ACKs (alpha = 1/8, as RFC 6298
	// section 2.3); it is the RTT of W_cubic(t+RTT) (section 4.2).
	srtt time.Duration
	// appLimited is set while ACKs report the sender application-limited;
	// appLimitedSince is when that began. The time is excluded from t.
	appLimited      bool
	appLimitedSince time.Time
}

var _ Controller = (*cubic)(nil)

func (c *cubic) Name() string { return CUBIC }

func (c *cubic) Init(mss int, now time.Time) {
	*c = cubic{}
	c.init(mss)
}

func (c *cubic) SetMSS(mss int) {
	// The cubic state is in segments, and cwnd keeps its size in segments.
	c.setMSS(mss)
	c.frac = 0
}

// segs converts bytes to segments.
func (c *cubic) segs(bytes int) float64 { return float64(bytes) / float64(c.mss) }

// wCubic is W_cubic(t) in segments, RFC 9438 section 4.2 figure 1; t is in
// seconds since the epoch start.
func (c *cubic) wCubic(t float64) float64 {
	d := t - c.k
	return cubicC*d*d*d + c.wMax
}

// cubicK is K = cubic_root((W_max - cwnd_epoch)/C), RFC 9438 section 4.2
// figure 2, in seconds; 0 when cwnd_epoch is already at or above W_max.
func cubicK(wMax, cwndEpoch float64) float64 {
	if wMax <= cwndEpoch {
		return 0
	}
	return math.Cbrt((wMax - cwndEpoch) / cubicC)
}

func (c *cubic) OnAck(s AckSample) {
	c.rtoRepeat = false
	if s.RTT > 0 {
		if c.srtt == 0 {
			c.srtt = s.RTT
		} else {
			c.srtt += (s.RTT - c.srtt) / 8
		}
	}
	if s.AppLimited {
		// RFC 9438 section 5.8 and RFC 7661: no growth while
		// application-limited, and the time does not count towards t.
		if !c.appLimited {
			c.appLimited = true
			c.appLimitedSince = s.Now
		}
		return
	}
	if c.appLimited {
		c.appLimited = false
		if c.epochValid && s.Now.After(c.appLimitedSince) {
			c.epochStart = c.epochStart.Add(s.Now.Sub(c.appLimitedSince))
		}
	}
	if s.Acked <= 0 {
		return
	}
	if c.cwnd < c.ssthresh {
		c.slowStart(s.Acked)
		return
	}
	c.afterRTO = false
	c.congestionAvoidance(s)
}

// congestionAvoidance is RFC 9438 sections 4.2 to 4.5 for one ACK.
func (c *cubic) congestionAvoidance(s AckSample) {
	cw := c.segs(c.cwnd)
	if !c.epochValid {
		// Section 4.2: t counts from the start of this congestion
		// avoidance stage, and K from the cwnd then.
		c.epochValid = true
		c.epochStart = s.Now
		c.cwndEpoch = cw
		c.frac = 0
		if c.timeoutEpoch || c.wMax < cw {
			// Section 4.8 after a timeout; and with no loss yet (or cwnd
			// already past W_max), the plateau starts here.
			c.wMax = cw
			c.timeoutEpoch = false
		}
		c.k = cubicK(c.wMax, cw)
		// Section 4.3 (and 4.8 after a timeout): W_est starts at
		// cwnd_epoch.
		c.wEst = cw
	}

	// Section 4.3: Reno-friendly estimate, alpha_cubic per segment of a
	// window acknowledged, 1 once W_est has reached cwnd_prior.
	alpha := alphaCubic
	if c.wEst >= c.cwndPrior {
		alpha = 1
	}
	c.wEst += alpha * c.segs(s.Acked) / cw

	t := s.Now.Sub(c.epochStart).Seconds()
	rtt := c.srtt
	if rtt == 0 {
		rtt = s.MinRTT
	}
	next := cw
	if c.wCubic(t) >= c.wEst {
		// Sections 4.4 (concave) and 4.5 (convex): grow towards
		// target = W_cubic(t+RTT) bounded to [cwnd, 1.5*cwnd] (section
		// 4.2) by (target - cwnd)/cwnd per segment acknowledged.
		target := min(max(c.wCubic(t+rtt.Seconds()), cw), 1.5*cw)
		next = cw + (target-cw)/cw*c.segs(s.Acked)
	}
	// Section 4.3: in the Reno-friendly region (W_cubic(t) < W_est) cwnd
	// is W_est. W_est is also kept as a floor elsewhere, so that CUBIC is
	// never slower than Reno; cwnd never shrinks on an ACK.
	next = max(next, c.wEst)

	grow := (next-cw)*float64(c.mss) + c.frac
	if grow >= 1 {
		inc := math.Floor(grow)
		c.frac = grow - inc
		if inc >= float64(MaxWindow-c.cwnd) {
			c.cwnd = MaxWindow
			c.frac = 0
		} else {
			c.cwnd += int(inc)
		}
	} else if grow > 0 {
		c.frac = grow
	}
}

// reduce is RFC 9438 section 4.6 (with 4.7's fast convergence) for a loss
// or a timeout: W_max, cwnd_prior and ssthresh = max(flight*beta_cubic,
// 2*SMSS); the caller sets cwnd.
func (c *cubic) reduce(flight int) {
	cw := c.segs(c.cwnd)
	if cw < c.wMax {
		// Section 4.7: release bandwidth for new flows.
		c.wMax = cw * fastConvergenceFraction
	} else {
		c.wMax = cw
	}
	c.cwndPrior = cw
	c.lossThreshold(flight, betaNum, betaDen)
	c.epochValid = false
	c.appLimited = false
	c.frac = 0
	c.bytesAcked = 0
}

func (c *cubic) EnterRecovery(flight int, now time.Time) {
	c.reduce(flight)
	// Section 4.6: cwnd = max(ssthresh, 2); ssthresh is at least 2 SMSS.
	c.cwnd = c.ssthresh
	c.timeoutEpoch = false
	c.afterRTO = false
	c.rtoRepeat = false
}

func (c *cubic) ExitRecovery(flight int, now time.Time) {
	c.exitRecovery(flight)
	c.epochValid = false
	c.frac = 0
}

func (c *cubic) OnRTO(flight int, now time.Time) {
	if !c.rtoRepeat {
		// Section 4.8: cwnd as Reno, ssthresh from beta_cubic.
		c.reduce(flight)
	}
	c.timeout()
	c.epochValid = false
	c.timeoutEpoch = true
	c.frac = 0
}

func (c *cubic) OnIdle(now time.Time) {
	c.idle()
	// The next congestion avoidance stage starts a new epoch (K from the
	// restart window), rather than resuming a curve whose t ran on while
	// the connection sent nothing.
	c.epochValid = false
	c.appLimited = false
	c.frac = 0
}
