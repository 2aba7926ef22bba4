package models

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/trace"
)

var (
	largeFrames = flag.Int("models.frames", 0, "frames in TestLargeDriverTrace (default 100000, 20000 with -short or -race; 1000000 for the million-frame run)")
	traceDir    = flag.String("models.tracedir", "", "also write the recorded traces of TestLargeDriverTrace here")
)

// TestLargeDriverTrace records a long run of the real driver on two stepped
// simulated NICs (every ring wrapping many times) and checks the whole
// trace: ring protocol, ring FIFO and wire FIFO.
func TestLargeDriverTrace(t *testing.T) {
	frames := *largeFrames
	if frames == 0 {
		frames = 100_000
		if testing.Short() || raceEnabled {
			frames = 20_000
		}
	}
	r := newRig(t, rigOpts{mode: ixgbesim.Stepped, ring: 512, capacity: frames*32 + 4096})
	start := time.Now()
	r.run(t, frames, 64)
	if r.recv != frames {
		t.Fatalf("received %d of %d", r.recv, frames)
	}
	evs := r.events()
	t.Logf("%d frames, %d events recorded in %v", frames, len(evs), time.Since(start).Round(time.Millisecond))
	if r.rec.Dropped() > 0 {
		t.Fatalf("recorder dropped %d events", r.rec.Dropped())
	}
	h := r.header("large run")
	if *traceDir != "" {
		p := filepath.Join(*traceDir, "large.ndjson")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := trace.WriteEvents(f, h, evs); err != nil {
			t.Fatal(err)
		}
		f.Close()
		t.Logf("wrote %s", p)
	}
	start = time.Now()
	rep, err := ValidateRings(h, evs)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Violation != nil {
		t.Fatalf("large trace rejected:\n%v", rep.Violation)
	}
	if !rep.Truth.OK() || rep.Truth.Descriptors < 2*frames {
		t.Fatalf("device truth: %+v", *rep.Truth)
	}
	t.Logf("ring validation: %d ring events in %v", rep.Events, time.Since(start).Round(time.Millisecond))
	for name, check := range map[string]func([]trace.Event, FIFOOptions) (*FIFOReport, error){
		"ring": CheckRingFIFO, "wire": CheckWireFIFO,
	} {
		start = time.Now()
		fr, err := check(evs, FIFOOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if fr.Result != porcupine.Ok {
			t.Fatalf("%s FIFO: %v in %s", name, fr.Result, fr.Failed)
		}
		if fr.LargestSeg > 4000+64 {
			t.Fatalf("%s FIFO: a history of %d operations was checked at once", name, fr.LargestSeg)
		}
		t.Logf("%s FIFO: %d ops, %d histories (largest %d) in %v", name, fr.Ops, fr.Segments, fr.LargestSeg, time.Since(start).Round(time.Millisecond))
	}
}
