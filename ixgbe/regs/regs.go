// Package regs is the Intel 82599 register map: BAR0 offsets, indexed
// registers as functions, and bit constants, named as in the 82599 datasheet
// (rev. 3.3, section 8.2.3 "Device Registers"). It is a leaf package shared by
// the driver (ixgbe) and the simulator (ixgbe/ixgbesim), so that both speak
// the same addresses; regs_test.go checks it against an independent table of
// the datasheet's offsets.
//
// Names keep the datasheet's upper-case spelling (CTRL, RDBAL, EIMS...) and
// bits are REGISTER_FIELD, so a reader can search the datasheet for them.
package regs

// BAR0Size is the size of the 82599's memory BAR0 (datasheet 9.3.6.1: 128 KB
// of CSR space, plus the flash window the driver does not use).
const BAR0Size = 0x20000

// General control (datasheet 8.2.3.1).
const (
	CTRL       = 0x00000 // Device Control
	CTRL_ALIAS = 0x00004 // CTRL is also mapped here (datasheet table 8-2)
	STATUS     = 0x00008 // Device Status
	CTRL_EXT   = 0x00018 // Extended Device Control

	CTRL_LNK_RST  = 1 << 3  // link reset, self-clearing
	CTRL_PCIE_MDE = 1 << 2  // PCIe master disable
	CTRL_RST      = 1 << 26 // device reset, self-clearing (4.6.3.2)
	CTRL_RST_MASK = CTRL_LNK_RST | CTRL_RST

	STATUS_LAN_ID       = 3 << 2  // which port of the dual-port device
	STATUS_LINKUP       = 1 << 7  // link up indication
	STATUS_GIO_MASTER_E = 1 << 19 // GIO master enable status
	CTRL_EXT_NS_DIS     = 1 << 16 // no-snoop disable (4.6.7)
	CTRL_EXT_DRV_LOAD   = 1 << 28 // driver loaded
	CTRL_EXT_PFRSTD     = 1 << 14 // PF reset done
)

// EEPROM / flash (datasheet 8.2.3.2).
const (
	EEC = 0x10010 // EEPROM/Flash Control

	EEC_PRES = 1 << 8 // EEPROM present
	EEC_ARD  = 1 << 9 // EEPROM auto-read done (4.6.3)
)

// Interrupts (datasheet 8.2.3.5).
const (
	EICR = 0x00800 // Extended Interrupt Cause, read clears / write 1 clears
	EICS = 0x00808 // Extended Interrupt Cause Set, write only
	EIMS = 0x00880 // Extended Interrupt Mask Set/Read, write 1 sets
	EIMC = 0x00888 // Extended Interrupt Mask Clear, write 1 clears
	EIAC = 0x00810 // Extended Interrupt Auto Clear
	EIAM = 0x00890 // Extended Interrupt Auto Mask enable
	GPIE = 0x00898 // General Purpose Interrupt Enable

	EICR_RTX_QUEUE     = 0x0000FFFF // RX/TX queue causes
	EICR_LSC           = 1 << 20    // link status change
	EIMC_IRQ_CLEAR_ALL = 0x7FFFFFFF // every cause but reserved bit 31; the driver writes IRQ_CLEAR_MASK (nvm.go), as Intel does

	GPIE_MSIX_MODE   = 1 << 4
	GPIE_EIAME       = 1 << 30
	GPIE_PBA_SUPPORT = 1 << 31

	IVAR_ALLOC_VAL = 0x80 // IVAR entry valid
)

// EITR returns the Extended Interrupt Throttle register of vector n
// (datasheet 8.2.3.5.12: 0x00820 + 4n for n 0..23, 0x012300 + 4(n-24) after).
func EITR(n int) uint32 {
	if n <= 23 {
		return 0x00820 + 4*uint32(n)
	}
	return 0x012300 + 4*uint32(n-24)
}

// IVAR returns the Interrupt Vector Allocation register n (0..63), which maps
// queues 2n and 2n+1 to MSI-X vectors (datasheet 8.2.3.5.16).
func IVAR(n int) uint32 { return 0x00900 + 4*uint32(n) }

// Receive DMA (datasheet 8.2.3.8). Queues 0..63 are at 0x01000 + 0x40n;
// 64..127 at 0x0D000 + 0x40(n-64).
func rxq(n int, base0, base64 uint32) uint32 {
	if n < 64 {
		return base0 + 0x40*uint32(n)
	}
	return base64 + 0x40*uint32(n-64)
}

// RDBAL returns the Receive Descriptor Base Address Low register of queue n.
func RDBAL(n int) uint32 { return rxq(n, 0x01000, 0x0D000) }

// RDBAH returns the Receive Descriptor Base Address High register of queue n.
func RDBAH(n int) uint32 { return rxq(n, 0x01004, 0x0D004) }

// RDLEN returns the Receive Descriptor Length register (bytes, multiple of
// 128) of queue n.
func RDLEN(n int) uint32 { return rxq(n, 0x01008, 0x0D008) }

// RDH returns the Receive Descriptor Head register of queue n.
func RDH(n int) uint32 { return rxq(n, 0x01010, 0x0D010) }

// RDT returns the Receive Descriptor Tail register of queue n.
func RDT(n int) uint32 { return rxq(n, 0x01018, 0x0D018) }

// RXDCTL returns the Receive Descriptor Control register of queue n.
func RXDCTL(n int) uint32 { return rxq(n, 0x01028, 0x0D028) }

// SRRCTL returns the canonical Split Receive Control register of queue n.
// Queues 0..15 are also reachable at SRRCTLAlias (82598 compatibility).
func SRRCTL(n int) uint32 { return rxq(n, 0x01014, 0x0D014) }

// SRRCTLAlias returns the 82598-compatible alias of SRRCTL for queues 0..15
// (0x02100 + 4n), or 0 for other queues.
func SRRCTLAlias(n int) uint32 {
	if n < 16 {
		return 0x02100 + 4*uint32(n)
	}
	return 0
}

// DCA_RXCTRL returns the canonical Rx DCA Control register of queue n
// (datasheet 8.2.3.11.1).
func DCA_RXCTRL(n int) uint32 { return rxq(n, 0x0100C, 0x0D00C) }

// DCA_RXCTRLAlias returns the 82598 alias of DCA_RXCTRL for queues 0..15
// (0x02200 + 4n), or 0 for other queues.
func DCA_RXCTRLAlias(n int) uint32 {
	if n < 16 {
		return 0x02200 + 4*uint32(n)
	}
	return 0
}

// RX control bits.
const (
	RDRXCTL = 0x02F00 // Receive DMA Control
	RXCTRL  = 0x03000 // Receive Control
	FCTRL   = 0x05080 // Filter Control
	HLREG0  = 0x04240 // MAC Core Control 0
	MAXFRS  = 0x04268 // Max Frame Size
	VLNCTRL = 0x05088 // VLAN Control

	SECRXCTRL = 0x08D00 // Security Rx Control
	SECRXSTAT = 0x08D04 // Security Rx Status

	RDRXCTL_CRCSTRIP = 1 << 1 // strip CRC in DMA
	RDRXCTL_DMAIDONE = 1 << 3 // DMA init done (4.6.3)
	RXCTRL_RXEN      = 1 << 0 // receive enable

	FCTRL_MPE = 1 << 8  // multicast promiscuous
	FCTRL_UPE = 1 << 9  // unicast promiscuous
	FCTRL_BAM = 1 << 10 // accept broadcast

	HLREG0_TXCRCEN   = 1 << 0  // append CRC on transmit
	HLREG0_RXCRCSTRP = 1 << 1  // strip CRC on receive
	HLREG0_JUMBOEN   = 1 << 2  // jumbo frames
	HLREG0_TXPADEN   = 1 << 10 // pad short frames to 64 bytes

	MAXFRS_MFS_SHIFT = 16 // max frame size in bits 31:16

	SECRXCTRL_RX_DIS    = 1 << 1
	SECRXSTAT_SECRX_RDY = 1 << 0

	RXDCTL_ENABLE = 1 << 25 // queue enable; reads 1 once the queue runs
	RXDCTL_VME    = 1 << 30 // VLAN strip

	// VLNCTRL (8.2.3.7.2): VET, the VLAN ether type (bits 15:0, reset
	// 0x8100); CFIEN/CFI (bits 29, 28); VFE (bit 30), VLAN filter enable:
	// a tagged frame passes only if its VLAN ID's bit is set in the VFTA.
	VLNCTRL_VET_MASK = 0xFFFF
	VLNCTRL_CFI      = 1 << 28
	VLNCTRL_CFIEN    = 1 << 29
	VLNCTRL_VFE      = 1 << 30

	SRRCTL_BSIZEPACKET_MASK  = 0x1F   // packet buffer size, 1 KB units
	SRRCTL_BSIZEHEADER_MASK  = 0x3F00 // header buffer size, 64 B units
	SRRCTL_BSIZEHEADER_SHIFT = 8
	SRRCTL_DESCTYPE_MASK     = 0x0E000000
	SRRCTL_DESCTYPE_LEGACY   = 0x00000000
	SRRCTL_DESCTYPE_ADV_ONE  = 0x02000000 // advanced, one buffer
	SRRCTL_DROP_EN           = 1 << 28    // drop when no descriptor is free

	DCA_RXCTRL_RESERVED12 = 1 << 12 // "reserved, initialised as 1, must be set to 0" (4.6.7)
)

// VFTA returns VLAN Filter Table Array register n (0..127): bit k of
// VFTA[n] admits VLAN ID 32n+k (8.2.3.7.15).
func VFTA(n int) uint32 { return 0x0A000 + 4*uint32(n) }

// RSCCTL returns the RSC Control register of RX queue n (receive side
// coalescing, 8.2.3.8.13): RSCEN (bit 0) enables it.
func RSCCTL(n int) uint32 { return rxq(n, 0x0102C, 0x0D02C) }

// ETQF returns EType Queue Filter n (0..7, 8.2.3.7.18); bit 27 marks the
// ether type as FCoE.
func ETQF(n int) uint32 { return 0x05128 + 4*uint32(n) }

// Features the simulator does not model; their enable bits (from Linux's
// ixgbe_type.h; see docs/NOTES.md).
const (
	RSCCTL_RSCEN = 1 << 0

	LSECTXCTRL         = 0x08A04 // LinkSec Tx Control (8.2.3.12.1)
	LSECRXCTRL         = 0x08F04 // LinkSec Rx Control (8.2.3.12.11)
	LSECTXCTRL_EN_MASK = 0x3     // LinkSec transmit mode, 00b: off
	LSECRXCTRL_EN_MASK = 0x3 << 2

	IPSTXIDX          = 0x08900 // IPsec Tx SA index (8.2.3.13)
	IPSRXIDX          = 0x08E00 // IPsec Rx SA index
	IPSIDX_IPS_EN     = 1 << 0  // the SA written is valid (IPsec on)
	ETQF_FCOE         = 1 << 27
	ETQF_FILTER_EN    = 1 << 31
	MRQC_MRQE_RSS_OFF = 0x0 // no RSS, no DCB, no virtualization
)

// RXPBSIZE returns Receive Packet Buffer Size register n (0..7).
func RXPBSIZE(n int) uint32 { return 0x03C00 + 4*uint32(n) }

// RXPBSIZE_128KB gives packet buffer 0 128 KB (size in KB in bits 19:10),
// as 4.6.7 does without DCB or virtualization.
const RXPBSIZE_128KB = 128 << 10

// Link flow control, IEEE 802.3x PAUSE frames (datasheet 3.7.7, registers
// 8.2.3.3). On the 82599 the per-packet-buffer thresholds are 4 bytes apart:
// FCRTL[n] at 0x03220 + 4n and FCRTH[n] at 0x03260 + 4n. (The 82598 spaced
// them 8 apart; Linux's ixgbe_type.h keeps both, IXGBE_FCRTH(_i) for the
// 82598 and IXGBE_FCRTH_82599(_i) for this part.)

// FCTTV returns Flow Control Transmit Timer Value register n (0..3): the
// pause time sent in XOFF frames, TTV(2n) in bits 15:0 and TTV(2n+1) in bits
// 31:16, in quanta of 512 bit times (8.2.3.3.1). Link flow control uses
// TTV0.
func FCTTV(n int) uint32 { return 0x03200 + 4*uint32(n) }

// FCRTL returns the Flow Control Receive Threshold Low register n (0..7)
// (8.2.3.3.2).
func FCRTL(n int) uint32 { return 0x03220 + 4*uint32(n) }

// FCRTH returns the Flow Control Receive Threshold High register n (0..7)
// (8.2.3.3.3).
func FCRTH(n int) uint32 { return 0x03260 + 4*uint32(n) }

const (
	FCRTV = 0x032A0 // Flow Control Refresh Threshold Value (8.2.3.3.4)
	FCCFG = 0x03D00 // Flow Control Configuration (8.2.3.3.5)
	MFLCN = 0x04294 // MAC Flow Control (MAC registers, 8.2.3.22)

	// FCRTL/FCRTH: threshold in bits 18:5, in 32-byte units, so the field
	// read as a byte count is reg & FCRT_THRESH_MASK.
	FCRT_THRESH_MASK = 0x3FFF << 5
	FCRTL_XONE       = 1 << 31 // send XON when the fill drops below FCRTL
	FCRTH_FCEN       = 1 << 31 // send XOFF when the fill crosses FCRTH

	FCRTV_MASK = 0xFFFF // refresh threshold, bits 15:0, 512-bit-time quanta
	FCTTV_MASK = 0xFFFF // one timer value

	FCCFG_TFCE_MASK     = 3 << 3 // transmit flow control enable, bits 4:3
	FCCFG_TFCE_DISABLED = 0 << 3
	FCCFG_TFCE_802_3X   = 1 << 3 // link flow control (PAUSE)
	FCCFG_TFCE_PRIORITY = 2 << 3 // priority flow control (802.1Qbb)

	MFLCN_PMCF  = 1 << 0 // pass MAC control frames to the host
	MFLCN_DPF   = 1 << 1 // discard pause frames (with PMCF)
	MFLCN_RPFCE = 1 << 2 // receive priority flow control enable
	MFLCN_RFCE  = 1 << 3 // receive link flow control enable

	// Flow control statistics (8.2.3.23), clear on read.
	LXONTXC    = 0x03F60 // Link XON Transmitted Count
	LXOFFTXC   = 0x03F68 // Link XOFF Transmitted Count
	LXONRXCNT  = 0x041A4 // Link XON Received Count
	LXOFFRXCNT = 0x041A8 // Link XOFF Received Count
)

// PAUSE frames (IEEE 802.3 annex 31B, datasheet 3.7.7.1).
const (
	PauseEtherType = 0x8808 // MAC control
	PauseOpcode    = 0x0001 // PAUSE
	// PauseQuantumBits is the pause quantum: 512 bit times, 51.2 ns at
	// 10 Gb/s.
	PauseQuantumBits = 512
)

// PauseDA is the reserved multicast destination of PAUSE frames.
var PauseDA = [6]byte{0x01, 0x80, 0xC2, 0x00, 0x00, 0x01}

// Multicast Table Array entry n (0..127).
func MTA(n int) uint32 { return 0x05200 + 4*uint32(n) }

// RAL returns Receive Address Low register n (0..127), canonical address.
func RAL(n int) uint32 { return 0x0A200 + 8*uint32(n) }

// RAH returns Receive Address High register n (0..127), canonical address.
func RAH(n int) uint32 { return 0x0A204 + 8*uint32(n) }

// RALAlias returns the 82598 alias of RAL for entries 0..15 (0x05400 + 8n),
// or 0 for others.
func RALAlias(n int) uint32 {
	if n < 16 {
		return 0x05400 + 8*uint32(n)
	}
	return 0
}

// RAHAlias returns the 82598 alias of RAH for entries 0..15, or 0.
func RAHAlias(n int) uint32 {
	if n < 16 {
		return 0x05404 + 8*uint32(n)
	}
	return 0
}

// RAH bits.
const RAH_AV = 1 << 31 // address valid

// MPSAR_LO and MPSAR_HI return the MAC Pool Select Array registers of entry n.
func MPSAR_LO(n int) uint32 { return 0x0A600 + 8*uint32(n) }
func MPSAR_HI(n int) uint32 { return 0x0A604 + 8*uint32(n) }

// Transmit DMA (datasheet 8.2.3.9).

// TDBAL returns the Transmit Descriptor Base Address Low register of queue n.
func TDBAL(n int) uint32 { return 0x06000 + 0x40*uint32(n) }

// TDBAH returns the Transmit Descriptor Base Address High register of queue n.
func TDBAH(n int) uint32 { return 0x06004 + 0x40*uint32(n) }

// TDLEN returns the Transmit Descriptor Length register of queue n.
func TDLEN(n int) uint32 { return 0x06008 + 0x40*uint32(n) }

// TDH returns the Transmit Descriptor Head register of queue n.
func TDH(n int) uint32 { return 0x06010 + 0x40*uint32(n) }

// TDT returns the Transmit Descriptor Tail register of queue n.
func TDT(n int) uint32 { return 0x06018 + 0x40*uint32(n) }

// TXDCTL returns the Transmit Descriptor Control register of queue n.
func TXDCTL(n int) uint32 { return 0x06028 + 0x40*uint32(n) }

// TDWBAL and TDWBAH return the head write-back address registers of queue n.
func TDWBAL(n int) uint32 { return 0x06038 + 0x40*uint32(n) }
func TDWBAH(n int) uint32 { return 0x0603C + 0x40*uint32(n) }

// TXPBSIZE returns Transmit Packet Buffer Size register n (0..7).
func TXPBSIZE(n int) uint32 { return 0x0CC00 + 4*uint32(n) }

// TXPBTHRESH returns the Tx Packet Buffer Threshold register n (0..7).
func TXPBTHRESH(n int) uint32 { return 0x04950 + 4*uint32(n) }

const (
	DMATXCTL  = 0x04A80 // DMA Tx Control
	DTXMXSZRQ = 0x08100 // DMA Tx TCP Max Allow Size Requests
	RTTDCS    = 0x04900 // DCB Transmit Descriptor Plane Control and Status

	// DTXTCPFLGL/H (8.2.3.9.12-13): the TCP flags a TSO segment keeps,
	// by position: first segment bits 11:0 and middle ones bits 27:16 of
	// DTXTCPFLGL, the last bits 11:0 of DTXTCPFLGH.
	DTXTCPFLGL = 0x04A88
	DTXTCPFLGH = 0x04A8C

	DMATXCTL_TE          = 1 << 0       // transmit enable
	DMATXCTL_VT_MASK     = 0xFFFF << 16 // VLAN ether type inserted with VLE (bits 31:16, reset 0x8100)
	DMATXCTL_VT_SHIFT    = 16
	RTTDCS_ARBDIS        = 1 << 6 // DCB arbiter disable
	TXDCTL_ENABLE        = 1 << 25
	TXDCTL_SWFLSH        = 1 << 26 // software flush, self-clearing
	TXDCTL_PTHRESH       = 0x7F    // prefetch threshold, bits 6:0
	TXDCTL_HTHRESH       = 0x7F << 8
	TXDCTL_WTHRESH       = 0x7F << 16
	TXDCTL_WTHRESH_SHIFT = 16
	TXDCTL_HTHRESH_SHIFT = 8

	TXPBSIZE_40KB = 40 << 10 // bits 19:10, KB units
)

// Link (datasheet 8.2.3.22).
const (
	AUTOC  = 0x042A0 // Auto-Negotiation Control
	LINKS  = 0x042A4 // Link Status
	AUTOC2 = 0x042A8

	AUTOC_AN_RESTART       = 1 << 12
	AUTOC_LMS_SHIFT        = 13
	AUTOC_LMS_MASK         = 7 << AUTOC_LMS_SHIFT
	AUTOC_LMS_10G_SERIAL   = 3 << AUTOC_LMS_SHIFT
	AUTOC_LMS_KX4_KX_KR    = 4 << AUTOC_LMS_SHIFT
	AUTOC_10G_PMA_PMD_MASK = 3 << 7
	AUTOC_10G_XAUI         = 0 << 7

	LINKS_UP         = 1 << 30
	LINKS_SPEED_MASK = 3 << 28
	LINKS_SPEED_10G  = 3 << 28
	LINKS_SPEED_1G   = 2 << 28
	LINKS_SPEED_100M = 1 << 28
)

// Statistics (datasheet 8.2.3.23). All counters clear on read unless said.
const (
	CRCERRS = 0x04000 // CRC Error Count
	ILLERRC = 0x04004 // Illegal Byte Error Count
	ERRBC   = 0x04008 // Error Byte Count
	RLEC    = 0x04040 // Receive Length Error Count
	PRC64   = 0x0405C // Packets Received [64 bytes]
	PRC127  = 0x04060
	PRC255  = 0x04064
	PRC511  = 0x04068
	PRC1023 = 0x0406C
	PRC1522 = 0x04070
	GPRC    = 0x04074 // Good Packets Received Count
	BPRC    = 0x04078 // Broadcast Packets Received Count
	MPRC    = 0x0407C // Multicast Packets Received Count
	GPTC    = 0x04080 // Good Packets Transmitted Count
	GORCL   = 0x04088 // Good Octets Received Count Low
	GORCH   = 0x0408C // Good Octets Received Count High (clears the pair)
	GOTCL   = 0x04090 // Good Octets Transmitted Count Low
	GOTCH   = 0x04094 // Good Octets Transmitted Count High
	RUC     = 0x040A4 // Receive Undersize Count
	RFC     = 0x040A8 // Receive Fragment Count
	ROC     = 0x040AC // Receive Oversize Count
	RJC     = 0x040B0 // Receive Jabber Count
	TORL    = 0x040C0 // Total Octets Received Low
	TORH    = 0x040C4
	TPR     = 0x040D0 // Total Packets Received
	TPT     = 0x040D4 // Total Packets Transmitted
	PTC64   = 0x040D8
	PTC127  = 0x040DC
	PTC255  = 0x040E0
	PTC511  = 0x040E4
	PTC1023 = 0x040E8
	PTC1522 = 0x040EC
	MPTC    = 0x040F0 // Multicast Packets Transmitted Count
	BPTC    = 0x040F4 // Broadcast Packets Transmitted Count
	RXNFGPC = 0x041B0 // Good Rx Non-Filtered Packet Counter
)

// MPC returns Missed Packets Count register n (0..7): packets dropped for
// lack of space in packet buffer n.
func MPC(n int) uint32 { return 0x03FA0 + 4*uint32(n) }

// RQSMR returns Receive Queue Statistic Mapping register n (0..31): byte k
// of register n maps RX queue 4n+k to a statistics counter (0..15).
func RQSMR(n int) uint32 { return 0x02300 + 4*uint32(n) }

// TQSM returns Transmit Queue Statistic Mapping register n (0..31).
func TQSM(n int) uint32 { return 0x08600 + 4*uint32(n) }

// QPRC returns Queue Packets Received Count register n (0..15).
func QPRC(n int) uint32 { return 0x01030 + 0x40*uint32(n) }

// QPRDC returns Queue Packets Received Drop Count register n (0..15).
func QPRDC(n int) uint32 { return 0x01430 + 0x40*uint32(n) }

// QBRC_L and QBRC_H return Queue Bytes Received Count registers n (0..15).
func QBRC_L(n int) uint32 { return 0x01034 + 0x40*uint32(n) }
func QBRC_H(n int) uint32 { return 0x01038 + 0x40*uint32(n) }

// QPTC returns Queue Packets Transmitted Count register n (0..15). The
// 82598 address 0x06030 + 0x40n is an alias (QPTCAlias).
func QPTC(n int) uint32      { return 0x08680 + 4*uint32(n) }
func QPTCAlias(n int) uint32 { return 0x06030 + 0x40*uint32(n) }

// QBTC_L and QBTC_H return Queue Bytes Transmitted Count registers n (0..15).
func QBTC_L(n int) uint32 { return 0x08700 + 8*uint32(n) }
func QBTC_H(n int) uint32 { return 0x08704 + 8*uint32(n) }

// MaxQueues is the number of RX and TX queues of the 82599.
const MaxQueues = 128

// StatQueues is the number of per-queue statistics counter sets.
const StatQueues = 16
