//go:build ixgbebugs

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/models"
)

// With the driver posting a buffer twice (ixgbe's bug switch), A frees that
// buffer twice and its pool refuses the second free (TxFreeErrors): the
// demo's accounting must fail, on that line, and end in bounded time.
func TestDemoFailsOnTxFreeErrors(t *testing.T) {
	o := demoOpts(5000)
	o.queues = 1
	o.stallAfter = 2 * time.Second
	o.driverConfig = func(i int, cfg ixgbe.Config) ixgbe.Config {
		if i == 0 {
			return ixgbe.WithBugs(cfg, ixgbe.BugDoublePost)
		}
		return cfg
	}
	var out bytes.Buffer
	done := make(chan struct{})
	var res demoResult
	var err error
	go func() {
		defer close(done)
		res, err = demo(o, &out)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the demo hangs with the driver double-posting")
	}
	if err != nil {
		t.Logf("demo ended with an error: %v", err)
		if !strings.Contains(err.Error(), "stalled") {
			t.Fatalf("unexpected error: %v\n%s", err, out.String())
		}
		return
	}
	if res.agree {
		t.Fatalf("the counts agree with the driver double-posting:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "FAIL no TX free errors") {
		t.Fatalf("no failed TX-free-errors check:\n%s", out.String())
	}
	t.Logf("%s", out.String())
}

// The driver mutations of ixgbe/bugs.go that nicctl itself must catch, in
// a free-running demo (tla/README.md, "Driver mutation suite", nicctl
// column): the demo's accounting names a failed check, or the demo ends
// with a stall diagnosis in bounded time; with --trace, nicctl verify fails
// naming the check (models.CheckObservations).
func TestDemoMutations(t *testing.T) {
	for _, c := range []struct {
		name  string
		nic   int // 0: A, the sender; 1: B, the receiver
		bugs  ixgbe.Bug
		batch int      // 0: 32
		want  []string // in the demo's error, its output or verify's output
	}{
		{"DoubleFreeNow", 0, ixgbe.BugDoubleFreeNow, 0, []string{"FAIL no TX free errors"}},
		// Batches of 256 with a window of 128: never a full batch, so B
		// never writes RDT after its first fill and the ring runs dry.
		// The unpublished refills either run the ring dry (a stall) or,
		// when the batch fills first, cost B a frame on a full ring: which
		// one depends on how the device and the driver interleave.
		{"LostTailWrite", 1, ixgbe.BugLostTailWrite, 256, []string{"stalled || FAIL every frame in order", "RX ring 0: head = tail || first deviation: flow"}},
		{"LenBeforeDD", 1, ixgbe.BugLenBeforeDD, 0, []string{"FAILED ring protocol", "LengthAfterDD"}},
		{"LenMinusFCS", 1, ixgbe.BugLenMinusFCS, 0, []string{"FAIL no corrupt or foreign frame delivered", "LengthHandedUp"}},
		{"RxAddrNoHeadroom", 1, ixgbe.BugRxAddrNoHeadroom, 0, []string{"FAIL no corrupt or foreign frame delivered", "BufferOnGrid"}},
		{"TailBeforeDescriptor", 0, ixgbe.BugTailBeforeDescriptor, 0, []string{"WriteTail", "HandedOverOnlyPosted"}},
		{"DoublePost", 0, ixgbe.BugDoublePost, 0, []string{"FAIL no TX free errors", "FAIL no ownership violation", "Post: buffer"}},
		{"ReclaimWithoutDD", 0, ixgbe.BugReclaimWithoutDD, 0, []string{"FAIL no corrupt or foreign frame delivered", "reclaimed before the device was done"}},
		// Posting at index 512 of a 512-descriptor ring: the simulator
		// sees a rewrite of a descriptor it owns, or (depending on how the
		// device and the driver interleave) the TX ring stalls first; the
		// trace names the out-of-ring post either way.
		{"WrapOffByOne", 0, ixgbe.BugWrapOffByOne, 0, []string{"FAIL no ownership violation || stalled", "outside the ring"}},
		{"RefillOwnedSlot", 1, ixgbe.BugRefillOwnedSlot, 0, []string{"ReuseOnlyAfterDD"}},
		{"CleanOffByOne", 0, ixgbe.BugCleanOffByOne, 0, []string{"FAILED ring protocol", "DDBeforeUse"}},
		{"DoubleFreeLater", 0, ixgbe.BugDoubleFreeLater, 0, []string{"FAIL no TX free errors", "FAILED ring protocol"}},
		// With RDT = RDH the device sees no free descriptor: a stall.
		{"RxTailEqualsHead", 1, ixgbe.BugRxTailEqualsHead, 0, []string{"stalled", "RX ring 0: head = tail"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := demoOpts(3000)
			o.queues = 1
			if c.batch != 0 {
				o.batch = c.batch
			}
			o.stallAfter = time.Second
			o.trace = filepath.Join(t.TempDir(), "bug.ndjson")
			o.driverConfig = func(i int, cfg ixgbe.Config) ixgbe.Config {
				if i == c.nic {
					return ixgbe.WithBugs(cfg, c.bugs)
				}
				return cfg
			}
			var out bytes.Buffer
			done := make(chan struct{})
			var res demoResult
			var err error
			start := time.Now()
			go func() {
				defer close(done)
				res, err = demo(o, &out)
			}()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("the demo hangs")
			}
			text := out.String()
			if err != nil {
				text += "\nerror: " + err.Error()
			}
			if err == nil && res.agree {
				// Only the trace can show it: verify it.
				var vout bytes.Buffer
				ok, verr := verifyTrace(&vout, o.trace, models.FIFOOptions{})
				if verr != nil {
					t.Fatal(verr)
				}
				if ok {
					t.Fatalf("demo and verify pass with %s:\n%s\n%s", c.name, text, vout.String())
				}
				text += "\n" + vout.String()
			} else if _, serr := os.Stat(o.trace); serr == nil {
				var vout bytes.Buffer
				if _, verr := verifyTrace(&vout, o.trace, models.FIFOOptions{}); verr == nil {
					text += "\n" + vout.String()
				}
			}
			for _, w := range c.want {
				// "a || b": either text will do.
				found := false
				for _, alt := range strings.Split(w, " || ") {
					found = found || strings.Contains(text, alt)
				}
				if !found {
					t.Errorf("%s: no %q in:\n%s", c.name, w, text)
				}
			}
			t.Logf("%s caught after %v", c.name, time.Since(start).Round(time.Millisecond))
		})
	}
}
