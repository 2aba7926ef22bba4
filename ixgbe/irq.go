package ixgbe

import (
	"errors"
	"fmt"
	"time"

	"github.com/verinic/verinic/advring"
	"github.com/verinic/verinic/ixgbe/regs"
)

// Interrupts delivers a device's MSI-X vectors to the driver
// (advring.Interrupts: eventfd semantics). vfio.Interrupts and
// ixgbesim.Interrupts satisfy it; the register seam (Device) is unchanged.
type Interrupts = advring.Interrupts

// irqState is the interrupt mode of a NIC: RX queue q raises vector q. The
// engine's NAPI state (advring.NAPI) holds the per-queue polling hand-back
// and the adaptive switch; the register writes are here.
type irqState struct {
	src  Interrupts
	napi *advring.NAPI
}

// AdaptivePolling is ixy's rate-based switch between busy polling and
// interrupts (advring.AdaptivePolling).
type AdaptivePolling = advring.AdaptivePolling

// SetAdaptivePolling turns ixy's rate-based switch on (a.Rate > 0) or off
// for every queue of a NIC in interrupt mode (EnableInterrupts). It applies
// to queues whose poller SetRxNotify wakes; WaitRx is unchanged.
func (n *NIC) SetAdaptivePolling(a AdaptivePolling) error {
	st := n.irq.Load()
	if st == nil {
		return ErrNoInterrupts
	}
	if err := st.napi.SetAdaptive(a); err != nil {
		return fmt.Errorf("ixgbe: %s: %w", n.name, err)
	}
	return nil
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
	if n.port.State.Halted() {
		return fmt.Errorf("ixgbe: %s: EnableInterrupts: %w", n.name, n.haltedErr())
	}
	mask := uint32(1)<<len(n.port.Rx) - 1
	n.dev.Write32(regs.EIMC, mask)
	n.dev.Write32(regs.GPIE, n.dev.Read32(regs.GPIE)|regs.GPIE_MSIX_MODE|regs.GPIE_PBA_SUPPORT|regs.GPIE_EIAME)
	for q := range n.port.Rx {
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
	st := &irqState{src: src, napi: advring.NewNAPI(len(n.port.Rx))}
	n.port.SetNAPI(st.napi)
	if old := n.irq.Swap(st); old != nil {
		old.napi.Close()
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
	if uint(q) >= uint(len(n.port.Rx)) {
		return false, ErrBadQueue
	}
	// Under n.mu, so that once Close returns no notifier touches the
	// registers again (the device may be unmapped next).
	n.mu.Lock()
	if n.port.State.Halted() {
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
	if st == nil || uint(q) >= uint(len(n.port.Rx)) {
		return false
	}
	st.napi.Notify(q, wake, func() (bool, error) { return n.WaitRx(q, -1) })
	return true
}
