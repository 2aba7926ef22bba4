package dma

import (
	"testing"
	"unsafe"
)

func TestGoHeapPolicy(t *testing.T) {
	m, err := AllocHost(10000, GoHeap)
	if err != nil {
		t.Fatal(err)
	}
	b := m.Bytes()
	if len(b) != 3*SmallPageSize || uintptr(unsafe.Pointer(&b[0]))%SmallPageSize != 0 {
		t.Fatalf("heap memory: %d bytes at %p, want 3 pages, page-aligned", len(b), &b[0])
	}
	if m.Hugepages() || m.PageSize() != SmallPageSize {
		t.Fatal("heap memory reports hugepages")
	}
	b[len(b)-1] = 1
	if err := m.Release(); err != nil || m.Bytes() != nil {
		t.Fatalf("release: %v", err)
	}
	// Through an allocator and an IOVA space, as the simulator uses it.
	a := NewAllocator(NewIOVASpace(0x1000_0000, 48), GoHeap)
	r, err := a.Alloc(4096, 128)
	if err != nil {
		t.Fatal(err)
	}
	if r.IOVA()%128 != 0 || r.Len() != 4096 {
		t.Fatalf("region %#x+%d", r.IOVA(), r.Len())
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}
