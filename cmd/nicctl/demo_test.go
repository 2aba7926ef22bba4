package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/trace"
)

func demoOpts(frames uint64) demoOptions {
	return demoOptions{frames: frames, queues: 4, batch: 32, ring: 512, window: 128, quiet: true, traceCap: 1 << 20}
}

func TestDemoCountsAgree(t *testing.T) {
	var out bytes.Buffer
	res, err := demo(demoOpts(20000), &out)
	if err != nil {
		t.Fatal(err)
	}
	if !res.agree || res.sent != 20000 || res.received != 20000 {
		t.Fatalf("demo: %+v\n%s", res, out.String())
	}
	for _, want := range []string{"link up 10000 Mb/s", "counts agree", "20000 in order"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// With every wire fault on, frames are lost, duplicated, reordered and
// corrupted, yet the counters still explain every frame.
func TestDemoAccountsForWireFaults(t *testing.T) {
	o := demoOpts(20000)
	o.faults = ixgbesim.Faults{Seed: 7, Drop: 0.02, Corrupt: 0.02, Duplicate: 0.02, Reorder: 0.02}
	var out bytes.Buffer
	res, err := demo(o, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !res.agree {
		t.Fatalf("counts do not agree under faults:\n%s", out.String())
	}
	if res.received >= res.sent || strings.Contains(out.String(), " 0 gaps") {
		t.Fatalf("faults had no visible effect:\n%s", out.String())
	}
}

func TestDemoRecordsTrace(t *testing.T) {
	o := demoOpts(2000)
	o.queues = 2
	o.trace = filepath.Join(t.TempDir(), "demo.ndjson")
	var out bytes.Buffer
	if _, err := demo(o, &out); err != nil {
		t.Fatal(err)
	}
	h, events, err := trace.ReadFile(o.trace)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Devices) != 2 || len(events) == 0 || h.Dropped != 0 {
		t.Fatalf("trace header %+v with %d events", h, len(events))
	}
	kinds := map[trace.Kind]int{}
	for _, e := range events {
		kinds[e.Kind]++
	}
	for _, k := range []trace.Kind{trace.DrvPost, trace.DrvTail, trace.DrvDDSeen, trace.DrvReclaim, trace.DevFetch, trace.DevWriteBack, trace.AppCallTx, trace.AppPacket, trace.AppRetRx} {
		if kinds[k] == 0 {
			t.Errorf("no %s events in the demo trace", k)
		}
	}
	// The recorded run is a behaviour of the ring specs and a FIFO.
	if code := run([]string{"verify", o.trace}); code != 0 {
		t.Fatalf("nicctl verify of the demo's own trace exited %d", code)
	}
}

func TestDemoCommandLine(t *testing.T) {
	if code := run([]string{"demo", "--frames", "1000", "--quiet"}); code != 0 {
		t.Fatalf("nicctl demo exited %d", code)
	}
	if code := run([]string{"demo", "--queues", "0"}); code != 2 {
		t.Fatalf("nicctl demo --queues 0 exited %d, want 2 (usage)", code)
	}
	if code := run([]string{"nosuchcommand"}); code != 2 {
		t.Fatalf("unknown command exited %d", code)
	}
}

// With 802.3x flow control the application needs no window: the generator
// sends as fast as it can and B's MAC pauses A instead of dropping.
func TestDemoFlowControlWithoutWindow(t *testing.T) {
	o := demoOpts(50000)
	o.window = 0
	o.flowCtl = true
	var out bytes.Buffer
	res, err := demo(o, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !res.agree || res.sent != 50000 || res.received != 50000 {
		t.Fatalf("demo --window 0 --flow-control: %+v\n%s", res, out.String())
	}
	for _, want := range []string{"flow control on", "missed 0", "50000 in order", "counts agree"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
