package ixgbesim

import (
	"math/bits"
	"runtime"
	"time"

	"github.com/verinic/verinic/ixgbe/regs"
)

// StepRx moves one frame (all of its descriptors) from the receive packet
// buffer into queue q's ring, or drops it as the datasheet says, if that
// frame is at the front of the packet buffer and destined to q. It reports
// whether anything happened.
func (n *NIC) StepRx(q int) bool {
	if q < 0 || q >= regs.MaxQueues {
		return false
	}
	n.pollLink()
	return n.stepRx(q)
}

// StepTx processes one descriptor of TX queue q (or, when the ring is
// idle, flushes its pending write-backs). It reports whether anything
// happened.
func (n *NIC) StepTx(q int) bool {
	if q < 0 || q >= regs.MaxQueues {
		return false
	}
	n.pollLink()
	if n.fcTick(true) {
		return true
	}
	return n.stepTx(q)
}

// Step does one unit of work on whichever engine has some: a waiting PAUSE
// frame, then the RX engine, then the TX queues in round-robin order. It
// reports whether anything happened.
func (n *NIC) Step() bool {
	n.pollLink()
	// A waiting PAUSE frame goes out ahead of data (3.7.7.2).
	if n.fcTick(true) {
		return true
	}
	if n.stepRx(-1) {
		return true
	}
	return n.stepAnyTx()
}

func (n *NIC) stepAnyTx() bool {
	start := int(n.rrTx.Load())
	// Walk the enabled queues (bitmap) from start, wrapping once.
	for pass := 0; pass < 2; pass++ {
		for w := range n.txActive {
			set := n.txActive[w].Load()
			for set != 0 {
				b := bits.TrailingZeros64(set)
				set &^= 1 << b
				q := w*64 + b
				if (pass == 0) != (q >= start) {
					continue
				}
				if n.stepTx(q) {
					n.rrTx.Store(int32((q + 1) % regs.MaxQueues))
					return true
				}
			}
		}
	}
	return false
}

// Drain steps the NIC until nothing moves or max steps were taken
// (max <= 0: no limit other than the work available) and returns the
// number of steps that made progress. Without a limit it moves the
// engines in bursts (pass), which ends in the same state as stepping one
// unit at a time and costs one lock acquisition per burst instead of per
// descriptor.
func (n *NIC) Drain(max int) int {
	steps := 0
	if max <= 0 {
		for {
			k := n.pass(engineBatch)
			if k == 0 {
				return steps
			}
			steps += k
		}
	}
	for steps < max && n.Step() {
		steps++
	}
	return steps
}

// pass moves every engine once: a waiting PAUSE frame first (3.7.7.2),
// then up to budget frames from the receive packet buffer, then up to
// budget descriptors of each enabled TX queue. It returns the units of
// work done.
func (n *NIC) pass(budget int) int {
	n.pollLink()
	if n.sched.rng != nil {
		budget = n.sched.budget(budget) // a random burst (schedule.go)
		n.sched.yield()
	}
	done := 0
	if n.fcTick(true) {
		done++
	}
	done += n.stepRxN(-1, budget)
	for w := range n.txActive {
		set := n.txActive[w].Load()
		for set != 0 {
			b := bits.TrailingZeros64(set)
			set &^= 1 << b
			done += n.stepTxN(w*64+b, budget)
		}
	}
	return done
}

// Start runs the NIC's engines on a goroutine (FreeRunning mode). It polls
// the tails, backing off from spinning to yielding to short sleeps when
// idle, and wakes at once on a tail write or a received frame. In Stepped
// mode it does nothing: the test moves the engines.
func (n *NIC) Start() {
	if n.cfg.Mode != FreeRunning || n.closed.Load() {
		return
	}
	n.runMu.Lock()
	defer n.runMu.Unlock()
	if n.running {
		return
	}
	n.running = true
	n.engineOn.Store(true)
	n.stop = make(chan struct{})
	n.done = make(chan struct{})
	go n.engine(n.stop, n.done)
}

// Stop stops the engines started by Start and waits for them.
func (n *NIC) Stop() {
	n.runMu.Lock()
	defer n.runMu.Unlock()
	if !n.running {
		return
	}
	close(n.stop)
	<-n.done
	n.running = false
	n.engineOn.Store(false)
}

const (
	engineBatch   = 64                    // descriptors per queue per pass
	spinPasses    = 32                    // idle passes spent yielding before blocking
	linkPollEvery = 10 * time.Millisecond // how often a blocked engine re-reads the wire's state
)

// engine is the free-running DMA engines' goroutine. It moves the engines
// in passes while there is work, yields for a few idle passes, and then
// blocks until a tail write (RDT, TDT), a received frame, a link change or
// the next timed event (the clock's timers and delay lines, flow control
// refresh and pause expiry, EITR) wakes it: the doorbell is the tail
// write, as on the device (7.1.9, 7.2.3), so an idle NIC costs no CPU.
func (n *NIC) engine(stop, done chan struct{}) {
	defer close(done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	idle := 0
	for {
		select {
		case <-stop:
			return
		default:
		}
		progress := n.pass(engineBatch) > 0
		n.clock.maybeRunDue()
		if progress {
			idle = 0
			continue
		}
		idle++
		if idle < spinPasses {
			runtime.Gosched()
			continue
		}
		// Announce the sleep, then look once more: a tail write after
		// this pass's read of the tail sees sleeping and sends on wake;
		// one before it is seen by the pass (sequentially consistent
		// atomics on both sides).
		n.sleeping.Store(true)
		if n.pass(engineBatch) > 0 {
			n.sleeping.Store(false)
			idle = 0
			continue
		}
		timer.Reset(n.idleWait())
		select {
		case <-stop:
			timer.Stop()
			n.sleeping.Store(false)
			return
		case <-n.wake:
			timer.Stop()
			idle = 0
		case <-timer.C:
			n.pollLink()
		}
		n.sleeping.Store(false)
	}
}

// idleWait returns how long a blocked engine may sleep: until the earliest
// timed event it must act on, at most linkPollEvery.
func (n *NIC) idleWait() time.Duration {
	now := time.Now().UnixNano()
	wait := int64(linkPollEvery)
	consider := func(at int64) {
		if at != 0 && at != maxInt64 {
			if d := at - now; d < wait {
				wait = d
			}
		}
	}
	consider(n.clock.nextDue.Load())
	consider(n.fc.refreshAt.Load())
	consider(n.fc.pausedUntil.Load())
	if n.clock.npollers.Load() > 0 {
		if at, ok := n.clock.earliest(); ok {
			consider(at.UnixNano())
		}
	}
	if wait < 0 {
		wait = 0
	}
	return time.Duration(wait)
}

// Doorbells on the caller's goroutine. A free-running NIC's engine blocks
// when idle, and waking it costs a goroutine hand-off (and, with every
// processor busy, a wait for one) per doorbell. So a tail write, and the
// end of a burst of frames a cable delivers, first do the engines' work
// themselves: the TX queue's descriptors up to the new tail, the frames the
// packet buffer holds; the engine is kicked only for what is left (a
// transmitter held by the link or a PAUSE). The work is the engines' own
// code under the engines' locks, so it interleaves with the engine
// goroutine as two engines would; the order of the device's steps is one
// the engine could have taken (the device fast). By default not under the
// race detector (Config.Doorbell): there the engine goroutine does all
// device work, so that `go test -race` sees the driver's and the device's
// accesses on different goroutines and checks their ordering; never while
// tracing or under a device schedule (schedule.go), whose interleavings the
// engine goroutine gives.

// DoorbellMode is Config.Doorbell.
type DoorbellMode uint8

const (
	// DoorbellAuto: DoorbellInline, or DoorbellEngine under the race
	// detector (so that `go test -race` sees the driver's and the
	// device's accesses on different goroutines).
	DoorbellAuto DoorbellMode = iota
	// DoorbellInline: a doorbell does the engines' work on its caller's
	// goroutine, the engine goroutine what is left.
	DoorbellInline
	// DoorbellEngine: the engine goroutine does all the work; a doorbell
	// only wakes it.
	DoorbellEngine
)

// inlineOK reports whether doorbells may do the engines' work.
func (n *NIC) inlineOK() bool {
	switch n.cfg.Doorbell {
	case DoorbellEngine:
		return false
	case DoorbellAuto:
		if raceEnabled {
			return false
		}
	}
	return n.engineOn.Load() && n.tr == nil && !n.sched.on
}

// txDoorbell follows a write of TX queue qi's tail.
func (n *NIC) txDoorbell(qi int) {
	if n.inlineOK() {
		for {
			k := n.stepTxBurst(qi, engineBatch, true)
			if k < 0 {
				break // the engine is on the queue: kick it
			}
			if k == 0 {
				if n.reg(regs.TDH(qi)) == n.txq[qi].tdt.Load() {
					return // all sent
				}
				break // held (link down, paused): the engine waits for it
			}
		}
	}
	n.kick()
}

// rxDoorbell follows a write of an RX tail and a cable's burst of frames
// into the packet buffer: it moves the frames the receive queues have
// descriptors for. What is left waits for descriptors, which only a tail
// write brings, so the engine has nothing to do for it. The caller does at
// most rxDoorbellBursts full bursts (frames may keep arriving from other
// goroutines, and a queue that drops, SRRCTL.DROP_EN, takes them all); the
// engine is woken for the rest.
func (n *NIC) rxDoorbell() {
	if n.inlineOK() {
		for i := 0; i < rxDoorbellBursts; i++ {
			if n.stepRxN(-1, engineBatch) < engineBatch {
				return
			}
		}
	}
	n.kick()
}

const rxDoorbellBursts = 4
