// Package ixgbe is a user-space driver for the Intel 82599 10 GbE controller
// (datasheet rev. 3.3): register map, reset and initialization
// (4.6.3-4.6.8), link, EEPROM and SFP+ module, RSS, interrupts, statistics
// and MAC filters. The RX and TX queues on advanced descriptors (rings,
// batched receive and transmit, offload context descriptors, trace
// recording) are the ring engine of package advring, which the 82576
// driver (igb) shares; this package describes the 82599 to it (family.go).
//
// The driver reaches the hardware only through a Device: 32-bit access to the
// registers of BAR0 and DMA memory the device can reach. vfio.Device provides
// a real 82599 through Linux VFIO; ixgbesim.NIC provides the software model.
// The driver imports neither.
package ixgbe

import (
	"time"

	"github.com/verinic/verinic/dma"
)

// Device is the seam between the driver and an 82599: real (VFIO) or
// simulated. It is deliberately small.
type Device interface {
	// Read32 loads the 32-bit register at byte offset reg of BAR0. Loads are
	// atomic and not reordered with the driver's other memory accesses (an
	// atomic load on the mapped BAR, or the simulator's register file). A
	// device that is gone (surprise removal) reads all ones.
	Read32(reg uint32) uint32
	// Write32 stores v to the 32-bit register at byte offset reg of BAR0.
	// The store is atomic and publishes every memory write the driver made
	// before it (descriptor contents before a tail write).
	Write32(reg uint32, v uint32)
	// DMA returns the allocator of memory the device can reach (mapped into
	// its IOMMU domain).
	DMA() *dma.Allocator
	// Name identifies the device in messages: a PCI address, or "sim0".
	Name() string
}

// Clock is the time source of the driver's waits: real time by default; the
// simulator's stepped mode supplies a virtual clock so that tests decide when
// time passes.
type Clock interface {
	Now() time.Time
	Sleep(d time.Duration)
}

type realClock struct{}

func (realClock) Now() time.Time        { return time.Now() }
func (realClock) Sleep(d time.Duration) { time.Sleep(d) }

// RealClock is the wall clock.
var RealClock Clock = realClock{}
