package vfio

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/verinic/verinic/internal/guest"
	"github.com/verinic/verinic/internal/qemutrace"
	"github.com/verinic/verinic/trace"
)

// Host side of the igb guest's launchers (TestGuestIGB and the Linux-peer
// test): building the guest's static binaries, and verifying on the host the
// ring traces the guest's programs left in $VERINIC_GUEST_TRACE_DIR.

// buildStatic runs the go command for the guest (static, linux/amd64) in the
// repository root and checks that out was produced.
func buildStatic(t *testing.T, root, out string, args ...string) {
	t.Helper()
	// go test puts its own toolchain's bin directory first in PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building the guest's binaries needs the go command on PATH: %v", err)
	}
	cmd := exec.Command(goTool, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatalf("go %s produced no %s", strings.Join(args, " "), out)
	}
}

// igbGuestPackages are the packages whose TestInGuestIGB tests run in the
// igb guest; a package that does not exist (yet) or has no such test is
// left out.
var igbGuestPackages = []string{"vfio", "igb", "advring", "cmd/nicctl"}

var inGuestIGBTest = regexp.MustCompile(`(?m)^func TestInGuestIGB`)

// igbGuestPrograms builds a test binary for each package in
// igbGuestPackages that has TestInGuestIGB tests and returns the programs
// that run them (^TestInGuestIGB) in the guest.
func igbGuestPrograms(t *testing.T, root, work string) []guest.Program {
	t.Helper()
	var progs []guest.Program
	for _, pkg := range igbGuestPackages {
		files, _ := filepath.Glob(filepath.Join(root, pkg, "*_test.go"))
		found := false
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && inGuestIGBTest.Match(b) {
				found = true
				break
			}
		}
		if !found {
			continue
		}
		name := strings.ReplaceAll(pkg, "/", "-")
		bin := filepath.Join(work, name+".test")
		buildStatic(t, root, bin, "test", "-c", "-o", bin, "./"+pkg+"/")
		progs = append(progs, guest.Program{Name: name + "-igb", Path: bin, Args: []string{"-test.v", "-test.run", "^TestInGuestIGB", "-test.timeout", "240s"}})
	}
	if len(progs) == 0 {
		t.Fatalf("no package among %v has TestInGuestIGB tests", igbGuestPackages)
	}
	return progs
}

// verifyGuestTraces runs `nicctl verify --json` on the host over every
// *.ndjson trace the guest left under dir (ring protocol against the TLA+
// specs' transcriptions, device truth where recorded, FIFO linearizability
// with porcupine) and fails the test on any failed check; want names traces
// that must be among them.
func verifyGuestTraces(t *testing.T, nicctl, dir string, want ...string) {
	t.Helper()
	logs, errs := checkTraces(nicctl, dir, want...)
	for _, l := range logs {
		t.Log(l)
	}
	for _, e := range errs {
		t.Error(e)
	}
}

// checkTraces is verifyGuestTraces' work: what held (logs) and what failed
// (errs).
func checkTraces(nicctl, dir string, want ...string) (logs, errs []string) {
	all, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	var traces []string
	for _, tr := range all {
		if !strings.HasSuffix(tr, ".qemu.ndjson") { // QEMU's account (checkQEMUTruth), not a driver's trace
			traces = append(traces, tr)
		}
	}
	sort.Strings(traces)
	have := map[string]bool{}
	for _, tr := range traces {
		have[filepath.Base(tr)] = true
	}
	for _, w := range want {
		if !have[w] {
			errs = append(errs, fmt.Sprintf("the guest left no trace %s in %s (have %v)", w, dir, traces))
		}
	}
	for _, tr := range traces {
		out, err := exec.Command(nicctl, "verify", "--json", "--html", filepath.Dir(tr), tr).Output()
		var rep struct {
			Events int  `json:"events"`
			OK     bool `json:"ok"`
			Checks []struct {
				Name, Result, Detail string
			} `json:"checks"`
		}
		if jerr := json.Unmarshal(out, &rep); jerr != nil {
			errs = append(errs, fmt.Sprintf("nicctl verify %s: %v (%v)\n%s", filepath.Base(tr), err, jerr, out))
			continue
		}
		var held, failed []string
		for _, c := range rep.Checks {
			first, _, _ := strings.Cut(c.Detail, "\n")
			switch c.Result {
			case "held":
				held = append(held, c.Name)
			case "failed":
				failed = append(failed, c.Name+": "+first)
			}
		}
		if !rep.OK || err != nil || len(failed) > 0 || len(held) == 0 {
			errs = append(errs, fmt.Sprintf("nicctl verify %s (recorded in the guest): ok %v, %v; failed: %s", filepath.Base(tr), rep.OK, err, strings.Join(failed, "; ")))
			continue
		}
		logs = append(logs, fmt.Sprintf("nicctl verify %s (recorded in the guest, %d events): %d checks held (%s)", filepath.Base(tr), rep.Events, len(held), strings.Join(held, "; ")))
	}
	return logs, errs
}

// TestCheckTracesFailsOnABadTrace runs the host-side check over a trace that
// verifies and over the same trace with one RX post's buffer address
// changed (the device's view at the doorbell then disagrees with the post),
// and over a directory missing a wanted trace: only the first passes.
func TestCheckTracesFailsOnABadTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("builds nicctl")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("builds nicctl for the guest (linux/amd64); this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	root := repoRoot(t)
	work := t.TempDir()
	nicctl := filepath.Join(work, "nicctl")
	buildStatic(t, root, nicctl, "build", "-o", nicctl, "./cmd/nicctl/")
	good := filepath.Join(work, "good")
	if err := os.Mkdir(good, 0o755); err != nil {
		t.Fatal(err)
	}
	tr := filepath.Join(good, "demo.ndjson")
	if out, err := exec.Command(nicctl, "demo", "--frames", "300", "--quiet", "--trace-events", "100000", "--trace", tr).CombinedOutput(); err != nil {
		t.Fatalf("nicctl demo: %v\n%s", err, out)
	}
	if logs, errs := checkTraces(nicctl, good, "demo.ndjson"); len(errs) > 0 || len(logs) != 1 {
		t.Fatalf("a good trace: logs %q, errors %q", logs, errs)
	}
	if _, errs := checkTraces(nicctl, good, "demo.ndjson", "igb.ndjson"); len(errs) != 1 || !strings.Contains(errs[0], "no trace igb.ndjson") {
		t.Errorf("a missing trace: errors %q", errs)
	}
	b, err := os.ReadFile(tr)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	changed := false
	post := regexp.MustCompile(`"kind":"post","dev":1,"dir":"rx",(.*)"buf":"0x([0-9a-f]+)"`)
	for i, l := range lines {
		if m := post.FindStringSubmatchIndex(l); m != nil {
			lines[i] = l[:m[4]] + "dead0" + l[m[4]:]
			changed = true
			break
		}
	}
	if !changed {
		t.Fatal("no RX post of device 1 in the demo's trace")
	}
	bad := filepath.Join(work, "bad")
	if err := os.Mkdir(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "demo.ndjson"), []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errs := checkTraces(nicctl, bad, "demo.ndjson"); len(errs) != 1 || !strings.Contains(errs[0], "failed:") {
		t.Errorf("a trace with a changed post: errors %q", errs)
	} else {
		t.Logf("caught: %s", errs[0])
	}
}

// reportRates logs the frame rates the in-guest tests measured
// (VERINIC-RATE lines) and, when both families of driver were measured, the
// ratio of the project's driver to Linux's igb: the figure BENCHMARKS.md
// reports (TCG bounds both; an absolute rate here means nothing).
func reportRates(t *testing.T, serial string) {
	t.Helper()
	rates := parseRates(serial)
	if len(rates) == 0 {
		return
	}
	names := make([]string, 0, len(rates))
	for n := range rates {
		names = append(names, n)
	}
	sort.Strings(names)
	var lines []string
	for _, n := range names {
		lines = append(lines, fmt.Sprintf("%s %.0f frames/s", n, rates[n]))
	}
	t.Logf("frame rates in the igb guest (TCG): %s", strings.Join(lines, "; "))
	for _, n := range names {
		for _, l := range names {
			if strings.HasPrefix(n, "verinic-") && strings.HasPrefix(l, "linux-") && rates[l] > 0 {
				t.Logf("ratio %s / %s = %.2f", n, l, rates[n]/rates[l])
			}
		}
	}
}

// checkQEMUTruth holds each QEMU trace window the guest recorded against the
// driver trace of the same name (NAME.ndjson beside the others): the
// descriptors QEMU's igb fetched and the buffers it wrote, from its own
// trace events, must be the ones the driver posted (internal/qemutrace).
// QEMU's account, attributed to the driver's rings, is written beside the
// trace as NAME.qemu.ndjson. A window without a trace, or a trace the
// window lacks, is an error; want names windows that must be among them.
func checkQEMUTruth(t *testing.T, traceDir string, windows map[string]string, want ...string) {
	t.Helper()
	for _, w := range want {
		if _, ok := windows[w]; !ok {
			t.Errorf("the guest recorded no QEMU trace window %s (have %v)", w, windows)
		}
	}
	names := make([]string, 0, len(windows))
	for n := range windows {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		h, driver, err := trace.ReadFile(filepath.Join(traceDir, name+".ndjson"))
		if err != nil {
			t.Errorf("QEMU trace window %s has no driver trace: %v", name, err)
			continue
		}
		f, err := os.Open(windows[name])
		if err != nil {
			t.Errorf("QEMU trace window %s: %v", name, err)
			continue
		}
		qemu, _, err := qemutrace.Parse(f)
		f.Close()
		if err != nil {
			t.Errorf("QEMU trace window %s: %v", name, err)
			continue
		}
		rep := qemutrace.Check(h, driver, qemu)
		out := filepath.Join(traceDir, name+".qemu.ndjson")
		dh := h
		dh.Note = "QEMU's igb trace events (internal/qemutrace), attributed to the rings of " + name + ".ndjson; no clock shared with the driver's events"
		if fo, err := os.Create(out); err == nil {
			if err := trace.WriteEvents(fo, dh, rep.Device); err != nil {
				t.Errorf("write %s: %v", out, err)
			}
			fo.Close()
		}
		if !rep.OK() || rep.TxFetches+rep.RxFetches == 0 {
			t.Errorf("QEMU's igb against the driver's trace %s: %v", name, rep)
			continue
		}
		t.Logf("QEMU's igb against the driver's trace %s: %v", name, rep)
	}
}
