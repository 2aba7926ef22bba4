package vfio

import (
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/verinic/verinic/dma"

	"github.com/verinic/verinic/vfio/pci"
	"github.com/verinic/verinic/vfio/pci/pcitest"
)

// Host-side tests: everything that can be checked without VFIO hardware.
// The guest tier (TestGuest) runs the rest against the real kernel.

func fakeTree(t *testing.T) *pcitest.Tree {
	return pcitest.New(t, []pcitest.Dev{
		{Address: "0000:03:00.0", Vendor: 0x8086, Device: 0x10fb, Class: 0x020000, Driver: "vfio-pci", Group: 5},
		{Address: "0000:03:00.1", Vendor: 0x8086, Device: 0x10fb, Class: 0x020000, Driver: "ixgbe", Group: 5, Iface: "eth1"},
		{Address: "0000:03:00.2", Vendor: 0x8086, Device: 0x10fb, Class: 0x020000, Group: 5},
		{Address: "0000:04:00.0", Vendor: 0x8086, Device: 0x10fb, Class: 0x020000, Driver: "ixgbe", Group: 6},
		{Address: "0000:05:00.0", Vendor: 0x8086, Device: 0x10fb, Class: 0x020000, Group: -1},
	}, nil)
}

func TestPrecheckExplains(t *testing.T) {
	tr := fakeTree(t)
	devDir := t.TempDir() // no /dev/vfio/vfio in it
	cases := []struct {
		addr  string
		is    error
		words []string
	}{
		{"0000:05:00.0", ErrNoIOMMU, []string{"no IOMMU group", "intel_iommu=on", "amd_iommu=on"}},
		{"0000:04:00.0", ErrNotBound, []string{"ixgbe", "nicctl bind 0000:04:00.0"}},
		{"0000:03:00.2", ErrNotBound, []string{"no driver", "nicctl bind 0000:03:00.2"}},
		{"0000:03:00.0", ErrNoVFIO, []string{"modprobe vfio-pci"}},
		{"0000:09:00.0", pci.ErrNoDevice, []string{"nicctl devices"}},
	}
	for _, c := range cases {
		_, err := precheck(tr.Sysfs, devDir, c.addr)
		if !errors.Is(err, c.is) {
			t.Errorf("%s: %v, want %v", c.addr, err, c.is)
			continue
		}
		for _, w := range c.words {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", c.addr, err, w)
			}
		}
	}
}

func TestGroupNotViableNamesTheOthers(t *testing.T) {
	tr := fakeTree(t)
	err := groupNotViable(tr.Sysfs, 5)
	if !errors.Is(err, ErrGroupNotViable) {
		t.Fatal(err)
	}
	msg := err.Error()
	for _, w := range []string{"IOMMU group 5", "0000:03:00.1", "ixgbe", "nicctl bind 0000:03:00.1"} {
		if !strings.Contains(msg, w) {
			t.Errorf("%q does not say %q", msg, w)
		}
	}
	// The vfio-pci device and the unbound one do not block viability.
	for _, w := range []string{"0000:03:00.0", "0000:03:00.2"} {
		if strings.Contains(msg, w) {
			t.Errorf("%q names %s, which does not block the group", msg, w)
		}
	}
}

func TestNewContainerWithoutVFIO(t *testing.T) {
	tr := fakeTree(t)
	_, err := NewContainer(Options{Sysfs: tr.Sysfs, DevDir: t.TempDir()})
	if !errors.Is(err, ErrNoVFIO) {
		t.Fatalf("container without /dev/vfio/vfio: %v", err)
	}
	// With IOMMU groups present, the advice is to load the module.
	if !strings.Contains(err.Error(), "modprobe vfio-pci") {
		t.Errorf("%q does not say to load vfio-pci", err)
	}
	noIOMMU := pcitest.New(t, []pcitest.Dev{{Address: "0000:05:00.0", Vendor: 0x8086, Device: 0x10fb, Class: 0x020000, Group: -1}}, nil)
	_, err = NewContainer(Options{Sysfs: noIOMMU.Sysfs, DevDir: t.TempDir()})
	if !errors.Is(err, ErrNoIOMMU) || !strings.Contains(err.Error(), "intel_iommu=on") {
		t.Errorf("container on a system without IOMMU: %v", err)
	}
}

// TestHostOpenExplains opens a real network device of this machine through
// VFIO. On a machine without an IOMMU (the build machines) it must fail and
// say why and what to do; where VFIO works it is skipped (the guest tier
// tests the success path).
func TestHostOpenExplains(t *testing.T) {
	if os.Getenv(guestEnv) != "" {
		t.Skip("inside the test guest: the guest tests open the device")
	}
	devs, err := pci.System.NetworkDevices()
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) == 0 {
		t.Skip("this machine has no PCI network device to try")
	}
	d := devs[0]
	_, err = Open(d.Address)
	if err == nil {
		t.Skipf("%s opened through VFIO: this machine has a working IOMMU and vfio-pci", d.Address)
	}
	t.Logf("open %s: %v", d.Address, err)
	switch {
	case d.IOMMUGroup < 0:
		if !errors.Is(err, ErrNoIOMMU) || !strings.Contains(err.Error(), "intel_iommu=on") {
			t.Errorf("device without IOMMU group: %v", err)
		}
	case d.Driver != pci.VFIODriver:
		if !errors.Is(err, ErrNotBound) || !strings.Contains(err.Error(), "nicctl bind") {
			t.Errorf("device not bound to vfio-pci: %v", err)
		}
	}
	if _, err := Open("not-an-address"); err == nil || !strings.Contains(err.Error(), "not a PCI address") {
		t.Errorf("open of a bad address: %v", err)
	}
}

func TestIOVAAllocation(t *testing.T) {
	c := &Container{opts: Options{IOVABase: DefaultIOVABase}, iommuType: Type1v2IOMMU,
		ranges: []IOVARange{{0, 0xfedfffff}, {0xfef00000, 1<<39 - 1}}}
	const mb2 = 2 << 20
	alloc := func(size uint64) uint64 {
		t.Helper()
		iova, err := c.allocIOVA(size, mb2)
		if err != nil {
			t.Fatal(err)
		}
		if iova%mb2 != 0 || !c.inRanges(iova, size) || c.overlaps(iova, size) {
			t.Fatalf("allocIOVA(%d) = %#x: misaligned, out of range or overlapping", size, iova)
		}
		c.maps = append(c.maps, ioMapping{iova: iova, size: size})
		return iova
	}
	a := alloc(mb2)
	if a != DefaultIOVABase {
		t.Errorf("first IOVA %#x, want the base %#x", a, uint64(DefaultIOVABase))
	}
	b := alloc(4096)
	if b != a+mb2 {
		t.Errorf("second IOVA %#x, want %#x", b, a+mb2)
	}
	cc := alloc(3 * mb2)
	if cc != b+mb2 {
		t.Errorf("third IOVA %#x, want %#x", cc, b+mb2)
	}
	// Freeing the first makes its hole reusable.
	c.maps = c.maps[1:]
	if d := alloc(mb2); d != a {
		t.Errorf("IOVA after free %#x, want the hole at %#x", d, a)
	}
	// Nothing fits above the base: allocation falls back below it, and
	// skips the reserved MSI window.
	small := &Container{opts: Options{IOVABase: DefaultIOVABase}, iommuType: Type1v2IOMMU,
		ranges: []IOVARange{{0, 0xfedfffff}, {0xfef00000, 1<<32 - 1}}}
	iova, err := small.allocIOVA(mb2, mb2)
	if err != nil || iova != 0 {
		t.Errorf("below-base allocation %#x %v", iova, err)
	}
	small.maps = append(small.maps, ioMapping{iova: 0, size: 0xfec00000})
	iova, err = small.allocIOVA(mb2, mb2)
	if err != nil || iova != 0xfec00000 {
		t.Errorf("allocation next to the MSI window %#x %v", iova, err)
	}
	small.maps = append(small.maps, ioMapping{iova: 0xfec00000, size: mb2})
	if iova, err := small.allocIOVA(mb2, mb2); err != nil || iova < 0xfef00000 || iova+mb2-1 > 1<<32-1 {
		t.Errorf("allocation past the MSI window %#x %v", iova, err)
	}
	if _, err := small.allocIOVA(1<<33, mb2); err == nil {
		t.Error("allocation larger than the address space succeeded")
	}
}

func TestParseIOVARanges(t *testing.T) {
	buf := make([]byte, 256)
	info := (*iommuType1Info)(unsafe.Pointer(&buf[0]))
	info.Argsz = 24 + 16 + 2*16
	info.Flags = iommuInfoPgsizes | iommuInfoCaps
	info.CapOffset = 24
	// A DMA-available capability first, then the IOVA ranges.
	binary.LittleEndian.PutUint16(buf[24:], iommuCapDMAAvailable)
	binary.LittleEndian.PutUint32(buf[28:], 40)
	info.Argsz = 40 + 16 + 2*16
	binary.LittleEndian.PutUint16(buf[40:], iommuCapIOVARange)
	binary.LittleEndian.PutUint32(buf[48:], 2)
	put64 := func(off int, v uint64) { binary.LittleEndian.PutUint64(buf[off:], v) }
	put64(56, 0xfef00000)
	put64(64, 1<<39-1)
	put64(72, 0)
	put64(80, 0xfedfffff)
	rs, err := parseIOVARanges(buf, info)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0] != (IOVARange{0, 0xfedfffff}) || rs[1] != (IOVARange{0xfef00000, 1<<39 - 1}) {
		t.Errorf("ranges %+v", rs)
	}
	// A chain that points outside the reply is an error, not a crash.
	binary.LittleEndian.PutUint32(buf[28:], 4096)
	if _, err := parseIOVARanges(buf, info); err == nil {
		t.Error("capability outside the reply accepted")
	}
	// Too many ranges for the reply.
	binary.LittleEndian.PutUint32(buf[28:], 40)
	binary.LittleEndian.PutUint32(buf[48:], 1000)
	if _, err := parseIOVARanges(buf, info); err == nil {
		t.Error("range count overrunning the reply accepted")
	}
}

func TestDeviceRegisterBounds(t *testing.T) {
	bar := make([]byte, 64)
	d := &Device{bar0: bar}
	d.Write32(8, 0xdeadbeef)
	if got := d.Read32(8); got != 0xdeadbeef {
		t.Errorf("Read32(8) = %#x", got)
	}
	if binary.LittleEndian.Uint32(bar[8:]) != 0xdeadbeef {
		t.Error("Write32 did not store little-endian at offset 8")
	}
	for _, off := range []uint32{2, 62, 64, 0xfffffffc} {
		if got := d.Read32(off); got != 0xFFFFFFFF {
			t.Errorf("Read32(%#x) = %#x, want all ones", off, got)
		}
		d.Write32(off, 0)
	}
	if d.BadAccesses() != 8 {
		t.Errorf("%d bad accesses counted, want 8", d.BadAccesses())
	}
	closed := &Device{}
	if closed.Read32(0) != 0xFFFFFFFF {
		t.Error("a closed device does not read all ones")
	}
}

// The driver's device seam (ixgbe.Device), restated here because vfio must
// not import the driver: a *Device must satisfy it.
var _ interface {
	Read32(reg uint32) uint32
	Write32(reg uint32, v uint32)
	DMA() *dma.Allocator
	Name() string
} = (*Device)(nil)

var _ dma.Mapper = (*Container)(nil)

func TestParseFault(t *testing.T) {
	f, ok := parseFault("DMAR: [DMA Read NO_PASID] Request device [00:03.0] fault addr 0x7000000000 [fault reason 0x06] PTE Read access is not set")
	if !ok || f.Device != "00:03.0" || f.Addr != 0x7000000000 || f.Write || !strings.Contains(f.Reason, "0x06") {
		t.Errorf("VT-d read fault parsed as %+v %v", f, ok)
	}
	f, ok = parseFault("DMAR: [DMA Write] Request device [03:00.1] fault addr 0x1000 [fault reason 0x05] PTE Write access is not set")
	if !ok || f.Device != "03:00.1" || f.Addr != 0x1000 || !f.Write {
		t.Errorf("VT-d write fault parsed as %+v %v", f, ok)
	}
	f, ok = parseFault("AMD-Vi: Event logged [IO_PAGE_FAULT device=0000:03:00.0 domain=0x0002 address=0xfffff000 flags=0x0020]")
	if !ok || f.Device != "03:00.0" || f.Addr != 0xfffff000 || !f.Write {
		t.Errorf("AMD-Vi fault parsed as %+v %v", f, ok)
	}
	for _, s := range []string{"DMAR: IOMMU enabled", "e1000e 0000:00:03.0 eth0: NIC Link is Up", "DMAR: [INTR-REMAP] Request device [00:03.0] fault index 0x10 [fault reason 0x25] Blocked a compatibility format interrupt request"} {
		if f, ok := parseFault(s); ok {
			t.Errorf("%q parsed as a DMA fault %+v", s, f)
		}
	}
}

func TestChooseIRQsFallsBack(t *testing.T) {
	infos := map[int]IRQInfo{
		IRQIndexMSIX: {Index: IRQIndexMSIX, Flags: 0, Count: 64},            // no eventfd support
		IRQIndexMSI:  {Index: IRQIndexMSI, Flags: IRQInfoEventfd, Count: 0}, // no vectors
		IRQIndexINTx: {Index: IRQIndexINTx, Flags: IRQInfoEventfd | IRQInfoMaskable, Count: 1},
	}
	info := func(i int) (IRQInfo, error) { return infos[i], nil }
	var enabled []int
	enable := func(index, n int) (*Interrupts, error) {
		enabled = append(enabled, index, n)
		return &Interrupts{index: index, eventfds: &eventfds{fds: make([]int, n)}}, nil
	}
	in, err := chooseIRQs([]int{IRQIndexMSIX, IRQIndexMSI, IRQIndexINTx}, 4, 5, info, enable)
	if err != nil || in.Index() != IRQIndexINTx || in.Count() != 1 {
		t.Fatalf("chose %+v, %v; want INTx with 1 vector", in, err)
	}
	if len(enabled) != 2 {
		t.Errorf("enable called for %v, want INTx only", enabled)
	}
	// MSI-X with eventfds is taken first, with no more vectors than it has.
	infos[IRQIndexMSIX] = IRQInfo{Index: IRQIndexMSIX, Flags: IRQInfoEventfd, Count: 3}
	in, err = chooseIRQs([]int{IRQIndexMSIX, IRQIndexINTx}, 8, 5, info, enable)
	if err != nil || in.Index() != IRQIndexMSIX || in.Count() != 3 {
		t.Errorf("chose %+v, %v; want MSI-X with 3 vectors", in, err)
	}
	// An index that fails to enable is passed over, and every reason is told.
	failing := func(index, n int) (*Interrupts, error) { return nil, errors.New("EINVAL") }
	infos[IRQIndexMSIX] = IRQInfo{Index: IRQIndexMSIX, Flags: 0, Count: 64}
	_, err = chooseIRQs([]int{IRQIndexMSIX, IRQIndexMSI, IRQIndexINTx, 7}, 1, 5, info, failing)
	for _, w := range []string{"MSI-X: no eventfd support", "MSI: no vectors", "INTx: EINVAL", "IRQ index 7: not an index"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not say %q", err, w)
		}
	}
}
