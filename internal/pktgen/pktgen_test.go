package pktgen

import (
	"errors"
	"testing"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/proto/header"
)

func testPool(t testing.TB) *dma.Mempool {
	a := dma.NewAllocator(dma.NewIOVASpace(1<<32, 48), dma.NoHugepages)
	t.Cleanup(func() { a.Close() })
	p, err := dma.NewMempool(a, dma.MempoolConfig{Buffers: 8})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildCheckRoundTrip(t *testing.T) {
	pool := testPool(t)
	f := DefaultFlow(7, header.MAC{2, 0, 0, 0, 0, 1}, header.MAC{2, 0, 0, 0, 0, 2})
	sizes := Mixed(42)
	for seq := uint64(0); seq < 3000; seq++ {
		p, _ := pool.Alloc()
		want := sizes.Next()
		if want < MinFrame || want > MaxFrame {
			t.Fatalf("mixed size %d out of range", want)
		}
		Build(&p, &f, seq, want)
		info, err := Check(p.Data())
		if err != nil || info.Flow != 7 || info.Seq != seq || info.Size != want {
			t.Fatalf("seq %d size %d: %+v, %v", seq, want, info, err)
		}
		p.Free()
	}
}

// Every single-byte change anywhere in a frame is detected: in the headers
// (checksums, magic) or in the payload (filler).
func TestCheckDetectsEveryByteFlip(t *testing.T) {
	pool := testPool(t)
	f := DefaultFlow(1, header.MAC{2, 0, 0, 0, 0, 1}, header.MAC{2, 0, 0, 0, 0, 2})
	for _, size := range []int{MinFrame, 61, 333, MaxFrame} {
		p, _ := pool.Alloc()
		Build(&p, &f, 99, size)
		frame := p.Data()
		for i := header.EthernetHeaderLen; i < len(frame); i++ { // MAC addresses are not checked by the receiver
			frame[i] ^= 0x10
			if _, err := Check(frame); err == nil {
				t.Fatalf("size %d: flipping byte %d went unnoticed", size, i)
			}
			frame[i] ^= 0x10
		}
		p.Free()
	}
}

func TestTrackerAccounting(t *testing.T) {
	pool := testPool(t)
	f := DefaultFlow(3, header.MAC{2}, header.MAC{4})
	tr := NewTracker()
	for _, seq := range []uint64{0, 1, 2, 5, 6, 4, 6, 7} {
		p, _ := pool.Alloc()
		Build(&p, &f, seq, 100)
		tr.Observe(p.Data())
		p.Free()
	}
	if tr.Received != 8 || tr.InOrder != 5 || tr.Gaps != 2 || tr.Late != 2 || tr.Next(3) != 8 {
		t.Fatalf("tracker: %+v", tr)
	}
	if tr.FirstError == nil {
		t.Fatal("no first error recorded")
	}
	tr.Observe(make([]byte, 60))
	if tr.Foreign != 1 {
		t.Fatalf("foreign frame not counted: %+v", tr)
	}
	if _, err := Check([]byte{1, 2, 3}); !errors.Is(err, ErrNotGenerated) {
		t.Fatalf("truncated frame: %v", err)
	}
}

func TestBuildAndCheckDoNotAllocate(t *testing.T) {
	pool := testPool(t)
	f := DefaultFlow(1, header.MAC{2}, header.MAC{4})
	p, _ := pool.Alloc()
	var seq uint64
	allocs := testing.AllocsPerRun(1000, func() {
		Build(&p, &f, seq, 1000)
		if _, err := Check(p.Data()); err != nil {
			panic(err)
		}
		seq++
	})
	if allocs != 0 {
		t.Fatalf("Build+Check allocate %.1f times per frame", allocs)
	}
}
