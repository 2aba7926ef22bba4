// Package dma provides memory that a device can reach by DMA: pinned host
// memory (2 MiB hugepages when the system has them reserved, ordinary locked
// pages otherwise), mapped into a device's I/O address space by a Mapper (the
// VFIO container on real hardware, the simulator's IOMMU model otherwise), and
// mempools of fixed-size packet buffers carved out of it.
//
// The package sits at the bottom of the layer diagram in docs/architecture.md:
// it imports nothing of the project.
package dma

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// HugepageSize is the size of the hugepages this package uses (x86-64 2 MiB).
// A hugepage is the unit within which memory is guaranteed to be physically
// contiguous, so no packet buffer may straddle two of them.
const HugepageSize = 2 << 20

// SmallPageSize is the ordinary page size used when hugepages are absent.
const SmallPageSize = 4096

// HugepagePolicy says whether host memory must, may or must not come from
// hugepages.
type HugepagePolicy int

const (
	// PreferHugepages uses 2 MiB hugepages when some are reserved and falls
	// back to ordinary locked pages, with a one-line warning, otherwise.
	PreferHugepages HugepagePolicy = iota
	// RequireHugepages fails with ErrNoHugepages when none are available.
	RequireHugepages
	// NoHugepages always uses ordinary pages (tests, the simulator).
	NoHugepages
	// GoHeap takes the memory from the Go heap (page-aligned, never
	// moved, not pinned). Only a simulated device can use it; its point is
	// that the race detector instruments Go heap memory but not mmap'd
	// memory, so with GoHeap `go test -race` checks the ordering of the
	// driver's and the simulated device's descriptor and buffer accesses.
	GoHeap
)

// ErrNoHugepages reports that a hugepage mapping failed because none are
// reserved (or all are in use).
var ErrNoHugepages = errors.New("no free 2 MiB hugepages (reserve some: echo 512 > /proc/sys/vm/nr_hugepages, or nicctl hugepages --reserve 512)")

// HostMemory is a pinned, page-aligned mapping of host memory outside the Go
// heap. Its backing never moves while it is mapped.
type HostMemory struct {
	mem       []byte
	hugepages bool
	locked    bool
	heap      bool // from the Go heap (GoHeap): nothing to unmap
}

// Bytes returns the whole mapping.
func (m *HostMemory) Bytes() []byte { return m.mem }

// Hugepages reports whether the mapping is backed by 2 MiB hugepages.
func (m *HostMemory) Hugepages() bool { return m.hugepages }

// Locked reports whether the pages are locked in RAM (mlock succeeded, or
// hugepages, which are never swapped).
func (m *HostMemory) Locked() bool { return m.locked }

// PageSize is the size of the pages backing the mapping: the unit within
// which the memory is physically contiguous.
func (m *HostMemory) PageSize() int {
	if m.hugepages {
		return HugepageSize
	}
	return SmallPageSize
}

// Release unmaps the memory. Using any slice of it afterwards faults.
func (m *HostMemory) Release() error {
	if m.mem == nil {
		return nil
	}
	if m.heap {
		m.mem = nil // the garbage collector reclaims it
		return nil
	}
	err := unix.Munmap(m.mem)
	m.mem = nil
	if err != nil {
		return fmt.Errorf("dma: munmap: %w", err)
	}
	return nil
}

// Warnf receives the package's one-line warnings (hugepage fallback, failed
// mlock). It defaults to printing on standard error; a program may replace it
// before allocating, or set it to nil to silence the warnings.
var Warnf = func(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "verinic: "+format+"\n", args...)
}

var (
	warnFallbackOnce sync.Once
	warnLockOnce     sync.Once
)

func warnOnce(once *sync.Once, format string, args ...any) {
	once.Do(func() {
		if Warnf != nil {
			Warnf(format, args...)
		}
	})
}

// AllocHost maps size bytes of pinned host memory, rounded up to the page
// size in use. With PreferHugepages it tries 2 MiB hugepages first (as ixy
// does: MAP_HUGETLB|MAP_HUGE_2MB, anonymous, shared) and falls back to
// ordinary pages that it tries to mlock.
func AllocHost(size int, policy HugepagePolicy) (*HostMemory, error) {
	if size <= 0 {
		return nil, fmt.Errorf("dma: allocation of %d bytes: size must be positive", size)
	}
	if policy == GoHeap {
		return allocHeap(size), nil
	}
	if policy != NoHugepages {
		m, err := mapHugepages(size)
		if err == nil {
			return m, nil
		}
		if policy == RequireHugepages {
			return nil, err
		}
		warnOnce(&warnFallbackOnce, "%v; falling back to ordinary 4 KiB pages (fine for the simulator; real NICs want hugepages)", err)
	}
	return mapSmallPages(size)
}

func roundUp(n, to int) int { return (n + to - 1) / to * to }

func mapHugepages(size int) (*HostMemory, error) {
	size = roundUp(size, HugepageSize)
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_SHARED|unix.MAP_ANONYMOUS|unix.MAP_HUGETLB|unix.MAP_HUGE_2MB|unix.MAP_POPULATE)
	if err != nil {
		if errors.Is(err, unix.ENOMEM) || errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("dma: mmap %d bytes of hugepages: %w: %w", size, err, ErrNoHugepages)
		}
		return nil, fmt.Errorf("dma: mmap %d bytes of hugepages: %w", size, err)
	}
	// Hugepages are never swapped; VFIO pins them again when they are mapped.
	return &HostMemory{mem: mem, hugepages: true, locked: true}, nil
}

func mapSmallPages(size int) (*HostMemory, error) {
	size = roundUp(size, SmallPageSize)
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_SHARED|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("dma: mmap %d bytes: %w", size, err)
	}
	m := &HostMemory{mem: mem}
	if err := unix.Mlock(mem); err != nil {
		// Without CAP_IPC_LOCK the RLIMIT_MEMLOCK limit (often 8 MiB) applies.
		// The simulator does not need locked memory; VFIO pins it itself and
		// reports the limit when mapping fails.
		warnOnce(&warnLockOnce, "dma: mlock %d bytes: %v (raise the limit with ulimit -l, or run as root); continuing with unlocked pages", size, err)
	} else {
		m.locked = true
	}
	return m, nil
}

// allocHeap returns size bytes (rounded up to whole small pages) of
// page-aligned Go heap memory; the Go garbage collector never moves it.
func allocHeap(size int) *HostMemory {
	size = roundUp(size, SmallPageSize)
	raw := make([]byte, size+SmallPageSize)
	off := 0
	if a := int(uintptr(unsafe.Pointer(unsafe.SliceData(raw))) % SmallPageSize); a != 0 {
		off = SmallPageSize - a
	}
	return &HostMemory{mem: raw[off : off+size : off+size], heap: true}
}
