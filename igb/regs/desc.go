package regs

// Advanced receive and transmit descriptors of the 82576 (datasheet 7.1.5
// and 7.2.2, from memory): 16 bytes, the same read and write-back layouts
// as the 82599's, except for the positions of the receive error bits and
// the transmit data descriptor's CC bit, which the 82576 does not have.
const DescSize = 16

// Advanced receive descriptor write-back (7.1.5.2): the extended status
// and error dword at byte 8.
const (
	RXD_STAT_DD    = 1 << 0 // descriptor done
	RXD_STAT_EOP   = 1 << 1 // end of packet
	RXD_STAT_VP    = 1 << 3 // 802.1Q tag stripped into the VLAN field
	RXD_STAT_UDPCS = 1 << 4 // the L4 checksum checked was UDP's
	RXD_STAT_L4CS  = 1 << 5 // TCP/UDP checksum checked
	RXD_STAT_IPCS  = 1 << 6 // IPv4 header checksum checked

	// Errors, bits 31:20. The 82599 puts RXE in bit 29 and the checksum
	// errors above it; the 82576 has them the other way round.
	RXD_ERR_TCPE = 1 << 29 // TCP/UDP checksum error (with L4CS)
	RXD_ERR_IPE  = 1 << 30 // IPv4 header checksum error (with IPCS)
	RXD_ERR_RXE  = 1 << 31 // MAC error (CRC, symbol, sequence...)
)

// Advanced transmit descriptors (7.2.2.x): DTYP in bits 23:20 of the
// command dword, DCMD in 31:24; olinfo_status with STA 3:0, IDX 4 (two
// contexts per queue), POPTS 13:8 and PAYLEN 31:14.
const (
	TXD_DTYP_CTXT = 0x2 << 20
	TXD_DTYP_DATA = 0x3 << 20
	TXD_DCMD_EOP  = 1 << 24
	TXD_DCMD_IFCS = 1 << 25
	TXD_DCMD_RS   = 1 << 27
	TXD_DCMD_DEXT = 1 << 29
	TXD_DCMD_VLE  = 1 << 30
	TXD_DCMD_TSE  = 1 << 31

	TXD_STAT_DD      = 1 << 0
	TXD_IDX_SHIFT    = 4
	TXD_POPTS_IXSM   = 1 << 8 // insert IPv4 header checksum
	TXD_POPTS_TXSM   = 1 << 9 // insert TCP/UDP checksum
	TXD_PAYLEN_SHIFT = 14

	// Context descriptor fields (7.2.2.x).
	TXC_MACLEN_SHIFT  = 9
	TXC_VLAN_SHIFT    = 16
	TXC_TUCMD_IPV4    = 1 << 10
	TXC_TUCMD_L4T_UDP = 0 << 11
	TXC_TUCMD_L4T_TCP = 1 << 11
	TXC_L4LEN_SHIFT   = 8
	TXC_MSS_SHIFT     = 16
)
