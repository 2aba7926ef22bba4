package ixgbe

import (
	"testing"

	"github.com/verinic/verinic/advring"
	"github.com/verinic/verinic/ixgbe/regs"
)

// TestEngineDescriptorFormat: the ring engine's reading of the advanced
// descriptor formats (advring/family.go, shared with the 82576) agrees with
// the 82599 register map's (regs/desc.go, which regs_test.go checks against
// the datasheet's table), and the 82599's Family carries the map's
// registers and write-back bits.
func TestEngineDescriptorFormat(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint32
	}{
		{"DescSize", advring.DescSize, regs.DescSize},
		{"RxStatDD", advring.RxStatDD, regs.RXD_STAT_DD},
		{"RxStatEOP", advring.RxStatEOP, regs.RXD_STAT_EOP},
		{"TxDtypCtxt", advring.TxDtypCtxt, regs.TXD_DTYP_CTXT},
		{"TxDtypData", advring.TxDtypData, regs.TXD_DTYP_DATA},
		{"TxCmdEOP", advring.TxCmdEOP, regs.TXD_DCMD_EOP},
		{"TxCmdIFCS", advring.TxCmdIFCS, regs.TXD_DCMD_IFCS},
		{"TxCmdRS", advring.TxCmdRS, regs.TXD_DCMD_RS},
		{"TxCmdDEXT", advring.TxCmdDEXT, regs.TXD_DCMD_DEXT},
		{"TxCmdVLE", advring.TxCmdVLE, regs.TXD_DCMD_VLE},
		{"TxCmdTSE", advring.TxCmdTSE, regs.TXD_DCMD_TSE},
		{"TxPaylenShift", advring.TxPaylenShift, regs.TXD_PAYLEN_SHIFT},
		{"TxCC", advring.TxCC, regs.TXD_CC},
		{"TxPoptsIXSM", advring.TxPoptsIXSM, regs.TXD_POPTS_IXSM},
		{"TxPoptsTXSM", advring.TxPoptsTXSM, regs.TXD_POPTS_TXSM},
		{"TxStatDD", advring.TxStatDD, regs.TXD_STAT_DD},
		{"TxCtxMACLenShift", advring.TxCtxMACLenShift, regs.TXC_MACLEN_SHIFT},
		{"TxCtxVLANShift", advring.TxCtxVLANShift, regs.TXC_VLAN_SHIFT},
		{"TxCtxTucmdIPv4", advring.TxCtxTucmdIPv4, regs.TXC_TUCMD_IPV4},
		{"TxCtxTucmdL4UDP", advring.TxCtxTucmdL4UDP, regs.TXC_TUCMD_L4T_UDP},
		{"TxCtxTucmdL4TCP", advring.TxCtxTucmdL4TCP, regs.TXC_TUCMD_L4T_TCP},
		{"TxCtxL4LenShift", advring.TxCtxL4LenShift, regs.TXC_L4LEN_SHIFT},
		{"TxCtxMSSShift", advring.TxCtxMSSShift, regs.TXC_MSS_SHIFT},
		{"Layout.RXE", 1 << family.Layout.RXE, regs.RXD_ERR_RXE},
		{"Layout.IPE", 1 << family.Layout.IPE, regs.RXD_ERR_IPE},
		{"Layout.L4E", 1 << family.Layout.L4E, regs.RXD_ERR_TCPE},
		{"Layout.IPCS", 1 << family.Layout.IPCS, regs.RXD_STAT_IPCS},
		{"Layout.L4CS", 1 << family.Layout.L4CS, regs.RXD_STAT_L4CS},
		{"Layout.VP", 1 << family.Layout.VP, regs.RXD_STAT_VP},
		{"Regs.RDT(5)", family.Regs.RDT(5), 0x1018 + 5*0x40},
		{"Regs.TDT(5)", family.Regs.TDT(5), 0x6018 + 5*0x40},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, the 82599 register map says %#x", c.name, c.got, c.want)
		}
	}
}
