package ixgbe

import (
	"math/bits"

	"github.com/verinic/verinic/advring"
	"github.com/verinic/verinic/ixgbe/regs"
)

// family is the 82599 as the ring engine sees it: its queue registers
// (datasheet 8.2.3.8.1-5 receive, 8.2.3.9.5-9 transmit) and the bit
// positions of the RX write-back's status and extended error bits
// (datasheet 7.1.6.2), taken from the register map.
var family = &advring.Family{
	Name: "82599",
	Regs: advring.Regs{
		RDBAL: regs.RDBAL, RDBAH: regs.RDBAH, RDLEN: regs.RDLEN, RDH: regs.RDH, RDT: regs.RDT,
		TDBAL: regs.TDBAL, TDBAH: regs.TDBAH, TDLEN: regs.TDLEN, TDH: regs.TDH, TDT: regs.TDT,
	},
	Layout: advring.Layout{
		RXE: bitOf(regs.RXD_ERR_RXE), IPE: bitOf(regs.RXD_ERR_IPE), L4E: bitOf(regs.RXD_ERR_TCPE),
		IPCS: bitOf(regs.RXD_STAT_IPCS), L4CS: bitOf(regs.RXD_STAT_L4CS), VP: bitOf(regs.RXD_STAT_VP),
	},
	TxCC: regs.TXD_CC,
}

// bitOf returns the number of the one bit set in mask.
func bitOf(mask uint32) uint8 { return uint8(bits.TrailingZeros32(mask)) }

// ringConfig is what the NIC's queues share in the engine.
func (n *NIC) ringConfig() *advring.Config {
	c := withRingBugs(advring.Config{
		Family: family, Dev: n.dev, Alloc: n.dev.DMA(), Trace: n.trace, DevID: n.cfg.DevID, Gone: n.checkGone,
	}, n.cfg.bugs)
	return &c
}
