package dma

import (
	"errors"
	"testing"
	"unsafe"

	"pgregory.net/rapid"
)

func newTestAllocator(t testing.TB) (*Allocator, *IOVASpace) {
	t.Helper()
	space := NewIOVASpace(0x40_0000_0000, 48)
	a := NewAllocator(space, NoHugepages)
	t.Cleanup(func() { a.Close() })
	return a, space
}

func newTestPool(t testing.TB, cfg MempoolConfig) (*Mempool, *IOVASpace) {
	t.Helper()
	a, space := newTestAllocator(t)
	p, err := NewMempool(a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, space
}

// Every buffer's memory and IOVA are derived from its index; check that the
// two derivations agree through the IOMMU translation, that buffers do not
// overlap and that none straddles a 2 MiB boundary.
func TestMempoolGeometry(t *testing.T) {
	for _, cfg := range []MempoolConfig{
		{Buffers: 2048},
		{Buffers: 5000, BufSize: 2048, Headroom: 128},
		{Buffers: 300, BufSize: 9018, Headroom: 64},
		{Buffers: 7, BufSize: 60, Headroom: 0},
	} {
		p, space := newTestPool(t, cfg)
		stride := roundUp(p.Headroom()+p.BufSize(), 128)
		prevEnd := uint64(0)
		for i := uint32(0); i < uint32(p.Size()); i++ {
			buf := p.Buffer(i)
			if len(buf) != p.Headroom()+p.BufSize() {
				t.Fatalf("buffer %d has %d bytes, want %d", i, len(buf), p.Headroom()+p.BufSize())
			}
			iova := p.BufferIOVA(i)
			if iova%128 != 0 {
				t.Fatalf("buffer %d at IOVA %#x is not 128-byte aligned", i, iova)
			}
			if iova < prevEnd {
				t.Fatalf("buffer %d at %#x overlaps the previous one ending at %#x", i, iova, prevEnd)
			}
			prevEnd = iova + uint64(stride)
			start, end := iova/HugepageSize, (iova+uint64(len(buf))-1)/HugepageSize
			if start != end {
				t.Fatalf("buffer %d [%#x,+%d) straddles a 2 MiB page", i, iova, len(buf))
			}
			host, ok := space.Translate(iova, len(buf))
			if !ok || unsafe.SliceData(host) != unsafe.SliceData(buf) {
				t.Fatalf("buffer %d: IOVA %#x does not translate to its host memory", i, iova)
			}
		}
	}
}

func TestMempoolExhaustionIsAnError(t *testing.T) {
	p, _ := newTestPool(t, MempoolConfig{Buffers: 3})
	var got []Packet
	for range 3 {
		pk, err := p.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, pk)
	}
	if _, err := p.Alloc(); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("Alloc on an empty pool: %v, want ErrPoolExhausted", err)
	}
	batch := make([]Packet, 4)
	if n := p.AllocBatch(batch); n != 0 {
		t.Fatalf("AllocBatch on an empty pool returned %d", n)
	}
	if err := got[1].Free(); err != nil {
		t.Fatal(err)
	}
	if err := got[1].Free(); !errors.Is(err, ErrDoubleFree) {
		t.Fatalf("second free: %v, want ErrDoubleFree", err)
	}
	if p.Available() != 1 {
		t.Fatalf("double free changed accounting: %d available", p.Available())
	}
	other, _ := newTestPool(t, MempoolConfig{Buffers: 3})
	if err := other.FreeBatch(got[:1]); !errors.Is(err, ErrForeignBuffer) {
		t.Fatalf("freeing into another pool: %v, want ErrForeignBuffer", err)
	}
}

func TestMempoolLIFOReuse(t *testing.T) {
	p, _ := newTestPool(t, MempoolConfig{Buffers: 16})
	a, _ := p.Alloc()
	b, _ := p.Alloc()
	b.Free()
	a.Free()
	c, _ := p.Alloc()
	if c.Index != a.Index {
		t.Fatalf("LIFO: got buffer %d, want the last freed %d", c.Index, a.Index)
	}
}

func TestPacketPrependAndData(t *testing.T) {
	p, _ := newTestPool(t, MempoolConfig{Buffers: 1, Headroom: 64})
	pk, _ := p.Alloc()
	pk.Len = 4
	copy(pk.Room(), "data")
	hdr, ok := pk.Prepend(14)
	if !ok || len(hdr) != 14 || pk.Off != 50 || pk.Len != 18 {
		t.Fatalf("Prepend(14): ok=%v len=%d off=%d plen=%d", ok, len(hdr), pk.Off, pk.Len)
	}
	if string(pk.Data()[14:]) != "data" {
		t.Fatalf("payload moved: %q", pk.Data())
	}
	if _, ok := pk.Prepend(51); ok {
		t.Fatal("Prepend past the headroom succeeded")
	}
	if pk.IOVA() != p.BufferIOVA(pk.Index)+50 {
		t.Fatal("IOVA does not follow Off")
	}
}

// Property: under any sequence of Alloc, AllocBatch, Free and FreeBatch
// calls, including double and foreign frees, the pool's accounting matches a
// model that tracks the set of buffers out of the pool: Available + InUse =
// Size, every handed-out buffer is distinct from every other outstanding one,
// and exhaustion happens exactly when the model says every buffer is out.
func TestMempoolAccountingProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		size := rapid.IntRange(1, 64).Draw(t, "size")
		a := NewAllocator(NewIOVASpace(0x1000_0000, 48), NoHugepages)
		defer a.Close()
		p, err := NewMempool(a, MempoolConfig{Buffers: size, BufSize: 256})
		if err != nil {
			t.Fatal(err)
		}
		out := map[uint32]Packet{}
		var freed []Packet // recently freed, for double-free attempts
		for step := 0; step < 200; step++ {
			switch rapid.IntRange(0, 4).Draw(t, "op") {
			case 0:
				pk, err := p.Alloc()
				if len(out) == size {
					if !errors.Is(err, ErrPoolExhausted) {
						t.Fatalf("alloc with all %d out: %v", size, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("alloc with %d of %d out: %v", len(out), size, err)
				}
				if _, dup := out[pk.Index]; dup {
					t.Fatalf("buffer %d handed out twice", pk.Index)
				}
				out[pk.Index] = pk
			case 1:
				batch := make([]Packet, rapid.IntRange(0, 20).Draw(t, "batch"))
				n := p.AllocBatch(batch)
				if want := min(len(batch), size-len(out)); n != want {
					t.Fatalf("AllocBatch(%d) = %d, want %d", len(batch), n, want)
				}
				for _, pk := range batch[:n] {
					if _, dup := out[pk.Index]; dup {
						t.Fatalf("buffer %d handed out twice", pk.Index)
					}
					out[pk.Index] = pk
				}
			case 2:
				for i, pk := range out {
					if err := pk.Free(); err != nil {
						t.Fatalf("free of outstanding buffer %d: %v", i, err)
					}
					delete(out, i)
					freed = append(freed, pk)
					break
				}
			case 3:
				var batch []Packet
				for i, pk := range out {
					if len(batch) == 5 {
						break
					}
					batch = append(batch, pk)
					delete(out, i)
				}
				if err := p.FreeBatch(batch); err != nil {
					t.Fatalf("FreeBatch: %v", err)
				}
				freed = append(freed, batch...)
			case 4:
				if len(freed) == 0 {
					continue
				}
				pk := freed[rapid.IntRange(0, len(freed)-1).Draw(t, "victim")]
				if _, back := out[pk.Index]; back {
					continue // re-allocated since: a legitimate free
				}
				if err := pk.Free(); !errors.Is(err, ErrDoubleFree) {
					t.Fatalf("double free of %d: %v", pk.Index, err)
				}
			}
			if p.InUse() != len(out) || p.Available()+p.InUse() != size {
				t.Fatalf("accounting: in use %d (model %d), available %d, size %d", p.InUse(), len(out), p.Available(), size)
			}
			for i := range out {
				if !p.Owned(i) {
					t.Fatalf("outstanding buffer %d not marked owned", i)
				}
			}
		}
	})
}

func TestMempoolAllocFreeDoesNotAllocate(t *testing.T) {
	p, _ := newTestPool(t, MempoolConfig{Buffers: 256})
	batch := make([]Packet, 32)
	allocs := testing.AllocsPerRun(1000, func() {
		n := p.AllocBatch(batch)
		p.FreeBatch(batch[:n])
	})
	if allocs != 0 {
		t.Fatalf("AllocBatch+FreeBatch allocate %.1f times per run", allocs)
	}
}

func BenchmarkMempoolBatch32(b *testing.B) {
	p, _ := newTestPool(b, MempoolConfig{Buffers: 4096})
	batch := make([]Packet, 32)
	b.ReportAllocs()
	for b.Loop() {
		n := p.AllocBatch(batch)
		p.FreeBatch(batch[:n])
	}
}
