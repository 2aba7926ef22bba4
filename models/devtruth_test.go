package models

import (
	"strings"
	"testing"

	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/trace"
)

// txDescAux is the second quadword of a TX data descriptor as the driver
// writes it: DTALEN and RS (with DEXT and the data type, which the check
// ignores) and PAYLEN in the high dword.
func txDescAux(length uint32, rs bool) uint64 {
	cmd := uint64(length) | 0x3<<20 | 1<<29 | 1<<24 | 1<<25
	if rs {
		cmd |= txdRS
	}
	return cmd | uint64(length)<<(32+14)
}

func TestDeviceTruthSynthetic(t *testing.T) {
	h := ringHeader(8)
	post := func(dir uint8, i uint32, buf uint64, l uint32, aux uint64) trace.Event {
		return trace.Event{Kind: trace.DrvPost, Dir: dir, Index: i, Buf: buf, Len: l, Aux: aux}
	}
	at := func(dir uint8, i uint32, q0, q1 uint64) trace.Event {
		return trace.Event{Kind: trace.DevDescAtTail, Dir: dir, Index: i, Buf: q0, Aux: q1}
	}
	tail := func(dir uint8, v uint32) trace.Event {
		return trace.Event{Kind: trace.DevTailWrite, Dir: dir, Index: v}
	}
	reclaim := func(dir uint8, i uint32) trace.Event { return trace.Event{Kind: trace.DrvReclaim, Dir: dir, Index: i} }
	for _, c := range []struct {
		name  string
		evs   []trace.Event
		check string // "" when every check holds
		why   string
	}{
		{"tx as posted", []trace.Event{post(trace.TX, 0, 0x1000, 60, 0), post(trace.TX, 1, 0x2000, 1514, trace.PostNoRS),
			tail(trace.TX, 2), at(trace.TX, 0, 0x1000, txDescAux(60, true)), at(trace.TX, 1, 0x2000, txDescAux(1514, false))}, "", ""},
		{"tx context descriptor", []trace.Event{post(trace.TX, 0, 0xABCD0000000E, 0, trace.PostContext),
			tail(trace.TX, 1), at(trace.TX, 0, 0xABCD0000000E, 0x0000_0000_2020_0000)}, "", ""},
		{"rx as posted", []trace.Event{post(trace.RX, 3, 0x4000, 2048, 0), tail(trace.RX, 4), at(trace.RX, 3, 0x4000, 0)}, "", ""},
		{"tail before the descriptor", []trace.Event{tail(trace.TX, 1), at(trace.TX, 0, 0, 0), post(trace.TX, 0, 0x1000, 60, 0)},
			CheckHandedOverOnlyPosted, "not posted"},
		{"stale descriptor after reclaim", []trace.Event{post(trace.TX, 0, 0x1000, 60, 0), tail(trace.TX, 1),
			at(trace.TX, 0, 0x1000, txDescAux(60, true)), reclaim(trace.TX, 0),
			tail(trace.TX, 1), at(trace.TX, 0, 0x1000, txDescAux(60, true)|txdDD)}, CheckHandedOverOnlyPosted, "since it last reclaimed"},
		{"wrong address", []trace.Event{post(trace.TX, 0, 0x1000, 60, 0), at(trace.TX, 0, 0x1800, txDescAux(60, true))},
			CheckDescriptorMatchesPost, "buffer address 0x1800, the post said 0x1000"},
		{"wrong length", []trace.Event{post(trace.TX, 0, 0x1000, 60, 0), at(trace.TX, 0, 0x1000, txDescAux(64, true))},
			CheckDescriptorMatchesPost, "length 64, the post said 60"},
		{"RS missing", []trace.Event{post(trace.TX, 0, 0x1000, 60, 0), at(trace.TX, 0, 0x1000, txDescAux(60, false))},
			CheckDescriptorMatchesPost, "RS false"},
		{"old DD left", []trace.Event{post(trace.RX, 0, 0x1000, 2048, 0), at(trace.RX, 0, 0x1000, 0x3_0000_0001)},
			CheckDescriptorMatchesPost, "DD still set"},
		{"context differs", []trace.Event{post(trace.TX, 0, 0xE, 0, trace.PostContext), at(trace.TX, 0, 0xF, 0)},
			CheckDescriptorMatchesPost, "context descriptor's first quadword"},
		{"outside the ring", []trace.Event{at(trace.TX, 9, 0, 0)}, CheckHandedOverOnlyPosted, "outside the ring"},
		{"device violation", []trace.Event{{Kind: trace.DevViolation, Dir: trace.TX, Index: 2, Buf: 0x1000, Aux: 1,
			Data: "rewrote-owned-descriptor: descriptor changed while the device owned it"}}, CheckNoDeviceViolation, "rewrote-owned-descriptor"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for i := range c.evs {
				c.evs[i].Seq = uint64(i)
			}
			rep := CheckDeviceTruth(h, c.evs)
			if !rep.Recorded() {
				t.Fatal("no device truth seen")
			}
			if c.check == "" {
				if !rep.OK() {
					t.Fatalf("failures: %v", rep.Failures)
				}
				return
			}
			if rep.OK() || rep.FailCount != 1 || rep.Failures[0].Check != c.check || !strings.Contains(rep.Failures[0].Detail, c.why) {
				t.Fatalf("failures %v, want one %s mentioning %q", rep.Failures, c.check, c.why)
			}
			t.Log(rep.Failures[0])
		})
	}
	if rep := CheckDeviceTruth(h, []trace.Event{{Kind: trace.DrvPost}}); rep.Recorded() || !rep.OK() {
		t.Errorf("a trace without device truth: %+v", rep)
	}
}

// The real driver against both simulator modes: every descriptor handed
// over holds what the driver posted, and the report counts what it saw.
func TestDeviceTruthDriver(t *testing.T) {
	for _, mode := range []ixgbesim.Mode{ixgbesim.Stepped, ixgbesim.FreeRunning} {
		t.Run(mode.String(), func(t *testing.T) {
			r := newRig(t, rigOpts{mode: mode})
			r.run(t, 2000, 32)
			_, h, evs := saveTrace(t, r, "device truth "+mode.String())
			rep, err := ValidateRings(h, evs)
			if err != nil {
				t.Fatal(err)
			}
			tr := rep.Truth
			if rep.Violation != nil || !tr.OK() {
				t.Fatalf("clean run rejected: %v %v", rep.Violation, tr.Failures)
			}
			// Every frame's TX descriptor and the RX descriptor it was
			// received in are handed over (RX: again, after the initial
			// fill), and written back with 4 stores (RX) and 1 per TX
			// descriptor with RS (one per batch of up to 32, ixgbe's
			// txRSThresh).
			if tr.Descriptors < r.sent+r.recv || tr.Stores < r.sent/32+4*r.recv || tr.Doorbells == 0 {
				t.Fatalf("device truth saw too little: %+v for %d frames", *tr, r.sent)
			}
			t.Logf("%+v", *tr)
		})
	}
}
