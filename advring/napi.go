package advring

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

// Interrupts delivers a device's MSI-X vectors to the driver with the
// semantics of an eventfd: Wait blocks until vector v has fired since the
// last Wait (timeout < 0: for ever; 0: poll only) and returns how many
// times; a timeout returns 0 and either no error or one with a Timeout
// method that reports true. vfio.Interrupts (a real device's vectors,
// VFIO_DEVICE_SET_IRQS with eventfds) and the simulator's satisfy it; the
// register seam (Device) is unchanged.
type Interrupts interface {
	Wait(vector int, timeout time.Duration) (uint64, error)
}

// NAPI is the family-independent half of a port's interrupt mode (Linux's
// NAPI, ixy's adaptive switch): per RX queue, whether its vector fired and
// stays masked while the poller works, the hand-back when RxBatch finds the
// queue empty, and ixy's rate measurement. The register half (MSI-X mode,
// vector mapping, mask set and clear) is the family's: its wait function,
// given to Notify, unmasks queue q's vector and blocks on it.
type NAPI struct {
	q     []napiQueue
	stop  chan struct{} // closed by Close: notifier goroutines end
	adapt atomic.Pointer[AdaptivePolling]
	epoch time.Time // the monotonic origin of the rate measurements
}

// napiQueue hands a queue's interrupt back to its notifier goroutine once
// the poller has found the queue empty.
type napiQueue struct {
	polling atomic.Bool   // the vector fired and stays masked while the poller works
	rearm   chan struct{} // RxBatch found the queue empty: unmask again
	wake    atomic.Pointer[func()]

	// The rate measurement of AdaptivePolling, touched only by the queue's
	// poller (RxBatch).
	pkts  uint64        // received since last
	last  time.Duration // since epoch, at the last measurement (0: none yet)
	rates [adaptiveSamples]float64
	n, i  int  // samples held, next slot
	busy  bool // the mean rate is at or above the threshold
}

// adaptiveSamples is the length of the moving average (ixy's
// MOVING_AVERAGE_RANGE, 5; from memory of ixy's ixgbe.c).
const adaptiveSamples = 5

// NewNAPI returns the interrupt state of a port with rxQueues RX queues
// (install it with Port.SetNAPI).
func NewNAPI(rxQueues int) *NAPI {
	s := &NAPI{q: make([]napiQueue, rxQueues), stop: make(chan struct{}), epoch: time.Now()}
	for q := range s.q {
		s.q[q].rearm = make(chan struct{}, 1)
	}
	return s
}

// AdaptivePolling is ixy's rate-based switch between busy polling and
// interrupts, for a port in interrupt mode whose queues wake a poller
// through Notify: every Interval an idle poll measures the queue's
// receive rate, and while the mean of the last five measurements is at or
// above Rate, an idle poll does not hand the vector back (no interrupt, no
// sleep) but wakes the poller again at once, so it keeps polling; below
// Rate the queue runs NAPI's scheme as without it. A sustained stream then
// costs no interrupt and no wake-up per burst, and an idle queue still
// sleeps. ixy measures every second (a burst keeps a core busy for five
// seconds after it ends); the default here is 10 ms.
type AdaptivePolling struct {
	Rate     float64       // packets per second per queue; 0 turns the switch off
	Interval time.Duration // measurement interval; 0 means 10 ms
}

// SetAdaptive turns ixy's rate-based switch on (a.Rate > 0) or off for
// every queue.
func (s *NAPI) SetAdaptive(a AdaptivePolling) error {
	if a.Rate < 0 || a.Interval < 0 || a.Rate != a.Rate {
		return fmt.Errorf("adaptive polling: rate %v/s and interval %v must not be negative", a.Rate, a.Interval)
	}
	if a.Rate == 0 {
		s.adapt.Store(nil)
		return nil
	}
	if a.Interval == 0 {
		a.Interval = 10 * time.Millisecond
	}
	s.adapt.Store(&a)
	return nil
}

// polled is called by RxBatch after every poll of queue q that found k
// frames. With AdaptivePolling it counts them and, on an idle poll, takes
// a measurement when one is due; while the queue is busy it wakes the
// poller again instead of handing the vector back. Otherwise an idle poll
// hands the vector back (idle).
func (s *NAPI) polled(q, k int) {
	nq := &s.q[q]
	if a := s.adapt.Load(); a != nil {
		nq.pkts += uint64(k)
		if k != 0 {
			return
		}
		now := time.Since(s.epoch)
		switch el := now - nq.last; {
		case nq.last == 0:
			nq.last, nq.pkts = now, 0
		case el >= a.Interval:
			nq.rates[nq.i] = float64(nq.pkts) / el.Seconds()
			nq.i = (nq.i + 1) % adaptiveSamples
			nq.n = min(nq.n+1, adaptiveSamples)
			sum := 0.0
			for _, r := range nq.rates[:nq.n] {
				sum += r
			}
			nq.busy = sum/float64(nq.n) >= a.Rate
			nq.last, nq.pkts = now, 0
		}
		if nq.busy && nq.polling.Load() {
			if wake := nq.wake.Load(); wake != nil {
				runtime.Gosched()
				(*wake)()
				return
			}
		}
	} else if k != 0 {
		return
	}
	s.idle(q)
}

// idle is called when queue q had nothing: if its notifier is waiting for
// that, it unmasks the vector again (NAPI's napi_complete).
func (s *NAPI) idle(q int) {
	nq := &s.q[q]
	if nq.polling.Load() && nq.polling.CompareAndSwap(true, false) {
		select {
		case nq.rearm <- struct{}{}:
		default:
		}
	}
}

// Close ends the notifier goroutines (idempotent).
func (s *NAPI) Close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
}

// Notify starts queue q's notifier goroutine: it calls wait (the family's
// "unmask q's vector and block until it fires", reporting whether it
// fired), calls wake when it fires, and then leaves the vector masked until
// RxBatch finds the queue empty (NAPI: no interrupts while the poller has
// work; unmask when it is idle, and a frame that came in between fires at
// once). The goroutine ends when Close is called or wait fails.
func (s *NAPI) Notify(q int, wake func(), wait func() (bool, error)) {
	nq := &s.q[q]
	nq.wake.Store(&wake)
	go func() {
		for {
			fired, err := wait()
			if err != nil {
				return
			}
			if !fired {
				continue
			}
			nq.polling.Store(true)
			wake()
			select {
			case <-nq.rearm:
			case <-s.stop:
				return
			}
		}
	}()
}
