package regs

// Advanced descriptors (datasheet 7.1.6 receive, 7.2.3.2.4 transmit). Both
// are 16 bytes: two little-endian 64-bit words, or four 32-bit words. The
// driver writes the "read" format; the device overwrites the descriptor with
// the "write-back" format. Offsets below are byte offsets within a descriptor.
const DescSize = 16

// Advanced receive descriptor, read format (7.1.6.1).
const (
	RXD_PKT_ADDR = 0 // packet buffer address (bit 0 is A0 and ignored with header split off)
	RXD_HDR_ADDR = 8 // header buffer address; its bit 0 becomes DD in write-back
)

// Advanced receive descriptor, write-back format (7.1.6.2).
const (
	RXD_WB_PKT_INFO     = 0  // 16 bits: RSS type 3:0, packet type 16:4 (of the dword)
	RXD_WB_HDR_INFO     = 2  // 16 bits
	RXD_WB_RSS          = 4  // 32 bits: RSS hash or fragment checksum
	RXD_WB_STATUS_ERROR = 8  // 32 bits: status 19:0, extended errors 31:20
	RXD_WB_LENGTH       = 12 // 16 bits: packet length in this buffer
	RXD_WB_VLAN         = 14 // 16 bits

	RXD_STAT_DD    = 1 << 0 // descriptor done
	RXD_STAT_EOP   = 1 << 1 // end of packet
	RXD_STAT_VP    = 1 << 3 // 802.1Q packet (VLAN tag stripped into the VLAN field)
	RXD_STAT_UDPCS = 1 << 4 // the L4 checksum checked was UDP's
	RXD_STAT_L4CS  = 1 << 5 // L4 (TCP/UDP) checksum checked
	RXD_STAT_IPCS  = 1 << 6 // IPv4 header checksum checked
	RXD_ERR_MASK   = 0xFFF00000
	RXD_ERR_RXE    = 1 << 29 // MAC error (e.g. CRC)
	RXD_ERR_TCPE   = 1 << 30 // TCP/UDP checksum error (with L4CS), L4E in table 7-15
	RXD_ERR_IPE    = 1 << 31 // IPv4 header checksum error (with IPCS)
	RXD_ERR_SHIFT  = 20

	// RXD_CSUM_BITS are the checksum status and error bits of the
	// write-back's status word (7.1.6.2).
	RXD_CSUM_BITS = RXD_STAT_UDPCS | RXD_STAT_L4CS | RXD_STAT_IPCS | RXD_ERR_IPE | RXD_ERR_TCPE
)

// Advanced transmit data descriptor, read format (7.2.3.2.4).
const (
	TXD_BUFFER_ADDR   = 0  // 64-bit buffer address
	TXD_CMD_TYPE_LEN  = 8  // 32 bits: DTALEN 15:0, DTYP 23:20, DCMD 31:24
	TXD_OLINFO_STATUS = 12 // 32 bits: STA 3:0, IDX 6:4, CC 7, POPTS 13:8, PAYLEN 31:14

	TXD_DTALEN_MASK = 0xFFFF
	TXD_DTYP_MASK   = 0xF << 20
	TXD_DTYP_CTXT   = 0x2 << 20 // advanced context descriptor
	TXD_DTYP_DATA   = 0x3 << 20 // advanced data descriptor
	TXD_DCMD_EOP    = 1 << 24   // end of packet
	TXD_DCMD_IFCS   = 1 << 25   // insert FCS
	TXD_DCMD_RS     = 1 << 27   // report status: write back DD
	TXD_DCMD_DEXT   = 1 << 29   // descriptor extension (advanced format)
	TXD_DCMD_VLE    = 1 << 30   // VLAN insertion
	TXD_DCMD_TSE    = 1 << 31   // TCP segmentation

	TXD_MAC_LINKSEC = 1 << 18 // LinkSec (802.1AE) encapsulation
	TXD_MAC_TSTAMP  = 1 << 19 // IEEE 1588 time stamp

	TXD_PAYLEN_SHIFT = 14
	TXD_IDX_SHIFT    = 4      // context index, bits 6:4
	TXD_IDX_MASK     = 7 << 4 //
	TXD_CC           = 1 << 7 // check context: the offloads use context IDX
	TXD_POPTS_IXSM   = 1 << 8 // insert IP checksum
	TXD_POPTS_TXSM   = 1 << 9 // insert L4 checksum
	TXD_POPTS_IPSEC  = 1 << 10
)

// Advanced transmit context descriptor (7.2.3.2.3): the offload parameters
// the data descriptors of the following packets refer to by IDX.
const (
	TXC_VLAN_MACIP_LENS = 0  // IPLEN 8:0, MACLEN 15:9, VLAN 31:16
	TXC_SEQNUM_SEED     = 4  // IPsec SA index / FCoE parameters
	TXC_TYPE_TUCMD_MLHL = 8  // TUCMD 19:9, DTYP 23:20 (0010b), DCMD 31:24 (DEXT)
	TXC_MSS_L4LEN_IDX   = 12 // IDX 6:4, L4LEN 15:8, MSS 31:16

	TXC_IPLEN_MASK   = 0x1FF
	TXC_MACLEN_SHIFT = 9
	TXC_MACLEN_MASK  = 0x7F << 9
	TXC_VLAN_SHIFT   = 16

	TXC_TUCMD_SNAP      = 1 << 9
	TXC_TUCMD_IPV4      = 1 << 10 // IPv4 (clear: IPv6)
	TXC_TUCMD_L4T_MASK  = 3 << 11
	TXC_TUCMD_L4T_UDP   = 0 << 11
	TXC_TUCMD_L4T_TCP   = 1 << 11
	TXC_TUCMD_L4T_SCTP  = 2 << 11
	TXC_TUCMD_IPSEC_ESP = 1 << 13
	TXC_TUCMD_ENCRYPT   = 1 << 14
	TXC_TUCMD_FCOE      = 1 << 15

	TXC_IDX_SHIFT   = 4
	TXC_L4LEN_SHIFT = 8
	TXC_MSS_SHIFT   = 16
)

// Advanced transmit descriptor, write-back format (7.2.3.2.4): bytes 0-7
// reserved (the device leaves the buffer address in place), bytes 12-15
// status with DD in bit 0.
const (
	TXD_WB_STATUS = 12
	TXD_STAT_DD   = 1 << 0
)
