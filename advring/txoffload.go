package advring

import (
	"encoding/binary"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/trace"
)

// Transmit offloads (82599 datasheet 7.2.3.2.3 context descriptor, 7.2.4
// checksum offload and TCP segmentation, 7.2.5 VLAN insertion). A packet
// whose Meta asks for dma.TxIPCsum, TxL4Csum, TxVLAN or TxTSO goes out as
// an advanced context descriptor (unless the queue's context 0 already
// holds the same values: contexts persist per queue) followed by its data
// descriptor with POPTS, VLE, TSE, CC and IDX 0.
//
// The driver reads the packet's headers to fill the context (MACLEN: 14,
// or 18 with an 802.1Q tag in the frame; IPLEN from the IPv4 IHL or 40 for
// IPv6; L4T and L4LEN from the TCP data offset or 8 for UDP) and prepares
// the fields the device completes: the IPv4 header checksum is zeroed, and
// the TCP or UDP checksum field gets the pseudo-header sum, with the length
// for checksum insertion and without it for TSO, where the device adds each
// segment's (7.2.4.x; what Linux's ixgbe leaves there).

// txOffloadFlags are the Meta bits that need a context descriptor.
const txOffloadFlags = dma.TxIPCsum | dma.TxL4Csum | dma.TxVLAN | dma.TxTSO

// txContext is the words of a context descriptor, as the queue last wrote
// them to context 0.
type txContext struct {
	vlanMacipLens, typeTucmd, mssL4lenIdx uint32
}

// offload prepares packet p's headers for the offloads its Meta asks for
// and returns the context its data descriptor needs, the data descriptor's
// command bits and olinfo (besides EOP/IFCS/RS/DEXT/DTYP, the length and
// PAYLEN), and PAYLEN: the TCP payload with TSO, the whole packet
// otherwise. ok is false for a packet the offloads cannot apply to.
func offload(p *dma.Packet) (ctx txContext, cmd, olinfo uint32, paylen int, ok bool) {
	m := p.Meta
	f := p.Data()
	if len(f) < 14 {
		return ctx, 0, 0, 0, false
	}
	maclen := 14
	etype := binary.BigEndian.Uint16(f[12:])
	if etype == 0x8100 && len(f) >= 18 {
		maclen = 18
		etype = binary.BigEndian.Uint16(f[16:])
	}
	if m&dma.TxVLAN != 0 {
		cmd |= TxCmdVLE
		ctx.vlanMacipLens |= uint32(m.VLAN()) << TxCtxVLANShift
	}
	ctx.typeTucmd = TxCmdDEXT | TxDtypCtxt
	ctx.vlanMacipLens |= uint32(maclen) << TxCtxMACLenShift
	if m&(dma.TxIPCsum|dma.TxL4Csum|dma.TxTSO) == 0 {
		return ctx, cmd, 0, len(f), true // VLAN insertion only
	}
	ip := f[maclen:]
	var iplen, l4len int
	var proto byte
	var ph uint32 // pseudo-header sum of the addresses and protocol, unfolded
	switch etype {
	case 0x0800:
		if len(ip) < 20 || ip[0]>>4 != 4 {
			return ctx, 0, 0, 0, false
		}
		iplen = int(ip[0]&0xF) * 4
		if iplen < 20 || len(ip) < iplen || int(binary.BigEndian.Uint16(ip[2:])) != len(ip) {
			return ctx, 0, 0, 0, false
		}
		proto = ip[9]
		if m&(dma.TxL4Csum|dma.TxTSO) != 0 && binary.BigEndian.Uint16(ip[6:])&0x3FFF != 0 {
			return ctx, 0, 0, 0, false // a fragment: its L4 header is not all there
		}
		ctx.typeTucmd |= TxCtxTucmdIPv4
		for k := 12; k < 20; k += 2 {
			ph += uint32(binary.BigEndian.Uint16(ip[k:]))
		}
		if m&(dma.TxIPCsum|dma.TxTSO) != 0 {
			ip[10], ip[11] = 0, 0
			olinfo |= TxPoptsIXSM
		}
	case 0x86DD:
		if len(ip) < 40 || m&dma.TxIPCsum != 0 || int(binary.BigEndian.Uint16(ip[4:]))+40 != len(ip) {
			return ctx, 0, 0, 0, false
		}
		iplen, proto = 40, ip[6]
		for k := 8; k < 40; k += 2 {
			ph += uint32(binary.BigEndian.Uint16(ip[k:]))
		}
	default:
		return ctx, 0, 0, 0, false
	}
	l4 := ip[iplen:]
	csumOff := 0
	switch {
	case m&(dma.TxL4Csum|dma.TxTSO) == 0:
	case proto == 6 && len(l4) >= 20:
		l4len = int(l4[12]>>4) * 4
		if l4len < 20 || l4len > len(l4) {
			return ctx, 0, 0, 0, false
		}
		ctx.typeTucmd |= TxCtxTucmdL4TCP
		csumOff = 16
	case proto == 17 && len(l4) >= 8 && m&dma.TxTSO == 0:
		l4len = 8
		ctx.typeTucmd |= TxCtxTucmdL4UDP
		csumOff = 6
	default:
		return ctx, 0, 0, 0, false
	}
	ctx.vlanMacipLens |= uint32(iplen)
	if csumOff != 0 {
		olinfo |= TxPoptsTXSM
		ph += uint32(proto)
		if m&dma.TxTSO == 0 {
			ph += uint32(len(l4))
		}
		for ph>>16 != 0 {
			ph = ph&0xFFFF + ph>>16
		}
		binary.BigEndian.PutUint16(l4[csumOff:], uint16(ph))
	}
	if m&dma.TxTSO != 0 {
		mss := int(m.MSS())
		hdr := maclen + iplen + l4len
		if mss == 0 || hdr+mss > maxFrameBytes {
			return ctx, 0, 0, 0, false
		}
		cmd |= TxCmdTSE
		ctx.mssL4lenIdx = uint32(l4len)<<TxCtxL4LenShift | uint32(mss)<<TxCtxMSSShift
		// PAYLEN is the TCP payload with TSE (7.2.3.2.4).
		return ctx, cmd, olinfo, len(f) - hdr, true
	}
	return ctx, cmd, olinfo, len(f), true
}

// postContext writes context descriptor c into slot i (no buffer, no RS:
// reclaim never checks DD on it).
func (q *TxQueue) postContext(i uint32, c txContext) {
	if q.trace != nil {
		// A context post: Buf is the descriptor's first quadword, Len 0
		// (trace/SCHEMA.md).
		q.trace.Record(trace.Event{Kind: trace.DrvPost, Dir: trace.TX, Dev: q.devID, Queue: q.id, Index: i,
			Buf: uint64(c.vlanMacipLens), Aux: trace.PostContext})
	}
	q.slots[i] = txSlot{}
	q.ring.setDesc(i, uint64(c.vlanMacipLens), uint64(c.typeTucmd)|uint64(c.mssL4lenIdx)<<32)
}

// maxFrameBytes is the largest frame the MAC sends without jumbo frames
// (1518 bytes less the FCS the device appends).
const maxFrameBytes = 1514
