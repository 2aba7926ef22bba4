package ixgbesim

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/verinic/verinic/internal/tsoref"
	"github.com/verinic/verinic/ixgbe/regs"
)

// txd is one transmit descriptor to post: a context descriptor (ctx set,
// its four words in w) or a data descriptor (data, with cmd and olinfo).
type txd struct {
	ctx  bool
	w    [4]uint32
	data []byte
	cmd  uint32 // DCMD bits besides DEXT/DTYP/length (EOP, IFCS, VLE, TSE)
	ol   uint32 // olinfo without nothing else added
}

// ctxDesc builds a context descriptor's words (7.2.3.2.3).
func ctxDesc(idx, maclen, iplen int, vlan uint16, tucmd uint32, l4len, mss int) txd {
	return txd{ctx: true, w: [4]uint32{
		uint32(iplen) | uint32(maclen)<<regs.TXC_MACLEN_SHIFT | uint32(vlan)<<regs.TXC_VLAN_SHIFT,
		0,
		tucmd | regs.TXD_DCMD_DEXT | regs.TXD_DTYP_CTXT,
		uint32(idx)<<regs.TXC_IDX_SHIFT | uint32(l4len)<<regs.TXC_L4LEN_SHIFT | uint32(mss)<<regs.TXC_MSS_SHIFT,
	}}
}

// post writes the descriptors at the ring's next slots with RS, moves TDT
// once, and runs the engine.
func (d *tDriver) post(n *NIC, q int, descs ...txd) {
	tq := &d.tx[q]
	for _, x := range descs {
		desc := tq.desc(tq.next)
		if !tq.txFree(tq.next) {
			d.t.Fatal("TX ring full")
		}
		if x.ctx {
			for k, w := range x.w {
				binary.LittleEndian.PutUint32(desc[4*k:], w)
			}
			binary.LittleEndian.PutUint32(desc[8:], x.w[2]|regs.TXD_DCMD_RS)
		} else {
			copy(tq.buf(tq.next), x.data)
			binary.LittleEndian.PutUint64(desc[0:], tq.bufIOVA(tq.next))
			binary.LittleEndian.PutUint32(desc[8:], x.cmd|regs.TXD_DCMD_RS|regs.TXD_DCMD_DEXT|regs.TXD_DTYP_DATA|uint32(len(x.data)))
			binary.LittleEndian.PutUint32(desc[12:], x.ol)
		}
		tq.next = (tq.next + 1) % tRing
	}
	d.wr(regs.TDT(q), uint32(tq.next))
	n.Drain(0)
}

// seedL4 turns a frame with correct checksums into what a driver hands the
// device for IXSM/TXSM: IP checksum zero, the L4 field holding the
// pseudo-header sum (with the length when withLen, TSO without).
func seedL4(f []byte, eth, ihl int, proto byte, withLen bool) []byte {
	g := append([]byte(nil), f...)
	ip := g[eth:]
	ip[10], ip[11] = 0, 0
	tot := int(binary.BigEndian.Uint16(ip[2:]))
	l4 := ip[ihl:tot]
	off := 16
	if proto == 17 {
		off = 6
	}
	ph := []byte{ip[12], ip[13], ip[14], ip[15], ip[16], ip[17], ip[18], ip[19], 0, proto, 0, 0}
	if withLen {
		binary.BigEndian.PutUint16(ph[10:], uint16(len(l4)))
	}
	binary.BigEndian.PutUint16(l4[off:], ^refCsum(ph)) // the sum, not complemented
	return g
}

func lastFrames(c *capture, k int) [][]byte {
	out := c.frames[len(c.frames)-k:]
	for i := range out {
		out[i] = out[i][:len(out[i])-4] // FCS
	}
	return out
}

// IXSM and TXSM insert the IPv4 header and TCP/UDP checksums exactly as
// software computes them; VLE inserts the context's tag with DMATXCTL.VT.
func TestTxChecksumAndVLANInsertion(t *testing.T) {
	n, d, c := soloNIC(t, "txcsum", 1)
	const csum = regs.TXD_POPTS_IXSM | regs.TXD_POPTS_TXSM
	eop := uint32(regs.TXD_DCMD_EOP | regs.TXD_DCMD_IFCS)
	for _, cs := range []csFrame{
		{proto: 6, payload: 333},
		{proto: 17, payload: 100},
		{proto: 6, opts: 8, payload: 1},
		{proto: 17, payload: 2},
	} {
		want := cs.build([]byte{2, 0, 0, 0, 0, 9})
		ihl := 20 + cs.opts
		req := seedL4(want, 14, ihl, cs.proto, true)
		tucmd := uint32(regs.TXC_TUCMD_IPV4 | regs.TXC_TUCMD_L4T_TCP)
		if cs.proto == 17 {
			tucmd = regs.TXC_TUCMD_IPV4 | regs.TXC_TUCMD_L4T_UDP
		}
		d.post(n, 0, ctxDesc(1, 14, ihl, 0, tucmd, 0, 0),
			txd{data: req, cmd: eop, ol: 1<<regs.TXD_IDX_SHIFT | regs.TXD_CC | csum | uint32(len(req))<<regs.TXD_PAYLEN_SHIFT})
		got := lastFrames(c, 1)[0]
		if !bytes.Equal(got[:len(want)], want) {
			t.Errorf("proto %d opts %d: sent\n% x\nwant\n% x", cs.proto, cs.opts, got, want)
		}
		// VLAN insertion on the same context slot, re-loaded with a tag.
		d.post(n, 0, ctxDesc(1, 14, ihl, 0xA00C, tucmd, 0, 0),
			txd{data: req, cmd: eop | regs.TXD_DCMD_VLE, ol: 1<<regs.TXD_IDX_SHIFT | regs.TXD_CC | csum | uint32(len(req))<<regs.TXD_PAYLEN_SHIFT})
		got = lastFrames(c, 1)[0]
		tagged := append(append(append([]byte(nil), want[:12]...), 0x81, 0x00, 0xA0, 0x0C), want[12:]...)
		if !bytes.Equal(got[:len(tagged)], tagged) {
			t.Errorf("proto %d with VLE: sent\n% x\nwant\n% x", cs.proto, got, tagged)
		}
	}
	// DMATXCTL.VT sets the inserted ether type (802.1ad's 0x88A8 here).
	d.wr(regs.DMATXCTL, 0x88A80000|regs.DMATXCTL_TE)
	f := csFrame{proto: 17, payload: 60}.build([]byte{2, 0, 0, 0, 0, 9})
	d.post(n, 0, ctxDesc(0, 14, 20, 7, 0, 0, 0), txd{data: f, cmd: eop | regs.TXD_DCMD_VLE})
	if got := lastFrames(c, 1)[0]; !bytes.Equal(got[12:16], []byte{0x88, 0xA8, 0, 7}) || !bytes.Equal(got[16:len(f)+4], f[12:]) {
		t.Errorf("VT 0x88A8: tag % x", got[12:16])
	}
	if v := n.Violations(); len(v) != 0 {
		t.Fatal(v)
	}
}

// swSegment is the reference TSO must equal (internal/tsoref, which the
// igb driver's tests against QEMU's 82576 use too).
func swSegment(f []byte, eth, mss int) [][]byte { return tsoref.Segment(f, eth, mss) }

// TSO: the segments equal software segmentation byte for byte, with and
// without a VLAN tag inserted, for a packet spanning two descriptors.
func TestTxTSOMatchesSoftwareSegmentation(t *testing.T) {
	n, d, c := soloNIC(t, "tso", 1)
	for _, tc := range []struct {
		payload, mss, opts int
		flags              byte
	}{
		{3000, 1000, 0, 0x18 | 0x01 | 0x80}, // ACK PSH FIN CWR, 3 full segments
		{2501, 1448, 0, 0x18},               // a short last segment
		{700, 1448, 12, 0x19},               // one segment, IP options
		{1001, 100, 0, 0x10},                // 11 segments
	} {
		cs := csFrame{proto: 6, payload: tc.payload, opts: tc.opts, ipID: 0xFFFE}
		f := cs.build([]byte{2, 0, 0, 0, 0, 9})
		ihl := 20 + tc.opts
		tcp := f[14+ihl:]
		tcp[13] = tc.flags
		tcp[16], tcp[17] = 0, 0
		ph := []byte{10, 0, 0, 1, 10, 0, 0, 2, 0, 6, byte(len(tcp) >> 8), byte(len(tcp))}
		binary.BigEndian.PutUint16(tcp[16:], refCsum(ph, tcp))
		want := swSegment(f, 14, tc.mss)
		req := seedL4(f, 14, ihl, 6, false)
		h := 14 + ihl + 20
		ol := uint32(regs.TXD_CC|regs.TXD_POPTS_IXSM|regs.TXD_POPTS_TXSM) | uint32(len(f)-h)<<regs.TXD_PAYLEN_SHIFT
		ctx := ctxDesc(0, 14, ihl, 0, regs.TXC_TUCMD_IPV4|regs.TXC_TUCMD_L4T_TCP, 20, tc.mss)
		split := len(req) / 2
		for _, vle := range []bool{false, true} {
			cmd := uint32(regs.TXD_DCMD_IFCS | regs.TXD_DCMD_TSE)
			if vle {
				cmd |= regs.TXD_DCMD_VLE
				ctx = ctxDesc(0, 14, ihl, 0x0123, regs.TXC_TUCMD_IPV4|regs.TXC_TUCMD_L4T_TCP, 20, tc.mss)
			}
			before := len(c.frames)
			d.post(n, 0, ctx, txd{data: req[:split], cmd: cmd, ol: ol}, txd{data: req[split:], cmd: cmd | regs.TXD_DCMD_EOP})
			if got := len(c.frames) - before; got != len(want) {
				t.Fatalf("payload %d mss %d: %d segments, want %d (violations %v)", tc.payload, tc.mss, got, len(want), n.Violations())
			}
			for i, g := range lastFrames(c, len(want)) {
				w := want[i]
				if vle {
					w = append(append(append([]byte(nil), w[:12]...), 0x81, 0x00, 0x01, 0x23), w[12:]...)
				}
				if len(g) < len(w) || !bytes.Equal(g[:len(w)], w) || (len(w) >= 60 && len(g) != len(w)) {
					t.Fatalf("payload %d mss %d vle %v segment %d:\n got % x\nwant % x", tc.payload, tc.mss, vle, i, g, w)
				}
			}
		}
	}
	if v := n.Violations(); len(v) != 0 {
		t.Fatal(v)
	}
	if st := n.Read32(regs.GPTC); st == 0 {
		t.Fatal("GPTC did not count the segments")
	}
}

// Whatever the model does not implement, or a misprogrammed offload,
// raises a named violation and sends nothing.
func TestTxUnmodelledAndBadOffloads(t *testing.T) {
	n, d, c := soloNIC(t, "txbad", 1)
	f := csFrame{proto: 6, payload: 100}.build([]byte{2, 0, 0, 0, 0, 9})
	eop := uint32(regs.TXD_DCMD_EOP | regs.TXD_DCMD_IFCS)
	csum := uint32(regs.TXD_CC | regs.TXD_POPTS_IXSM | regs.TXD_POPTS_TXSM)
	tcp4 := uint32(regs.TXC_TUCMD_IPV4 | regs.TXC_TUCMD_L4T_TCP)
	cases := []struct {
		name  string
		descs []txd
		kind  ViolationKind
		want  string
	}{
		{"no context", []txd{{data: f, cmd: eop, ol: csum | 1<<regs.TXD_IDX_SHIFT}}, BadDescriptor, "no context descriptor loaded"},
		{"LinkSec", []txd{{data: f, cmd: eop | regs.TXD_MAC_LINKSEC}}, Unmodelled, "LinkSec"},
		{"1588", []txd{{data: f, cmd: eop | regs.TXD_MAC_TSTAMP}}, Unmodelled, "1588"},
		{"IPsec POPTS", []txd{{data: f, cmd: eop, ol: regs.TXD_POPTS_IPSEC}}, Unmodelled, "IPsec"},
		{"IPsec context", []txd{ctxDesc(0, 14, 20, 0, tcp4|regs.TXC_TUCMD_ENCRYPT, 0, 0), {data: f, cmd: eop, ol: csum}}, Unmodelled, "IPsec"},
		{"FCoE context", []txd{ctxDesc(0, 14, 20, 0, regs.TXC_TUCMD_FCOE, 0, 0), {data: f, cmd: eop, ol: csum}}, Unmodelled, "FCoE"},
		{"SCTP", []txd{ctxDesc(0, 14, 20, 0, regs.TXC_TUCMD_IPV4|regs.TXC_TUCMD_L4T_SCTP, 0, 0), {data: f, cmd: eop, ol: csum}}, Unmodelled, "SCTP"},
		{"context IDX 2", []txd{ctxDesc(2, 14, 20, 0, tcp4, 0, 0)}, BadDescriptor, "IDX 2"},
		{"TSO of UDP", []txd{ctxDesc(0, 14, 20, 0, regs.TXC_TUCMD_IPV4, 20, 500), {data: f, cmd: eop | regs.TXD_DCMD_TSE, ol: csum | 100<<regs.TXD_PAYLEN_SHIFT}}, BadDescriptor, "L4T is not TCP"},
		{"TSO wrong PAYLEN", []txd{ctxDesc(0, 14, 20, 0, tcp4, 20, 500), {data: f, cmd: eop | regs.TXD_DCMD_TSE, ol: csum | 99<<regs.TXD_PAYLEN_SHIFT}}, BadDescriptor, "PAYLEN 99"},
		{"TSO MSS 0", []txd{ctxDesc(0, 14, 20, 0, tcp4, 20, 0), {data: f, cmd: eop | regs.TXD_DCMD_TSE, ol: csum | 100<<regs.TXD_PAYLEN_SHIFT}}, BadDescriptor, "MSS 0"},
		{"IXSM on IPv6", []txd{ctxDesc(0, 14, 40, 0, regs.TXC_TUCMD_L4T_TCP, 0, 0), {data: f, cmd: eop, ol: csum}}, BadDescriptor, "IXSM"},
	}
	for _, tc := range cases {
		v0, f0 := n.ViolationCount(), len(c.frames)
		d.post(n, 0, tc.descs...)
		vs := n.Violations()
		want := v0 + 1
		if tc.name == "IPsec context" || tc.name == "FCoE context" {
			want++ // once when the context is loaded, once when a packet uses it
		}
		if len(vs) != want || len(c.frames) != f0 {
			t.Errorf("%s: %d new violations, %d frames sent (%v)", tc.name, len(vs)-v0, len(c.frames)-f0, vs[v0:])
			continue
		}
		if v := vs[v0]; v.Kind != tc.kind || !strings.Contains(v.Detail, tc.want) {
			t.Errorf("%s: violation %v, want %s naming %q", tc.name, v, tc.kind, tc.want)
		}
	}
	// The queue still works afterwards.
	d.post(n, 0, txd{data: f, cmd: eop})
	if got := lastFrames(c, 1)[0]; !bytes.Equal(got, f) {
		t.Fatal("plain frame after the violations differs")
	}
}

// Registers enabling what the model does not implement raise a named
// Unmodelled violation when a write turns the feature on; writes that
// leave it off do not.
func TestUnmodelledRegisterFeatures(t *testing.T) {
	n, d, _ := soloNIC(t, "unmod", 1)
	v0 := n.ViolationCount()
	for _, off := range []struct {
		reg uint32
		v   uint32
	}{{regs.RSCCTL(3), 0}, {regs.MRQC, regs.MRQC_RSSEN | regs.MRQC_RSS_FIELD_IPV4}, {regs.LSECTXCTRL, 0}, {regs.ETQF(1), 0x88F7}} {
		d.wr(off.reg, off.v)
	}
	if n.ViolationCount() != v0 {
		t.Fatalf("features left off raised %v", n.Violations()[v0:])
	}
	for _, c := range []struct {
		reg  uint32
		v    uint32
		want string
	}{
		{regs.RSCCTL(3), regs.RSCCTL_RSCEN, "receive side coalescing"},
		{regs.RSCCTL(100), regs.RSCCTL_RSCEN, "RSCCTL[100]"},
		{regs.MRQC, 0x2, "MRQC.MRQE 0x2"},
		{regs.LSECTXCTRL, 0x1, "LinkSec transmit"},
		{regs.LSECRXCTRL, 0x4, "LinkSec receive"},
		{regs.IPSTXIDX, regs.IPSIDX_IPS_EN, "IPsec transmit"},
		{regs.IPSRXIDX, regs.IPSIDX_IPS_EN | 8, "IPsec receive"},
		{regs.ETQF(2), regs.ETQF_FILTER_EN | regs.ETQF_FCOE | 0x8906, "FCoE"},
	} {
		before := n.ViolationCount()
		d.wr(c.reg, c.v)
		vs := n.Violations()
		if len(vs) != before+1 || vs[before].Kind != Unmodelled || !strings.Contains(vs[before].Detail, c.want) {
			t.Errorf("%s = %#x: violations %v, want one unmodelled-feature naming %q", RegisterName(c.reg), c.v, vs[before:], c.want)
		}
		if got := d.rd(c.reg); got != c.v {
			t.Errorf("%s reads %#x after writing %#x", RegisterName(c.reg), got, c.v)
		}
	}
}
