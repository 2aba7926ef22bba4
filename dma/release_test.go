package dma

import (
	"errors"
	"testing"
)

// After Release a pool refuses every call without touching its (freed)
// memory and without panicking.
func TestMempoolUnusableAfterRelease(t *testing.T) {
	p, _ := newTestPool(t, MempoolConfig{Buffers: 64})
	held, err := p.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	held.Len = 60
	batch := make([]Packet, 4)
	if p.AllocBatch(batch) != 4 {
		t.Fatal("AllocBatch")
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if !p.Released() {
		t.Fatal("Released = false after Release")
	}
	if _, err := p.Alloc(); !errors.Is(err, ErrPoolReleased) {
		t.Fatalf("Alloc: %v, want ErrPoolReleased", err)
	}
	if k := p.AllocBatch(make([]Packet, 8)); k != 0 {
		t.Fatalf("AllocBatch took %d", k)
	}
	if err := p.FreeIndex(held.Index); !errors.Is(err, ErrPoolReleased) {
		t.Fatalf("FreeIndex: %v, want ErrPoolReleased", err)
	}
	if err := held.Free(); !errors.Is(err, ErrPoolReleased) {
		t.Fatalf("Packet.Free: %v, want ErrPoolReleased", err)
	}
	if err := p.FreeBatch(batch); !errors.Is(err, ErrPoolReleased) {
		t.Fatalf("FreeBatch: %v, want ErrPoolReleased", err)
	}
	if p.Buffer(held.Index) != nil || p.BufferIOVA(held.Index) != 0 {
		t.Fatal("Buffer or BufferIOVA still answer after Release")
	}
	if held.Data() != nil || held.Room() != nil {
		t.Fatal("Packet.Data or Room still answer after Release")
	}
	if _, ok := held.Prepend(14); ok {
		t.Fatal("Prepend succeeded after Release")
	}
	if p.Available() != 0 || p.InUse() != 0 || p.Owned(held.Index) {
		t.Fatalf("Available %d, InUse %d, Owned %v after Release", p.Available(), p.InUse(), p.Owned(held.Index))
	}
	if err := p.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
}
