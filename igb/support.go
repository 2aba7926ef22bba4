package igb

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// IntelVendorID is Intel's PCI vendor ID.
const IntelVendorID = 0x8086

// Media is the kind of port an 82576 device ID has.
type Media string

// Port types of the 82576 family.
const (
	MediaCopper  Media = "copper (internal PHY)"
	MediaFiber   Media = "fiber"
	MediaSerDes  Media = "SerDes"
	MediaVF      Media = "virtual function"
	MediaUnknown Media = "unknown"
)

// DeviceSupport is the driver's verdict on one device ID: the model and
// port type, whether New sets it up and, if not, Why (what is missing).
type DeviceSupport struct {
	DeviceID  uint16 // PCI device ID (vendor 8086)
	Model     string // "82576", "82576 fiber"...
	Media     Media  // the port type
	Supported bool   // New sets it up
	Why       string // for an unsupported ID: what is missing
}

const (
	whyPCS = "the port's link goes through the PCS (SerDes/fiber), whose set-up (PCS_LCTL, auto-negotiation over 1000BASE-X) the driver does not do; it drives the internal copper PHY only"
	whyVF  = "a virtual function has no PHY, MAC set-up or RSS of its own: it is driven through the PF's mailbox, which the driver does not speak"
)

// devices82576 are the 82576 device IDs Linux's igb driver knows
// (e1000_hw.h; QEMU's igb_regs.h has the same list), by ID, with what the
// driver does with each.
var devices82576 = map[uint16]DeviceSupport{
	0x10C9: {0x10C9, "82576", MediaCopper, true, ""},
	0x10E8: {0x10E8, "82576 quad copper", MediaCopper, true, ""},
	0x1526: {0x1526, "82576 quad copper ET2", MediaCopper, true, ""},
	0x150A: {0x150A, "82576NS", MediaCopper, true, ""},
	0x10E6: {0x10E6, "82576 fiber", MediaFiber, false, whyPCS},
	0x10E7: {0x10E7, "82576 SerDes", MediaSerDes, false, whyPCS},
	0x150D: {0x150D, "82576 SerDes quad", MediaSerDes, false, whyPCS},
	0x1518: {0x1518, "82576NS SerDes", MediaSerDes, false, whyPCS},
	0x10CA: {0x10CA, "82576 virtual function", MediaVF, false, whyVF},
}

// ErrUnsupportedDevice is returned (wrapped) by New for a device ID the
// driver does not set up.
var ErrUnsupportedDevice = errors.New("igb: unsupported device")

// LookupDevice returns the driver's verdict on a PCI vendor:device pair. An
// ID that is not an 82576 has Media MediaUnknown.
func LookupDevice(vendor, device uint16) DeviceSupport {
	if d, ok := devices82576[device]; ok && vendor == IntelVendorID {
		return d
	}
	return DeviceSupport{DeviceID: device, Model: fmt.Sprintf("%04x:%04x", vendor, device), Media: MediaUnknown,
		Why: "not an 82576 (Intel 8086 with an 82576 device ID)"}
}

// Is82576 reports whether vendor:device is a member of the 82576 family,
// supported or not.
func Is82576(vendor, device uint16) bool {
	_, ok := devices82576[device]
	return ok && vendor == IntelVendorID
}

// Devices82576 lists every 82576 device ID: the supported ones first, each
// group by ID.
func Devices82576() []DeviceSupport {
	out := make([]DeviceSupport, 0, len(devices82576))
	for _, d := range devices82576 {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b DeviceSupport) int {
		if a.Supported != b.Supported {
			if a.Supported {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.DeviceID, b.DeviceID)
	})
	return out
}

// checkSupported refuses a device New cannot set up. A Device that does
// not report its PCI IDs (vfio.Device does) is taken on trust.
func (n *NIC) checkSupported() error {
	n.info.Model = "82576 (PCI IDs not reported by the device)"
	ider, ok := n.dev.(interface {
		IDs() (vendor, device uint16, err error)
	})
	if !ok {
		return nil
	}
	v, d, err := ider.IDs()
	s := LookupDevice(v, d)
	switch {
	case err != nil:
		return fmt.Errorf("igb: %s: reading PCI IDs: %w", n.name, err)
	case !s.Supported:
		err = fmt.Errorf("igb: %s: %04x:%04x (%s, %s): %s: %w", n.name, v, d, s.Model, s.Media, s.Why, ErrUnsupportedDevice)
	}
	n.info.VendorID, n.info.DeviceID, n.info.Model, n.info.Media = v, d, s.Model, s.Media
	return err
}
