package ixgbesim

import (
	"fmt"
	"sync"
	"time"

	"github.com/verinic/verinic/dma"
)

// DomainIOVABase is where a Domain hands out its first IOVA. It is far from
// any plausible host virtual address, so that a driver that puts a host
// pointer in a descriptor faults at once.
const DomainIOVABase = 0x10_0000_0000

// DomainAddressBits is the IOVA width of a Domain (a typical VT-d IOMMU).
const DomainAddressBits = 48

// maxFaults bounds the faults a Domain keeps; later ones are only counted.
const maxFaults = 4096

// DMAOp is the direction of a device memory access.
type DMAOp uint8

const (
	// DMARead: the device reads host memory (descriptor fetch, TX data).
	DMARead DMAOp = iota
	// DMAWrite: the device writes host memory (RX data, write-back).
	DMAWrite
)

// String names the operation.
func (o DMAOp) String() string {
	if o == DMAWrite {
		return "write"
	}
	return "read"
}

// Fault is a device access the IOMMU refused: outside every mapping, or
// crossing the end of one (a DMAR fault on real hardware).
type Fault struct {
	Device string    // NIC name
	IOVA   uint64    // first byte of the access
	Len    int       // bytes
	Op     DMAOp     // read or write
	Dir    uint8     // trace.RX or trace.TX: which engine
	Queue  int       // queue whose engine made the access
	What   string    // "descriptor", "packet data", "head write-back"
	Time   time.Time // device clock
}

func (f Fault) String() string {
	return fmt.Sprintf("%s: DMA %s of %d bytes at IOVA %#x (%s, queue %d) outside the IOMMU mappings", f.Device, f.Op, f.Len, f.IOVA, f.What, f.Queue)
}

// Domain is an IOMMU domain shared by several simulated NICs, like one VFIO
// container: every NIC in it reaches every mapping in it. It implements
// dma.Mapper. Devices translate every DMA through it; an access outside the
// mappings is refused and recorded as a Fault.
type Domain struct {
	space *dma.IOVASpace
	clock *Clock // shared virtual clock for Stepped NICs of this domain

	mu      sync.Mutex
	faults  []Fault
	dropped int
}

// NewDomain returns an empty IOMMU domain handing out IOVAs from
// DomainIOVABase within DomainAddressBits bits.
func NewDomain() *Domain {
	return &Domain{space: dma.NewIOVASpace(DomainIOVABase, DomainAddressBits), clock: NewClock(Stepped)}
}

// MapDMA implements dma.Mapper.
func (d *Domain) MapDMA(mem []byte) (uint64, error) {
	iova, err := d.space.MapDMA(mem)
	if err != nil {
		return 0, fmt.Errorf("ixgbesim: IOMMU map: %w", err)
	}
	return iova, nil
}

// UnmapDMA implements dma.Mapper.
func (d *Domain) UnmapDMA(iova, size uint64) error {
	if err := d.space.UnmapDMA(iova, size); err != nil {
		return fmt.Errorf("ixgbesim: IOMMU unmap: %w", err)
	}
	return nil
}

// Translate returns the host memory behind [iova, iova+n) without
// recording anything (for tests and checkers, not for device accesses).
func (d *Domain) Translate(iova uint64, n int) ([]byte, bool) { return d.space.Translate(iova, n) }

// Mappings returns the number of live mappings.
func (d *Domain) Mappings() int { return d.space.Mappings() }

// Faults returns a copy of the faults recorded so far, in order.
func (d *Domain) Faults() []Fault {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Fault(nil), d.faults...)
}

// FaultCount returns how many faults occurred, including those not kept.
func (d *Domain) FaultCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.faults) + d.dropped
}

// Clock returns the virtual clock shared by the domain's Stepped NICs.
func (d *Domain) Clock() *Clock { return d.clock }

func (d *Domain) recordFault(f Fault) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.faults) >= maxFaults {
		d.dropped++
		return
	}
	d.faults = append(d.faults, f)
}

// access translates a device access through the engine's translation
// cache tc (which remembers the last mapping hit, dma.TranslateCache: a
// map or unmap invalidates it, so the check is as strict as a search). It
// returns the host memory, or records a Fault (stamped with clock's time)
// and returns false; the access is then not performed. The clock is read
// only on a fault: reading a virtual clock takes its lock, which the data
// path must not pay per access.
func (d *Domain) access(tc *dma.TranslateCache, dev string, iova uint64, n int, op DMAOp, dir uint8, q int, what string, clock *Clock) ([]byte, bool) {
	if b, ok := d.space.TranslateCached(tc, iova, n); ok {
		return b, true
	}
	d.fault(dev, iova, n, op, dir, q, what, clock)
	return nil, false
}

func (d *Domain) fault(dev string, iova uint64, n int, op DMAOp, dir uint8, q int, what string, clock *Clock) {
	d.recordFault(Fault{Device: dev, IOVA: iova, Len: n, Op: op, Dir: dir, Queue: q, What: what, Time: clock.Now()})
}
