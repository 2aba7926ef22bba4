package pci

// IntelVendorID is Intel's PCI vendor ID.
const IntelVendorID = 0x8086

// supported82599 maps the PCI device IDs of 82599-based physical functions
// (the X520 adapters carry the same IDs) to their names. The list is Linux's
// ixgbe_type.h IXGBE_DEV_ID_82599* (the 82599 entries of ixgbe_pci_tbl),
// checked entry by entry; the virtual functions (0x10ED, 0x152E) have a
// different register set and are not supported.
var supported82599 = map[uint16]string{
	0x10F7: "82599 KX4",
	0x1514: "82599 KX4 Mezzanine",
	0x1517: "82599 KR",
	0x10F8: "82599 Combo Backplane",
	0x10F9: "82599 CX4",
	0x10FB: "82599 SFP+ (X520)",
	0x152A: "82599 Backplane FCoE",
	0x1529: "82599 SFP+ FCoE",
	0x1507: "82599 SFP+ EM",
	0x154D: "82599 SFP+ SF2 (X520)",
	0x154A: "82599 SFP+ SF QP (X520-Q4)",
	0x154F: "82599 LS",
	0x1557: "82599EN SFP+ (X520-DA1)",
	0x1558: "82599 QSFP+ SF QP",
	0x10FC: "82599 XAUI LOM",
	0x151C: "82599 T3 LOM",
}

// Supported82599 reports whether vendor:device is an 82599 (or X520) physical
// function that the verinic driver supports, and its model name.
func Supported82599(vendor, device uint16) (name string, ok bool) {
	if vendor != IntelVendorID {
		return "", false
	}
	name, ok = supported82599[device]
	return name, ok
}

// Supported82599IDs returns the supported device IDs (Intel vendor), for
// documentation and tests.
func Supported82599IDs() []uint16 {
	ids := make([]uint16, 0, len(supported82599))
	for id := range supported82599 {
		ids = append(ids, id)
	}
	return ids
}
