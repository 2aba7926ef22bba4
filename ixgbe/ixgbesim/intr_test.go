package ixgbesim

import (
	"testing"
	"time"

	"github.com/verinic/verinic/ixgbe/regs"
)

// msixSetup programs MSI-X mode as ixy and Linux do (datasheet 7.3): GPIE
// MSIX_MODE|PBA_SUPPORT (and EIAME when autoMask), RX queue 0's cause to
// vector 0 (IVAR, 7.3.4), vector 0 auto-cleared (EIAC) and, with autoMask,
// auto-masked (EIAM).
func msixSetup(d *tDriver, autoMask bool) {
	gpie := uint32(regs.GPIE_MSIX_MODE | regs.GPIE_PBA_SUPPORT)
	if autoMask {
		gpie |= regs.GPIE_EIAME
		d.wr(regs.EIAM, 1)
	}
	d.wr(regs.GPIE, gpie)
	d.wr(regs.IVAR(0), regs.IVAR_ALLOC_VAL|0) // RX queue 0 -> vector 0
	d.wr(regs.EIAC, 1)
}

// A received frame fires the vector IVAR names; the message auto-clears
// the cause (EIAC) and auto-masks the vector (EIAM with GPIE.EIAME); a
// frame arriving while masked sets EICR only, and unmasking it (EIMS)
// sends the message then.
func TestInterruptMSIXAutoClearAutoMask(t *testing.T) {
	n, d, _ := soloNIC(t, "irq", 1)
	msixSetup(d, true)
	in := n.Interrupts()
	d.wr(regs.EIMS, 1)
	if c := in.Count(0); c != 0 {
		t.Fatalf("vector 0 fired %d times before any cause", c)
	}
	me := n.MAC()
	other := []byte{0x02, 0, 0, 0, 0, 9}
	if !n.Receive(withFCS(testFrame(me, other, 60, 1))) {
		t.Fatal("frame refused")
	}
	if c := in.Count(0); c != 0 {
		t.Fatalf("fired before the DMA engine wrote the frame back: %d", c)
	}
	n.Drain(0)
	if c := in.Count(0); c != 1 {
		t.Fatalf("after one frame: %d messages, want 1", c)
	}
	if v := n.cell(regs.EICR).Load(); v&1 != 0 {
		t.Errorf("EICR = %#x: bit 0 not auto-cleared (EIAC)", v)
	}
	if v := d.rd(regs.EIMS); v&1 != 0 {
		t.Errorf("EIMS = %#x: vector 0 not auto-masked (EIAM, GPIE.EIAME)", v)
	}
	// A second frame while masked: cause set, no message.
	n.Receive(withFCS(testFrame(me, other, 60, 2)))
	n.Drain(0)
	if c := in.Count(0); c != 1 {
		t.Fatalf("masked vector sent a message: %d", c)
	}
	if v := n.cell(regs.EICR).Load(); v&1 == 0 {
		t.Errorf("EICR = %#x: the masked cause is not pending", v)
	}
	// Unmasking the pending cause sends it.
	d.wr(regs.EIMS, 1)
	if got, err := in.Wait(0, 0); got != 2 || err != nil {
		t.Fatalf("Wait after unmask = %d, %v; want 2 messages", got, err)
	}
	if got, _ := in.Wait(0, 0); got != 0 {
		t.Fatalf("Wait did not reset the count: %d", got)
	}
	if got := len(d.recv(0)); got != 2 {
		t.Fatalf("received %d frames, want 2", got)
	}
}

// Without GPIE.EIAME the message does not mask (EIAM is ignored in MSI-X
// mode then), and every new cause sends a message.
func TestInterruptMSIXNoAutoMask(t *testing.T) {
	n, d, _ := soloNIC(t, "irqnm", 1)
	msixSetup(d, false)
	d.wr(regs.EIAM, 1)
	d.wr(regs.EIMS, 1)
	for i := 0; i < 3; i++ {
		d.wr(regs.EICS, 1) // software-triggered cause (8.2.3.5.3)
	}
	if c := n.Interrupts().Count(0); c != 3 {
		t.Fatalf("%d messages for 3 causes, want 3", c)
	}
	if v := d.rd(regs.EIMS); v&1 == 0 {
		t.Errorf("EIMS = %#x: masked without GPIE.EIAME", v)
	}
	// EIMC masks: no message.
	d.wr(regs.EIMC, 1)
	d.wr(regs.EICS, 1)
	if c := n.Interrupts().Count(0); c != 3 {
		t.Fatalf("masked (EIMC) vector fired: %d", c)
	}
}

// EITR holds back a message that would follow the previous one within the
// interval, and sends it when the interval has passed if the cause is
// still pending (on the virtual clock, 7.3.2.1).
func TestInterruptEITRThrottles(t *testing.T) {
	n, d, _ := soloNIC(t, "irqitr", 1)
	msixSetup(d, false)
	d.wr(regs.EIAC, 0) // causes stay pending until read
	d.wr(regs.EITR(0), 5<<3)
	d.wr(regs.EIMS, 1)
	in := n.Interrupts()
	d.wr(regs.EICS, 1)
	if c := in.Count(0); c != 1 {
		t.Fatalf("first cause: %d messages, want 1", c)
	}
	d.wr(regs.EICS, 1)
	d.wr(regs.EICS, 1)
	if c := in.Count(0); c != 1 {
		t.Fatalf("within the EITR interval: %d messages, want 1 (throttled)", c)
	}
	n.Clock().Advance(5*eitrUnit - time.Nanosecond)
	if c := in.Count(0); c != 1 {
		t.Fatalf("before the interval ended: %d messages", c)
	}
	n.Clock().Advance(time.Nanosecond)
	if c := in.Count(0); c != 2 {
		t.Fatalf("after the interval: %d messages, want 2 (the held-back one)", c)
	}
	// A held-back message whose cause was cleared meanwhile is dropped.
	d.wr(regs.EICS, 1)
	d.rd(regs.EICR) // clears the causes
	n.Clock().Advance(time.Millisecond)
	if c := in.Count(0); c != 2 {
		t.Fatalf("message sent for a cleared cause: %d", c)
	}
	// With EITR 0 nothing is throttled.
	d.wr(regs.EITR(0), 0)
	d.wr(regs.EICS, 1)
	d.wr(regs.EICS, 1)
	if c := in.Count(0); c != 4 {
		t.Fatalf("EITR 0: %d messages, want 4", c)
	}
}

// Without MSI-X, vector 0 is the one interrupt: any unmasked cause fires
// it, and reading EICR auto-masks the EIAM bits it read (7.3.1).
func TestInterruptLegacyReadAutoMask(t *testing.T) {
	n, d, _ := soloNIC(t, "irqleg", 1)
	d.wr(regs.GPIE, 0)
	d.rd(regs.EICR) // the link-up LSC
	d.wr(regs.EIAM, regs.EICR_LSC)
	d.wr(regs.EIMS, regs.EICR_LSC|2)
	d.wr(regs.EICS, 2)
	if c := n.Interrupts().Count(0); c != 1 {
		t.Fatalf("%d messages, want 1", c)
	}
	d.wr(regs.EICS, regs.EICR_LSC)
	if v := d.rd(regs.EICR); v != regs.EICR_LSC|2 {
		t.Fatalf("EICR = %#x", v)
	}
	if v := d.rd(regs.EIMS); v != 2 {
		t.Fatalf("EIMS = %#x after the read: want LSC auto-masked (EIAM), bit 1 kept", v)
	}
}

// A blocked Wait is woken by the message (and by Close).
func TestInterruptWakesBlockedWaiter(t *testing.T) {
	n, d, _ := soloNIC(t, "irqwait", 1)
	msixSetup(d, true)
	d.wr(regs.EIMS, 1)
	got := make(chan uint64)
	go func() {
		c, _ := n.Interrupts().Wait(0, -1)
		got <- c
	}()
	n.Receive(withFCS(testFrame(n.MAC(), []byte{2, 0, 0, 0, 0, 9}, 60, 1)))
	n.Drain(0)
	if c := <-got; c != 1 {
		t.Fatalf("waiter woke with %d", c)
	}
	errc := make(chan error)
	go func() {
		_, err := n.Interrupts().Wait(0, -1)
		errc <- err
	}()
	n.Close()
	if err := <-errc; err != ErrInterruptsClosed {
		t.Fatalf("Wait after Close: %v", err)
	}
}
