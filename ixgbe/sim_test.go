package ixgbe

import (
	"sync"
	"testing"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/internal/simpair"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
)

// loggingDevice wraps a Device and records every register access.
type loggingDevice struct {
	Device
	mu  sync.Mutex
	log []regAccess
}

func (d *loggingDevice) Read32(reg uint32) uint32 {
	v := d.Device.Read32(reg)
	d.mu.Lock()
	d.log = append(d.log, regAccess{reg: reg, val: v})
	d.mu.Unlock()
	return v
}

func (d *loggingDevice) Write32(reg, v uint32) {
	d.mu.Lock()
	d.log = append(d.log, regAccess{write: true, reg: reg, val: v})
	d.mu.Unlock()
	d.Device.Write32(reg, v)
}

func (d *loggingDevice) accesses() []regAccess {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]regAccess(nil), d.log...)
}

// simPair is two simulated NICs joined by a cable, each under a driver.
type simPair struct {
	sims   *simpair.Pair
	sa, sb *ixgbesim.NIC
	cable  *ixgbesim.Cable
	a, b   *NIC
}

type pairOpts struct {
	mode         ixgbesim.Mode
	cfgA, cfgB   Config
	ab, ba       *ixgbesim.Faults
	wrapA, wrapB func(Device) Device
	schedule     ixgbesim.Schedule // both devices' (schedule_sim_test.go)
	doorbell     ixgbesim.DoorbellMode
}

// newSimPair builds and initializes the pair; everything is torn down at
// the end of the test, checking that no IOMMU fault or ownership violation
// happened.
func newSimPair(t testing.TB, o pairOpts) *simPair {
	t.Helper()
	sims, err := simpair.New(simpair.Config{Mode: o.mode, Policy: dma.NoHugepages, AB: o.ab, BA: o.ba, Schedule: o.schedule, Doorbell: o.doorbell})
	if err != nil {
		t.Fatal(err)
	}
	p := &simPair{sims: sims, sa: sims.A, sb: sims.B, cable: sims.Cable}
	if o.mode == ixgbesim.Stepped {
		o.cfgA.Clock = p.sa.Clock()
		o.cfgB.Clock = p.sb.Clock()
	}
	var da, db Device = p.sa, p.sb
	if o.wrapA != nil {
		da = o.wrapA(da)
	}
	if o.wrapB != nil {
		db = o.wrapB(db)
	}
	if o.cfgA.LinkTimeout == 0 {
		o.cfgA.LinkTimeout = -1
	}
	if o.cfgB.LinkTimeout == 0 {
		o.cfgB.LinkTimeout = -1
	}
	o.cfgA.DevID, o.cfgB.DevID = 0, 1
	if p.a, err = New(da, o.cfgA); err != nil {
		sims.Close()
		t.Fatal(err)
	}
	if p.b, err = New(db, o.cfgB); err != nil {
		p.a.Close()
		sims.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.a.Stop()
		p.b.Stop()
		p.a.Close()
		p.b.Close()
		sims.Close()
	})
	return p
}

// waitLinks brings both links up (stepped: by advancing the virtual clock
// inside WaitForLink).
func (p *simPair) waitLinks(t testing.TB) {
	t.Helper()
	for _, n := range []*NIC{p.a, p.b} {
		if st, err := n.WaitForLink(5e9); err != nil || !st.Up {
			t.Fatalf("%s: link %v: %v", n.Name(), st, err)
		}
	}
}

// checkClean fails the test on any IOMMU fault or ownership violation.
func (p *simPair) checkClean(t testing.TB) {
	t.Helper()
	if err := p.sims.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestInitOrderSim(t *testing.T) {
	for _, mode := range []ixgbesim.Mode{ixgbesim.Stepped, ixgbesim.FreeRunning} {
		t.Run(mode.String(), func(t *testing.T) {
			var logA *loggingDevice
			p := newSimPair(t, pairOpts{
				mode: mode,
				cfgA: Config{RxQueues: 4, TxQueues: 4, RxRingSize: 256},
				wrapA: func(d Device) Device {
					logA = &loggingDevice{Device: d}
					return logA
				},
			})
			log := logA.accesses()
			if err := checkOrder(log, initMilestones(4, 4, 256)); err != nil {
				t.Fatal(err)
			}
			if err := checkNoAliases(log); err != nil {
				t.Fatal(err)
			}
			if r, w, offs := p.sa.UnknownAccesses(); r != 0 || w != 0 {
				t.Fatalf("driver read %d and wrote %d times registers the model does not know: %#x", r, w, offs)
			}
			if got, want := p.a.MAC().String(), p.sa.MAC().String(); got != want {
				t.Fatalf("MAC from RAL/RAH = %s, device MAC %s", got, want)
			}
			p.waitLinks(t)
			if st := p.a.Link(); st.SpeedMbps != 10000 {
				t.Fatalf("link %v, want 10000 Mb/s", st)
			}
			p.checkClean(t)
		})
	}
}
