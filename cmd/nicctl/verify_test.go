package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verinic/verinic/models"
)

// nicctl verify on the sample traces of tla/traces: the clean one holds,
// a buggy one fails with the first violation, its context and porcupine's
// visualization next to the trace.
func TestVerifySampleTraces(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"clean.ndjson", "bug-double-post.ndjson"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "tla", "traces", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	ok, err := verifyTrace(&out, filepath.Join(dir, "clean.ndjson"), models.FIFOOptions{VisualizeDir: dir})
	if err != nil || !ok {
		t.Fatalf("clean trace: ok=%v err=%v\n%s", ok, err, out.String())
	}
	for _, want := range []string{"2472 events", "HELD   ring protocol", "HELD   ring FIFO", "HELD   wire FIFO"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("clean output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	ok, err = verifyTrace(&out, filepath.Join(dir, "bug-double-post.ndjson"), models.FIFOOptions{VisualizeDir: dir, Prefix: "dp"})
	if err != nil || ok {
		t.Fatalf("buggy trace: ok=%v err=%v\n%s", ok, err, out.String())
	}
	for _, want := range []string{"FAILED ring protocol", "posted twice", "preceding events on this ring", "FAILED wire FIFO", "visualization: " + dir} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("buggy output lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := verifyTrace(&out, filepath.Join(dir, "missing.ndjson"), models.FIFOOptions{}); err == nil {
		t.Error("missing file accepted")
	}
}
