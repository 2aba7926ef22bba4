package ixgbe

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/verinic/verinic/ixgbe/regs"
)

// Interrupts delivers a device's MSI-X vectors to the driver with the
// semantics of an eventfd: Wait blocks until vector v has fired since the
// last Wait (timeout < 0: for ever; 0: poll only) and returns how many
// times; a timeout returns 0 and either no error or one with a Timeout
// method that reports true. vfio.Interrupts (a real device's vectors,
// VFIO_DEVICE_SET_IRQS with eventfds) and ixgbesim.Interrupts satisfy it;
// the register seam (Device) is unchanged.
type Interrupts interface {
	Wait(vector int, timeout time.Duration) (uint64, error)
}

// irqState is the interrupt mode of a NIC: RX queue q raises vector q.
type irqState struct {
	src   Interrupts
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

// AdaptivePolling is ixy's rate-based switch between busy polling and
// interrupts, for a NIC in interrupt mode whose queues wake a poller
// through SetRxNotify: every Interval an idle poll measures the queue's
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

// SetAdaptivePolling turns ixy's rate-based switch on (a.Rate > 0) or off
// for every queue of a NIC in interrupt mode (EnableInterrupts). It applies
// to queues whose poller SetRxNotify wakes; WaitRx is unchanged.
func (n *NIC) SetAdaptivePolling(a AdaptivePolling) error {
	st := n.irq.Load()
	if st == nil {
		return ErrNoInterrupts
	}
	if a.Rate < 0 || a.Interval < 0 || a.Rate != a.Rate {
		return fmt.Errorf("ixgbe: %s: adaptive polling: rate %v/s and interval %v must not be negative", n.name, a.Rate, a.Interval)
	}
	if a.Rate == 0 {
		st.adapt.Store(nil)
		return nil
	}
	if a.Interval == 0 {
		a.Interval = 10 * time.Millisecond
	}
	st.adapt.Store(&a)
	return nil
}

// polled is called by RxBatch after every poll of queue q that found k
// frames. With AdaptivePolling it counts them and, on an idle poll, takes
// a measurement when one is due; while the queue is busy it wakes the
// poller again instead of handing the vector back. Otherwise an idle poll
// hands the vector back (idle).
func (s *irqState) polled(q, k int) {
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
func (s *irqState) idle(q int) {
	nq := &s.q[q]
	if nq.polling.Load() && nq.polling.CompareAndSwap(true, false) {
		select {
		case nq.rearm <- struct{}{}:
		default:
		}
	}
}

// close ends the notifier goroutines.
func (s *irqState) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
}

// EnableInterrupts puts the RX queues in interrupt mode over src (datasheet
// 7.3): MSI-X mode with auto-mask (GPIE.MSIX_MODE|PBA_SUPPORT|EIAME,
// 8.2.3.5.18), RX queue q's cause mapped to vector q (IVAR, 7.3.4), each
// vector auto-cleared (EIAC) and auto-masked (EIAM) when its message is
// sent, and throttled to one message per itr (EITR, 7.3.2.1; 0 means no
// throttling). Every vector starts masked: WaitRx unmasks a queue's vector
// when the queue is idle and blocks until it fires, so a poller runs
// without interrupts while there is work and sleeps when there is none
// (NAPI's scheme; ixy switches between the two modes on a packet-rate
// average instead).
func (n *NIC) EnableInterrupts(src Interrupts, itr time.Duration) error {
	if src == nil {
		return errors.New("ixgbe: EnableInterrupts: nil source")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state.Load() != 0 {
		return fmt.Errorf("ixgbe: %s: EnableInterrupts: %w", n.name, n.haltedErr())
	}
	mask := uint32(1)<<len(n.rx) - 1
	n.dev.Write32(regs.EIMC, mask)
	n.dev.Write32(regs.GPIE, n.dev.Read32(regs.GPIE)|regs.GPIE_MSIX_MODE|regs.GPIE_PBA_SUPPORT|regs.GPIE_EIAME)
	for q := range n.rx {
		// IVAR[q/2]: RX entry of queue q at bits 16*(q%2)+7:16*(q%2)
		// (8.2.3.5.16).
		reg := regs.IVAR(q >> 1)
		shift := 16 * uint(q&1)
		v := n.dev.Read32(reg) &^ (0xFF << shift)
		n.dev.Write32(reg, v|(regs.IVAR_ALLOC_VAL|uint32(q))<<shift)
		// EITR interval, bits 11:3, in 2.048 us units (8.2.3.5.12).
		units := uint32(itr / (2048 * time.Nanosecond))
		n.dev.Write32(regs.EITR(q), min(units, 0x1FF)<<3)
	}
	n.dev.Write32(regs.EIAC, n.dev.Read32(regs.EIAC)|mask)
	n.dev.Write32(regs.EIAM, n.dev.Read32(regs.EIAM)|mask)
	st := &irqState{src: src, q: make([]napiQueue, len(n.rx)), stop: make(chan struct{}), epoch: time.Now()}
	for q := range st.q {
		st.q[q].rearm = make(chan struct{}, 1)
	}
	if old := n.irq.Swap(st); old != nil {
		old.close()
	}
	return nil
}

// ErrNoInterrupts is returned by WaitRx on a NIC without EnableInterrupts.
var ErrNoInterrupts = errors.New("ixgbe: interrupts not enabled (EnableInterrupts)")

// WaitRx unmasks RX queue q's vector (EIMS) and blocks until it fires or
// timeout passes (negative: no limit); it reports whether it fired (a
// timeout is false and no error). Call it
// when RxBatch returned nothing: a frame written back after the previous
// message sets the cause, and unmasking a pending cause fires at once, so
// no frame is slept through. The vector masks itself again when it fires
// (EIAM), so the poller then runs without interrupts until it is idle again.
func (n *NIC) WaitRx(q int, timeout time.Duration) (bool, error) {
	irq := n.irq.Load()
	if irq == nil {
		return false, ErrNoInterrupts
	}
	if uint(q) >= uint(len(n.rx)) {
		return false, ErrBadQueue
	}
	// Under n.mu, so that once Close returns no notifier touches the
	// registers again (the device may be unmapped next).
	n.mu.Lock()
	if n.state.Load() != 0 {
		n.mu.Unlock()
		return false, n.haltedErr()
	}
	n.dev.Write32(regs.EIMS, 1<<q)
	n.mu.Unlock()
	c, err := irq.src.Wait(q, timeout)
	var te interface{ Timeout() bool }
	if c == 0 && errors.As(err, &te) && te.Timeout() {
		err = nil // a source that reports its timeouts as errors (vfio.ErrTimeout)
	}
	return c > 0, err
}

// SetRxNotify implements link.RxNotifier when interrupts are enabled (it
// reports false, and does nothing, otherwise): a goroutine per queue
// unmasks the queue's vector and waits on it (WaitRx), calls wake when it
// fires, and then leaves the vector masked until RxBatch finds the queue
// empty (NAPI: no interrupts while the poller has work; unmask when it is
// idle, and a frame that came in between fires at once). The goroutine
// ends when the NIC closes or the interrupt source fails.
func (n *NIC) SetRxNotify(q int, wake func()) bool {
	st := n.irq.Load()
	if st == nil || uint(q) >= uint(len(n.rx)) {
		return false
	}
	nq := &st.q[q]
	nq.wake.Store(&wake)
	go func() {
		for {
			fired, err := n.WaitRx(q, -1)
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
			case <-st.stop:
				return
			}
		}
	}()
	return true
}
