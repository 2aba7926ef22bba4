package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/vfio"
	"github.com/verinic/verinic/vfio/pci"
)

// captureStdout runs f with standard output sent to a buffer.
func captureStdout(t *testing.T, f func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, r)
		done <- b.String()
	}()
	ferr := f()
	os.Stdout = old
	w.Close()
	return <-done, ferr
}

// TestDevicesOnHost runs `nicctl devices` against this machine's sysfs: the
// table and the JSON list the same network devices that sysfs has.
func TestDevicesOnHost(t *testing.T) {
	want, err := pci.System.NetworkDevices()
	if err != nil {
		t.Fatal(err)
	}
	out, err := captureStdout(t, func() error { return runDevices([]string{"--json"}) })
	if err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Address, ID, Driver string
		IOMMUGroup          int `json:"iommu_group"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("devices --json printed %q: %v", out, err)
	}
	if len(got) != len(want) {
		t.Fatalf("devices --json lists %d devices, sysfs has %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Address != want[i].Address || got[i].ID != want[i].ID || got[i].Driver != want[i].Driver || got[i].IOMMUGroup != want[i].IOMMUGroup {
			t.Errorf("device %d: %+v, sysfs says %+v", i, got[i], want[i])
		}
	}
	table, err := captureStdout(t, func() error { return runDevices(nil) })
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range want {
		if !strings.Contains(table, d.Address) || !strings.Contains(table, d.ID) {
			t.Errorf("the table does not show %s %s:\n%s", d.Address, d.ID, table)
		}
	}
	if !pci.System.IOMMUEnabled() && len(want) > 0 && !strings.Contains(table, "intel_iommu=on") {
		t.Errorf("without an IOMMU the table does not explain what to do:\n%s", table)
	}
	if err := runDevices([]string{"extra"}); !errors.Is(err, errUsage) {
		t.Errorf("devices with an argument: %v", err)
	}
}

// TestOpenDeviceExplainsOnHost opens a network device of this machine the
// way every subcommand does. Where there is no IOMMU (the build machines) it
// must fail and say to turn the IOMMU on.
func TestOpenDeviceExplainsOnHost(t *testing.T) {
	devs, err := pci.System.NetworkDevices()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openDevice("eth0"); err == nil || !strings.Contains(err.Error(), "PCI address") || !strings.Contains(err.Error(), "nicctl devices") {
		t.Errorf("openDevice of an interface name: %v", err)
	}
	if _, err := openDevice("0000:7f:1f.7"); !errors.Is(err, pci.ErrNoDevice) {
		t.Errorf("openDevice of a missing device: %v", err)
	}
	if len(devs) == 0 {
		t.Skip("this machine has no network PCI device to try")
	}
	d := devs[0]
	// The device is not an 82599: openDevice refuses it for the driver.
	if !d.Supported {
		_, err := openDevice(d.Address)
		if err == nil || !strings.Contains(err.Error(), "not an 82599") || !strings.Contains(err.Error(), "10fb") {
			t.Errorf("openDevice of an unsupported device: %v", err)
		}
	}
	dev, err := openDevice(d.Address, openOptions{allowUnsupported: true, hugepagesSet: true})
	if err == nil {
		closeDevice(dev)
		t.Skipf("%s opened through VFIO: this machine has a working IOMMU", d.Address)
	}
	t.Logf("openDevice(%s): %v", d.Address, err)
	if d.IOMMUGroup < 0 {
		if !errors.Is(err, vfio.ErrNoIOMMU) || !strings.Contains(err.Error(), "intel_iommu=on") || !strings.Contains(err.Error(), "amd_iommu=on") {
			t.Errorf("no IOMMU: %v", err)
		}
	} else if d.Driver != pci.VFIODriver && (!errors.Is(err, vfio.ErrNotBound) || !strings.Contains(err.Error(), "nicctl bind "+d.Address)) {
		t.Errorf("not bound: %v", err)
	}
	out, err := captureStdout(t, func() error { return runOpen([]string{d.Address}) })
	if err == nil || out != "" {
		t.Errorf("nicctl open on the host: printed %q, %v", out, err)
	}
}

func TestOpenDeviceSimHook(t *testing.T) {
	saved := openSim
	defer func() { openSim = saved }()
	openSim = nil
	if _, err := openDevice("sim0"); err == nil || !strings.Contains(err.Error(), "not available") {
		t.Errorf("sim without the hook: %v", err)
	}
	called := ""
	openSim = func(name string) (ixgbe.Device, error) { called = name; return nil, errors.New("hooked") }
	if _, err := openDevice("sim1"); err == nil || called != "sim1" {
		t.Errorf("sim with the hook: called %q, %v", called, err)
	}
}

func TestBindRefusesWithoutAddress(t *testing.T) {
	if err := runBind(nil); !errors.Is(err, errUsage) {
		t.Errorf("bind without arguments: %v", err)
	}
	if err := runUnbind(nil); !errors.Is(err, errUsage) {
		t.Errorf("unbind without arguments: %v", err)
	}
	if got := splitFlags([]string{"0000:03:00.0", "--force"}); strings.Join(got, " ") != "--force 0000:03:00.0" {
		t.Errorf("splitFlags: %v", got)
	}
	if err := runHugepages([]string{"--node", "0"}); !errors.Is(err, errUsage) {
		t.Errorf("hugepages --node without --reserve: %v", err)
	}
}
