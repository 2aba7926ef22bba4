package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verinic/verinic/ixgbe"
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

// The accounting on made-up counts: --window 0 drops are fine when B
// counted them, not when it did not, and never when the run promised no
// loss.
func TestNicctlDemoChecks(t *testing.T) {
	// 1000 frames of 100 bytes; B dropped 30 for a full ring and missed 20.
	c := demoCounts{sent: 1000, sentBytes: 100000}
	c.a.TxPackets, c.a.TxBytes = 1000, 104000
	c.wire.Offered, c.wire.Delivered = 1000, 1000
	c.b.RxPackets, c.b.RxMissed = 980, 20
	c.b.Queues = []ixgbe.QueueStats{{RxDrops: 30}}
	c.rxDrops = 30
	c.tracker.Received, c.tracker.InOrder, c.tracker.Gaps = 950, 900, 50
	failed := func(p demoPromise) []string {
		var f []string
		for _, ch := range demoChecks(c, p) {
			if !ch.OK {
				f = append(f, ch.What)
			}
		}
		return f
	}
	if f := failed(promiseCounted); len(f) != 0 {
		t.Errorf("--window 0 with counted drops: %q failed", f)
	}
	if f := failed(promiseNoLoss); len(f) != 1 || !strings.Contains(f[0], "none lost") {
		t.Errorf("with a window the drops must fail the no-loss check, got %q", f)
	}
	if f := failed(promiseNone); len(f) != 0 {
		t.Errorf("with faults: %q failed", f)
	}
	// A frame that vanished between B's counters and the software.
	c.tracker.Received--
	c.tracker.InOrder--
	if f := failed(promiseCounted); len(f) != 2 {
		t.Errorf("a frame lost without a count: %q failed, want the delivery and the drop checks", f)
	}
	c.tracker.Received++
	c.tracker.Late = 1
	if f := failed(promiseCounted); len(f) != 1 || !strings.Contains(f[0], "in order") {
		t.Errorf("a late frame with --window 0: %q failed", f)
	}
}

// demo --window 0 promises no lossless delivery: frames B drops for want of
// descriptors or buffer space are accounted for, not a failure.
func TestNicctlDemoWindowZeroAccountsForDrops(t *testing.T) {
	o := demoOpts(100000)
	o.window = 0
	o.ring = 64
	var out bytes.Buffer
	res, err := demo(o, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !res.agree {
		t.Fatalf("demo --window 0: counts do not agree\n%s", out.String())
	}
	if !strings.Contains(out.String(), "every frame delivered in order or counted as dropped by B") {
		t.Errorf("demo --window 0 does not check the frames it lost against B's counters:\n%s", out.String())
	}
}

// A trace the recorder could not hold is an error, and no file is left
// for verify to refuse later.
func TestNicctlDemoTraceOverflowIsAnError(t *testing.T) {
	o := demoOpts(2000)
	o.traceCap = 1000
	o.trace = filepath.Join(t.TempDir(), "t.ndjson")
	var out bytes.Buffer
	_, err := demo(o, &out)
	if err == nil || !strings.Contains(err.Error(), "did not fit") || !strings.Contains(err.Error(), "--trace-events") {
		t.Fatalf("demo with a recorder too small: %v\n%s", err, out.String())
	}
	if ents, _ := os.ReadDir(filepath.Dir(o.trace)); len(ents) != 0 {
		t.Errorf("files left behind: %v", ents)
	}
}

// The accounting fails on the driver's own error counters: a double free
// (TxFreeErrors), a refused packet and an error drop each make it fail,
// even when every other count agrees.
func TestDemoChecksDriverErrors(t *testing.T) {
	clean := demoCounts{}
	for _, c := range demoChecks(clean, promiseNone) {
		if !c.OK {
			t.Fatalf("all-zero counts fail %q", c.What)
		}
	}
	for name, set := range map[string]func(*demoCounts){
		"TxFreeErrors": func(c *demoCounts) { c.a.Queues = []ixgbe.QueueStats{{TxFreeErrors: 1}} },
		"TxBadPackets": func(c *demoCounts) { c.a.Queues = []ixgbe.QueueStats{{TxBadPackets: 2}} },
		"RxErrorDrops": func(c *demoCounts) { c.b.Queues = []ixgbe.QueueStats{{}, {RxErrorDrops: 1}} },
		"RxMultiDesc":  func(c *demoCounts) { c.b.Queues = []ixgbe.QueueStats{{RxMultiDescDrops: 1}} },
	} {
		c := clean
		set(&c)
		c = c.withDriverErrors()
		failed := ""
		for _, ch := range demoChecks(c, promiseNone) {
			if !ch.OK {
				failed = ch.What
			}
		}
		if failed == "" {
			t.Errorf("%s non-zero: every check passed", name)
		} else if !strings.Contains(failed, "no TX free errors") && !strings.Contains(failed, "no driver error drops") {
			t.Errorf("%s non-zero failed %q", name, failed)
		}
	}
}

// A stuck DMA engine on A (the simulator's fault injection) stalls A's
// transmit rings: the demo must end, within a bounded time, with an error
// that names a ring, its head and its tail.
func TestDemoStalledRingDiagnosed(t *testing.T) {
	o := demoOpts(200000)
	o.queues = 2
	o.stallAfter = 500 * time.Millisecond
	o.stallHook = func(r *demoRig) { r.simA.StallDMA(true) }
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		var out bytes.Buffer
		_, err := demo(o, &out)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the demo succeeded with A's DMA stalled")
		}
		msg := err.Error()
		for _, want := range []string{"stalled", "TX ring", "head", "tail"} {
			if !strings.Contains(msg, want) {
				t.Errorf("diagnosis lacks %q: %s", want, msg)
			}
		}
		t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(30 * time.Second):
		t.Fatal("the demo hangs with a stalled ring")
	}
}

// A small ring with the default window: the window is capped at ring-1 and
// the generators together never put more in flight (one reservation on the
// shared sent count, not a batch each past the window), so B's rings never
// overflow and every frame arrives in order. Before the cap the default
// window of 128 made `demo --ring 64` drop 80-95 of 3000 frames.
func TestDemoSmallRingDefaultWindow(t *testing.T) {
	code, out, errOut := runCaptured(t, "demo", "--ring", "64", "--frames", "6000", "--batch", "32")
	if code != 0 {
		t.Fatalf("demo --ring 64: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "every frame in order, none lost") {
		t.Fatalf("demo --ring 64 did not check in-order delivery:\n%s", out)
	}
}
