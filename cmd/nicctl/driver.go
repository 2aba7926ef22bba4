package main

import (
	"fmt"
	"time"

	"github.com/verinic/verinic/advring"
	"github.com/verinic/verinic/igb"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/proto/link"
	"github.com/verinic/verinic/trace"
	"github.com/verinic/verinic/vfio"
)

// The commands that take a device (stats, capture, sim/serve/ping --dev)
// start a driver on it through startDriver, which picks the family by the
// device's PCI vendor:device: the 82576 (igb, QEMU's "-device igb") or the
// 82599 (ixgbe; also every simulated device). The commands then use the
// driver through nicDriver only, so each command's code serves both.

// nicDriver is a running driver of either family.
type nicDriver interface {
	link.Link
	// traceNIC: Name, queues, rings and pools, for a trace header.
	traceNIC
	Close() error
	// Family is "82599" or "82576".
	Family() string
	// LinkState formats the link for humans ("up 1000 Mb/s full duplex").
	LinkState() string
	// EnableIRQ puts the receive queues in interrupt mode over src's
	// vectors, one per queue (ixgbe.NIC/igb.NIC.EnableInterrupts).
	EnableIRQ(src vectorWaiter, itr time.Duration) error
	// SetPollAbove turns the rate-based switch to busy polling on above
	// rate frames/s per queue (0: off).
	SetPollAbove(rate float64) error
	// Counters are the device's receive counts every command reports.
	Counters() (rxPackets, rxMissed, rxCRCErrors uint64)
}

// vectorWaiter is an interrupt source of either family (ixgbe.Interrupts
// and igb.Interrupts have this one method).
type vectorWaiter interface {
	Wait(vector int, timeout time.Duration) (uint64, error)
}

// driverConfig is what the commands choose; the rest is each family's
// default.
type driverConfig struct {
	rxQueues, txQueues int
	promiscuous        bool
	// linkTimeout: 0 is the family's default wait for the link.
	linkTimeout time.Duration
	// trace records the ring engine's events (nil: none), stamped with
	// device number devID (--trace).
	trace *trace.Recorder
	devID uint16
}

// familyOf returns the family of dev by its PCI IDs: "82576" for an 82576
// device ID, "82599" otherwise (a simulated device, or a device without
// IDs).
func familyOf(dev ixgbe.Device) string {
	if d, ok := dev.(interface {
		IDs() (vendor, device uint16, err error)
	}); ok {
		if v, id, err := d.IDs(); err == nil && igb.Is82576(v, id) {
			return "82576"
		}
	}
	return "82599"
}

// startDriver starts dev's family's driver on it.
func startDriver(dev ixgbe.Device, c driverConfig) (nicDriver, error) {
	if familyOf(dev) == "82576" {
		n, err := igb.New(dev, igb.Config{RxQueues: c.rxQueues, TxQueues: c.txQueues, Promiscuous: c.promiscuous, LinkTimeout: c.linkTimeout,
			Trace: c.trace, DevID: c.devID})
		if err != nil {
			return nil, err
		}
		return igbDriver{n}, nil
	}
	n, err := ixgbe.New(dev, ixgbe.Config{RxQueues: c.rxQueues, TxQueues: c.txQueues, Promiscuous: c.promiscuous, LinkTimeout: c.linkTimeout,
		Trace: c.trace, DevID: c.devID})
	if err != nil {
		return nil, err
	}
	return ixgbeDriver{n}, nil
}

// ixgbeDriver and igbDriver embed their NIC, so that the optional link
// interfaces (RxNotifier, Offloader, DropCounter, Allocator) stay visible.
type ixgbeDriver struct{ *ixgbe.NIC }

func (ixgbeDriver) Family() string      { return "82599" }
func (d ixgbeDriver) LinkState() string { return d.Link().String() }
func (d ixgbeDriver) EnableIRQ(src vectorWaiter, itr time.Duration) error {
	return d.EnableInterrupts(src, itr)
}
func (d ixgbeDriver) SetPollAbove(rate float64) error {
	return d.SetAdaptivePolling(ixgbe.AdaptivePolling{Rate: rate})
}
func (d ixgbeDriver) Counters() (uint64, uint64, uint64) {
	st := d.Stats()
	return st.RxPackets, st.RxMissed, st.RxCRCErrors
}

type igbDriver struct{ *igb.NIC }

func (igbDriver) Family() string      { return "82576" }
func (d igbDriver) LinkState() string { return d.Link().String() }
func (d igbDriver) EnableIRQ(src vectorWaiter, itr time.Duration) error {
	return d.EnableInterrupts(src, itr)
}
func (d igbDriver) SetPollAbove(rate float64) error {
	return d.SetAdaptivePolling(advring.AdaptivePolling{Rate: rate})
}
func (d igbDriver) Counters() (uint64, uint64, uint64) {
	st, err := d.ReadStats()
	if err != nil {
		return 0, 0, 0
	}
	return st.RxPackets, st.RxMissed, st.RxCRCErrors
}

// deviceSupport is the verdict of the driver of a PCI device's family.
type deviceSupport struct {
	family    string // "82599", "82576" or "" (neither)
	model     string
	media     string
	supported bool
	why       string
}

// lookupSupport asks each family's driver about vendor:device.
func lookupSupport(vendor, device uint16) deviceSupport {
	if s := igb.LookupDevice(vendor, device); s.Media != igb.MediaUnknown {
		return deviceSupport{"82576", s.Model, string(s.Media), s.Supported, s.Why}
	}
	s := ixgbe.LookupDevice(vendor, device)
	if s.Media == ixgbe.MediaUnknown {
		return deviceSupport{why: "not an 82599 or an 82576 (Intel 8086 with a device ID of either family)"}
	}
	return deviceSupport{"82599", s.Model, string(s.Media), s.Supported, s.Why}
}

// note is the SUPPORT column of nicctl devices.
func (s deviceSupport) note() string {
	switch {
	case s.family == "":
		return "-"
	case s.supported:
		return fmt.Sprintf("yes: %s (%s)", s.model, driverName(s.family))
	}
	return fmt.Sprintf("no: %s, %s: %s", s.model, s.media, s.why)
}

func driverName(family string) string {
	if family == "82576" {
		return "igb"
	}
	return "ixgbe"
}

// faultWatch watches the kernel log for the IOMMU faults of a device
// opened through VFIO (vfio.WatchFaults: a DMA to an address the device
// was not given, which the IOMMU refused and the kernel logged), so that a
// command can report what its driver cannot see: a device does not tell
// its driver that a DMA was refused.
type faultWatch struct {
	w   *vfio.FaultWatcher
	why string // why nothing is watched ("" when w is set)
}

// watchFaults starts watching dev's faults: none for a simulated device
// (its IOMMU model counts them itself), and a reason when the kernel log
// cannot be read (it needs root or CAP_SYSLOG).
func watchFaults(dev ixgbe.Device) *faultWatch {
	d, ok := dev.(*vfio.Device)
	if !ok {
		return &faultWatch{why: "simulated device"}
	}
	w, err := vfio.WatchFaults(d.Name())
	if err != nil {
		return &faultWatch{why: err.Error()}
	}
	return &faultWatch{w: w}
}

// collect returns the faults logged since watchFaults (nil when nothing is
// watched, with why).
func (f *faultWatch) collect() (faults []string, why string) {
	if f.w == nil {
		return nil, f.why
	}
	got, err := f.w.Poll()
	faults = []string{}
	for _, x := range got {
		faults = append(faults, x.String())
	}
	if err != nil {
		return faults, err.Error()
	}
	return faults, ""
}

// close stops watching.
func (f *faultWatch) close() {
	if f.w != nil {
		f.w.Close()
	}
}
