package ixgbesim

import (
	"encoding/binary"
	"testing"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/regs"
	"github.com/verinic/verinic/trace"
)

func TestIOMMUFaultStopsOnlyThatQueue(t *testing.T) {
	n, d, w := soloNIC(t, "iommu", 2)
	// Queue 0 posts a buffer at an IOVA nobody mapped.
	tq0, tq1 := &d.tx[0], &d.tx[1]
	const bogus = 0x7_0000_0000
	txDesc(tq0, 0, bogus, 64, regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS|regs.TXD_DCMD_IFCS)
	d.wr(regs.TDT(0), 1)
	f := testFrame(n.MAC(), n.MAC(), 64, 1)
	copy(tq1.buf(0), f)
	txDesc(tq1, 0, tq1.bufIOVA(0), 64, regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS|regs.TXD_DCMD_IFCS)
	d.wr(regs.TDT(1), 1)
	n.Drain(0)
	faults := n.Faults()
	if len(faults) != 1 || faults[0].IOVA != bogus || faults[0].Op != DMARead || faults[0].Queue != 0 || faults[0].Len != 64 {
		t.Fatalf("faults %v", faults)
	}
	if len(w.frames) != 1 {
		t.Fatalf("queue 1 sent %d frames, want 1", len(w.frames))
	}
	// Queue 0 stays stopped: TDH did not move and more work is ignored.
	copy(tq0.buf(1), f)
	txDesc(tq0, 1, tq0.bufIOVA(1), 64, regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS|regs.TXD_DCMD_IFCS)
	d.wr(regs.TDT(0), 2)
	n.Drain(0)
	if h := n.Read32(regs.TDH(0)); h != 0 || len(w.frames) != 1 {
		t.Fatalf("halted queue moved: TDH %d, %d frames", h, len(w.frames))
	}
	// Re-enabling the queue (after a reset of its ring) clears the halt.
	d.wr(regs.TXDCTL(0), d.rd(regs.TXDCTL(0))&^regs.TXDCTL_ENABLE)
	d.wr(regs.TDH(0), 1)
	d.set(regs.TXDCTL(0), regs.TXDCTL_ENABLE)
	n.Drain(0)
	if len(w.frames) != 2 {
		t.Fatalf("re-enabled queue sent %d frames in total, want 2", len(w.frames))
	}
}

func TestIOMMUFaultAcrossMappingEnd(t *testing.T) {
	n, d, _ := soloNIC(t, "cross", 1)
	big, err := n.DMA().Alloc(dma.HugepageSize, 4096)
	if err != nil {
		t.Fatal(err)
	}
	// An RX buffer 100 bytes before the end of its mapping: a 200-byte
	// frame would cross it.
	end := big.IOVA() + uint64(big.Len())
	rq := &d.rx[0]
	binary.LittleEndian.PutUint64(rq.desc(0)[0:], end-100)
	// Descriptor 0 is device-owned: rewrite it while the queue is
	// stopped, so that it is not an ownership violation.
	d.wr(regs.RXDCTL(0), 0)
	d.set(regs.RXDCTL(0), regs.RXDCTL_ENABLE)
	n.Receive(withFCS(testFrame(n.MAC(), n.MAC(), 200, 1)))
	n.Drain(0)
	faults := n.Faults()
	if len(faults) != 1 || faults[0].IOVA != end-100 || faults[0].Op != DMAWrite || faults[0].Len != 200 {
		t.Fatalf("faults %v", faults)
	}
	if v := n.Violations(); len(v) != 0 {
		t.Fatalf("violations %v", v)
	}
	// The frame is lost and counted; the queue is stopped.
	if v := n.Read32(regs.QPRDC(0)); v != 1 {
		t.Errorf("QPRDC = %d", v)
	}
	n.Receive(withFCS(testFrame(n.MAC(), n.MAC(), 200, 2)))
	n.Drain(0)
	if h := n.Read32(regs.RDH(0)); h != 0 {
		t.Errorf("RDH moved to %d on a halted queue", h)
	}
	if got := len(n.Domain().Faults()); got != 1 {
		t.Errorf("%d faults, want 1 (halted queue must not retry)", got)
	}
}

func TestViolationRewroteOwned(t *testing.T) {
	n, d, _ := soloNIC(t, "rw", 1)
	rq := &d.rx[0]
	// Descriptors 0..62 belong to the device; the driver rewrites 5.
	binary.LittleEndian.PutUint64(rq.desc(5)[0:], rq.bufIOVA(63))
	for i := 0; i < 6; i++ {
		n.Receive(withFCS(testFrame(n.MAC(), n.MAC(), 64, uint32(i))))
	}
	n.Drain(0)
	v := n.Violations()
	if len(v) != 1 || v[0].Kind != RewroteOwned || v[0].Index != 5 || v[0].Dir != trace.RX {
		t.Fatalf("violations %v", v)
	}
}

func TestViolationDoublePost(t *testing.T) {
	n, d, _ := soloNIC(t, "dp", 1)
	tq := &d.tx[0]
	f := testFrame(n.MAC(), n.MAC(), 64, 1)
	copy(tq.buf(0), f)
	txDesc(tq, 0, tq.bufIOVA(0), 64, regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS|regs.TXD_DCMD_IFCS)
	txDesc(tq, 1, tq.bufIOVA(0), 64, regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS|regs.TXD_DCMD_IFCS)
	d.wr(regs.TDT(0), 2)
	v := n.Violations()
	if len(v) != 1 || v[0].Kind != DoublePost || v[0].Index != 1 || v[0].Buf != tq.bufIOVA(0) {
		t.Fatalf("violations %v", v)
	}
	// Once the device has consumed the first, posting the buffer again is
	// legal.
	n.Drain(0)
	txDesc(tq, 2, tq.bufIOVA(0), 64, regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS|regs.TXD_DCMD_IFCS)
	d.wr(regs.TDT(0), 3)
	if got := len(n.Violations()); got != 1 {
		t.Fatalf("%d violations after a legal repost", got)
	}
}

func TestViolationTailMoves(t *testing.T) {
	n, d, _ := soloNIC(t, "tail", 1)
	// RX: the device owns [0, 62); moving RDT back to 10 takes 52 away.
	d.wr(regs.RDT(0), 10)
	// TX: a tail past the ring is ignored.
	d.wr(regs.TDT(0), 1000)
	if v := n.Read32(regs.TDT(0)); v != 0 {
		t.Errorf("TDT = %d after an out-of-range write", v)
	}
	v := n.Violations()
	if len(v) != 2 || v[0].Kind != TailBackwards || v[0].Dir != trace.RX || v[1].Kind != TailOutOfRange || v[1].Dir != trace.TX {
		t.Fatalf("violations %v", v)
	}
	// After the backwards move the device owns [0, 10): no false
	// positives when it fills them.
	for i := 0; i < 12; i++ {
		n.Receive(withFCS(testFrame(n.MAC(), n.MAC(), 64, uint32(i))))
	}
	n.Drain(0)
	if got := len(n.Violations()); got != 2 {
		t.Fatalf("%d violations, want 2: %v", got, n.Violations())
	}
	if v := n.Read32(regs.RDH(0)); v != 10 {
		t.Errorf("RDH = %d, want 10", v)
	}
}
