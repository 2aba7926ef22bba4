package dma

// Meta is a packet's offload metadata, one word carried in Packet so that
// the data path allocates nothing for it. Receive bits say what the device
// found; transmit bits say what the sender asks the device to do. The two
// sets are distinct, so a received packet sent on unchanged (forwarding)
// asks for nothing.
//
// Layout: bits 15:0 flags; bits 31:16 the VLAN tag (TCI) on receive with
// RxVLAN, or to insert with TxVLAN; bits 63:32 the RSS hash on receive with
// RxRSSHash, or on transmit the TSO maximum segment size (bits 47:32) with
// TxTSO.
type Meta uint64

// Receive flags (set by the driver from the device's write-back).
const (
	// RxIPChecked: the device checked the IPv4 header checksum; it is
	// good unless RxIPBad is set.
	RxIPChecked Meta = 1 << 0
	RxIPBad     Meta = 1 << 1
	// RxL4Checked: the device checked the TCP or UDP checksum; it is good
	// unless RxL4Bad is set.
	RxL4Checked Meta = 1 << 2
	RxL4Bad     Meta = 1 << 3
	// RxVLAN: the device stripped an 802.1Q tag; VLAN returns it.
	RxVLAN Meta = 1 << 4
	// RxRSSHash: Hash holds the device's RSS hash of the packet.
	RxRSSHash Meta = 1 << 5
)

// Transmit requests (read by the driver's TxBatch).
const (
	// TxIPCsum asks the device to compute the IPv4 header checksum.
	TxIPCsum Meta = 1 << 8
	// TxL4Csum asks the device to compute the TCP or UDP checksum (the
	// field may hold anything; the device overwrites it).
	TxL4Csum Meta = 1 << 9
	// TxVLAN asks the device to insert the 802.1Q tag VLAN returns.
	TxVLAN Meta = 1 << 10
	// TxTSO asks the device to cut the TCP segment into segments of at
	// most MSS payload bytes, each with its headers and checksums
	// (implies TxIPCsum and TxL4Csum).
	TxTSO Meta = 1 << 11

	metaFlags Meta = 0xFFFF
)

// VLAN returns the VLAN tag (TCI: priority, DEI, VLAN ID).
func (m Meta) VLAN() uint16 { return uint16(m >> 16) }

// Hash returns the RSS hash (receive).
func (m Meta) Hash() uint32 { return uint32(m >> 32) }

// MSS returns the TSO segment size (transmit).
func (m Meta) MSS() uint16 { return uint16(m >> 32) }

// Flags returns m's flag bits alone.
func (m Meta) Flags() Meta { return m & metaFlags }

// WithVLAN returns m with VLAN tag tci.
func (m Meta) WithVLAN(tci uint16) Meta { return m&^(0xFFFF<<16) | Meta(tci)<<16 }

// WithHash returns m with RSS hash h.
func (m Meta) WithHash(h uint32) Meta { return m&^(0xFFFFFFFF<<32) | Meta(h)<<32 }

// WithMSS returns m with TSO segment size mss.
func (m Meta) WithMSS(mss uint16) Meta { return m&^(0xFFFFFFFF<<32) | Meta(mss)<<32 }

// Offloads is the set of offloads a device offers (link.Offloader).
type Offloads uint32

const (
	OffloadRxChecksum Offloads = 1 << iota // RxIPChecked/RxL4Checked reported
	OffloadRxVLAN                          // VLAN tags stripped into Meta
	OffloadRxHash                          // RSS hash in Meta
	OffloadTxIPCsum                        // TxIPCsum honoured
	OffloadTxL4Csum                        // TxL4Csum honoured (TCP and UDP over IPv4)
	OffloadTxVLAN                          // TxVLAN honoured
	OffloadTSO                             // TxTSO honoured (TCP over IPv4)
)

// Has reports whether every offload of want is in o.
func (o Offloads) Has(want Offloads) bool { return o&want == want }
