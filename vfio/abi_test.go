package vfio

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// The ioctl numbers and struct layouts are checked twice: against the values
// recorded below (compiled from linux/vfio.h 6.1), always; and
// against the kernel header itself when linux-libc-dev is installed, by
// parsing it (no cgo).

func TestIoctlNumbersMatchFacts(t *testing.T) {
	want := map[string][2]uintptr{
		"VFIO_GET_API_VERSION":        {ioctlGetAPIVersion, 0x3B64},
		"VFIO_CHECK_EXTENSION":        {ioctlCheckExtension, 0x3B65},
		"VFIO_SET_IOMMU":              {ioctlSetIOMMU, 0x3B66},
		"VFIO_GROUP_GET_STATUS":       {ioctlGroupGetStatus, 0x3B67},
		"VFIO_GROUP_SET_CONTAINER":    {ioctlGroupSetContainer, 0x3B68},
		"VFIO_GROUP_UNSET_CONTAINER":  {ioctlGroupUnsetContainer, 0x3B69},
		"VFIO_GROUP_GET_DEVICE_FD":    {ioctlGroupGetDeviceFD, 0x3B6A},
		"VFIO_DEVICE_GET_INFO":        {ioctlDeviceGetInfo, 0x3B6B},
		"VFIO_DEVICE_GET_REGION_INFO": {ioctlDeviceGetRegionInfo, 15212},
		"VFIO_DEVICE_GET_IRQ_INFO":    {ioctlDeviceGetIRQInfo, 15213},
		"VFIO_DEVICE_SET_IRQS":        {ioctlDeviceSetIRQs, 15214},
		"VFIO_DEVICE_RESET":           {ioctlDeviceReset, 0x3B6F},
		"VFIO_IOMMU_GET_INFO":         {ioctlIOMMUGetInfo, 0x3B70},
		"VFIO_IOMMU_MAP_DMA":          {ioctlIOMMUMapDMA, 15217},
		"VFIO_IOMMU_UNMAP_DMA":        {ioctlIOMMUUnmapDMA, 15218},
	}
	for name, v := range want {
		if v[0] != v[1] {
			t.Errorf("%s = %#x, linux/vfio.h 6.1 says %#x", name, v[0], v[1])
		}
		if got := ioctlName(v[0]); got != name {
			t.Errorf("ioctlName(%#x) = %q, want %q", v[0], got, name)
		}
	}
}

func TestStructLayoutsMatchFacts(t *testing.T) {
	check := func(name string, got, want uintptr) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	check("sizeof(vfio_group_status)", unsafe.Sizeof(groupStatus{}), 8)
	check("sizeof(vfio_region_info)", unsafe.Sizeof(regionInfo{}), 32)
	check("offsetof(vfio_region_info.index)", unsafe.Offsetof(regionInfo{}.Index), 8)
	check("offsetof(vfio_region_info.cap_offset)", unsafe.Offsetof(regionInfo{}.CapOffset), 12)
	check("offsetof(vfio_region_info.size)", unsafe.Offsetof(regionInfo{}.Size), 16)
	check("offsetof(vfio_region_info.offset)", unsafe.Offsetof(regionInfo{}.Offset), 24)
	check("sizeof(vfio_irq_info)", unsafe.Sizeof(irqInfo{}), 16)
	check("sizeof(vfio_irq_set) header", unsafe.Sizeof(irqSet{}), 20)
	check("sizeof(vfio_iommu_type1_dma_map)", unsafe.Sizeof(dmaMap{}), 32)
	check("offsetof(vfio_iommu_type1_dma_map.vaddr)", unsafe.Offsetof(dmaMap{}.Vaddr), 8)
	check("offsetof(vfio_iommu_type1_dma_map.iova)", unsafe.Offsetof(dmaMap{}.IOVA), 16)
	check("offsetof(vfio_iommu_type1_dma_map.size)", unsafe.Offsetof(dmaMap{}.Size), 24)
	check("sizeof(vfio_iommu_type1_dma_unmap)", unsafe.Sizeof(dmaUnmap{}), 24)
	check("offsetof(vfio_iommu_type1_dma_unmap.iova)", unsafe.Offsetof(dmaUnmap{}.IOVA), 8)
	check("offsetof(vfio_iommu_type1_dma_unmap.size)", unsafe.Offsetof(dmaUnmap{}.Size), 16)
}

func TestConstantsMatchFacts(t *testing.T) {
	pairs := []struct {
		name      string
		got, want int
	}{
		{"VFIO_TYPE1_IOMMU", Type1IOMMU, 1}, {"VFIO_TYPE1v2_IOMMU", Type1v2IOMMU, 3}, {"VFIO_NOIOMMU_IOMMU", NoIOMMU, 8},
		{"VFIO_GROUP_FLAGS_VIABLE", groupFlagsViable, 1}, {"VFIO_GROUP_FLAGS_CONTAINER_SET", groupFlagsContainerSet, 2},
		{"VFIO_PCI_CONFIG_REGION_INDEX", RegionConfig, 7}, {"VFIO_PCI_ROM_REGION_INDEX", RegionROM, 6},
		{"VFIO_PCI_INTX_IRQ_INDEX", IRQIndexINTx, 0}, {"VFIO_PCI_MSI_IRQ_INDEX", IRQIndexMSI, 1}, {"VFIO_PCI_MSIX_IRQ_INDEX", IRQIndexMSIX, 2},
		{"VFIO_DMA_MAP_FLAG_READ", dmaMapFlagRead, 1}, {"VFIO_DMA_MAP_FLAG_WRITE", dmaMapFlagWrite, 2},
		{"VFIO_REGION_INFO_FLAG_READ", RegionFlagRead, 1}, {"VFIO_REGION_INFO_FLAG_WRITE", RegionFlagWrite, 2},
		{"VFIO_REGION_INFO_FLAG_MMAP", RegionFlagMmap, 4}, {"VFIO_REGION_INFO_FLAG_CAPS", RegionFlagCaps, 8},
		{"VFIO_IRQ_SET_DATA_NONE", irqSetDataNone, 1}, {"VFIO_IRQ_SET_DATA_BOOL", irqSetDataBool, 2},
		{"VFIO_IRQ_SET_DATA_EVENTFD", irqSetDataEventfd, 4}, {"VFIO_IRQ_SET_ACTION_MASK", irqSetActionMask, 8},
		{"VFIO_IRQ_SET_ACTION_UNMASK", irqSetActionUnmask, 16}, {"VFIO_IRQ_SET_ACTION_TRIGGER", irqSetActionTrig, 32},
		{"VFIO_IRQ_INFO_EVENTFD", IRQInfoEventfd, 1},
	}
	for _, p := range pairs {
		if p.got != p.want {
			t.Errorf("%s = %d, linux/vfio.h 6.1 says %d", p.name, p.got, p.want)
		}
	}
}

// ---- the kernel header ----

const vfioHeader = "/usr/include/linux/vfio.h"

func readHeader(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(vfioHeader)
	if err != nil {
		t.Skipf("%s not readable (%v): install linux-libc-dev to check the ABI against the kernel header", vfioHeader, err)
	}
	return string(b)
}

// headerDefines evaluates the header's simple #defines: integers, (1 << n),
// and _IO(VFIO_TYPE, VFIO_BASE + n).
func headerDefines(src string) map[string]uint64 {
	defs := map[string]uint64{}
	re := regexp.MustCompile(`(?m)^#define\s+(\w+)\s+(.+?)\s*(?:/\*.*)?$`)
	shift := regexp.MustCompile(`^\(\s*1\s*<<\s*(\d+)\s*\)$`)
	io := regexp.MustCompile(`^_IO\(VFIO_TYPE,\s*VFIO_BASE\s*\+\s*(\d+)\)$`)
	for _, m := range re.FindAllStringSubmatch(src, -1) {
		name, val := m[1], strings.TrimSpace(m[2])
		if v, err := strconv.ParseUint(val, 0, 64); err == nil {
			defs[name] = v
		} else if s := shift.FindStringSubmatch(val); s != nil {
			n, _ := strconv.Atoi(s[1])
			defs[name] = 1 << n
		} else if s := io.FindStringSubmatch(val); s != nil {
			n, _ := strconv.Atoi(s[1])
			defs[name] = uint64(vfioType<<8 | (vfioBase + n))
		} else if strings.HasPrefix(val, "(';')") || val == "';'" {
			defs[name] = ';'
		}
	}
	return defs
}

func TestIoctlNumbersMatchKernelHeader(t *testing.T) {
	defs := headerDefines(readHeader(t))
	if defs["VFIO_TYPE"] != vfioType || defs["VFIO_BASE"] != vfioBase {
		t.Fatalf("VFIO_TYPE/VFIO_BASE = %#x/%d in the header, want %#x/%d", defs["VFIO_TYPE"], defs["VFIO_BASE"], vfioType, vfioBase)
	}
	ours := map[string]uint64{
		"VFIO_GET_API_VERSION": uint64(ioctlGetAPIVersion), "VFIO_CHECK_EXTENSION": uint64(ioctlCheckExtension),
		"VFIO_SET_IOMMU": uint64(ioctlSetIOMMU), "VFIO_GROUP_GET_STATUS": uint64(ioctlGroupGetStatus),
		"VFIO_GROUP_SET_CONTAINER": uint64(ioctlGroupSetContainer), "VFIO_GROUP_UNSET_CONTAINER": uint64(ioctlGroupUnsetContainer),
		"VFIO_GROUP_GET_DEVICE_FD": uint64(ioctlGroupGetDeviceFD), "VFIO_DEVICE_GET_INFO": uint64(ioctlDeviceGetInfo),
		"VFIO_DEVICE_GET_REGION_INFO": uint64(ioctlDeviceGetRegionInfo), "VFIO_DEVICE_GET_IRQ_INFO": uint64(ioctlDeviceGetIRQInfo),
		"VFIO_DEVICE_SET_IRQS": uint64(ioctlDeviceSetIRQs), "VFIO_DEVICE_RESET": uint64(ioctlDeviceReset),
		"VFIO_IOMMU_GET_INFO": uint64(ioctlIOMMUGetInfo), "VFIO_IOMMU_MAP_DMA": uint64(ioctlIOMMUMapDMA),
		"VFIO_IOMMU_UNMAP_DMA": uint64(ioctlIOMMUUnmapDMA),
		"VFIO_API_VERSION":     APIVersion, "VFIO_TYPE1_IOMMU": Type1IOMMU, "VFIO_TYPE1v2_IOMMU": Type1v2IOMMU,
		"VFIO_NOIOMMU_IOMMU": NoIOMMU, "VFIO_GROUP_FLAGS_VIABLE": groupFlagsViable,
		"VFIO_DEVICE_FLAGS_RESET": DeviceFlagsReset, "VFIO_DEVICE_FLAGS_PCI": DeviceFlagsPCI,
		"VFIO_REGION_INFO_FLAG_READ": RegionFlagRead, "VFIO_REGION_INFO_FLAG_WRITE": RegionFlagWrite,
		"VFIO_REGION_INFO_FLAG_MMAP": RegionFlagMmap, "VFIO_REGION_INFO_FLAG_CAPS": RegionFlagCaps,
		"VFIO_IRQ_INFO_EVENTFD": IRQInfoEventfd, "VFIO_IRQ_INFO_MASKABLE": IRQInfoMaskable,
		"VFIO_IRQ_INFO_AUTOMASKED": IRQInfoAutomasked, "VFIO_IRQ_INFO_NORESIZE": IRQInfoNoResize,
		"VFIO_IRQ_SET_DATA_NONE": irqSetDataNone, "VFIO_IRQ_SET_DATA_BOOL": irqSetDataBool,
		"VFIO_IRQ_SET_DATA_EVENTFD": irqSetDataEventfd, "VFIO_IRQ_SET_ACTION_MASK": irqSetActionMask,
		"VFIO_IRQ_SET_ACTION_UNMASK": irqSetActionUnmask, "VFIO_IRQ_SET_ACTION_TRIGGER": irqSetActionTrig,
		"VFIO_DMA_MAP_FLAG_READ": dmaMapFlagRead, "VFIO_DMA_MAP_FLAG_WRITE": dmaMapFlagWrite,
		"VFIO_IOMMU_INFO_PGSIZES": iommuInfoPgsizes, "VFIO_IOMMU_INFO_CAPS": iommuInfoCaps,
		"VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE": iommuCapIOVARange, "VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL": iommuCapDMAAvailable,
	}
	for name, v := range ours {
		hv, ok := defs[name]
		if !ok {
			t.Errorf("%s not found in %s", name, vfioHeader)
			continue
		}
		if hv != v {
			t.Errorf("%s = %#x here, %#x in %s", name, v, hv, vfioHeader)
		}
	}
	// The PCI region and IRQ indexes are an enum in the header.
	enumIdx := func(name string) int {
		re := regexp.MustCompile(`(?s)enum\s*\{([^}]*\b` + name + `\b[^}]*)\}`)
		m := re.FindStringSubmatch(readHeader(t))
		if m == nil {
			return -1
		}
		i := 0
		for _, item := range strings.Split(m[1], ",") {
			item = strings.TrimSpace(regexp.MustCompile(`/\*.*?\*/`).ReplaceAllString(item, ""))
			if item == "" {
				continue
			}
			if f := strings.Fields(item); f[0] == name {
				return i
			}
			i++
		}
		return -1
	}
	for name, v := range map[string]int{
		"VFIO_PCI_BAR0_REGION_INDEX": RegionBAR0, "VFIO_PCI_BAR5_REGION_INDEX": RegionBAR5,
		"VFIO_PCI_ROM_REGION_INDEX": RegionROM, "VFIO_PCI_CONFIG_REGION_INDEX": RegionConfig,
		"VFIO_PCI_INTX_IRQ_INDEX": IRQIndexINTx, "VFIO_PCI_MSI_IRQ_INDEX": IRQIndexMSI, "VFIO_PCI_MSIX_IRQ_INDEX": IRQIndexMSIX,
	} {
		if got := enumIdx(name); got != v {
			t.Errorf("%s = %d in %s, %d here", name, got, vfioHeader, v)
		}
	}
}

type cField struct {
	name   string
	size   uintptr // 0 for a flexible array
	align  uintptr
	offset uintptr
}

// cLayout parses a struct from the header and lays it out with the x86-64
// SysV rules (each member at a multiple of its alignment, the size a multiple
// of the largest alignment).
func cLayout(t *testing.T, src, name string) (fields []cField, size uintptr) {
	t.Helper()
	re := regexp.MustCompile(`(?s)struct\s+` + name + `\s*\{(.*?)\n\};`)
	m := re.FindStringSubmatch(src)
	if m == nil {
		t.Fatalf("struct %s not found in %s", name, vfioHeader)
	}
	body := regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(m[1], "")
	types := map[string][2]uintptr{
		"__u8": {1, 1}, "__u16": {2, 2}, "__u32": {4, 4}, "__s32": {4, 4}, "__u64": {8, 8}, "__aligned_u64": {8, 8},
		"struct vfio_info_cap_header": {8, 4},
		"struct vfio_iova_range":      {16, 8},
	}
	var off, maxAlign uintptr = 0, 1
	member := regexp.MustCompile(`^((?:struct\s+)?\w+)\s+(\w+)(\[\d*\])?$`)
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimSuffix(line, ";")
		line = strings.Join(strings.Fields(line), " ")
		mm := member.FindStringSubmatch(line)
		if mm == nil {
			t.Fatalf("struct %s: cannot parse member %q", name, line)
		}
		typ, ok := types[mm[1]]
		if !ok {
			t.Fatalf("struct %s: unknown member type %q", name, mm[1])
		}
		sz, al := typ[0], typ[1]
		if mm[3] == "[]" {
			sz = 0
		} else if mm[3] != "" {
			n, _ := strconv.Atoi(strings.Trim(mm[3], "[]"))
			sz *= uintptr(n)
		}
		off = (off + al - 1) / al * al
		fields = append(fields, cField{name: mm[2], size: sz, align: al, offset: off})
		off += sz
		maxAlign = max(maxAlign, al)
	}
	return fields, (off + maxAlign - 1) / maxAlign * maxAlign
}

func TestStructLayoutsMatchKernelHeader(t *testing.T) {
	src := readHeader(t)
	structs := []struct {
		c   string
		go_ any
	}{
		{"vfio_group_status", groupStatus{}},
		{"vfio_device_info", deviceInfo{}},
		{"vfio_region_info", regionInfo{}},
		{"vfio_irq_info", irqInfo{}},
		{"vfio_irq_set", irqSet{}},
		{"vfio_iommu_type1_info", iommuType1Info{}},
		{"vfio_info_cap_header", infoCapHeader{}},
		{"vfio_iommu_type1_info_cap_iova_range", capIOVARange{}},
		{"vfio_iova_range", iovaRange{}},
		{"vfio_iommu_type1_dma_map", dmaMap{}},
		{"vfio_iommu_type1_dma_unmap", dmaUnmap{}},
	}
	for _, s := range structs {
		t.Run(s.c, func(t *testing.T) {
			cf, csize := cLayout(t, src, s.c)
			rt := reflect.TypeOf(s.go_)
			// Go fields, without blank padding, matched in order against
			// the C members that have a size (flexible arrays are data
			// that follows the header).
			var gf []reflect.StructField
			for i := 0; i < rt.NumField(); i++ {
				if rt.Field(i).Name != "_" {
					gf = append(gf, rt.Field(i))
				}
			}
			var sized []cField
			for _, f := range cf {
				if f.size > 0 {
					sized = append(sized, f)
				}
			}
			if len(gf) != len(sized) {
				t.Fatalf("%d Go fields, %d C members %v", len(gf), len(sized), sized)
			}
			for i, f := range sized {
				if gf[i].Offset != f.offset || gf[i].Type.Size() != f.size {
					t.Errorf("member %s: C offset %d size %d; Go field %s offset %d size %d",
						f.name, f.offset, f.size, gf[i].Name, gf[i].Offset, gf[i].Type.Size())
				}
			}
			if rt.Size() != csize {
				t.Errorf("sizeof = %d in C, %d in Go", csize, rt.Size())
			}
		})
	}
}

func ExampleIRQIndexName() {
	fmt.Println(IRQIndexName(IRQIndexMSIX), IRQIndexName(IRQIndexMSI), IRQIndexName(IRQIndexINTx))
	// Output: MSI-X MSI INTx
}
