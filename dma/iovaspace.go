package dma

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// IOVASpace is a Mapper that keeps its own translation table: it hands out
// IOVAs from a configurable base, as an IOMMU driver would, and can translate
// an IOVA range back to host memory. It is the DMA domain of the simulated
// 82599 (whose IOMMU model faults on any access outside these mappings) and
// of tests that need no device at all.
//
// IOVAs are deliberately unrelated to host virtual addresses so that a
// driver that confuses the two is caught.
type IOVASpace struct {
	mu       sync.Mutex // serializes Map and Unmap
	next     uint64
	mappings atomic.Pointer[[]mapping] // sorted by iova; copied on write so Translate takes no lock
	limit    uint64                    // first IOVA past the address width
}

type mapping struct {
	iova uint64
	mem  []byte
}

// NewIOVASpace returns an empty space whose first mapping lands at base.
// addressBits limits the IOVAs handed out (48 for a typical VT-d IOMMU).
func NewIOVASpace(base uint64, addressBits int) *IOVASpace {
	if addressBits <= 0 || addressBits > 64 {
		addressBits = 48
	}
	limit := ^uint64(0)
	if addressBits < 64 {
		limit = 1 << addressBits
	}
	s := &IOVASpace{next: base, limit: limit}
	s.mappings.Store(&[]mapping{})
	return s
}

// MapDMA implements Mapper. Mappings are aligned to 2 MiB so that a
// hugepage keeps its alignment in IOVA space.
func (s *IOVASpace) MapDMA(mem []byte) (uint64, error) {
	if len(mem) == 0 {
		return 0, errors.New("dma: map of an empty range")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	iova := uint64(roundUp(int(s.next), HugepageSize))
	end := iova + uint64(len(mem))
	if end > s.limit || end < iova {
		return 0, fmt.Errorf("dma: IOVA space exhausted: %d bytes at %#x exceed the %#x limit", len(mem), iova, s.limit)
	}
	s.next = end
	old := *s.mappings.Load()
	i := sort.Search(len(old), func(i int) bool { return old[i].iova > iova })
	ms := make([]mapping, 0, len(old)+1)
	ms = append(ms, old[:i]...)
	ms = append(ms, mapping{iova: iova, mem: mem})
	ms = append(ms, old[i:]...)
	s.mappings.Store(&ms)
	return iova, nil
}

// UnmapDMA implements Mapper.
func (s *IOVASpace) UnmapDMA(iova, size uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.mappings.Load()
	for i, m := range old {
		if m.iova == iova {
			if uint64(len(m.mem)) != size {
				return fmt.Errorf("dma: unmap of IOVA %#x with size %d, mapped with size %d", iova, size, len(m.mem))
			}
			ms := make([]mapping, 0, len(old)-1)
			ms = append(ms, old[:i]...)
			ms = append(ms, old[i+1:]...)
			s.mappings.Store(&ms)
			return nil
		}
	}
	return fmt.Errorf("dma: unmap of IOVA %#x: not mapped", iova)
}

// Translate returns the host memory behind [iova, iova+n), or false when any
// byte of the range is not mapped. The range must lie within one mapping.
func (s *IOVASpace) Translate(iova uint64, n int) ([]byte, bool) {
	_, b, ok := find(*s.mappings.Load(), iova, n)
	return b, ok
}

// find returns the mapping of table ms holding [iova, iova+n) and that
// range's host memory.
func find(ms []mapping, iova uint64, n int) (mapping, []byte, bool) {
	i := sort.Search(len(ms), func(i int) bool { return ms[i].iova > iova }) - 1
	if i < 0 || n < 0 {
		return mapping{}, nil, false
	}
	m := ms[i]
	off := iova - m.iova
	if off+uint64(n) > uint64(len(m.mem)) || off+uint64(n) < off {
		return mapping{}, nil, false
	}
	return m, m.mem[off : off+uint64(n) : off+uint64(n)], true
}

// TranslateCache remembers the mapping found by the last Translate through
// it (IOVASpace.TranslateCached), so that a run of accesses within one
// mapping (a descriptor ring, a mempool) costs one atomic load and a range
// check instead of a search. The remembered mapping is used only while the
// space's table is the one it was found in: every Map and Unmap installs a
// new table, so nothing unmapped is ever translated through a cache. The
// zero value is an empty cache; a cache is not safe for concurrent use.
type TranslateCache struct {
	table *[]mapping
	iova  uint64
	mem   []byte
}

// TranslateCached is Translate through cache c.
func (s *IOVASpace) TranslateCached(c *TranslateCache, iova uint64, n int) ([]byte, bool) {
	if t := s.mappings.Load(); t == c.table && iova >= c.iova && n >= 0 {
		off := iova - c.iova
		if end := off + uint64(n); end <= uint64(len(c.mem)) && end >= off {
			return c.mem[off:end:end], true
		}
	}
	return s.translateMiss(c, iova, n)
}

// translateMiss is TranslateCached's search, which refills the cache.
func (s *IOVASpace) translateMiss(c *TranslateCache, iova uint64, n int) ([]byte, bool) {
	t := s.mappings.Load()
	m, b, ok := find(*t, iova, n)
	if ok {
		c.table, c.iova, c.mem = t, m.iova, m.mem
	}
	return b, ok
}

// Mappings returns how many ranges are mapped.
func (s *IOVASpace) Mappings() int {
	return len(*s.mappings.Load())
}
