package advring

import "github.com/verinic/verinic/dma"

// Device is the register half of a family driver's device seam: 32-bit
// access to BAR0 (ixgbe.Device and an igb device satisfy it). A register
// write publishes every memory write made before it (descriptors before a
// tail write); a device that is gone reads all ones.
type Device interface {
	Read32(reg uint32) uint32
	Write32(reg uint32, v uint32)
}

// Regs are a family's per-queue ring registers, as functions of the queue
// index: descriptor base (low and high 32 bits), ring length in bytes, head
// and tail. The engine writes base, length, head and tail (Program, the
// tail writes of every batch); everything else about a queue (SRRCTL,
// RXDCTL/TXDCTL enables and thresholds, statistics mapping) is the
// family's.
//
//	82599 (datasheet 8.2.3.8.1-5, 8.2.3.9.5-9): RDBAL(n) = 0x1000+0x40n
//	for n < 64, TDBAL(n) = 0x6000+0x40n; +4 BAH, +8 LEN, +0x10 H, +0x18 T.
//	82576 (datasheet 8.10, QEMU hw/net/igb_regs.h): RDBAL(n) =
//	0xC000+0x40n, TDBAL(n) = 0xE000+0x40n, the same +4/+8/+0x10/+0x18.
type Regs struct {
	RDBAL, RDBAH, RDLEN, RDH, RDT func(q int) uint32
	TDBAL, TDBAH, TDLEN, TDH, TDT func(q int) uint32
}

// Layout holds the bit numbers, within the advanced RX write-back's
// status/error dword (dword 2: extended status 19:0, extended errors
// 31:20), of the bits whose positions differ between families. The status
// bits of both families read DD 0, EOP 1, VP 3, UDPCS 4, L4CS 5, IPCS 6;
// the error bits differ:
//
//	82599 (datasheet 7.1.6.2; Linux and DPDK ixgbe_type.h
//	IXGBE_RXDADV_ERR_*): RXE 29, TCPE 30, IPE 31. (Our reading had IPE 30
//	and TCPE 31, shared by the simulator, until the 82576's table was
//	checked against Linux's headers.)
//	82576 (datasheet 7.1.5.2; Linux e1000_82575.h / QEMU's e1000x_regs.h
//	E1000_RXDEXT_STATERR_*): TCPE 29, IPE 30, RXE 31.
type Layout struct {
	RXE  uint8 // MAC error (CRC, symbol, ...): the frame is dropped and counted
	IPE  uint8 // IPv4 header checksum error (valid with IPCS)
	L4E  uint8 // TCP/UDP checksum error (TCPE, valid with L4CS)
	IPCS uint8 // IPv4 header checksum checked
	L4CS uint8 // TCP/UDP checksum checked
	VP   uint8 // VLAN packet: the stripped tag is in the write-back
}

// Family describes one NIC family to the engine: its queue registers and
// the write-back bits that differ. Differences are data, not branches: the
// engine's code is the same for every family.
type Family struct {
	Name   string // "82599", "82576": for messages
	Regs   Regs
	Layout Layout
	// TxCC is the olinfo bit that tells the device an offload data
	// descriptor uses a context: TxCC (CC, bit 7) on the 82599 (datasheet
	// 7.2.3.2.4); 0 on the 82576, whose olinfo has no CC (bit 7 reserved,
	// from memory; QEMU's igb reads IDX only).
	TxCC uint32
}

// Advanced descriptor formats, common to the 82576 and the 82599 (82599
// datasheet 7.1.6 receive, 7.2.3.2 transmit; 82576 datasheet 7.1.5,
// 7.2.2). Both are 16 bytes: two little-endian 64-bit words, or four 32-bit
// words. The driver writes the "read" format; the device overwrites the
// descriptor with the "write-back" format.
const (
	// DescSize is the size of a descriptor in bytes.
	DescSize = 16

	// RX write-back status bits (dword 2), the same in both families.
	RxStatDD  = 1 << 0 // descriptor done
	RxStatEOP = 1 << 1 // end of packet

	// TX data descriptor, cmd_type_len (dword 2): DTALEN 15:0, DTYP 23:20,
	// DCMD 31:24.
	TxDtypCtxt = 0x2 << 20 // advanced context descriptor
	TxDtypData = 0x3 << 20 // advanced data descriptor
	TxCmdEOP   = 1 << 24   // end of packet
	TxCmdIFCS  = 1 << 25   // insert FCS
	TxCmdRS    = 1 << 27   // report status: write back DD
	TxCmdDEXT  = 1 << 29   // descriptor extension (advanced format)
	TxCmdVLE   = 1 << 30   // VLAN insertion
	TxCmdTSE   = 1 << 31   // TCP segmentation

	// TX data descriptor, olinfo_status (dword 3): STA 3:0, IDX 6:4, CC 7,
	// POPTS 13:8, PAYLEN 31:14.
	TxPaylenShift = 14
	TxCC          = 1 << 7 // check context: the offloads use context IDX
	TxPoptsIXSM   = 1 << 8 // insert IP checksum
	TxPoptsTXSM   = 1 << 9 // insert L4 checksum

	// TX write-back status (dword 3).
	TxStatDD = 1 << 0

	// TX context descriptor: vlan_macip_lens (IPLEN 8:0, MACLEN 15:9, VLAN
	// 31:16), type_tucmd_mlhl (TUCMD 19:9, DTYP, DCMD), mss_l4len_idx (IDX
	// 6:4, L4LEN 15:8, MSS 31:16).
	TxCtxMACLenShift = 9
	TxCtxVLANShift   = 16
	TxCtxTucmdIPv4   = 1 << 10 // IPv4 (clear: IPv6)
	TxCtxTucmdL4UDP  = 0 << 11
	TxCtxTucmdL4TCP  = 1 << 11
	TxCtxL4LenShift  = 8
	TxCtxMSSShift    = 16
)

// TxCmd is the command part of every data descriptor the engine posts: end
// of packet, insert FCS, report status, advanced descriptor, data type. The
// length goes in the low 16 bits. TxCmdNoRS is it without RS.
const (
	TxCmd     = TxCmdEOP | TxCmdIFCS | TxCmdRS | TxCmdDEXT | TxDtypData
	TxCmdNoRS = TxCmd &^ TxCmdRS
)

// metaBitsAt0to3 is a compile-time check of RxQueue.meta's shifts: the four
// checksum results land in dma.Meta bits 0-3.
var _ = [1]struct{}{}[dma.RxIPChecked^1|dma.RxIPBad^2|dma.RxL4Checked^4|dma.RxL4Bad^8]
