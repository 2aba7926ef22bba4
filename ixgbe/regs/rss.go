package regs

// Receive-side scaling and multicast filtering (datasheet 7.1.2.8, 8.2.3.7).
const (
	MRQC     = 0x05818 // Multiple Receive Queues Command (8.2.3.7.12)
	MCSTCTRL = 0x05090 // Multicast Control (8.2.3.7.2)
	RXCSUM   = 0x05000 // Receive Checksum Control (8.2.3.7.5)

	// MRQC.MRQE (bits 3:0) selects the queue-assignment scheme; 0001b is
	// RSS only (no DCB, no virtualization).
	MRQC_MRQE_MASK = 0xF
	MRQC_RSSEN     = 0x1

	// MRQC field-enable bits: which packet types are hashed.
	MRQC_RSS_FIELD_IPV4_TCP    = 1 << 16
	MRQC_RSS_FIELD_IPV4        = 1 << 17
	MRQC_RSS_FIELD_IPV6_EX_TCP = 1 << 18
	MRQC_RSS_FIELD_IPV6_EX     = 1 << 19
	MRQC_RSS_FIELD_IPV6        = 1 << 20
	MRQC_RSS_FIELD_IPV6_TCP    = 1 << 21
	MRQC_RSS_FIELD_IPV4_UDP    = 1 << 22
	MRQC_RSS_FIELD_IPV6_UDP    = 1 << 23
	MRQC_RSS_FIELD_IPV6_EX_UDP = 1 << 24

	// RXCSUM (8.2.3.7.5). The 82599 always checks the IPv4 header and
	// TCP/UDP checksums of the frames it parses (7.1.11) and reports them
	// in the write-back; RXCSUM only chooses what the second dword of the
	// write-back holds: PCSD set, the RSS hash; clear, the IP identification
	// and the fragment checksum, which IPPCSE computes over the IP payload.
	RXCSUM_IPPCSE = 1 << 12 // IP payload checksum enable (fragment checksum)
	RXCSUM_PCSD   = 1 << 13 // packet checksum disable: report the RSS hash

	// MCSTCTRL: MO (bits 1:0) selects which 12 destination-address bits
	// index the MTA; MFE enables the multicast table.
	MCSTCTRL_MO_MASK = 0x3
	MCSTCTRL_MFE     = 1 << 2

	// RETAEntries is the size of the RSS redirection table: 128 entries,
	// four per RETA register, 4 bits of queue index each.
	RETAEntries = 128
	// RSSKeySize is the length in bytes of the RSS (Toeplitz) key held in
	// RSSRK[0..9], byte 0 in bits 7:0 of RSSRK[0].
	RSSKeySize = 40
)

// RETA returns Redirection Table register n (0..31); byte k holds entry 4n+k.
func RETA(n int) uint32 { return 0x05C00 + 4*uint32(n) }

// RSSRK returns RSS Random Key register n (0..9).
func RSSRK(n int) uint32 { return 0x05C80 + 4*uint32(n) }
