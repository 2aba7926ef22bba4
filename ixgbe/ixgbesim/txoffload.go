package ixgbesim

import (
	"encoding/binary"
	"fmt"

	"github.com/verinic/verinic/ixgbe/regs"
	"github.com/verinic/verinic/trace"
)

// Transmit offloads (datasheet 7.2.3.2.3 context descriptor, 7.2.3.2.4 data
// descriptor, 7.2.4 checksum offload and TCP segmentation, 7.2.5 VLAN
// insertion):
//
//   - A context descriptor loads one of the queue's txContexts contexts:
//     MACLEN/IPLEN, the VLAN tag, IPv4 or IPv6, the L4 type, L4LEN and MSS.
//   - The first data descriptor of a packet asks for offloads (POPTS.IXSM,
//     POPTS.TXSM, DCMD.VLE, DCMD.TSE) with the context in IDX.
//   - IXSM: the IPv4 header checksum is computed over IPLEN bytes at MACLEN.
//   - TXSM without TSE: the L4 checksum is the complement of the sum from
//     MACLEN+IPLEN to the end of the packet, the checksum field included,
//     which software seeds with the pseudo-header sum (length included).
//     A UDP result of 0 is sent as 0xFFFF (RFC 768).
//   - TSE: the payload after MACLEN+IPLEN+L4LEN (PAYLEN bytes) is cut into
//     MSS-byte segments, each with a copy of the headers: IPv4 total length
//     and identification (+1 per segment) and, with IXSM, header checksum;
//     IPv6 payload length; the TCP sequence number advanced by the bytes
//     before it; the TCP flags masked by DTXTCPFLGL/H for the first,
//     middle and last segment (by default FIN and PSH only on the last, CWR
//     only on the first); the TCP checksum computed from the field's seed,
//     the pseudo-header sum without the length, plus the segment's TCP
//     length (7.2.4.x; it is what Linux's ixgbe_tso leaves there).
//   - VLE: an 802.1Q tag (DMATXCTL.VT, the context's VLAN) is inserted
//     after the MAC addresses, before padding and FCS.
//
// Descriptor bits for what the model does not do (LinkSec, IEEE 1588 time
// stamps, IPsec, FCoE, SCTP checksums, SNAP) raise an Unmodelled violation
// and the packet is discarded. Section numbers above 7.2.4 are from memory
// (docs/NOTES.md).

// txContexts is the number of offload contexts per transmit queue (IDX 0
// and 1; from memory of 7.2.3.2.3, see docs/NOTES.md).
const txContexts = 2

// maxTSO bounds a packet handed to TCP segmentation: PAYLEN is 18 bits,
// plus the largest headers MACLEN, IPLEN and L4LEN can describe.
const maxTSO = 1<<18 + 127 + 511 + 255

// txContext is one loaded context descriptor.
type txContext struct {
	valid          bool
	maclen, iplen  int
	vlan           uint16
	ipv4           bool
	l4t            uint32 // TXC_TUCMD_L4T_*
	l4len, mss     int
	unmodelledWhat string // a feature the context asks for that is not modelled
}

// loadContext processes the context descriptor d at index head.
func (q *txQueue) loadContext(d []byte, head uint32) {
	w0 := load32(d, regs.TXC_VLAN_MACIP_LENS)
	w2 := load32(d, regs.TXC_TYPE_TUCMD_MLHL)
	w3 := load32(d, regs.TXC_MSS_L4LEN_IDX)
	idx := int(w3 >> regs.TXC_IDX_SHIFT & 7)
	if idx >= txContexts {
		q.badDesc(head, 0, fmt.Sprintf("context descriptor with IDX %d (the 82599 has %d contexts per queue)", idx, txContexts))
		return
	}
	c := txContext{
		valid:  true,
		iplen:  int(w0 & regs.TXC_IPLEN_MASK),
		maclen: int(w0 & regs.TXC_MACLEN_MASK >> regs.TXC_MACLEN_SHIFT),
		vlan:   uint16(w0 >> regs.TXC_VLAN_SHIFT),
		ipv4:   w2&regs.TXC_TUCMD_IPV4 != 0,
		l4t:    w2 & regs.TXC_TUCMD_L4T_MASK,
		l4len:  int(w3 >> regs.TXC_L4LEN_SHIFT & 0xFF),
		mss:    int(w3 >> regs.TXC_MSS_SHIFT),
	}
	switch {
	case w2&(regs.TXC_TUCMD_IPSEC_ESP|regs.TXC_TUCMD_ENCRYPT) != 0:
		c.unmodelledWhat = "IPsec offload (context TUCMD.IPSEC_TYPE/ENCRYPTION)"
	case w2&regs.TXC_TUCMD_FCOE != 0:
		c.unmodelledWhat = "FCoE offload (context TUCMD.FCoE)"
	case w2&regs.TXC_TUCMD_SNAP != 0:
		c.unmodelledWhat = "SNAP packets (context TUCMD.SNAP)"
	}
	if c.unmodelledWhat != "" {
		q.unmodelled(head, c.unmodelledWhat)
	}
	q.ctx[idx] = c
}

// badDesc records a misprogrammed transmit descriptor.
func (q *txQueue) badDesc(head uint32, buf uint64, detail string) {
	q.n.violate(Violation{Kind: BadDescriptor, Dir: trace.TX, Queue: q.idx, Index: head, Buf: buf, Detail: detail})
}

// unmodelled records a feature the driver asked for that the model does not
// implement.
func (q *txQueue) unmodelled(head uint32, what string) {
	q.n.violate(Violation{Kind: Unmodelled, Dir: trace.TX, Queue: q.idx, Index: head, Detail: what + " is not modelled"})
}

// firstDescriptor checks the offload requests of a packet's first data
// descriptor (ctl, olinfo) and returns false when the packet must be
// discarded.
func (q *txQueue) firstDescriptor(head uint32, ctl, olinfo uint32) bool {
	q.firstCtl, q.firstOl = ctl, olinfo
	if ctl&regs.TXD_DCMD_DEXT == 0 {
		q.firstCtl, q.firstOl = 0, 0 // legacy descriptor: no advanced offloads
		return true
	}
	switch {
	case ctl&regs.TXD_MAC_LINKSEC != 0:
		q.unmodelled(head, "LinkSec encapsulation (data descriptor MAC.ILSec)")
		return false
	case ctl&regs.TXD_MAC_TSTAMP != 0:
		q.unmodelled(head, "IEEE 1588 time stamping (data descriptor MAC.1588)")
		return false
	case olinfo&regs.TXD_POPTS_IPSEC != 0:
		q.unmodelled(head, "IPsec offload (data descriptor POPTS.IPSEC)")
		return false
	}
	if ctl&(regs.TXD_DCMD_TSE|regs.TXD_DCMD_VLE) == 0 && olinfo&(regs.TXD_POPTS_IXSM|regs.TXD_POPTS_TXSM) == 0 {
		return true
	}
	idx := int(olinfo & regs.TXD_IDX_MASK >> regs.TXD_IDX_SHIFT)
	if idx >= txContexts || !q.ctx[idx].valid {
		q.badDesc(head, 0, fmt.Sprintf("offloads (cmd_type_len %#08x, olinfo %#08x) with context %d, which no context descriptor loaded", ctl, olinfo, idx))
		return false
	}
	if w := q.ctx[idx].unmodelledWhat; w != "" {
		q.unmodelled(head, w)
		return false
	}
	if ctl&regs.TXD_DCMD_TSE != 0 && cap(q.frame) < maxTSO+8 {
		q.frame = make([]byte, maxTSO+8) // once per queue: TSO packets exceed a frame
	}
	return true
}

// offloads reports whether the packet being assembled asks for any.
func (q *txQueue) offloads() bool {
	return q.firstCtl&(regs.TXD_DCMD_TSE|regs.TXD_DCMD_VLE) != 0 || q.firstOl&(regs.TXD_POPTS_IXSM|regs.TXD_POPTS_TXSM) != 0
}

// maxPacket is the largest packet the queue assembles for the packet
// being assembled.
func (q *txQueue) maxPacket() int {
	if q.firstCtl&regs.TXD_DCMD_TSE != 0 {
		return maxTSO
	}
	return maxFrame
}

// sendOffloaded applies the offloads of the assembled packet and sends it
// (or its segments). head is the packet's last descriptor, for violations.
func (q *txQueue) sendOffloaded(head uint32) {
	ctl, ol := q.firstCtl, q.firstOl
	c := &q.ctx[ol&regs.TXD_IDX_MASK>>regs.TXD_IDX_SHIFT]
	f := q.frame[:q.frameLen]
	vle := ctl&regs.TXD_DCMD_VLE != 0
	ixsm, txsm := ol&regs.TXD_POPTS_IXSM != 0, ol&regs.TXD_POPTS_TXSM != 0
	l3 := c.maclen
	l4 := c.maclen + c.iplen
	if (ixsm || txsm || ctl&regs.TXD_DCMD_TSE != 0) && (c.maclen < 14 || l4 > len(f)) {
		q.badDesc(head, 0, fmt.Sprintf("context MACLEN %d IPLEN %d past a %d-byte packet", c.maclen, c.iplen, len(f)))
		return
	}
	if ixsm && (!c.ipv4 || c.iplen < 20) {
		q.badDesc(head, 0, fmt.Sprintf("IXSM with a context for %s, IPLEN %d", map[bool]string{true: "IPv4", false: "IPv6"}[c.ipv4], c.iplen))
		return
	}
	if txsm || ctl&regs.TXD_DCMD_TSE != 0 {
		switch c.l4t {
		case regs.TXC_TUCMD_L4T_TCP, regs.TXC_TUCMD_L4T_UDP:
		case regs.TXC_TUCMD_L4T_SCTP:
			q.unmodelled(head, "SCTP CRC offload (context L4T SCTP)")
			return
		default:
			q.badDesc(head, 0, "context L4T 11b (reserved)")
			return
		}
	}
	if ctl&regs.TXD_DCMD_TSE != 0 {
		q.tso(head, c, f, ixsm, txsm, vle)
		return
	}
	if ixsm {
		ipCsum(f[l3 : l3+c.iplen])
	}
	if txsm {
		off, minLen := 16, 20
		if c.l4t == regs.TXC_TUCMD_L4T_UDP {
			off, minLen = 6, 8
		}
		if len(f)-l4 < minLen {
			q.badDesc(head, 0, fmt.Sprintf("TXSM: %d bytes after the L4 start, less than a header", len(f)-l4))
			return
		}
		s := ^fold(sum(f[l4:], 0))
		if s == 0 && c.l4t == regs.TXC_TUCMD_L4T_UDP {
			s = 0xFFFF
		}
		binary.BigEndian.PutUint16(f[l4+off:], s)
	}
	q.sendBuf(q.frame, len(f), vle, c.vlan)
}

// ipCsum computes and stores the header checksum of IPv4 header ip.
func ipCsum(ip []byte) {
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ^fold(sum(ip, 0)))
}

// tso cuts packet f into segments (7.2.4.x TCP segmentation).
func (q *txQueue) tso(head uint32, c *txContext, f []byte, ixsm, txsm, vle bool) {
	n := q.n
	h := c.maclen + c.iplen + c.l4len
	paylen := int(q.firstOl >> regs.TXD_PAYLEN_SHIFT)
	switch {
	case c.l4t != regs.TXC_TUCMD_L4T_TCP:
		q.badDesc(head, 0, "TSE with a context whose L4T is not TCP")
		return
	case !txsm:
		q.badDesc(head, 0, "TSE without POPTS.TXSM")
		return
	case c.mss == 0 || c.l4len < 20:
		q.badDesc(head, 0, fmt.Sprintf("TSE with MSS %d, L4LEN %d", c.mss, c.l4len))
		return
	case paylen != len(f)-h:
		q.badDesc(head, 0, fmt.Sprintf("TSE with PAYLEN %d, but the packet holds %d bytes after %d bytes of headers", paylen, len(f)-h, h))
		return
	case h+c.mss > maxFrame:
		q.badDesc(head, 0, fmt.Sprintf("TSE: headers %d + MSS %d exceed a frame", h, c.mss))
		return
	}
	if cap(q.seg) < maxFrame+8 {
		q.seg = make([]byte, maxFrame+8)
	}
	hdr := f[:h]
	ip0, tcp0 := hdr[c.maclen:], hdr[c.maclen+c.iplen:]
	id0 := binary.BigEndian.Uint16(ip0[4:])
	seq0 := binary.BigEndian.Uint32(tcp0[4:])
	word0 := binary.BigEndian.Uint16(tcp0[12:]) // data offset 15:12, flags 11:0
	fl, fh := n.reg(regs.DTXTCPFLGL), n.reg(regs.DTXTCPFLGH)
	first, mid, last := uint16(fl&0xFFF), uint16(fl>>16&0xFFF), uint16(fh&0xFFF)
	nseg := (paylen + c.mss - 1) / c.mss
	if nseg == 0 {
		nseg = 1 // headers alone: one segment
	}
	for k := 0; k < nseg; k++ {
		off := k * c.mss
		m := min(c.mss, paylen-off)
		seg := q.seg[:h+m]
		copy(seg, hdr)
		copy(seg[h:], f[h+off:h+off+m])
		ip, tcp := seg[c.maclen:], seg[c.maclen+c.iplen:]
		if c.ipv4 {
			binary.BigEndian.PutUint16(ip[2:], uint16(c.iplen+c.l4len+m))
			binary.BigEndian.PutUint16(ip[4:], id0+uint16(k))
			if ixsm {
				ipCsum(ip[:c.iplen])
			}
		} else {
			binary.BigEndian.PutUint16(ip[4:], uint16(c.iplen-40+c.l4len+m))
		}
		binary.BigEndian.PutUint32(tcp[4:], seq0+uint32(off))
		var mask uint16
		switch {
		case nseg == 1:
			mask = first | last
		case k == 0:
			mask = first
		case k == nseg-1:
			mask = last
		default:
			mask = mid
		}
		binary.BigEndian.PutUint16(tcp[12:], word0&0xF000|word0&mask)
		// The field holds the pseudo-header sum without the length.
		binary.BigEndian.PutUint16(tcp[16:], ^fold(sum(tcp[:c.l4len+m], uint64(c.l4len+m))))
		q.sendBuf(q.seg, h+m, vle, c.vlan)
	}
}
