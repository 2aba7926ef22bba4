package ixgbe

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
)

// BenchmarkForwardSim forwards frames through the driver between two
// free-running simulated NICs joined by a cable: on each NIC, RxBatch then
// TxBatch of the same buffers back onto the wire, so a fixed population of
// 64-byte frames bounces between them (ixy-fwd's loop with the two ports
// folded onto one cable). It reports forwarded packets per second (Mpps)
// for the batch size; the simulators' engines run on their own goroutines,
// so the figure is bounded by the simulator as much as by the driver.
//
// In stepped mode everything runs on the benchmark's goroutine: after the
// driver's calls on both NICs, each simulator is drained (every engine
// moved until idle). That figure has no scheduling noise and counts the
// driver and the simulator's per-packet work together; cpu-ns/pkt is the
// CPU time of the (locked) thread per packet, which a loaded machine
// disturbs less than the wall clock.
func BenchmarkForwardSim(b *testing.B) {
	for _, mode := range []ixgbesim.Mode{ixgbesim.FreeRunning, ixgbesim.Stepped} {
		for _, batch := range []int{1, 4, 16, 32, 64, 256} {
			b.Run(fmt.Sprintf("%s/batch=%d", mode, batch), func(b *testing.B) {
				forwardSim(b, mode, batch, false)
			})
		}
	}
}

func forwardSim(b *testing.B, mode ixgbesim.Mode, batch int, yield bool) {
	p := newSimPair(b, pairOpts{
		mode: mode,
		cfgA: Config{Promiscuous: true, RxRingSize: 1024, TxRingSize: 1024},
		cfgB: Config{Promiscuous: true, RxRingSize: 1024, TxRingSize: 1024},
	})
	p.waitLinks(b)
	nics := []*NIC{p.a, p.b}
	// Inject the population: 512 frames from A.
	p.injectFrames(b, 512, mode == ixgbesim.Stepped)
	pkts := make([]dma.Packet, batch)
	forwarded := 0
	if mode == ixgbesim.Stepped {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	b.ResetTimer()
	cpu0 := threadCPU()
	for i := 0; i < b.N; i++ {
		before := forwarded
		for _, n := range nics {
			k, err := n.RxBatch(0, pkts)
			if err != nil {
				b.Fatal(err)
			}
			m, _ := n.TxBatch(0, pkts[:k])
			if m < k {
				n.RxPool(0).FreeBatch(pkts[m:k])
			}
			forwarded += m
		}
		switch {
		case mode == ixgbesim.Stepped:
			p.sa.Drain(0)
			p.sb.Drain(0)
		case yield && forwarded == before:
			runtime.Gosched()
		}
	}
	cpu := threadCPU() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(forwarded)/b.Elapsed().Seconds()/1e6, "Mpps")
	if forwarded > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(forwarded), "ns/pkt")
		if mode == ixgbesim.Stepped {
			// Everything runs on this locked thread: its CPU time per
			// packet does not count waiting for a shared CPU.
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(forwarded), "cpu-ns/pkt")
		}
	}
}

// BenchmarkForwardSimYield is BenchmarkForwardSim's free-running case with
// a forwarding loop that yields its processor (runtime.Gosched) after a
// round that moved nothing, as a poller sharing CPUs with the device model
// should: with two vCPUs, a loop that never yields holds one of them while
// both simulated NICs' engines share the other.
func BenchmarkForwardSimYield(b *testing.B) {
	for _, batch := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			forwardSim(b, ixgbesim.FreeRunning, batch, true)
		})
	}
}

// injectFrames sends n 60-byte frames from A to B on queue 0 (the
// population a forwarding loop keeps bouncing), draining both stepped
// simulators after each TxBatch when drain is set.
func (p *simPair) injectFrames(tb testing.TB, n int, drain bool) {
	tb.Helper()
	seed := make([]dma.Packet, n)
	if got := p.a.RxPool(0).AllocBatch(seed); got != n {
		tb.Fatal("pool too small")
	}
	spec := frameSpec{srcMAC: p.a.MAC(), dstMAC: p.b.MAC(), srcPort: 7}
	for i := range seed {
		seed[i].Len = 60
		buildFrame(seed[i].Data(), &spec, 0, 0, i)
	}
	for off := 0; off < n; {
		k, err := p.a.TxBatch(0, seed[off:])
		if err != nil {
			tb.Fatal(err)
		}
		off += k
		if drain {
			p.sa.Drain(0)
			p.sb.Drain(0)
		}
	}
}
