package ixgbe

import (
	"fmt"
	"strings"
	"testing"

	"github.com/verinic/verinic/ixgbe/regs"
)

// milestone is one step of the datasheet's initialization order, found in a
// register-access log by a predicate.
type milestone struct {
	name string
	ok   func(a regAccess) bool
}

func wr(reg uint32, pred func(v uint32) bool) func(regAccess) bool {
	return func(a regAccess) bool { return a.write && a.reg == reg && (pred == nil || pred(a.val)) }
}

func rd(reg uint32, pred func(v uint32) bool) func(regAccess) bool {
	return func(a regAccess) bool { return !a.write && a.reg == reg && (pred == nil || pred(a.val)) }
}

func has(bits uint32) func(uint32) bool   { return func(v uint32) bool { return v&bits == bits } }
func hasNo(bits uint32) func(uint32) bool { return func(v uint32) bool { return v&bits == 0 } }

// initMilestones lists, in the order datasheet 4.6.3-4.6.8 (as ixy runs it)
// requires, the accesses that mark each step for a NIC with rxq RX queues,
// txq TX queues and RX rings of rxRing descriptors.
func initMilestones(rxq, txq, rxRing int) []milestone {
	ms := []milestone{
		{"4.6.3.1 mask interrupts (EIMC)", wr(regs.EIMC, has(0x7FFFFFFF))},
		{"4.6.3.2 global reset (CTRL.RST)", wr(regs.CTRL, has(regs.CTRL_RST))},
		{"4.6.3.2 reset done (CTRL.RST reads 0)", rd(regs.CTRL, hasNo(regs.CTRL_RST_MASK))},
		{"4.6.3.1 mask interrupts after reset", wr(regs.EIMC, has(0x7FFFFFFF))},
		{"4.6.3 EEC.ARD seen", rd(regs.EEC, has(regs.EEC_ARD))},
		{"4.6.3 RDRXCTL.DMAIDONE seen", rd(regs.RDRXCTL, has(regs.RDRXCTL_DMAIDONE))},
		{"4.6.4 AUTOC restart auto-negotiation", wr(regs.AUTOC, has(regs.AUTOC_AN_RESTART))},
		{"4.6.5 statistics cleared (GPRC read)", rd(regs.GPRC, nil)},
		{"4.6.7 RXCTRL.RXEN off", wr(regs.RXCTRL, hasNo(regs.RXCTRL_RXEN))},
		{"4.6.7 RXPBSIZE[0]", wr(regs.RXPBSIZE(0), nil)},
		{"4.6.7 HLREG0.RXCRCSTRP", wr(regs.HLREG0, has(regs.HLREG0_RXCRCSTRP))},
		{"4.6.7 RDRXCTL.CRCSTRIP, RSCFRSTSIZE 0", wr(regs.RDRXCTL, func(v uint32) bool { return v&regs.RDRXCTL_CRCSTRIP != 0 && v&(0x1F<<17) == 0 })},
		{"4.6.7 FCTRL.BAM", wr(regs.FCTRL, has(regs.FCTRL_BAM))},
	}
	for q := 0; q < rxq; q++ {
		ms = append(ms,
			milestone{fmt.Sprintf("4.6.7 SRRCTL[%d] advanced one-buffer, DROP_EN", q), wr(regs.SRRCTL(q), has(regs.SRRCTL_DESCTYPE_ADV_ONE|regs.SRRCTL_DROP_EN))},
			milestone{fmt.Sprintf("4.6.7 RDBAL[%d]", q), wr(regs.RDBAL(q), nil)},
			milestone{fmt.Sprintf("4.6.7 RDLEN[%d]", q), wr(regs.RDLEN(q), func(v uint32) bool { return v == uint32(rxRing*16) })},
		)
	}
	ms = append(ms,
		milestone{"4.6.7 CTRL_EXT.NS_DIS", wr(regs.CTRL_EXT, has(regs.CTRL_EXT_NS_DIS))},
		milestone{"4.6.7 DCA_RXCTRL[0] bit 12 cleared", wr(regs.DCA_RXCTRL(0), hasNo(regs.DCA_RXCTRL_RESERVED12))},
		milestone{"4.6.7 RXCTRL.RXEN on", wr(regs.RXCTRL, has(regs.RXCTRL_RXEN))},
		milestone{"4.6.8 HLREG0.TXCRCEN|TXPADEN", wr(regs.HLREG0, has(regs.HLREG0_TXCRCEN|regs.HLREG0_TXPADEN))},
		milestone{"4.6.8 TXPBSIZE[0]", wr(regs.TXPBSIZE(0), nil)},
		milestone{"4.6.8 RTTDCS.ARBDIS off", wr(regs.RTTDCS, hasNo(regs.RTTDCS_ARBDIS))},
	)
	for q := 0; q < txq; q++ {
		ms = append(ms, milestone{fmt.Sprintf("4.6.8 TDBAL[%d]", q), wr(regs.TDBAL(q), nil)})
	}
	ms = append(ms, milestone{"4.6.8 DMATXCTL.TE", wr(regs.DMATXCTL, has(regs.DMATXCTL_TE))})
	for q := 0; q < rxq; q++ {
		ms = append(ms,
			milestone{fmt.Sprintf("4.6.7 RXDCTL[%d].ENABLE set", q), wr(regs.RXDCTL(q), has(regs.RXDCTL_ENABLE))},
			milestone{fmt.Sprintf("4.6.7 RXDCTL[%d].ENABLE reads 1", q), rd(regs.RXDCTL(q), has(regs.RXDCTL_ENABLE))},
			milestone{fmt.Sprintf("4.6.7 RDT[%d] = N-1", q), wr(regs.RDT(q), func(v uint32) bool { return v == uint32(rxRing-1) })},
		)
	}
	for q := 0; q < txq; q++ {
		ms = append(ms,
			milestone{fmt.Sprintf("4.6.8 TXDCTL[%d].ENABLE set", q), wr(regs.TXDCTL(q), has(regs.TXDCTL_ENABLE))},
			milestone{fmt.Sprintf("4.6.8 TXDCTL[%d].ENABLE reads 1", q), rd(regs.TXDCTL(q), has(regs.TXDCTL_ENABLE))},
		)
	}
	return ms
}

// checkOrder finds each milestone in log after the previous one and reports
// the first that is missing or out of order.
func checkOrder(log []regAccess, ms []milestone) error {
	pos := 0
	for _, m := range ms {
		found := -1
		for i := pos; i < len(log); i++ {
			if m.ok(log[i]) {
				found = i
				break
			}
		}
		if found < 0 {
			// Say whether it happened at all (then: too early).
			for i := 0; i < pos; i++ {
				if m.ok(log[i]) {
					return fmt.Errorf("step %q happened at access %d, before the previous step (access %d)", m.name, i, pos-1)
				}
			}
			return fmt.Errorf("step %q never happened", m.name)
		}
		pos = found + 1
	}
	return nil
}

// checkNoAliases reports accesses to the 82598 alias addresses: the driver
// documents that it uses canonical addresses only.
func checkNoAliases(log []regAccess) error {
	for _, a := range log {
		switch {
		case a.reg >= 0x02100 && a.reg < 0x02140, a.reg >= 0x02200 && a.reg < 0x02240,
			a.reg >= 0x05400 && a.reg < 0x05480, a.reg == regs.CTRL_ALIAS:
			return fmt.Errorf("access to alias address %#05x", a.reg)
		}
	}
	return nil
}

func TestInitOrderFake(t *testing.T) {
	f := newFakeDev(t)
	f.startLog()
	n, err := New(f, Config{RxQueues: 2, TxQueues: 2, RxRingSize: 128, LinkTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	log := f.accesses()
	if err := checkOrder(log, initMilestones(2, 2, 128)); err != nil {
		t.Fatal(err)
	}
	if err := checkNoAliases(log); err != nil {
		t.Fatal(err)
	}
}

// TestInitOrderCheckerCatchesSwap shows the checker fails on a log with two
// steps swapped (so that the test above can fail).
func TestInitOrderCheckerCatchesSwap(t *testing.T) {
	f := newFakeDev(t)
	f.startLog()
	n, err := New(f, Config{LinkTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	log := f.accesses()
	ms := initMilestones(1, 1, DefaultRingSize)
	// Move the reset write to the end of the log: reset after RX init.
	var reset regAccess
	var rest []regAccess
	for i, a := range log {
		if a.write && a.reg == regs.CTRL && a.val&regs.CTRL_RST != 0 && reset.reg == 0 {
			reset = a
			rest = append(append(rest, log[:i]...), log[i+1:]...)
			break
		}
	}
	swapped := append(rest, reset)
	if err := checkOrder(swapped, ms); err == nil || !strings.Contains(err.Error(), "reset") {
		t.Fatalf("checker accepted a log with the reset moved last: %v", err)
	}
}

func TestInitTimeoutNamesRegister(t *testing.T) {
	f := newFakeDev(t)
	f.reg[regs.EEC/4] = 0 // EEPROM auto-read never completes
	clk := &fakeClock{}
	_, err := New(f, Config{Clock: clk, LinkTimeout: -1})
	if err == nil {
		t.Fatal("New succeeded with EEC.ARD never set")
	}
	want := "ixgbe: fake0: timeout after 1s waiting for EEC.ARD (bit 9) (datasheet 4.6.3)"
	if err.Error() != want {
		t.Fatalf("error = %q, want %q", err, want)
	}
}

// TestInitFailureReleasesMemory: when a queue does not start, New fails
// with an error naming the register, resets the device (stopping any DMA
// already started) and frees every ring and pool.
func TestInitFailureReleasesMemory(t *testing.T) {
	f := newFakeDev(t)
	f.rxStuck = true
	f.startLog()
	_, err := New(f, Config{Clock: &fakeClock{}, LinkTimeout: -1})
	want := "ixgbe: fake0: timeout after 1s waiting for RXDCTL[0].ENABLE (bit 25) (datasheet 4.6.7)"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
	log := f.accesses()
	last := -1
	for i, a := range log {
		if a.write && a.reg == regs.CTRL && a.val&regs.CTRL_RST != 0 {
			last = i
		}
	}
	var enabled int
	for i, a := range log {
		if a.write && a.reg == regs.RXDCTL(0) && a.val&regs.RXDCTL_ENABLE != 0 {
			enabled = i
		}
	}
	if last < enabled {
		t.Fatal("no device reset after the failed queue start")
	}
	if n := f.alloc.LiveChunks(); n != 0 {
		t.Fatalf("%d DMA chunks still mapped after a failed New", n)
	}
}
