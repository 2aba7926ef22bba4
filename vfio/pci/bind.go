package pci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrInterfaceInUse reports that a device's kernel interface is up or has
// addresses, so taking the device away from its driver would cut traffic.
var ErrInterfaceInUse = errors.New("kernel interface in use")

// ErrNotNetwork reports that a device is not a network controller (PCI
// base class 02h): Bind refuses it unless forced, since a mistyped address
// could otherwise take a disk or a USB controller from its driver.
var ErrNotNetwork = errors.New("not a network device")

// ErrNoVFIODriver reports that the vfio-pci driver is not loaded.
var ErrNoVFIODriver = errors.New("the vfio-pci driver is not loaded (load it: modprobe vfio-pci)")

// BindResult says what Bind or Unbind did.
type BindResult struct {
	Address string
	From    string // driver before ("" for none)
	To      string // driver after ("" for none)
}

func (r BindResult) String() string {
	name := func(d string) string {
		if d == "" {
			return "no driver"
		}
		return d
	}
	if r.From == r.To {
		return fmt.Sprintf("%s: already bound to %s", r.Address, name(r.To))
	}
	return fmt.Sprintf("%s: %s -> %s", r.Address, name(r.From), name(r.To))
}

func (s *Sysfs) write(p, v string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte(v))
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

// checkIdle refuses a device whose kernel interfaces are up or addressed.
func checkIdle(d *Device) error {
	for _, ifc := range d.Interfaces {
		var why []string
		if ifc.Up {
			why = append(why, "up")
		}
		if len(ifc.Addresses) > 0 {
			why = append(why, "has addresses "+strings.Join(ifc.Addresses, ", "))
		}
		if len(why) > 0 {
			return fmt.Errorf("%s is kernel interface %s, which is %s: %w; taking the device would cut its traffic. Take it down first (ip link set %s down; ip addr flush dev %s) or pass --force",
				d.Address, ifc.Name, strings.Join(why, " and "), ErrInterfaceInUse, ifc.Name, ifc.Name)
		}
	}
	return nil
}

// Bind gives the device to vfio-pci through driver_override, remembering the
// driver it came from for Unbind. Unless force is set it refuses a device
// that is not a network controller (ErrNotNetwork) and one whose kernel
// interface is up or has addresses (ErrInterfaceInUse). Without an IOMMU it
// says to turn the IOMMU on (loading vfio-pci would not help).
func (s *Sysfs) Bind(address string, force bool) (BindResult, error) {
	d, err := s.Lookup(address)
	if err != nil {
		return BindResult{}, err
	}
	res := BindResult{Address: d.Address, From: d.Driver}
	if d.Driver == VFIODriver {
		res.To = VFIODriver
		return res, nil
	}
	if !force && !d.IsNetwork() {
		driver := "no driver"
		if d.Driver != "" {
			driver = "driver " + d.Driver
		}
		return res, fmt.Errorf("bind %s: %w: PCI class %06x, %s, %s; binding it would take it from the system (check the address with nicctl devices --all), or pass --force to bind it anyway",
			d.Address, ErrNotNetwork, d.Class, d.VendorDevice(), driver)
	}
	if !force {
		if err := checkIdle(d); err != nil {
			return res, err
		}
	}
	if d.IOMMUGroup < 0 {
		return res, fmt.Errorf("bind %s: the device has no IOMMU group, so vfio-pci cannot take it: the IOMMU is off (enable VT-d/AMD-Vi in the firmware and boot Linux with intel_iommu=on or amd_iommu=on)", d.Address)
	}
	if _, err := os.Stat(s.path("bus/pci/drivers", VFIODriver)); err != nil {
		return res, fmt.Errorf("bind %s: %w", d.Address, ErrNoVFIODriver)
	}
	if d.Driver != "" {
		if err := os.MkdirAll(s.stateDir(), 0o755); err == nil {
			// Best effort: without the note Unbind lets the kernel pick a driver.
			_ = os.WriteFile(filepath.Join(s.stateDir(), d.Address), []byte(d.Driver+"\n"), 0o644)
		}
	}
	dir := s.path("bus/pci/devices", d.Address)
	if err := s.write(filepath.Join(dir, "driver_override"), VFIODriver); err != nil {
		return res, fmt.Errorf("bind %s: set driver_override: %w", d.Address, err)
	}
	if d.Driver != "" {
		if err := s.write(s.path("bus/pci/drivers", d.Driver, "unbind"), d.Address); err != nil {
			return res, fmt.Errorf("bind %s: unbind from %s: %w", d.Address, d.Driver, err)
		}
	}
	if err := s.write(s.path("bus/pci/drivers_probe"), d.Address); err != nil {
		return res, fmt.Errorf("bind %s: probe: %w", d.Address, err)
	}
	after, err := s.Lookup(d.Address)
	if err != nil {
		return res, err
	}
	res.To = after.Driver
	if after.Driver != VFIODriver {
		return res, fmt.Errorf("bind %s: vfio-pci did not take the device (now bound to %q); the kernel log (dmesg) says why", d.Address, after.Driver)
	}
	return res, nil
}

// Unbind takes the device from vfio-pci, clears driver_override and gives
// the device back to the driver it had before Bind (or lets the kernel probe
// for one when that is not known).
func (s *Sysfs) Unbind(address string) (BindResult, error) {
	d, err := s.Lookup(address)
	if err != nil {
		return BindResult{}, err
	}
	res := BindResult{Address: d.Address, From: d.Driver}
	if d.Driver != VFIODriver && d.Override != VFIODriver {
		res.To = d.Driver
		return res, fmt.Errorf("unbind %s: not bound to vfio-pci (driver %q); nothing to do", d.Address, d.Driver)
	}
	dir := s.path("bus/pci/devices", d.Address)
	if d.Driver == VFIODriver {
		if err := s.write(s.path("bus/pci/drivers", VFIODriver, "unbind"), d.Address); err != nil {
			return res, fmt.Errorf("unbind %s from vfio-pci: %w (is a program still using it?)", d.Address, err)
		}
	}
	if err := s.write(filepath.Join(dir, "driver_override"), "\n"); err != nil {
		return res, fmt.Errorf("unbind %s: clear driver_override: %w", d.Address, err)
	}
	note := filepath.Join(s.stateDir(), d.Address)
	previous := ""
	if b, err := os.ReadFile(note); err == nil {
		previous = strings.TrimSpace(string(b))
	}
	bound := false
	if previous != "" && previous != VFIODriver {
		if err := s.write(s.path("bus/pci/drivers", previous, "bind"), d.Address); err == nil {
			bound = true
		}
	}
	if !bound {
		if err := s.write(s.path("bus/pci/drivers_probe"), d.Address); err != nil {
			return res, fmt.Errorf("unbind %s: probe for a driver: %w", d.Address, err)
		}
	}
	if err := os.Remove(note); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("unbind %s: remove %s: %w", d.Address, note, err)
	}
	after, err := s.Lookup(d.Address)
	if err != nil {
		return res, err
	}
	res.To = after.Driver
	if previous != "" && after.Driver != previous {
		return res, fmt.Errorf("unbind %s: the device was bound to %s before, but now has %q", d.Address, previous, after.Driver)
	}
	return res, nil
}
