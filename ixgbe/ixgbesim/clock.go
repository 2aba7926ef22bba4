package ixgbesim

import (
	"container/heap"
	"sync"
	"sync/atomic"
	"time"
)

// Mode says how the simulated device moves.
type Mode int

const (
	// FreeRunning: engines run on goroutines (after Start) in real time;
	// timed device events (reset completion, link-up) happen in real time.
	FreeRunning Mode = iota
	// Stepped: nothing moves unless the test calls Step*, or Sleep on the
	// virtual Clock. Deterministic.
	Stepped
)

// String names the mode.
func (m Mode) String() string {
	switch m {
	case FreeRunning:
		return "free-running"
	case Stepped:
		return "stepped"
	}
	return "unknown"
}

// virtualEpoch is where stepped clocks start: a fixed instant, so that
// stepped runs are reproducible to the nanosecond.
var virtualEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// poller is a source of timed work other than one-shot timers: a cable's
// delay line. nextDue reports its earliest pending deadline.
type poller interface {
	nextDue() (time.Time, bool)
	runDue(now time.Time)
}

// Clock is the time source of a simulated NIC and of the driver's waits (it
// satisfies ixgbe.Clock). In FreeRunning mode it is the wall clock, and
// device events fall due in real time; they run when the device is next
// touched (a register read, an engine pass, Sleep). In Stepped mode it is a
// virtual clock: time moves only in Sleep (or Advance), which runs every
// event falling due on the way, in deadline order.
type Clock struct {
	virtual bool

	mu      sync.Mutex
	now     time.Time // virtual time (Stepped)
	timers  timerHeap
	seq     uint64
	pollers []poller
	running bool // a runDue pass is in progress (no re-entry)

	// nextDue caches the earliest timer deadline (UnixNano) so that the
	// free-running fast path can skip the lock; MaxInt64 when none.
	nextDue  atomic.Int64
	npollers atomic.Int32
	// nowNano mirrors now (UnixNano) for readers that must not take mu:
	// the receive MAC runs under a cable's lock, which the clock's
	// pollers take while mu is held.
	nowNano atomic.Int64
}

func (c *Clock) setNowLocked(t time.Time) {
	c.now = t
	c.nowNano.Store(t.UnixNano())
}

// nowNanoNoLock returns the current time as UnixNano without taking the
// clock's lock.
func (c *Clock) nowNanoNoLock() int64 {
	if !c.virtual {
		return time.Now().UnixNano()
	}
	return c.nowNano.Load()
}

// tryNow returns the current time if it can be read without waiting for
// the clock's lock.
func (c *Clock) tryNow() (time.Time, bool) {
	if !c.virtual {
		return time.Now(), true
	}
	if !c.mu.TryLock() {
		return time.Time{}, false
	}
	defer c.mu.Unlock()
	return c.now, true
}

// NewClock returns a clock for the given mode: the wall clock for
// FreeRunning, a virtual clock starting at a fixed instant for Stepped.
func NewClock(mode Mode) *Clock {
	c := &Clock{virtual: mode == Stepped, now: virtualEpoch}
	c.nowNano.Store(virtualEpoch.UnixNano())
	c.nextDue.Store(maxInt64)
	return c
}

const maxInt64 = int64(^uint64(0) >> 1)

// Virtual reports whether the clock is virtual (Stepped mode).
func (c *Clock) Virtual() bool { return c.virtual }

// Now returns the current time.
func (c *Clock) Now() time.Time {
	if !c.virtual {
		return time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep waits for d. On the virtual clock it advances time by d at once,
// running every device event that falls due on the way.
func (c *Clock) Sleep(d time.Duration) {
	if !c.virtual {
		if d > 0 {
			time.Sleep(d)
		}
		c.RunDue()
		return
	}
	c.Advance(d)
}

// Advance moves the virtual clock forward by d, running due events in
// deadline order with the clock set to each event's deadline. On the wall
// clock it only runs what is due.
func (c *Clock) Advance(d time.Duration) {
	if !c.virtual {
		c.RunDue()
		return
	}
	if d < 0 {
		d = 0
	}
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		at, ok := c.earliestLocked()
		if !ok || at.After(target) {
			c.setNowLocked(target)
			c.mu.Unlock()
			return
		}
		if at.After(c.now) {
			c.setNowLocked(at)
		}
		c.mu.Unlock()
		c.RunDue()
	}
}

// earliest returns the earliest deadline among timers and pollers.
func (c *Clock) earliest() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.earliestLocked()
}

// earliestLocked returns the earliest deadline among timers and pollers.
func (c *Clock) earliestLocked() (time.Time, bool) {
	var best time.Time
	found := false
	if len(c.timers) > 0 {
		best, found = c.timers[0].at, true
	}
	for _, p := range c.pollers {
		if at, ok := p.nextDue(); ok && (!found || at.Before(best)) {
			best, found = at, true
		}
	}
	return best, found
}

// AfterFunc runs f once the clock reaches now+d (for a wall clock: the
// first RunDue after that instant). f runs without the clock's lock held.
func (c *Clock) AfterFunc(d time.Duration, f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var now time.Time
	if c.virtual {
		now = c.now
	} else {
		now = time.Now()
	}
	c.seq++
	// Append and sift up (heap.Fix) rather than heap.Push, which boxes
	// the timer in an interface: an allocation per timer (EITR arms one
	// per throttled message).
	c.timers = append(c.timers, timer{at: now.Add(d), seq: c.seq, f: f})
	heap.Fix(&c.timers, len(c.timers)-1)
	c.nextDue.Store(c.timers[0].at.UnixNano())
}

// addPoller registers a source of timed work (a cable direction).
func (c *Clock) addPoller(p poller) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pollers = append(c.pollers, p)
	c.npollers.Store(int32(len(c.pollers)))
}

// removePoller unregisters p.
func (c *Clock) removePoller(p poller) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, q := range c.pollers {
		if q == p {
			c.pollers = append(c.pollers[:i:i], c.pollers[i+1:]...)
			c.npollers.Store(int32(len(c.pollers)))
			return
		}
	}
}

// RunDue runs every timer and poller work due at the current time. It is
// called by the device on register reads and engine passes (FreeRunning)
// and by Sleep/Advance; concurrent or re-entrant calls return at once.
func (c *Clock) RunDue() {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return
	}
	c.running = true
	for {
		now := c.now
		if !c.virtual {
			now = time.Now()
		}
		if len(c.timers) > 0 && !c.timers[0].at.After(now) {
			t := c.timers.popMin()
			c.storeNextLocked()
			c.mu.Unlock()
			t.f()
			c.mu.Lock()
			continue
		}
		pollers := c.pollers
		c.mu.Unlock()
		for _, p := range pollers {
			p.runDue(now)
		}
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
		return
	}
}

// maybeRunDue is the free-running fast path: it takes the lock only when a
// timer is due or pollers exist.
func (c *Clock) maybeRunDue() {
	if c.virtual {
		return
	}
	if c.npollers.Load() == 0 {
		next := c.nextDue.Load()
		if next == maxInt64 || time.Now().UnixNano() < next {
			return
		}
	}
	c.RunDue()
}

func (c *Clock) storeNextLocked() {
	if len(c.timers) == 0 {
		c.nextDue.Store(maxInt64)
		return
	}
	c.nextDue.Store(c.timers[0].at.UnixNano())
}

type timer struct {
	at  time.Time
	seq uint64 // FIFO order among equal deadlines
	f   func()
}

type timerHeap []timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(timer)) }

// popMin removes and returns the earliest timer without boxing it.
func (h *timerHeap) popMin() timer {
	old := *h
	t := old[0]
	last := len(old) - 1
	old[0] = old[last]
	old[last] = timer{}
	*h = old[:last]
	if last > 0 {
		heap.Fix(h, 0)
	}
	return t
}

func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = timer{}
	*h = old[:len(old)-1]
	return t
}
