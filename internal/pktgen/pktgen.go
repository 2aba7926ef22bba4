// Package pktgen builds and checks test traffic: Ethernet/IPv4/UDP frames
// that carry a flow number, a sequence number and a payload derived from
// both, so that a receiver can tell a frame that arrived intact, in order,
// once, from one that was lost, duplicated, reordered or corrupted. It is
// the traffic of `nicctl demo`, `nicctl pktgen` and the driver's end-to-end
// tests, in the spirit of ixy-pktgen's template (10.0.0.1 -> 10.0.0.2 UDP).
package pktgen

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/proto/header"
)

// Frame size limits (without the 4-byte FCS, which the NIC adds).
const (
	MinFrame = 60   // 64-byte minimum Ethernet frame less FCS
	MaxFrame = 1514 // 1518 less FCS
)

// Payload layout after the UDP header (all big-endian):
//
//	0  magic   uint32 "vnic"
//	4  flow    uint32
//	8  seq     uint64
//	16 filler  words derived from flow and seq, to the end of the frame
const (
	magic      = 0x766e6963
	headerLen  = header.EthernetHeaderLen + header.IPv4MinHeaderLen + header.UDPHeaderLen
	stampLen   = 16
	minPayload = MinFrame - headerLen
)

// Flow is one stream of frames: its addresses and ports, and its number.
// Different flows differ in their UDP source port, so that receive-side
// scaling spreads them over queues.
type Flow struct {
	ID               uint32
	SrcMAC, DstMAC   header.MAC
	SrcIP, DstIP     header.IPv4Addr
	SrcPort, DstPort uint16
}

// DefaultFlow returns flow id between two NICs, on ixy-pktgen's addresses
// with source port 1024+id.
func DefaultFlow(id uint32, src, dst header.MAC) Flow {
	return Flow{
		ID: id, SrcMAC: src, DstMAC: dst,
		SrcIP: header.IPv4Addr{10, 0, 0, 1}, DstIP: header.IPv4Addr{10, 0, 0, 2},
		SrcPort: uint16(1024 + id%60000), DstPort: 1337,
	}
}

// SizeSequence yields frame sizes: a fixed size, or a deterministic mix over
// [MinFrame, MaxFrame] that covers small, large and odd sizes.
type SizeSequence struct {
	Fixed int    // 0 means mixed
	state uint64 // xorshift state for the mix
}

// Mixed returns a mixed-size sequence seeded with seed.
func Mixed(seed uint64) SizeSequence { return SizeSequence{state: seed | 1} }

// Fixed returns a sequence of one size.
func Fixed(size int) SizeSequence { return SizeSequence{Fixed: size} }

// Next returns the next frame size.
func (s *SizeSequence) Next() int {
	if s.Fixed != 0 {
		return s.Fixed
	}
	x := s.state
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	s.state = x
	return MinFrame + int(x%uint64(MaxFrame-MinFrame+1))
}

// Build writes frame seq of flow f, size bytes long (clamped to
// [MinFrame, MaxFrame] and to the packet's room), into p and sets p.Len.
func Build(p *dma.Packet, f *Flow, seq uint64, size int) int {
	room := p.Room()
	size = max(MinFrame, min(size, MaxFrame, len(room)))
	b := room[:size]
	payloadLen := size - headerLen
	n := header.EncodeEthernet(b, f.DstMAC, f.SrcMAC, header.EtherTypeIPv4)
	n += header.EncodeIPv4(b[n:], header.IPv4Fields{
		TotalLen: uint16(header.IPv4MinHeaderLen + header.UDPHeaderLen + payloadLen),
		ID:       uint16(seq),
		TTL:      64,
		Protocol: header.IPProtocolUDP,
		Src:      f.SrcIP,
		Dst:      f.DstIP,
	})
	payload := b[n+header.UDPHeaderLen:]
	binary.BigEndian.PutUint32(payload[0:], magic)
	binary.BigEndian.PutUint32(payload[4:], f.ID)
	binary.BigEndian.PutUint64(payload[8:], seq)
	fill(payload[stampLen:], f.ID, seq)
	header.EncodeUDP(b[n:], f.SrcPort, f.DstPort, payloadLen, f.SrcIP, f.DstIP)
	p.Len = uint16(size)
	return size
}

// fill writes the filler derived from (flow, seq): 8-byte words of a
// multiplicative sequence, so that a single flipped or shifted byte shows.
func fill(b []byte, flow uint32, seq uint64) {
	w := seq*0x9E3779B97F4A7C15 ^ uint64(flow)<<32
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, w)
		w += 0xD1B54A32D192ED03
		b = b[8:]
	}
	for i := range b {
		b[i] = byte(w >> (8 * i))
	}
}

// Info is what a received frame says about itself.
type Info struct {
	Flow uint32
	Seq  uint64
	Size int
}

// Errors Check returns. Sentinels, so that checking allocates nothing.
var (
	ErrNotGenerated = errors.New("pktgen: not a generated frame")
	ErrCorrupt      = errors.New("pktgen: frame content does not match its flow and sequence number")
)

// Check parses a received frame (without FCS) and verifies every byte of
// it: headers, checksums and filler.
func Check(frame []byte) (Info, error) {
	eth, err := header.ParseEthernet(frame)
	if err != nil || eth.EtherType() != header.EtherTypeIPv4 {
		return Info{}, ErrNotGenerated
	}
	ip, err := header.ParseIPv4(eth.Payload())
	if err != nil {
		return Info{}, ErrCorrupt
	}
	if ip.Protocol() != header.IPProtocolUDP {
		return Info{}, ErrNotGenerated
	}
	udp, err := header.ParseUDP(ip.Payload(), ip.Src(), ip.Dst())
	if err != nil {
		return Info{}, ErrCorrupt
	}
	payload := udp.Payload()
	if len(payload) < stampLen || binary.BigEndian.Uint32(payload) != magic {
		return Info{}, ErrNotGenerated
	}
	info := Info{
		Flow: binary.BigEndian.Uint32(payload[4:]),
		Seq:  binary.BigEndian.Uint64(payload[8:]),
		Size: len(frame),
	}
	if !filled(payload[stampLen:], info.Flow, info.Seq) || ip.ID() != uint16(info.Seq) {
		return info, ErrCorrupt
	}
	return info, nil
}

func filled(b []byte, flow uint32, seq uint64) bool {
	w := seq*0x9E3779B97F4A7C15 ^ uint64(flow)<<32
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != w {
			return false
		}
		w += 0xD1B54A32D192ED03
		b = b[8:]
	}
	for i := range b {
		if b[i] != byte(w>>(8*i)) {
			return false
		}
	}
	return true
}

// Tracker checks a stream of received frames per flow: each flow's
// sequence numbers must arrive as 0, 1, 2, ... with nothing missing,
// repeated or out of order. It counts what deviates rather than stopping,
// so that a run with faults can account for every frame.
type Tracker struct {
	next       map[uint32]uint64
	Received   uint64 // frames that passed Check
	Bytes      uint64 // their bytes (without FCS)
	InOrder    uint64 // frames whose seq was the one expected
	Gaps       uint64 // frames missing before a later seq arrived
	Late       uint64 // frames with a seq below the one expected (duplicate or reordered)
	Corrupt    uint64 // frames that failed Check with ErrCorrupt
	Foreign    uint64 // frames that are not generated traffic
	FirstError error  // the first deviation, with context
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{next: make(map[uint32]uint64)} }

// Tag is a number unique to one generated frame (its flow and sequence
// number), for traces that follow frames through queues.
func (i Info) Tag() uint64 { return uint64(i.Flow)<<40 | i.Seq&(1<<40-1) }

// Observe checks one received frame and returns what it says about itself;
// ok is false for a corrupt or foreign frame.
func (t *Tracker) Observe(frame []byte) (info Info, ok bool) {
	info, err := Check(frame)
	switch {
	case errors.Is(err, ErrNotGenerated):
		t.Foreign++
		t.note(fmt.Errorf("foreign frame of %d bytes", len(frame)))
		return info, false
	case err != nil:
		t.Corrupt++
		t.note(fmt.Errorf("flow %d seq %d: %w", info.Flow, info.Seq, err))
		return info, false
	}
	t.Received++
	t.Bytes += uint64(info.Size)
	want, seen := t.next[info.Flow]
	if !seen {
		want = 0
	}
	switch {
	case info.Seq == want:
		t.InOrder++
		t.next[info.Flow] = want + 1
	case info.Seq > want:
		t.Gaps += info.Seq - want
		t.note(fmt.Errorf("flow %d: seq %d arrived while %d was expected", info.Flow, info.Seq, want))
		t.next[info.Flow] = info.Seq + 1
	default:
		t.Late++
		t.note(fmt.Errorf("flow %d: seq %d arrived after %d", info.Flow, info.Seq, want-1))
	}
	return info, true
}

// Next returns the sequence number flow is expected to deliver next.
func (t *Tracker) Next(flow uint32) uint64 { return t.next[flow] }

// Flows returns the number of flows seen.
func (t *Tracker) Flows() int { return len(t.next) }

// Merge adds other's counts into t (flows must be disjoint, as when each
// receive queue tracks the flows that RSS steers to it).
func (t *Tracker) Merge(other *Tracker) {
	for f, n := range other.next {
		t.next[f] = n
	}
	t.Received += other.Received
	t.Bytes += other.Bytes
	t.InOrder += other.InOrder
	t.Gaps += other.Gaps
	t.Late += other.Late
	t.Corrupt += other.Corrupt
	t.Foreign += other.Foreign
	if t.FirstError == nil {
		t.FirstError = other.FirstError
	}
}

func (t *Tracker) note(err error) {
	if t.FirstError == nil {
		t.FirstError = err
	}
}
