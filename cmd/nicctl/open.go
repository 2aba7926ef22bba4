package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/igb"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/vfio"
	"github.com/verinic/verinic/vfio/hugepages"
	"github.com/verinic/verinic/vfio/pci"
)

// openSim opens a simulated 82599 ("sim", "sim0", ...).
//
// LEAD HOOK: the lead sets this (from the file that wires up ixgbesim) so
// that every subcommand names simulated devices the same way. openDevice
// routes every name starting with "sim" here.
var openSim func(name string) (ixgbe.Device, error)

// A VFIO device is what the driver drives.
var _ ixgbe.Device = (*vfio.Device)(nil)

// openOptions tunes openDevice.
type openOptions struct {
	// allowUnsupported opens a PCI device that is not an 82599 the driver
	// supports (for diagnostics: nicctl open).
	allowUnsupported bool
	// hugepages is the DMA memory policy of a real device; real NICs want
	// hugepages, so the default is to require them.
	hugepages dma.HugepagePolicy
	// hugepagesSet marks hugepages as chosen (the zero value is Prefer).
	hugepagesSet bool
}

// openDevice opens the device every subcommand works on: a PCI address
// opens a real NIC through VFIO (all opened devices share one VFIO container,
// so they can reach each other's DMA memory); "sim..." opens a simulated one
// through the openSim hook. Every failure says what is wrong and what to do.
// Close the device with closeDevice.
func openDevice(name string, opts ...openOptions) (ixgbe.Device, error) {
	var o openOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if strings.HasPrefix(name, "sim") {
		if openSim == nil {
			return nil, fmt.Errorf("%s: simulated devices are not available in this build of nicctl", name)
		}
		return openSim(name)
	}
	addr, err := pci.ParseAddress(name)
	if err != nil {
		return nil, fmt.Errorf("%q names no device: give a PCI address such as 0000:03:00.0 (nicctl devices lists them) or sim for a simulated 82599", name)
	}
	info, err := pci.System.Lookup(addr)
	if err != nil {
		return nil, err
	}
	if s := lookupSupport(info.Vendor, info.DeviceID); !s.supported && !o.allowUnsupported {
		what := info.VendorDevice()
		if s.family != "" {
			what += " (" + s.model + ", " + s.media + ")"
		}
		return nil, fmt.Errorf("%s is %s: %s; supported Intel device IDs: %s (nicctl devices --ids says why the others are not)",
			addr, what, s.why, supportedIDs())
	}
	// What is wrong with the device comes first, then what the process lacks.
	if err := vfio.Check(addr); err != nil {
		return nil, err
	}
	policy := dma.RequireHugepages
	if o.hugepagesSet {
		policy = o.hugepages
	}
	if policy == dma.RequireHugepages {
		if err := checkHugepages(); err != nil {
			return nil, fmt.Errorf("%s: %w", addr, err)
		}
	}
	if err := checkMemlock(); err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	dev, err := vfio.OpenWith(addr, vfio.Options{Hugepages: policy})
	if err != nil {
		return nil, err
	}
	return dev, nil
}

// closeDevice closes a device from openDevice.
func closeDevice(dev ixgbe.Device) error {
	if c, ok := dev.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func supportedIDs() string {
	var s []string
	for _, d := range ixgbe.Devices82599() {
		if d.Supported {
			s = append(s, fmt.Sprintf("%04x", d.DeviceID))
		}
	}
	for _, d := range igb.Devices82576() {
		if d.Supported {
			s = append(s, fmt.Sprintf("%04x", d.DeviceID))
		}
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

// checkHugepages fails when no 2 MiB page is free.
func checkHugepages() error {
	pools, err := hugepages.System.Status()
	if err != nil {
		return fmt.Errorf("%w (%v)", dma.ErrNoHugepages, err)
	}
	if pools[0].Free == 0 {
		return fmt.Errorf("%d of %d reserved 2 MiB hugepages are free: %w", pools[0].Free, pools[0].Total, dma.ErrNoHugepages)
	}
	return nil
}

// checkMemlock fails early, for a user without CAP_IPC_LOCK, when the
// locked-memory limit cannot hold even the rings and one mempool.
func checkMemlock() error {
	if os.Geteuid() == 0 {
		return nil
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil || lim.Cur == unix.RLIM_INFINITY {
		return nil
	}
	const need = 32 << 20
	if lim.Cur < need {
		return fmt.Errorf("%w: the locked-memory limit is %d KiB and VFIO pins all DMA memory against it (at least %d MiB needed): raise it with ulimit -l unlimited, or run as root", vfio.ErrMemlock, lim.Cur/1024, need>>20)
	}
	return nil
}

func init() {
	register(&command{
		name:    "open",
		summary: "open a PCI device through VFIO and show what it offers (regions, interrupts, IOMMU), without starting the driver",
		usage:   "[--hugepages] PCI-ADDRESS",
		run:     runOpen,
	})
}

// hexID is a PCI ID or register value that JSON shows as lspci does, in
// hexadecimal ("0x8086"), not as a decimal number.
type hexID uint64

// MarshalJSON writes at least four hex digits ("0x8086", "0x10fb").
func (h hexID) MarshalJSON() ([]byte, error) { return []byte(fmt.Sprintf(`"0x%04x"`, uint64(h))), nil }

// openReport is what nicctl open --json prints.
type openReport struct {
	Name       string       `json:"name"`
	Simulated  bool         `json:"simulated"`
	Vendor     *hexID       `json:"vendor,omitempty"`
	Device     *hexID       `json:"device,omitempty"`
	IOMMUGroup int          `json:"iommu_group"`
	Command    hexID        `json:"pci_command"`
	BusMaster  bool         `json:"bus_master"`
	IOMMUType  int          `json:"iommu_type,omitempty"`
	IOVARanges [][2]hexID   `json:"iova_ranges,omitempty"`
	Regions    []openRegion `json:"regions,omitempty"`
	IRQs       []openIRQ    `json:"interrupts,omitempty"`
	Reset      bool         `json:"reset"`
	Status     hexID        `json:"bar0_status"`
}

type openRegion struct {
	Name     string `json:"name"`
	Size     uint64 `json:"size"`
	Offset   hexID  `json:"offset"`
	Flags    hexID  `json:"flags"`
	Mappable bool   `json:"mmap"`
}

type openIRQ struct {
	Kind    string `json:"kind"`
	Vectors int    `json:"vectors"`
	Eventfd bool   `json:"eventfd"`
}

func runOpen(args []string) error {
	fs := newFlagSet("open")
	requireHugepages := fs.Bool("hugepages", false, "require free hugepages, as the driver does")
	asJSON := fs.Bool("json", false, "print what the device offers as JSON (IDs and addresses as hex strings)")
	if err := parseFlags(fs, splitFlags(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("name one device: a PCI address (nicctl devices lists them) or sim")
	}
	policy := dma.PreferHugepages
	if *requireHugepages {
		policy = dma.RequireHugepages
	}
	dev, err := openDevice(fs.Arg(0), openOptions{allowUnsupported: true, hugepages: policy, hugepagesSet: true})
	if err != nil {
		return err
	}
	defer closeDevice(dev)
	rep := openReport{Name: dev.Name(), IOMMUGroup: -1}
	d, ok := dev.(*vfio.Device)
	if !ok {
		rep.Simulated = true
		rep.Status = hexID(dev.Read32(8))
		if *asJSON {
			return printJSON(rep)
		}
		fmt.Printf("%s: opened (simulated 82599)\n", dev.Name())
		return nil
	}
	vendor, device, err := d.IDs()
	if err != nil {
		return err
	}
	cmd, _ := d.Command()
	v, dv := hexID(vendor), hexID(device)
	rep.Vendor, rep.Device, rep.IOMMUGroup, rep.Command, rep.BusMaster = &v, &dv, d.IOMMUGroup(), hexID(cmd), cmd&(1<<2) != 0
	c := d.Container()
	rep.IOMMUType = int(c.IOMMUType())
	for _, r := range c.IOVARanges() {
		rep.IOVARanges = append(rep.IOVARanges, [2]hexID{hexID(r.Start), hexID(r.End)})
	}
	for i := 0; i < d.NumRegions(); i++ {
		r, err := d.RegionInfo(i)
		if err != nil || r.Size == 0 {
			continue
		}
		name := fmt.Sprintf("BAR%d", i)
		switch i {
		case vfio.RegionROM:
			name = "ROM"
		case vfio.RegionConfig:
			name = "config"
		}
		rep.Regions = append(rep.Regions, openRegion{name, r.Size, hexID(r.Offset), hexID(r.Flags), r.Mappable()})
	}
	for i := 0; i < d.NumIRQs(); i++ {
		info, err := d.IRQInfo(i)
		if err != nil || info.Count == 0 {
			continue
		}
		rep.IRQs = append(rep.IRQs, openIRQ{vfio.IRQIndexName(i), info.Count, info.Flags&vfio.IRQInfoEventfd != 0})
	}
	rep.Reset = d.Flags()&vfio.DeviceFlagsReset != 0
	rep.Status = hexID(d.Read32(8))
	if *asJSON {
		return printJSON(rep)
	}
	fmt.Printf("%s: %04x:%04x, IOMMU group %d, PCI command %#04x (bus master %v)\n", d.Name(), vendor, device, rep.IOMMUGroup, cmd, rep.BusMaster)
	fmt.Printf("container: IOMMU type %d, IOVA ranges", rep.IOMMUType)
	for _, r := range c.IOVARanges() {
		fmt.Printf(" [%#x-%#x]", r.Start, r.End)
	}
	fmt.Println()
	for _, r := range rep.Regions {
		fmt.Printf("  region %-6s %8d bytes at offset %#x, flags %#x (mmap %v)\n", r.Name, r.Size, uint64(r.Offset), uint64(r.Flags), r.Mappable)
	}
	for _, q := range rep.IRQs {
		fmt.Printf("  interrupts %-5s %d vectors, eventfd %v\n", q.Kind, q.Vectors, q.Eventfd)
	}
	if rep.Reset {
		fmt.Println("  reset: supported")
	}
	fmt.Printf("  BAR0[0x0008] (status) = %#08x\n", uint64(rep.Status))
	return nil
}

// printJSON prints v indented on standard output.
func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
