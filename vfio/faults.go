package vfio

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// IOMMUFault is a DMA fault the kernel's IOMMU driver logged for a device: the
// device tried to reach an IOVA that is not mapped (or not with that access).
type IOMMUFault struct {
	Device string // bus:device.function as the kernel prints it ("00:03.0")
	Addr   uint64 // the faulting IOVA (page-aligned on VT-d)
	Write  bool
	Reason string
	Line   string // the kernel's message
}

func (f IOMMUFault) String() string {
	dir := "read"
	if f.Write {
		dir = "write"
	}
	return fmt.Sprintf("IOMMU fault: device %s DMA %s at IOVA %#x (%s)", f.Device, dir, f.Addr, f.Reason)
}

// FaultWatcher reads the kernel log (/dev/kmsg) for IOMMU faults of one
// device, from the moment it is created. Reading /dev/kmsg needs root (or
// CAP_SYSLOG where dmesg_restrict is set).
type FaultWatcher struct {
	fd     int
	device string // "00:03.0"
}

// WatchFaults starts watching the kernel log for IOMMU faults of the device
// at address (e.g. "0000:00:03.0").
func WatchFaults(address string) (*FaultWatcher, error) {
	short := address
	if len(address) == len("0000:00:00.0") {
		short = address[5:]
	}
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vfio: watch IOMMU faults: open /dev/kmsg: %w", err)
	}
	if _, err := unix.Seek(fd, 0, unix.SEEK_END); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vfio: watch IOMMU faults: seek /dev/kmsg: %w", err)
	}
	return &FaultWatcher{fd: fd, device: strings.ToLower(short)}, nil
}

var (
	// Intel VT-d (drivers/iommu/intel/dmar.c, dmar_fault_do_one):
	// "DMAR: [DMA Read NO_PASID] Request device [00:03.0] fault addr 0x7000000000 [fault reason 0x06] PTE Read access is not set"
	vtdFault = regexp.MustCompile(`DMAR: \[(DMA Read|DMA Write|INTR-REMAP)[^\]]*\] Request device \[([0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\] (?:fault addr|fault index) (0x[0-9a-f]+) \[fault reason (0x[0-9a-f]+)\] ?(.*)`)
	// AMD-Vi (drivers/iommu/amd/iommu.c, amd_iommu_report_page_fault):
	// "AMD-Vi: Event logged [IO_PAGE_FAULT device=00:03.0 domain=0x0000 address=0x7000000000 flags=0x0020]"
	amdFault = regexp.MustCompile(`Event logged \[IO_PAGE_FAULT device=(?:[0-9a-f]{4}:)?([0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) domain=0x[0-9a-f]+ address=(0x[0-9a-f]+) flags=(0x[0-9a-f]+)\]`)
)

// parseFault recognizes an IOMMU fault message.
func parseFault(msg string) (IOMMUFault, bool) {
	if m := vtdFault.FindStringSubmatch(msg); m != nil {
		addr, err := strconv.ParseUint(m[3], 0, 64)
		if err != nil || m[1] == "INTR-REMAP" {
			return IOMMUFault{}, false
		}
		return IOMMUFault{Device: m[2], Addr: addr, Write: m[1] == "DMA Write",
			Reason: strings.TrimSpace("fault reason " + m[4] + " " + m[5]), Line: msg}, true
	}
	if m := amdFault.FindStringSubmatch(msg); m != nil {
		addr, err := strconv.ParseUint(m[2], 0, 64)
		if err != nil {
			return IOMMUFault{}, false
		}
		flags, _ := strconv.ParseUint(m[3], 0, 32)
		return IOMMUFault{Device: m[1], Addr: addr, Write: flags&0x20 != 0, Reason: "IO_PAGE_FAULT flags " + m[3], Line: msg}, true
	}
	return IOMMUFault{}, false
}

// Poll returns the device's faults logged since the last Poll.
func (w *FaultWatcher) Poll() ([]IOMMUFault, error) {
	var faults []IOMMUFault
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(w.fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return faults, nil
		}
		if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.EINTR) {
			continue // records were overwritten before we read them
		}
		if err != nil {
			return faults, fmt.Errorf("vfio: read /dev/kmsg: %w", err)
		}
		// "prio,seq,usec,flags;message\n"
		rec := string(buf[:n])
		if i := strings.IndexByte(rec, ';'); i >= 0 {
			rec = rec[i+1:]
		}
		rec = strings.TrimRight(rec, "\n")
		if f, ok := parseFault(rec); ok && f.Device == w.device {
			faults = append(faults, f)
		}
	}
}

// Close stops watching.
func (w *FaultWatcher) Close() error { return unix.Close(w.fd) }
