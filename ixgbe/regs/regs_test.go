package regs

import "testing"

// datasheetOffsets is an independent transcription of register addresses
// from the 82599 datasheet's register summary (table 8-3 "Register
// Summary", rev. 3.3), cross-checked against Snabb's intel10g/intel_mp tables,
// as "NAME[n]" -> offset for n = 0, 1 and, for indexed registers, a high
// index. The functions and constants in regs.go were written separately; this
// table must not be generated from them.
var datasheetOffsets = map[string]uint32{
	"CTRL": 0x00000, "CTRL_ALIAS": 0x00004, "STATUS": 0x00008, "CTRL_EXT": 0x00018,
	"EEC":  0x10010,
	"EICR": 0x00800, "EICS": 0x00808, "EIAC": 0x00810, "EIMS": 0x00880, "EIMC": 0x00888,
	"EIAM": 0x00890, "GPIE": 0x00898,
	"EITR[0]": 0x00820, "EITR[1]": 0x00824, "EITR[23]": 0x0087C, "EITR[24]": 0x12300, "EITR[127]": 0x1249C,
	"IVAR[0]": 0x00900, "IVAR[63]": 0x009FC,
	"RDBAL[0]": 0x01000, "RDBAL[1]": 0x01040, "RDBAL[63]": 0x01FC0, "RDBAL[64]": 0x0D000, "RDBAL[127]": 0x0DFC0,
	"RDBAH[0]": 0x01004, "RDBAH[64]": 0x0D004,
	"RDLEN[0]": 0x01008, "RDLEN[1]": 0x01048, "RDLEN[64]": 0x0D008,
	"RDH[0]": 0x01010, "RDH[1]": 0x01050, "RDH[127]": 0x0DFD0,
	"RDT[0]": 0x01018, "RDT[1]": 0x01058, "RDT[127]": 0x0DFD8,
	"RXDCTL[0]": 0x01028, "RXDCTL[1]": 0x01068, "RXDCTL[64]": 0x0D028,
	"SRRCTL[0]": 0x01014, "SRRCTL[1]": 0x01054, "SRRCTL[64]": 0x0D014,
	"SRRCTL_ALIAS[0]": 0x02100, "SRRCTL_ALIAS[15]": 0x0213C,
	"DCA_RXCTRL[0]": 0x0100C, "DCA_RXCTRL[1]": 0x0104C, "DCA_RXCTRL[64]": 0x0D00C,
	"DCA_RXCTRL_ALIAS[0]": 0x02200, "DCA_RXCTRL_ALIAS[15]": 0x0223C,
	"RDRXCTL": 0x02F00, "RXCTRL": 0x03000, "FCTRL": 0x05080, "VLNCTRL": 0x05088,
	"HLREG0": 0x04240, "MAXFRS": 0x04268, "SECRXCTRL": 0x08D00, "SECRXSTAT": 0x08D04,
	"RXPBSIZE[0]": 0x03C00, "RXPBSIZE[7]": 0x03C1C, "FCRTH[0]": 0x03260,
	// 82599 spacing is 4 (IXGBE_FCRTH_82599/IXGBE_FCRTL_82599 in Linux's
	// ixgbe_type.h; the 82598's registers were 8 apart).
	"FCRTH[1]": 0x03264, "FCRTH[7]": 0x0327C, "FCRTL[0]": 0x03220, "FCRTL[1]": 0x03224, "FCRTL[7]": 0x0323C,
	"FCTTV[0]": 0x03200, "FCTTV[3]": 0x0320C, "FCRTV": 0x032A0, "FCCFG": 0x03D00, "MFLCN": 0x04294,
	"LXONTXC": 0x03F60, "LXOFFTXC": 0x03F68, "LXONRXCNT": 0x041A4, "LXOFFRXCNT": 0x041A8,
	"MTA[0]": 0x05200, "MTA[127]": 0x053FC,
	"RAL[0]": 0x0A200, "RAH[0]": 0x0A204, "RAL[1]": 0x0A208, "RAH[127]": 0x0A5FC,
	"RAL_ALIAS[0]": 0x05400, "RAH_ALIAS[0]": 0x05404, "RAL_ALIAS[15]": 0x05478, "RAH_ALIAS[15]": 0x0547C,
	"MPSAR_LO[0]": 0x0A600, "MPSAR_HI[0]": 0x0A604,
	"TDBAL[0]": 0x06000, "TDBAL[1]": 0x06040, "TDBAL[127]": 0x07FC0,
	"TDBAH[0]": 0x06004, "TDLEN[0]": 0x06008, "TDH[0]": 0x06010, "TDH[1]": 0x06050,
	"TDT[0]": 0x06018, "TDT[1]": 0x06058, "TXDCTL[0]": 0x06028, "TXDCTL[1]": 0x06068,
	"TDWBAL[0]": 0x06038, "TDWBAH[0]": 0x0603C,
	"TXPBSIZE[0]": 0x0CC00, "TXPBSIZE[7]": 0x0CC1C, "TXPBTHRESH[0]": 0x04950,
	"DMATXCTL": 0x04A80, "DTXMXSZRQ": 0x08100, "RTTDCS": 0x04900,
	"AUTOC": 0x042A0, "LINKS": 0x042A4, "AUTOC2": 0x042A8,
	"CRCERRS": 0x04000, "ILLERRC": 0x04004, "ERRBC": 0x04008, "RLEC": 0x04040,
	"PRC64": 0x0405C, "PRC1522": 0x04070, "GPRC": 0x04074, "BPRC": 0x04078, "MPRC": 0x0407C,
	"GPTC": 0x04080, "GORCL": 0x04088, "GORCH": 0x0408C, "GOTCL": 0x04090, "GOTCH": 0x04094,
	"RUC": 0x040A4, "RFC": 0x040A8, "ROC": 0x040AC, "RJC": 0x040B0,
	"TORL": 0x040C0, "TORH": 0x040C4, "TPR": 0x040D0, "TPT": 0x040D4,
	"PTC64": 0x040D8, "PTC1522": 0x040EC, "MPTC": 0x040F0, "BPTC": 0x040F4, "RXNFGPC": 0x041B0,
	"MPC[0]": 0x03FA0, "MPC[7]": 0x03FBC,
	"RQSMR[0]": 0x02300, "RQSMR[31]": 0x0237C, "TQSM[0]": 0x08600, "TQSM[31]": 0x0867C,
	"QPRC[0]": 0x01030, "QPRC[15]": 0x013F0, "QPRDC[0]": 0x01430, "QPRDC[15]": 0x017F0,
	"QBRC_L[0]": 0x01034, "QBRC_H[0]": 0x01038,
	"QPTC[0]": 0x08680, "QPTC[15]": 0x086BC, "QPTC_ALIAS[0]": 0x06030, "QPTC_ALIAS[15]": 0x063F0,
	"QBTC_L[0]": 0x08700, "QBTC_H[0]": 0x08704, "QBTC_L[15]": 0x08778,
	// Added with the EEPROM, I2C, extended-mask and statistics registers
	// (regs/nvm.go).
	"EICS_EX[0]": 0x00A90, "EIMS_EX[0]": 0x00AA0, "EIMS_EX[1]": 0x00AA4, "EIMC_EX[0]": 0x00AB0, "EIMC_EX[1]": 0x00AB4,
	"EIAM_EX[0]": 0x00AD0, "EERD": 0x10014, "SWSM": 0x10140, "FWSM": 0x10148, "SW_FW_SYNC": 0x10160, "I2CCTL": 0x00028,
	"MLFC": 0x04034, "MRFC": 0x04038, "XEC": 0x04120, "RNBC[0]": 0x03FC0, "RNBC[7]": 0x03FDC,
	"PXONTXC[0]": 0x03F00, "PXONTXC[7]": 0x03F1C, "PXOFFTXC[0]": 0x03F20, "PXOFFTXC[7]": 0x03F3C,
	"PXONRXCNT[0]": 0x04140, "PXONRXCNT[7]": 0x0415C, "PXOFFRXCNT[0]": 0x04160, "PXOFFRXCNT[7]": 0x0417C,
}

func TestOffsetsMatchDatasheet(t *testing.T) {
	ours := map[string]uint32{
		"CTRL": CTRL, "CTRL_ALIAS": CTRL_ALIAS, "STATUS": STATUS, "CTRL_EXT": CTRL_EXT, "EEC": EEC,
		"EICR": EICR, "EICS": EICS, "EIAC": EIAC, "EIMS": EIMS, "EIMC": EIMC, "EIAM": EIAM, "GPIE": GPIE,
		"EITR[0]": EITR(0), "EITR[1]": EITR(1), "EITR[23]": EITR(23), "EITR[24]": EITR(24), "EITR[127]": EITR(127),
		"IVAR[0]": IVAR(0), "IVAR[63]": IVAR(63),
		"RDBAL[0]": RDBAL(0), "RDBAL[1]": RDBAL(1), "RDBAL[63]": RDBAL(63), "RDBAL[64]": RDBAL(64), "RDBAL[127]": RDBAL(127),
		"RDBAH[0]": RDBAH(0), "RDBAH[64]": RDBAH(64),
		"RDLEN[0]": RDLEN(0), "RDLEN[1]": RDLEN(1), "RDLEN[64]": RDLEN(64),
		"RDH[0]": RDH(0), "RDH[1]": RDH(1), "RDH[127]": RDH(127),
		"RDT[0]": RDT(0), "RDT[1]": RDT(1), "RDT[127]": RDT(127),
		"RXDCTL[0]": RXDCTL(0), "RXDCTL[1]": RXDCTL(1), "RXDCTL[64]": RXDCTL(64),
		"SRRCTL[0]": SRRCTL(0), "SRRCTL[1]": SRRCTL(1), "SRRCTL[64]": SRRCTL(64),
		"SRRCTL_ALIAS[0]": SRRCTLAlias(0), "SRRCTL_ALIAS[15]": SRRCTLAlias(15),
		"DCA_RXCTRL[0]": DCA_RXCTRL(0), "DCA_RXCTRL[1]": DCA_RXCTRL(1), "DCA_RXCTRL[64]": DCA_RXCTRL(64),
		"DCA_RXCTRL_ALIAS[0]": DCA_RXCTRLAlias(0), "DCA_RXCTRL_ALIAS[15]": DCA_RXCTRLAlias(15),
		"RDRXCTL": RDRXCTL, "RXCTRL": RXCTRL, "FCTRL": FCTRL, "VLNCTRL": VLNCTRL,
		"HLREG0": HLREG0, "MAXFRS": MAXFRS, "SECRXCTRL": SECRXCTRL, "SECRXSTAT": SECRXSTAT,
		"RXPBSIZE[0]": RXPBSIZE(0), "RXPBSIZE[7]": RXPBSIZE(7), "FCRTH[0]": FCRTH(0),
		"FCRTH[1]": FCRTH(1), "FCRTH[7]": FCRTH(7), "FCRTL[0]": FCRTL(0), "FCRTL[1]": FCRTL(1), "FCRTL[7]": FCRTL(7),
		"FCTTV[0]": FCTTV(0), "FCTTV[3]": FCTTV(3), "FCRTV": FCRTV, "FCCFG": FCCFG, "MFLCN": MFLCN,
		"LXONTXC": LXONTXC, "LXOFFTXC": LXOFFTXC, "LXONRXCNT": LXONRXCNT, "LXOFFRXCNT": LXOFFRXCNT,
		"MTA[0]": MTA(0), "MTA[127]": MTA(127),
		"RAL[0]": RAL(0), "RAH[0]": RAH(0), "RAL[1]": RAL(1), "RAH[127]": RAH(127),
		"RAL_ALIAS[0]": RALAlias(0), "RAH_ALIAS[0]": RAHAlias(0), "RAL_ALIAS[15]": RALAlias(15), "RAH_ALIAS[15]": RAHAlias(15),
		"MPSAR_LO[0]": MPSAR_LO(0), "MPSAR_HI[0]": MPSAR_HI(0),
		"TDBAL[0]": TDBAL(0), "TDBAL[1]": TDBAL(1), "TDBAL[127]": TDBAL(127),
		"TDBAH[0]": TDBAH(0), "TDLEN[0]": TDLEN(0), "TDH[0]": TDH(0), "TDH[1]": TDH(1),
		"TDT[0]": TDT(0), "TDT[1]": TDT(1), "TXDCTL[0]": TXDCTL(0), "TXDCTL[1]": TXDCTL(1),
		"TDWBAL[0]": TDWBAL(0), "TDWBAH[0]": TDWBAH(0),
		"TXPBSIZE[0]": TXPBSIZE(0), "TXPBSIZE[7]": TXPBSIZE(7), "TXPBTHRESH[0]": TXPBTHRESH(0),
		"DMATXCTL": DMATXCTL, "DTXMXSZRQ": DTXMXSZRQ, "RTTDCS": RTTDCS,
		"AUTOC": AUTOC, "LINKS": LINKS, "AUTOC2": AUTOC2,
		"CRCERRS": CRCERRS, "ILLERRC": ILLERRC, "ERRBC": ERRBC, "RLEC": RLEC,
		"PRC64": PRC64, "PRC1522": PRC1522, "GPRC": GPRC, "BPRC": BPRC, "MPRC": MPRC,
		"GPTC": GPTC, "GORCL": GORCL, "GORCH": GORCH, "GOTCL": GOTCL, "GOTCH": GOTCH,
		"RUC": RUC, "RFC": RFC, "ROC": ROC, "RJC": RJC,
		"TORL": TORL, "TORH": TORH, "TPR": TPR, "TPT": TPT,
		"PTC64": PTC64, "PTC1522": PTC1522, "MPTC": MPTC, "BPTC": BPTC, "RXNFGPC": RXNFGPC,
		"MPC[0]": MPC(0), "MPC[7]": MPC(7),
		"RQSMR[0]": RQSMR(0), "RQSMR[31]": RQSMR(31), "TQSM[0]": TQSM(0), "TQSM[31]": TQSM(31),
		"QPRC[0]": QPRC(0), "QPRC[15]": QPRC(15), "QPRDC[0]": QPRDC(0), "QPRDC[15]": QPRDC(15),
		"QBRC_L[0]": QBRC_L(0), "QBRC_H[0]": QBRC_H(0),
		"QPTC[0]": QPTC(0), "QPTC[15]": QPTC(15), "QPTC_ALIAS[0]": QPTCAlias(0), "QPTC_ALIAS[15]": QPTCAlias(15),
		"QBTC_L[0]": QBTC_L(0), "QBTC_H[0]": QBTC_H(0), "QBTC_L[15]": QBTC_L(15),
		"EICS_EX[0]": EICS_EX(0), "EIMS_EX[0]": EIMS_EX(0), "EIMS_EX[1]": EIMS_EX(1), "EIMC_EX[0]": EIMC_EX(0), "EIMC_EX[1]": EIMC_EX(1),
		"EIAM_EX[0]": EIAM_EX(0), "EERD": EERD, "SWSM": SWSM, "FWSM": FWSM, "SW_FW_SYNC": SW_FW_SYNC, "I2CCTL": I2CCTL,
		"MLFC": MLFC, "MRFC": MRFC, "XEC": XEC, "RNBC[0]": RNBC(0), "RNBC[7]": RNBC(7),
		"PXONTXC[0]": PXONTXC(0), "PXONTXC[7]": PXONTXC(7), "PXOFFTXC[0]": PXOFFTXC(0), "PXOFFTXC[7]": PXOFFTXC(7),
		"PXONRXCNT[0]": PXONRXCNT(0), "PXONRXCNT[7]": PXONRXCNT(7), "PXOFFRXCNT[0]": PXOFFRXCNT(0), "PXOFFRXCNT[7]": PXOFFRXCNT(7),
	}
	for name, want := range datasheetOffsets {
		got, ok := ours[name]
		if !ok {
			t.Errorf("%s: not checked (add it to the test)", name)
			continue
		}
		if got != want {
			t.Errorf("%s = %#05x, datasheet says %#05x", name, got, want)
		}
	}
	for name := range ours {
		if _, ok := datasheetOffsets[name]; !ok {
			t.Errorf("%s: no datasheet value to compare with", name)
		}
	}
}

// Bit positions the driver and the simulator depend on (datasheet field
// tables, and ixy's src/driver/ixgbe_type.h).
func TestBitsMatchDatasheet(t *testing.T) {
	checks := []struct {
		name      string
		got, want uint32
	}{
		{"CTRL.RST", CTRL_RST, 0x04000000},
		{"CTRL.LNK_RST", CTRL_LNK_RST, 0x00000008},
		{"CTRL_EXT.NS_DIS", CTRL_EXT_NS_DIS, 0x00010000},
		{"EEC.ARD", EEC_ARD, 0x200},
		{"EEC.PRES", EEC_PRES, 0x100},
		{"RDRXCTL.CRCSTRIP", RDRXCTL_CRCSTRIP, 0x2},
		{"RDRXCTL.DMAIDONE", RDRXCTL_DMAIDONE, 0x8},
		{"RXCTRL.RXEN", RXCTRL_RXEN, 0x1},
		{"FCTRL.MPE", FCTRL_MPE, 0x100},
		{"FCTRL.UPE", FCTRL_UPE, 0x200},
		{"FCTRL.BAM", FCTRL_BAM, 0x400},
		{"HLREG0.TXCRCEN", HLREG0_TXCRCEN, 0x1},
		{"HLREG0.RXCRCSTRP", HLREG0_RXCRCSTRP, 0x2},
		{"HLREG0.TXPADEN", HLREG0_TXPADEN, 0x400},
		{"RXDCTL.ENABLE", RXDCTL_ENABLE, 0x02000000},
		{"TXDCTL.ENABLE", TXDCTL_ENABLE, 0x02000000},
		{"SRRCTL.DESCTYPE_ADV_ONEBUF", SRRCTL_DESCTYPE_ADV_ONE, 0x02000000},
		{"SRRCTL.DESCTYPE mask", SRRCTL_DESCTYPE_MASK, 0x0E000000},
		{"SRRCTL.DROP_EN", SRRCTL_DROP_EN, 0x10000000},
		{"DMATXCTL.TE", DMATXCTL_TE, 0x1},
		{"RTTDCS.ARBDIS", RTTDCS_ARBDIS, 0x40},
		{"AUTOC.AN_RESTART", AUTOC_AN_RESTART, 0x1000},
		{"AUTOC.LMS mask", AUTOC_LMS_MASK, 0xE000},
		{"AUTOC.LMS_10G_SERIAL", AUTOC_LMS_10G_SERIAL, 0x6000},
		{"AUTOC.10G_PMA_PMD mask", AUTOC_10G_PMA_PMD_MASK, 0x180},
		{"LINKS.UP", LINKS_UP, 0x40000000},
		{"LINKS.SPEED_10G", LINKS_SPEED_10G, 0x30000000},
		{"LINKS.SPEED_1G", LINKS_SPEED_1G, 0x20000000},
		{"LINKS.SPEED_100M", LINKS_SPEED_100M, 0x10000000},
		{"RXPBSIZE 128KB", RXPBSIZE_128KB, 0x00020000},
		{"FCCFG.TFCE 802.3x", FCCFG_TFCE_802_3X, 0x08},
		{"FCCFG.TFCE mask", FCCFG_TFCE_MASK, 0x18},
		{"MFLCN.PMCF", MFLCN_PMCF, 0x1},
		{"MFLCN.DPF", MFLCN_DPF, 0x2},
		{"MFLCN.RPFCE", MFLCN_RPFCE, 0x4},
		{"MFLCN.RFCE", MFLCN_RFCE, 0x8},
		{"FCRTL.XONE", FCRTL_XONE, 0x80000000},
		{"FCRTH.FCEN", FCRTH_FCEN, 0x80000000},
		{"FCRT threshold bits 18:5", FCRT_THRESH_MASK, 0x7FFE0},
		{"TXPBSIZE 40KB", TXPBSIZE_40KB, 0x0000A000},
		{"GPIE.MSIX_MODE", GPIE_MSIX_MODE, 0x10},
		{"GPIE.EIAME", GPIE_EIAME, 0x40000000},
		{"GPIE.PBA_SUPPORT", GPIE_PBA_SUPPORT, 0x80000000},
		{"TXD.EOP", TXD_DCMD_EOP, 0x01000000},
		{"TXD.IFCS", TXD_DCMD_IFCS, 0x02000000},
		{"TXD.RS", TXD_DCMD_RS, 0x08000000},
		{"TXD.DEXT", TXD_DCMD_DEXT, 0x20000000},
		{"TXD.VLE", TXD_DCMD_VLE, 0x40000000},
		{"TXD.TSE", TXD_DCMD_TSE, 0x80000000},
		{"TXD.DTYP_DATA", TXD_DTYP_DATA, 0x00300000},
		{"TXD.DTYP_CTXT", TXD_DTYP_CTXT, 0x00200000},
		{"RXD.DD", RXD_STAT_DD, 0x1},
		{"RXD.EOP", RXD_STAT_EOP, 0x2},
		{"RXD.ERR mask", RXD_ERR_MASK, 0xFFF00000},
		// The checksum error bits as Linux's and DPDK's ixgbe_type.h give
		// them (IXGBE_RXDADV_ERR_TCPE 0x40000000, IXGBE_RXDADV_ERR_IPE
		// 0x80000000). Until the igb work read them there, this map and the
		// simulator both had the two swapped, and no test could see it.
		{"RXD.ERR.TCPE", RXD_ERR_TCPE, 0x40000000},
		{"RXD.ERR.IPE", RXD_ERR_IPE, 0x80000000},
		{"RXD.ERR.RXE", RXD_ERR_RXE, 0x20000000},
		{"EIMC clear mask", IRQ_CLEAR_MASK, 0xFFFFFFFF},
		{"EERD.START", EERD_START, 0x1},
		{"EERD.DONE", EERD_DONE, 0x2},
		{"EERD address field", EERD_ADDR_MASK, 0xFFFC},
		{"EEPROM checksum word", EEPROMChecksum, 0x3F},
		{"EEPROM sum", EEPROMSum, 0xBABA},
		{"I2CCTL.CLK_IN", I2CCTL_CLK_IN, 0x1},
		{"I2CCTL.CLK_OUT", I2CCTL_CLK_OUT, 0x2},
		{"I2CCTL.DATA_IN", I2CCTL_DATA_IN, 0x4},
		{"I2CCTL.DATA_OUT", I2CCTL_DATA_OUT, 0x8},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#x, datasheet says %#x", c.name, c.got, c.want)
		}
	}
	// ixy's TX descriptor command word (facts §2): EOP|RS|IFCS|DEXT|DTYP_DATA.
	if got := uint32(TXD_DCMD_EOP | TXD_DCMD_RS | TXD_DCMD_IFCS | TXD_DCMD_DEXT | TXD_DTYP_DATA); got != 0x2B300000 {
		t.Errorf("data descriptor command = %#x, want 0x2B300000", got)
	}
}

func TestIndexedRegistersDoNotCollide(t *testing.T) {
	seen := map[uint32]string{}
	add := func(name string, n int, off uint32) {
		if prev, dup := seen[off]; dup {
			t.Errorf("%s[%d] at %#x collides with %s", name, n, off, prev)
		}
		seen[off] = name
	}
	for n := 0; n < MaxQueues; n++ {
		for name, f := range map[string]func(int) uint32{
			"RDBAL": RDBAL, "RDBAH": RDBAH, "RDLEN": RDLEN, "RDH": RDH, "RDT": RDT, "RXDCTL": RXDCTL,
			"SRRCTL": SRRCTL, "DCA_RXCTRL": DCA_RXCTRL,
			"TDBAL": TDBAL, "TDBAH": TDBAH, "TDLEN": TDLEN, "TDH": TDH, "TDT": TDT, "TXDCTL": TXDCTL,
			"TDWBAL": TDWBAL, "TDWBAH": TDWBAH,
		} {
			add(name, n, f(n))
		}
	}
	for n := 0; n < StatQueues; n++ {
		add("QPRC", n, QPRC(n))
		add("QBRC_L", n, QBRC_L(n))
		add("QBRC_H", n, QBRC_H(n))
		add("QPRDC", n, QPRDC(n))
		add("QPTC", n, QPTC(n))
		add("QPTC_ALIAS", n, QPTCAlias(n))
		add("QBTC_L", n, QBTC_L(n))
		add("QBTC_H", n, QBTC_H(n))
	}
}
