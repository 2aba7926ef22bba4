package ixgbe

import (
	"testing"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/ixgbe/regs"
)

// TestForwardDoorbellsSim forwards a fixed population of frames back and
// forth between two free-running simulated NICs (ixy-fwd's loop, as
// BenchmarkForwardSim) with the device work done on the doorbell's
// goroutine (ixgbesim.DoorbellInline, also under -race) and on the engine
// goroutines only (DoorbellEngine): no frame is lost or made up, the
// registers count every frame, and no ownership violation or IOMMU fault
// happens (newSimPair's teardown checks).
func TestForwardDoorbellsSim(t *testing.T) {
	for name, mode := range map[string]ixgbesim.DoorbellMode{"inline": ixgbesim.DoorbellInline, "engine": ixgbesim.DoorbellEngine} {
		t.Run(name, func(t *testing.T) {
			p := newSimPair(t, pairOpts{
				mode:     ixgbesim.FreeRunning,
				doorbell: mode,
				cfgA:     Config{Promiscuous: true, RxRingSize: 512, TxRingSize: 512},
				cfgB:     Config{Promiscuous: true, RxRingSize: 512, TxRingSize: 512},
			})
			p.waitLinks(t)
			const population = 256
			p.injectFrames(t, population, false)
			pkts := make([]dma.Packet, 32)
			forwarded := 0
			deadline := time.Now().Add(20 * time.Second)
			for forwarded < 20000 {
				if time.Now().After(deadline) {
					t.Fatalf("forwarded %d frames in 20 s", forwarded)
				}
				for _, n := range []*NIC{p.a, p.b} {
					k, err := n.RxBatch(0, pkts)
					if err != nil {
						t.Fatal(err)
					}
					m, err := n.TxBatch(0, pkts[:k])
					if err != nil || m != k {
						t.Fatalf("TxBatch = %d of %d, %v", m, k, err)
					}
					forwarded += m
				}
			}
			// Let the population settle: every frame comes back up, then
			// the (clear-on-read) counters are read once: each frame sent
			// was received.
			received := 0
			deadline = time.Now().Add(10 * time.Second)
			for received < population {
				if time.Now().After(deadline) {
					t.Fatalf("%d frames came back of a population of %d", received, population)
				}
				for _, n := range []*NIC{p.a, p.b} {
					k, err := n.RxBatch(0, pkts)
					if err != nil {
						t.Fatal(err)
					}
					n.RxPool(0).FreeBatch(pkts[:k])
					received += k
				}
			}
			time.Sleep(10 * time.Millisecond)
			for _, n := range []*NIC{p.a, p.b} {
				if k, _ := n.RxBatch(0, pkts); k != 0 {
					t.Fatalf("%d frames more than the population of %d", k, population)
				}
			}
			sentA, sentB := p.sa.Read32(regs.GPTC), p.sb.Read32(regs.GPTC)
			recvA, recvB := p.sa.Read32(regs.GPRC), p.sb.Read32(regs.GPRC)
			if sentA != recvB || sentB != recvA || int(sentA+sentB) != forwarded+population {
				t.Fatalf("sent A %d B %d, received A %d B %d; the driver forwarded %d of a population of %d", sentA, sentB, recvA, recvB, forwarded, population)
			}
			if p.sa.ViolationCount()+p.sb.ViolationCount() != 0 {
				t.Fatalf("violations: %v %v", p.sa.Violations(), p.sb.Violations())
			}
		})
	}
}
