package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verinic/verinic/models"
)

// The demo's trace carries the simulator's device truth, and verify holds
// it against the driver's posts.
func TestVerifyDeviceTruthHolds(t *testing.T) {
	o := demoOpts(3000)
	o.trace = filepath.Join(t.TempDir(), "demo.ndjson")
	var out bytes.Buffer
	if res, err := demo(o, &out); err != nil || !res.agree {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	out.Reset()
	ok, err := verifyTrace(&out, o.trace, models.FIFOOptions{VisualizeDir: t.TempDir()})
	if err != nil || !ok {
		t.Fatalf("verify: ok=%v err=%v\n%s", ok, err, out.String())
	}
	if !strings.Contains(out.String(), "HELD   device truth") {
		t.Fatalf("no device-truth verdict:\n%s", out.String())
	}
	t.Log(out.String())
}
