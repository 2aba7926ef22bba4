package timer

import (
	"sort"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// Property: whatever sequence of Schedule/Stop/Run operations is applied,
// Run fires exactly the pending timers whose deadline is not after now, in
// deadline order, and leaves the others pending.
func TestQueueMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var q Queue
		base := time.Unix(0, 0)
		const n = 8
		timers := make([]Timer, n)
		model := map[int]time.Duration{} // pending timer -> deadline
		var fired []int
		for i := range timers {
			i := i
			timers[i].Init(func(time.Time) { fired = append(fired, i) })
		}
		now := time.Duration(0)
		for step := 0; step < 50; step++ {
			switch rapid.IntRange(0, 2).Draw(t, "op") {
			case 0:
				i := rapid.IntRange(0, n-1).Draw(t, "timer")
				d := now + time.Duration(rapid.IntRange(0, 20).Draw(t, "delay"))*time.Millisecond
				q.Schedule(&timers[i], base.Add(d))
				model[i] = d
			case 1:
				i := rapid.IntRange(0, n-1).Draw(t, "timer")
				_, want := model[i]
				if got := q.Stop(&timers[i]); got != want {
					t.Fatalf("Stop(%d) = %v, want %v", i, got, want)
				}
				delete(model, i)
			case 2:
				now += time.Duration(rapid.IntRange(0, 10).Draw(t, "advance")) * time.Millisecond
				var due []int
				for i, d := range model {
					if d <= now {
						due = append(due, i)
					}
				}
				sort.Slice(due, func(a, b int) bool { return model[due[a]] < model[due[b]] })
				fired = fired[:0]
				if got := q.Run(base.Add(now)); got != len(due) {
					t.Fatalf("Run fired %d, want %d", got, len(due))
				}
				for k, i := range fired {
					if model[i] != model[due[k]] {
						t.Fatalf("fired out of order: %v, due %v", fired, due)
					}
				}
				for _, i := range due {
					delete(model, i)
				}
			}
			if q.Len() != len(model) {
				t.Fatalf("Len %d, model %d", q.Len(), len(model))
			}
			for i := range timers {
				_, want := model[i]
				if timers[i].Pending() != want {
					t.Fatalf("timer %d Pending=%v, want %v", i, timers[i].Pending(), want)
				}
			}
		}
	})
}

func TestScheduleAllocatesNothing(t *testing.T) {
	var q Queue
	var ts [16]Timer
	now := time.Unix(0, 0)
	for i := range ts {
		q.Schedule(&ts[i], now.Add(time.Duration(i)))
	}
	allocs := testing.AllocsPerRun(100, func() {
		for i := range ts {
			q.Schedule(&ts[i], now.Add(time.Duration(16-i)))
		}
		q.Stop(&ts[3])
		q.Run(now.Add(5))
		q.Schedule(&ts[3], now)
	})
	if allocs != 0 {
		t.Fatalf("timer operations allocate %v per run", allocs)
	}
}
