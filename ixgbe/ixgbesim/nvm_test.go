package ixgbesim

import (
	"testing"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/regs"
)

func newRegSim(t *testing.T, cfg Config) *NIC {
	t.Helper()
	cfg.Mode, cfg.Policy = Stepped, dma.NoHugepages
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// EERD reads the image word by word (START in, DONE and data out), and the
// reset loads the image's MAC address into RAL[0]/RAH[0].
func TestEERDSim(t *testing.T) {
	mac := [6]byte{0x02, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE}
	img := BuildEEPROM(mac, 1) // port 1's address is mac
	n := newRegSim(t, Config{EEPROM: img, LanID: 1})
	for _, w := range []int{0x00, regs.EEPROMCore1Ptr, regs.EEPROMChecksum, 0x3FF} {
		n.Write32(regs.EERD, uint32(w)<<regs.EERD_ADDR_SHIFT|regs.EERD_START)
		v := n.Read32(regs.EERD)
		if v&regs.EERD_DONE == 0 || v&regs.EERD_START != 0 || uint16(v>>16) != img[w] {
			t.Fatalf("EERD word %#x: %#08x, want DONE and %#04x", w, v, img[w])
		}
	}
	if got := n.MAC().String(); got != "02:aa:bb:cc:dd:ee" {
		t.Fatalf("MAC %s, want port 1's address from the image", got)
	}
	lo, hi := n.Read32(regs.RAL(0)), n.Read32(regs.RAH(0))
	if lo != 0xCCBBAA02 || hi != 0xEEDD|regs.RAH_AV {
		t.Fatalf("RAL/RAH %#08x %#08x", lo, hi)
	}
}

// SWSM.SMBI: the first read takes it (reads 0), later reads see 1 until
// software writes 0.
func TestSWSMSim(t *testing.T) {
	n := newRegSim(t, Config{})
	if v := n.Read32(regs.SWSM); v&regs.SWSM_SMBI != 0 {
		t.Fatalf("first SWSM read %#x, want SMBI 0", v)
	}
	if v := n.Read32(regs.SWSM); v&regs.SWSM_SMBI == 0 {
		t.Fatalf("second SWSM read %#x, want SMBI 1", v)
	}
	n.Write32(regs.SWSM, 0)
	if v := n.Read32(regs.SWSM); v&regs.SWSM_SMBI != 0 {
		t.Fatalf("SWSM after release %#x", v)
	}
}

// EIMS_EX[0] bits 15:0 are EIMS's; EIMC_EX clears them.
func TestExtendedMaskSim(t *testing.T) {
	n := newRegSim(t, Config{})
	n.Write32(regs.EIMS_EX(0), 0xFFFFFFFF)
	n.Write32(regs.EIMS_EX(1), 0x0000F00F)
	if v := n.Read32(regs.EIMS) & 0xFFFF; v != 0xFFFF {
		t.Fatalf("EIMS bits 15:0 = %#x after EIMS_EX[0] all ones", v)
	}
	if v := n.Read32(regs.EIMS_EX(1)); v != 0xF00F {
		t.Fatalf("EIMS_EX[1] = %#x", v)
	}
	n.Write32(regs.EIMC, 0x00FF)
	if v := n.Read32(regs.EIMS_EX(0)); v != 0xFFFFFF00 {
		t.Fatalf("EIMS_EX[0] = %#x after EIMC 0xFF", v)
	}
	for i := 0; i < 2; i++ {
		n.Write32(regs.EIMC_EX(i), 0xFFFFFFFF)
		if v := n.Read32(regs.EIMS_EX(i)); v != 0 {
			t.Fatalf("EIMS_EX[%d] = %#x after EIMC_EX all ones", i, v)
		}
		if v := n.Read32(regs.EIMC_EX(i)); v != 0 {
			t.Fatalf("EIMC_EX[%d] reads %#x: write-only", i, v)
		}
	}
	if v := n.Read32(regs.EIMS) & 0xFFFF; v != 0 {
		t.Fatalf("EIMS bits 15:0 = %#x after EIMC_EX[0]", v)
	}
}
