package vfio

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/verinic/verinic/internal/guest"
)

// TestGuest is the VFIO tier against the real Linux kernel: it builds this
// package's and dma's tests and nicctl statically, boots a QEMU guest with an
// emulated Intel IOMMU and an e1000e (package guest), runs them there, and
// fails when any of them fails inside. It installs what it needs through
// .ci/guest-deps.sh when it runs as root with apt-get.
//
// It boots a VM (15-60 s under TCG), so it runs when asked for by name
// (go test ./vfio/ -run TestGuest -v), with VERINIC_GUEST=1, or in CI
// (CI=true), not in every developer's go test ./vfio/.
func TestGuest(t *testing.T) {
	start := time.Now()
	root, parts := guestHost(t, "the QEMU guest tier runs when asked for: go test ./vfio/ -run TestGuest -v (or VERINIC_GUEST=1; always in CI)")
	t.Logf("guest kernel from %s (%v to prepare)", parts.Package, time.Since(start).Round(time.Millisecond))

	work := t.TempDir()
	bstart := time.Now()
	vfioTest := filepath.Join(work, "vfio.test")
	dmaTest := filepath.Join(work, "dma.test")
	nicctl := filepath.Join(work, "nicctl")
	buildStatic(t, root, vfioTest, "test", "-c", "-o", vfioTest, "./vfio/")
	buildStatic(t, root, dmaTest, "test", "-c", "-o", dmaTest, "./dma/")
	if pre := os.Getenv("VERINIC_GUEST_NICCTL"); pre != "" {
		nicctl = pre // a prebuilt static nicctl (when cmd/nicctl is being changed)
	} else {
		buildStatic(t, root, nicctl, "build", "-o", nicctl, "./cmd/nicctl/")
	}
	t.Logf("static binaries built in %v", time.Since(bstart).Round(time.Millisecond))

	progs := []guest.Program{
		{Name: "vfio", Path: vfioTest, Args: []string{"-test.v", "-test.run", "^TestInGuest|Facts$", "-test.timeout", "120s"}},
		// The dma tests run with hugepages reserved, so that their hugepage
		// paths run on real 2 MiB pages.
		{Name: "dma", Path: dmaTest, Args: []string{"-test.v", "-test.timeout", "120s"}, Pre: "echo 32 > /proc/sys/vm/nr_hugepages"},
	}
	log, err := os.Create(filepath.Join(work, "serial.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	res, err := guest.Run(context.Background(), guest.Config{
		Parts:    parts,
		Programs: progs,
		Extra:    []guest.Entry{{Path: "bin/nicctl", Mode: guest.TypeRegular | 0o755, Source: nicctl}},
		Timeout:  4 * time.Minute,
		WorkDir:  work,
		Log:      log,
	})
	checkGuestRun(t, "guest", res, err, progs)
	t.Logf("guest ran in %v; whole tier %v", res.Duration.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// guestHost is the start of every host-side guest launcher: it skips inside
// a guest, when the tier was not asked for (skipWhy says how to ask), and off
// x86-64 Linux; then it returns the repository root and the guest kernel's
// parts (skipping, outside CI, where they cannot be had).
func guestHost(t *testing.T, skipWhy string) (root string, parts *guest.Parts) {
	t.Helper()
	if os.Getenv(guestEnv) != "" || os.Getenv(guest.IGBNICsEnv) != "" {
		t.Skip("already inside the guest")
	}
	if !guestRequested() {
		t.Skip(skipWhy)
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("the guest is an x86-64 Linux kernel; this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	root = repoRoot(t)
	parts, err := guest.EnsureParts(filepath.Join(root, ".ci/guest-deps.sh"))
	if errors.Is(err, guest.ErrUnavailable) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return root, parts
}

// checkGuestRun reports a guest run (reportGuest) and fails the test when
// the run failed, the guest did not boot or finish, init reported an
// error, or a program did not exit 0. which names the guest in messages.
func checkGuestRun(t *testing.T, which string, res *guest.Result, err error, progs []guest.Program) {
	t.Helper()
	if res != nil {
		reportGuest(t, res)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !res.Booted {
		t.Fatalf("the %s did not boot (no sentinel on the serial console)", which)
	}
	for _, e := range res.Errors {
		t.Errorf("guest init: %s", e)
	}
	if !res.Done {
		t.Errorf("the %s did not finish its programs", which)
	}
	if bad := res.Failed(progs); len(bad) > 0 {
		t.Errorf("failed inside the %s: %s", which, strings.Join(bad, ", "))
	}
}

// reportGuest logs the inner tests' results: one line per test, then the
// whole serial console when something failed or with -v.
func reportGuest(t *testing.T, res *guest.Result) {
	t.Helper()
	var summary []string
	failing := 0
	lines := strings.Split(res.Serial, "\n")
	for _, line := range lines {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "--- PASS"), strings.HasPrefix(trimmed, "--- SKIP"):
			summary = append(summary, trimmed)
		case strings.HasPrefix(trimmed, "--- FAIL"), strings.HasPrefix(trimmed, "panic:"):
			summary = append(summary, trimmed)
			failing++
		}
	}
	t.Logf("inside the guest:\n%s", strings.Join(summary, "\n"))
	if testing.Verbose() || failing > 0 || !res.Done || len(res.Errors) > 0 {
		t.Logf("serial console:\n%s", res.Serial)
	}
}

// guestRequested reports whether -run names TestGuest, VERINIC_GUEST=1 or
// CI=true.
func guestRequested() bool {
	if os.Getenv("VERINIC_GUEST") == "1" || os.Getenv("CI") == "true" {
		return true
	}
	f := flag.Lookup("test.run")
	return f != nil && strings.Contains(f.Value.String(), "TestGuest")
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	t.Fatalf("no go.mod above %s", dir)
	return ""
}
