package igb

import (
	"errors"
	"fmt"
	"time"

	"github.com/verinic/verinic/advring"
	"github.com/verinic/verinic/igb/regs"
)

// EnableInterrupts puts the RX queues in interrupt mode over src (datasheet
// 7.3, from memory): MSI-X mode (GPIE.MSIX_MODE, with PBA support, auto
// mask and non-selective clear, as Linux's igb sets them), RX queue q's
// cause mapped to vector q (the 82576's IVAR layout, regs.IVARRx), each
// vector auto-cleared (EIAC) and auto-masked (EIAM) when its message is
// sent, and throttled to one message per itr (EITR interval in 1 us units;
// 0: no throttling). Every vector starts masked: WaitRx unmasks a queue's
// vector when the queue is idle (NAPI's scheme, as ixgbe's EnableInterrupts).
func (n *NIC) EnableInterrupts(src Interrupts, itr time.Duration) error {
	if src == nil {
		return errors.New("igb: EnableInterrupts: nil source")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.port.State.Halted() {
		return fmt.Errorf("igb: %s: EnableInterrupts: %w", n.name, n.port.State.Err())
	}
	mask := uint32(1)<<len(n.port.Rx) - 1
	n.dev.Write32(regs.EIMC, allOnes)
	n.dev.Write32(regs.GPIE, regs.GPIE_MSIX_MODE|regs.GPIE_PBA|regs.GPIE_EIAME|regs.GPIE_NSICR)
	units := uint32(itr / time.Microsecond)
	for q := range n.port.Rx {
		reg, shift := regs.IVARRx(q)
		v := n.dev.Read32(reg) &^ (0xFF << shift)
		n.dev.Write32(reg, v|(regs.IVAR_VALID|uint32(q))<<shift)
		n.dev.Write32(regs.EITR(q), min(units, 0x1FFF)<<regs.EITR_INTERVAL_SHIFT)
	}
	n.dev.Write32(regs.EIAC, mask)
	n.dev.Write32(regs.EIAM, mask)
	n.dev.Read32(regs.EICR)
	n.irq = src
	if old := n.port.SetNAPI(advring.NewNAPI(len(n.port.Rx))); old != nil {
		old.Close()
	}
	return nil
}

// SetAdaptivePolling turns ixy's rate-based switch between busy polling and
// interrupts on (a.Rate > 0) or off, for a NIC in interrupt mode (see
// ixgbe.NIC.SetAdaptivePolling).
func (n *NIC) SetAdaptivePolling(a advring.AdaptivePolling) error {
	st := n.port.NAPI()
	if st == nil {
		return ErrNoInterrupts
	}
	if err := st.SetAdaptive(a); err != nil {
		return fmt.Errorf("igb: %s: %w", n.name, err)
	}
	return nil
}

// WaitRx unmasks RX queue q's vector (EIMS) and blocks until it fires or
// timeout passes (negative: no limit); it reports whether it fired. Call it
// when RxBatch returned nothing: a frame written back after the previous
// message left its cause set, and unmasking a pending cause fires at once,
// so no frame is slept through.
//
// After the vector fired WaitRx masks it again (EIMC): EIAM should have done
// that as the message went out (datasheet 7.3.x), but QEMU's igb does not
// implement auto-masking (docs/NOTES.md), and without the mask every frame
// that arrives while the poller works would send another message.
func (n *NIC) WaitRx(q int, timeout time.Duration) (bool, error) {
	n.mu.Lock()
	src := n.irq
	if src == nil {
		n.mu.Unlock()
		return false, ErrNoInterrupts
	}
	if uint(q) >= uint(len(n.port.Rx)) {
		n.mu.Unlock()
		return false, ErrBadQueue
	}
	if n.port.State.Halted() {
		n.mu.Unlock()
		return false, n.port.State.Err()
	}
	n.dev.Write32(regs.EIMS, 1<<q)
	n.mu.Unlock()
	c, err := src.Wait(q, timeout)
	var te interface{ Timeout() bool }
	if c == 0 && errors.As(err, &te) && te.Timeout() {
		err = nil
	}
	if c > 0 {
		n.mu.Lock()
		if !n.port.State.Halted() {
			n.dev.Write32(regs.EIMC, 1<<q)
		}
		n.mu.Unlock()
	}
	return c > 0, err
}

// SetRxNotify implements link.RxNotifier in interrupt mode (it reports
// false, and does nothing, otherwise): a goroutine per queue waits on the
// queue's vector (WaitRx), calls wake when it fires, and leaves the vector
// masked until RxBatch finds the queue empty (advring.NAPI).
func (n *NIC) SetRxNotify(q int, wake func()) bool {
	st := n.port.NAPI()
	if st == nil || uint(q) >= uint(len(n.port.Rx)) {
		return false
	}
	st.Notify(q, wake, func() (bool, error) { return n.WaitRx(q, -1) })
	return true
}
