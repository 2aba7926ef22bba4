package ixgbe

import (
	"errors"
	"fmt"
	"sort"
)

// Which 82599 devices the driver supports, and why the others are not.
//
// The 82599's PCI device ID says how its MAC is wired to the outside
// (Linux's ixgbe_get_media_type_82599): an SFP+ cage (SFI), a backplane
// (KX4/KX/KR), CX4, an external 10GBASE-T PHY, and so on. init sets up the
// link one way only: AUTOC.LMS = 10 Gb/s serial without auto-negotiation
// (datasheet 4.6.4, 8.2.3.22.10), with the serial PMA/PMD (SFI) that an SFP+
// board's EEPROM loads into AUTOC2 (as ixy does). That is right for SFP+
// ports and wrong for the rest: a backplane port needs KX4/KX/KR
// auto-negotiation (LMS 100b/110b), CX4 and XAUI the parallel 10G mode,
// 10GBASE-T an external PHY brought up over MDIO, the LS and QSFP+ parts
// their own link set-up. Rather than a port that never links, New refuses
// those device IDs with ErrUnsupportedDevice, naming the reason.

// Media is how a port's MAC reaches the wire.
type Media string

const (
	MediaSFP       Media = "SFP+ (SFI)"
	MediaBackplane Media = "backplane (KX4/KX/KR)"
	MediaCX4       Media = "CX4"
	MediaCopper    Media = "10GBASE-T (external PHY)"
	MediaFiberLCO  Media = "fiber, LCO (82599 LS)"
	MediaQSFP      Media = "QSFP+"
	MediaUnknown   Media = "unknown"
)

// IntelVendorID is Intel's PCI vendor ID.
const IntelVendorID = 0x8086

// DeviceSupport describes one PCI device ID.
type DeviceSupport struct {
	DeviceID  uint16
	Model     string
	Media     Media
	Supported bool
	// Why is the reason an unsupported device is refused ("" when
	// supported).
	Why string
}

const (
	whyBackplane = "init forces 10 Gb/s serial (SFI) without auto-negotiation; a backplane port needs KX4/KX/KR auto-negotiation (AUTOC.LMS 100b/110b), which the driver does not set up"
	whyCX4       = "init forces 10 Gb/s serial (SFI); CX4 needs the parallel 10G mode (AUTOC.LMS 001b, PMA/PMD CX4), which the driver does not set up"
	whyCopper    = "10GBASE-T goes through an external PHY that must be reset and configured over MDIO; the driver has no PHY code"
	whyLCO       = "the LS part's fiber needs Linux's LCO link set-up, which the driver does not do"
	whyQSFP      = "the QSFP+ part's shared I2C bus and link set-up are not handled by the driver"
)

// devices82599 is every 82599 physical-function ID (Linux's ixgbe_type.h
// IXGBE_DEV_ID_82599*), with its media as ixgbe_get_media_type_82599 gives
// it. The virtual functions (0x10ED) have another register set.
var devices82599 = []DeviceSupport{
	{0x10FB, "82599 SFP+ (X520)", MediaSFP, true, ""},
	{0x1529, "82599 SFP+ FCoE", MediaSFP, true, ""},
	{0x1507, "82599 SFP+ EM", MediaSFP, true, ""},
	{0x154D, "82599 SFP+ SF2 (X520)", MediaSFP, true, ""},
	{0x154A, "82599 SFP+ SF QP (X520-Q4)", MediaSFP, true, ""},
	{0x1557, "82599EN SFP+ (X520-DA1)", MediaSFP, true, ""},
	{0x10F7, "82599 KX4", MediaBackplane, false, whyBackplane},
	{0x1514, "82599 KX4 Mezzanine", MediaBackplane, false, whyBackplane},
	{0x10F8, "82599 Combo Backplane", MediaBackplane, false, whyBackplane},
	{0x1517, "82599 KR", MediaBackplane, false, whyBackplane},
	{0x152A, "82599 Backplane FCoE", MediaBackplane, false, whyBackplane},
	{0x10FC, "82599 XAUI LOM", MediaBackplane, false, whyBackplane},
	{0x10F9, "82599 CX4", MediaCX4, false, whyCX4},
	{0x151C, "82599 T3 LOM", MediaCopper, false, whyCopper},
	{0x154F, "82599 LS", MediaFiberLCO, false, whyLCO},
	{0x1558, "82599 QSFP+ SF QP", MediaQSFP, false, whyQSFP},
}

// ErrUnsupportedDevice is returned (wrapped, with the reason) by New for a
// device whose PCI IDs name a part or port type the driver does not set up.
var ErrUnsupportedDevice = errors.New("ixgbe: unsupported device")

// LookupDevice describes vendor:device: an 82599 with its support verdict,
// or an unsupported non-82599 device.
func LookupDevice(vendor, device uint16) DeviceSupport {
	if vendor == IntelVendorID {
		for _, d := range devices82599 {
			if d.DeviceID == device {
				return d
			}
		}
	}
	return DeviceSupport{DeviceID: device, Model: fmt.Sprintf("%04x:%04x", vendor, device), Media: MediaUnknown,
		Why: "not an 82599 physical function (Intel 8086 with an 82599 device ID)"}
}

// Devices82599 returns every 82599 device ID with its verdict, supported
// ones first, each group by ID.
func Devices82599() []DeviceSupport {
	out := append([]DeviceSupport(nil), devices82599...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Supported != out[j].Supported {
			return out[i].Supported
		}
		return out[i].DeviceID < out[j].DeviceID
	})
	return out
}

// pciIDs is what a Device offers when it can tell its PCI IDs:
// vfio.Device reads them from configuration space, ixgbesim.NIC reports
// the ID it models. A Device without it is not checked.
type pciIDs interface {
	IDs() (vendor, device uint16, err error)
}

// checkSupported refuses a device New cannot set up.
func (n *NIC) checkSupported() error {
	d, ok := n.dev.(pciIDs)
	if !ok {
		n.info.Model = "82599 (PCI IDs not reported by the device)"
		return nil
	}
	vendor, device, err := d.IDs()
	if err != nil {
		return fmt.Errorf("ixgbe: %s: reading PCI IDs: %w", n.name, err)
	}
	s := LookupDevice(vendor, device)
	n.info.VendorID, n.info.DeviceID, n.info.Model, n.info.Media = vendor, device, s.Model, s.Media
	if !s.Supported {
		return fmt.Errorf("ixgbe: %s: %04x:%04x (%s, %s): %s: %w", n.name, vendor, device, s.Model, s.Media, s.Why, ErrUnsupportedDevice)
	}
	return nil
}
