package stack

import "sync/atomic"

// Counter names one of the stack's counters. Every way a packet can be
// dropped has its own.
type Counter int

// The counters. Rx/Tx count frames on the links; the rest count packets at
// the layer named. A *_out counter counts what was sent: a datagram handed
// to the link layer (queued for transmission, or waiting for its next hop's
// MAC); what could not be sent is counted by reason instead (ip_no_route,
// tx_no_buffers, tx_ring_full, tx_handoff_drops, arp_queue_full,
// arp_table_full, ip_frag_needed), and a datagram that waited for ARP in
// vain in arp_failed.
const (
	RxFrames Counter = iota
	RxBytes
	RxErrors // RxBatch failed
	TxFrames
	TxBytes
	TxErrors            // TxBatch failed; frames dropped
	TxRingFull          // frames dropped: the TX ring stayed full
	TxNoBuffers         // frames not built: the queue's mempool was empty
	TxHandoffDrops      // datagrams for another interface dropped: its hand-off queue was full
	EthTruncated        // frames shorter than an Ethernet header
	EthOtherHost        // frames for another MAC (or multicast)
	EthVLAN             // 802.1Q-tagged frames (no VLAN support)
	EthUnknownType      // EtherTypes other than ARP and IPv4
	ARPMalformed        // truncated or non-Ethernet/IPv4 ARP
	ARPRequestsIn       // requests received
	ARPRepliesIn        // replies received
	ARPRequestsOut      // requests sent (resolution, probes, gratuitous)
	ARPRepliesOut       // replies sent
	ARPConflicts        // ARP from another host claiming one of our addresses
	ARPQueueFull        // packets dropped: too many waiting for resolution
	ARPFailed           // packets dropped: resolution failed (no reply)
	ARPMartian          // from a martian sender (broadcast, loopback, multicast, off-subnet, 0.0.0.0 outside a probe) or for a martian target, dropped
	ARPTableFull        // resolutions (their packets dropped) and learnings refused: every cache entry incomplete
	IPMalformed         // bad version, IHL, lengths or options
	IPBadOptions        // malformed options (also in ip_malformed): answered with ICMP Parameter Problem
	IPBadChecksum       // header checksum failures
	IPMartian           // martian source (ours, 0/8, loopback, broadcast, multicast), dropped
	IPNotForUs          // destination is not ours (no forwarding)
	IPUnknownProto      // protocols without a handler
	IPFragments         // fragments received
	IPReassembled       // datagrams reassembled
	IPFragDropped       // fragments dropped by reassembly (see Reasm* for why)
	IPNoRoute           // datagrams with no route
	IPFragmentsOut      // fragments sent
	IPFragNeeded        // datagrams with DF set larger than the path MTU, dropped
	IPDelivered         // datagrams delivered to a transport
	ICMPMalformed       // truncated messages
	ICMPBadChecksum     // checksum failures
	ICMPEchoIn          // echo requests received
	ICMPEchoOut         // echo replies sent
	ICMPEchoBcast       // echo requests to a broadcast address, ignored
	ICMPReplyIn         // echo replies received
	ICMPUnreachIn       // destination unreachable received
	ICMPUnreachOut      // destination unreachable sent
	ICMPOtherIn         // other types received (counted, ignored)
	ICMPTimeExceededOut // time exceeded (reassembly, RFC 792 code 1) sent
	ICMPParamProbOut    // parameter problem sent (malformed IP options)
	ICMPTimestampIn     // timestamp requests received
	ICMPTimestampOut    // timestamp replies sent
	ICMPRateLimited     // errors not sent because of the rate limit
	UDPMalformed        // bad length
	UDPBadChecksum      // checksum failures
	UDPNoPort           // no socket on the port (port unreachable sent unless broadcast)
	UDPRcvbufErrors     // socket receive queue full
	UDPDelivered        // datagrams queued to sockets
	// Checksum offload (links that are a link.Offloader).
	RxCsumOffloaded // TCP/UDP segments whose checksum the device verified (not summed again)
	TxCsumOffloaded // segments sent with the TCP/UDP checksum left to the device
	// TCP segmentation offload (links offering dma.OffloadTSO).
	TxTSO          // TCP bursts handed to the device to cut into segments (also in tx_csum_offloaded)
	TxTSOSegments  // the segments those bursts make on the wire
	TxTSONoBuffers // bursts not built: the loop's TSO buffers were all in use (TCP sent one-MSS segments)
	// Component counters, summed into a snapshot.
	ReasmOverlaps     // datagrams dropped for overlapping fragments
	ReasmDuplicates   // exact duplicate fragments ignored
	ReasmMalformed    // fragments with inconsistent lengths
	ReasmTooBig       // fragments past 65535 bytes or larger than a block
	ReasmTooManyFrags // datagrams dropped for too many fragments
	ReasmTimeouts     // datagrams dropped on timeout
	ReasmEvicted      // datagrams evicted for memory or count
	ReasmNoMemory     // fragments dropped with nothing to evict
	ReasmAfterDrop    // fragments of a datagram already dropped, discarded on arrival
	ReasmMemory       // bytes held by reassembly now (gauge)
	ARPEntries        // neighbour cache entries now (gauge)
	ARPEvicted        // cache entries evicted to make room
	ARPMACChanged     // neighbours whose MAC changed (poisoning, or a replaced NIC); logged at a rate limit
	// Device counters (links that are a link.DropCounter, such as
	// *ixgbe.NIC): received frames dropped before any poll loop saw them.
	DevRxMissed      // no room in the device's receive packet buffer (82599 MPC)
	DevRxRingFull    // the queue's ring had no free descriptor (QPRDC)
	DevRxCRCErrors   // bad FCS (CRCERRS)
	DevRxUndersize   // shorter than 64 bytes (RUC, RFC)
	DevRxOversize    // longer than the largest frame allowed (ROC, RJC)
	DevRxFiltered    // good frames refused by the destination-address filters
	DevRxDriverDrops // dropped by the driver (MAC errors, frames spanning descriptors)
	numCounters
)

var counterNames = [numCounters]string{
	"rx_frames", "rx_bytes", "rx_errors", "tx_frames", "tx_bytes", "tx_errors", "tx_ring_full", "tx_no_buffers", "tx_handoff_drops",
	"eth_truncated", "eth_other_host", "eth_vlan", "eth_unknown_type",
	"arp_malformed", "arp_requests_in", "arp_replies_in", "arp_requests_out", "arp_replies_out", "arp_conflicts", "arp_queue_full", "arp_failed", "arp_martian", "arp_table_full",
	"ip_malformed", "ip_bad_options", "ip_bad_checksum", "ip_martian", "ip_not_for_us", "ip_unknown_proto", "ip_fragments", "ip_reassembled", "ip_frag_dropped", "ip_no_route", "ip_fragments_out", "ip_frag_needed", "ip_delivered",
	"icmp_malformed", "icmp_bad_checksum", "icmp_echo_in", "icmp_echo_out", "icmp_echo_broadcast", "icmp_reply_in", "icmp_unreach_in", "icmp_unreach_out", "icmp_other_in", "icmp_time_exceeded_out", "icmp_param_prob_out", "icmp_timestamp_in", "icmp_timestamp_out", "icmp_rate_limited",
	"udp_malformed", "udp_bad_checksum", "udp_no_port", "udp_rcvbuf_errors", "udp_delivered",
	"rx_csum_offloaded", "tx_csum_offloaded", "tx_tso", "tx_tso_segments", "tx_tso_no_buffers",
	"reasm_overlaps", "reasm_duplicates", "reasm_malformed", "reasm_too_big", "reasm_too_many_frags", "reasm_timeouts", "reasm_evicted", "reasm_no_memory", "reasm_after_drop", "reasm_memory_bytes",
	"arp_entries", "arp_evicted", "arp_mac_changed",
	"dev_rx_missed", "dev_rx_ring_full", "dev_rx_crc_errors", "dev_rx_undersize", "dev_rx_oversize", "dev_rx_filtered", "dev_rx_driver_drops",
}

// String returns the counter's name.
func (c Counter) String() string {
	if c < 0 || c >= numCounters {
		return "unknown"
	}
	return counterNames[c]
}

type counterSet [numCounters]atomic.Uint64

func (c *counterSet) inc(k Counter)           { c[k].Add(1) }
func (c *counterSet) add(k Counter, n uint64) { c[k].Add(n) }

// Counters is a snapshot of the stack's counters.
type Counters struct {
	v [numCounters]uint64
}

// Get returns one counter.
func (c Counters) Get(k Counter) uint64 {
	if k < 0 || k >= numCounters {
		return 0
	}
	return c.v[k]
}

// Stat is a named counter value.
type Stat struct {
	Name  string
	Value uint64
}

// All returns every counter in declaration order.
func (c Counters) All() []Stat {
	out := make([]Stat, numCounters)
	for i := range out {
		out[i] = Stat{counterNames[i], c.v[i]}
	}
	return out
}

// Sub returns c - prev, counter by counter (gauges keep c's value).
func (c Counters) Sub(prev Counters) Counters {
	var d Counters
	for i := range c.v {
		switch Counter(i) {
		case ReasmMemory, ARPEntries:
			d.v[i] = c.v[i]
		default:
			d.v[i] = c.v[i] - prev.v[i]
		}
	}
	return d
}
