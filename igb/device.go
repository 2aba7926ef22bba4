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

	"github.com/verinic/verinic/dma"
)

// Device is the seam between the driver and an 82576 (the same seam as
// ixgbe.Device, so one value satisfies both).
type Device interface {
	// Read32 loads the 32-bit register at byte offset reg of BAR0; a
	// device that is gone reads all ones.
	Read32(reg uint32) uint32
	// Write32 stores v to the register at reg; the store publishes every
	// memory write made before it (descriptors before a tail write).
	Write32(reg uint32, v uint32)
	// DMA returns the allocator of memory the device can reach.
	DMA() *dma.Allocator
	// Name identifies the device in messages.
	Name() string
}

// Clock is the time source of the driver's waits.
type Clock interface {
	Now() time.Time
	Sleep(d time.Duration)
}

type realClock struct{}

func (realClock) Now() time.Time        { return time.Now() }
func (realClock) Sleep(d time.Duration) { time.Sleep(d) }

// RealClock is the wall clock.
var RealClock Clock = realClock{}

// Interrupts delivers a device's MSI-X vectors with the semantics of an
// eventfd: Wait blocks until vector v has fired since the last Wait
// (timeout < 0: for ever; 0: poll only) and returns how many times.
// vfio.Interrupts satisfies it (as it does ixgbe.Interrupts).
type Interrupts interface {
	Wait(vector int, timeout time.Duration) (uint64, error)
}
