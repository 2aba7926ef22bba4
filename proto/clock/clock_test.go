package clock

import (
	"testing"
	"time"
)

func TestFakeFiresInOrderAtDeadline(t *testing.T) {
	start := time.Unix(1000, 0)
	c := NewFake(start)
	var got []time.Duration
	for _, d := range []time.Duration{3 * time.Second, time.Second, 2 * time.Second} {
		c.AfterFunc(d, func() { got = append(got, c.Now().Sub(start)) })
	}
	stopped := c.AfterFunc(1500*time.Millisecond, func() { t.Error("stopped timer fired") })
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop: want true then false")
	}
	c.Advance(2 * time.Second)
	if len(got) != 2 || got[0] != time.Second || got[1] != 2*time.Second {
		t.Fatalf("after 2s fired at %v, want [1s 2s]", got)
	}
	if c.Pending() != 1 {
		t.Fatalf("pending %d, want 1", c.Pending())
	}
	c.Advance(time.Hour)
	if len(got) != 3 || got[2] != 3*time.Second {
		t.Fatalf("fired at %v, want third at 3s", got)
	}
	if c.Now().Sub(start) != time.Hour+2*time.Second {
		t.Fatalf("now = %v", c.Now().Sub(start))
	}
}

func TestFakeTimerScheduledFromCallback(t *testing.T) {
	c := NewFake(time.Unix(0, 0))
	n := 0
	var tick func()
	tick = func() {
		n++
		c.AfterFunc(time.Second, tick)
	}
	c.AfterFunc(time.Second, tick)
	c.Advance(10 * time.Second)
	if n != 10 {
		t.Fatalf("periodic timer fired %d times in 10s, want 10", n)
	}
}
