package main

import (
	"bytes"
	"fmt"
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

// nicctl demo --schedule: under each adversarial device schedule (and
// several seeds of the random one) the counts agree and the trace verifies,
// device truth included.
func TestDemoSchedulesVerify(t *testing.T) {
	for _, c := range []struct {
		schedule string
		seed     int64
	}{
		{"doorbell", 1}, {"status-first,split", 1}, {"length-first,split", 1},
		{"doorbell,status-first,split", 1}, {"random", 1}, {"random", 2}, {"random", 77},
	} {
		t.Run(fmt.Sprintf("%s/%d", c.schedule, c.seed), func(t *testing.T) {
			dir := t.TempDir()
			tf := filepath.Join(dir, "demo.ndjson")
			args := []string{"demo", "--frames", "3000", "--queues", "2", "--quiet", "--schedule", c.schedule,
				"--seed", fmt.Sprint(c.seed), "--trace", tf}
			if code := run(args); code != 0 {
				t.Fatalf("nicctl %v exited %d", args, code)
			}
			var out bytes.Buffer
			ok, err := verifyTrace(&out, tf, models.FIFOOptions{VisualizeDir: dir})
			if err != nil || !ok || !strings.Contains(out.String(), "HELD   device truth") {
				t.Fatalf("verify: ok=%v err=%v\n%s", ok, err, out.String())
			}
		})
	}
	if code := run([]string{"demo", "--schedule", "sloppy"}); code == 0 {
		t.Fatal("an unknown schedule was accepted")
	}
}
