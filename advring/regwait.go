package advring

import (
	"errors"
	"fmt"
	"time"
)

// ErrPollTimeout is wrapped in the error of a wait that ran out of time.
var ErrPollTimeout = errors.New("timeout")

// Waiter is the register waits that both families' initialization and
// shutdown are made of: read-modify-write of bits, and polls for
// self-clearing and enable bits, with errors that name the register, the
// datasheet section and the device.
type Waiter struct {
	Dev   Device
	Clock Clock
	// Timeout bounds every wait.
	Timeout time.Duration
	// Prefix starts every error ("igb: 0000:01:00.0").
	Prefix string
	// Gone reads a register that a present device never reads as all ones
	// (STATUS on both families) and reports whether the device is gone.
	Gone func() bool
}

// SetBits sets bits in reg (read-modify-write).
func (w *Waiter) SetBits(reg, bits uint32) { w.Dev.Write32(reg, w.Dev.Read32(reg)|bits) }

// ClearBits clears bits in reg (read-modify-write).
func (w *Waiter) ClearBits(reg, bits uint32) { w.Dev.Write32(reg, w.Dev.Read32(reg)&^bits) }

// WaitSet waits until every bit of mask is set in reg; what names the bits
// ("RXDCTL[0].ENABLE (bit 25)") and section the datasheet's.
func (w *Waiter) WaitSet(reg, mask uint32, what, section string) error {
	return w.Poll(reg, mask, mask, what, section)
}

// WaitClear waits until every bit of mask is clear in reg.
func (w *Waiter) WaitClear(reg, mask uint32, what, section string) error {
	return w.Poll(reg, mask, 0, what, section)
}

// Poll reads reg until reg&mask == want, for at most Timeout, backing off
// from 10 us to 10 ms between reads. A register reading all ones while Gone
// agrees is a device that went away (ErrDeviceGone, wrapped); a mask of all
// ones may wait for an all-ones value.
func (w *Waiter) Poll(reg, mask, want uint32, what, section string) error {
	start := w.Clock.Now()
	wait := 10 * time.Microsecond
	for {
		v := w.Dev.Read32(reg)
		if v&mask == want && (v != 0xFFFFFFFF || mask == 0xFFFFFFFF) {
			return nil
		}
		if v == 0xFFFFFFFF && w.Gone() {
			return fmt.Errorf("%s: waiting for %s (datasheet %s): register %#05x reads 0xFFFFFFFF: %w", w.Prefix, what, section, reg, ErrDeviceGone)
		}
		if w.Clock.Now().Sub(start) >= w.Timeout {
			state := ""
			if want == 0 {
				state = " to clear"
			}
			return fmt.Errorf("%s: %w after %v waiting for %s%s (datasheet %s)", w.Prefix, ErrPollTimeout, w.Timeout, what, state, section)
		}
		w.Clock.Sleep(wait)
		wait = min(2*wait, 10*time.Millisecond)
	}
}
