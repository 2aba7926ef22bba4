package simpair

import (
	"testing"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
)

func TestDefaults(t *testing.T) {
	p, err := New(Config{Mode: ixgbesim.Stepped, Policy: dma.NoHugepages})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.A.Name() != "simA" || p.B.Name() != "simB" {
		t.Errorf("names %q, %q; want simA, simB", p.A.Name(), p.B.Name())
	}
	if p.Cable == nil {
		t.Error("no cable")
	}
	if p.A.Clock() != p.B.Clock() {
		t.Error("stepped NICs of one domain do not share its virtual clock")
	}
	if err := p.Check(); err != nil {
		t.Errorf("fresh pair: %v", err)
	}
}

func TestNamesAndNoCable(t *testing.T) {
	p, err := New(Config{Mode: ixgbesim.Stepped, Policy: dma.NoHugepages, Names: [2]string{"x", "y"}, NoCable: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.A.Name() != "x" || p.B.Name() != "y" {
		t.Errorf("names %q, %q; want x, y", p.A.Name(), p.B.Name())
	}
	if p.Cable != nil {
		t.Error("NoCable: a cable was connected")
	}
	p.Close()
	p.Close() // idempotent
}
