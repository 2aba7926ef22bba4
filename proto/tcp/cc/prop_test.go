package cc

import (
	"testing"
	"time"

	"pgregory.net/rapid"
)

// Property, over random event sequences for both algorithms:
//   - MSS <= cwnd <= MaxWindow (2^30 bytes, the bound on any cwnd) and
//     ssthresh <= MaxWindow, always;
//   - ssthresh >= 2*SMSS after any loss or timeout (RFC 5681 eq. 4, RFC
//     9438 4.6) and equals the algorithm's formula unless the timeout is a
//     repeat (then it is unchanged);
//   - an ACK never lowers cwnd nor changes ssthresh; an app-limited ACK
//     changes neither; no ACK grows cwnd by more than max(Acked, 2*SMSS)
//     (+1 byte of CUBIC's carried fraction);
//   - after EnterRecovery cwnd = ssthresh, after ExitRecovery cwnd <=
//     ssthresh, after OnRTO cwnd = SMSS, after OnIdle cwnd = min(IW, old);
//   - CUBIC in congestion avoidance: cwnd >= the Reno-friendly W_est
//     (less the fraction of a byte carried between ACKs).
func TestProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		name := rapid.SampledFrom([]string{CUBIC, NewReno}).Draw(rt, "algorithm")
		c, err := New(name)
		if err != nil {
			rt.Fatal(err)
		}
		m := rapid.IntRange(1, 9000).Draw(rt, "mss")
		now := t0
		c.Init(m, now)
		rtoRepeat := false
		steps := rapid.IntRange(1, 300).Draw(rt, "steps")
		for i := range steps {
			now = now.Add(time.Duration(rapid.Int64Range(0, int64(2*time.Second)).Draw(rt, "dt")))
			cw, th := c.Cwnd(), c.Ssthresh()
			op := rapid.IntRange(0, 9).Draw(rt, "op")
			switch {
			case op <= 4: // most events are ACKs
				s := AckSample{
					Now:        now,
					Acked:      rapid.IntRange(0, 3*cw).Draw(rt, "acked"),
					RTT:        time.Duration(rapid.Int64Range(0, int64(time.Second)).Draw(rt, "rtt")),
					AppLimited: rapid.IntRange(0, 4).Draw(rt, "applimited") == 0,
					Flight:     cw,
				}
				s.MinRTT = s.RTT / 2
				c.OnAck(s)
				rtoRepeat = false
				if c.Ssthresh() != th || c.Cwnd() < cw {
					rt.Fatalf("step %d: ACK changed ssthresh %d->%d or lowered cwnd %d->%d", i, th, c.Ssthresh(), cw, c.Cwnd())
				}
				if s.AppLimited && c.Cwnd() != cw {
					rt.Fatalf("step %d: app-limited ACK grew cwnd %d->%d", i, cw, c.Cwnd())
				}
				if g := c.Cwnd() - cw; g > max(s.Acked, 2*c.(interface{ mssOf() int }).mssOf())+1 {
					rt.Fatalf("step %d: ACK of %d grew cwnd by %d", i, s.Acked, g)
				}
				if cu, ok := c.(*cubic); ok && cu.epochValid && !s.AppLimited && s.Acked > 0 && c.Cwnd() < MaxWindow {
					// cwnd is whole bytes; up to one byte is carried in frac.
					if est := int(cu.wEst * float64(cu.mss)); c.Cwnd()+1 < est {
						rt.Fatalf("step %d: CUBIC cwnd %d below W_est %d", i, c.Cwnd(), est)
					}
				}
			case op == 5:
				flight := rapid.IntRange(0, 2*cw).Draw(rt, "flight")
				c.EnterRecovery(flight, now)
				rtoRepeat = false
				checkLoss(rt, c, flight, false, th)
				if c.Cwnd() != c.Ssthresh() {
					rt.Fatalf("step %d: after EnterRecovery cwnd %d != ssthresh %d", i, c.Cwnd(), c.Ssthresh())
				}
				c.ExitRecovery(rapid.IntRange(0, 2*cw).Draw(rt, "exitflight"), now)
				if c.Cwnd() > c.Ssthresh() {
					rt.Fatalf("step %d: after ExitRecovery cwnd %d > ssthresh %d", i, c.Cwnd(), c.Ssthresh())
				}
			case op == 6:
				flight := rapid.IntRange(0, 2*cw).Draw(rt, "flight")
				c.OnRTO(flight, now)
				checkLoss(rt, c, flight, rtoRepeat, th)
				rtoRepeat = true
				if c.Cwnd() != c.(interface{ mssOf() int }).mssOf() {
					rt.Fatalf("step %d: after RTO cwnd %d", i, c.Cwnd())
				}
			case op == 7:
				c.OnIdle(now)
				if want := min(cw, InitialWindow(c.(interface{ mssOf() int }).mssOf())); c.Cwnd() != want || c.Ssthresh() != th {
					rt.Fatalf("step %d: after idle cwnd %d ssthresh %d, want %d %d", i, c.Cwnd(), c.Ssthresh(), want, th)
				}
			case op == 8:
				c.SetMSS(rapid.IntRange(1, 9000).Draw(rt, "newmss"))
			case op == 9: // a burst of ACKs in one RTT, to reach large windows
				rtt := time.Duration(rapid.Int64Range(1, int64(time.Second)).Draw(rt, "burstrtt"))
				n := min(c.Cwnd()/c.(interface{ mssOf() int }).mssOf(), 2000)
				for k := range n {
					c.OnAck(AckSample{Now: now.Add(time.Duration(k) * rtt / time.Duration(n)), Acked: c.(interface{ mssOf() int }).mssOf(), RTT: rtt})
				}
				now = now.Add(rtt)
				rtoRepeat = false
			}
			mssNow := c.(interface{ mssOf() int }).mssOf()
			if c.Cwnd() < mssNow || c.Cwnd() > MaxWindow || c.Ssthresh() > MaxWindow || c.Ssthresh() < 2*mssNow && c.Ssthresh() != th {
				rt.Fatalf("step %d (op %d): cwnd %d ssthresh %d mss %d out of bounds", i, op, c.Cwnd(), c.Ssthresh(), mssNow)
			}
		}
	})
}

// checkLoss checks ssthresh after a loss or timeout with the given flight.
func checkLoss(rt *rapid.T, c Controller, flight int, repeat bool, before int) {
	m := c.(interface{ mssOf() int }).mssOf()
	want := max(flight/2, 2*m)
	if c.Name() == CUBIC {
		want = max(flight*7/10, 2*m)
	}
	want = min(want, MaxWindow)
	if repeat {
		want = before
	}
	if c.Ssthresh() != want || c.Ssthresh() < 2*m && !repeat {
		rt.Fatalf("%s: ssthresh %d after loss with flight %d (repeat %v), want %d", c.Name(), c.Ssthresh(), flight, repeat, want)
	}
}

// mssOf returns the MSS (for tests).
func (w *window) mssOf() int { return w.mss }
