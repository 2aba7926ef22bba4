package models

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verinic/verinic/trace"
)

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
