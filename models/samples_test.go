package models

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/trace"
)

var samplesDir = flag.String("models.samples", "", "write the small sample traces used by tla/*Trace*.cfg to this directory")

func writeEvents(t *testing.T, path string, h trace.Header, evs []trace.Event) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := trace.WriteEvents(f, h, evs); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWriteSampleTraces regenerates tla/traces/ (go test ./models -run
// WriteSample -models.samples=../tla/traces): small traces of the real
// driver on stepped simulators, clean and with bugs.
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
}

// The sample traces that TLC checks with tla/*Trace*.cfg get the same
// verdict from the Go trace validation: clean ones accepted, bug ones
// rejected.
func TestSampleTracesSameVerdict(t *testing.T) {
	files, err := filepath.Glob("../tla/traces/*.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("found %d sample traces in tla/traces, want 5", len(files))
	}
	for _, f := range files {
		h, evs, err := trace.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := ValidateRings(h, evs)
		if err != nil {
			t.Fatal(err)
		}
		bug := strings.HasPrefix(filepath.Base(f), "bug-")
		if bug != (rep.Violation != nil) {
			t.Errorf("%s: violation %v", f, rep.Violation)
		}
		if rep.Violation != nil {
			t.Logf("%s: rejected: %s", filepath.Base(f), rep.Violation.Reason)
		} else {
			implied := 0
			for _, st := range rep.Rings {
				implied += st.Implied
			}
			t.Logf("%s: accepted, %d ring events, %d device steps inferred", filepath.Base(f), rep.Events, implied)
		}
	}
}
