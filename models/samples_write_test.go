//go:build ixgbebugs

package models

import (
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/trace"
)

var samplesDir = flag.String("models.samples", "", "write the small sample traces used by tla/*Trace*.cfg to this directory")

// TestWriteSampleTraces regenerates tla/traces/ (go test -tags ixgbebugs
// ./models -run WriteSample -models.samples=../tla/traces): small traces of
// the real driver on stepped simulators, clean and with bugs.
func TestWriteSampleTraces(t *testing.T) {
	if *samplesDir == "" {
		t.Skip("set -models.samples=DIR to write the sample traces")
	}
	cases := []struct {
		file         string
		bugsA, bugsB ixgbe.Bug
	}{
		{"clean.ndjson", 0, 0},
		{"bug-tail-before-desc.ndjson", ixgbe.BugTailBeforeDescriptor, 0},
		{"bug-double-post.ndjson", ixgbe.BugDoublePost, 0},
		{"bug-refill-owned-slot.ndjson", 0, ixgbe.BugRefillOwnedSlot},
	}
	for _, c := range cases {
		r := newRig(t, rigOpts{mode: ixgbesim.Stepped, bugsA: c.bugsA, bugsB: c.bugsB})
		r.run(t, 150, 16)
		evs := r.events()
		h := r.header("sample " + strings.TrimSuffix(c.file, ".ndjson") + ": 150 frames, stepped simulators")
		writeEvents(t, filepath.Join(*samplesDir, c.file), h, evs)
		if c.file == "clean.ndjson" {
			// The same run as recorded against hardware: driver events only.
			var drv []trace.Event
			for _, e := range evs {
				if e.Kind < trace.DevTailRead || e.Kind > trace.DevDrop {
					drv = append(drv, e)
				}
			}
			h.Note += ", device events removed"
			writeEvents(t, filepath.Join(*samplesDir, "clean-driver-only.ndjson"), h, drv)
		}
	}
	// A hand-built TX trace (txkinds_test.go): RS on slot 0 only, the
	// driver reclaims slot 1 (no RS) on slot 0's DD. (offload.ndjson is
	// recorded by nicctl: see tla/README.md.)
	for _, c := range kindTraces() {
		if c.name == "reclaim-past-rs" {
			evs := append([]trace.Event(nil), c.evs...)
			for i := range evs {
				evs[i].Seq, evs[i].T = uint64(i), int64(i)
			}
			h := genHeader(trace.TX, 8, "sample bug-reclaim-past-rs: hand-built, RS on slot 0 only, slot 1 reclaimed on its DD")
			writeEvents(t, filepath.Join(*samplesDir, "bug-reclaim-past-rs.ndjson"), h, evs)
		}
	}
}
