package ixgbesim

import (
	"sync"

	"github.com/verinic/verinic/ixgbe/regs"
)

// maxPacketBuffer is the largest receive packet buffer (RXPBSIZE[0]'s reset
// value, 512 KB, datasheet 8.2.3.8.10).
const maxPacketBuffer = 512 << 10

// minStored is the smallest frame the packet buffer holds (64 bytes on the
// wire less a stripped FCS), which bounds the number of entries.
const minStored = 60

// pbEntries is the number of entry slots: a power of two (so that indices
// wrap with a mask, not a division) of at least maxPacketBuffer/minStored.
// The arena's size, maxPacketBuffer, is a power of two too.
const pbEntries = 1 << 14

const (
	arenaMask = maxPacketBuffer - 1
	entryMask = pbEntries - 1
)

// Compile-time checks (a negative unsigned constant does not compile):
// both sizes are powers of two, and there are enough entries.
const (
	_ uint = 0 - (maxPacketBuffer&arenaMask | pbEntries&entryMask)
	_ uint = pbEntries - (maxPacketBuffer/minStored + 1)
)

// pbEntry is one frame waiting in the receive packet buffer for its queue's
// DMA engine, with what the MAC and the filters worked out for it.
type pbEntry struct {
	off     int    // offset in the arena (may wrap)
	length  int    // bytes stored (FCS stripped or not)
	queue   uint16 // destination queue
	rssType uint8  // RSS type for the write-back (7.1.6.2)
	hash    uint32 // RSS hash
	ptype   uint16 // packet type bits (7.1.6.2)
	csum    rxCsum // checksum status and fragment checksum (7.1.11)
	vlan    uint16 // stripped 802.1Q tag (TCI) for the write-back
	vp      bool   // VP: the frame was 802.1Q tagged (7.1.6.2)
	noBuf   bool   // counted in RNBC: it found no free descriptor (stats.go)
}

// packetBuffer is the 82599's receive packet buffer 0 (no DCB): a bounded
// FIFO of frames between the MAC and the RX DMA engines (datasheet 7.1.1).
// Its capacity in bytes is RXPBSIZE[0]. Frames leave in arrival order: with
// SRRCTL.DROP_EN clear, a queue without free descriptors holds up every
// frame behind its own, as on the device.
type packetBuffer struct {
	mu      sync.Mutex
	arena   []byte
	head    int // arena offset of the oldest byte
	used    int // bytes in use
	entries []pbEntry
	eh, en  int // first entry, number of entries

	// st holds receive statistics counted under mu and not yet added to
	// the registers (rxStats).
	st rxStats
}

// rxStats are the receive side's per-frame statistics (8.2.3.23: TPR, TOR,
// RXNFGPC, GPRC, GORC, PRCxx, BPRC, MPRC; per queue set QPRC, QBRC,
// QPRDC), counted with plain adds under the packet buffer's lock, which the
// MAC and the RX DMA engine hold anyway, instead of seven to ten atomic
// adds per frame. They reach the registers when software reads any
// statistics register (NIC.foldRxStats, from Read32), so what a read
// returns is exactly what the per-frame atomic counting gave.
type rxStats struct {
	dirty                          bool
	tpr, rxnfgpc, gprc, bprc, mprc uint32
	tor, gorc                      uint64
	prc                            [len(prcRegs)]uint32
	qprc, qprdc                    [regs.StatQueues]uint32
	qbrc                           [regs.StatQueues]uint64
}

func (p *packetBuffer) init() {
	p.arena = make([]byte, maxPacketBuffer)
	p.entries = make([]pbEntry, pbEntries)
}

// push appends a frame if capacity bytes allow; the caller holds p.mu.
func (p *packetBuffer) push(frame []byte, capacity int, e pbEntry) bool {
	return p.push2(frame, nil, nil, capacity, e)
}

// push2 is push of the frame made of a followed by b and c (a frame whose
// VLAN tag the MAC stripped; an FCS the MAC computed, c).
func (p *packetBuffer) push2(a, b, c []byte, capacity int, e pbEntry) bool {
	if capacity > len(p.arena) {
		capacity = len(p.arena)
	}
	l := len(a) + len(b) + len(c)
	if p.used+l > capacity || p.en == len(p.entries) {
		return false
	}
	e.off = (p.head + p.used) & arenaMask
	e.length = l
	k := copy(p.arena[e.off:], a)
	copy(p.arena, a[k:])
	if len(b) > 0 {
		off := (e.off + len(a)) & arenaMask
		k = copy(p.arena[off:], b)
		copy(p.arena, b[k:])
	}
	if len(c) > 0 {
		off := (e.off + len(a) + len(b)) & arenaMask
		k = copy(p.arena[off:], c)
		copy(p.arena, c[k:])
	}
	p.used += l
	p.entries[(p.eh+p.en)&entryMask] = e
	p.en++
	return true
}

// front returns the oldest frame; the caller holds p.mu.
func (p *packetBuffer) front() (*pbEntry, bool) {
	if p.en == 0 {
		return nil, false
	}
	return &p.entries[p.eh], true
}

// pop removes the oldest frame; the caller holds p.mu.
func (p *packetBuffer) pop() {
	e := &p.entries[p.eh]
	p.head = (p.head + e.length) & arenaMask
	p.used -= e.length
	p.eh = (p.eh + 1) & entryMask
	p.en--
	if p.en == 0 {
		p.head, p.used = 0, 0
	}
}

// copyOut copies bytes [from, from+len(dst)) of frame e into dst.
func (p *packetBuffer) copyOut(dst []byte, e *pbEntry, from int) {
	start := (e.off + from) & arenaMask
	k := copy(dst, p.arena[start:])
	copy(dst[k:], p.arena)
}

// clear empties the buffer (device reset).
func (p *packetBuffer) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.head, p.used, p.eh, p.en = 0, 0, 0, 0
	p.st = rxStats{}
}

// foldRxStats adds the receive statistics counted under the packet
// buffer's lock to the registers; Read32 calls it before it reads a
// statistics register.
func (n *NIC) foldRxStats() {
	p := &n.pb
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &p.st
	if !s.dirty {
		return
	}
	add := func(reg, v uint32) {
		if v != 0 {
			n.count(reg, v)
		}
	}
	add(regs.TPR, s.tpr)
	add(regs.RXNFGPC, s.rxnfgpc)
	add(regs.GPRC, s.gprc)
	add(regs.BPRC, s.bprc)
	add(regs.MPRC, s.mprc)
	if s.tor != 0 {
		n.count64(pairTOR, s.tor)
	}
	if s.gorc != 0 {
		n.count64(pairGORC, s.gorc)
	}
	for i, v := range s.prc {
		add(prcRegs[i], v)
	}
	for i := range s.qprc {
		add(regs.QPRC(i), s.qprc[i])
		add(regs.QPRDC(i), s.qprdc[i])
		if s.qbrc[i] != 0 {
			n.count64(pairQBRC0+i, s.qbrc[i])
		}
	}
	*s = rxStats{}
}

// Len returns the number of frames and bytes held.
func (p *packetBuffer) len() (frames, bytes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.en, p.used
}
