// Package simpair builds the set-up that tests and tools keep needing: two
// simulated 82599s (ixgbesim) in one IOMMU domain, joined back to back by a
// cable, their engines started when they run free. It stops at the devices:
// the driver goes on top (ixgbe.New with the NIC, or a wrapper of it), so
// that ixgbe's own tests can use it without an import cycle.
package simpair

import (
	"errors"
	"fmt"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/trace"
)

// Config describes the pair. The zero value is two free-running NICs named
// simA and simB (trace Dev 0 and 1) with the allocator's default hugepage
// policy and a clean cable.
type Config struct {
	Mode   ixgbesim.Mode
	Names  [2]string // default "simA", "simB"
	Policy dma.HugepagePolicy
	Trace  *trace.Recorder // device events of both NICs (nil: none)
	// AB and BA inject faults on the cable's two directions (nil: none).
	AB, BA *ixgbesim.Faults
	// Schedule is both devices' adversarial schedule (ixgbesim.Schedule).
	Schedule ixgbesim.Schedule
	// NoCable leaves the NICs unconnected, for a caller that attaches its
	// own links (a pcap tap, say).
	NoCable bool
	// Doorbell is both devices' ixgbesim.Config.Doorbell.
	Doorbell ixgbesim.DoorbellMode
}

// Pair is two simulated NICs of one domain; A has trace Dev 0, B Dev 1.
type Pair struct {
	Domain *ixgbesim.Domain
	A, B   *ixgbesim.NIC
	Cable  *ixgbesim.Cable // nil with Config.NoCable
}

// New builds the pair, connects it and, in FreeRunning mode, starts both
// NICs' engines.
func New(cfg Config) (*Pair, error) {
	names := cfg.Names
	if names[0] == "" {
		names[0] = "simA"
	}
	if names[1] == "" {
		names[1] = "simB"
	}
	p := &Pair{Domain: ixgbesim.NewDomain()}
	for i, sp := range []**ixgbesim.NIC{&p.A, &p.B} {
		n, err := ixgbesim.New(ixgbesim.Config{Name: names[i], Mode: cfg.Mode, Domain: p.Domain,
			Policy: cfg.Policy, Trace: cfg.Trace, DevID: uint16(i), Schedule: cfg.Schedule, Doorbell: cfg.Doorbell})
		if err != nil {
			p.Close()
			return nil, err
		}
		*sp = n
	}
	if !cfg.NoCable {
		p.Cable = ixgbesim.Connect(p.A, p.B, cfg.AB, cfg.BA)
	}
	if cfg.Mode == ixgbesim.FreeRunning {
		p.A.Start()
		p.B.Start()
	}
	return p, nil
}

// Stop stops both NICs' engines (a no-op for stepped NICs).
func (p *Pair) Stop() {
	for _, n := range []*ixgbesim.NIC{p.A, p.B} {
		if n != nil {
			n.Stop()
		}
	}
}

// Close stops and closes both NICs. Close the drivers on them first.
func (p *Pair) Close() {
	p.Stop()
	for _, n := range []*ixgbesim.NIC{p.A, p.B} {
		if n != nil {
			n.Close()
		}
	}
}

// Check reports the domain's IOMMU faults and each NIC's descriptor
// ownership violations, the first of each kind, or nil when there were none.
func (p *Pair) Check() error {
	var errs []error
	if f := p.Domain.Faults(); len(f) > 0 {
		errs = append(errs, fmt.Errorf("%d IOMMU faults, first: %v", len(f), f[0]))
	}
	for _, n := range []*ixgbesim.NIC{p.A, p.B} {
		if v := n.Violations(); len(v) > 0 {
			errs = append(errs, fmt.Errorf("%s: %d ownership violations, first: %v", n.Name(), len(v), v[0]))
		}
	}
	return errors.Join(errs...)
}
