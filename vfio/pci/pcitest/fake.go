// Package pcitest builds fake sysfs trees for tests of code that reads PCI
// devices: the same files and links the kernel shows, in a temporary
// directory.
package pcitest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/verinic/verinic/vfio/pci"
)

// Dev describes one fake PCI function.
type Dev struct {
	Address  string
	Vendor   uint16
	Device   uint16
	Class    uint32
	Driver   string // "" for none
	Group    int    // -1 for no IOMMU group
	NUMANode int
	Iface    string // kernel interface name, "" for none
	IfaceUp  bool
	IOMMUCap uint64 // intel-iommu/cap register value, 0 for none
}

// Tree is a fake sysfs.
type Tree struct {
	Root  string
	Sysfs *pci.Sysfs
	t     testing.TB
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t testing.TB, p, v string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(v), 0o644))
}

// New builds a tree holding devs. Interface addresses come from addrs
// (interface name to addresses).
func New(t testing.TB, devs []Dev, addrs map[string][]string) *Tree {
	t.Helper()
	root := t.TempDir()
	tr := &Tree{Root: root, t: t}
	must(t, os.MkdirAll(filepath.Join(root, "bus/pci/devices"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "bus/pci/drivers"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "class/net"), 0o755))
	write(t, filepath.Join(root, "bus/pci/drivers_probe"), "")
	for _, d := range devs {
		tr.Add(d)
	}
	tr.Sysfs = &pci.Sysfs{
		Root:     root,
		StateDir: filepath.Join(root, "run-verinic-bind"),
		InterfaceAddrs: func(name string) ([]string, error) {
			return addrs[name], nil
		},
	}
	return tr
}

// Driver makes sure a driver directory with bind and unbind files exists.
func (tr *Tree) Driver(name string) {
	dir := filepath.Join(tr.Root, "bus/pci/drivers", name)
	write(tr.t, filepath.Join(dir, "bind"), "")
	write(tr.t, filepath.Join(dir, "unbind"), "")
}

// Add adds one device.
func (tr *Tree) Add(d Dev) {
	t := tr.t
	dir := filepath.Join(tr.Root, "devices/pci0000:00", d.Address)
	write(t, filepath.Join(dir, "vendor"), fmt.Sprintf("0x%04x\n", d.Vendor))
	write(t, filepath.Join(dir, "device"), fmt.Sprintf("0x%04x\n", d.Device))
	write(t, filepath.Join(dir, "class"), fmt.Sprintf("0x%06x\n", d.Class))
	write(t, filepath.Join(dir, "numa_node"), strconv.Itoa(d.NUMANode)+"\n")
	write(t, filepath.Join(dir, "driver_override"), "(null)\n")
	must(t, os.Symlink(dir, filepath.Join(tr.Root, "bus/pci/devices", d.Address)))
	if d.Driver != "" {
		tr.SetDriver(d.Address, d.Driver)
	}
	if d.Group >= 0 {
		gdir := filepath.Join(tr.Root, "kernel/iommu_groups", strconv.Itoa(d.Group))
		must(t, os.MkdirAll(filepath.Join(gdir, "devices"), 0o755))
		must(t, os.Symlink(gdir, filepath.Join(dir, "iommu_group")))
		must(t, os.Symlink(dir, filepath.Join(gdir, "devices", d.Address)))
	}
	if d.IOMMUCap != 0 {
		write(t, filepath.Join(dir, "iommu/intel-iommu/cap"), fmt.Sprintf("%x\n", d.IOMMUCap))
	}
	if d.Iface != "" {
		ndir := filepath.Join(dir, "net", d.Iface)
		flags := 0x1002
		if d.IfaceUp {
			flags |= 1
		}
		write(t, filepath.Join(ndir, "flags"), fmt.Sprintf("0x%x\n", flags))
		must(t, os.Symlink(dir, filepath.Join(ndir, "device")))
		must(t, os.Symlink(ndir, filepath.Join(tr.Root, "class/net", d.Iface)))
	}
}

// SetDriver binds a device to a driver in the tree (as the kernel would).
func (tr *Tree) SetDriver(address, driver string) {
	link := filepath.Join(tr.Root, "bus/pci/devices", address, "driver")
	os.Remove(link)
	if driver == "" {
		return
	}
	tr.Driver(driver)
	must(tr.t, os.Symlink(filepath.Join(tr.Root, "bus/pci/drivers", driver), link))
}

// Read returns a file of the tree.
func (tr *Tree) Read(rel string) string {
	b, err := os.ReadFile(filepath.Join(tr.Root, rel))
	if err != nil {
		tr.t.Fatal(err)
	}
	return string(b)
}
