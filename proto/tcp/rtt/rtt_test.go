package rtt

import (
	"testing"
	"time"

	"pgregory.net/rapid"
)

const ms = time.Millisecond

func TestInitialRTO(t *testing.T) {
	e := New(Config{})
	if e.HasSample() || e.RTO() != time.Second {
		t.Fatalf("fresh estimator: has %v RTO %v, want false 1s (RFC 6298 2.1)", e.HasSample(), e.RTO())
	}
	var z Estimator // the zero value behaves as New(Config{})
	if z.RTO() != time.Second || z.Config() != e.Config() {
		t.Fatalf("zero Estimator: RTO %v config %+v", z.RTO(), z.Config())
	}
	want := Config{Min: 200 * ms, Max: 120 * time.Second, Initial: time.Second, Granularity: ms}
	if e.Config() != want {
		t.Fatalf("defaults %+v, want %+v", e.Config(), want)
	}
}

// RFC 6298 2.2 and 2.3 worked by hand.
func TestFormulas(t *testing.T) {
	e := New(Config{Min: time.Nanosecond})
	e.Sample(100 * ms)
	// 2.2: SRTT = 100, RTTVAR = 50, RTO = 100 + 4*50 = 300.
	if e.SRTT() != 100*ms || e.RTTVar() != 50*ms || e.RTO() != 300*ms {
		t.Fatalf("after first sample: SRTT %v RTTVAR %v RTO %v, want 100ms 50ms 300ms", e.SRTT(), e.RTTVar(), e.RTO())
	}
	e.Sample(200 * ms)
	// 2.3: RTTVAR = 3/4*50 + 1/4*|100-200| = 37.5 + 25 = 62.5;
	// SRTT = 7/8*100 + 1/8*200 = 112.5; RTO = 112.5 + 250 = 362.5.
	if e.RTTVar() != 62500*time.Microsecond || e.SRTT() != 112500*time.Microsecond || e.RTO() != 362500*time.Microsecond {
		t.Fatalf("after second sample: SRTT %v RTTVAR %v RTO %v, want 112.5ms 62.5ms 362.5ms", e.SRTT(), e.RTTVar(), e.RTO())
	}
	e.Sample(50 * ms)
	// RTTVAR = 3/4*62.5 + 1/4*62.5 = 62.5; SRTT = 7/8*112.5 + 50/8 = 104.6875.
	if e.RTTVar() != 62500*time.Microsecond || e.SRTT() != 104687500*time.Nanosecond || e.MinRTT() != 50*ms {
		t.Fatalf("after third sample: SRTT %v RTTVAR %v min %v", e.SRTT(), e.RTTVar(), e.MinRTT())
	}
}

// Constant samples drive RTTVAR towards 0, and then G is the floor of the
// variance term: RTO = SRTT + max(G, 4*RTTVAR).
func TestGranularity(t *testing.T) {
	e := New(Config{Min: time.Nanosecond, Granularity: 10 * ms})
	for range 200 {
		e.Sample(100 * ms)
	}
	if e.RTTVar() != 0 || e.RTO() != 110*ms {
		t.Fatalf("RTTVAR %v RTO %v, want 0 and 110ms", e.RTTVar(), e.RTO())
	}
}

func TestClamp(t *testing.T) {
	e := New(Config{})
	e.Sample(ms) // 1 + 4*0.5 = 3 ms, raised to Min
	if e.RTO() != 200*ms {
		t.Fatalf("RTO %v, want Min 200ms", e.RTO())
	}
	e = New(Config{Max: 10 * time.Second})
	e.Sample(20 * time.Second)
	if e.RTO() != 10*time.Second {
		t.Fatalf("RTO %v, want Max 10s", e.RTO())
	}
	e = New(Config{Min: time.Second, Max: ms}) // Max < Min is raised to Min
	if e.RTO() != time.Second || e.Config().Max != time.Second {
		t.Fatalf("RTO %v Max %v, want 1s", e.RTO(), e.Config().Max)
	}
}

func TestBackoff(t *testing.T) {
	e := New(Config{Max: 60 * time.Second})
	want := time.Second
	for i := 1; i <= 10; i++ {
		want = min(2*want, 60*time.Second)
		if got := e.Backoff(); got != want || e.RTO() != want || e.Backoffs() != i {
			t.Fatalf("backoff %d: got %v RTO %v count %d, want %v", i, got, e.RTO(), e.Backoffs(), want)
		}
	}
	// 1,2,4,...,32 then capped: after 10 doublings it must sit at Max.
	if e.RTO() != 60*time.Second {
		t.Fatalf("RTO %v, want cap 60s", e.RTO())
	}
	// A new sample ends the backoff (Karn, RFC 6298 section 3 and 5).
	e.Sample(100 * ms)
	if e.Backoffs() != 0 || e.RTO() != 300*ms {
		t.Fatalf("after sample: RTO %v backoffs %d, want 300ms 0", e.RTO(), e.Backoffs())
	}
	e.Backoff()
	e.ResetBackoff()
	if e.RTO() != 300*ms {
		t.Fatalf("after ResetBackoff: RTO %v", e.RTO())
	}
	e.Reset()
	if e.HasSample() || e.RTO() != time.Second || e.Config().Max != 60*time.Second {
		t.Fatalf("after Reset: has %v RTO %v cfg %+v", e.HasSample(), e.RTO(), e.Config())
	}
}

func TestNegativeSampleIgnored(t *testing.T) {
	e := New(Config{})
	e.Sample(-ms)
	if e.HasSample() {
		t.Fatal("negative sample taken")
	}
}

// Property: whatever the configuration and the sequence of samples and
// backoffs, Min <= RTO <= Max, SRTT stays within the samples' range, and
// MinRTT is the smallest sample.
func TestRTOBounds(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := Config{
			Min:         time.Duration(rapid.Int64Range(0, int64(2*time.Second)).Draw(t, "min")),
			Max:         time.Duration(rapid.Int64Range(0, int64(200*time.Second)).Draw(t, "max")),
			Initial:     time.Duration(rapid.Int64Range(0, int64(5*time.Second)).Draw(t, "initial")),
			Granularity: time.Duration(rapid.Int64Range(0, int64(100*ms)).Draw(t, "g")),
		}
		e := New(cfg)
		c := e.Config()
		lo, hi, least := time.Duration(1<<62), time.Duration(0), time.Duration(1<<62)
		n := rapid.IntRange(0, 100).Draw(t, "n")
		for i := range n {
			if rapid.Bool().Draw(t, "backoff") {
				e.Backoff()
			} else {
				r := time.Duration(rapid.Int64Range(0, int64(300*time.Second)).Draw(t, "r"))
				e.Sample(r)
				lo, hi, least = min(lo, r), max(hi, r), min(least, r)
			}
			if rto := e.RTO(); rto < c.Min || rto > c.Max {
				t.Fatalf("step %d: RTO %v outside [%v, %v]", i, rto, c.Min, c.Max)
			}
			if e.HasSample() && (e.SRTT() < lo || e.SRTT() > hi || e.MinRTT() != least) {
				t.Fatalf("step %d: SRTT %v outside [%v, %v] or min %v != %v", i, e.SRTT(), lo, hi, e.MinRTT(), least)
			}
		}
	})
}

func TestNoAllocs(t *testing.T) {
	e := New(Config{})
	if n := testing.AllocsPerRun(100, func() {
		e.Sample(10 * ms)
		e.Backoff()
		_ = e.RTO()
	}); n != 0 {
		t.Fatalf("%v allocations per run", n)
	}
}

func BenchmarkSample(b *testing.B) {
	e := New(Config{})
	for i := range b.N {
		e.Sample(time.Duration(i&1023) * time.Microsecond)
		_ = e.RTO()
	}
}
