package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verinic/verinic/trace"
)

// demo --offload sends with checksum offloads, so A's driver posts context
// descriptors (and, as always, data descriptors with and without RS); its
// trace records them (trace.PostContext, trace.PostNoRS) and nicctl verify
// holds: the Go ring validation replays them against tla/TxRing.tla's
// transcription, and, when TLA2TOOLS_JAR is set, TLC with TxRingTrace.tla
// accepts A's TX ring too.
func TestDemoOffloadTraceVerifies(t *testing.T) {
	dir := t.TempDir()
	tf := filepath.Join(dir, "offload.ndjson")
	// --window below the ring: B's ring never overflows (a drop would fail
	// the in-order check, whatever the offloads).
	code, out, errOut := runCaptured(t, "demo", "--offload", "--frames", "100", "--queues", "1", "--ring", "64",
		"--window", "32", "--quiet", "--trace", tf)
	if code != 0 {
		t.Fatalf("demo --offload: exit %d\n%s\n%s", code, out, errOut)
	}
	_, evs, err := trace.ReadFile(tf)
	if err != nil {
		t.Fatal(err)
	}
	var ctx, data, noRS, fetchCtx int
	ctxq := map[uint64]bool{}
	for _, e := range evs {
		if e.Dev != 0 || e.Dir != trace.TX {
			continue
		}
		switch {
		case e.Kind == trace.DrvPost && e.Aux&trace.PostContext != 0:
			ctx++
			ctxq[e.Buf] = true
		case e.Kind == trace.DrvPost:
			data++
			if e.Aux&trace.PostNoRS != 0 {
				noRS++
			}
		case e.Kind == trace.DevFetch && ctxq[e.Buf]:
			fetchCtx++
		}
	}
	// The cycle of demoOffloads changes the context three times in five
	// frames (but where a frame is too long for a tag).
	if data != 100 || ctx < 2*100/5 || fetchCtx < ctx {
		t.Fatalf("A's TX ring: %d data posts, %d context posts, %d device fetches of a context; want 100, >= %d, >= the context posts",
			data, ctx, fetchCtx, 2*100/5)
	}
	// The driver sets RS on one data descriptor in 32 and on the last of
	// each TxBatch call: the trace holds data descriptors without RS too.
	if noRS == 0 || noRS == data {
		t.Fatalf("A's TX ring: %d of %d data posts without RS; want some, not all", noRS, data)
	}
	code, out, errOut = runCaptured(t, "verify", tf)
	if code != 0 || !strings.Contains(out, "HELD   ring protocol") {
		t.Fatalf("verify: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("%d context and %d data posts (%d without RS) on A's TX ring; verify:\n%s", ctx, data, noRS, out)

	jar := os.Getenv("TLA2TOOLS_JAR")
	if jar == "" || testing.Short() {
		t.Log("skipped TLC: TLA2TOOLS_JAR is not set (or -short)")
		return
	}
	tla, err := filepath.Abs(filepath.Join("..", "..", "tla"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(tla, "TxRingTrace.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(src), "\n") {
		switch {
		case strings.Contains(l, "TraceFile ="):
			l = fmt.Sprintf("CONSTANTS TraceFile = %q", tf)
		case strings.Contains(l, "TraceDev ="):
			l = "          TraceDev = 0"
		case strings.Contains(l, "TraceQueue ="):
			l = "          TraceQueue = 0"
		}
		lines = append(lines, l)
	}
	cfg := filepath.Join(dir, "offload.cfg")
	if err := os.WriteFile(cfg, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("java", "-XX:+UseParallelGC", "-cp", jar, "tlc2.TLC", "-noGenerateSpecTE", "-workers", "1",
		"-metadir", filepath.Join(dir, "states"), "-config", cfg, "TxRingTrace.tla")
	cmd.Dir = tla
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("TLC rejected A's TX ring of the offload trace: %v\n%s", err, b)
	}
	t.Logf("TLC accepted A's TX ring:\n%s", lastLinesOf(string(b), 4))
}

func lastLinesOf(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
