package dma

import (
	"errors"
	"fmt"
	"sync"
)

// Mapper makes pinned host memory reachable by a device at an I/O virtual
// address (IOVA). It is one IOMMU domain: the VFIO container on real
// hardware (VFIO_IOMMU_MAP_DMA), the simulator's IOMMU model otherwise.
// Every device attached to the same Mapper can reach every mapping in it, so
// two NICs sharing one can DMA each other's buffers (as with ixy's single
// VFIO container).
type Mapper interface {
	// MapDMA maps mem, which is page-aligned and stays valid until it is
	// unmapped, readable and writable by the device, and returns its IOVA.
	MapDMA(mem []byte) (iova uint64, err error)
	// UnmapDMA removes a mapping made by MapDMA.
	UnmapDMA(iova uint64, size uint64) error
}

// Region is a piece of DMA memory: host bytes and the IOVA at which the
// device sees the first of them. Regions are carved out of larger mapped
// chunks, so a Region's memory is contiguous in IOVA space, and within one
// page (see PageSize) also physically contiguous.
type Region struct {
	mem   []byte
	iova  uint64
	chunk *chunk
	alloc *Allocator
}

// Bytes returns the region's host memory.
func (r *Region) Bytes() []byte { return r.mem }

// IOVA returns the device address of the region's first byte.
func (r *Region) IOVA() uint64 { return r.iova }

// Len returns the region's size in bytes.
func (r *Region) Len() int { return len(r.mem) }

// PageSize returns the size of the pages backing the region, aligned to
// which memory is physically contiguous (2 MiB for hugepages).
func (r *Region) PageSize() int { return r.chunk.host.PageSize() }

// Hugepages reports whether the region is backed by hugepages.
func (r *Region) Hugepages() bool { return r.chunk.host.Hugepages() }

// Free returns the region to its allocator. The memory is unmapped from the
// device and released when the last region carved from its chunk is freed.
func (r *Region) Free() error {
	if r.alloc == nil {
		return errors.New("dma: region freed twice")
	}
	a := r.alloc
	r.alloc = nil
	return a.release(r.chunk)
}

// chunk is one host mapping, mapped once into the device's IOVA space.
type chunk struct {
	host *HostMemory
	iova uint64
	used int // bump offset
	refs int // live regions carved from it
}

// Allocator hands out Regions from pinned host memory mapped through a
// Mapper. Small requests are carved from shared 2 MiB chunks (a ring of 512
// descriptors needs 8 KiB, not a hugepage of its own); large ones get chunks
// of their own. It is safe for concurrent use.
type Allocator struct {
	mapper Mapper
	policy HugepagePolicy

	mu      sync.Mutex
	current *chunk // chunk that small requests are carved from
	live    map[*chunk]struct{}
	closed  bool
}

// NewAllocator returns an allocator whose memory is mapped through mapper.
func NewAllocator(mapper Mapper, policy HugepagePolicy) *Allocator {
	return &Allocator{mapper: mapper, policy: policy, live: make(map[*chunk]struct{})}
}

// Mapper returns the IOMMU domain the allocator maps into.
func (a *Allocator) Mapper() Mapper { return a.mapper }

// carveLimit is the largest request carved out of a shared chunk.
const carveLimit = HugepageSize / 2

// Alloc returns a region of size bytes whose IOVA is a multiple of align (a
// power of two, at most 4096; 0 means 128, the descriptor-ring alignment of
// datasheet 8.2.3.8.1).
func (a *Allocator) Alloc(size, align int) (*Region, error) {
	if align == 0 {
		align = 128
	}
	if size <= 0 || align < 0 || align&(align-1) != 0 || align > SmallPageSize {
		return nil, fmt.Errorf("dma: alloc %d bytes aligned to %d: bad size or alignment", size, align)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errors.New("dma: allocator is closed")
	}
	if size > carveLimit {
		c, err := a.newChunk(size)
		if err != nil {
			return nil, err
		}
		return a.carve(c, size, align), nil
	}
	if a.current == nil || roundUp(a.current.used, align)+size > len(a.current.host.Bytes()) {
		if a.current != nil && a.current.refs == 0 {
			a.dropChunk(a.current)
		}
		a.current = nil
		c, err := a.newChunk(HugepageSize)
		if err != nil {
			return nil, err
		}
		a.current = c
	}
	return a.carve(a.current, size, align), nil
}

func (a *Allocator) carve(c *chunk, size, align int) *Region {
	off := roundUp(c.used, align)
	c.used = off + size
	c.refs++
	return &Region{mem: c.host.Bytes()[off : off+size : off+size], iova: c.iova + uint64(off), chunk: c, alloc: a}
}

func (a *Allocator) newChunk(size int) (*chunk, error) {
	host, err := AllocHost(size, a.policy)
	if err != nil {
		return nil, err
	}
	iova, err := a.mapper.MapDMA(host.Bytes())
	if err != nil {
		n := len(host.Bytes())
		host.Release()
		return nil, fmt.Errorf("dma: map %d bytes for the device: %w", n, err)
	}
	c := &chunk{host: host, iova: iova}
	a.live[c] = struct{}{}
	return c, nil
}

func (a *Allocator) dropChunk(c *chunk) error {
	delete(a.live, c)
	err := a.mapper.UnmapDMA(c.iova, uint64(len(c.host.Bytes())))
	if rerr := c.host.Release(); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("dma: release chunk at IOVA %#x: %w", c.iova, err)
	}
	return nil
}

func (a *Allocator) release(c *chunk) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	c.refs--
	if c.refs > 0 || c == a.current {
		return nil
	}
	return a.dropChunk(c)
}

// LiveChunks returns how many host mappings the allocator holds (for leak
// tests).
func (a *Allocator) LiveChunks() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := len(a.live)
	if a.current != nil && a.current.refs == 0 {
		n-- // an empty current chunk is a cache, not a leak
	}
	return n
}

// Close unmaps and releases all memory, including regions still in use.
func (a *Allocator) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	a.current = nil
	var errs []error
	for c := range a.live {
		if err := a.dropChunk(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
