// Package vfio reaches PCI devices from user space through Linux VFIO
// (Documentation/driver-api/vfio.rst): a container (one IOMMU domain) holds
// IOMMU groups, a group gives out device file descriptors, and a device gives
// access to its regions (BAR0 mapped into memory, PCI configuration space),
// its interrupts (eventfds) and its reset. The container maps DMA memory into
// the IOMMU, so it is a dma.Mapper: dma.NewAllocator(container, policy).
//
// A Device satisfies the driver's device seam (ixgbe.Device) structurally:
// Read32 and Write32 are atomic 32-bit loads and stores on the mapped BAR0,
// DMA returns the container's allocator, Name the PCI address.
//
// The package imports dma and its own sysfs helpers only.
package vfio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/vfio/pci"
)

// Options configures a container.
type Options struct {
	// Hugepages is the allocator's policy (default dma.PreferHugepages).
	Hugepages dma.HugepagePolicy
	// IOVABase is where IOVA allocation starts (default DefaultIOVABase,
	// lowered into the IOMMU's valid ranges when it lies beyond them).
	IOVABase uint64
	// Sysfs is the sysfs to read devices from (default pci.System).
	Sysfs *pci.Sysfs
	// DevDir is the VFIO device directory (default "/dev/vfio").
	DevDir string
}

// DefaultIOVABase is the first IOVA handed out: 64 GiB, inside a 39-bit
// (512 GiB) IOMMU and above the RAM of the machines verinic runs on, so that
// an IOVA is never mistaken for a physical address.
const DefaultIOVABase = 64 << 30

// IOVARange is an inclusive range of IOVAs that the IOMMU can translate.
type IOVARange struct{ Start, End uint64 }

type ioMapping struct {
	iova, size uint64
	vaddr      uintptr
}

// Container is a VFIO container: one IOMMU domain shared by every device
// opened through it, so every device can reach every DMA mapping (as with
// ixy's single container). It implements dma.Mapper. It is safe for
// concurrent use.
type Container struct {
	opts   Options
	sys    *pci.Sysfs
	devDir string

	mu        sync.Mutex
	fd        int
	iommuType int // 0 until the first group joins
	groups    map[int]*group
	devices   map[string]*Device
	ranges    []IOVARange // valid IOVA ranges, from VFIO_IOMMU_GET_INFO
	pgsizes   uint64
	maps      []ioMapping // sorted by iova
	alloc     *dma.Allocator
	closed    bool
	// shared marks the process-wide container of Open, which closes itself
	// with its last device.
	shared bool
}

// group is an open IOMMU group attached to the container.
type group struct {
	num  int
	fd   int
	refs int // open devices
}

// NewContainer opens /dev/vfio/vfio and checks the API version and the type-1
// IOMMU extension.
func NewContainer(opts Options) (*Container, error) {
	if opts.Sysfs == nil {
		opts.Sysfs = pci.System
	}
	if opts.DevDir == "" {
		opts.DevDir = "/dev/vfio"
	}
	if opts.IOVABase == 0 {
		opts.IOVABase = DefaultIOVABase
	}
	path := filepath.Join(opts.DevDir, "vfio")
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT):
			if !opts.Sysfs.IOMMUEnabled() {
				return nil, fmt.Errorf("vfio: %s does not exist (%w) and %w: %s", path, ErrNoVFIO, ErrNoIOMMU, hintIOMMU)
			}
			return nil, fmt.Errorf("vfio: %s does not exist: %w: %s", path, ErrNoVFIO, hintVFIO)
		case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
			return nil, fmt.Errorf("vfio: open %s: %w: run as root or give your user access to /dev/vfio", path, ErrPermission)
		}
		return nil, fmt.Errorf("vfio: open %s: %w", path, err)
	}
	c := &Container{opts: opts, sys: opts.Sysfs, devDir: opts.DevDir, fd: fd,
		groups: make(map[int]*group), devices: make(map[string]*Device)}
	v, err := ioctlInt(fd, ioctlGetAPIVersion, 0)
	if err != nil || v != APIVersion {
		unix.Close(fd)
		return nil, fmt.Errorf("vfio: API version %d (%v), want %d: %w", v, err, APIVersion, ErrUnsupported)
	}
	if !c.hasExtension(Type1IOMMU) && !c.hasExtension(Type1v2IOMMU) {
		unix.Close(fd)
		return nil, fmt.Errorf("vfio: the container supports no type-1 IOMMU (VFIO_CHECK_EXTENSION): %w; %s", ErrUnsupported, hintIOMMU)
	}
	return c, nil
}

// hasExtension asks VFIO_CHECK_EXTENSION.
func (c *Container) hasExtension(ext int) bool {
	r, err := ioctlInt(c.fd, ioctlCheckExtension, uintptr(ext))
	return err == nil && r == 1
}

// HasExtension reports whether the container supports an extension
// (Type1IOMMU, Type1v2IOMMU, NoIOMMU).
func (c *Container) HasExtension(ext int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	return c.hasExtension(ext)
}

// IOMMUType returns the IOMMU type set on the container (0 before the first
// device is opened).
func (c *Container) IOMMUType() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.iommuType
}

// IOVARanges returns the IOVA ranges the IOMMU can translate (known once a
// device is open).
func (c *Container) IOVARanges() []IOVARange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]IOVARange(nil), c.ranges...)
}

// attachGroup opens an IOMMU group (once per container), checks that it is
// viable and adds it to the container; the first group also sets the IOMMU
// type. c.mu is held.
func (c *Container) attachGroup(num int) (*group, error) {
	if g, ok := c.groups[num]; ok {
		return g, nil
	}
	path := filepath.Join(c.devDir, strconv.Itoa(num))
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT):
			return nil, fmt.Errorf("%s does not exist: no device of IOMMU group %d is bound to vfio-pci: %w", path, num, ErrNotBound)
		case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
			return nil, fmt.Errorf("open %s: %w: run as root, or give your user the group file (chown $USER %s) and a large enough ulimit -l", path, ErrPermission, path)
		case errors.Is(err, unix.EBUSY):
			if heldInProcess(num) {
				return nil, fmt.Errorf("open %s: IOMMU group %d is already held by another container of this process (%w): open the group's devices through one container (vfio.Open shares one)", path, num, ErrBusy)
			}
			return nil, fmt.Errorf("open %s: IOMMU group %d is in use by another process (%w): a VFIO group can be held by one process at a time; stop the other program", path, num, ErrBusy)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	status := groupStatus{Argsz: uint32(unsafe.Sizeof(groupStatus{}))}
	if _, err := ioctlPtr(fd, ioctlGroupGetStatus, unsafe.Pointer(&status)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("VFIO_GROUP_GET_STATUS on group %d: %w", num, err)
	}
	if status.Flags&groupFlagsViable == 0 {
		unix.Close(fd)
		return nil, groupNotViable(c.sys, num)
	}
	cfd := int32(c.fd)
	if _, err := ioctlPtr(fd, ioctlGroupSetContainer, unsafe.Pointer(&cfd)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("VFIO_GROUP_SET_CONTAINER for group %d: %w", num, err)
	}
	if c.iommuType == 0 {
		// The IOMMU type can be set only once a group is in the container.
		typ := Type1v2IOMMU
		if !c.hasExtension(typ) {
			typ = Type1IOMMU
		}
		if _, err := ioctlInt(c.fd, ioctlSetIOMMU, uintptr(typ)); err != nil {
			ioctlInt(fd, ioctlGroupUnsetContainer, 0)
			unix.Close(fd)
			return nil, fmt.Errorf("VFIO_SET_IOMMU type %d: %w", typ, err)
		}
		c.iommuType = typ
		if err := c.readIOMMUInfo(num); err != nil {
			ioctlInt(fd, ioctlGroupUnsetContainer, 0)
			unix.Close(fd)
			c.iommuType = 0
			return nil, err
		}
	}
	g := &group{num: num, fd: fd}
	c.groups[num] = g
	holdGroup(num, true)
	return g, nil
}

// readIOMMUInfo learns the page sizes and the valid IOVA ranges
// (VFIO_IOMMU_GET_INFO with the IOVA-range capability, Linux 5.4+). Where
// the capability is absent it falls back to the Intel IOMMU's address width
// from sysfs, and to 39 bits (the narrowest VT-d width) when that is unknown.
func (c *Container) readIOMMUInfo(groupNum int) error {
	buf := make([]byte, 4096)
	info := (*iommuType1Info)(unsafe.Pointer(&buf[0]))
	info.Argsz = uint32(len(buf))
	if _, err := ioctlPtr(c.fd, ioctlIOMMUGetInfo, unsafe.Pointer(&buf[0])); err != nil {
		return fmt.Errorf("VFIO_IOMMU_GET_INFO: %w", err)
	}
	if info.Flags&iommuInfoPgsizes != 0 {
		c.pgsizes = info.IOVAPgsizes
	}
	ranges, err := parseIOVARanges(buf, info)
	if err != nil {
		return err
	}
	if len(ranges) == 0 {
		bits := 39
		if devs, err := c.sys.GroupDevices(groupNum); err == nil && len(devs) > 0 {
			if b, ok := c.sys.IOMMUAddressWidth(devs[0].Address); ok {
				bits = b
			}
		}
		ranges = []IOVARange{{Start: 0, End: 1<<bits - 1}}
	}
	c.ranges = ranges
	return nil
}

// parseIOVARanges walks the capability chain of a VFIO_IOMMU_GET_INFO reply
// for the IOVA-range capability.
func parseIOVARanges(buf []byte, info *iommuType1Info) ([]IOVARange, error) {
	if info.Flags&iommuInfoCaps == 0 || info.CapOffset == 0 {
		return nil, nil
	}
	if int(info.Argsz) > len(buf) {
		return nil, fmt.Errorf("VFIO_IOMMU_GET_INFO needs %d bytes for its capabilities, more than %d", info.Argsz, len(buf))
	}
	hdrSize := uint32(unsafe.Sizeof(infoCapHeader{}))
	for off, hops := info.CapOffset, 0; off != 0 && hops < 64; hops++ {
		if off+hdrSize > uint32(len(buf)) || off%4 != 0 {
			return nil, fmt.Errorf("VFIO_IOMMU_GET_INFO: capability at %d lies outside the %d-byte reply", off, len(buf))
		}
		h := (*infoCapHeader)(unsafe.Pointer(&buf[off]))
		if h.ID == iommuCapIOVARange {
			capSize := uint32(unsafe.Sizeof(capIOVARange{}))
			if off+capSize > uint32(len(buf)) {
				return nil, errors.New("VFIO_IOMMU_GET_INFO: truncated IOVA-range capability")
			}
			cp := (*capIOVARange)(unsafe.Pointer(&buf[off]))
			rs := uint32(unsafe.Sizeof(iovaRange{}))
			if uint64(off)+uint64(capSize)+uint64(cp.NrIOVAs)*uint64(rs) > uint64(len(buf)) {
				return nil, fmt.Errorf("VFIO_IOMMU_GET_INFO: %d IOVA ranges overrun the reply", cp.NrIOVAs)
			}
			out := make([]IOVARange, 0, cp.NrIOVAs)
			for i := uint32(0); i < cp.NrIOVAs; i++ {
				r := (*iovaRange)(unsafe.Pointer(&buf[off+capSize+i*rs]))
				if r.End >= r.Start {
					out = append(out, IOVARange{Start: r.Start, End: r.End})
				}
			}
			sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
			return out, nil
		}
		off = h.Next
	}
	return nil, nil
}

// MapDMA implements dma.Mapper: it maps mem (page-aligned, outside the Go
// heap, valid until unmapped) readable and writable by every device of the
// container at an IOVA it allocates inside the IOMMU's valid ranges, aligned
// to 2 MiB (so a hugepage keeps its alignment and the IOMMU can use a large
// page). It needs an open device, which sets up the IOMMU.
func (c *Container) MapDMA(mem []byte) (uint64, error) {
	if len(mem) == 0 {
		return 0, errors.New("vfio: map of an empty range")
	}
	vaddr := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	size := uint64(len(mem))
	if vaddr%dma.SmallPageSize != 0 || size%dma.SmallPageSize != 0 {
		return 0, fmt.Errorf("vfio: map %d bytes at %#x: address and size must be multiples of 4 KiB", size, vaddr)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return 0, err
	}
	iova, err := c.allocIOVA(size, dma.HugepageSize)
	if err != nil {
		return 0, err
	}
	if err := c.mapAt(vaddr, iova, size); err != nil {
		return 0, err
	}
	return iova, nil
}

// MapDMAAt maps mem at a chosen IOVA (tests and special layouts). The range
// must lie in the IOMMU's valid ranges and not overlap another mapping.
func (c *Container) MapDMAAt(mem []byte, iova uint64) error {
	if len(mem) == 0 {
		return errors.New("vfio: map of an empty range")
	}
	vaddr := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	size := uint64(len(mem))
	if vaddr%dma.SmallPageSize != 0 || size%dma.SmallPageSize != 0 || iova%dma.SmallPageSize != 0 {
		return fmt.Errorf("vfio: map %d bytes at %#x to IOVA %#x: all must be multiples of 4 KiB", size, vaddr, iova)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if !c.inRanges(iova, size) {
		return fmt.Errorf("vfio: IOVA range %#x+%#x lies outside the IOMMU's valid ranges %v", iova, size, c.ranges)
	}
	if c.overlaps(iova, size) {
		return fmt.Errorf("vfio: IOVA range %#x+%#x overlaps an existing mapping", iova, size)
	}
	return c.mapAt(vaddr, iova, size)
}

func (c *Container) usable() error {
	if c.closed {
		return errors.New("vfio: container is closed")
	}
	if c.iommuType == 0 {
		return errors.New("vfio: the container has no IOMMU yet: open a device first")
	}
	return nil
}

func (c *Container) mapAt(vaddr uintptr, iova, size uint64) error {
	m := dmaMap{Argsz: uint32(unsafe.Sizeof(dmaMap{})), Flags: dmaMapFlagRead | dmaMapFlagWrite,
		Vaddr: uint64(vaddr), IOVA: iova, Size: size}
	if _, err := ioctlPtr(c.fd, ioctlIOMMUMapDMA, unsafe.Pointer(&m)); err != nil {
		if errors.Is(err, unix.ENOMEM) {
			return fmt.Errorf("vfio: VFIO_IOMMU_MAP_DMA of %d bytes at IOVA %#x: %w (%w): %s", size, iova, err, ErrMemlock, memlockHint())
		}
		if errors.Is(err, unix.ENOSPC) {
			return fmt.Errorf("vfio: VFIO_IOMMU_MAP_DMA at IOVA %#x: %w: the IOMMU's limit on the number of mappings is reached (vfio_iommu_type1 dma_entry_limit); use larger allocations", iova, err)
		}
		return fmt.Errorf("vfio: VFIO_IOMMU_MAP_DMA of %d bytes from %#x at IOVA %#x: %w", size, vaddr, iova, err)
	}
	i := sort.Search(len(c.maps), func(i int) bool { return c.maps[i].iova > iova })
	c.maps = append(c.maps, ioMapping{})
	copy(c.maps[i+1:], c.maps[i:])
	c.maps[i] = ioMapping{iova: iova, size: size, vaddr: vaddr}
	return nil
}

func (c *Container) inRanges(iova, size uint64) bool {
	end := iova + size - 1
	if end < iova {
		return false
	}
	for _, r := range c.ranges {
		if iova >= r.Start && end <= r.End {
			return true
		}
	}
	return false
}

func (c *Container) overlaps(iova, size uint64) bool {
	for _, m := range c.maps {
		if iova < m.iova+m.size && m.iova < iova+size {
			return true
		}
	}
	return false
}

// allocIOVA finds the lowest free, aligned IOVA range of size bytes at or
// above the base (or anywhere valid when nothing above the base fits).
func (c *Container) allocIOVA(size, align uint64) (uint64, error) {
	try := func(from uint64) (uint64, bool) {
		for _, r := range c.ranges {
			start := max(r.Start, from)
			start = (start + align - 1) &^ (align - 1)
			for start >= r.Start && start+size-1 <= r.End && start+size-1 >= start {
				// Skip past any mapping that overlaps [start, start+size).
				moved := false
				for _, m := range c.maps {
					if start < m.iova+m.size && m.iova < start+size {
						start = (m.iova + m.size + align - 1) &^ (align - 1)
						moved = true
						break
					}
				}
				if !moved {
					return start, true
				}
			}
		}
		return 0, false
	}
	if iova, ok := try(c.opts.IOVABase); ok {
		return iova, nil
	}
	if iova, ok := try(0); ok {
		return iova, nil
	}
	return 0, fmt.Errorf("vfio: no free IOVA range of %d bytes in the IOMMU's valid ranges %v", size, c.ranges)
}

// UnmapDMA implements dma.Mapper.
func (c *Container) UnmapDMA(iova, size uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("vfio: container is closed")
	}
	i := sort.Search(len(c.maps), func(i int) bool { return c.maps[i].iova >= iova })
	if i == len(c.maps) || c.maps[i].iova != iova {
		return fmt.Errorf("vfio: unmap of IOVA %#x: not mapped", iova)
	}
	if c.maps[i].size != size {
		return fmt.Errorf("vfio: unmap of IOVA %#x with size %d, mapped with size %d", iova, size, c.maps[i].size)
	}
	u := dmaUnmap{Argsz: uint32(unsafe.Sizeof(dmaUnmap{})), IOVA: iova, Size: size}
	if _, err := ioctlPtr(c.fd, ioctlIOMMUUnmapDMA, unsafe.Pointer(&u)); err != nil {
		return fmt.Errorf("vfio: VFIO_IOMMU_UNMAP_DMA at IOVA %#x: %w", iova, err)
	}
	if u.Size != size {
		return fmt.Errorf("vfio: VFIO_IOMMU_UNMAP_DMA at IOVA %#x unmapped %d bytes, want %d", iova, u.Size, size)
	}
	c.maps = append(c.maps[:i], c.maps[i+1:]...)
	return nil
}

// Mappings returns how many DMA mappings the container holds.
func (c *Container) Mappings() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.maps)
}

// Allocator returns the container's DMA allocator (created on first use):
// its memory is mapped into the container, so every device of the container
// can reach it.
func (c *Container) Allocator() *dma.Allocator {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.alloc == nil {
		c.alloc = dma.NewAllocator(c, c.opts.Hugepages)
	}
	return c.alloc
}

// Close releases the allocator's memory, closes every device and group, and
// the container.
func (c *Container) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	alloc := c.alloc
	devs := make([]*Device, 0, len(c.devices))
	for _, d := range c.devices {
		devs = append(devs, d)
	}
	c.mu.Unlock()
	var errs []error
	if alloc != nil {
		if err := alloc.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range devs {
		if err := d.closeDevice(); err != nil {
			errs = append(errs, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for num, g := range c.groups {
		ioctlInt(g.fd, ioctlGroupUnsetContainer, 0)
		if err := unix.Close(g.fd); err != nil {
			errs = append(errs, fmt.Errorf("vfio: close group %d: %w", num, err))
		}
		holdGroup(num, false)
	}
	c.groups = nil
	c.maps = nil
	c.closed = true
	if err := unix.Close(c.fd); err != nil {
		errs = append(errs, fmt.Errorf("vfio: close container: %w", err))
	}
	return errors.Join(errs...)
}

var (
	sharedMu        sync.Mutex
	sharedContainer *Container

	heldMu sync.Mutex
	held   = map[int]bool{} // IOMMU groups open in some container of this process
)

func holdGroup(num int, on bool) {
	heldMu.Lock()
	defer heldMu.Unlock()
	if on {
		held[num] = true
	} else {
		delete(held, num)
	}
}

func heldInProcess(num int) bool {
	heldMu.Lock()
	defer heldMu.Unlock()
	return held[num]
}

// Open opens a device in the process-wide container that all devices opened
// this way share (one IOMMU domain, as ixy does): their DMA memory comes from
// one allocator and every device can reach all of it. The container closes,
// releasing its DMA memory, when its last device closes.
func Open(address string) (*Device, error) { return OpenWith(address, Options{}) }

// OpenWith is Open with options for the shared container; they take effect
// when the call creates it (the first open, or the first after the last
// device closed).
func OpenWith(address string, opts Options) (*Device, error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedContainer != nil && sharedContainer.isClosed() {
		sharedContainer = nil // closed by hand through Device.Container
	}
	if sharedContainer == nil {
		addr, err := precheck(pci.System, "/dev/vfio", address)
		if err != nil {
			return nil, err
		}
		c, err := NewContainer(opts)
		if err != nil {
			return nil, fmt.Errorf("vfio: open %s: %w", addr, err)
		}
		c.shared = true
		sharedContainer = c
	}
	d, err := sharedContainer.Open(address)
	if err != nil && sharedContainer.openDevices() == 0 {
		sharedContainer.Close()
		sharedContainer = nil
	}
	return d, err
}

func (c *Container) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *Container) openDevices() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.devices)
}

// Check reports, from sysfs and without opening anything, why the device at
// address cannot be opened through VFIO: no such device, no IOMMU, not bound
// to vfio-pci, VFIO not loaded. It returns nil when nothing is known to be
// in the way (the group may still not be viable, which only opening tells).
func Check(address string) error {
	_, err := precheck(pci.System, "/dev/vfio", address)
	return err
}

// precheck explains, from sysfs, why a device cannot be opened through VFIO
// before any VFIO call is made.
func precheck(sys *pci.Sysfs, devDir, address string) (string, error) {
	d, err := sys.Lookup(address)
	if err != nil {
		return "", fmt.Errorf("vfio: open %s: %w", address, err)
	}
	if d.IOMMUGroup < 0 {
		return d.Address, fmt.Errorf("vfio: open %s: the device has no IOMMU group (%w): %s", d.Address, ErrNoIOMMU, hintIOMMU)
	}
	if d.Driver != pci.VFIODriver {
		drv := "no driver"
		if d.Driver != "" {
			drv = "driver " + d.Driver
		}
		return d.Address, fmt.Errorf("vfio: open %s: the device is bound to %s, %w: %s", d.Address, drv, ErrNotBound, notBoundHint(d.Address))
	}
	if _, err := os.Stat(filepath.Join(devDir, "vfio")); errors.Is(err, fs.ErrNotExist) {
		return d.Address, fmt.Errorf("vfio: open %s: %s does not exist: %w: %s", d.Address, filepath.Join(devDir, "vfio"), ErrNoVFIO, hintVFIO)
	}
	return d.Address, nil
}
