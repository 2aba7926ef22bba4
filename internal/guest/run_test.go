package guest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// guestRequested reports whether a test that boots QEMU should run: asked
// for by name (-run naming TestGuest), VERINIC_GUEST=1, or CI=true.
func guestRequested() bool {
	if os.Getenv("VERINIC_GUEST") == "1" || os.Getenv("CI") == "true" {
		return true
	}
	f := flag.Lookup("test.run")
	return f != nil && strings.Contains(f.Value.String(), "TestGuest")
}

// partsForTest prepares the kernel parts (skipping where the guest cannot
// run, except in CI, which must have it).
func partsForTest(t *testing.T) *Parts {
	t.Helper()
	if !guestRequested() {
		t.Skip("boots a QEMU guest when asked for: go test ./internal/guest/ -run TestGuest (or VERINIC_GUEST=1; always in CI)")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("the guest is an x86-64 Linux kernel; this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	parts, err := EnsureParts(filepath.Join(wd, "../../.ci/guest-deps.sh"))
	if errors.Is(err, ErrUnavailable) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return parts
}

// lineTimes is a Log writer that notes when lines holding a marker arrive.
type lineTimes struct {
	mu     sync.Mutex
	marker string
	at     []time.Time
}

func (l *lineTimes) Write(p []byte) (int, error) {
	if strings.Contains(string(p), l.marker) {
		l.mu.Lock()
		l.at = append(l.at, time.Now())
		l.mu.Unlock()
	}
	return len(p), nil
}

// TestGuestOutputsAndWait boots the igb machine with only a shell step:
// files written in the guest (6 MiB of random bytes, a nested trace file)
// come back through the output disk byte for byte (the guest prints the
// sha256 it computed), and the guest stops at each wait until the host's
// hook has returned; a hook's error and a wait without a hook are reported.
func TestGuestOutputsAndWait(t *testing.T) {
	parts := partsForTest(t)
	out := filepath.Join(t.TempDir(), "outputs")
	marks := &lineTimes{marker: "after-first"}
	var firstDone time.Time
	res, err := Run(context.Background(), Config{
		Machine: MachineIGB,
		Parts:   parts,
		Setup: `dd if=/dev/urandom of=$` + OutDirEnv + `/blob bs=1M count=6 2>/dev/null
mkdir -p $` + TraceDirEnv + `/sub && echo hello > $` + TraceDirEnv + `/sub/x
echo "blob-sha256 $(sha256sum $` + OutDirEnv + `/blob | cut -d' ' -f1)"
vn_wait first
echo after-first
vn_wait second
vn_wait nohook
[ "$` + QEMUTraceEnv + `" = 1 ] || echo "` + SentinelError + ` no ` + QEMUTraceEnv + `"
vn_wait qemutrace-on:linkup
ip link set eth0 up
vn_wait qemutrace-off:linkup
ip link set eth1 up`,
		QEMUTrace: []string{"e1000e_core_write", "igb_*"},
		Outputs:   out,
		Wait: map[string]func() error{
			"first":  func() error { time.Sleep(2 * time.Second); firstDone = time.Now(); return nil },
			"second": func() error { return errors.New("the host check failed") },
		},
		Timeout: 3 * time.Minute,
		WorkDir: t.TempDir(),
		Log:     marks,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, res.Serial)
	}
	if !res.Done || len(res.Errors) > 0 {
		t.Fatalf("guest done %v, errors %q\n%s", res.Done, res.Errors, res.Serial)
	}
	m := regexp.MustCompile(`blob-sha256 ([0-9a-f]{64})`).FindStringSubmatch(res.Serial)
	if m == nil {
		t.Fatalf("the guest printed no sha256 of its file:\n%s", res.Serial)
	}
	blob, err := os.ReadFile(filepath.Join(out, "blob"))
	sum := sha256.Sum256(blob)
	if err != nil || len(blob) != 6<<20 || hex.EncodeToString(sum[:]) != m[1] {
		t.Errorf("blob on the host: %d bytes, sha256 %x, %v; the guest had 6 MiB with sha256 %s", len(blob), sum, err, m[1])
	}
	if b, err := os.ReadFile(filepath.Join(out, "traces/sub/x")); err != nil || string(b) != "hello\n" {
		t.Errorf("traces/sub/x: %q, %v", b, err)
	}
	if strings.Join(res.Files, ",") != "blob,traces/sub/x" && strings.Join(res.Files, ",") != "traces/sub/x,blob" {
		t.Errorf("files %q", res.Files)
	}
	if strings.Join(res.Waits, ",") != "first,second,nohook,qemutrace-on:linkup,qemutrace-off:linkup" {
		t.Errorf("waits %q", res.Waits)
	}
	if len(res.HookErrors) != 2 || !strings.Contains(strings.Join(res.HookErrors, "|"), "second: the host check failed") ||
		!strings.Contains(strings.Join(res.HookErrors, "|"), "nohook: no host hook") {
		t.Errorf("hook errors %q", res.HookErrors)
	}
	// The QEMU trace window holds the register writes of Linux's igb
	// driver bringing eth0 up; once it closed, nothing more is traced
	// (eth1's writes are not), and the window's file is complete.
	win, err := os.ReadFile(res.QEMUTraces["linkup"])
	if err != nil || strings.Count(string(win), "e1000e_core_write") < 10 {
		t.Errorf("QEMU trace window linkup (%s): %d register writes, %v", res.QEMUTraces["linkup"], strings.Count(string(win), "e1000e_core_write"), err)
	}
	if after, _ := os.ReadFile(filepath.Join(filepath.Dir(res.QEMUTraces["linkup"]), "../qemu.log")); strings.Contains(string(after), "e1000e_core_write") {
		t.Errorf("QEMU traced register writes outside the window:\n%.500s", after)
	}
	marks.mu.Lock()
	defer marks.mu.Unlock()
	if len(marks.at) != 1 || firstDone.IsZero() || marks.at[0].Before(firstDone) {
		t.Errorf("the guest went on before the host's hook returned (hook done %v, guest's next line at %v)", firstDone, marks.at)
	}
	t.Logf("guest booted in %v, ran in %v; %d output files", res.Boot.Round(time.Millisecond), res.Duration.Round(time.Millisecond), len(res.Files))
}
