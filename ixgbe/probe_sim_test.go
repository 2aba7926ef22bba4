package ixgbe

import (
	"errors"
	"strings"
	"testing"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/ixgbe/regs"
)

// newProbeSim builds a stepped simulated NIC (no wire) for probe tests.
func newProbeSim(t *testing.T, cfg ixgbesim.Config) *ixgbesim.NIC {
	t.Helper()
	cfg.Mode = ixgbesim.Stepped
	cfg.Policy = dma.NoHugepages
	s, err := ixgbesim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func probe(t *testing.T, dev Device, clock Clock) (*NIC, error) {
	t.Helper()
	n, err := New(dev, Config{Clock: clock, LinkTimeout: -1})
	if err == nil {
		t.Cleanup(func() { n.Close() })
	}
	return n, err
}

func TestDeviceProbeSim(t *testing.T) {
	for _, c := range []struct {
		kind    ixgbesim.SFPKind
		typ     string
		present bool
	}{
		{ixgbesim.SFPShortReach, "10GBASE-SR", true},
		{ixgbesim.SFPLongReach, "10GBASE-LR", true},
		{ixgbesim.SFPDirectAttach, "direct attach (passive)", true},
		{ixgbesim.SFPAbsent, "", false}, // empty cage
	} {
		t.Run(c.typ, func(t *testing.T) {
			s := newProbeSim(t, ixgbesim.Config{SFP: ixgbesim.SFPModule{Kind: c.kind, Vendor: "ACME OPTICS"}})
			n, err := probe(t, s, s.Clock())
			if err != nil {
				t.Fatal(err)
			}
			in := n.Info()
			if in.VendorID != 0x8086 || in.DeviceID != 0x10FB || in.Media != MediaSFP {
				t.Fatalf("identity %04x:%04x %s, want 8086:10fb SFP+", in.VendorID, in.DeviceID, in.Media)
			}
			if in.PermanentMAC.String() != s.MAC().String() || !in.RARMatchesEEPROM {
				t.Fatalf("EEPROM MAC %v (matches RAL/RAH: %v), device MAC %v", in.PermanentMAC, in.RARMatchesEEPROM, s.MAC())
			}
			if in.PBA != "E66560-002" || in.ETrackID != 0x80000546 {
				t.Fatalf("PBA %q eTrack %#x, want E66560-002 0x80000546", in.PBA, in.ETrackID)
			}
			if in.SFP.Present != c.present || in.SFP.Type != c.typ {
				t.Fatalf("SFP %+v, want present %v type %q", in.SFP, c.present, c.typ)
			}
			if c.present && (in.SFP.Vendor != "ACME OPTICS" || in.SFP.Identifier != 0x03 || in.SFP.OUI != [3]byte{0x00, 0x1B, 0x21}) {
				t.Fatalf("SFP %+v: vendor, identifier or OUI wrong", in.SFP)
			}
			if r, w, offs := s.UnknownAccesses(); r != 0 || w != 0 {
				t.Fatalf("unknown register accesses: %d reads, %d writes at %#x", r, w, offs)
			}
		})
	}
}

func TestEEPROMChecksumSim(t *testing.T) {
	var mac [6]byte
	copy(mac[:], []byte{0x02, 0x11, 0x22, 0x33, 0x44, 0x55})
	good := ixgbesim.BuildEEPROM(mac, 0)
	if got := ixgbesim.EEPROMSum(good) + good[regs.EEPROMChecksum]; got != regs.EEPROMSum {
		t.Fatalf("built image sums to %#x", got)
	}
	corrupt := func(word int) []uint16 {
		img := append([]uint16(nil), good...)
		img[word] ^= 0x0100
		return img
	}
	core := int(good[regs.EEPROMCore0Ptr])
	for _, c := range []struct {
		name string
		img  []uint16
		ok   bool
	}{
		{"valid", good, true},
		{"control word changed", corrupt(0x01), false},
		{"MAC word in the core module changed", corrupt(core + 2), false},
		{"checksum word changed", corrupt(regs.EEPROMChecksum), false},
		{"word outside the checksummed area changed", corrupt(0x3FF), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newProbeSim(t, ixgbesim.Config{EEPROM: c.img})
			_, err := probe(t, s, s.Clock())
			if c.ok && err != nil {
				t.Fatal(err)
			}
			if !c.ok && !errors.Is(err, ErrEEPROMChecksum) {
				t.Fatalf("New = %v, want ErrEEPROMChecksum", err)
			}
		})
	}
}

func TestUnsupportedDeviceRefusedSim(t *testing.T) {
	for _, c := range []struct {
		id   uint16
		want string
	}{
		{0x10F7, "backplane"},
		{0x151C, "10GBASE-T"},
		{0x10F9, "CX4"},
		{0x1533, "not an 82599"},
	} {
		s := newProbeSim(t, ixgbesim.Config{DeviceID: c.id})
		_, err := probe(t, s, s.Clock())
		if !errors.Is(err, ErrUnsupportedDevice) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("device %04x: New = %v, want ErrUnsupportedDevice naming %q", c.id, err, c.want)
		}
	}
	for _, d := range Devices82599() {
		if d.Supported != (d.Media == MediaSFP) || d.Supported != (d.Why == "") {
			t.Fatalf("%04x %s: supported %v, media %s, why %q", d.DeviceID, d.Model, d.Supported, d.Media, d.Why)
		}
	}
	s := newProbeSim(t, ixgbesim.Config{DeviceID: 0x1557})
	if _, err := probe(t, s, s.Clock()); err != nil {
		t.Fatalf("82599EN SFP+: %v", err)
	}
}

// dmatxctlDevice makes DMATXCTL read with ether type 0 until the driver
// writes it, as a device whose reset left VT cleared would.
type dmatxctlDevice struct {
	*ixgbesim.NIC
	written bool
}

func (d *dmatxctlDevice) Read32(reg uint32) uint32 {
	v := d.NIC.Read32(reg)
	if reg == regs.DMATXCTL && !d.written {
		v &^= regs.DMATXCTL_VT_MASK
	}
	return v
}

func (d *dmatxctlDevice) Write32(reg, v uint32) {
	if reg == regs.DMATXCTL {
		d.written = true
	}
	d.NIC.Write32(reg, v)
}

func TestDMATXCTLResetCheckedSim(t *testing.T) {
	s := newProbeSim(t, ixgbesim.Config{})
	n, err := probe(t, s, s.Clock())
	if err != nil {
		t.Fatal(err)
	}
	if in := n.Info(); in.DMATXCTLReset != 0x81000000 || in.DMATXCTLFixed {
		t.Fatalf("DMATXCTL after reset %#x (fixed %v), want 0x81000000 untouched", in.DMATXCTLReset, in.DMATXCTLFixed)
	}
	s2 := newProbeSim(t, ixgbesim.Config{})
	n2, err := probe(t, &dmatxctlDevice{NIC: s2}, s2.Clock())
	if err != nil {
		t.Fatal(err)
	}
	if in := n2.Info(); !in.DMATXCTLFixed || in.DMATXCTLReset>>16 != 0 {
		t.Fatalf("info %+v: want the cleared VT seen and fixed", in)
	}
	if v := s2.Read32(regs.DMATXCTL); v != 0x81000000|regs.DMATXCTL_TE {
		t.Fatalf("DMATXCTL = %#x, want VT 0x8100 and TE", v)
	}
}

func TestInterruptClearMaskSim(t *testing.T) {
	var log *loggingDevice
	p := newSimPair(t, pairOpts{mode: ixgbesim.Stepped, wrapA: func(d Device) Device {
		log = &loggingDevice{Device: d}
		return log
	}})
	_ = p
	want := []uint32{regs.EIMC, regs.EIMC_EX(0), regs.EIMC_EX(1)}
	seen := map[uint32]int{}
	for _, a := range log.accesses() {
		for _, r := range want {
			if a.write && a.reg == r {
				if a.val != 0xFFFFFFFF {
					t.Fatalf("write %#x to %#05x, want 0xFFFFFFFF (IXGBE_IRQ_CLEAR_MASK)", a.val, r)
				}
				seen[r]++
			}
		}
	}
	for _, r := range want {
		if seen[r] < 2 { // before and after the reset (4.6.3.1)
			t.Fatalf("register %#05x written %d times with the clear mask, want 2", r, seen[r])
		}
	}
}

func TestTxFrameLengthSim(t *testing.T) {
	p := newSimPair(t, pairOpts{mode: ixgbesim.Stepped, cfgB: Config{Promiscuous: true}})
	if got := p.a.MaxFrameSize(); got != 1514 {
		t.Fatalf("MaxFrameSize = %d, want 1514", got)
	}
	pool := p.a.RxPool(0)
	frame := func(n int, tagged bool, meta dma.Meta) dma.Packet {
		pk, err := pool.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		pk.Len = uint16(n)
		d := pk.Data()
		for i := range d {
			d[i] = 0
		}
		copy(d, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1})
		if tagged && n >= 18 {
			d[12], d[13], d[14], d[15] = 0x81, 0x00, 0x00, 0x05
		}
		pk.Meta = meta
		return pk
	}
	for _, c := range []struct {
		n      int
		tagged bool
		meta   dma.Meta
		ok     bool
	}{
		{16, false, 0, false},
		{17, false, 0, true},
		{60, false, 0, true},
		{1514, false, 0, true},
		{1515, false, 0, false},
		{1518, true, 0, true},
		{1519, true, 0, false},
		{1518, true, dma.TxVLAN, false},
		{1514, false, dma.TxVLAN.WithVLAN(7), true},
	} {
		pk := frame(c.n, c.tagged, c.meta)
		before := p.a.Stats().Queues[0].TxBadPackets
		k, err := p.a.TxBatch(0, []dma.Packet{pk})
		bad := p.a.Stats().Queues[0].TxBadPackets - before
		if c.ok && (k != 1 || err != nil || bad != 0) {
			t.Fatalf("%d bytes (tagged %v, meta %#x): TxBatch = %d, %v, bad %d; want sent", c.n, c.tagged, c.meta, k, err, bad)
		}
		if !c.ok {
			if k != 0 || !errors.Is(err, ErrBadPacket) || bad != 1 {
				t.Fatalf("%d bytes (tagged %v, meta %#x): TxBatch = %d, %v, bad %d; want ErrBadPacket counted", c.n, c.tagged, c.meta, k, err, bad)
			}
			pk.Free()
		}
	}
	p.sa.Drain(1 << 10)
	p.sb.Drain(1 << 10)
	p.checkClean(t)
}

// TestExtraStatsSim: XEC counts received checksum errors and MLFC link
// losses; the driver accumulates them from the clear-on-read registers
// (datasheet 8.2.3.23).
func TestExtraStatsSim(t *testing.T) {
	p := newSimPair(t, pairOpts{mode: ixgbesim.Stepped})
	p.waitLinks(t)
	dst, src := p.b.MAC(), p.a.MAC()
	good := l4Frame(dst, src, 6, 1, 100, 0, 0)
	badL4 := l4Frame(dst, src, 6, 1, 100, 0, 0)
	badL4[60] ^= 1
	badIP := l4Frame(dst, src, 17, 1, 100, 0, 0)
	badIP[14+8] ^= 1
	for _, f := range [][]byte{good, badL4, badIP, badL4} {
		rxMetaOf(t, p, f)
	}
	s := p.b.Stats()
	if s.RxChecksumErrors != 3 {
		t.Fatalf("RxChecksumErrors (XEC) = %d, want 3", s.RxChecksumErrors)
	}
	// Clear on read: the register is back to 0, the total stays.
	if v := p.sb.Read32(regs.XEC); v != 0 {
		t.Fatalf("XEC reads %d after the driver read it", v)
	}
	rxMetaOf(t, p, badL4)
	if s := p.b.Stats(); s.RxChecksumErrors != 4 {
		t.Fatalf("RxChecksumErrors = %d after one more, want 4", s.RxChecksumErrors)
	}
	// A cable pulled under an up link is a local fault.
	p.cable.SetLinkUp(false)
	p.b.Link()
	p.cable.SetLinkUp(true)
	if s := p.b.Stats(); s.MACLocalFaults != 1 || s.MACRemoteFaults != 0 || s.RxNoBuffers != 0 {
		t.Fatalf("MLFC %d MRFC %d RNBC %d, want 1 0 0", s.MACLocalFaults, s.MACRemoteFaults, s.RxNoBuffers)
	}
	for i := 0; i < 8; i++ {
		if s.TxPXon[i]|s.TxPXoff[i]|s.RxPXon[i]|s.RxPXoff[i] != 0 {
			t.Fatalf("priority %d PAUSE counters non-zero without PFC", i)
		}
	}
}

// TestRNBCSim: with flow control on (SRRCTL.DROP_EN clear) a frame that
// finds the ring full waits in the packet buffer and counts in RNBC; with
// DROP_EN set it is dropped and counted in QPRDC instead.
func TestRNBCSim(t *testing.T) {
	for _, fc := range []bool{true, false} {
		p := newSimPair(t, pairOpts{mode: ixgbesim.Stepped, cfgB: Config{FlowControl: fc, RxRingSize: 64, Promiscuous: true}})
		p.waitLinks(t)
		f := l4Frame(p.b.MAC(), p.a.MAC(), 17, 1, 100, 0, 0)
		for i := 0; i < 80; i++ {
			if !p.sb.Receive(withCRC(f)) {
				t.Fatalf("frame %d refused", i)
			}
		}
		p.sb.Drain(0)
		s := p.b.Stats()
		if fc && (s.RxNoBuffers != 1 || s.RxDropped != 0) {
			t.Fatalf("flow control: RNBC %d, QPRDC %d; want 1 waiting frame counted, none dropped", s.RxNoBuffers, s.RxDropped)
		}
		if !fc && (s.RxNoBuffers != 0 || s.RxDropped != 80-63) {
			t.Fatalf("DROP_EN: RNBC %d, QPRDC %d; want 0 and %d", s.RxNoBuffers, s.RxDropped, 80-63)
		}
		rx := make([]dma.Packet, 64)
		for got := 0; ; {
			k, err := p.b.RxBatch(0, rx)
			if err != nil {
				t.Fatal(err)
			}
			for _, pk := range rx[:k] {
				pk.Free()
			}
			got += k
			p.sb.Drain(0)
			if k == 0 {
				want := 80
				if !fc {
					want = 63
				}
				if got != want {
					t.Fatalf("flow control %v: received %d, want %d", fc, got, want)
				}
				break
			}
		}
		if s := p.b.Stats(); s.RxNoBuffers != 0 && !fc || fc && s.RxNoBuffers != 1 {
			t.Fatalf("flow control %v: RNBC total %d after draining", fc, s.RxNoBuffers)
		}
		p.checkClean(t)
	}
}

// fwHoldsPHY makes the firmware hold port 0's PHY semaphore for ever
// (SW_FW_SYNC's firmware PHY0 bit, 10.5.4).
type fwHoldsPHY struct{ *ixgbesim.NIC }

func (d fwHoldsPHY) Read32(reg uint32) uint32 {
	v := d.NIC.Read32(reg)
	if reg == regs.SW_FW_SYNC {
		v |= regs.SW_FW_SYNC_SW_PHY0 * regs.SW_FW_SYNC_FW_EEP
	}
	return v
}

// A module that cannot be read (the PHY semaphore never free) is reported,
// not fatal: the port comes up without its identification.
func TestSFPSemaphoreTimeoutSim(t *testing.T) {
	s := newProbeSim(t, ixgbesim.Config{})
	n, err := probe(t, fwHoldsPHY{s}, s.Clock())
	if err != nil {
		t.Fatal(err)
	}
	in := n.Info()
	if in.SFP.Present || !strings.Contains(in.SFPError, "SW_FW_SYNC") || in.PBA == "" {
		t.Fatalf("info %+v: want the EEPROM read and the module unidentified with a SW_FW_SYNC error", in)
	}
}
