// Package regs is the Intel 82576 register map: BAR0 offsets, indexed
// registers as functions, and bit constants, named as in the Intel 82576EB
// GbE Controller datasheet (chapter 8, "Programming Interface"). It is the
// 82576's counterpart of ixgbe/regs: a leaf package that the igb driver
// imports, with regs_test.go checking it against an independent table.
//
// Section numbers are cited from memory of the datasheet (docs/NOTES.md,
// "QEMU igb vs our reading"); every offset and bit here was checked against
// Linux's igb headers (e1000_regs.h, e1000_defines.h, e1000_82575.h) and
// QEMU's hw/net/igb_regs.h, which regs_test.go transcribes by hand.
//
// Names keep the datasheet's upper-case spelling (CTRL, RDBAL, EIMS...) and
// bits are REGISTER_FIELD.
package regs

// BAR0Size is the size of the 82576's memory BAR0: 128 KB of CSR space
// (datasheet 9.4.x; QEMU's igb has the same).
const BAR0Size = 0x20000

// General registers (datasheet 8.2).
const (
	CTRL     = 0x00000 // Device Control (8.2.1)
	STATUS   = 0x00008 // Device Status (8.2.2)
	CTRL_EXT = 0x00018 // Extended Device Control (8.2.3)
	MDIC     = 0x00020 // MDI Control: PHY register access (8.2.4)
	VET      = 0x00038 // VLAN Ether Type

	CTRL_FD        = 1 << 0  // full duplex
	CTRL_MDE       = 1 << 2  // GIO master disable
	CTRL_LRST      = 1 << 3  // link reset
	CTRL_SLU       = 1 << 6  // set link up
	CTRL_SPD_MASK  = 3 << 8  // speed select (forced speed only)
	CTRL_SPD_1000  = 2 << 8  //
	CTRL_FRCSPD    = 1 << 11 // force speed
	CTRL_FRCDPX    = 1 << 12 // force duplex
	CTRL_RST       = 1 << 26 // device reset, self-clearing (4.3.x)
	CTRL_RFCE      = 1 << 27 // receive flow control enable
	CTRL_TFCE      = 1 << 28 // transmit flow control enable
	CTRL_VME       = 1 << 30 // VLAN mode: strip 802.1Q tags on receive
	CTRL_PHY_RST   = 1 << 31 // PHY reset
	STATUS_FD      = 1 << 0  // full duplex
	STATUS_LU      = 1 << 1  // link up
	STATUS_SPEED   = 3 << 6  // 00 10, 01 100, 1x 1000 Mb/s
	STATUS_SPD_100 = 1 << 6  //
	STATUS_SPD_1G  = 1 << 7  //
	STATUS_PHYRA   = 1 << 10 // PHY reset asserted (write 0 to clear)
	STATUS_GIO_ME  = 1 << 19 // GIO master enable status

	CTRL_EXT_PFRSTD   = 1 << 14 // PF reset done
	CTRL_EXT_DRV_LOAD = 1 << 28 // driver loaded
)

// MDIC fields (8.2.4): one PHY register read or write.
const (
	MDIC_DATA_MASK = 0xFFFF
	MDIC_REG_SHIFT = 16 // PHY register, bits 20:16
	MDIC_PHY_SHIFT = 21 // PHY address, bits 25:21 (the internal PHY is 1)
	MDIC_OP_WRITE  = 1 << 26
	MDIC_OP_READ   = 2 << 26
	MDIC_READY     = 1 << 28
	MDIC_ERROR     = 1 << 30
	// MDICInternalPHY is the MDIO address of the internal copper PHY.
	MDICInternalPHY = 1
)

// PHY registers (IEEE 802.3 clause 22, which the 82576's internal PHY
// follows, datasheet 8.24.x) reached through MDIC.
const (
	PHY_CONTROL      = 0x00 // BMCR
	PHY_STATUS       = 0x01 // BMSR
	PHY_ID1          = 0x02
	PHY_ID2          = 0x03
	PHY_AUTONEG_ADV  = 0x04
	PHY_1000T_CTRL   = 0x09
	PHY_CTRL_FD      = 1 << 8  // full duplex
	PHY_CTRL_RESTART = 1 << 9  // restart auto-negotiation, self-clearing
	PHY_CTRL_ANEN    = 1 << 12 // auto-negotiation enable
	PHY_CTRL_SPD1000 = 1 << 6  // speed select MSB (1000 Mb/s with LSB clear)
	PHY_STATUS_LINK  = 1 << 2  // link status (latched low)
	PHY_STATUS_ANC   = 1 << 5  // auto-negotiation complete
)

// EEPROM (datasheet 8.4).
const (
	EECD = 0x00010 // EEPROM/Flash Control (8.4.1)
	EERD = 0x00014 // EEPROM Read (8.4.2)

	EECD_PRES    = 1 << 8 // EEPROM present
	EECD_AUTO_RD = 1 << 9 // EEPROM auto-read done

	EERD_START      = 1 << 0 // start a read
	EERD_DONE       = 1 << 1 // read done
	EERD_ADDR_SHIFT = 2      // word address, bits 15:2
	EERD_ADDR_MASK  = 0x3FFF << 2
	EERD_DATA_SHIFT = 16 // data, bits 31:16

	// EEPROM words (Linux's NVM_* offsets; datasheet 6.1).
	NVMMACAddr  = 0x00 // words 0-2: the MAC address, little-endian bytes
	NVMChecksum = 0x3F // word 0x3F makes words 0x00-0x3F sum to NVMSum
	NVMSum      = 0xBABA
)

// Interrupts (datasheet 8.8): legacy ICR/IMS and the extended (MSI-X)
// registers.
const (
	ICR  = 0x000C0 // Interrupt Cause Read
	ICS  = 0x000C8 // Interrupt Cause Set
	IMS  = 0x000D0 // Interrupt Mask Set/Read
	IMC  = 0x000D8 // Interrupt Mask Clear
	IAM  = 0x000E0 // Interrupt Acknowledge Auto Mask
	GPIE = 0x01514 // General Purpose Interrupt Enable (8.8.x)
	EICS = 0x01520 // Extended Interrupt Cause Set
	EIMS = 0x01524 // Extended Interrupt Mask Set/Read
	EIMC = 0x01528 // Extended Interrupt Mask Clear
	EIAC = 0x0152C // Extended Interrupt Auto Clear
	EIAM = 0x01530 // Extended Interrupt Auto Mask
	EICR = 0x01580 // Extended Interrupt Cause Read (clear on read)
	// IVAR_MISC maps the "other" causes (link status change...) to a vector.
	IVAR_MISC = 0x01740

	GPIE_NSICR     = 1 << 0  // non-selective interrupt clear on read
	GPIE_MSIX_MODE = 1 << 4  // multiple MSI-X: EICR bit n is vector n
	GPIE_EIAME     = 1 << 30 // extended interrupt auto mask enable
	GPIE_PBA       = 1 << 31 // PBA support

	// EICR bits in MSI-X mode: one per vector, 25 on the 82576 (bits
	// 24:0); QEMU's igb offers its physical function 10 (IGB_MSIX_VEC_NUM).
	EICR_MSIX_MASK = 0x01FFFFFF
	IVAR_VALID     = 1 << 7 // an IVAR entry is valid; bits 4:0 the vector

	ICR_LSC = 1 << 2 // link status change
)

// EITR returns Extended Interrupt Throttle register n (8.8.x): the
// interval in bits 14:2, in 1 us units (from memory; QEMU counts the
// register's value times 256 ns, the same within 3 %).
func EITR(n int) uint32 { return 0x01680 + 4*uint32(n) }

// EITR_INTERVAL_SHIFT and EITR_INTERVAL_MASK place the interval.
const (
	EITR_INTERVAL_SHIFT = 2
	EITR_INTERVAL_MASK  = 0x1FFF << 2
)

// IVAR returns Interrupt Vector Allocation register n (0..7). On the 82576
// each register holds four 8-bit entries (bit 7 valid, bits 4:0 vector):
// byte 0 RX queue n, byte 1 TX queue n, byte 2 RX queue n+8, byte 3 TX
// queue n+8 (datasheet 7.3.x; QEMU's igb_ivar_entry_rx/tx). The 82599's
// IVAR differs (two queues per register, RX and TX in alternating bytes).
func IVAR(n int) uint32 { return 0x01700 + 4*uint32(n) }

// IVARRx returns the register and bit shift of RX queue q's IVAR entry.
func IVARRx(q int) (reg uint32, shift uint) {
	return IVAR(q & 7), uint(16 * (q >> 3))
}

// IVARTx returns the register and bit shift of TX queue q's IVAR entry.
func IVARTx(q int) (reg uint32, shift uint) {
	return IVAR(q & 7), uint(16*(q>>3) + 8)
}

// Receive (datasheet 8.10).
const (
	RCTL   = 0x00100 // Receive Control (8.10.1)
	RXPBS  = 0x02404 // Receive Packet Buffer Size, KB in bits 6:0
	RXCSUM = 0x05000 // Receive Checksum Control
	RLPML  = 0x05004 // Receive Long Packet Maximum Length
	RFCTL  = 0x05008 // Receive Filter Control
	MRQC   = 0x05818 // Multiple Receive Queues Command (RSS)

	RCTL_EN        = 1 << 1  // receiver enable
	RCTL_SBP       = 1 << 2  // store bad packets
	RCTL_UPE       = 1 << 3  // unicast promiscuous
	RCTL_MPE       = 1 << 4  // multicast promiscuous
	RCTL_LPE       = 1 << 5  // long packet enable (RLPML)
	RCTL_LBM_MASK  = 3 << 6  // loopback mode
	RCTL_MO_MASK   = 3 << 12 // multicast offset
	RCTL_BAM       = 1 << 15 // accept broadcasts
	RCTL_BSIZE     = 3 << 16 // legacy buffer size (SRRCTL overrides it)
	RCTL_VFE       = 1 << 18 // VLAN filter enable
	RCTL_DPF       = 1 << 22 // discard PAUSE frames
	RCTL_PMCF      = 1 << 23 // pass MAC control frames
	RCTL_SECRC     = 1 << 26 // strip the Ethernet CRC
	RCTL_DTYP_MASK = 3 << 10 // legacy descriptor type, must be 0

	RXCSUM_IPOFLD = 1 << 8  // IPv4 header checksum offload
	RXCSUM_TUOFLD = 1 << 9  // TCP/UDP checksum offload
	RXCSUM_CRCOFL = 1 << 11 // SCTP CRC offload
	RXCSUM_PCSD   = 1 << 13 // packet checksum disable: the write-back's second dword is the RSS hash

	MRQC_ENABLE_MASK = 7 // multiple receive queues mode, bits 2:0
	MRQC_ENABLE_RSS  = 2 // RSS only (no VMDq)
	MRQC_FIELDS_MASK = 0xFFFF0000
	// Hash field enables (Linux e1000_82575.h; QEMU e1000x_regs.h).
	MRQC_RSS_FIELD_IPV4_TCP    = 1 << 16
	MRQC_RSS_FIELD_IPV4        = 1 << 17
	MRQC_RSS_FIELD_IPV6_TCP_EX = 1 << 18
	MRQC_RSS_FIELD_IPV6_EX     = 1 << 19
	MRQC_RSS_FIELD_IPV6        = 1 << 20
	MRQC_RSS_FIELD_IPV6_TCP    = 1 << 21
	MRQC_RSS_FIELD_IPV4_UDP    = 1 << 22
	MRQC_RSS_FIELD_IPV6_UDP    = 1 << 23
)

// rxq returns the address of a per-queue receive register of queue n: the
// 82576's queue blocks are 0x40 apart from 0x0C000 (datasheet 8.10.x). The
// 82575-compatible aliases of queues 0-3 at 0x02800 + 0x100*n, which Linux's
// igb uses for those queues, reach the same registers; the driver uses the
// canonical addresses only.
func rxq(n int, off uint32) uint32 { return 0x0C000 + 0x40*uint32(n) + off }

// txq is rxq for transmit queues, from 0x0E000.
func txq(n int, off uint32) uint32 { return 0x0E000 + 0x40*uint32(n) + off }

// Queues is how many RX and TX queues the 82576 has.
const Queues = 16

// Per-queue receive registers.
func RDBAL(n int) uint32      { return rxq(n, 0x00) } // descriptor base low
func RDBAH(n int) uint32      { return rxq(n, 0x04) } // descriptor base high
func RDLEN(n int) uint32      { return rxq(n, 0x08) } // ring length in bytes
func SRRCTL(n int) uint32     { return rxq(n, 0x0C) } // split and replication control
func RDH(n int) uint32        { return rxq(n, 0x10) } // head
func DCA_RXCTRL(n int) uint32 { return rxq(n, 0x14) } // DCA control
func RDT(n int) uint32        { return rxq(n, 0x18) } // tail
func RXDCTL(n int) uint32     { return rxq(n, 0x28) } // descriptor control
func RQDPC(n int) uint32      { return rxq(n, 0x30) } // queue drop packet count (clear on read)

// Per-queue transmit registers.
func TDBAL(n int) uint32      { return txq(n, 0x00) }
func TDBAH(n int) uint32      { return txq(n, 0x04) }
func TDLEN(n int) uint32      { return txq(n, 0x08) }
func TDH(n int) uint32        { return txq(n, 0x10) }
func DCA_TXCTRL(n int) uint32 { return txq(n, 0x14) }
func TDT(n int) uint32        { return txq(n, 0x18) }
func TXDCTL(n int) uint32     { return txq(n, 0x28) }
func TDWBAL(n int) uint32     { return txq(n, 0x38) } // head write-back address low
func TDWBAH(n int) uint32     { return txq(n, 0x3C) }

// SRRCTL, RXDCTL and TXDCTL fields (8.10.x, 8.12.x).
const (
	SRRCTL_BSIZEPKT_MASK   = 0x7F // packet buffer size in 1 KB units, bits 6:0
	SRRCTL_BSIZEHDR_MASK   = 0xF << 8
	SRRCTL_DESCTYPE_MASK   = 7 << 25
	SRRCTL_DESCTYPE_ADV1   = 1 << 25 // advanced, one buffer
	SRRCTL_DESCTYPE_LEGACY = 0
	SRRCTL_DROP_EN         = 1 << 31 // drop when no descriptor is free

	RXDCTL_PTHRESH_MASK  = 0x1F       // prefetch threshold, bits 4:0
	RXDCTL_HTHRESH_SHIFT = 8          // host threshold, bits 12:8
	RXDCTL_WTHRESH_SHIFT = 16         // write-back threshold, bits 20:16
	RXDCTL_THRESH_MASK   = 0x001F1F1F //
	RXDCTL_ENABLE        = 1 << 25    // queue enable

	TXDCTL_PTHRESH_MASK  = 0x1F
	TXDCTL_HTHRESH_SHIFT = 8
	TXDCTL_WTHRESH_SHIFT = 16
	TXDCTL_THRESH_MASK   = 0x001F1F1F
	TXDCTL_ENABLE        = 1 << 25
)

// Transmit (datasheet 8.12).
const (
	TCTL     = 0x00400 // Transmit Control
	TCTL_EXT = 0x00404
	TIPG     = 0x00410 // Transmit IPG
	TXPBS    = 0x03404 // Transmit Packet Buffer Size
	DTXCTL   = 0x03590 // DMA TX Control

	TCTL_EN         = 1 << 1 // transmit enable
	TCTL_PSP        = 1 << 3 // pad short packets to 64 bytes
	TCTL_CT_SHIFT   = 4      // collision threshold, bits 11:4
	TCTL_CT_MASK    = 0xFF << 4
	TCTL_COLD_SHIFT = 12 // collision distance, bits 21:12
	TCTL_COLD_MASK  = 0x3FF << 12
	TCTL_RTLC       = 1 << 24 // retransmit on late collision
)

// Filters (datasheet 8.10.x).
const (
	// RAL/RAH 0-15 at 0x05400, 16-23 at 0x054E0.
	RAHAV        = 1 << 31 // address valid
	RAH_ASEL     = 3 << 16 // address select: destination (00)
	RAEntries    = 24
	MTAEntries   = 128
	VFTAEntries  = 128
	RETAEntries  = 128 // redirection table entries, 4 per register
	RSSKeySize   = 40  // bytes, RSSRK[0..9]
	RETARegs     = RETAEntries / 4
	RSSKeyRegs   = RSSKeySize / 4
	RETAQueueMsk = 0x0F // queue index bits of a RETA entry (QEMU: & 0x0F)
)

// RAL returns receive address low register n (0..23).
func RAL(n int) uint32 {
	if n < 16 {
		return 0x05400 + 8*uint32(n)
	}
	return 0x054E0 + 8*uint32(n-16)
}

// RAH returns receive address high register n.
func RAH(n int) uint32 { return RAL(n) + 4 }

// MTA returns multicast table array register n (0..127).
func MTA(n int) uint32 { return 0x05200 + 4*uint32(n) }

// VFTA returns VLAN filter table array register n (0..127).
func VFTA(n int) uint32 { return 0x05600 + 4*uint32(n) }

// RETA returns redirection table register n (0..31): four 8-bit entries.
func RETA(n int) uint32 { return 0x05C00 + 4*uint32(n) }

// RSSRK returns RSS random key register n (0..9), key bytes 4n..4n+3 in
// bits 7:0..31:24.
func RSSRK(n int) uint32 { return 0x05C80 + 4*uint32(n) }

// Statistics (datasheet 8.19): clear on read; the 64-bit octet counters
// clear when their high half is read (read low, then high).
const (
	CRCERRS  = 0x04000 // CRC errors
	ALGNERRC = 0x04004 // alignment errors
	SYMERRS  = 0x04008 // symbol errors
	RXERRC   = 0x0400C // receive errors
	MPC      = 0x04010 // missed packets (packet buffer full)
	SCC      = 0x04014
	ECOL     = 0x04018
	MCC      = 0x0401C
	LATECOL  = 0x04020
	COLC     = 0x04028
	DC       = 0x04030
	TNCRS    = 0x04034
	SEC      = 0x04038
	CEXTERR  = 0x0403C
	RLEC     = 0x04040 // receive length errors
	XONRXC   = 0x04048
	XONTXC   = 0x0404C
	XOFFRXC  = 0x04050
	XOFFTXC  = 0x04054
	FCRUC    = 0x04058
	PRC64    = 0x0405C
	PRC127   = 0x04060
	PRC255   = 0x04064
	PRC511   = 0x04068
	PRC1023  = 0x0406C
	PRC1522  = 0x04070
	GPRC     = 0x04074 // good packets received
	BPRC     = 0x04078 // broadcasts received
	MPRC     = 0x0407C // multicasts received
	GPTC     = 0x04080 // good packets transmitted
	GORCL    = 0x04088 // good octets received, low
	GORCH    = 0x0408C //   high
	GOTCL    = 0x04090 // good octets transmitted, low
	GOTCH    = 0x04094 //   high
	RNBC     = 0x040A0 // receive no buffers
	RUC      = 0x040A4 // undersize
	RFC      = 0x040A8 // fragments
	ROC      = 0x040AC // oversize
	RJC      = 0x040B0 // jabbers
	MGTPRC   = 0x040B4
	MGTPDC   = 0x040B8
	MGTPTC   = 0x040BC
	TORL     = 0x040C0 // total octets received
	TORH     = 0x040C4
	TOTL     = 0x040C8 // total octets transmitted
	TOTH     = 0x040CC
	TPR      = 0x040D0 // total packets received
	TPT      = 0x040D4 // total packets transmitted
	PTC64    = 0x040D8
	PTC1522  = 0x040EC
	MPTC     = 0x040F0 // multicasts transmitted
	BPTC     = 0x040F4 // broadcasts transmitted
	TSCTC    = 0x040F8 // TCP segmentation contexts transmitted
	TSCTFC   = 0x040FC // TCP segmentation context failures
)
