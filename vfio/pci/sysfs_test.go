package pci_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/verinic/verinic/vfio/pci"
	"github.com/verinic/verinic/vfio/pci/pcitest"
)

func fakeTree(t *testing.T) *pcitest.Tree {
	return pcitest.New(t, []pcitest.Dev{
		{Address: "0000:03:00.0", Vendor: 0x8086, Device: 0x10fb, Class: 0x020000, Driver: "ixgbe", Group: 5, NUMANode: 0, Iface: "eth1", IfaceUp: true},
		{Address: "0000:03:00.1", Vendor: 0x8086, Device: 0x10fb, Class: 0x020000, Driver: "vfio-pci", Group: 5, NUMANode: 0},
		{Address: "0000:04:00.0", Vendor: 0x8086, Device: 0x10d3, Class: 0x020000, Driver: "e1000e", Group: 6, NUMANode: 1, Iface: "eth2", IOMMUCap: 0xd2008c22260286},
		{Address: "0000:05:00.0", Vendor: 0x8086, Device: 0x1528, Class: 0x020000, Group: -1, NUMANode: -1},
		{Address: "0000:00:1f.0", Vendor: 0x8086, Device: 0x2918, Class: 0x060100, Driver: "lpc_ich", Group: 7},
	}, map[string][]string{"eth1": {"192.0.2.1/24"}})
}

func TestParseAddress(t *testing.T) {
	good := map[string]string{
		"0000:03:00.0": "0000:03:00.0", "03:00.0": "0000:03:00.0", "0000:AF:1F.7": "0000:af:1f.7", " 0001:00:02.1\n": "0001:00:02.1",
	}
	for in, want := range good {
		got, err := pci.ParseAddress(in)
		if err != nil || got != want {
			t.Errorf("ParseAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "sim", "0000:03:00", "0000:03:00.8", "0000:03:20.0", "00:03:00.0.0", "g000:03:00.0", "eth0"} {
		if got, err := pci.ParseAddress(bad); err == nil {
			t.Errorf("ParseAddress(%q) = %q, want an error", bad, got)
		}
	}
}

func TestSupported82599(t *testing.T) {
	// The IDs of Linux's ixgbe_type.h IXGBE_DEV_ID_82599*: physical functions only.
	for _, id := range []uint16{0x10f7, 0x1514, 0x1517, 0x10f8, 0x10f9, 0x10fb, 0x152a, 0x1529, 0x1507, 0x154d, 0x154a, 0x154f, 0x1557, 0x1558, 0x10fc, 0x151c} {
		if _, ok := pci.Supported82599(0x8086, id); !ok {
			t.Errorf("8086:%04x should be supported", id)
		}
	}
	if n := len(pci.Supported82599IDs()); n != 16 {
		t.Errorf("%d supported IDs, want 16", n)
	}
	for _, id := range []uint16{0x10ed, 0x152e, 0x10d3, 0x1528, 0x10c6} { // VFs, e1000e, X540, 82598
		if _, ok := pci.Supported82599(0x8086, id); ok {
			t.Errorf("8086:%04x should not be supported", id)
		}
	}
	if _, ok := pci.Supported82599(0x1af4, 0x10fb); ok {
		t.Error("a non-Intel vendor with an 82599 device ID should not be supported")
	}
}

func TestNetworkDevices(t *testing.T) {
	tr := fakeTree(t)
	devs, err := tr.Sysfs.NetworkDevices()
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, d := range devs {
		addrs = append(addrs, d.Address)
	}
	if got := strings.Join(addrs, " "); got != "0000:03:00.0 0000:03:00.1 0000:04:00.0 0000:05:00.0" {
		t.Fatalf("network devices %s", got)
	}
	d := devs[0]
	if d.VendorDevice() != "8086:10fb" || d.Driver != "ixgbe" || d.IOMMUGroup != 5 || d.NUMANode != 0 || !d.Supported || d.Model == "" {
		t.Errorf("03:00.0 read as %+v", d)
	}
	if len(d.Interfaces) != 1 || d.Interfaces[0].Name != "eth1" || !d.Interfaces[0].Up || d.Interfaces[0].Addresses[0] != "192.0.2.1/24" {
		t.Errorf("03:00.0 interfaces %+v", d.Interfaces)
	}
	e := devs[2]
	if e.Supported || e.Driver != "e1000e" || e.NUMANode != 1 || len(e.Interfaces) != 1 || e.Interfaces[0].Up {
		t.Errorf("04:00.0 read as %+v", e)
	}
	if devs[3].IOMMUGroup != -1 || devs[3].Driver != "" {
		t.Errorf("05:00.0 read as %+v", devs[3])
	}
	if bits, ok := tr.Sysfs.IOMMUAddressWidth("0000:04:00.0"); !ok || bits != 39 {
		t.Errorf("IOMMU address width %d %v, want 39 (MGAW 38 in cap bits 21:16)", bits, ok)
	}
	if _, ok := tr.Sysfs.IOMMUAddressWidth("0000:03:00.0"); ok {
		t.Error("a device without intel-iommu/cap has no known address width")
	}
	if _, err := tr.Sysfs.Lookup("0000:09:00.0"); !errors.Is(err, pci.ErrNoDevice) {
		t.Errorf("lookup of a missing device: %v", err)
	}
	g, err := tr.Sysfs.GroupDevices(5)
	if err != nil || len(g) != 2 || g[0].Address != "0000:03:00.0" || g[1].Driver != "vfio-pci" {
		t.Errorf("group 5: %+v, %v", g, err)
	}
}

func TestBindRefusesBusyInterface(t *testing.T) {
	tr := fakeTree(t)
	tr.Driver("vfio-pci")
	_, err := tr.Sysfs.Bind("03:00.0", false)
	if !errors.Is(err, pci.ErrInterfaceInUse) {
		t.Fatalf("bind of a device whose interface is up: %v", err)
	}
	for _, want := range []string{"eth1", "up", "192.0.2.1/24", "--force", "ip link set eth1 down"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if got := tr.Read("bus/pci/devices/0000:03:00.0/driver_override"); got != "(null)\n" {
		t.Errorf("a refused bind wrote driver_override %q", got)
	}
}

func TestBindWritesSysfs(t *testing.T) {
	tr := fakeTree(t)
	tr.Driver("vfio-pci")
	// The fake kernel does not act on the writes, so Bind reports that
	// vfio-pci did not take the device; the writes themselves are checked.
	_, err := tr.Sysfs.Bind("0000:03:00.0", true)
	if err == nil || !strings.Contains(err.Error(), "did not take") {
		t.Fatalf("bind: %v", err)
	}
	if got := tr.Read("bus/pci/devices/0000:03:00.0/driver_override"); got != "vfio-pci" {
		t.Errorf("driver_override = %q", got)
	}
	if got := tr.Read("bus/pci/drivers/ixgbe/unbind"); got != "0000:03:00.0" {
		t.Errorf("ixgbe/unbind = %q", got)
	}
	if got := tr.Read("bus/pci/drivers_probe"); got != "0000:03:00.0" {
		t.Errorf("drivers_probe = %q", got)
	}
	if got := tr.Read("run-verinic-bind/0000:03:00.0"); got != "ixgbe\n" {
		t.Errorf("remembered driver %q", got)
	}

	// As the kernel would have done: the device is now vfio-pci's.
	tr.SetDriver("0000:03:00.0", "vfio-pci")
	_, err = tr.Sysfs.Unbind("0000:03:00.0")
	if err == nil || !strings.Contains(err.Error(), "bound to ixgbe before") {
		t.Fatalf("unbind: %v", err)
	}
	if got := tr.Read("bus/pci/drivers/vfio-pci/unbind"); got != "0000:03:00.0" {
		t.Errorf("vfio-pci/unbind = %q", got)
	}
	if got := tr.Read("bus/pci/devices/0000:03:00.0/driver_override"); got != "\n" {
		t.Errorf("driver_override not cleared: %q", got)
	}
	if got := tr.Read("bus/pci/drivers/ixgbe/bind"); got != "0000:03:00.0" {
		t.Errorf("ixgbe/bind = %q: the device was not given back to its driver", got)
	}
}

func TestBindAlreadyBoundAndErrors(t *testing.T) {
	tr := fakeTree(t)
	res, err := tr.Sysfs.Bind("0000:03:00.1", false)
	if err != nil || res.From != "vfio-pci" || res.To != "vfio-pci" || !strings.Contains(res.String(), "already") {
		t.Errorf("bind of a bound device: %v %v", res, err)
	}
	if _, err := tr.Sysfs.Unbind("0000:04:00.0"); err == nil || !strings.Contains(err.Error(), "not bound to vfio-pci") {
		t.Errorf("unbind of a device not bound to vfio-pci: %v", err)
	}
	if _, err := tr.Sysfs.Bind("0000:05:00.0", false); err == nil || !strings.Contains(err.Error(), "intel_iommu=on") {
		t.Errorf("bind of a device without IOMMU group: %v", err)
	}
	if _, err := tr.Sysfs.Bind("sim", false); err == nil {
		t.Error("bind of a non-address succeeded")
	}
}

func TestBindWithoutVFIODriver(t *testing.T) {
	tr := pcitest.New(t, []pcitest.Dev{
		{Address: "0000:04:00.0", Vendor: 0x8086, Device: 0x10d3, Class: 0x020000, Driver: "e1000e", Group: 6},
	}, nil)
	if _, err := tr.Sysfs.Bind("0000:04:00.0", false); !errors.Is(err, pci.ErrNoVFIODriver) || !strings.Contains(err.Error(), "modprobe vfio-pci") {
		t.Errorf("bind without vfio-pci loaded: %v", err)
	}
}

// A device that is not a network controller (here an ISA bridge) is
// refused unless forced; a device without an IOMMU group is told to turn
// the IOMMU on, even when vfio-pci is not loaded.
func TestBindRefusesNonNetworkAndNamesTheIOMMU(t *testing.T) {
	tr := fakeTree(t)
	if _, err := tr.Sysfs.Bind("0000:00:1f.0", false); !errors.Is(err, pci.ErrNotNetwork) || !strings.Contains(err.Error(), "--force") {
		t.Errorf("bind of an ISA bridge: %v", err)
	}
	if got := tr.Read("bus/pci/devices/0000:00:1f.0/driver_override"); got != "(null)\n" {
		t.Errorf("driver_override became %q", got)
	}
	if _, err := tr.Sysfs.Bind("0000:00:1f.0", true); errors.Is(err, pci.ErrNotNetwork) {
		t.Errorf("bind --force of an ISA bridge: %v", err)
	}
	if _, err := tr.Sysfs.Bind("0000:05:00.0", false); err == nil || errors.Is(err, pci.ErrNoVFIODriver) || !strings.Contains(err.Error(), "intel_iommu=on") {
		t.Errorf("bind without an IOMMU or vfio-pci: %v", err)
	}
}
