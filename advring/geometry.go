package advring

import (
	"cmp"
	"fmt"

	"github.com/verinic/verinic/dma"
)

// Ring geometry limits, the same for every family: RDLEN and TDLEN are
// multiples of 128 bytes (8 descriptors; 82599 datasheet 8.2.3.8.3, 82576
// 8.10.x), and sizes are powers of two so that index arithmetic is a mask.
const (
	MinRingSize     = 64
	MaxRingSize     = 4096
	DefaultRingSize = 512
)

// Geometry is the queue, ring and pool shape a family's Config asks for.
// Normalize fills its defaults and checks it against what the engine and
// the advanced receive descriptors need, so that every family refuses the
// same configurations with the same words.
type Geometry struct {
	RxQueues, TxQueues     int
	RxRingSize, TxRingSize int
	Mempool                dma.MempoolConfig
}

// Normalize fills defaults (one queue each way, DefaultRingSize, a pool of
// max(dma.DefaultBuffers, 2*RxRingSize) buffers of dma.DefaultBufSize) and
// validates: 1..maxQueues queues, ring sizes, a pool larger than the RX
// ring, an even headroom (bit 0 of a receive buffer address is ignored:
// 82599 datasheet 7.1.6.1) and a data room of at least 1 KB (SRRCTL's
// packet buffer size counts 1 KB units on both families).
func (g *Geometry) Normalize(maxQueues int) error {
	g.RxQueues = cmp.Or(g.RxQueues, 1)
	g.TxQueues = cmp.Or(g.TxQueues, 1)
	if g.RxQueues < 1 || g.RxQueues > maxQueues || g.TxQueues < 1 || g.TxQueues > maxQueues {
		return fmt.Errorf("config: %d RX and %d TX queues: each must be 1..%d", g.RxQueues, g.TxQueues, maxQueues)
	}
	g.RxRingSize = cmp.Or(g.RxRingSize, DefaultRingSize)
	g.TxRingSize = cmp.Or(g.TxRingSize, DefaultRingSize)
	for _, s := range []int{g.RxRingSize, g.TxRingSize} {
		if s < MinRingSize || s > MaxRingSize || s&(s-1) != 0 {
			return fmt.Errorf("config: ring size %d: must be a power of two in %d..%d", s, MinRingSize, MaxRingSize)
		}
	}
	p := &g.Mempool
	p.Buffers = cmp.Or(p.Buffers, max(dma.DefaultBuffers, 2*g.RxRingSize))
	p.BufSize = cmp.Or(p.BufSize, dma.DefaultBufSize)
	switch {
	case p.Buffers <= g.RxRingSize:
		return fmt.Errorf("config: a pool of %d buffers cannot keep an RX ring of %d descriptors filled and refill it: give it more than %d (twice the ring is comfortable)",
			p.Buffers, g.RxRingSize, g.RxRingSize)
	case p.Headroom%2 != 0:
		return fmt.Errorf("config: buffer headroom %d B: must be even so that receive buffer addresses have bit 0 clear (82599 datasheet 7.1.6.1; the 82576's is the same)", p.Headroom)
	case p.BufSize < 1024:
		return fmt.Errorf("config: buffer data room %d B: SRRCTL.BSIZEPACKET counts 1 KB units, so at least 1024 B are needed (82599 datasheet 8.2.3.8.7; 82576 8.10.x)", p.BufSize)
	}
	return nil
}
