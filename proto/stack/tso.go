package stack

import (
	"fmt"
	"net/netip"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/proto/header"
)

// TCP segmentation offload (TSO). When the link cuts TCP segments itself
// (link.Offloader with dma.OffloadTSO) and lets the stack allocate DMA
// memory (link.Allocator), each loop keeps a pool of large transmit buffers
// and TCP hands it bursts of whole segments (TSOMax, OutputTSO) that the
// device cuts at the MSS, with per-segment IP IDs, lengths and checksums
// (82599 datasheet 7.2.4, TCP segmentation).
//
// One burst is one buffer and one data descriptor of at most tsoFrame
// bytes. The 82599's data descriptor has a 16-bit DTALEN, but Intel's
// drivers never put more than 16 KiB in one descriptor (Linux's
// IXGBE_MAX_DATA_PER_TXD is 1 << 14, and it splits larger buffers across
// descriptors); we keep to that limit rather than chain descriptors (the
// driver's TX path then needs no multi-descriptor packets). The datasheet's
// own per-descriptor limit (7.2.3.2.4) is cited from memory (docs/NOTES.md).
// A 16 KiB burst carries 11 segments of 1448 bytes: most of TSO's saving
// (one build, one descriptor, one trace event per burst) is had by then.
const (
	tsoFrame   = 16 << 10
	tsoBuffers = 127 // one 2 MiB page of (16 KiB + headroom) buffers
	// tsoMaxMTU is the largest MTU TSO is used with: the driver refuses
	// a TSO request whose segments would exceed a 1514-byte frame (no
	// jumbo frames), so an interface configured larger sends one-MSS
	// segments.
	tsoMaxMTU = 1500
)

// newTSOPool allocates queue q's TSO buffers, or returns nil (no TSO on
// this loop) when the memory cannot be had.
func newTSOPool(s *Stack, n *NIC, q int, alloc *dma.Allocator) *dma.Mempool {
	p, err := dma.NewMempool(alloc, dma.MempoolConfig{Name: fmt.Sprintf("%s-q%d-tso", n.name, q), Buffers: tsoBuffers, BufSize: tsoFrame})
	if err != nil {
		s.logger.Warn("stack: no TSO buffers; TCP sends one-MSS segments", "nic", n.name, "queue", q, "err", err)
		return nil
	}
	return p
}

// TSOPools returns the TSO buffer pools of the interface's loops (a loop
// without TSO has none), so that a trace header can place every buffer its
// TX rings carry (trace/SCHEMA.md "pools"). The pools are released when the
// stack closes: take what is needed of them before.
func (n *NIC) TSOPools() []*dma.Mempool {
	var ps []*dma.Mempool
	for _, lp := range n.loops {
		if lp.tsoPool != nil {
			ps = append(ps, lp.tsoPool)
		}
	}
	return ps
}

// releaseTSO frees the loop's TSO buffers once the stack stopped, if the
// device holds none of them; otherwise their memory goes with the device's
// allocator (the links are the caller's to close, and a buffer still in a
// TX ring may still be read by the device).
func (lp *Loop) releaseTSO() {
	if lp.tsoPool != nil && lp.tsoPool.InUse() == 0 {
		lp.tsoPool.Release()
		lp.tsoPool = nil
	}
}

// TSOMax returns the largest IP payload (TCP header and data) that
// OutputTSO takes for a datagram to dst right now, or 0 when there is no
// TSO: the link has none (or Config.NoTSO), the route leaves through
// another interface, or every TSO buffer is in use (counted in
// tx_tso_no_buffers; the caller sends one-MSS segments instead).
func (lp *Loop) TSOMax(dst header.IPv4Addr) int {
	if lp.tsoPool == nil || lp.nic.mtu > tsoMaxMTU {
		return 0
	}
	if lp.tsoPool.Available() == 0 {
		lp.c.inc(TxTSONoBuffers)
		return 0
	}
	d := netip.AddrFrom4(dst)
	r, ok := lp.s.routes.Lookup(d)
	if !ok || r.NIC != lp.nic.id {
		return 0
	}
	lp.tsoDst, lp.tsoHop = dst, r.NextHop(d).As4()
	return tsoFrame - ethIPHeaders
}

// OutputTSO sends a TCP segment of n bytes (header and data) that pb builds
// in place in a TSO buffer, for the device to cut into segments of mss data
// bytes each (dma.TxTSO), with DF set. The device computes every
// segment's checksums; pb leaves them (BuildPayloadNoChecksum). Call it
// right after TSOMax(dst) returned at least n; it reports false (counted)
// when the burst could not be built.
func (lp *Loop) OutputTSO(src, dst header.IPv4Addr, tos, ttl uint8, n, mss int, pb NoChecksumBuilder) bool {
	if lp.tsoPool == nil || dst != lp.tsoDst || n+ethIPHeaders > tsoFrame || mss <= 0 {
		lp.c.inc(TxErrors)
		return false
	}
	p, err := lp.tsoPool.Alloc()
	if err != nil {
		lp.c.inc(TxTSONoBuffers)
		return false
	}
	room := p.Room()
	seg := room[ethIPHeaders : ethIPHeaders+n]
	pb.BuildPayloadNoChecksum(seg)
	hl := int(seg[12]>>4) * 4
	segs := max((n-hl+mss-1)/mss, 1)
	// The device gives segment k the burst's IP ID + k (7.2.4): reserve
	// them all from the stack's counter.
	id := uint16(lp.s.ipID.Add(uint32(segs))) - uint16(segs) + 1
	header.EncodeEthernet(room, header.MAC{}, lp.nic.mac, header.EtherTypeIPv4)
	header.EncodeIPv4(room[header.EthernetHeaderLen:], header.IPv4Fields{
		TOS: tos, TotalLen: uint16(header.IPv4MinHeaderLen + n), ID: id, Flags: header.IPv4FlagDontFragment,
		TTL: ttl, Protocol: header.IPProtocolTCP, Src: src, Dst: dst,
	})
	p.Len = uint16(ethIPHeaders + n)
	p.Meta = (dma.TxTSO | dma.TxIPCsum | dma.TxL4Csum).WithMSS(uint16(mss))
	lp.c.inc(TxCsumOffloaded)
	lp.c.inc(TxTSO)
	lp.c.add(TxTSOSegments, uint64(segs))
	lp.resolveAndSend(p, lp.tsoHop) // queued, parked for ARP, or counted
	return true
}
