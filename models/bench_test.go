package models

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/trace"
)

// recordMillionEvents records a driver trace of at least a million events
// and writes it to a file.
func recordMillionEvents(b *testing.B) (string, int) {
	b.Helper()
	r := newRig(b, rigOpts{mode: ixgbesim.Stepped, ring: 512, capacity: 1_200_000})
	frames := 0
	for len(r.rec.Events()) < 1_000_000 {
		r.run(b, frames+10_000, 64)
		frames += 10_000
	}
	evs := r.events()
	path := filepath.Join(b.TempDir(), "million.ndjson")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := trace.WriteEvents(f, r.header("benchmark"), evs); err != nil {
		b.Fatal(err)
	}
	f.Close()
	return path, len(evs)
}

// BenchmarkVerifyMillionEvents is `nicctl verify` on a trace of about a
// million events: read the NDJSON file, validate every ring against the
// spec, check the ring and wire FIFO histories with porcupine.
func BenchmarkVerifyMillionEvents(b *testing.B) {
	path, n := recordMillionEvents(b)
	st, _ := os.Stat(path)
	b.Logf("trace: %d events, %d MB", n, st.Size()>>20)
	var h trace.Header
	var evs []trace.Event
	b.Run("read", func(b *testing.B) {
		for b.Loop() {
			var err error
			if h, evs, err = trace.ReadFile(path); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds()*float64(b.N), "events/s")
	})
	b.Run("rings", func(b *testing.B) {
		for b.Loop() {
			rep, err := ValidateRings(h, evs)
			if err != nil || rep.Violation != nil {
				b.Fatalf("%v %v", err, rep.Violation)
			}
		}
	})
	b.Run("truth", func(b *testing.B) { // part of "rings" (ValidateRings runs it)
		for b.Loop() {
			if tr := CheckDeviceTruth(h, evs); !tr.Recorded() || !tr.OK() {
				b.Fatalf("%+v", tr)
			}
		}
	})
	b.Run("observations", func(b *testing.B) { // part of rings (loads.go)
		for b.Loop() {
			if v := CheckObservations(h, evs); v != nil {
				b.Fatal(v)
			}
		}
	})
	b.Run("ringFIFO", func(b *testing.B) {
		for b.Loop() {
			fr, err := CheckRingFIFO(evs, FIFOOptions{})
			if err != nil || fr.Result != porcupine.Ok {
				b.Fatalf("%v %v", err, fr.Result)
			}
		}
	})
	b.Run("wireFIFO", func(b *testing.B) {
		for b.Loop() {
			fr, err := CheckWireFIFO(evs, FIFOOptions{})
			if err != nil || fr.Result != porcupine.Ok {
				b.Fatalf("%v %v", err, fr.Result)
			}
		}
	})
	b.Run("all", func(b *testing.B) {
		for b.Loop() {
			h, evs, err := trace.ReadFile(path)
			if err != nil {
				b.Fatal(err)
			}
			if rep, err := ValidateRings(h, evs); err != nil || rep.Violation != nil {
				b.Fatal("rings")
			}
			if fr, _ := CheckRingFIFO(evs, FIFOOptions{}); fr.Result != porcupine.Ok {
				b.Fatal("ring FIFO")
			}
			if fr, _ := CheckWireFIFO(evs, FIFOOptions{}); fr.Result != porcupine.Ok {
				b.Fatal("wire FIFO")
			}
		}
	})
}
