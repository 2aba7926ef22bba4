// Package rtt computes TCP's retransmission timeout from round-trip time
// samples, RFC 6298.
//
// The estimator only does the arithmetic. Choosing samples is the caller's
// job:
//
//   - Karn's algorithm (RFC 6298 section 3): a segment that was
//     retransmitted must not give a sample (its ACK is ambiguous) unless
//     the timestamps option disambiguates it; and a backed-off RTO is kept
//     until a valid sample arrives, which Sample does by ending the backoff.
//   - With timestamps (RFC 7323 section 4) the caller takes samples from
//     TSecr, at most one per window of data as RFC 7323 section 4.2
//     advises, and passes them to Sample like any other.
//
// It does not allocate and is not safe for concurrent use.
package rtt

import "time"

// Defaults for the zero fields of Config.
const (
	// DefaultMin is 200 ms, as Linux (TCP_RTO_MIN). RFC 6298 section 2.4
	// says an RTO below 1 second SHOULD be rounded up to 1 second; like
	// Linux we deviate, since on a LAN or data-centre path of about 1 ms
	// that floor idles a connection for a thousand RTTs per timeout.
	// Set Config.Min to time.Second for the RFC's value.
	DefaultMin = 200 * time.Millisecond
	// DefaultMax is the upper bound of RFC 6298 section 2.5 ("at least 60
	// seconds"); 120 s as Linux (TCP_RTO_MAX).
	DefaultMax = 120 * time.Second
	// DefaultInitial is RFC 6298 section 2.1's initial RTO, 1 second.
	DefaultInitial = time.Second
	// DefaultGranularity is G, the clock granularity of RFC 6298 section 2.
	DefaultGranularity = time.Millisecond
)

// K is RFC 6298's multiplier of RTTVAR (section 2.2).
const K = 4

// Config bounds the RTO. Zero (or negative) fields take the defaults above.
// A Max below Min is raised to Min.
type Config struct {
	Min, Max, Initial, Granularity time.Duration
}

// withDefaults returns c with the zero fields replaced by the defaults.
func (c Config) withDefaults() Config {
	if c.Min <= 0 {
		c.Min = DefaultMin
	}
	if c.Max <= 0 {
		c.Max = DefaultMax
	}
	c.Max = max(c.Max, c.Min)
	if c.Initial <= 0 {
		c.Initial = DefaultInitial
	}
	if c.Granularity <= 0 {
		c.Granularity = DefaultGranularity
	}
	return c
}

// Estimator holds one connection's SRTT, RTTVAR and RTO backoff. Use New;
// the zero Estimator is usable and behaves as New(Config{}).
type Estimator struct {
	cfg         Config
	configured  bool
	has         bool
	srtt        time.Duration
	rttvar      time.Duration
	minRTT      time.Duration
	backoffs    int
	backedOffTo time.Duration // the backed-off RTO; 0 when not backed off
}

// New returns an estimator with no samples, whose RTO is Initial (RFC 6298
// section 2.1).
func New(c Config) Estimator {
	return Estimator{cfg: c.withDefaults(), configured: true}
}

func (e *Estimator) config() Config {
	if !e.configured {
		e.cfg = e.cfg.withDefaults()
		e.configured = true
	}
	return e.cfg
}

// Reset forgets the samples and the backoff, keeping the Config.
func (e *Estimator) Reset() { *e = New(e.config()) }

// Sample takes a round-trip measurement r (RFC 6298 section 2.2 for the
// first, 2.3 after) and ends any backoff (section 5 and Karn's algorithm,
// section 3). Negative samples are ignored.
func (e *Estimator) Sample(r time.Duration) {
	if r < 0 {
		return
	}
	e.config()
	if !e.has {
		// Section 2.2: SRTT <- R, RTTVAR <- R/2.
		e.has = true
		e.srtt = r
		e.rttvar = r / 2
		e.minRTT = r
	} else {
		// Section 2.3, in this order (RTTVAR uses the old SRTT):
		// RTTVAR <- (1 - beta) * RTTVAR + beta * |SRTT - R'|, beta = 1/4
		// SRTT <- (1 - alpha) * SRTT + alpha * R', alpha = 1/8
		d := e.srtt - r
		if d < 0 {
			d = -d
		}
		e.rttvar = (3*e.rttvar + d) / 4
		e.srtt = (7*e.srtt + r) / 8
		e.minRTT = min(e.minRTT, r)
	}
	e.ResetBackoff()
}

// RTO returns the retransmission timeout: Initial before any sample (section
// 2.1), else SRTT + max(G, K*RTTVAR) (sections 2.2, 2.3), clamped to [Min,
// Max] (sections 2.4, 2.5); while backed off, the backed-off value.
func (e *Estimator) RTO() time.Duration {
	c := e.config()
	if e.backedOffTo > 0 {
		return e.backedOffTo
	}
	return e.base(c)
}

func (e *Estimator) base(c Config) time.Duration {
	rto := c.Initial
	if e.has {
		rto = e.srtt + max(c.Granularity, K*e.rttvar)
	}
	return min(max(rto, c.Min), c.Max)
}

// Backoff doubles the RTO after the timer expired (RFC 6298 section 5.5),
// up to Max (section 2.5), and returns the new RTO.
func (e *Estimator) Backoff() time.Duration {
	c := e.config()
	cur := e.RTO()
	if cur > c.Max/2 {
		e.backedOffTo = c.Max
	} else {
		e.backedOffTo = 2 * cur
	}
	e.backoffs++
	return e.backedOffTo
}

// ResetBackoff returns the RTO to the computed value; Sample calls it. A
// caller may also call it when an ACK acknowledges new data without a
// sample (Karn: the segment was retransmitted), as Linux does; RFC 6298
// section 5 keeps the backoff until a sample instead.
func (e *Estimator) ResetBackoff() {
	e.backoffs = 0
	e.backedOffTo = 0
}

// Backoffs returns how many times Backoff was called since the last
// ResetBackoff (the retransmission count, for RFC 9293 section 3.8.3's R1
// and R2 thresholds).
func (e *Estimator) Backoffs() int { return e.backoffs }

// HasSample reports whether Sample was ever given a measurement.
func (e *Estimator) HasSample() bool { return e.has }

// SRTT returns the smoothed round-trip time (0 before a sample).
func (e *Estimator) SRTT() time.Duration { return e.srtt }

// RTTVar returns the round-trip time variation (0 before a sample).
func (e *Estimator) RTTVar() time.Duration { return e.rttvar }

// MinRTT returns the smallest sample over the connection's lifetime (0
// before a sample). It is not windowed: a path whose minimum delay grows
// (a route change) keeps the old value. That suits its uses here (CUBIC's
// RTT fallback, logging); a delay-based controller such as BBR would need a
// windowed minimum.
func (e *Estimator) MinRTT() time.Duration { return e.minRTT }

// Config returns the configuration in use, defaults filled in.
func (e *Estimator) Config() Config { return e.config() }
