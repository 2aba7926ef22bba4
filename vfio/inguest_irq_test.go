package vfio

import (
	"errors"
	"testing"
	"time"
)

// More e1000e interrupt registers and bits (Intel 82574 datasheet, 10.2.4:
// ICR/ICS/IMS/IMC, EIAC, IVAR; QEMU's hw/net/e1000e_core.c and
// e1000_regs.h implement them; offsets and bits cited from QEMU's
// e1000_regs.h, the datasheet sections from memory).
const (
	e1000EIAC     = 0x00DC  // extended interrupt auto clear: causes whose MSI-X message clears them
	icrRXQ0       = 1 << 20 // MSI-X: receive queue 0
	ivarRXQ0Valid = 1 << 3  // IVAR: RxQ0 vector (bits 2:0) is valid
)

// waitResult is what a Wait in a goroutine returned.
type waitResult struct {
	n   uint64
	err error
}

// settle waits out QEMU's interrupt mitigation and drops the message it
// sends afterwards. From QEMU 8.0 on, an MSI-X message sent by the e1000e
// (and the igb) arms the vector's EITR throttling timer, and when that
// expires the model sends the vector's message again, whether or not a cause
// was postponed meanwhile (QEMU 7.2 sent it only for a postponed cause). The
// interval is at least 500 x 256 ns = 128 us (QEMU clamps EITR to that
// minimum, and a software reset keeps the EITR values Linux's e1000e driver
// wrote). Seen with QEMU 10's trace events e1000e_irq_msix_notify_vec then
// e1000e_irq_msix_notify_postponed_vec on the same vector. A driver only
// sees a spurious wake-up; a test that counts messages must let it pass.
func settle(in *Interrupts, vector int) {
	time.Sleep(50 * time.Millisecond)
	in.Wait(vector, 0)
}

func waitAsync(in *Interrupts, vector int, timeout time.Duration) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		n, err := in.Wait(vector, timeout)
		ch <- waitResult{n, err}
	}()
	return ch
}

// TestInGuestMSIXMaskAndWait checks, against the real kernel's VFIO and
// QEMU's e1000e, what interrupt mode of the driver relies on (ixgbe/irq.go,
// with the 82599's EICR/EIMS/EIAC/EIAM in place of the e1000e's
// ICR/IMS/EIAC): a Wait that blocks for ever is woken by a cause routed to
// its MSI-X vector; the message auto-clears the cause and auto-masks it
// (EIAC), so a second cause does not fire until the mask is set again; a
// cause set while masked fires when it is unmasked, so a poller that
// unmasks before it sleeps cannot sleep through a frame; masking with IMC
// keeps a vector quiet; and disabling the vectors wakes a blocked Wait.
func TestInGuestMSIXMaskAndWait(t *testing.T) {
	addr := guestNIC(t)
	_, d := openGuestDevice(t, addr)
	resetE1000e(t, d)
	in, err := d.EnableInterrupts(3, IRQIndexMSIX)
	if err != nil {
		t.Fatal(err)
	}
	if in.Index() != IRQIndexMSIX || in.Count() != 3 {
		t.Fatalf("got %s with %d vectors, want MSI-X with 3", IRQIndexName(in.Index()), in.Count())
	}
	defer func() {
		d.Write32(e1000IMC, 0xFFFFFFFF)
		d.Write32(e1000EIAC, 0)
		d.Read32(e1000ICR)
	}()
	// RxQ0 -> vector 0, TxQ0 -> vector 2; RxQ0's message clears and masks
	// its cause (EIAC with CTRL_EXT.IAME clear, as after reset).
	d.Write32(e1000IVAR, ivarRXQ0Valid|0|ivarTXQ0Valid|2<<8)
	d.Write32(e1000EIAC, icrRXQ0)
	d.Write32(e1000IMS, icrRXQ0|icrTXQ0)

	const quiet = 300 * time.Millisecond // how long a masked vector must stay silent
	const bound = 5 * time.Second        // how long an interrupt may take under TCG

	// 1. A Wait that blocks for ever is woken by the cause.
	w := waitAsync(in, 0, -1)
	select {
	case r := <-w:
		t.Fatalf("Wait(0, -1) returned %d, %v before any cause was set", r.n, r.err)
	case <-time.After(50 * time.Millisecond):
	}
	d.Write32(e1000ICS, icrRXQ0)
	select {
	case r := <-w:
		if r.err != nil || r.n == 0 {
			t.Fatalf("Wait(0, -1) woken with %d interrupts, %v", r.n, r.err)
		}
	case <-time.After(bound):
		t.Fatalf("RxQ0 cause set, IMS set, IVAR -> vector 0: no interrupt on vector 0's eventfd within %v (ICR %#x)", bound, d.Read32(e1000ICR))
	}
	settle(in, 0)

	// 2. The message auto-masked RxQ0: a new cause stays pending, silent.
	d.Write32(e1000ICS, icrRXQ0)
	if n, err := in.Wait(0, quiet); !errors.Is(err, ErrTimeout) {
		t.Fatalf("vector 0 fired again (%d, %v) while EIAC should have masked it", n, err)
	}
	// 3. Unmasking the pending cause fires at once.
	d.Write32(e1000IMS, icrRXQ0)
	if n, err := in.Wait(0, bound); err != nil || n == 0 {
		t.Fatalf("the cause set while masked did not fire on unmask within %v: %d, %v", bound, n, err)
	}
	settle(in, 0)

	// 4. IMC masks TxQ0's vector: a cause does not fire until IMS again,
	// and no other vector fires meanwhile.
	d.Write32(e1000IMC, icrTXQ0)
	d.Write32(e1000ICS, icrTXQ0)
	if n, err := in.Wait(2, quiet); !errors.Is(err, ErrTimeout) {
		t.Fatalf("masked vector 2 fired: %d, %v", n, err)
	}
	for v := 0; v < 2; v++ {
		if n, err := in.Wait(v, 0); !errors.Is(err, ErrTimeout) {
			t.Errorf("vector %d fired (%d, %v) with no cause routed to it", v, n, err)
		}
	}
	d.Write32(e1000IMS, icrTXQ0)
	if n, err := in.Wait(2, bound); err != nil || n == 0 {
		t.Fatalf("vector 2 did not fire on unmask within %v: %d, %v", bound, n, err)
	}

	// 5. Disabling the vectors wakes a Wait blocked for ever.
	w = waitAsync(in, 1, -1)
	time.Sleep(50 * time.Millisecond)
	if err := in.Disable(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-w:
		if !errors.Is(r.err, ErrInterruptsDisabled) {
			t.Errorf("blocked Wait after Disable: %d, %v; want ErrInterruptsDisabled", r.n, r.err)
		}
	case <-time.After(bound):
		t.Fatalf("Disable did not wake a Wait(1, -1) within %v", bound)
	}
	// The vectors can be enabled again after Disable.
	in, err = d.EnableInterrupts(1, IRQIndexMSIX)
	if err != nil {
		t.Fatalf("enable MSI-X again after Disable: %v", err)
	}
	if err := in.Disable(); err != nil {
		t.Fatal(err)
	}
}
