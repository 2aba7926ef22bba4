// Package timer is the per-poll-loop timer service of the stack: a binary
// heap of intrusive timers, driven by the loop with the current time. A
// Timer is embedded in the object it belongs to (a reassembly buffer, later a
// TCP connection's retransmission and delayed-ACK timers), so arming,
// re-arming and stopping allocate nothing.
//
// A Queue belongs to one goroutine (the poll loop that owns the objects); it
// is not safe for concurrent use.
package timer

import "time"

// Timer fires its function once when its queue is run at or after its
// deadline. The zero Timer is idle; Init sets the function.
type Timer struct {
	when  time.Time
	fn    func(now time.Time)
	index int // position in the heap + 1; 0 when not scheduled
	seq   uint64
}

// Init sets the function the timer calls when it fires.
func (t *Timer) Init(fn func(now time.Time)) { t.fn = fn }

// Pending reports whether the timer is scheduled.
func (t *Timer) Pending() bool { return t.index != 0 }

// When returns the deadline of a pending timer.
func (t *Timer) When() time.Time { return t.when }

// Queue is a set of pending timers ordered by deadline (ties: first
// scheduled first).
type Queue struct {
	heap []*Timer
	seq  uint64
}

// Len returns the number of pending timers.
func (q *Queue) Len() int { return len(q.heap) }

// Schedule arms t to fire at when, moving it if it is already pending.
func (q *Queue) Schedule(t *Timer, when time.Time) {
	q.seq++
	t.seq = q.seq
	t.when = when
	if t.index != 0 {
		i := t.index - 1
		q.up(i)
		q.down(t.index - 1)
		return
	}
	q.heap = append(q.heap, t)
	t.index = len(q.heap)
	q.up(len(q.heap) - 1)
}

// Stop disarms t and reports whether it was pending.
func (q *Queue) Stop(t *Timer) bool {
	if t.index == 0 {
		return false
	}
	i := t.index - 1
	last := len(q.heap) - 1
	if i != last {
		q.swap(i, last)
	}
	q.heap[last] = nil
	q.heap = q.heap[:last]
	t.index = 0
	if i != last {
		q.up(i)
		q.down(i)
	}
	return true
}

// Next returns the earliest deadline, if any timer is pending.
func (q *Queue) Next() (time.Time, bool) {
	if len(q.heap) == 0 {
		return time.Time{}, false
	}
	return q.heap[0].when, true
}

// Run fires, in deadline order, every timer due at now and returns how many
// fired. A timer's function may schedule timers, including itself; one
// scheduled for now or earlier from inside Run fires in the same Run.
func (q *Queue) Run(now time.Time) int {
	n := 0
	for len(q.heap) > 0 && !q.heap[0].when.After(now) {
		t := q.heap[0]
		q.Stop(t)
		n++
		if t.fn != nil {
			t.fn(now)
		}
	}
	return n
}

func (q *Queue) less(i, j int) bool {
	a, b := q.heap[i], q.heap[j]
	if a.when.Equal(b.when) {
		return a.seq < b.seq
	}
	return a.when.Before(b.when)
}

func (q *Queue) swap(i, j int) {
	q.heap[i], q.heap[j] = q.heap[j], q.heap[i]
	q.heap[i].index = i + 1
	q.heap[j].index = j + 1
}

func (q *Queue) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			return
		}
		q.swap(i, p)
		i = p
	}
}

func (q *Queue) down(i int) {
	n := len(q.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && q.less(r, l) {
			m = r
		}
		if !q.less(m, i) {
			return
		}
		q.swap(i, m)
		i = m
	}
}
