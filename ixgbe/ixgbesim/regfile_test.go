package ixgbesim

import (
	"testing"
	"time"

	"github.com/verinic/verinic/ixgbe/regs"
)

func TestResetValues(t *testing.T) {
	n := newStepped(t, "r", nil)
	for _, c := range []struct {
		name string
		reg  uint32
		want uint32
	}{
		{"SRRCTL[0]", regs.SRRCTL(0), 0x00000402},
		{"SRRCTL[70]", regs.SRRCTL(70), 0x00000402},
		{"RXPBSIZE[0]", regs.RXPBSIZE(0), 0x00080000},
		{"RXPBSIZE[1]", regs.RXPBSIZE(1), 0},
		{"TXPBSIZE[0]", regs.TXPBSIZE(0), 0x00028000},
		{"DTXMXSZRQ", regs.DTXMXSZRQ, 0x10},
		{"EEC", regs.EEC, 0x00001730},
		{"RDRXCTL", regs.RDRXCTL, 0x00108808},
		{"HLREG0", regs.HLREG0, 0x08012C0B},
		{"AUTOC", regs.AUTOC, 0xC19D8284},
		{"DCA_RXCTRL[3]", regs.DCA_RXCTRL(3), 0xB200},
		{"MAXFRS", regs.MAXFRS, 0x05EE0000},
		{"SECRXSTAT", regs.SECRXSTAT, regs.SECRXSTAT_SECRX_RDY},
		{"EIMS", regs.EIMS, 0},
		{"RXDCTL[0]", regs.RXDCTL(0), 0},
	} {
		if got := n.Read32(c.reg); got != c.want {
			t.Errorf("%s = %#08x, want %#08x", c.name, got, c.want)
		}
	}
	// EEC.PRES and ARD, RDRXCTL.DMAIDONE: what ixy waits for.
	if n.Read32(regs.EEC)&(regs.EEC_PRES|regs.EEC_ARD) != regs.EEC_PRES|regs.EEC_ARD {
		t.Error("EEC.PRES|ARD not set after power-on")
	}
	// The MAC address is in RAL[0]/RAH[0] with AV.
	mac := n.MAC()
	ral, rah := n.Read32(regs.RAL(0)), n.Read32(regs.RAH(0))
	got := []byte{byte(ral), byte(ral >> 8), byte(ral >> 16), byte(ral >> 24), byte(rah), byte(rah >> 8)}
	if string(got) != string(mac) || rah&regs.RAH_AV == 0 {
		t.Errorf("RAL/RAH[0] = %#x/%#x, want MAC %v with AV", ral, rah, mac)
	}
	if mac[0]&2 == 0 || mac[0]&1 != 0 {
		t.Errorf("default MAC %v is not locally administered unicast", mac)
	}
}

func TestAliasesShareStorage(t *testing.T) {
	n := newStepped(t, "alias", nil)
	pairs := []struct {
		name             string
		canonical, alias uint32
	}{
		{"SRRCTL[5]", regs.SRRCTL(5), regs.SRRCTLAlias(5)},
		{"DCA_RXCTRL[15]", regs.DCA_RXCTRL(15), regs.DCA_RXCTRLAlias(15)},
		{"RAL[3]", regs.RAL(3), regs.RALAlias(3)},
		{"RAH[3]", regs.RAH(3), regs.RAHAlias(3)},
		{"CTRL", regs.CTRL, regs.CTRL_ALIAS},
	}
	for _, p := range pairs {
		v := uint32(0x00001234)
		n.Write32(p.alias, v)
		if got := n.Read32(p.canonical); got != v {
			t.Errorf("%s: wrote %#x at alias %#x, canonical %#x reads %#x", p.name, v, p.alias, p.canonical, got)
		}
		n.Write32(p.canonical, v+1)
		if got := n.Read32(p.alias); got != v+1 {
			t.Errorf("%s: wrote %#x at canonical, alias reads %#x", p.name, v+1, got)
		}
	}
	// QPTC and its 82598 alias count the same packets (tested with real
	// traffic in TestStatistics); here: both names resolve to one register.
	if RegisterName(regs.QPTCAlias(2)) != RegisterName(regs.QPTC(2)) || RegisterName(regs.QPTC(2)) == "" {
		t.Errorf("QPTC alias names %q, %q", RegisterName(regs.QPTCAlias(2)), RegisterName(regs.QPTC(2)))
	}
}

func TestEveryRegsRegisterIsKnown(t *testing.T) {
	offs := []uint32{regs.CTRL, regs.CTRL_ALIAS, regs.STATUS, regs.CTRL_EXT, regs.EEC, regs.EICR, regs.EICS,
		regs.EIMS, regs.EIMC, regs.EIAC, regs.EIAM, regs.GPIE, regs.RDRXCTL, regs.RXCTRL, regs.FCTRL,
		regs.HLREG0, regs.MAXFRS, regs.VLNCTRL, regs.SECRXCTRL, regs.SECRXSTAT, regs.DMATXCTL,
		regs.DTXMXSZRQ, regs.RTTDCS, regs.AUTOC, regs.LINKS, regs.AUTOC2, regs.CRCERRS, regs.ILLERRC,
		regs.ERRBC, regs.RLEC, regs.PRC64, regs.PRC127, regs.PRC255, regs.PRC511, regs.PRC1023,
		regs.PRC1522, regs.GPRC, regs.BPRC, regs.MPRC, regs.GPTC, regs.GORCL, regs.GORCH, regs.GOTCL,
		regs.GOTCH, regs.RUC, regs.RFC, regs.ROC, regs.RJC, regs.TORL, regs.TORH, regs.TPR, regs.TPT,
		regs.PTC64, regs.PTC127, regs.PTC255, regs.PTC511, regs.PTC1023, regs.PTC1522, regs.MPTC,
		regs.BPTC, regs.RXNFGPC, regs.MRQC, regs.MCSTCTRL, regs.RXCSUM}
	for n := 0; n < 24; n++ {
		offs = append(offs, regs.EITR(n))
	}
	offs = append(offs, regs.EITR(100))
	for q := 0; q < regs.MaxQueues; q++ {
		offs = append(offs, regs.RDBAL(q), regs.RDBAH(q), regs.RDLEN(q), regs.RDH(q), regs.RDT(q),
			regs.RXDCTL(q), regs.SRRCTL(q), regs.DCA_RXCTRL(q), regs.TDBAL(q), regs.TDBAH(q),
			regs.TDLEN(q), regs.TDH(q), regs.TDT(q), regs.TXDCTL(q), regs.TDWBAL(q), regs.TDWBAH(q),
			regs.RAL(q), regs.RAH(q), regs.MTA(q), regs.MPSAR_LO(q), regs.MPSAR_HI(q))
		if q < 16 {
			offs = append(offs, regs.SRRCTLAlias(q), regs.DCA_RXCTRLAlias(q), regs.RALAlias(q), regs.RAHAlias(q),
				regs.QPRC(q), regs.QPRDC(q), regs.QBRC_L(q), regs.QBRC_H(q), regs.QPTC(q), regs.QPTCAlias(q),
				regs.QBTC_L(q), regs.QBTC_H(q))
		}
		if q < 64 {
			offs = append(offs, regs.IVAR(q))
		}
		if q < 32 {
			offs = append(offs, regs.RQSMR(q), regs.TQSM(q), regs.RETA(q))
		}
		if q < 10 {
			offs = append(offs, regs.RSSRK(q))
		}
		if q < 8 {
			offs = append(offs, regs.RXPBSIZE(q), regs.TXPBSIZE(q), regs.FCRTH(q), regs.MPC(q), regs.TXPBTHRESH(q))
		}
	}
	for _, off := range offs {
		if RegisterName(off) == "" {
			t.Errorf("offset %#05x is not in the register file", off)
		}
	}
}

func TestUnknownOffsetsCounted(t *testing.T) {
	n := newStepped(t, "unk", nil)
	if r, w, _ := n.UnknownAccesses(); r != 0 || w != 0 {
		t.Fatalf("fresh NIC has %d/%d unknown accesses", r, w)
	}
	n.Write32(0x1FFF0, 5)
	if v := n.Read32(0x1FFF0); v != 0 {
		t.Errorf("unknown offset reads %#x, want 0", v)
	}
	n.Read32(0x7) // misaligned
	r, w, offs := n.UnknownAccesses()
	if r != 2 || w != 1 || len(offs) != 2 {
		t.Errorf("unknown accesses: %d reads, %d writes, offsets %x", r, w, offs)
	}
}

func TestAccessKinds(t *testing.T) {
	n := newStepped(t, "acc", nil)

	// Read-only: STATUS, LINKS, SECRXSTAT ignore writes.
	st := n.Read32(regs.STATUS)
	n.Write32(regs.STATUS, 0xFFFFFFFF)
	n.Write32(regs.LINKS, 0xFFFFFFFF)
	if n.Read32(regs.STATUS) != st || n.Read32(regs.LINKS)&regs.LINKS_UP != 0 {
		t.Error("STATUS or LINKS took a write")
	}

	// Masked bits: RDBAL ignores bits 6:0, RDLEN keeps multiples of 128,
	// EEC.ARD and RDRXCTL.DMAIDONE are read-only.
	n.Write32(regs.RDBAL(1), 0x12345FFF)
	if v := n.Read32(regs.RDBAL(1)); v != 0x12345F80 {
		t.Errorf("RDBAL = %#x, want bits 6:0 clear", v)
	}
	n.Write32(regs.EEC, 0)
	if n.Read32(regs.EEC)&regs.EEC_ARD == 0 {
		t.Error("writing EEC cleared ARD")
	}
	n.Write32(regs.RDRXCTL, 0)
	if n.Read32(regs.RDRXCTL)&regs.RDRXCTL_DMAIDONE == 0 {
		t.Error("writing RDRXCTL cleared DMAIDONE")
	}

	// EICR: EICS sets, write 1 clears, read clears.
	n.Write32(regs.EICS, 0x5)
	if n.Read32(regs.EICS) != 0 {
		t.Error("EICS is write-only and must read 0")
	}
	n.Write32(regs.EICR, 0x1)
	if v := n.Read32(regs.EICR); v != 0x4 {
		t.Errorf("EICR after EICS=5, W1C 1: %#x, want 0x4", v)
	}
	if v := n.Read32(regs.EICR); v != 0 {
		t.Errorf("EICR not cleared by the read: %#x", v)
	}

	// EIMS / EIMC: one mask, set and clear by writing ones.
	n.Write32(regs.EIMS, 0x0F)
	n.Write32(regs.EIMS, 0x00) // no effect (ixy's step 1)
	n.Write32(regs.EIMC, 0x03)
	if v := n.Read32(regs.EIMS); v != 0x0C {
		t.Errorf("EIMS = %#x, want 0xC", v)
	}
	if n.Read32(regs.EIMC) != 0 {
		t.Error("EIMC is write-only")
	}

	// Statistics: writes ignored, read clears.
	n.count(regs.GPRC, 3)
	n.Write32(regs.GPRC, 100)
	if v := n.Read32(regs.GPRC); v != 3 {
		t.Errorf("GPRC = %d, want 3", v)
	}
	if v := n.Read32(regs.GPRC); v != 0 {
		t.Errorf("GPRC not cleared by read: %d", v)
	}

	// 64-bit pair: low read latches, high read returns the latched half
	// and clears the pair; counts arriving in between survive.
	n.count64(pairGORC, 0x1_0000_0010)
	lo := n.Read32(regs.GORCL)
	n.count64(pairGORC, 5)
	hi := n.Read32(regs.GORCH)
	if lo != 0x10 || hi != 1 {
		t.Errorf("GORC = %#x:%#x, want 1:0x10", hi, lo)
	}
	if lo, hi := n.Read32(regs.GORCL), n.Read32(regs.GORCH); lo != 5 || hi != 0 {
		t.Errorf("after clear, GORC = %#x:%#x, want 0:5", hi, lo)
	}
	if lo, hi := n.Read32(regs.GORCL), n.Read32(regs.GORCH); lo != 0 || hi != 0 {
		t.Errorf("GORC not cleared: %#x:%#x", hi, lo)
	}
	// High half alone also clears.
	n.count64(pairGOTC, 0x2_0000_0000)
	if hi := n.Read32(regs.GOTCH); hi != 2 {
		t.Errorf("GOTCH = %d", hi)
	}
	if lo := n.Read32(regs.GOTCL); lo != 0 {
		t.Errorf("GOTC not cleared by GOTCH read: low %d", lo)
	}

	// PCIe master disable clears STATUS.GIO_MASTER_E (what drivers poll
	// before a reset).
	if n.Read32(regs.STATUS)&regs.STATUS_GIO_MASTER_E == 0 {
		t.Error("GIO master enable status clear at reset")
	}
	n.Write32(regs.CTRL, regs.CTRL_PCIE_MDE)
	if n.Read32(regs.STATUS)&regs.STATUS_GIO_MASTER_E != 0 {
		t.Error("GIO master enable status still set after CTRL.PCIE_MDE")
	}
	n.Write32(regs.CTRL, 0)

	// TXDCTL.SWFLSH self-clears.
	n.Write32(regs.TXDCTL(2), regs.TXDCTL_SWFLSH|4<<16)
	if v := n.Read32(regs.TXDCTL(2)); v != 4<<16 {
		t.Errorf("TXDCTL = %#x, want SWFLSH clear and WTHRESH kept", v)
	}
}

func TestResetSequence(t *testing.T) {
	n := newStepped(t, "rst", nil)
	clk := n.Clock()
	n.Write32(regs.SRRCTL(0), 0x12000404)
	n.Write32(regs.FCTRL, regs.FCTRL_BAM)
	n.count(regs.GPRC, 9)
	n.Write32(regs.CTRL, regs.CTRL_RST|regs.CTRL_LNK_RST)
	if n.Read32(regs.CTRL)&regs.CTRL_RST == 0 {
		t.Fatal("CTRL.RST reads 0 during the reset")
	}
	if n.Read32(regs.EEC)&regs.EEC_ARD != 0 || n.Read32(regs.RDRXCTL)&regs.RDRXCTL_DMAIDONE != 0 {
		t.Fatal("ARD or DMAIDONE set during the reset")
	}
	clk.Sleep(DefaultResetDelay / 2)
	if n.Read32(regs.CTRL)&regs.CTRL_RST == 0 {
		t.Fatal("reset completed early")
	}
	clk.Sleep(DefaultResetDelay / 2)
	if v := n.Read32(regs.CTRL); v&regs.CTRL_RST_MASK != 0 {
		t.Fatalf("CTRL = %#x after the reset delay", v)
	}
	clk.Sleep(DefaultAutoReadDelay)
	if n.Read32(regs.EEC)&regs.EEC_ARD == 0 || n.Read32(regs.RDRXCTL)&regs.RDRXCTL_DMAIDONE == 0 {
		t.Fatal("ARD/DMAIDONE not set after reset")
	}
	if v := n.Read32(regs.SRRCTL(0)); v != 0x402 {
		t.Errorf("SRRCTL after reset = %#x", v)
	}
	if v := n.Read32(regs.FCTRL); v != 0 {
		t.Errorf("FCTRL after reset = %#x", v)
	}
	if v := n.Read32(regs.GPRC); v != 0 {
		t.Errorf("GPRC after reset = %d", v)
	}
}

func TestLinkUpAfterANRestart(t *testing.T) {
	n := newStepped(t, "link", nil)
	clk := n.Clock()
	w := newCapture()
	w.up.Store(false)
	n.Attach(w)
	n.Write32(regs.AUTOC, n.Read32(regs.AUTOC)|regs.AUTOC_AN_RESTART)
	if n.Read32(regs.AUTOC)&regs.AUTOC_AN_RESTART == 0 {
		t.Error("AN_RESTART reads 0 while negotiating")
	}
	clk.Sleep(time.Second)
	if n.Read32(regs.AUTOC)&regs.AUTOC_AN_RESTART != 0 {
		t.Error("AN_RESTART did not self-clear")
	}
	if n.Read32(regs.LINKS)&regs.LINKS_UP != 0 {
		t.Fatal("link up with the wire down")
	}
	n.Read32(regs.EICR)
	w.up.Store(true)
	n.Read32(regs.LINKS) // the MAC notices the wire
	clk.Sleep(DefaultLinkUpDelay - time.Microsecond)
	if n.Read32(regs.LINKS)&regs.LINKS_UP != 0 {
		t.Fatal("link up before the training delay")
	}
	clk.Sleep(time.Microsecond)
	links := n.Read32(regs.LINKS)
	if links&regs.LINKS_UP == 0 || links&regs.LINKS_SPEED_MASK != regs.LINKS_SPEED_10G {
		t.Fatalf("LINKS = %#x, want up at 10G", links)
	}
	if n.Read32(regs.STATUS)&regs.STATUS_LINKUP == 0 {
		t.Error("STATUS.LINKUP clear with the link up")
	}
	if n.Read32(regs.EICR)&regs.EICR_LSC == 0 {
		t.Error("EICR.LSC not set on link up")
	}
	w.up.Store(false)
	if n.Read32(regs.LINKS)&regs.LINKS_UP != 0 {
		t.Error("link still up with the wire down")
	}
	if n.Read32(regs.EICR)&regs.EICR_LSC == 0 {
		t.Error("EICR.LSC not set on link down")
	}
}

func TestQueueEnableReadsBack(t *testing.T) {
	n := newStepped(t, "qen", nil)
	ring, err := n.DMA().Alloc(1024, 128)
	if err != nil {
		t.Fatal(err)
	}
	n.Write32(regs.RDBAL(3), uint32(ring.IOVA()))
	n.Write32(regs.RDBAH(3), uint32(ring.IOVA()>>32))
	n.Write32(regs.RDLEN(3), 1024)
	n.Write32(regs.RXDCTL(3), regs.RXDCTL_ENABLE)
	if n.Read32(regs.RXDCTL(3))&regs.RXDCTL_ENABLE == 0 {
		t.Fatal("RXDCTL.ENABLE reads 0 after enabling a valid ring")
	}
	// RDH is read-only while the queue runs.
	n.Write32(regs.RDH(3), 7)
	if v := n.Read32(regs.RDH(3)); v != 0 {
		t.Errorf("RDH = %d after a write while enabled", v)
	}
	n.Write32(regs.RXDCTL(3), 0)
	if n.Read32(regs.RXDCTL(3))&regs.RXDCTL_ENABLE != 0 {
		t.Fatal("RXDCTL.ENABLE reads 1 after disabling")
	}
	n.Write32(regs.RDH(3), 7)
	if v := n.Read32(regs.RDH(3)); v != 7 {
		t.Errorf("RDH = %d after a write while disabled", v)
	}
	// An invalid ring does not enable (TDLEN 0).
	n.Write32(regs.TXDCTL(4), regs.TXDCTL_ENABLE)
	if n.Read32(regs.TXDCTL(4))&regs.TXDCTL_ENABLE != 0 {
		t.Fatal("TXDCTL.ENABLE reads 1 with TDLEN 0")
	}
	// At reset HLREG0 strips the CRC but RDRXCTL.CRCSTRIP is clear: the
	// enable above reported the mismatch.
	if v := n.Violations(); len(v) != 3 || v[0].Kind != ConfigMismatch || v[1].Kind != HeadWrite || v[2].Kind != BadRingConfig {
		t.Errorf("violations %v, want config-mismatch, head-write, bad-ring-config", v)
	}
}

func TestRemoveAndStall(t *testing.T) {
	dom := NewDomain()
	a := newStepped(t, "ra", dom)
	b := newStepped(t, "rb", dom)
	Connect(a, b, nil, nil)
	da := initDriver(t, a, 1)
	db := initDriver(t, b, 1)
	da.waitLink()
	db.waitLink()

	b.StallDMA(true)
	da.send(0, testFrame(b.MAC(), a.MAC(), 100, 1))
	a.Drain(0)
	if b.Drain(0) != 0 {
		t.Fatal("stalled NIC made progress")
	}
	if f, _ := b.PacketBufferLen(); f != 1 {
		t.Fatalf("packet buffer holds %d frames, want 1", f)
	}
	b.StallDMA(false)
	b.Drain(0)
	if got := db.recv(0); len(got) != 1 {
		t.Fatalf("after the stall, received %d frames", len(got))
	}

	b.Remove()
	for _, r := range []uint32{regs.CTRL, regs.STATUS, regs.GPRC, 0x1FFF0} {
		if v := b.Read32(r); v != 0xFFFFFFFF {
			t.Errorf("removed NIC reads %#x at %#x", v, r)
		}
	}
	b.Write32(regs.CTRL, regs.CTRL_RST)
	da.send(0, testFrame(b.MAC(), a.MAC(), 100, 2))
	a.Drain(0)
	if b.Drain(0) != 0 {
		t.Error("removed NIC made progress")
	}
}
