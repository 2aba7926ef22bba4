package ixgbe

import (
	"bytes"
	"errors"
	"testing"

	"pgregory.net/rapid"

	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/ixgbe/regs"
)

// The driver's bit-banged I2C master against the simulated module: any
// offset and length reads the module's page (the address pointer wraps at
// 256, as a one-byte pointer does); an empty cage or another address is
// not acknowledged.
func TestI2CReadSim(t *testing.T) {
	mod := ixgbesim.SFPModule{Kind: ixgbesim.SFPDirectAttach, Vendor: "CABLES R US", PartNumber: "DAC-3M"}
	s := newProbeSim(t, ixgbesim.Config{SFP: mod})
	n, err := probe(t, s, s.Clock())
	if err != nil {
		t.Fatal(err)
	}
	page := mod.Page()
	rapid.Check(t, func(rt *rapid.T) {
		off := rapid.IntRange(0, 255).Draw(rt, "off")
		length := rapid.IntRange(1, 300).Draw(rt, "len")
		got := make([]byte, length)
		if err := n.i2cRead(regs.SFPAddr, byte(off), got); err != nil {
			rt.Fatal(err)
		}
		want := make([]byte, length)
		for i := range want {
			want[i] = page[(off+i)%256]
		}
		if !bytes.Equal(got, want) {
			rt.Fatalf("read %d bytes at %#x: %x, want %x", length, off, got, want)
		}
	})
	if err := n.i2cRead(0xA2, 0, make([]byte, 4)); !errors.Is(err, errI2CNoAck) {
		t.Fatalf("read at 0xA2 (diagnostics page, not modelled): %v, want no acknowledge", err)
	}
	empty := newProbeSim(t, ixgbesim.Config{SFP: ixgbesim.SFPModule{Kind: ixgbesim.SFPAbsent}})
	ne, err := probe(t, empty, empty.Clock())
	if err != nil {
		t.Fatal(err)
	}
	if err := ne.i2cRead(regs.SFPAddr, 0, make([]byte, 1)); !errors.Is(err, errI2CNoAck) {
		t.Fatalf("empty cage: %v, want no acknowledge", err)
	}
	if in := n.Info(); in.SFP.Vendor != "CABLES R US" || in.SFP.PartNumber != "DAC-3M" || in.SFP.Type != "direct attach (passive)" {
		t.Fatalf("module %+v", in.SFP)
	}
}
