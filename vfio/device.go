package vfio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/verinic/verinic/dma"
)

// Region describes one region of a VFIO device (VFIO_DEVICE_GET_REGION_INFO):
// for PCI, BARs 0-5, the expansion ROM and the configuration space.
type Region struct {
	Index  int
	Flags  uint32 // RegionFlag*
	Size   uint64
	Offset uint64 // where the region lies in the device file (index << 40 on vfio-pci)
}

// Mappable reports whether the region can be mmapped.
func (r Region) Mappable() bool { return r.Flags&RegionFlagMmap != 0 }

// Device is a PCI device opened through VFIO, with BAR0 mapped. It
// satisfies the driver's device seam (ixgbe.Device) structurally.
type Device struct {
	c     *Container
	g     *group
	addr  string
	fd    int
	info  deviceInfo
	bar0  []byte
	cfg   Region
	badIO atomic.Uint64

	mu     sync.Mutex // guards irqs and closing
	irqs   *Interrupts
	closed bool
}

// Open opens a device of the container: it checks sysfs first so that every
// failure says what to do, attaches the device's IOMMU group (once), gets the
// device file descriptor, enables bus mastering in the PCI command register
// (vfio-pci leaves it off, and without it the device cannot DMA) and maps
// BAR0. Opening a device that is already open fails with ErrBusy.
func (c *Container) Open(address string) (*Device, error) {
	addr, err := precheck(c.sys, c.devDir, address)
	if err != nil {
		return nil, err
	}
	pd, err := c.sys.Lookup(addr)
	if err != nil {
		return nil, fmt.Errorf("vfio: open %s: %w", addr, err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, fmt.Errorf("vfio: open %s: container is closed", addr)
	}
	if _, open := c.devices[addr]; open {
		c.mu.Unlock()
		return nil, fmt.Errorf("vfio: open %s: the device is already open in this process (%w): close it first, or share the open *vfio.Device", addr, ErrBusy)
	}
	g, err := c.attachGroup(pd.IOMMUGroup)
	if err != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("vfio: open %s: %w", addr, err)
	}
	name, err := unix.BytePtrFromString(addr)
	if err != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("vfio: open %s: %w", addr, err)
	}
	fdr, err := ioctlPtr(g.fd, ioctlGroupGetDeviceFD, unsafe.Pointer(name))
	if err != nil {
		c.releaseGroupLocked(g)
		c.mu.Unlock()
		if errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("vfio: open %s: VFIO_GROUP_GET_DEVICE_FD: %w (%w): another user has the device open", addr, err, ErrBusy)
		}
		return nil, fmt.Errorf("vfio: open %s: VFIO_GROUP_GET_DEVICE_FD: %w", addr, err)
	}
	d := &Device{c: c, g: g, addr: addr, fd: int(fdr)}
	g.refs++
	c.devices[addr] = d
	c.mu.Unlock()

	if err := d.setup(); err != nil {
		d.closeDevice()
		return nil, fmt.Errorf("vfio: open %s: %w", addr, err)
	}
	return d, nil
}

func (d *Device) setup() error {
	d.info = deviceInfo{Argsz: uint32(unsafe.Sizeof(deviceInfo{}))}
	if _, err := ioctlPtr(d.fd, ioctlDeviceGetInfo, unsafe.Pointer(&d.info)); err != nil {
		return fmt.Errorf("VFIO_DEVICE_GET_INFO: %w", err)
	}
	if d.info.Flags&DeviceFlagsPCI == 0 {
		return fmt.Errorf("not a vfio-pci device (flags %#x): %w", d.info.Flags, ErrUnsupported)
	}
	cfg, err := d.RegionInfo(RegionConfig)
	if err != nil {
		return err
	}
	d.cfg = cfg
	if err := d.EnableBusMaster(); err != nil {
		return err
	}
	bar, err := d.RegionInfo(RegionBAR0)
	if err != nil {
		return err
	}
	if bar.Size == 0 || !bar.Mappable() || bar.Flags&(RegionFlagRead|RegionFlagWrite) != RegionFlagRead|RegionFlagWrite {
		return fmt.Errorf("BAR0 (size %d, flags %#x) is not a readable, writable, mappable memory BAR: %w", bar.Size, bar.Flags, ErrUnsupported)
	}
	mem, err := unix.Mmap(d.fd, int64(bar.Offset), int(bar.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap BAR0 (%d bytes at offset %#x): %w", bar.Size, bar.Offset, err)
	}
	d.bar0 = mem
	return nil
}

// Name returns the PCI address.
func (d *Device) Name() string { return d.addr }

// Container returns the container the device belongs to.
func (d *Device) Container() *Container { return d.c }

// IOMMUGroup returns the device's IOMMU group number.
func (d *Device) IOMMUGroup() int { return d.g.num }

// DMA returns the container's allocator: memory every device of the
// container can reach.
func (d *Device) DMA() *dma.Allocator { return d.c.Allocator() }

// Flags returns the VFIO device flags (DeviceFlags*).
func (d *Device) Flags() uint32 { return d.info.Flags }

// NumRegions and NumIRQs return the counts from VFIO_DEVICE_GET_INFO.
func (d *Device) NumRegions() int { return int(d.info.NumRegions) }

// NumIRQs returns the number of interrupt indexes.
func (d *Device) NumIRQs() int { return int(d.info.NumIRQs) }

// BAR0 returns the mapped BAR0 (for tests and diagnostics; use Read32 and
// Write32 to access registers).
func (d *Device) BAR0() []byte { return d.bar0 }

// BadAccesses counts Read32/Write32 calls with an offset outside BAR0 or not
// 4-byte aligned (reads return all ones, writes are dropped).
func (d *Device) BadAccesses() uint64 { return d.badIO.Load() }

func (d *Device) reg(off uint32) *uint32 {
	if off&3 != 0 || uint64(off)+4 > uint64(len(d.bar0)) {
		d.badIO.Add(1)
		return nil
	}
	return (*uint32)(unsafe.Pointer(&d.bar0[off]))
}

// Read32 is an atomic 32-bit load from BAR0 at byte offset off. An offset
// outside BAR0, or a device that is closed, reads all ones (as a removed PCIe
// device does).
func (d *Device) Read32(off uint32) uint32 {
	p := d.reg(off)
	if p == nil {
		return 0xFFFFFFFF
	}
	return atomic.LoadUint32(p)
}

// Write32 is an atomic 32-bit store to BAR0 at byte offset off. It is
// ordered after every memory write that precedes it (descriptors before a
// tail write); see mmioStore32 for why it is not sync/atomic's store.
func (d *Device) Write32(off uint32, v uint32) {
	if p := d.reg(off); p != nil {
		mmioStore32(p, v)
	}
}

// RegionInfo asks VFIO_DEVICE_GET_REGION_INFO about one region.
func (d *Device) RegionInfo(index int) (Region, error) {
	ri := regionInfo{Argsz: uint32(unsafe.Sizeof(regionInfo{})), Index: uint32(index)}
	if _, err := ioctlPtr(d.fd, ioctlDeviceGetRegionInfo, unsafe.Pointer(&ri)); err != nil {
		return Region{}, fmt.Errorf("VFIO_DEVICE_GET_REGION_INFO index %d: %w", index, err)
	}
	return Region{Index: index, Flags: ri.Flags, Size: ri.Size, Offset: ri.Offset}, nil
}

// ReadRegion reads len(buf) bytes at off of a region with pread on the
// device file (the slow path; BAR0 is also mapped).
func (d *Device) ReadRegion(index int, off uint64, buf []byte) error {
	r, err := d.RegionInfo(index)
	if err != nil {
		return err
	}
	if off+uint64(len(buf)) > r.Size {
		return fmt.Errorf("read of %d bytes at %#x past the end of region %d (%d bytes)", len(buf), off, index, r.Size)
	}
	n, err := unix.Pread(d.fd, buf, int64(r.Offset+off))
	if err != nil {
		return fmt.Errorf("pread region %d at %#x: %w", index, off, err)
	}
	if n != len(buf) {
		return fmt.Errorf("pread region %d at %#x: %d of %d bytes", index, off, n, len(buf))
	}
	return nil
}

// WriteRegion writes buf at off of a region with pwrite.
func (d *Device) WriteRegion(index int, off uint64, buf []byte) error {
	r, err := d.RegionInfo(index)
	if err != nil {
		return err
	}
	if off+uint64(len(buf)) > r.Size {
		return fmt.Errorf("write of %d bytes at %#x past the end of region %d (%d bytes)", len(buf), off, index, r.Size)
	}
	n, err := unix.Pwrite(d.fd, buf, int64(r.Offset+off))
	if err != nil {
		return fmt.Errorf("pwrite region %d at %#x: %w", index, off, err)
	}
	if n != len(buf) {
		return fmt.Errorf("pwrite region %d at %#x: %d of %d bytes", index, off, n, len(buf))
	}
	return nil
}

// ReadConfig reads PCI configuration space (little-endian, as PCI is).
func (d *Device) ReadConfig(off uint64, buf []byte) error {
	if off+uint64(len(buf)) > d.cfg.Size {
		return fmt.Errorf("config read of %d bytes at %#x past the end (%d bytes)", len(buf), off, d.cfg.Size)
	}
	n, err := unix.Pread(d.fd, buf, int64(d.cfg.Offset+off))
	if err != nil || n != len(buf) {
		return fmt.Errorf("config read at %#x: %d bytes, %v", off, n, err)
	}
	return nil
}

// WriteConfig writes PCI configuration space.
func (d *Device) WriteConfig(off uint64, buf []byte) error {
	if off+uint64(len(buf)) > d.cfg.Size {
		return fmt.Errorf("config write of %d bytes at %#x past the end (%d bytes)", len(buf), off, d.cfg.Size)
	}
	n, err := unix.Pwrite(d.fd, buf, int64(d.cfg.Offset+off))
	if err != nil || n != len(buf) {
		return fmt.Errorf("config write at %#x: %d bytes, %v", off, n, err)
	}
	return nil
}

// ReadConfig16 reads a 16-bit configuration register.
func (d *Device) ReadConfig16(off uint64) (uint16, error) {
	var b [2]byte
	if err := d.ReadConfig(off, b[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b[:]), nil
}

// WriteConfig16 writes a 16-bit configuration register.
func (d *Device) WriteConfig16(off uint64, v uint16) error {
	var b [2]byte
	binary.LittleEndian.PutUint16(b[:], v)
	return d.WriteConfig(off, b[:])
}

// IDs returns the vendor and device IDs from configuration space.
func (d *Device) IDs() (vendor, device uint16, err error) {
	if vendor, err = d.ReadConfig16(pciVendorID); err != nil {
		return 0, 0, err
	}
	device, err = d.ReadConfig16(pciDeviceID)
	return vendor, device, err
}

// Command returns the PCI command register.
func (d *Device) Command() (uint16, error) { return d.ReadConfig16(pciCommand) }

// EnableBusMaster sets Bus Master Enable (and Memory Space Enable) in the PCI
// command register (PCI Local Bus 3.0, 6.2.2), which lets the device start
// DMA.
func (d *Device) EnableBusMaster() error {
	cmd, err := d.Command()
	if err != nil {
		return fmt.Errorf("enable bus mastering: %w", err)
	}
	want := cmd | pciCommandMaster | pciCommandMemory
	if want == cmd {
		return nil
	}
	if err := d.WriteConfig16(pciCommand, want); err != nil {
		return fmt.Errorf("enable bus mastering: %w", err)
	}
	if got, err := d.Command(); err != nil || got&pciCommandMaster == 0 {
		return fmt.Errorf("enable bus mastering: command register reads %#x after writing %#x (%v)", got, want, err)
	}
	return nil
}

// DisableBusMaster clears Bus Master Enable: the device can no longer DMA.
func (d *Device) DisableBusMaster() error {
	cmd, err := d.Command()
	if err != nil {
		return err
	}
	return d.WriteConfig16(pciCommand, cmd&^pciCommandMaster)
}

// Reset resets the device (VFIO_DEVICE_RESET: a function-level or other
// reset the kernel knows for it). Bus mastering is enabled again afterwards.
func (d *Device) Reset() error {
	if d.info.Flags&DeviceFlagsReset == 0 {
		return fmt.Errorf("vfio: reset %s: the kernel knows no reset method for this device: %w", d.addr, ErrUnsupported)
	}
	if _, err := ioctlInt(d.fd, ioctlDeviceReset, 0); err != nil {
		return fmt.Errorf("vfio: reset %s: VFIO_DEVICE_RESET: %w", d.addr, err)
	}
	if err := d.EnableBusMaster(); err != nil {
		return fmt.Errorf("vfio: reset %s: %w", d.addr, err)
	}
	return nil
}

// Close disables interrupts and bus mastering, unmaps BAR0 and closes the
// device. A device of the shared container (Open) also closes the container
// when it is the last one, releasing its DMA memory. No other goroutine may
// be using the device's registers while it closes (the mapping goes away).
func (d *Device) Close() error {
	err := d.closeDevice()
	if d.c.shared {
		sharedMu.Lock()
		if sharedContainer == d.c && d.c.openDevices() == 0 {
			if cerr := d.c.Close(); err == nil {
				err = cerr
			}
			sharedContainer = nil
		}
		sharedMu.Unlock()
	}
	return err
}

func (d *Device) closeDevice() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	irqs := d.irqs
	d.irqs = nil
	d.mu.Unlock()
	var errs []error
	if irqs != nil {
		if err := irqs.close(); err != nil {
			errs = append(errs, err)
		}
	}
	if d.cfg.Size != 0 {
		d.DisableBusMaster() // best effort: stop DMA before the memory goes
	}
	if d.bar0 != nil {
		bar := d.bar0
		d.bar0 = nil
		if err := unix.Munmap(bar); err != nil {
			errs = append(errs, fmt.Errorf("munmap BAR0: %w", err))
		}
	}
	if err := unix.Close(d.fd); err != nil {
		errs = append(errs, fmt.Errorf("close device: %w", err))
	}
	c := d.c
	c.mu.Lock()
	delete(c.devices, d.addr)
	d.g.refs--
	c.releaseGroupLocked(d.g)
	c.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("vfio: close %s: %w", d.addr, err)
	}
	return nil
}

// releaseGroupLocked detaches a group with no open devices, unless it is
// the container's last group: that one holds the IOMMU (and with it every
// DMA mapping) until the container closes.
func (c *Container) releaseGroupLocked(g *group) {
	if g.refs > 0 || len(c.groups) <= 1 || c.closed {
		return
	}
	ioctlInt(g.fd, ioctlGroupUnsetContainer, 0)
	unix.Close(g.fd)
	delete(c.groups, g.num)
	holdGroup(g.num, false)
}
