package models

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/trace"
)

// writeTrace saves a rig's trace next to the test's other outputs and
// returns its path and events.
func saveTrace(t *testing.T, r *rig, note string) (string, trace.Header, []trace.Event) {
	t.Helper()
	evs := r.events()
	h := r.header(note)
	h.Dropped = r.rec.Dropped()
	path := filepath.Join(t.TempDir(), "trace.ndjson")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := trace.WriteEvents(f, h, evs); err != nil {
		t.Fatal(err)
	}
	f.Close()
	h2, evs2, err := trace.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs2) != len(evs) {
		t.Fatalf("trace file: %d events, recorded %d", len(evs2), len(evs))
	}
	return path, h2, evs2
}

// Clean traffic through the real driver and both simulator modes: the
// trace is a behaviour of the ring specs, and the packets went through the
// rings and the wire as through FIFO queues.
func TestDriverTraceValidates(t *testing.T) {
	for _, c := range []struct {
		name  string
		mode  ixgbesim.Mode
		eager bool
	}{{"stepped", ixgbesim.Stepped, false}, {"stepped eager device", ixgbesim.Stepped, true}, {"free-running", ixgbesim.FreeRunning, false}} {
		mode := c.mode
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, rigOpts{mode: mode, eagerTx: c.eager})
			frames := 5000
			if raceEnabled {
				frames = 1500
			}
			r.run(t, frames, 32)
			// Nothing is lost: the rig keeps the frames in flight within
			// B's ring (free-running) or moves B in time (stepped).
			if r.recv != frames {
				t.Fatalf("received %d of %d", r.recv, frames)
			}
			path, h, evs := saveTrace(t, r, "clean "+mode.String())
			rep, err := ValidateRings(h, evs)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Violation != nil {
				t.Fatalf("clean trace rejected:\n%v", rep.Violation)
			}
			if !rep.Truth.OK() || !rep.Truth.Recorded() {
				t.Fatalf("device truth: %+v", *rep.Truth)
			}
			for k, st := range rep.Rings {
				t.Logf("%s: %+v", k, *st)
			}
			opt := FIFOOptions{VisualizeDir: filepath.Dir(path)}
			for name, check := range map[string]func([]trace.Event, FIFOOptions) (*FIFOReport, error){
				"ring": CheckRingFIFO, "wire": CheckWireFIFO,
			} {
				fr, err := check(evs, opt)
				if err != nil {
					t.Fatal(err)
				}
				if fr.Result != porcupine.Ok {
					t.Fatalf("%s FIFO: %v in %s (%s)", name, fr.Result, fr.Failed, fr.FailedWhere)
				}
				t.Logf("%s FIFO: %d partitions, %d ops, %d segments (largest %d)", name, fr.Partitions, fr.Ops, fr.Segments, fr.LargestSeg)
			}
		})
	}
}
