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
	for k := 0; k < regs.MaxQueues; k++ {
		q := (start + k) % regs.MaxQueues
		if n.txActive[q/64].Load()&(1<<(q%64)) == 0 {
			// Skip to the next enabled queue quickly.
			continue
		}
		if n.stepTx(q) {
			n.rrTx.Store(int32((q + 1) % regs.MaxQueues))
			return true
		}
	}
	return false
}

// Drain steps the NIC until nothing moves or max steps were taken
// (max <= 0: no limit other than the work available) and returns the
// number of steps that made progress.
func (n *NIC) Drain(max int) int {
	steps := 0
	for (max <= 0 || steps < max) && n.Step() {
		steps++
	}
	return steps
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
}

const (
	engineBatch   = 64                     // descriptors per queue per pass
	spinPasses    = 64                     // idle passes spent spinning
	yieldPasses   = 256                    // then yielding the processor
	minIdleSleep  = 20 * time.Microsecond  // then sleeping, doubling...
	maxIdleSleep  = 500 * time.Microsecond // ...up to this
	linkPollEvery = time.Millisecond       // how often an idle engine checks the wire
)

func (n *NIC) engine(stop, done chan struct{}) {
	defer close(done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	idle := 0
	sleep := minIdleSleep
	lastLink := time.Now()
	for {
		select {
		case <-stop:
			return
		default:
		}
		progress := n.fcTick(true)
		for i := 0; i < engineBatch && n.stepRx(-1); i++ {
			progress = true
		}
		for w := range n.txActive {
			set := n.txActive[w].Load()
			for set != 0 {
				b := bits.TrailingZeros64(set)
				set &^= 1 << b
				q := w*64 + b
				for i := 0; i < engineBatch && n.stepTx(q); i++ {
					progress = true
				}
			}
		}
		n.clock.maybeRunDue()
		if progress {
			idle, sleep = 0, minIdleSleep
			continue
		}
		idle++
		if now := time.Now(); now.Sub(lastLink) > linkPollEvery {
			lastLink = now
			n.pollLink()
		}
		switch {
		case idle < spinPasses:
		case idle < yieldPasses:
			runtime.Gosched()
		default:
			timer.Reset(sleep)
			select {
			case <-stop:
				timer.Stop()
				return
			case <-n.wake:
				timer.Stop()
				idle, sleep = 0, minIdleSleep
			case <-timer.C:
				if sleep < maxIdleSleep {
					sleep *= 2
				}
			}
		}
	}
}
