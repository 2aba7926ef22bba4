package tcp_test

import (
	"io"
	"testing"

	"github.com/verinic/verinic/proto/stack"
)

// The steady-state data path allocates nothing: writing, segmenting,
// sending, receiving, acknowledging and reading 64 KiB (45 segments and
// their ACKs) costs no allocation, on either stack's loop or in the
// application's calls. (AllocsPerRun counts every goroutine's.)
func TestZeroAllocsPerSegment(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping in -short")
	}
	zeroAllocsPerSegment(t, newPair(t, pairOpts{}))
}

// The same over two simulated 82599s with TSO: bursts built in the loop's
// TSO buffers and cut by the device allocate nothing either (the
// simulator's engines included: AllocsPerRun counts every goroutine).
func TestZeroAllocsPerSegmentTSO(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping in -short")
	}
	p := newSimNICPair(t, stack.Config{})
	zeroAllocsPerSegment(t, p)
	if b := p.sa.Counters().Get(stack.TxTSO); b == 0 {
		t.Fatal("no TSO bursts sent")
	}
}

func zeroAllocsPerSegment(t *testing.T, p *pair) {
	c, s := dialAccept(t, p, 9000)
	chunk := make([]byte, 64<<10)
	buf := make([]byte, len(chunk))
	round := func() {
		if _, err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(s, buf); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 200; i++ { // warm up: buffers grow, auto-tuning settles
		round()
	}
	allocs := testing.AllocsPerRun(200, round)
	segs := float64(len(chunk)) / float64(c.Info().MSS)
	t.Logf("%.2f allocations per 64 KiB round (%.4f per segment)", allocs, allocs/segs)
	if allocs/segs >= 0.01 {
		t.Fatalf("%.2f allocations per 64 KiB (%.3f per segment): the data path allocates", allocs, allocs/segs)
	}
}
