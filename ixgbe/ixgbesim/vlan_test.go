package ixgbesim

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/verinic/verinic/ixgbe/regs"
)

// rxDesc receives frame on queue 0 and returns its write-back status,
// VLAN field and the bytes delivered; ok false when the MAC refused it.
func rxDesc(t *testing.T, n *NIC, d *tDriver, frame []byte) (status uint32, vlan uint16, data []byte, ok bool) {
	t.Helper()
	if !n.Receive(withFCS(frame)) {
		return 0, 0, nil, false
	}
	n.Drain(0)
	rq := &d.rx[0]
	desc := rq.desc(rq.next)
	status = atomicLoad32(desc[regs.RXD_WB_STATUS_ERROR:])
	vlan = binary.LittleEndian.Uint16(desc[regs.RXD_WB_VLAN:])
	got := d.recv(0)
	if len(got) != 1 {
		t.Fatalf("received %d frames", len(got))
	}
	return status, vlan, got[0], true
}

// VLAN strip (RXDCTL.VME, 7.1.6.2: VP and the tag in the write-back) and
// the VLAN filter (VLNCTRL.VFE with the VFTA, 8.2.3.7.2, 8.2.3.7.15).
func TestRxVLANStripAndFilter(t *testing.T) {
	n, d, _ := soloNIC(t, "vlan", 1)
	tagged := csFrame{vlan: true, proto: 6, payload: 80}.build(n.MAC()) // VID 5, PCP 1
	untagged := append(append([]byte(nil), tagged[:12]...), tagged[16:]...)
	const tci = 0x2005

	// No strip: VP set, the tag stays in the frame, VLAN field 0.
	st, v, data, ok := rxDesc(t, n, d, tagged)
	if !ok || st&regs.RXD_STAT_VP == 0 || v != 0 || !bytes.Equal(data, tagged) {
		t.Fatalf("no strip: ok %v status %#x vlan %#x, frame kept %v", ok, st, v, bytes.Equal(data, tagged))
	}
	// Strip: the tag moves to the write-back; checksums still checked.
	d.set(regs.RXDCTL(0), regs.RXDCTL_VME)
	st, v, data, ok = rxDesc(t, n, d, tagged)
	if !ok || st&regs.RXD_STAT_VP == 0 || v != tci || !bytes.Equal(data, untagged) {
		t.Fatalf("strip: ok %v status %#x vlan %#x, frame untagged %v (%d bytes)", ok, st, v, bytes.Equal(data, untagged), len(data))
	}
	if st&regs.RXD_CSUM_BITS != regs.RXD_STAT_IPCS|regs.RXD_STAT_L4CS {
		t.Fatalf("strip: checksum bits %#x", st&regs.RXD_CSUM_BITS)
	}
	// An untagged frame: no VP, no tag.
	st, v, _, _ = rxDesc(t, n, d, untagged)
	if st&regs.RXD_STAT_VP != 0 || v != 0 {
		t.Fatalf("untagged: status %#x vlan %#x", st, v)
	}
	// Filter on: VID 5 not in the VFTA is dropped, counted as filtered
	// (RXNFGPC but not GPRC); untagged frames pass.
	d.set(regs.VLNCTRL, regs.VLNCTRL_VFE)
	nf0, gp0 := d.rd(regs.RXNFGPC), d.rd(regs.GPRC)
	if _, _, _, ok := rxDesc(t, n, d, tagged); ok {
		t.Fatal("VID 5 passed an empty VFTA")
	}
	if nf, gp := d.rd(regs.RXNFGPC), d.rd(regs.GPRC); nf != 1 || gp != 0 {
		t.Fatalf("filtered frame: RXNFGPC %d GPRC %d (before %d %d)", nf, gp, nf0, gp0)
	}
	if _, _, _, ok := rxDesc(t, n, d, untagged); !ok {
		t.Fatal("untagged frame filtered")
	}
	d.wr(regs.VFTA(0), 1<<5)
	if st, v, _, ok := rxDesc(t, n, d, tagged); !ok || v != tci || st&regs.RXD_STAT_VP == 0 {
		t.Fatalf("VID 5 in the VFTA: ok %v vlan %#x status %#x", ok, v, st)
	}
	other := append([]byte(nil), tagged...)
	other[15] = 6 // VID 6
	if _, _, _, ok := rxDesc(t, n, d, other); ok {
		t.Fatal("VID 6 passed a VFTA admitting only 5")
	}
	// CFIEN: the CFI bit must equal VLNCTRL.CFI.
	d.set(regs.VLNCTRL, regs.VLNCTRL_CFIEN)
	cfi := append([]byte(nil), tagged...)
	cfi[14] |= 0x10
	if _, _, _, ok := rxDesc(t, n, d, cfi); ok {
		t.Fatal("CFI 1 passed with VLNCTRL.CFI 0")
	}
	if _, _, _, ok := rxDesc(t, n, d, tagged); !ok {
		t.Fatal("CFI 0 refused with VLNCTRL.CFI 0")
	}
}
