package ixgbesim

import (
	"fmt"

	"github.com/verinic/verinic/ixgbe/regs"
)

// access is how a register behaves when software reads or writes it
// (datasheet 8.2.2, "Register Attributes": RW, RO, WO, RC, RW1C, RC/W1C...).
type access uint8

const (
	accRW      access = iota // read/write; bits outside the writable mask keep their value
	accRO                    // read-only: writes ignored
	accWO                    // write-only: reads return 0
	accRC                    // statistics counter, cleared when read
	accRC64Lo                // low half of a 64-bit statistics pair: reading latches the pair
	accRC64Hi                // high half: reading returns the latched high half and clears the pair
	accSpecial               // side effects implemented by the NIC (see special)
)

// special identifies registers with side effects beyond their storage.
type special uint8

const (
	spNone       special = iota
	spCTRL               // RST and LNK_RST self-clearing resets (8.2.3.1.1)
	spSTATUS             // composed from device state (8.2.3.1.2)
	spEICR               // read clears; write 1 clears (8.2.3.5.1)
	spEICS               // write 1 sets EICR bits; write-only (8.2.3.5.3)
	spEIMS               // write 1 sets mask bits; read returns the mask (8.2.3.5.4)
	spEIMC               // write 1 clears mask bits; write-only (8.2.3.5.5)
	spLINKS              // composed from link state (8.2.3.22.19)
	spAUTOC              // AN_RESTART self-clearing, restarts the link (8.2.3.22.10)
	spRDH                // writable only while the queue is disabled (8.2.3.8.5)
	spRDT                // tail: hands descriptors to the device (8.2.3.8.6)
	spRXDCTL             // ENABLE starts/stops the queue (8.2.3.8.9)
	spTDH                // writable only while the queue is disabled (8.2.3.9.8)
	spTDT                // tail (8.2.3.9.9)
	spTXDCTL             // ENABLE, SWFLSH self-clearing (8.2.3.9.10)
	spUnmodelled         // read/write; a value enabling an unmodelled feature is a violation
	spEIMSEX             // EIMS_EX[n]: write 1 sets; bits 15:0 of [0] are EIMS's (8.2.3.5.8)
	spEIMCEX             // EIMC_EX[n]: write 1 clears EIMS_EX[n]; write-only (8.2.3.5.9)
	spEICSEX             // EICS_EX[n]: write 1 sets causes; write-only (8.2.3.5.7)
	spEERD               // EEPROM read: START runs a read of the EEPROM image (8.2.3.2.2, eeprom.go)
	spSWSM               // SMBI reads 0 once, then 1 until software clears it (8.2.3.2.5)
	spI2CCTL             // bit-banged I2C bus to the SFP+ module (8.2.3.1.4, i2c.go)
)

// regDef describes one register (and its aliases).
type regDef struct {
	name  string
	word  uint32 // canonical offset
	reset uint32
	wmask uint32 // writable bits (accRW and some specials)
	acc   access
	sp    special
	queue uint16 // queue or entry index for indexed registers
	pair  uint8  // 64-bit counter pair index (accRC64Lo/Hi)
}

// regTable is the static register map shared by every simulated NIC.
type regTable struct {
	defs  []regDef                  // index 0 unused
	index [regs.BAR0Size / 4]uint16 // BAR0 word -> def index; 0 = unknown offset
	pairs int                       // number of 64-bit counter pairs
	// unmodelled holds the checks of spUnmodelled registers, by regDef.queue.
	unmodelled []func(uint32) string
}

var table = buildTable()

// def returns the definition behind BAR0 offset reg, or nil.
func (t *regTable) lookup(reg uint32) (*regDef, int) {
	if reg >= regs.BAR0Size || reg&3 != 0 {
		return nil, 0
	}
	i := int(t.index[reg>>2])
	if i == 0 {
		return nil, 0
	}
	return &t.defs[i], i
}

type tableBuilder struct {
	t   *regTable
	err error
}

func (b *tableBuilder) add(d regDef) int {
	if d.word >= regs.BAR0Size || d.word&3 != 0 {
		b.err = fmt.Errorf("register %s at %#x outside BAR0", d.name, d.word)
		return 0
	}
	if b.t.index[d.word>>2] != 0 {
		b.err = fmt.Errorf("register %s at %#x collides with %s", d.name, d.word, b.t.defs[b.t.index[d.word>>2]].name)
		return 0
	}
	if d.acc == accRW && d.wmask == 0 {
		d.wmask = 0xFFFFFFFF
	}
	b.t.defs = append(b.t.defs, d)
	i := len(b.t.defs) - 1
	b.t.index[d.word>>2] = uint16(i)
	return i
}

// alias maps another offset onto the storage of the register at canonical.
func (b *tableBuilder) alias(aliasOff, canonical uint32) {
	i := b.t.index[canonical>>2]
	if i == 0 || aliasOff >= regs.BAR0Size || b.t.index[aliasOff>>2] != 0 {
		b.err = fmt.Errorf("bad alias %#x -> %#x", aliasOff, canonical)
		return
	}
	b.t.index[aliasOff>>2] = i
}

func (b *tableBuilder) rw(name string, off, reset uint32) {
	b.add(regDef{name: name, word: off, reset: reset})
}
func (b *tableBuilder) rwm(name string, off, reset, mask uint32) {
	b.add(regDef{name: name, word: off, reset: reset, wmask: mask})
}
func (b *tableBuilder) ro(name string, off, reset uint32) {
	b.add(regDef{name: name, word: off, reset: reset, acc: accRO})
}
func (b *tableBuilder) rc(name string, off uint32) { b.add(regDef{name: name, word: off, acc: accRC}) }
func (b *tableBuilder) rc64(name string, lo, hi uint32) {
	p := uint8(b.t.pairs)
	b.t.pairs++
	b.add(regDef{name: name + "L", word: lo, acc: accRC64Lo, pair: p})
	b.add(regDef{name: name + "H", word: hi, acc: accRC64Hi, pair: p})
}

// unmod adds a read/write register that enables a feature the model does
// not implement: check names the feature a written value enables ("" for
// none), and such a write is recorded as an Unmodelled violation.
func (b *tableBuilder) unmod(name string, off, reset uint32, check func(uint32) string) {
	b.t.unmodelled = append(b.t.unmodelled, check)
	b.add(regDef{name: name, word: off, reset: reset, wmask: 0xFFFFFFFF, acc: accSpecial, sp: spUnmodelled, queue: uint16(len(b.t.unmodelled) - 1)})
}

// bitsOn is an unmod check: any of mask set enables what.
func bitsOn(mask uint32, what string) func(uint32) string {
	return func(v uint32) string {
		if v&mask != 0 {
			return what
		}
		return ""
	}
}

func (b *tableBuilder) sp(name string, off, reset, mask uint32, s special, q int) {
	b.add(regDef{name: name, word: off, reset: reset, wmask: mask, acc: accSpecial, sp: s, queue: uint16(q)})
}

// Reset values below are the datasheet's (rev. 3.3, section 8.2.3), as
// modelled by Vigor and expected by ixy (docs/NOTES.md, "Datasheet fidelity",
// lists the choices to check against the datasheet).
const (
	resetEEC       = 0x00001730 // PRES (b8) and ARD (b9) set once auto-read is done (8.2.3.2.1)
	resetRDRXCTL   = 0x00108808 // DMAIDONE (b3) set once DMA init is done (8.2.3.8.8)
	resetHLREG0    = 0x08012C0B // TXCRCEN, RXCRCSTRP, TXPADEN... (8.2.3.22.8)
	resetAUTOC     = 0xC19D8284 // LMS = KX4/KX/KR auto-negotiation (8.2.3.22.10)
	resetSRRCTL    = 0x00000402 // BSIZEPACKET 2 KB, BSIZEHEADER 4x64 B, legacy descriptors (8.2.3.8.7)
	resetRXPBSIZE0 = 0x00080000 // 512 KB packet buffer 0, others 0 (8.2.3.8.10)
	resetTXPBSIZE0 = 0x00028000 // 160 KB packet buffer 0, others 0 (8.2.3.9.13)
	resetDTXMXSZRQ = 0x00000010 // (8.2.3.9.15)
	resetMAXFRS    = 0x05EE0000 // MFS = 1518 (8.2.3.22.13)
	resetVLNCTRL   = 0x00008100 // VET = 802.1Q ethertype (8.2.3.7.2)
	resetDMATXCTL  = 0x81000000 // VT = 802.1Q ethertype, TE clear (8.2.3.9.2)
	// TSO flag masks (8.2.3.9.12-13): the first segment loses FIN and PSH,
	// middle ones FIN, PSH and CWR, the last CWR.
	resetDTXTCPFLGL = 0x0F760FF6
	resetDTXTCPFLGH = 0x00000F7F
	resetSECRXSTAT  = regs.SECRXSTAT_SECRX_RDY
	resetSTATUSGIOM = regs.STATUS_GIO_MASTER_E
	// DCA_RXCTRL: Vigor models 0xA200; the datasheet's bit description
	// (8.2.3.11.1) gives bit 12 "Default 1b; Reserved. Must be set to 0",
	// which ixy and TinyNF follow by clearing it. We follow the datasheet.
	resetDCA_RXCTRL = 0x0000A200 | regs.DCA_RXCTRL_RESERVED12
	resetDCA_TXCTRL = 0x00002200 // (8.2.3.11.2)
	resetGPIE       = 0
	// I2CCTL: both lines released (pulled up) and reading high.
	resetI2CCTL = regs.I2CCTL_CLK_OUT | regs.I2CCTL_DATA_OUT | regs.I2CCTL_CLK_IN | regs.I2CCTL_DATA_IN
)

// Extra registers the simulator knows that the regs package does not name.
const (
	regESDP       = 0x00020
	regLEDCTL     = 0x00200
	regIVAR_MISC  = 0x00A00
	regSECTXCTRL  = 0x08800
	regSECTXSTAT  = 0x08804
	regMTQC       = 0x08120
	regPFVLVF0    = 0x0F100
	regPFVLVFB0   = 0x0F200
	regPFUTA0     = 0x0F400
	regPSRTYPE0   = 0x0EA00
	regSWSM       = 0x10140
	regFWSM       = 0x10148
	regSW_FW_SYNC = 0x10160
	regEERD       = 0x10014
	regMSPDC      = 0x04010
	regMLFC       = 0x04034
	regMRFC       = 0x04038
	regMNGPRC     = 0x040B4
	regMNGPDC     = 0x040B8
	regMNGPTC     = 0x0CF90
	regDCA_TXCTRL = 0x0600C // + 0x40n
	regRTTDQSEL   = 0x04904
	regRTTDT1C    = 0x04908
	regRTTDT2C0   = 0x04910
	regRTTPT2C0   = 0x0CD20
	regRTRPT4C0   = 0x02140
	regRTRUP2TC   = 0x03020
	regRTTUP2TC   = 0x0C800
	regRTRPCS     = 0x02430
	regRTTPCS     = 0x0CD00
)

// 64-bit statistics pairs, in registration order.
const (
	pairGORC = iota
	pairGOTC
	pairTOR
	pairQBRC0                               // 16 pairs
	pairQBTC0 = pairQBRC0 + regs.StatQueues // 16 pairs
)

func buildTable() *regTable {
	t := &regTable{defs: make([]regDef, 1, 4096)}
	b := &tableBuilder{t: t}

	// General control (8.2.3.1).
	b.sp("CTRL", regs.CTRL, 0, 0xFFFFFFFF, spCTRL, 0)
	b.alias(regs.CTRL_ALIAS, regs.CTRL)
	b.sp("STATUS", regs.STATUS, resetSTATUSGIOM, 0, spSTATUS, 0)
	b.rw("CTRL_EXT", regs.CTRL_EXT, 0)
	b.rw("ESDP", regESDP, 0)
	b.rw("LEDCTL", regLEDCTL, 0x00081C00)

	// EEPROM (8.2.3.2): only the bit-bang and request bits are writable.
	b.rwm("EEC", regs.EEC, resetEEC, 0x0000004F)
	b.sp("EERD", regEERD, 0, regs.EERD_START|regs.EERD_ADDR_MASK, spEERD, 0)
	b.sp("SWSM", regSWSM, 0, regs.SWSM_SMBI|regs.SWSM_SWESMBI, spSWSM, 0)
	b.sp("I2CCTL", regs.I2CCTL, resetI2CCTL, regs.I2CCTL_CLK_OUT|regs.I2CCTL_DATA_OUT, spI2CCTL, 0)
	b.ro("FWSM", regFWSM, 0)
	b.rw("SW_FW_SYNC", regSW_FW_SYNC, 0)

	// Interrupts (8.2.3.5).
	b.sp("EICR", regs.EICR, 0, 0, spEICR, 0)
	b.sp("EICS", regs.EICS, 0, 0, spEICS, 0)
	b.sp("EIMS", regs.EIMS, 0, 0, spEIMS, 0)
	b.sp("EIMC", regs.EIMC, 0, 0, spEIMC, 0)
	b.rw("EIAC", regs.EIAC, 0)
	b.rw("EIAM", regs.EIAM, 0)
	b.rw("GPIE", regs.GPIE, resetGPIE)
	for n := 0; n < 129; n++ {
		b.rw(fmt.Sprintf("EITR[%d]", n), regs.EITR(n), 0)
	}
	for n := 0; n < 64; n++ {
		b.rw(fmt.Sprintf("IVAR[%d]", n), regs.IVAR(n), 0)
	}
	b.rw("IVAR_MISC", regIVAR_MISC, 0)
	for n := 0; n < 2; n++ {
		b.sp(fmt.Sprintf("EICS_EX[%d]", n), regs.EICS_EX(n), 0, 0, spEICSEX, n)
		b.sp(fmt.Sprintf("EIMS_EX[%d]", n), regs.EIMS_EX(n), 0, 0, spEIMSEX, n)
		b.sp(fmt.Sprintf("EIMC_EX[%d]", n), regs.EIMC_EX(n), 0, 0, spEIMCEX, n)
		b.rw(fmt.Sprintf("EIAM_EX[%d]", n), regs.EIAM_EX(n), 0)
	}

	// Receive queues (8.2.3.8).
	for q := 0; q < regs.MaxQueues; q++ {
		b.rwm(fmt.Sprintf("RDBAL[%d]", q), regs.RDBAL(q), 0, 0xFFFFFF80) // bits 6:0 ignored (128-byte aligned)
		b.rw(fmt.Sprintf("RDBAH[%d]", q), regs.RDBAH(q), 0)
		b.rwm(fmt.Sprintf("RDLEN[%d]", q), regs.RDLEN(q), 0, 0x000FFF80) // multiple of 128 bytes
		b.sp(fmt.Sprintf("RDH[%d]", q), regs.RDH(q), 0, 0xFFFF, spRDH, q)
		b.sp(fmt.Sprintf("RDT[%d]", q), regs.RDT(q), 0, 0xFFFF, spRDT, q)
		b.sp(fmt.Sprintf("RXDCTL[%d]", q), regs.RXDCTL(q), 0, 0xFFFFFFFF, spRXDCTL, q)
		b.rw(fmt.Sprintf("SRRCTL[%d]", q), regs.SRRCTL(q), resetSRRCTL)
		b.rw(fmt.Sprintf("DCA_RXCTRL[%d]", q), regs.DCA_RXCTRL(q), resetDCA_RXCTRL)
		if q < 16 {
			b.alias(regs.SRRCTLAlias(q), regs.SRRCTL(q))
			b.alias(regs.DCA_RXCTRLAlias(q), regs.DCA_RXCTRL(q))
		}
	}
	b.rwm("RDRXCTL", regs.RDRXCTL, resetRDRXCTL, ^uint32(regs.RDRXCTL_DMAIDONE))
	b.rw("RXCTRL", regs.RXCTRL, 0)
	for n := 0; n < 8; n++ {
		reset := uint32(0)
		if n == 0 {
			reset = resetRXPBSIZE0
		}
		b.rwm(fmt.Sprintf("RXPBSIZE[%d]", n), regs.RXPBSIZE(n), reset, 0x000FFC00)
		b.rw(fmt.Sprintf("FCRTL[%d]", n), regs.FCRTL(n), 0)
		b.rw(fmt.Sprintf("FCRTH[%d]", n), regs.FCRTH(n), 0)
		b.rc(fmt.Sprintf("MPC[%d]", n), regs.MPC(n))
		b.rw(fmt.Sprintf("RTRPT4C[%d]", n), regRTRPT4C0+4*uint32(n), 0)
		b.rw(fmt.Sprintf("RTTDT2C[%d]", n), regRTTDT2C0+4*uint32(n), 0)
		b.rw(fmt.Sprintf("RTTPT2C[%d]", n), regRTTPT2C0+4*uint32(n), 0)
		b.rw(fmt.Sprintf("TXPBTHRESH[%d]", n), regs.TXPBTHRESH(n), 0)
	}
	for n := 0; n < 4; n++ {
		b.rw(fmt.Sprintf("FCTTV[%d]", n), regs.FCTTV(n), 0)
	}
	b.rwm("FCRTV", regs.FCRTV, 0, regs.FCRTV_MASK)
	b.rw("FCCFG", regs.FCCFG, 0)
	b.rw("MFLCN", regs.MFLCN, 0)
	b.rw("RTRPCS", regRTRPCS, 0)
	b.rw("RTRUP2TC", regRTRUP2TC, 0)
	b.rw("RTTUP2TC", regRTTUP2TC, 0)
	b.rw("RTTPCS", regRTTPCS, 0)
	b.rw("RTTDQSEL", regRTTDQSEL, 0)
	b.rw("RTTDT1C", regRTTDT1C, 0)
	for n := 0; n < 32; n++ {
		b.rw(fmt.Sprintf("RQSMR[%d]", n), regs.RQSMR(n), 0)
		b.rw(fmt.Sprintf("TQSM[%d]", n), regs.TQSM(n), 0)
	}

	// Per-queue statistics (8.2.3.23).
	for n := 0; n < regs.StatQueues; n++ {
		b.rc(fmt.Sprintf("QPRC[%d]", n), regs.QPRC(n))
		b.rc(fmt.Sprintf("QPRDC[%d]", n), regs.QPRDC(n))
		b.rc(fmt.Sprintf("QPTC[%d]", n), regs.QPTC(n))
		b.alias(regs.QPTCAlias(n), regs.QPTC(n))
	}
	b.rc64("GORC", regs.GORCL, regs.GORCH)
	b.rc64("GOTC", regs.GOTCL, regs.GOTCH)
	b.rc64("TOR", regs.TORL, regs.TORH)
	for n := 0; n < regs.StatQueues; n++ {
		b.rc64(fmt.Sprintf("QBRC[%d]_", n), regs.QBRC_L(n), regs.QBRC_H(n))
	}
	for n := 0; n < regs.StatQueues; n++ {
		b.rc64(fmt.Sprintf("QBTC[%d]_", n), regs.QBTC_L(n), regs.QBTC_H(n))
	}
	for _, s := range []struct {
		name string
		off  uint32
	}{
		{"CRCERRS", regs.CRCERRS}, {"ILLERRC", regs.ILLERRC}, {"ERRBC", regs.ERRBC}, {"RLEC", regs.RLEC},
		{"MSPDC", regMSPDC}, {"MLFC", regMLFC}, {"MRFC", regMRFC},
		{"PRC64", regs.PRC64}, {"PRC127", regs.PRC127}, {"PRC255", regs.PRC255}, {"PRC511", regs.PRC511},
		{"PRC1023", regs.PRC1023}, {"PRC1522", regs.PRC1522},
		{"GPRC", regs.GPRC}, {"BPRC", regs.BPRC}, {"MPRC", regs.MPRC}, {"GPTC", regs.GPTC},
		{"RUC", regs.RUC}, {"RFC", regs.RFC}, {"ROC", regs.ROC}, {"RJC", regs.RJC},
		{"MNGPRC", regMNGPRC}, {"MNGPDC", regMNGPDC}, {"MNGPTC", regMNGPTC},
		{"TPR", regs.TPR}, {"TPT", regs.TPT},
		{"PTC64", regs.PTC64}, {"PTC127", regs.PTC127}, {"PTC255", regs.PTC255}, {"PTC511", regs.PTC511},
		{"PTC1023", regs.PTC1023}, {"PTC1522", regs.PTC1522},
		{"MPTC", regs.MPTC}, {"BPTC", regs.BPTC}, {"RXNFGPC", regs.RXNFGPC},
		{"LXONTXC", regs.LXONTXC}, {"LXOFFTXC", regs.LXOFFTXC}, {"LXONRXCNT", regs.LXONRXCNT}, {"LXOFFRXCNT", regs.LXOFFRXCNT},
		{"XEC", regs.XEC},
	} {
		b.rc(s.name, s.off)
	}
	// Per packet buffer / priority counters Linux's ixgbe_update_stats reads
	// (8.2.3.23): receive no buffers, priority XON/XOFF sent and received.
	for n := 0; n < 8; n++ {
		b.rc(fmt.Sprintf("RNBC[%d]", n), regs.RNBC(n))
		b.rc(fmt.Sprintf("PXONTXC[%d]", n), regs.PXONTXC(n))
		b.rc(fmt.Sprintf("PXOFFTXC[%d]", n), regs.PXOFFTXC(n))
		b.rc(fmt.Sprintf("PXONRXCNT[%d]", n), regs.PXONRXCNT(n))
		b.rc(fmt.Sprintf("PXOFFRXCNT[%d]", n), regs.PXOFFRXCNT(n))
	}

	// MAC (8.2.3.22).
	b.rw("HLREG0", regs.HLREG0, resetHLREG0)
	b.rw("MAXFRS", regs.MAXFRS, resetMAXFRS)
	b.sp("AUTOC", regs.AUTOC, resetAUTOC, 0xFFFFFFFF, spAUTOC, 0)
	b.sp("LINKS", regs.LINKS, 0, 0, spLINKS, 0)
	b.rw("AUTOC2", regs.AUTOC2, 0)

	// Transmit (8.2.3.9).
	b.rw("RTTDCS", regs.RTTDCS, 0)
	b.rw("DMATXCTL", regs.DMATXCTL, resetDMATXCTL)
	b.rw("DTXTCPFLGL", regs.DTXTCPFLGL, resetDTXTCPFLGL)
	b.rw("DTXTCPFLGH", regs.DTXTCPFLGH, resetDTXTCPFLGH)
	b.rwm("DTXMXSZRQ", regs.DTXMXSZRQ, resetDTXMXSZRQ, 0x00000FFF)
	b.rw("MTQC", regMTQC, 0)
	for n := 0; n < 8; n++ {
		reset := uint32(0)
		if n == 0 {
			reset = resetTXPBSIZE0
		}
		b.rwm(fmt.Sprintf("TXPBSIZE[%d]", n), regs.TXPBSIZE(n), reset, 0x000FFC00)
	}
	for q := 0; q < regs.MaxQueues; q++ {
		b.rwm(fmt.Sprintf("TDBAL[%d]", q), regs.TDBAL(q), 0, 0xFFFFFF80)
		b.rw(fmt.Sprintf("TDBAH[%d]", q), regs.TDBAH(q), 0)
		b.rwm(fmt.Sprintf("TDLEN[%d]", q), regs.TDLEN(q), 0, 0x000FFF80)
		b.sp(fmt.Sprintf("TDH[%d]", q), regs.TDH(q), 0, 0xFFFF, spTDH, q)
		b.sp(fmt.Sprintf("TDT[%d]", q), regs.TDT(q), 0, 0xFFFF, spTDT, q)
		b.sp(fmt.Sprintf("TXDCTL[%d]", q), regs.TXDCTL(q), 0, 0xFFFFFFFF&^uint32(regs.TXDCTL_SWFLSH), spTXDCTL, q)
		b.rw(fmt.Sprintf("TDWBAL[%d]", q), regs.TDWBAL(q), 0)
		b.rw(fmt.Sprintf("TDWBAH[%d]", q), regs.TDWBAH(q), 0)
		b.rw(fmt.Sprintf("DCA_TXCTRL[%d]", q), regDCA_TXCTRL+0x40*uint32(q), resetDCA_TXCTRL)
	}

	// Filters (8.2.3.7).
	b.rw("FCTRL", regs.FCTRL, 0)
	b.rw("VLNCTRL", regs.VLNCTRL, resetVLNCTRL)
	b.rw("MCSTCTRL", regs.MCSTCTRL, 0)
	b.rw("RXCSUM", regs.RXCSUM, 0)
	b.unmod("MRQC", regs.MRQC, 0, func(v uint32) string {
		if m := v & regs.MRQC_MRQE_MASK; m != regs.MRQC_MRQE_RSS_OFF && m != regs.MRQC_RSSEN {
			return fmt.Sprintf("multiple receive queues mode MRQC.MRQE %#x (DCB or virtualization)", m)
		}
		return ""
	})
	for n := 0; n < regs.RETAEntries/4; n++ {
		b.rw(fmt.Sprintf("RETA[%d]", n), regs.RETA(n), 0)
	}
	for n := 0; n < regs.RSSKeySize/4; n++ {
		b.rw(fmt.Sprintf("RSSRK[%d]", n), regs.RSSRK(n), 0)
	}
	for n := 0; n < 128; n++ {
		b.rw(fmt.Sprintf("MTA[%d]", n), regs.MTA(n), 0)
		b.rw(fmt.Sprintf("RAL[%d]", n), regs.RAL(n), 0)
		b.rwm(fmt.Sprintf("RAH[%d]", n), regs.RAH(n), 0, 0x8003FFFF)
		if n < 16 {
			b.alias(regs.RALAlias(n), regs.RAL(n))
			b.alias(regs.RAHAlias(n), regs.RAH(n))
		}
		b.rw(fmt.Sprintf("MPSAR_LO[%d]", n), regs.MPSAR_LO(n), 0)
		b.rw(fmt.Sprintf("MPSAR_HI[%d]", n), regs.MPSAR_HI(n), 0)
		b.rw(fmt.Sprintf("VFTA[%d]", n), regs.VFTA(n), 0)
		b.rw(fmt.Sprintf("PFUTA[%d]", n), regPFUTA0+4*uint32(n), 0)
	}
	for n := 0; n < 64; n++ {
		b.rw(fmt.Sprintf("PFVLVF[%d]", n), regPFVLVF0+4*uint32(n), 0)
		b.rw(fmt.Sprintf("PFVLVFB[%d]", 2*n), regPFVLVFB0+8*uint32(n), 0)
		b.rw(fmt.Sprintf("PFVLVFB[%d]", 2*n+1), regPFVLVFB0+8*uint32(n)+4, 0)
		b.rw(fmt.Sprintf("PSRTYPE[%d]", n), regPSRTYPE0+4*uint32(n), 0)
	}
	for q := 0; q < regs.MaxQueues; q++ {
		b.unmod(fmt.Sprintf("RSCCTL[%d]", q), regs.RSCCTL(q), 0, bitsOn(regs.RSCCTL_RSCEN, "receive side coalescing (RSCCTL.RSCEN)"))
	}
	b.unmod("LSECTXCTRL", regs.LSECTXCTRL, 0, bitsOn(regs.LSECTXCTRL_EN_MASK, "LinkSec transmit (LSECTXCTRL.EN)"))
	b.unmod("LSECRXCTRL", regs.LSECRXCTRL, 0, bitsOn(regs.LSECRXCTRL_EN_MASK, "LinkSec receive (LSECRXCTRL.EN)"))
	b.unmod("IPSTXIDX", regs.IPSTXIDX, 0, bitsOn(regs.IPSIDX_IPS_EN, "IPsec transmit SA (IPSTXIDX.IPS_EN)"))
	b.unmod("IPSRXIDX", regs.IPSRXIDX, 0, bitsOn(regs.IPSIDX_IPS_EN, "IPsec receive SA (IPSRXIDX.IPS_EN)"))
	for n := 0; n < 8; n++ {
		b.unmod(fmt.Sprintf("ETQF[%d]", n), regs.ETQF(n), 0, func(v uint32) string {
			if v&regs.ETQF_FCOE != 0 {
				return "FCoE (ETQF.FCoE)"
			}
			if v&regs.ETQF_FILTER_EN != 0 {
				return "ether type queue filters (ETQF.Filter Enable)"
			}
			return ""
		})
	}
	b.rw("SECRXCTRL", regs.SECRXCTRL, 0)
	b.ro("SECRXSTAT", regs.SECRXSTAT, resetSECRXSTAT)
	b.rw("SECTXCTRL", regSECTXCTRL, 0)
	b.ro("SECTXSTAT", regSECTXSTAT, 1)

	if b.err != nil {
		panic("ixgbesim: register table: " + b.err.Error()) // a programming error in this file, caught by every test
	}
	return t
}

// RegisterName returns the name of the register at BAR0 offset reg (its
// canonical name for an alias), or "" for an offset the model does not know.
func RegisterName(reg uint32) string {
	d, _ := table.lookup(reg)
	if d == nil {
		return ""
	}
	return d.name
}

// ResetValue returns the datasheet reset value of the register at reg and
// whether the model knows the offset. Values composed from device state
// (STATUS, LINKS) report their stored part.
func ResetValue(reg uint32) (uint32, bool) {
	d, _ := table.lookup(reg)
	if d == nil {
		return 0, false
	}
	return d.reset, true
}
