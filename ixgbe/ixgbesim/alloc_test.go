package ixgbesim

import (
	"encoding/binary"
	"testing"

	"github.com/verinic/verinic/ixgbe/regs"
)

type nullLink struct{ sent int }

func (l *nullLink) Transmit([]byte) { l.sent++ }
func (l *nullLink) Up() bool        { return true }

// TestDataPathAllocatesNothing: the device's per-packet path (receive MAC,
// RX DMA, TX DMA, write-back, ownership checks, tail writes) allocates
// nothing in steady state.
func TestDataPathAllocatesNothing(t *testing.T) {
	n := newStepped(t, "alloc", nil)
	l := &nullLink{}
	n.Attach(l)
	d := initDriver(t, n, 1)
	d.waitLink()
	frame := withFCS(testFrame(n.MAC(), n.MAC(), 200, 1))
	tq, rq := &d.tx[0], &d.rx[0]
	copy(tq.buf(0), frame[:200])
	i := 0
	allocs := testing.AllocsPerRun(500, func() {
		// TX one frame.
		txDesc(tq, i, tq.bufIOVA(0), 200, regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS|regs.TXD_DCMD_IFCS)
		n.Write32(regs.TDT(0), uint32((i+1)%tRing))
		n.StepTx(0)
		// RX one frame, then give the descriptor back.
		n.Receive(frame)
		n.StepRx(0)
		binary.LittleEndian.PutUint64(rq.desc(i)[0:], rq.bufIOVA(i))
		binary.LittleEndian.PutUint64(rq.desc(i)[8:], 0)
		n.Write32(regs.RDT(0), uint32(i))
		i = (i + 1) % tRing
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per packet", allocs)
	}
	if l.sent < 500 || len(n.Violations()) != 0 || len(n.Faults()) != 0 {
		t.Fatalf("sent %d, violations %v, faults %v", l.sent, n.Violations(), n.Faults())
	}
	if v := n.Read32(regs.QPRC(0)); v < 500 {
		t.Fatalf("QPRC = %d", v)
	}
}

// BenchmarkDeviceDataPath measures the device's cost per packet, one frame
// transmitted and one received (stepped, no driver logic beyond refills).
func BenchmarkDeviceDataPath(b *testing.B) {
	n := newStepped(b, "bench", nil)
	n.Attach(&nullLink{})
	d := initDriver(b, n, 1)
	d.waitLink()
	frame := withFCS(testFrame(n.MAC(), n.MAC(), 60, 1))
	tq, rq := &d.tx[0], &d.rx[0]
	copy(tq.buf(0), frame[:60])
	b.ReportAllocs()
	b.ResetTimer()
	for k := 0; k < b.N; k++ {
		i := k % tRing
		txDesc(tq, i, tq.bufIOVA(0), 60, regs.TXD_DCMD_EOP|regs.TXD_DCMD_RS|regs.TXD_DCMD_IFCS)
		n.Write32(regs.TDT(0), uint32((i+1)%tRing))
		n.StepTx(0)
		n.Receive(frame)
		n.StepRx(0)
		binary.LittleEndian.PutUint64(rq.desc(i)[0:], rq.bufIOVA(i))
		binary.LittleEndian.PutUint64(rq.desc(i)[8:], 0)
		n.Write32(regs.RDT(0), uint32(i))
	}
}
