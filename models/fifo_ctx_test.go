package models

import (
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/verinic/verinic/trace"
)

// A TX ring traced on hardware (no device events: the dequeues are the
// driver's reclaims) with TSO's context descriptors, as nicctl serve
// records on QEMU's igb: a context descriptor is posted but never
// reclaimed (it holds no buffer), and the ring is still a FIFO of
// buffers; buffers reclaimed out of order are not.
func TestRingFIFOContextDescriptorsWithoutDevice(t *testing.T) {
	const a, b, c = 0x1000, 0x2000, 0x3000
	build := func(reclaims ...uint64) []trace.Event {
		evs := []trace.Event{
			{Kind: trace.DrvPost, Dir: trace.TX, Index: 0, Buf: 0x1c14, Aux: trace.PostContext},
			{Kind: trace.DrvPost, Dir: trace.TX, Index: 1, Buf: a, Len: 1514},
			{Kind: trace.DrvPost, Dir: trace.TX, Index: 2, Buf: 0x1c14, Aux: trace.PostContext},
			{Kind: trace.DrvPost, Dir: trace.TX, Index: 3, Buf: b, Len: 1514},
			{Kind: trace.DrvPost, Dir: trace.TX, Index: 4, Buf: c, Len: 60},
			{Kind: trace.DrvTail, Dir: trace.TX, Index: 5},
		}
		for i, r := range reclaims {
			evs = append(evs, trace.Event{Kind: trace.DrvReclaim, Dir: trace.TX, Index: uint32(i), Buf: r})
		}
		for i := range evs {
			evs[i].Seq = uint64(i)
		}
		return evs
	}
	for _, c := range []struct {
		name     string
		reclaims []uint64
		want     porcupine.CheckResult
	}{
		{"in order", []uint64{a, b, c}, porcupine.Ok},
		{"in order, the last still in flight", []uint64{a, b}, porcupine.Ok},
		{"out of order", []uint64{b, a, c}, porcupine.Illegal},
	} {
		fr, err := CheckRingFIFO(build(c.reclaims...), FIFOOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if fr.Result != c.want {
			t.Errorf("%s: %v, want %v (%s)", c.name, fr.Result, c.want, fr.FailedWhere)
		}
	}
}
