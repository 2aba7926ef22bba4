package vfio

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The VFIO user ABI of linux/vfio.h (checked by abi_test.go against values
// recorded from the kernel 6.1 header, and against the installed header). Every VFIO ioctl is _IO(';', 100+n): no
// size or direction is encoded, the structures carry their own argsz.
const (
	vfioType = 0x3B // ';'
	vfioBase = 100
)

func vfioIO(n uintptr) uintptr { return vfioType<<8 | (vfioBase + n) }

// Ioctl request numbers.
var (
	ioctlGetAPIVersion       = vfioIO(0)  // container: returns APIVersion
	ioctlCheckExtension      = vfioIO(1)  // container: int extension -> 0/1
	ioctlSetIOMMU            = vfioIO(2)  // container: int IOMMU type
	ioctlGroupGetStatus      = vfioIO(3)  // group: *groupStatus
	ioctlGroupSetContainer   = vfioIO(4)  // group: *int32 container fd
	ioctlGroupUnsetContainer = vfioIO(5)  // group: none
	ioctlGroupGetDeviceFD    = vfioIO(6)  // group: *char device name -> fd
	ioctlDeviceGetInfo       = vfioIO(7)  // device: *deviceInfo
	ioctlDeviceGetRegionInfo = vfioIO(8)  // device: *regionInfo
	ioctlDeviceGetIRQInfo    = vfioIO(9)  // device: *irqInfo
	ioctlDeviceSetIRQs       = vfioIO(10) // device: *irqSet + data
	ioctlDeviceReset         = vfioIO(11) // device: none
	ioctlIOMMUGetInfo        = vfioIO(12) // container: *iommuType1Info + caps
	ioctlIOMMUMapDMA         = vfioIO(13) // container: *dmaMap
	ioctlIOMMUUnmapDMA       = vfioIO(14) // container: *dmaUnmap
)

// APIVersion is the only VFIO API version (VFIO_API_VERSION).
const APIVersion = 0

// IOMMU types for CHECK_EXTENSION and SET_IOMMU.
const (
	Type1IOMMU   = 1 // VFIO_TYPE1_IOMMU
	Type1v2IOMMU = 3 // VFIO_TYPE1v2_IOMMU
	NoIOMMU      = 8 // VFIO_NOIOMMU_IOMMU
)

// Group status flags.
const (
	groupFlagsViable       = 1 << 0
	groupFlagsContainerSet = 1 << 1
)

// Device info flags.
const (
	DeviceFlagsReset = 1 << 0 // VFIO_DEVICE_FLAGS_RESET
	DeviceFlagsPCI   = 1 << 1 // VFIO_DEVICE_FLAGS_PCI
)

// PCI region indexes (VFIO_PCI_*_REGION_INDEX).
const (
	RegionBAR0   = 0
	RegionBAR5   = 5
	RegionROM    = 6
	RegionConfig = 7
)

// Region flags (VFIO_REGION_INFO_FLAG_*).
const (
	RegionFlagRead  = 1 << 0
	RegionFlagWrite = 1 << 1
	RegionFlagMmap  = 1 << 2
	RegionFlagCaps  = 1 << 3
)

// PCI interrupt indexes (VFIO_PCI_*_IRQ_INDEX).
const (
	IRQIndexINTx = 0
	IRQIndexMSI  = 1
	IRQIndexMSIX = 2
)

// IRQ info flags (VFIO_IRQ_INFO_*).
const (
	IRQInfoEventfd    = 1 << 0
	IRQInfoMaskable   = 1 << 1
	IRQInfoAutomasked = 1 << 2
	IRQInfoNoResize   = 1 << 3
)

// IRQ set flags (VFIO_IRQ_SET_*).
const (
	irqSetDataNone     = 1 << 0
	irqSetDataBool     = 1 << 1
	irqSetDataEventfd  = 1 << 2
	irqSetActionMask   = 1 << 3
	irqSetActionUnmask = 1 << 4
	irqSetActionTrig   = 1 << 5
)

// DMA map flags.
const (
	dmaMapFlagRead  = 1 << 0
	dmaMapFlagWrite = 1 << 1
)

// IOMMU info flags and capability ids.
const (
	iommuInfoPgsizes     = 1 << 0
	iommuInfoCaps        = 1 << 1
	iommuCapIOVARange    = 1 // VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE
	iommuCapDMAAvailable = 3 // VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL
)

// PCI configuration space (PCI Local Bus 3.0, 6.2).
const (
	pciVendorID      = 0x00
	pciDeviceID      = 0x02
	pciCommand       = 0x04
	pciCommandMemory = 1 << 1 // Memory Space Enable
	pciCommandMaster = 1 << 2 // Bus Master Enable
)

// struct vfio_group_status.
type groupStatus struct {
	Argsz uint32
	Flags uint32
}

// struct vfio_device_info (6.1: argsz, flags, num_regions, num_irqs, cap_offset).
type deviceInfo struct {
	Argsz      uint32
	Flags      uint32
	NumRegions uint32
	NumIRQs    uint32
	CapOffset  uint32
}

// struct vfio_region_info.
type regionInfo struct {
	Argsz     uint32
	Flags     uint32
	Index     uint32
	CapOffset uint32
	Size      uint64
	Offset    uint64
}

// struct vfio_irq_info.
type irqInfo struct {
	Argsz uint32
	Flags uint32
	Index uint32
	Count uint32
}

// struct vfio_irq_set header; data follows it.
type irqSet struct {
	Argsz uint32
	Flags uint32
	Index uint32
	Start uint32
	Count uint32
}

// struct vfio_iommu_type1_info (the header; capabilities follow).
type iommuType1Info struct {
	Argsz       uint32
	Flags       uint32
	IOVAPgsizes uint64
	CapOffset   uint32
	_           uint32
}

// struct vfio_info_cap_header.
type infoCapHeader struct {
	ID      uint16
	Version uint16
	Next    uint32
}

// struct vfio_iommu_type1_info_cap_iova_range (without the ranges).
type capIOVARange struct {
	Header   infoCapHeader
	NrIOVAs  uint32
	Reserved uint32
}

// struct vfio_iova_range: an inclusive range.
type iovaRange struct {
	Start uint64
	End   uint64
}

// struct vfio_iommu_type1_dma_map.
type dmaMap struct {
	Argsz uint32
	Flags uint32
	Vaddr uint64
	IOVA  uint64
	Size  uint64
}

// struct vfio_iommu_type1_dma_unmap (no bitmap).
type dmaUnmap struct {
	Argsz uint32
	Flags uint32
	IOVA  uint64
	Size  uint64
}

// ioctlPtr issues an ioctl whose argument is a pointer.
func ioctlPtr(fd int, req uintptr, arg unsafe.Pointer) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if errno != 0 {
		return r, errno
	}
	return r, nil
}

// ioctlInt issues an ioctl whose argument is an integer value.
func ioctlInt(fd int, req uintptr, arg uintptr) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
	if errno != 0 {
		return r, errno
	}
	return r, nil
}

func ioctlName(req uintptr) string {
	names := map[uintptr]string{
		ioctlGetAPIVersion: "VFIO_GET_API_VERSION", ioctlCheckExtension: "VFIO_CHECK_EXTENSION",
		ioctlSetIOMMU: "VFIO_SET_IOMMU", ioctlGroupGetStatus: "VFIO_GROUP_GET_STATUS",
		ioctlGroupSetContainer: "VFIO_GROUP_SET_CONTAINER", ioctlGroupUnsetContainer: "VFIO_GROUP_UNSET_CONTAINER",
		ioctlGroupGetDeviceFD: "VFIO_GROUP_GET_DEVICE_FD", ioctlDeviceGetInfo: "VFIO_DEVICE_GET_INFO",
		ioctlDeviceGetRegionInfo: "VFIO_DEVICE_GET_REGION_INFO", ioctlDeviceGetIRQInfo: "VFIO_DEVICE_GET_IRQ_INFO",
		ioctlDeviceSetIRQs: "VFIO_DEVICE_SET_IRQS", ioctlDeviceReset: "VFIO_DEVICE_RESET",
		ioctlIOMMUGetInfo: "VFIO_IOMMU_GET_INFO", ioctlIOMMUMapDMA: "VFIO_IOMMU_MAP_DMA",
		ioctlIOMMUUnmapDMA: "VFIO_IOMMU_UNMAP_DMA",
	}
	if n, ok := names[req]; ok {
		return n
	}
	return fmt.Sprintf("ioctl %#x", req)
}
