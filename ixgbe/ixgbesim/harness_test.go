package ixgbesim

import (
	"encoding/binary"
	"hash/crc32"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/regs"
)

// This file is a minimal test-local driver: it follows ixy's init sequence
// (reset_and_init in ixy src/driver/ixgbe.c) and fills descriptors by hand, independently
// of package ixgbe.

const (
	tRing   = 64   // descriptors per ring
	tBufLen = 2048 // bytes per buffer
)

type tQueue struct {
	ring *dma.Region
	bufs *dma.Region
	next int // RX: next descriptor to check; TX: next to fill
}

func (q *tQueue) txFree(i int) bool {
	st := atomicLoad32(q.desc(i)[12:])
	return st == 0xFFFFFFFF || st&regs.TXD_STAT_DD != 0
}

func (q *tQueue) desc(i int) []byte { return q.ring.Bytes()[i*16 : i*16+16] }
func (q *tQueue) buf(i int) []byte  { return q.bufs.Bytes()[i*tBufLen : (i+1)*tBufLen] }
func (q *tQueue) bufIOVA(i int) uint64 {
	return q.bufs.IOVA() + uint64(i*tBufLen)
}

type tDriver struct {
	t  testing.TB
	n  *NIC
	rx []tQueue
	tx []tQueue
}

func newStepped(t testing.TB, name string, d *Domain) *NIC {
	t.Helper()
	n, err := New(Config{Name: name, Mode: Stepped, Domain: d, Policy: dma.NoHugepages})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func (d *tDriver) wr(reg, v uint32)     { d.n.Write32(reg, v) }
func (d *tDriver) rd(reg uint32) uint32 { return d.n.Read32(reg) }
func (d *tDriver) set(reg, bits uint32) { d.wr(reg, d.rd(reg)|bits) }
func (d *tDriver) clr(reg, bits uint32) { d.wr(reg, d.rd(reg)&^bits) }

// waitFor polls every 10 ms of the NIC's clock until cond holds, for at
// most limit.
func (d *tDriver) waitFor(what string, limit time.Duration, cond func() bool) {
	d.t.Helper()
	clk := d.n.Clock()
	deadline := clk.Now().Add(limit)
	for !cond() {
		if clk.Now().After(deadline) {
			d.t.Fatalf("%s: timed out after %v", what, limit)
		}
		clk.Sleep(10 * time.Millisecond)
	}
}

// initDriver resets and initializes n with nq RX and TX queues the way ixy
// does, and fills the RX rings. It does not wait for the link.
func initDriver(t testing.TB, n *NIC, nq int) *tDriver {
	t.Helper()
	d := &tDriver{t: t, n: n}
	d.wr(regs.EIMC, regs.EIMC_IRQ_CLEAR_ALL)
	d.rd(regs.EICR)
	d.wr(regs.CTRL, regs.CTRL_RST_MASK)
	d.waitFor("reset", time.Second, func() bool { return d.rd(regs.CTRL)&regs.CTRL_RST_MASK == 0 })
	n.Clock().Sleep(10 * time.Millisecond)
	d.wr(regs.EIMC, regs.EIMC_IRQ_CLEAR_ALL)
	d.rd(regs.EICR)
	d.waitFor("EEC.ARD", time.Second, func() bool { return d.rd(regs.EEC)&regs.EEC_ARD != 0 })
	d.waitFor("DMAIDONE", time.Second, func() bool { return d.rd(regs.RDRXCTL)&regs.RDRXCTL_DMAIDONE != 0 })
	d.wr(regs.AUTOC, d.rd(regs.AUTOC)&^regs.AUTOC_LMS_MASK|regs.AUTOC_LMS_10G_SERIAL)
	d.wr(regs.AUTOC, d.rd(regs.AUTOC)&^regs.AUTOC_10G_PMA_PMD_MASK|regs.AUTOC_10G_XAUI)
	d.set(regs.AUTOC, regs.AUTOC_AN_RESTART)
	for _, r := range []uint32{regs.GPRC, regs.GPTC, regs.GORCL, regs.GORCH, regs.GOTCL, regs.GOTCH} {
		d.rd(r)
	}
	// RX (4.6.7).
	d.clr(regs.RXCTRL, regs.RXCTRL_RXEN)
	d.wr(regs.RXPBSIZE(0), regs.RXPBSIZE_128KB)
	for i := 1; i < 8; i++ {
		d.wr(regs.RXPBSIZE(i), 0)
	}
	d.set(regs.HLREG0, regs.HLREG0_RXCRCSTRP)
	d.set(regs.RDRXCTL, regs.RDRXCTL_CRCSTRIP)
	d.set(regs.FCTRL, regs.FCTRL_BAM)
	alloc := n.DMA()
	for q := 0; q < nq; q++ {
		d.wr(regs.SRRCTLAlias(q), d.rd(regs.SRRCTLAlias(q))&^regs.SRRCTL_DESCTYPE_MASK|regs.SRRCTL_DESCTYPE_ADV_ONE)
		d.set(regs.SRRCTLAlias(q), regs.SRRCTL_DROP_EN)
		ring, err := alloc.Alloc(tRing*16, 128)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ring.Bytes() {
			ring.Bytes()[i] = 0xFF
		}
		bufs, err := alloc.Alloc(tRing*tBufLen, 4096)
		if err != nil {
			t.Fatal(err)
		}
		d.rx = append(d.rx, tQueue{ring: ring, bufs: bufs})
		d.wr(regs.RDBAL(q), uint32(ring.IOVA()))
		d.wr(regs.RDBAH(q), uint32(ring.IOVA()>>32))
		d.wr(regs.RDLEN(q), tRing*16)
		d.wr(regs.RDH(q), 0)
		d.wr(regs.RDT(q), 0)
	}
	d.set(regs.CTRL_EXT, regs.CTRL_EXT_NS_DIS)
	for q := 0; q < nq; q++ {
		d.clr(regs.DCA_RXCTRLAlias(q), regs.DCA_RXCTRL_RESERVED12)
	}
	d.set(regs.RXCTRL, regs.RXCTRL_RXEN)
	// TX (4.6.8).
	d.set(regs.HLREG0, regs.HLREG0_TXCRCEN|regs.HLREG0_TXPADEN)
	d.wr(regs.TXPBSIZE(0), regs.TXPBSIZE_40KB)
	for i := 1; i < 8; i++ {
		d.wr(regs.TXPBSIZE(i), 0)
	}
	d.wr(regs.DTXMXSZRQ, 0xFFFF)
	d.clr(regs.RTTDCS, regs.RTTDCS_ARBDIS)
	for q := 0; q < nq; q++ {
		ring, err := alloc.Alloc(tRing*16, 128)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ring.Bytes() {
			ring.Bytes()[i] = 0xFF
		}
		bufs, err := alloc.Alloc(tRing*tBufLen, 4096)
		if err != nil {
			t.Fatal(err)
		}
		d.tx = append(d.tx, tQueue{ring: ring, bufs: bufs})
		d.wr(regs.TDBAL(q), uint32(ring.IOVA()))
		d.wr(regs.TDBAH(q), uint32(ring.IOVA()>>32))
		d.wr(regs.TDLEN(q), tRing*16)
		// WTHRESH 0: write back every RS descriptor at once (tests that
		// want batching set it themselves).
		d.wr(regs.TXDCTL(q), d.rd(regs.TXDCTL(q))&^0x7F7F7F|36|8<<8)
	}
	d.set(regs.DMATXCTL, regs.DMATXCTL_TE) // read-modify-write: keep VT (8.2.3.9.2)
	for q := 0; q < nq; q++ {
		d.startRx(q)
		d.wr(regs.TDH(q), 0)
		d.wr(regs.TDT(q), 0)
		d.set(regs.TXDCTL(q), regs.TXDCTL_ENABLE)
		d.waitFor("TXDCTL.ENABLE", time.Second, func() bool { return d.rd(regs.TXDCTL(q))&regs.TXDCTL_ENABLE != 0 })
	}
	d.set(regs.FCTRL, regs.FCTRL_MPE|regs.FCTRL_UPE)
	return d
}

func (d *tDriver) startRx(q int) {
	rq := &d.rx[q]
	for i := 0; i < tRing; i++ {
		d.postRx(q, i)
	}
	d.set(regs.RXDCTL(q), regs.RXDCTL_ENABLE)
	d.waitFor("RXDCTL.ENABLE", time.Second, func() bool { return d.rd(regs.RXDCTL(q))&regs.RXDCTL_ENABLE != 0 })
	d.wr(regs.RDH(q), 0)
	d.wr(regs.RDT(q), tRing-1)
	rq.next = 0
}

func (d *tDriver) postRx(q, i int) {
	rq := &d.rx[q]
	desc := rq.desc(i)
	binary.LittleEndian.PutUint64(desc[0:], rq.bufIOVA(i))
	binary.LittleEndian.PutUint64(desc[8:], 0)
}

func (d *tDriver) waitLink() {
	d.waitFor("link", 10*time.Second, func() bool { return d.rd(regs.LINKS)&regs.LINKS_UP != 0 })
}

// atomicLoad32 reads a descriptor word the way a driver must.
func atomicLoad32(b []byte) uint32 { return atomic.LoadUint32((*uint32)(unsafe.Pointer(&b[0]))) }

// recv collects received frames of queue q (ixy's rx_batch, one frame per
// descriptor: EOP must be set), refilling and moving RDT once.
func (d *tDriver) recv(q int) [][]byte {
	rq := &d.rx[q]
	var out [][]byte
	last := -1
	for {
		desc := rq.desc(rq.next)
		st := atomicLoad32(desc[regs.RXD_WB_STATUS_ERROR:])
		if st&regs.RXD_STAT_DD == 0 {
			break
		}
		if st&regs.RXD_STAT_EOP == 0 {
			d.t.Fatalf("queue %d descriptor %d: multi-descriptor frame", q, rq.next)
		}
		l := int(binary.LittleEndian.Uint16(desc[regs.RXD_WB_LENGTH:]))
		out = append(out, append([]byte(nil), rq.buf(rq.next)[:l]...))
		d.postRx(q, rq.next)
		last = rq.next
		rq.next = (rq.next + 1) % tRing
	}
	if last >= 0 {
		d.wr(regs.RDT(q), uint32(last))
	}
	return out
}

// send queues frames (without FCS) on TX queue q with EOP|RS|IFCS, and
// writes TDT once. It returns how many it queued (the ring keeps one slot
// empty; descriptors are reused once DD is set).
func (d *tDriver) send(q int, frames ...[]byte) int {
	tq := &d.tx[q]
	k := 0
	for _, f := range frames {
		next := (tq.next + 1) % tRing
		desc := tq.desc(tq.next)
		// A slot is free when it was never used or the device set DD; the
		// slot after it must be free too, so that the tail never catches
		// up with a head that still has work (one slot stays empty).
		if !tq.txFree(tq.next) || !tq.txFree(next) {
			break
		}
		copy(tq.buf(tq.next), f)
		binary.LittleEndian.PutUint64(desc[0:], tq.bufIOVA(tq.next))
		binary.LittleEndian.PutUint32(desc[8:], regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS|regs.TXD_DCMD_IFCS|regs.TXD_DCMD_DEXT|regs.TXD_DTYP_DATA|uint32(len(f)))
		binary.LittleEndian.PutUint32(desc[12:], uint32(len(f))<<regs.TXD_PAYLEN_SHIFT)
		tq.next = next
		k++
	}
	d.wr(regs.TDT(q), uint32(tq.next))
	return k
}

// withFCS returns frame with its Ethernet FCS appended.
func withFCS(frame []byte) []byte {
	out := append([]byte(nil), frame...)
	return binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(frame))
}

// testFrame builds a 14-byte Ethernet header plus payload of total length
// l (no FCS), with a tag in bytes 14..17.
func testFrame(dst, src []byte, l int, tag uint32) []byte {
	f := make([]byte, l)
	copy(f[0:6], dst)
	copy(f[6:12], src)
	f[12], f[13] = 0x88, 0xB5 // local experimental ethertype
	binary.BigEndian.PutUint32(f[14:], tag)
	for i := 18; i < l; i++ {
		f[i] = byte(i + int(tag))
	}
	return f
}

// capture is a Link that records frames.
type capture struct {
	up     atomic.Bool
	frames [][]byte
}

func newCapture() *capture {
	c := &capture{}
	c.up.Store(true)
	return c
}

func (c *capture) Transmit(f []byte) { c.frames = append(c.frames, append([]byte(nil), f...)) }
func (c *capture) Up() bool          { return c.up.Load() }
