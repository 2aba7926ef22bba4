//go:build ixgbebugs

package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/models"
)

// The driver writes TDT before the descriptor stores: nicctl verify fails
// the device-truth check by name, with the descriptor and what the device
// found there, and lists the device's own violations with their rule.
// (The bug races with the device on purpose: under -race this test reports
// the race it plants.)
func TestVerifyDeviceTruthCatchesTailBeforeDescriptor(t *testing.T) {
	o := demoOpts(2000)
	o.queues = 1
	o.window = 0
	o.stallAfter = 2 * time.Second
	o.trace = filepath.Join(t.TempDir(), "bug.ndjson")
	o.driverConfig = func(i int, cfg ixgbe.Config) ixgbe.Config {
		if i == 0 {
			return ixgbe.WithBugs(cfg, ixgbe.BugTailBeforeDescriptor)
		}
		return cfg
	}
	var out bytes.Buffer
	// The device may send garbage and lose frames: the run may stall, and
	// then its trace is written all the same.
	if _, err := demo(o, &out); err != nil && !strings.Contains(err.Error(), "stalled") {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	t.Logf("demo:\n%s", out.String())
	if !strings.Contains(out.String(), "trace     ") {
		t.Fatalf("no trace written:\n%s", out.String())
	}
	out.Reset()
	ok, err := verifyTrace(&out, o.trace, models.FIFOOptions{VisualizeDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Fatalf("verify passed a trace of the bug:\n%s", out.String())
	}
	for _, want := range []string{"FAILED device truth", models.CheckHandedOverOnlyPosted, "dev 0 tx queue 0 descriptor", "has not posted it"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("verify output lacks %q:\n%s", want, out.String())
		}
	}
	t.Log(out.String())
}
