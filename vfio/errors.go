package vfio

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/vfio/pci"
)

// Errors that explain why a device cannot be opened. Each error returned by
// Open wraps one of them (test with errors.Is) and says what to do.
var (
	// ErrNoIOMMU: the device has no IOMMU group; the IOMMU is off or absent.
	ErrNoIOMMU = errors.New("no IOMMU")
	// ErrNoVFIO: /dev/vfio/vfio is missing; the vfio modules are not loaded.
	ErrNoVFIO = errors.New("VFIO is not available")
	// ErrNotBound: the device is not bound to vfio-pci.
	ErrNotBound = errors.New("not bound to vfio-pci")
	// ErrGroupNotViable: another device of the IOMMU group is bound to a
	// kernel driver, so the group cannot be given to user space.
	ErrGroupNotViable = errors.New("IOMMU group not viable")
	// ErrPermission: /dev/vfio/N cannot be opened by this user.
	ErrPermission = errors.New("permission denied")
	// ErrBusy: the device (or its group) is already open.
	ErrBusy = errors.New("device busy")
	// ErrMemlock: pinning DMA memory exceeded RLIMIT_MEMLOCK.
	ErrMemlock = errors.New("locked-memory limit reached")
	// ErrUnsupported: the kernel's VFIO lacks something verinic needs.
	ErrUnsupported = errors.New("unsupported by this kernel's VFIO")
)

// ErrNoHugepages is dma.ErrNoHugepages: no 2 MiB pages are reserved.
var ErrNoHugepages = dma.ErrNoHugepages

var _ dma.Mapper = (*Container)(nil)

// Hints, the "what to do" parts of the messages.
const (
	hintIOMMU = "the IOMMU is off: enable VT-d (Intel) or AMD-Vi (AMD) in the firmware and boot Linux with intel_iommu=on (or amd_iommu=on) on the kernel command line, then check that /sys/kernel/iommu_groups is not empty"
	hintVFIO  = "load the VFIO driver: modprobe vfio-pci"
)

func notBoundHint(addr string) string {
	return "bind it first: nicctl bind " + addr
}

// memlockHint reports the current limit in the message.
func memlockHint() string {
	var lim unix.Rlimit
	cur := "unknown"
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim); err == nil {
		if lim.Cur == unix.RLIM_INFINITY {
			cur = "unlimited"
		} else {
			cur = fmt.Sprintf("%d KiB", lim.Cur/1024)
		}
	}
	return fmt.Sprintf("VFIO pins DMA memory and counts it against the locked-memory limit (now %s): raise it with ulimit -l unlimited (or LimitMEMLOCK= in a systemd unit), or run as root", cur)
}

// groupNotViable builds the error for a group that is not viable, naming the
// devices that keep it so.
func groupNotViable(sys *pci.Sysfs, group int) error {
	devs, err := sys.GroupDevices(group)
	if err != nil {
		return fmt.Errorf("IOMMU group %d is not viable (%w) and its devices cannot be listed: %v", group, ErrGroupNotViable, err)
	}
	var blockers, cmds []string
	for _, d := range devs {
		if d.Driver != "" && d.Driver != pci.VFIODriver {
			blockers = append(blockers, fmt.Sprintf("%s (%s, bound to %s)", d.Address, d.VendorDevice(), d.Driver))
			cmds = append(cmds, "nicctl bind "+d.Address)
		}
	}
	if len(blockers) == 0 {
		return fmt.Errorf("IOMMU group %d is not viable (%w): every device of it must be bound to vfio-pci or to no driver", group, ErrGroupNotViable)
	}
	return fmt.Errorf("IOMMU group %d is not viable (%w): it also holds %s, which the kernel still drives; every device of a group must be bound to vfio-pci or to no driver: %s",
		group, ErrGroupNotViable, strings.Join(blockers, ", "), strings.Join(cmds, "; "))
}
