package models

import (
	"errors"
	"testing"

	"pgregory.net/rapid"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
)

// Property: dma.Mempool implements Mempool.tla step for step. Buffer b of
// the spec is pool index b-1; construction is the spec's Free of every
// buffer, last first, so that index 0 is handed out first.
func TestDMAMempoolRefinesSpec(t *testing.T) {
	alloc := dma.NewAllocator(ixgbesim.NewDomain(), dma.NoHugepages)
	defer alloc.Close()
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.Uint32Range(1, 12).Draw(t, "buffers")
		pool, err := dma.NewMempool(alloc, dma.MempoolConfig{Buffers: int(n), BufSize: 1024})
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Release()
		m := &Mempool{B: n, Bug: BugNone}
		s := m.Init()
		for b := n; b >= 1; b-- {
			if !m.Free(s, b) {
				t.Fatalf("spec: construction Free(%d) disabled", b)
			}
		}
		check := func() {
			if pool.Available() != len(s.Free) {
				t.Fatalf("pool has %d free, spec %d", pool.Available(), len(s.Free))
			}
			for b := uint32(1); b <= n; b++ {
				if pool.Owned(b-1) != s.InUse[b] {
					t.Fatalf("buffer %d: pool in use %v, spec %v", b, pool.Owned(b-1), s.InUse[b])
				}
			}
			for _, inv := range m.Spec().Invariants {
				if !inv.Holds(s) {
					t.Fatalf("spec invariant %s violated", inv.Name)
				}
			}
		}
		check()
		t.Repeat(map[string]func(*rapid.T){
			"alloc": func(t *rapid.T) {
				p, err := pool.Alloc()
				want := s.Clone()
				ok := m.Alloc(s)
				if ok != (err == nil) {
					t.Fatalf("Alloc: pool err %v, spec enabled %v", err, ok)
				}
				if ok && p.Index+1 != want.Free[len(want.Free)-1] {
					t.Fatalf("Alloc: pool gave %d, spec's top is %d", p.Index+1, want.Free[len(want.Free)-1])
				}
				if !ok && !errors.Is(err, dma.ErrPoolExhausted) {
					t.Fatalf("Alloc on an empty pool: %v", err)
				}
			},
			"free": func(t *rapid.T) {
				b := rapid.Uint32Range(1, n).Draw(t, "b")
				err := pool.FreeIndex(b - 1)
				ok := m.Free(s, b)
				if ok != (err == nil) {
					t.Fatalf("Free(%d): pool err %v, spec enabled %v", b, err, ok)
				}
				if !ok && !errors.Is(err, dma.ErrDoubleFree) {
					t.Fatalf("double free: %v", err)
				}
			},
			"": func(t *rapid.T) { check() },
		})
	})
}
