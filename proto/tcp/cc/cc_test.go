package cc

import (
	"math"
	"strings"
	"testing"
	"time"
)

const mss = 1000

var t0 = time.Unix(1_000_000, 0)

// ackRound acknowledges n segments of mss, one per ACK, spread evenly over
// rtt from now, and returns the time at the end.
func ackRound(c Controller, now time.Time, rtt time.Duration, n int) time.Time {
	for i := range n {
		c.OnAck(AckSample{
			Now:    now.Add(time.Duration(i+1) * rtt / time.Duration(n)),
			Acked:  mss,
			RTT:    rtt,
			MinRTT: rtt,
			Flight: n * mss,
		})
	}
	return now.Add(rtt)
}

// grown returns a controller after slow start from IW (10 segments) to n
// segments, one ACK per segment.
func grown(t *testing.T, name string, n int) Controller {
	t.Helper()
	c, err := New(name)
	if err != nil {
		t.Fatal(err)
	}
	c.Init(mss, t0)
	for range n - 10 {
		c.OnAck(AckSample{Now: t0, Acked: mss, RTT: 100 * time.Millisecond, MinRTT: 100 * time.Millisecond})
	}
	if c.Cwnd() != n*mss {
		t.Fatalf("%s: cwnd %d after slow start, want %d", name, c.Cwnd(), n*mss)
	}
	return c
}

func TestNew(t *testing.T) {
	for name, want := range map[string]string{"": CUBIC, CUBIC: CUBIC, NewReno: NewReno} {
		c, err := New(name)
		if err != nil || c.Name() != want {
			t.Fatalf("New(%q) = %v, %v; want %s", name, c, err, want)
		}
	}
	_, err := New("bbr")
	if err == nil || !strings.Contains(err.Error(), "bbr") || !strings.Contains(err.Error(), CUBIC) || !strings.Contains(err.Error(), NewReno) {
		t.Fatalf("New(bbr) error %v: must name the input and the known algorithms", err)
	}
}

func TestInit(t *testing.T) {
	for _, name := range []string{CUBIC, NewReno} {
		c, _ := New(name)
		for _, tc := range []struct{ mss, iw int }{{1460, 14600}, {536, 5360}, {9000, 18000}, {0, 10}} {
			c.Init(tc.mss, t0)
			if c.Cwnd() != tc.iw || c.Ssthresh() != MaxWindow {
				t.Fatalf("%s Init(%d): cwnd %d ssthresh %d, want %d %d (RFC 6928)", name, tc.mss, c.Cwnd(), c.Ssthresh(), tc.iw, MaxWindow)
			}
		}
	}
}

// RFC 5681 3.1 with RFC 3465 2.2: one RTT of ACKs doubles cwnd, whether an
// ACK covers one segment or two (delayed ACKs, L = 2*SMSS); a stretch ACK
// of three segments counts as two.
func TestSlowStartDoubles(t *testing.T) {
	for _, name := range []string{CUBIC, NewReno} {
		for _, per := range []int{1, 2} {
			c, _ := New(name)
			c.Init(mss, t0)
			for range 10 / per {
				c.OnAck(AckSample{Now: t0, Acked: per * mss})
			}
			if c.Cwnd() != 20*mss {
				t.Fatalf("%s, %d segments per ACK: cwnd %d after one RTT, want %d", name, per, c.Cwnd(), 20*mss)
			}
		}
		c, _ := New(name)
		c.Init(mss, t0)
		c.OnAck(AckSample{Now: t0, Acked: 3 * mss})
		if c.Cwnd() != 12*mss {
			t.Fatalf("%s: stretch ACK of 3 SMSS grew cwnd to %d, want %d (L = 2*SMSS)", name, c.Cwnd(), 12*mss)
		}
	}
}

// RFC 5681 3.1, RFC 3465 2.1: one SMSS per cwnd of bytes acknowledged.
func TestNewRenoCongestionAvoidance(t *testing.T) {
	c := grown(t, NewReno, 40)
	c.EnterRecovery(40*mss, t0)
	if c.Ssthresh() != 20*mss || c.Cwnd() != 20*mss {
		t.Fatalf("after loss with flight 40: cwnd %d ssthresh %d, want 20000 (FlightSize/2)", c.Cwnd(), c.Ssthresh())
	}
	c.ExitRecovery(20*mss, t0)
	now := t0
	for r := 1; r <= 5; r++ {
		now = ackRound(c, now, 100*time.Millisecond, c.Cwnd()/mss)
		if c.Cwnd() != (20+r)*mss {
			t.Fatalf("round %d of congestion avoidance: cwnd %d, want %d", r, c.Cwnd(), (20+r)*mss)
		}
	}
}

func TestLossThresholds(t *testing.T) {
	for _, tc := range []struct {
		name           string
		flight, thresh int
	}{
		{NewReno, 100 * mss, 50 * mss}, // RFC 5681 equation 4
		{NewReno, 3 * mss, 2 * mss},    // floor 2*SMSS
		{CUBIC, 100 * mss, 70 * mss},   // RFC 9438 4.6: beta_cubic = 0.7
		{CUBIC, 2 * mss, 2 * mss},
		{CUBIC, 0, 2 * mss},
	} {
		c := grown(t, tc.name, 100)
		c.EnterRecovery(tc.flight, t0)
		if c.Ssthresh() != tc.thresh || c.Cwnd() != tc.thresh {
			t.Fatalf("%s flight %d: ssthresh %d cwnd %d, want %d", tc.name, tc.flight, c.Ssthresh(), c.Cwnd(), tc.thresh)
		}
	}
}

// RFC 6582 3.2 step 3 option (1): cwnd = min(ssthresh, max(FlightSize,
// SMSS) + SMSS).
func TestExitRecovery(t *testing.T) {
	for _, name := range []string{CUBIC, NewReno} {
		for _, tc := range []struct{ flight, want int }{{200 * mss, 0}, {5 * mss, 6 * mss}, {0, 2 * mss}} {
			c := grown(t, name, 100)
			c.EnterRecovery(100*mss, t0)
			want := tc.want
			if want == 0 {
				want = c.Ssthresh()
			}
			c.ExitRecovery(tc.flight, t0)
			if c.Cwnd() != want {
				t.Fatalf("%s ExitRecovery(%d): cwnd %d, want %d", name, tc.flight, c.Cwnd(), want)
			}
		}
	}
}

// RFC 5681 3.1: timeout -> cwnd = 1 SMSS, ssthresh from flight, held on a
// repeated timeout; the following slow start counts L = 1*SMSS (RFC 3465
// 2.3).
func TestRTO(t *testing.T) {
	for _, tc := range []struct {
		name   string
		thresh int
	}{{NewReno, 50 * mss}, {CUBIC, 70 * mss}} {
		c := grown(t, tc.name, 100)
		c.OnRTO(100*mss, t0)
		if c.Cwnd() != mss || c.Ssthresh() != tc.thresh {
			t.Fatalf("%s RTO: cwnd %d ssthresh %d, want %d %d", tc.name, c.Cwnd(), c.Ssthresh(), mss, tc.thresh)
		}
		c.OnRTO(mss, t0.Add(time.Second)) // the same segment again
		if c.Cwnd() != mss || c.Ssthresh() != tc.thresh {
			t.Fatalf("%s repeated RTO: cwnd %d ssthresh %d, want ssthresh held at %d", tc.name, c.Cwnd(), c.Ssthresh(), tc.thresh)
		}
		c.OnAck(AckSample{Now: t0.Add(2 * time.Second), Acked: 2 * mss})
		if c.Cwnd() != 2*mss {
			t.Fatalf("%s: slow start after RTO grew to %d, want %d (L = 1*SMSS)", tc.name, c.Cwnd(), 2*mss)
		}
		c.OnRTO(2*mss, t0.Add(3*time.Second)) // a new timeout after progress
		if c.Ssthresh() != 2*mss {
			t.Fatalf("%s: RTO after an ACK: ssthresh %d, want recomputed %d", tc.name, c.Ssthresh(), 2*mss)
		}
	}
}

// RFC 5681 4.1: after idle, cwnd = min(IW, cwnd); ssthresh unchanged.
func TestIdleRestart(t *testing.T) {
	for _, name := range []string{CUBIC, NewReno} {
		c := grown(t, name, 50)
		c.EnterRecovery(50*mss, t0)
		th := c.Ssthresh()
		c.OnIdle(t0)
		if c.Cwnd() != 10*mss || c.Ssthresh() != th {
			t.Fatalf("%s: idle from 50 segments: cwnd %d ssthresh %d, want %d %d", name, c.Cwnd(), c.Ssthresh(), 10*mss, th)
		}
		c.OnRTO(mss, t0)
		c.OnIdle(t0)
		if c.Cwnd() != mss {
			t.Fatalf("%s: idle with cwnd 1 segment: cwnd %d, want %d", name, c.Cwnd(), mss)
		}
	}
}

func TestAppLimitedNoGrowth(t *testing.T) {
	for _, name := range []string{CUBIC, NewReno} {
		c := grown(t, name, 20)
		for range 100 {
			c.OnAck(AckSample{Now: t0, Acked: mss, AppLimited: true})
		}
		if c.Cwnd() != 20*mss {
			t.Fatalf("%s: app-limited ACKs grew cwnd to %d", name, c.Cwnd())
		}
	}
}

func TestSetMSS(t *testing.T) {
	for _, name := range []string{CUBIC, NewReno} {
		c := grown(t, name, 40)
		c.EnterRecovery(40*mss, t0)
		th := c.Ssthresh()
		c.SetMSS(mss / 2)
		if c.Cwnd() != th/2 || c.Ssthresh() != th/2 {
			t.Fatalf("%s SetMSS halved: cwnd %d ssthresh %d, want %d", name, c.Cwnd(), c.Ssthresh(), th/2)
		}
		c.OnRTO(0, t0)
		c.SetMSS(4 * mss)
		if c.Cwnd() != 4*mss || c.Ssthresh() != 8*mss {
			t.Fatalf("%s SetMSS raised: cwnd %d ssthresh %d, want %d %d", name, c.Cwnd(), c.Ssthresh(), 4*mss, 8*mss)
		}
	}
}

// RFC 9438 4.2, 4.6, 4.7 by hand: W_max = 100 segments, cwnd after the
// loss 70; K = cbrt((100-70)/0.4) = cbrt(75) = 4.2171633 s and
// W_cubic(0) = 70, W_cubic(1) = 86.6808, W_cubic(2) = 95.6403,
// W_cubic(K) = 100, W_cubic(6) = 102.2667. The next loss at 90 < W_max is
// fast convergence: W_max = 90*(1+0.7)/2 = 76.5.
func TestCubicK(t *testing.T) {
	c := grown(t, CUBIC, 100).(*cubic)
	c.EnterRecovery(100*mss, t0)
	c.ExitRecovery(70*mss, t0)
	c.OnAck(AckSample{Now: t0, Acked: mss, RTT: 100 * time.Millisecond})
	if math.Abs(c.k-4.2171633) > 1e-6 || c.wMax != 100 || c.cwndEpoch != 70 {
		t.Fatalf("K %v W_max %v cwnd_epoch %v, want 4.2171633 100 70", c.k, c.wMax, c.cwndEpoch)
	}
	for _, p := range []struct{ t, w float64 }{{0, 70}, {1, 86.680764}, {2, 95.640336}, {4.2171633, 100}, {6, 102.266703}} {
		if got := c.wCubic(p.t); math.Abs(got-p.w) > 1e-4 {
			t.Fatalf("W_cubic(%v) = %v, want %v", p.t, got, p.w)
		}
	}
	c.cwnd = 90 * mss
	c.EnterRecovery(90*mss, t0)
	if c.wMax != 76.5 || c.Ssthresh() != 63*mss {
		t.Fatalf("fast convergence: W_max %v ssthresh %d, want 76.5 63000", c.wMax, c.Ssthresh())
	}
}

// With an RTT of 100 ms (srtt settles at it) the window tracks the cubic
// curve: at t seconds after the epoch start, cwnd lies between W_cubic(t)
// and W_cubic(t+RTT), the per-ACK target of RFC 9438 4.4 and 4.5, give or
// take a segment. The Reno-friendly estimate grows only ~0.53 segment/RTT
// until it reaches cwnd_prior = 100 (~5.7 s), so the cubic curve governs
// the concave region; at 6 s W_est (~102.8) is the floor.
func TestCubicFollowsCurve(t *testing.T) {
	c := grown(t, CUBIC, 100).(*cubic)
	const rtt = 100 * time.Millisecond
	c.EnterRecovery(100*mss, t0)
	c.ExitRecovery(70*mss, t0)
	now := t0
	checks := map[int]bool{10: true, 20: true, 42: true, 60: true, 80: true}
	for r := 1; r <= 80; r++ {
		now = ackRound(c, now, rtt, c.Cwnd()/mss)
		if !checks[r] {
			continue
		}
		ts := now.Sub(c.epochStart).Seconds()
		w := float64(c.Cwnd()) / mss
		lo, hi := c.wCubic(ts)-1, c.wCubic(ts+rtt.Seconds())+1
		t.Logf("t=%.2fs cwnd %.1f segments, W_cubic(t) %.1f, W_cubic(t+RTT) %.1f", ts, w, c.wCubic(ts), c.wCubic(ts+rtt.Seconds()))
		if w < lo || w > hi {
			t.Fatalf("round %d (t=%.2fs): cwnd %.2f segments outside [%.2f, %.2f]", r, ts, w, lo, hi)
		}
	}
}

// RFC 9438 4.3: on a short-RTT path the cubic curve is slow (W_max = 20,
// cwnd 14: K = cbrt(15) = 2.47 s) and the Reno-friendly estimate governs:
// W_est grows alpha = 3*0.3/1.7 = 0.529 segment/RTT until it reaches
// cwnd_prior = 20 (~11.3 RTTs), then 1 segment/RTT. After 100 RTTs of 10 ms
// that is 20 + (100-11.3) = 108.7 segments, while W_cubic(1 s) is only 18.7.
func TestCubicRenoFriendly(t *testing.T) {
	c := grown(t, CUBIC, 20).(*cubic)
	const rtt = 10 * time.Millisecond
	c.EnterRecovery(20*mss, t0)
	c.ExitRecovery(14*mss, t0)
	if c.Cwnd() != 14*mss {
		t.Fatalf("cwnd %d after recovery, want 14000", c.Cwnd())
	}
	now := t0
	for range 100 {
		now = ackRound(c, now, rtt, c.Cwnd()/mss)
	}
	w := float64(c.Cwnd()) / mss
	if w < 104 || w > 112 || w < c.wCubic(1)*5 {
		t.Fatalf("cwnd %.1f segments after 100 RTTs, want about 108.7 (W_est), W_cubic(1s) %.1f", w, c.wCubic(1))
	}
}

// RFC 9438 4.8: after a timeout the first congestion avoidance stage has
// K = 0 and W_max = W_est = cwnd at its start (here ssthresh = 70).
func TestCubicTimeoutEpoch(t *testing.T) {
	c := grown(t, CUBIC, 100).(*cubic)
	c.OnRTO(100*mss, t0)
	now := t0
	for c.Cwnd() < c.Ssthresh() {
		now = ackRound(c, now, 100*time.Millisecond, c.Cwnd()/mss)
	}
	c.OnAck(AckSample{Now: now, Acked: mss, RTT: 100 * time.Millisecond})
	if c.k != 0 || c.wMax != 70 || c.cwndEpoch != 70 || c.wEst < 70 {
		t.Fatalf("after timeout: K %v W_max %v cwnd_epoch %v W_est %v, want 0 70 70 >=70", c.k, c.wMax, c.cwndEpoch, c.wEst)
	}
}

// Time spent application-limited does not advance t (RFC 9438 5.8): two
// controllers fed the same ACKs, one with a 10 s app-limited gap, end with
// the same K-relative position.
func TestCubicAppLimitedFreezesEpoch(t *testing.T) {
	a := grown(t, CUBIC, 100).(*cubic)
	a.EnterRecovery(100*mss, t0)
	a.ExitRecovery(70*mss, t0)
	a.OnAck(AckSample{Now: t0, Acked: mss})
	start := a.epochStart
	a.OnAck(AckSample{Now: t0.Add(time.Second), AppLimited: true})
	a.OnAck(AckSample{Now: t0.Add(11 * time.Second), Acked: mss})
	if got := a.epochStart.Sub(start); got != 10*time.Second {
		t.Fatalf("epoch start moved by %v, want 10s", got)
	}
}

func TestNoAllocs(t *testing.T) {
	for _, name := range []string{CUBIC, NewReno} {
		c, _ := New(name)
		c.Init(mss, t0)
		now := t0
		n := testing.AllocsPerRun(100, func() {
			now = now.Add(time.Millisecond)
			c.OnAck(AckSample{Now: now, Acked: mss, RTT: time.Millisecond})
			c.OnAck(AckSample{Now: now, Acked: mss, AppLimited: true})
			c.EnterRecovery(c.Cwnd(), now)
			c.ExitRecovery(c.Cwnd(), now)
			c.OnAck(AckSample{Now: now, Acked: mss, RTT: time.Millisecond})
			c.OnRTO(c.Cwnd(), now)
			c.OnIdle(now)
			c.SetMSS(mss)
			_, _ = c.Cwnd(), c.Ssthresh()
		})
		if n != 0 {
			t.Fatalf("%s: %v allocations per run", name, n)
		}
	}
}

func BenchmarkOnAck(b *testing.B) {
	for _, name := range []string{CUBIC, NewReno} {
		b.Run(name, func(b *testing.B) {
			c, _ := New(name)
			c.Init(1448, t0)
			c.EnterRecovery(1000*1448, t0) // congestion avoidance from here
			now := t0
			b.ReportAllocs()
			for i := range b.N {
				now = now.Add(10 * time.Microsecond)
				c.OnAck(AckSample{Now: now, Acked: 1448, RTT: 10 * time.Millisecond, MinRTT: 10 * time.Millisecond, Flight: c.Cwnd()})
				if i%100_000 == 99_999 {
					c.EnterRecovery(c.Cwnd(), now)
				}
			}
		})
	}
}
