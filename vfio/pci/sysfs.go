// Package pci reads and changes the PCI state that VFIO depends on, through
// Linux sysfs: it lists network devices with their driver, IOMMU group, NUMA
// node and kernel interfaces, and binds devices to vfio-pci and back.
//
// Every function works on a Sysfs, whose root is /sys on a real system and a
// directory tree built by the tests otherwise.
package pci

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// VFIODriver is the name of the kernel's VFIO PCI driver.
const VFIODriver = "vfio-pci"

// ClassNetwork is the PCI base class of network controllers (PCI Code and ID
// Assignment Specification, class 02h).
const ClassNetwork = 0x02

// Sysfs is a view of the kernel's sysfs, rooted at Root ("/sys").
type Sysfs struct {
	Root string
	// InterfaceAddrs returns the addresses of a kernel network interface. It
	// defaults to the live system's (net.InterfaceByName); tests of a fake
	// tree replace it.
	InterfaceAddrs func(name string) ([]string, error)
	// StateDir keeps the driver each bound device came from, so that Unbind
	// can give it back ("/run/verinic/bind" by default).
	StateDir string
}

// System is the running system's sysfs.
var System = &Sysfs{Root: "/sys"}

func (s *Sysfs) path(parts ...string) string {
	return filepath.Join(append([]string{s.Root}, parts...)...)
}

func (s *Sysfs) stateDir() string {
	if s.StateDir != "" {
		return s.StateDir
	}
	return "/run/verinic/bind"
}

// Interface is a kernel network interface of a device.
type Interface struct {
	Name      string   `json:"name"`
	Up        bool     `json:"up"`
	Addresses []string `json:"addresses,omitempty"`
}

// Device is what sysfs says about one PCI function.
type Device struct {
	Address    string      `json:"address"` // 0000:03:00.0
	ID         string      `json:"id"`      // vendor:device, "8086:10fb"
	Vendor     uint16      `json:"vendor"`
	DeviceID   uint16      `json:"device"`
	Class      uint32      `json:"class"`  // 24-bit class code: base, sub, prog-if
	Driver     string      `json:"driver"` // "" when no driver is bound
	Override   string      `json:"driver_override,omitempty"`
	IOMMUGroup int         `json:"iommu_group"` // -1 when the device has none (no IOMMU)
	NUMANode   int         `json:"numa_node"`   // -1 when the platform does not say
	Interfaces []Interface `json:"interfaces,omitempty"`
	Supported  bool        `json:"supported"` // an 82599 the driver supports
	Model      string      `json:"model,omitempty"`
}

// VendorDevice formats the ID pair as lspci does ("8086:10fb").
func (d *Device) VendorDevice() string { return fmt.Sprintf("%04x:%04x", d.Vendor, d.DeviceID) }

// IsNetwork reports whether the device is a network controller.
func (d *Device) IsNetwork() bool { return d.Class>>16 == ClassNetwork }

var addressPattern = regexp.MustCompile(`^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$`)

// ParseAddress checks a PCI address and returns it in the kernel's canonical
// form, with the domain ("03:00.0" becomes "0000:03:00.0").
func ParseAddress(s string) (string, error) {
	m := addressPattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return "", fmt.Errorf("%q is not a PCI address (expected DDDD:BB:DD.F, e.g. 0000:03:00.0)", s)
	}
	dev, _ := strconv.ParseUint(m[3], 16, 8)
	if dev > 0x1f {
		return "", fmt.Errorf("%q is not a PCI address: device %#x exceeds 0x1f", s, dev)
	}
	domain := m[1]
	if domain == "" {
		domain = "0000"
	}
	return strings.ToLower(fmt.Sprintf("%s:%s:%s.%s", domain, m[2], m[3], m[4])), nil
}

// IsAddress reports whether s looks like a PCI address.
func IsAddress(s string) bool { _, err := ParseAddress(s); return err == nil }

// ErrNoDevice reports that sysfs has no such PCI device.
var ErrNoDevice = errors.New("no such PCI device")

func (s *Sysfs) readString(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func (s *Sysfs) readHex(p string) (uint64, error) {
	v, err := s.readString(p)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a hexadecimal number", p, v)
	}
	return n, nil
}

// Lookup reads one device.
func (s *Sysfs) Lookup(address string) (*Device, error) {
	addr, err := ParseAddress(address)
	if err != nil {
		return nil, err
	}
	dir := s.path("bus/pci/devices", addr)
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w (nicctl devices lists the network devices)", addr, ErrNoDevice)
		}
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	d := &Device{Address: addr, IOMMUGroup: -1, NUMANode: -1}
	vendor, err := s.readHex(filepath.Join(dir, "vendor"))
	if err != nil {
		return nil, fmt.Errorf("%s: read vendor: %w", addr, err)
	}
	device, err := s.readHex(filepath.Join(dir, "device"))
	if err != nil {
		return nil, fmt.Errorf("%s: read device: %w", addr, err)
	}
	class, err := s.readHex(filepath.Join(dir, "class"))
	if err != nil {
		return nil, fmt.Errorf("%s: read class: %w", addr, err)
	}
	d.Vendor, d.DeviceID, d.Class = uint16(vendor), uint16(device), uint32(class)
	d.ID = d.VendorDevice()
	d.Model, d.Supported = Supported82599(d.Vendor, d.DeviceID)
	if link, err := os.Readlink(filepath.Join(dir, "driver")); err == nil {
		d.Driver = filepath.Base(link)
	}
	if v, err := s.readString(filepath.Join(dir, "driver_override")); err == nil && v != "(null)" {
		d.Override = v
	}
	if link, err := os.Readlink(filepath.Join(dir, "iommu_group")); err == nil {
		if g, err := strconv.Atoi(filepath.Base(link)); err == nil {
			d.IOMMUGroup = g
		}
	}
	if v, err := s.readString(filepath.Join(dir, "numa_node")); err == nil {
		if n, err := strconv.Atoi(v); err == nil {
			d.NUMANode = n
		}
	}
	d.Interfaces, err = s.interfaces(addr)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// interfaces lists the kernel network interfaces of a device, with their
// state (the IFF_UP bit of flags) and addresses. An interface belongs to the
// device when its class/net/IF/device link resolves to the device or to a
// child of it (virtio-net hangs its interface off a virtioN child).
func (s *Sysfs) interfaces(addr string) ([]Interface, error) {
	devPath, err := filepath.EvalSymlinks(s.path("bus/pci/devices", addr))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	entries, err := os.ReadDir(s.path("class/net"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	var ifs []Interface
	for _, e := range entries {
		target, err := filepath.EvalSymlinks(s.path("class/net", e.Name(), "device"))
		if err != nil || (target != devPath && !strings.HasPrefix(target, devPath+string(filepath.Separator))) {
			continue
		}
		ifc := Interface{Name: e.Name()}
		if flags, err := s.readHex(s.path("class/net", e.Name(), "flags")); err == nil {
			ifc.Up = flags&0x1 != 0 // IFF_UP
		}
		addrs := s.InterfaceAddrs
		if addrs == nil {
			addrs = liveInterfaceAddrs
		}
		if a, err := addrs(e.Name()); err == nil {
			ifc.Addresses = a
		}
		ifs = append(ifs, ifc)
	}
	return ifs, nil
}

func liveInterfaceAddrs(name string) ([]string, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil, err
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out, nil
}

// List returns every PCI device, sorted by address.
func (s *Sysfs) List() ([]Device, error) {
	entries, err := os.ReadDir(s.path("bus/pci/devices"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // no PCI bus (some containers)
		}
		return nil, fmt.Errorf("list PCI devices: %w", err)
	}
	var devs []Device
	for _, e := range entries {
		if !IsAddress(e.Name()) {
			continue
		}
		d, err := s.Lookup(e.Name())
		if err != nil {
			return nil, err
		}
		devs = append(devs, *d)
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i].Address < devs[j].Address })
	return devs, nil
}

// NetworkDevices returns the network-class devices, sorted by address.
func (s *Sysfs) NetworkDevices() ([]Device, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var net []Device
	for _, d := range all {
		if d.IsNetwork() {
			net = append(net, d)
		}
	}
	return net, nil
}

// GroupDevices returns the devices of an IOMMU group, sorted by address.
func (s *Sysfs) GroupDevices(group int) ([]Device, error) {
	entries, err := os.ReadDir(s.path("kernel/iommu_groups", strconv.Itoa(group), "devices"))
	if err != nil {
		return nil, fmt.Errorf("list IOMMU group %d: %w", group, err)
	}
	var devs []Device
	for _, e := range entries {
		d, err := s.Lookup(e.Name())
		if err != nil {
			return nil, err
		}
		devs = append(devs, *d)
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i].Address < devs[j].Address })
	return devs, nil
}

// IOMMUAddressWidth returns the input address width of the Intel IOMMU (VT-d)
// that translates the device's DMA, from the MGAW field of its capability
// register (VT-d 3.0, 11.4.2: bits 21:16, width minus one). ok is false when
// the device sits behind no Intel IOMMU.
func (s *Sysfs) IOMMUAddressWidth(address string) (bits int, ok bool) {
	addr, err := ParseAddress(address)
	if err != nil {
		return 0, false
	}
	c, err := s.readHex(s.path("bus/pci/devices", addr, "iommu/intel-iommu/cap"))
	if err != nil {
		return 0, false
	}
	return int((c>>16)&0x3f) + 1, true
}

// IOMMUEnabled reports whether the kernel has any IOMMU translating DMA: an
// enabled IOMMU gives every PCI device a group under kernel/iommu_groups.
func (s *Sysfs) IOMMUEnabled() bool {
	entries, err := os.ReadDir(s.path("kernel/iommu_groups"))
	return err == nil && len(entries) > 0
}
