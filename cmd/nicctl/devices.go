package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/verinic/verinic/igb"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/vfio/pci"
)

func init() {
	register(&command{
		name:    "devices",
		summary: "list network PCI devices: vendor:device, driver, IOMMU group, NUMA node, interfaces, 82599/82576 support",
		usage:   "[--json] [--all] [--ids]",
		run:     runDevices,
	})
}

func runDevices(args []string) error {
	fs := newFlagSet("devices")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	all := fs.Bool("all", false, "list every PCI device, not only network controllers")
	ids := fs.Bool("ids", false, "list the 82599 and 82576 device IDs the drivers support, and why they do not support the others")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return errUsage
	}
	if *ids {
		return printSupportTable(*asJSON)
	}
	var devs []pci.Device
	var err error
	if *all {
		devs, err = pci.System.List()
	} else {
		devs, err = pci.System.NetworkDevices()
	}
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]deviceJSON, len(devs))
		for i, d := range devs {
			s := lookupSupport(d.Vendor, d.DeviceID)
			out[i] = deviceJSON{d, hexID(d.Vendor), hexID(d.DeviceID), classID(d.Class), s.family, s.supported, s.note()}
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(devs) == 0 {
		fmt.Println("no network PCI devices")
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tID\tDRIVER\tIOMMU\tNUMA\tINTERFACE\tSUPPORT")
	for _, d := range devs {
		driver := d.Driver
		if driver == "" {
			driver = "-"
		}
		group := "-"
		if d.IOMMUGroup >= 0 {
			group = strconv.Itoa(d.IOMMUGroup)
		}
		numa := "-"
		if d.NUMANode >= 0 {
			numa = strconv.Itoa(d.NUMANode)
		}
		var ifs []string
		for _, i := range d.Interfaces {
			state := "down"
			if i.Up {
				state = "up"
			}
			if len(i.Addresses) > 0 {
				state += "," + strconv.Itoa(len(i.Addresses)) + " addr"
			}
			ifs = append(ifs, i.Name+"("+state+")")
		}
		iface := strings.Join(ifs, " ")
		if iface == "" {
			iface = "-"
		}
		support := lookupSupport(d.Vendor, d.DeviceID).note()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Address, d.VendorDevice(), driver, group, numa, iface, support)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !pci.System.IOMMUEnabled() {
		fmt.Println()
		fmt.Println("note: no IOMMU is enabled, so no device can be used through VFIO. Enable VT-d (Intel) or AMD-Vi")
		fmt.Println("in the firmware and boot Linux with intel_iommu=on (or amd_iommu=on) on the kernel command line.")
	}
	return nil
}

// deviceJSON is a device as devices --json prints it: pci.Device with its
// vendor, device and class in hex, as lspci shows them ("0x8086",
// "0x10fb", "0x020000").
type deviceJSON struct {
	pci.Device
	Vendor   hexID   `json:"vendor"`
	DeviceID hexID   `json:"device"`
	Class    classID `json:"class"`
	// Family is the NIC family whose driver would take it ("82599",
	// "82576"; "" for neither); Supported is that driver's verdict
	// (ixgbe.LookupDevice, igb.LookupDevice), which replaces pci.Device's
	// "is an 82599"; Support says why.
	Family    string `json:"family,omitempty"`
	Supported bool   `json:"supported"`
	Support   string `json:"support"`
}

// printSupportTable prints every 82599 and 82576 device ID with its
// driver's verdict.
func printSupportTable(asJSON bool) error {
	type row struct {
		Vendor    hexID  `json:"vendor"`
		DeviceID  hexID  `json:"device"`
		Family    string `json:"family"`
		Driver    string `json:"driver"`
		Model     string `json:"model"`
		Media     string `json:"media"`
		Supported bool   `json:"supported"`
		Why       string `json:"why,omitempty"`
	}
	var rows []row
	for _, d := range ixgbe.Devices82599() {
		rows = append(rows, row{hexID(ixgbe.IntelVendorID), hexID(d.DeviceID), "82599", "ixgbe", d.Model, string(d.Media), d.Supported, d.Why})
	}
	for _, d := range igb.Devices82576() {
		rows = append(rows, row{hexID(igb.IntelVendorID), hexID(d.DeviceID), "82576", "igb", d.Model, string(d.Media), d.Supported, d.Why})
	}
	if asJSON {
		return printJSON(rows)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDRIVER\tMODEL\tPORT\tSUPPORTED")
	for _, d := range rows {
		verdict := "yes"
		if !d.Supported {
			verdict = "no: " + d.Why
		}
		fmt.Fprintf(tw, "%04x:%04x\t%s\t%s\t%s\t%s\n", uint64(d.Vendor), uint64(d.DeviceID), d.Driver, d.Model, d.Media, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Println()
	fmt.Println("ixgbe sets the 82599's link up as 10 Gb/s serial (SFI), which is what SFP+ ports need; other port types")
	fmt.Println("need link set-up it does not do, so ixgbe.New refuses them (ErrUnsupportedDevice). igb drives the 82576's")
	fmt.Println("internal copper PHY (QEMU's -device igb is one); its fiber and SerDes ports are refused the same way.")
	return nil
}

// classID is a 24-bit PCI class code, in JSON as six hex digits.
type classID uint32

func (c classID) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf(`"0x%06x"`, uint32(c))), nil
}
