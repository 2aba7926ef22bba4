// Package igb is a user-space driver for the Intel 82576 Gigabit Ethernet
// controller (Intel 82576EB GbE Controller datasheet; section numbers are
// cited from memory, see docs/NOTES.md "QEMU igb vs our reading"): reset,
// EEPROM and MAC address, link on the internal copper PHY, receive and
// transmit queues on advanced descriptors with RSS, MSI-X interrupts,
// checksum and segmentation offloads, and statistics.
//
// The 82576 is the 82599's ancestor and shares its advanced descriptors, so
// the RX/TX queues, batching, mempool use and trace recording are the ring
// engine of package advring; this package holds only what is the 82576's:
// its register map (igb/regs), initialization, link and statistics. The
// stack reaches it through proto/link's Link, as it reaches ixgbe.
//
// The driver reaches the hardware only through a Device: 32-bit register
// access to BAR0 and DMA memory the device can reach. vfio.Device provides a
// real (or QEMU-emulated) 82576 through Linux VFIO.
package igb

import (
	"time"

	"github.com/verinic/verinic/advring"
	"github.com/verinic/verinic/dma"
)

// Device is the seam between the driver and an 82576: the ring engine's
// register access (advring.Device: atomic 32-bit loads and stores on BAR0, a
// store publishing the memory writes before it, all ones from a device
// that is gone), DMA memory the device reaches, and a name for messages.
// ixgbe.Device has the same methods, so one value (vfio.Device) serves
// both drivers.
type Device interface {
	advring.Device
	DMA() *dma.Allocator
	Name() string
}

// Clock is the time source of the driver's waits (the engine's).
type Clock = advring.Clock

// Interrupts delivers a device's MSI-X vectors with eventfd semantics (the
// engine's; vfio.Interrupts satisfies it).
type Interrupts = advring.Interrupts

type realClock struct{}

func (realClock) Now() time.Time        { return time.Now() }
func (realClock) Sleep(d time.Duration) { time.Sleep(d) }

// RealClock is the wall clock.
var RealClock Clock = realClock{}
