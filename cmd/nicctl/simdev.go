package main

import (
	"fmt"
	"strings"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
)

func init() { openSim = openSimDevice }

// loopbackPlug is a loopback plug in a simulated NIC's port: every frame
// the NIC transmits comes back to its own receiver, as with the plugs used to
// test real ports.
type loopbackPlug struct{ nic *ixgbesim.NIC }

func (l loopbackPlug) Transmit(frame []byte) { l.nic.Receive(frame) }
func (l loopbackPlug) Up() bool              { return true }

// simDevice is a free-running simulated 82599 opened by name; Close stops
// and releases it.
type simDevice struct{ *ixgbesim.NIC }

func (d simDevice) Close() error {
	d.NIC.Stop()
	return d.NIC.Close()
}

// openSimDevice opens "sim" or "simN": a free-running simulated 82599 with
// a loopback plug in its port (its link comes up, and what it sends it
// receives). Subcommands that need two ports wired together (demo, sim
// --tap) build their simulators themselves.
func openSimDevice(name string) (ixgbe.Device, error) {
	return openSimDeviceWith(name, ixgbesim.Config{})
}

// openSimDeviceWith is openSimDevice with more of the simulator's
// configuration (nicctl stats --sfp picks the module in the cage).
func openSimDeviceWith(name string, cfg ixgbesim.Config) (ixgbe.Device, error) {
	if name != "sim" && strings.TrimLeft(strings.TrimPrefix(name, "sim"), "0123456789") != "" {
		return nil, fmt.Errorf("%q: a simulated device is named sim or simN (sim0, sim1 and so on)", name)
	}
	cfg.Name, cfg.Policy = name, dma.NoHugepages // a simulator needs no hugepages
	nic, err := ixgbesim.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	nic.Attach(loopbackPlug{nic})
	nic.Start()
	return simDevice{nic}, nil
}
