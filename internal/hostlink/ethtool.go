//go:build linux

package hostlink

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Legacy ethtool commands (linux/ethtool.h) that set one feature from a
// struct ethtool_value.
const (
	ethtoolSTXCSUM = 0x17 // transmit checksum offload
	ethtoolSTSO    = 0x1f // TCP segmentation offload
	ethtoolSGSO    = 0x24 // generic segmentation offload
	ethtoolSGRO    = 0x2c // generic receive offload
)

type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqPtr is struct ifreq with ifr_data: the interface name and a pointer.
type ifreqPtr struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// DisableOffloads turns off transmit checksum offload, TSO, GSO and GRO on an
// interface in the calling thread's namespace, like `ethtool -K IF tx off
// tso off gso off gro off`. Frames the kernel sends through it then carry
// complete checksums and are at most one MTU long, as on a real wire, which
// is what a simulated NIC behind a veth peer must see.
func DisableOffloads(ifname string) error {
	if len(ifname) >= unix.IFNAMSIZ {
		return fmt.Errorf("hostlink: interface name %q too long", ifname)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("hostlink: ethtool socket: %w", err)
	}
	defer unix.Close(fd)
	for _, cmd := range []uint32{ethtoolSTSO, ethtoolSGSO, ethtoolSGRO, ethtoolSTXCSUM} {
		v := ethtoolValue{cmd: cmd}
		var ifr ifreqPtr
		copy(ifr.name[:], ifname)
		ifr.data = unsafe.Pointer(&v)
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
		runtime.KeepAlive(&v)
		if errno != 0 && errno != unix.EOPNOTSUPP {
			return fmt.Errorf("hostlink: ethtool command %#x on %s: %w", cmd, ifname, errno)
		}
	}
	return nil
}
