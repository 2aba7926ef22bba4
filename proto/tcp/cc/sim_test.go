package cc

import (
	"testing"
	"time"
)

// pipe is a fixed-capacity path model in virtual time: each round trip the
// sender has cwnd in flight; if that exceeds capacity segments (BDP plus
// buffer), the round loses a segment: one loss event (EnterRecovery with
// the flight), a round trip of recovery, then ExitRecovery. Otherwise every
// segment is acknowledged, one ACK each, spread over the RTT.
type pipe struct {
	capacity int // segments
	rtt      time.Duration
}

// simResult summarises a run after the first loss (the slow start
// overshoot is excluded).
type simResult struct {
	losses int
	// peaks and troughs: cwnd (segments) at each loss and right after it.
	peaks, troughs []int
	// recover: for each loss after the first, the RTTs from the reduction
	// until cwnd is back to 95% of the window at that loss (W_max).
	recover []int
}

func (p pipe) run(c Controller, rounds int) simResult {
	var res simResult
	now := t0
	c.Init(mss, now)
	lossAt, wmax := -1, 0
	for r := 0; r < rounds; r++ {
		w := c.Cwnd() / mss
		if w > p.capacity {
			c.EnterRecovery(w*mss, now)
			now = now.Add(p.rtt)
			c.ExitRecovery(c.Cwnd(), now)
			res.losses++
			res.peaks = append(res.peaks, w)
			res.troughs = append(res.troughs, c.Cwnd()/mss)
			lossAt, wmax = r, w
			continue
		}
		if lossAt >= 0 && wmax > 0 && w*100 >= wmax*95 {
			if res.losses > 1 {
				res.recover = append(res.recover, r-lossAt)
			}
			wmax = 0
		}
		now = ackRound(c, now, p.rtt, w)
	}
	return res
}

func mean(v []int) float64 {
	s := 0
	for _, x := range v {
		s += x
	}
	return float64(s) / float64(max(len(v), 1))
}

// A large BDP (1000 segments, 100 ms RTT, 3000 RTTs = 300 s of virtual
// time): both algorithms saw-tooth between ~capacity and their decrease
// (0.7 for CUBIC, 0.5 for NewReno). NewReno climbs back 1 segment/RTT,
// ~452 RTTs to 95% of W_max; CUBIC's curve returns to W_max in K =
// cbrt(0.3*1000/0.4) = 9.1 s = 91 RTTs, and to 95% in 42 RTTs.
func TestSimulationLargeBDP(t *testing.T) {
	p := pipe{capacity: 1000, rtt: 100 * time.Millisecond}
	cu, _ := New(CUBIC)
	nr, _ := New(NewReno)
	rc, rn := p.run(cu, 3000), p.run(nr, 3000)
	t.Logf("cubic: %d losses, peaks %v.., troughs %v.., recovery to 95%% W_max %v RTTs", rc.losses, rc.peaks[:min(4, len(rc.peaks))], rc.troughs[:min(4, len(rc.troughs))], rc.recover)
	t.Logf("newreno: %d losses, peaks %v.., troughs %v.., recovery to 95%% W_max %v RTTs", rn.losses, rn.peaks[:min(4, len(rn.peaks))], rn.troughs[:min(4, len(rn.troughs))], rn.recover)
	if len(rc.recover) < 10 || len(rn.recover) < 3 {
		t.Fatalf("too few sawtooth cycles: cubic %d, newreno %d", len(rc.recover), len(rn.recover))
	}
	// Sawtooth shape: every steady-state loss happens just above capacity
	// and is followed by the algorithm's decrease.
	for i := 1; i < len(rc.peaks); i++ {
		if rc.peaks[i] < 1000 || rc.peaks[i] > 1010 || rc.troughs[i] != rc.peaks[i]*7/10 {
			t.Fatalf("cubic cycle %d: peak %d trough %d, want (1000,1010] and 0.7*peak", i, rc.peaks[i], rc.troughs[i])
		}
	}
	for i := 1; i < len(rn.peaks); i++ {
		if rn.peaks[i] != 1001 || rn.troughs[i] != 500 {
			t.Fatalf("newreno cycle %d: peak %d trough %d, want 1001 500", i, rn.peaks[i], rn.troughs[i])
		}
	}
	// NewReno: 500 -> 951 at 1 segment/RTT is 451 RTTs, +1 for recovery.
	for i, r := range rn.recover {
		if r < 450 || r > 456 {
			t.Fatalf("newreno cycle %d: %d RTTs to 95%% of W_max, want ~452", i, r)
		}
	}
	// CUBIC alternates two cycles, both by hand from RFC 9438 4.2 and 4.7:
	// after a loss at 1001 with the previous W_max at or below it, W_max =
	// 1001, K = cbrt(300.3/0.4) = 9.09 s and W_cubic(t) = 951 at t = K -
	// cbrt(50/0.4) = 4.09 s: 41 RTTs, +1 for recovery = 42; that cycle
	// overshoots to 1005 on the flat top. A loss below the previous W_max
	// (1001 < 1005) then triggers fast convergence: W_max =
	// 1001*0.85 = 850.85, K = cbrt(150.15/0.4) = 7.21 s, and 951 is reached
	// on the convex side at K + cbrt(100.15/0.4) = 13.51 s: ~137 RTTs.
	fast, slow := 0, 0
	for i, r := range rc.recover {
		switch {
		case r >= 40 && r <= 44:
			fast++
		case r >= 134 && r <= 140:
			slow++
		default:
			t.Fatalf("cubic cycle %d: %d RTTs to 95%% of W_max, want ~42 or, after fast convergence, ~137", i, r)
		}
	}
	mc, mn := mean(rc.recover), mean(rn.recover)
	if fast == 0 || slow == 0 || mc*4 > mn {
		t.Fatalf("cubic: %d fast and %d fast-convergence cycles, mean %.1f RTTs; want both kinds and under a quarter of newreno's %.1f", fast, slow, mc, mn)
	}
}

// A small BDP (30 segments, 10 ms RTT): the cubic curve alone would take
// K = cbrt(0.3*30/0.4) = 2.8 s = 280 RTTs to return to W_max, but the
// Reno-friendly region (RFC 9438 4.3) keeps CUBIC at least as fast as
// Reno: W_est climbs from 21 at ~0.53 segment/RTT, ~17 RTTs to W_max.
func TestSimulationSmallBDPRenoFriendly(t *testing.T) {
	p := pipe{capacity: 30, rtt: 10 * time.Millisecond}
	cu, _ := New(CUBIC)
	rc := p.run(cu, 2000)
	t.Logf("cubic: %d losses, peaks %v.., recovery %v", rc.losses, rc.peaks[:min(4, len(rc.peaks))], rc.recover[:min(8, len(rc.recover))])
	if m := mean(rc.recover); m > 25 || rc.losses < 2000/40 {
		t.Fatalf("cubic on a small BDP: mean recovery %.1f RTTs, %d losses in 2000 RTTs; want Reno-like (< 25 RTTs)", m, rc.losses)
	}
}
