//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/verinic/verinic/trace/pcap"
	"github.com/verinic/verinic/vfio/hugepages"
	"github.com/verinic/verinic/vfio/pci"
	"github.com/verinic/verinic/vfio/pci/pcitest"
)

// runCaptured runs nicctl in-process with the arguments and returns its exit
// code and what it wrote to standard output and standard error.
func runCaptured(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	pipe := func() (*os.File, *os.File, chan string) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan string)
		go func() {
			var b bytes.Buffer
			io.Copy(&b, r)
			r.Close()
			done <- b.String()
		}()
		return r, w, done
	}
	_, wo, outc := pipe()
	_, we, errc := pipe()
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = wo, we
	code = run(args)
	os.Stdout, os.Stderr = oldOut, oldErr
	wo.Close()
	we.Close()
	return code, <-outc, <-errc
}

// wantUsage runs nicctl and wants exit status 2 and a message on standard
// error that holds every one of wants.
func wantUsage(t *testing.T, args []string, wants ...string) {
	t.Helper()
	code, out, errOut := runCaptured(t, args...)
	if code != 2 {
		t.Errorf("nicctl %s: exit %d, want 2 (usage)\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
		return
	}
	for _, w := range wants {
		if !strings.Contains(errOut, w) {
			t.Errorf("nicctl %s: the message lacks %q:\n%s", strings.Join(args, " "), w, errOut)
		}
	}
}

// A TAP name longer than IFNAMSIZ: a stack command that gets as far as
// opening the TAP fails on it (exit 1) without creating anything.
const badTAP = "this-name-is-too-long-for-a-tap"

var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
)

// builtNicctl builds the nicctl binary once per test run, into a
// directory that everybody can read (the permission test runs it as
// nobody), and returns its path.
func builtNicctl(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nicctl-test-")
		if err != nil {
			buildErr = err
			return
		}
		os.Chmod(dir, 0o755)
		builtPath = filepath.Join(dir, "nicctl")
		if out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", builtPath, ".").CombinedOutput(); err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	return builtPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtPath != "" {
		os.RemoveAll(filepath.Dir(builtPath))
	}
	os.Exit(code)
}

// fakeHugepages points hugepages.System at a fake sysfs with one NUMA node
// and no reserved page, and the free-memory probe at 1 GiB.
func fakeHugepages(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, dir := range []string{"kernel/mm/hugepages/" + hugepages.Size2M, "devices/system/node/node0/hugepages/" + hugepages.Size2M} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"nr_hugepages", "free_hugepages"} {
			if err := os.WriteFile(filepath.Join(root, dir, f), []byte("0\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	saved, savedMem := hugepages.System, memAvailable
	hugepages.System = hugepages.Sysfs{Root: root}
	memAvailable = func() (uint64, error) { return 1 << 30, nil }
	t.Cleanup(func() { hugepages.System, memAvailable = saved, savedMem })
	return root
}

// Every numeric flag out of its range is a usage error (exit 2) whose
// message names the flag and its range.
func TestNicctlFlagRanges(t *testing.T) {
	fakeHugepages(t)
	stack := []string{"--tap", badTAP, "--ip", "10.9.0.2/24"}
	for _, c := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"hugepages", "--reserve", "-5"}, []string{"--reserve -5", "0.."}},
		{[]string{"hugepages", "--reserve", "100000"}, []string{"--reserve 100000", "free memory"}},
		{[]string{"hugepages", "--reserve", "1", "--node", "-2"}, []string{"--node -2"}},
		{[]string{"hugepages", "--reserve", "1", "--node", "7"}, []string{"--node 7", "node 0"}},
		{[]string{"hugepages", "--node", "0"}, []string{"--node", "--reserve"}},
		{[]string{"demo", "--frames", "1000", "--drop", "1.5"}, []string{"--drop 1.5", "0..1"}},
		{[]string{"demo", "--frames", "1000", "--corrupt", "-0.1"}, []string{"--corrupt -0.1", "0..1"}},
		{[]string{"demo", "--frames", "1000", "--duplicate", "2"}, []string{"--duplicate 2", "0..1"}},
		{[]string{"demo", "--frames", "1000", "--reorder", "-1"}, []string{"--reorder -1", "0..1"}},
		{[]string{"demo", "--queues", "0"}, []string{"--queues 0", "1..16"}},
		{[]string{"demo", "--queues", "99"}, []string{"--queues 99", "1..16"}},
		{[]string{"demo", "--batch", "0"}, []string{"--batch 0", "1.."}},
		{[]string{"demo", "--size", "10"}, []string{"--size 10", "60..1514"}},
		{[]string{"demo", "--ring", "100"}, []string{"--ring 100", "power of two"}},
		{[]string{"demo", "--window", "-1"}, []string{"--window -1"}},
		{[]string{"demo", "--frames", "0"}, []string{"--frames 0"}},
		{[]string{"capture", "-w", "x.pcap", "--frames", "-1"}, []string{"--frames -1"}},
		{[]string{"capture", "-w", "x.pcap", "--size", "10"}, []string{"--size 10", "60..1514"}},
		{[]string{"capture", "-w", "x.pcap", "--dev", "sim", "--queues", "0"}, []string{"--queues 0", "1..16"}},
		{append([]string{"sim", "--duration", "-1s"}, stack...), []string{"--duration -1s"}},
		{append([]string{"ping", "-c", "-1"}, append(stack, "10.9.0.1")...), []string{"-c -1", "0:"}},
		{append([]string{"ping", "-s", "70000"}, append(stack, "10.9.0.1")...), []string{"-s 70000"}},
		{append([]string{"ping", "-W", "-1"}, append(stack, "10.9.0.1")...), []string{"-W -1"}},
		{[]string{"sim", "--tap", badTAP, "--ip", "10.9.0.2/24", "--host-ip", "10.9.0.2/24"}, []string{"--host-ip 10.9.0.2/24", "the stack's own"}},
		{[]string{"sim", "--tap", badTAP, "--ip", "10.9.0.2/24", "--host-ip", "10.9.1.1/24"}, []string{"--host-ip 10.9.1.1/24", "10.9.0.0/24"}},
		{[]string{"sim", "--tap", badTAP, "--ip", "10.9.0.0/24"}, []string{"--ip 10.9.0.0/24", "network address"}},
		{[]string{"sim", "--tap", badTAP, "--ip", "10.9.0.255/24"}, []string{"--ip 10.9.0.255/24", "broadcast"}},
		{[]string{"sim", "--tap", badTAP, "--ip", "10.9.0.2/24", "--gateway", "10.9.1.1"}, []string{"--gateway 10.9.1.1", "10.9.0.0/24"}},
	} {
		wantUsage(t, c.args, c.wants...)
	}
	// Nothing was written to the (fake) pools.
	pools, err := hugepages.System.Status()
	if err != nil || pools[0].Total != 0 || pools[1].Total != 0 {
		t.Errorf("the pools changed: %+v %v", pools, err)
	}
}

// bind refuses a PCI device that is not a network controller unless
// --force, and names the right fix when the IOMMU is off.
func TestNicctlBindRefusesNonNetwork(t *testing.T) {
	tr := pcitest.New(t, []pcitest.Dev{
		{Address: "0000:01:00.0", Vendor: 0x144d, Device: 0xa808, Class: 0x010802, Driver: "nvme", Group: 3, NUMANode: 0},
		{Address: "0000:03:00.0", Vendor: 0x8086, Device: 0x10fb, Class: 0x020000, Driver: "ixgbe", Group: -1, NUMANode: 0},
	}, nil)
	saved := pci.System
	pci.System = tr.Sysfs
	defer func() { pci.System = saved }()
	tr.Driver(pci.VFIODriver)

	code, _, errOut := runCaptured(t, "bind", "0000:01:00.0")
	if code != 1 || !strings.Contains(errOut, "not a network device") || !strings.Contains(errOut, "--force") {
		t.Errorf("bind of an NVMe disk: exit %d, %s", code, errOut)
	}
	if tr.Read("bus/pci/devices/0000:01:00.0/driver_override") != "(null)\n" {
		t.Errorf("bind of an NVMe disk touched driver_override")
	}
	// With --force it goes ahead (the fake kernel then does not move it).
	if _, _, errOut := runCaptured(t, "bind", "--force", "0000:01:00.0"); strings.Contains(errOut, "not a network device") {
		t.Errorf("bind --force still refuses: %s", errOut)
	}
	// No IOMMU: the fix is the kernel command line, not modprobe, whether
	// or not vfio-pci is loaded.
	for _, loaded := range []bool{true, false} {
		if !loaded {
			os.RemoveAll(filepath.Join(tr.Root, "bus/pci/drivers", pci.VFIODriver))
		}
		code, _, errOut = runCaptured(t, "bind", "0000:03:00.0")
		if code != 1 || !strings.Contains(errOut, "intel_iommu=on") || strings.Contains(errOut, "modprobe") {
			t.Errorf("bind without an IOMMU (vfio-pci loaded: %v): exit %d, %s", loaded, code, errOut)
		}
	}
}

// help COMMAND and COMMAND -h print the flags; exit codes are 0, 1 and 2.
func TestNicctlHelpAndExitCodes(t *testing.T) {
	for _, args := range [][]string{{"help", "demo"}, {"demo", "-h"}, {"demo", "--help"}} {
		code, out, _ := runCaptured(t, args...)
		if code != 0 || !strings.Contains(out, "-frames") || !strings.Contains(out, "-window") || !strings.Contains(out, "usage: nicctl demo") {
			t.Errorf("nicctl %s: exit %d:\n%s", strings.Join(args, " "), code, out)
		}
	}
	code, out, _ := runCaptured(t, "help", "demo")
	if !strings.Contains(out, "per frame") {
		t.Errorf("help demo does not say what a trace takes per frame:\n%s", out)
	}
	if code, out, _ = runCaptured(t, "help"); code != 0 || !strings.Contains(out, "version") {
		t.Errorf("nicctl help: exit %d\n%s", code, out)
	}
	wantUsage(t, []string{"help", "nosuch"}, `unknown command "nosuch"`)
	wantUsage(t, []string{"nosuch"}, `unknown command "nosuch"`)
	wantUsage(t, nil, "usage: nicctl COMMAND")
	code, _, errOut := runCaptured(t, "demo", "--bogus")
	if code != 2 || strings.Count(errOut, "flag provided but not defined") != 1 || !strings.Contains(errOut, "usage: nicctl demo") {
		t.Errorf("demo --bogus: exit %d\n%s", code, errOut)
	}
	wantUsage(t, []string{"ping", "10.0.0.1"}, "--tap", "--dev")
	wantUsage(t, []string{"ping", "-s", "-3", "--tap", badTAP, "--ip", "10.9.0.2/24", "10.0.0.1"}, "-s -3")
	if code, _, _ := runCaptured(t, "verify", filepath.Join(t.TempDir(), "missing.ndjson")); code != 1 {
		t.Errorf("verify of a missing file: exit %d, want 1", code)
	}
}

func TestNicctlVersion(t *testing.T) {
	code, out, _ := runCaptured(t, "version")
	if code != 0 || !strings.Contains(out, "github.com/verinic/verinic") || !strings.Contains(out, "go1.") {
		t.Fatalf("nicctl version: exit %d\n%s", code, out)
	}
	// A built binary carries its VCS revision.
	b, err := exec.Command(builtNicctl(t), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("no git: %v", err)
	}
	if !regexp.MustCompile(`revision [0-9a-f]{40} \(git `).Match(b) {
		t.Errorf("the built nicctl does not say its revision (HEAD %s):\n%s", head, b)
	}
}

// Messages: no package prefix twice, no wrong hint, a pcap recognised.
func TestNicctlMessages(t *testing.T) {
	dir := t.TempDir()
	pc := filepath.Join(dir, "x.pcap")
	if code, _, errOut := runCaptured(t, "capture", "-w", pc, "--frames", "10"); code != 0 {
		t.Fatalf("capture: %d %s", code, errOut)
	}
	code, _, errOut := runCaptured(t, "verify", pc)
	if code != 1 || !strings.Contains(errOut, "pcap") || strings.Count(errOut, "trace:") > 1 {
		t.Errorf("verify of a pcap: exit %d: %s", code, errOut)
	}
	for _, args := range [][]string{
		{"verify", filepath.Join(dir, "missing.ndjson")},
		{"demo", "--frames", "1000", "--quiet", "--trace", filepath.Join(dir, "no", "such", "dir", "t.ndjson")},
	} {
		_, _, errOut := runCaptured(t, args...)
		if strings.Count(errOut, "trace:") > 1 {
			t.Errorf("nicctl %s stutters: %s", strings.Join(args, " "), errOut)
		}
	}
	os.WriteFile(filepath.Join(dir, "j.ndjson"), []byte("{}\n"), 0o644)
	if _, _, errOut := runCaptured(t, "verify", filepath.Join(dir, "j.ndjson")); strings.Count(errOut, "trace:") > 1 {
		t.Errorf("verify of a foreign NDJSON file stutters: %s", errOut)
	}

	// The demo needs no hugepages and says nothing about them.
	bin := builtNicctl(t)
	cmd := exec.Command(bin, "demo", "--frames", "1000", "--quiet")
	cmd.Dir = dir
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo: %v\n%s%s", err, so.String(), se.String())
	}
	if se.Len() != 0 || !strings.HasPrefix(so.String(), "simA") {
		t.Errorf("demo's first words are not about the NICs:\nstderr: %s\nstdout: %s", se.String(), so.String())
	}

	// Permission denied on /dev/net/tun is not a missing module.
	st, err := os.Stat("/dev/net/tun")
	if err != nil || os.Geteuid() != 0 || st.Mode().Perm()&0o006 == 0o006 {
		t.Skip("needs root and a /dev/net/tun that others cannot open, to run sim as nobody")
	}
	cmd = exec.Command(bin, "sim", "--tap", "vnperm0", "--ip", "10.9.0.2/24", "--duration", "1s")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	b, err := cmd.CombinedOutput()
	if err == nil || strings.Contains(string(b), "tun module") || !strings.Contains(string(b), "permission denied") || !strings.Contains(string(b), "root") {
		t.Errorf("sim as nobody: %v\n%s", err, b)
	}
}

// ping takes iputils' -i 0.2 and -W 1 (seconds) and host names.
func TestNicctlPingArguments(t *testing.T) {
	code, _, errOut := runCaptured(t, "ping", "-c", "1", "-i", "0.2", "-W", "1", "--tap", badTAP, "--ip", "10.9.0.2/24", "localhost")
	if code != 1 || !strings.Contains(errOut, "TAP") {
		t.Errorf("ping -i 0.2 -W 1 localhost: exit %d (want 1: the TAP name): %s", code, errOut)
	}
	if a, err := resolvePingTarget("localhost"); err != nil || a.String() != "127.0.0.1" {
		t.Errorf("localhost resolves to %v, %v", a, err)
	}
	if _, err := resolvePingTarget("no-such-host.invalid"); err == nil || !strings.Contains(err.Error(), "no-such-host.invalid") {
		t.Errorf("an unknown host: %v", err)
	}
	wantUsage(t, []string{"ping", "-i", "0", "--tap", badTAP, "--ip", "10.9.0.2/24", "10.0.0.1"}, "-i 0")
}

// demo, verify, hugepages, open and devices speak JSON with --json.
func TestNicctlJSON(t *testing.T) {
	dir := t.TempDir()
	tf := filepath.Join(dir, "t.ndjson")
	code, out, errOut := runCaptured(t, "demo", "--frames", "2000", "--queues", "2", "--json", "--trace", tf)
	var d struct {
		Sent, Received uint64
		Agree          bool
		Checks         []struct {
			What string
			OK   bool
		}
		Trace struct{ File string }
	}
	if err := json.Unmarshal([]byte(out), &d); code != 0 || err != nil || d.Sent != 2000 || !d.Agree || len(d.Checks) < 5 || d.Trace.File != tf {
		t.Fatalf("demo --json: exit %d, %v, %+v\n%s\n%s", code, err, d, out, errOut)
	}
	code, out, errOut = runCaptured(t, "verify", "--json", tf)
	var v struct {
		OK     bool
		Events int
		Checks []struct{ Name, Result string }
	}
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || !v.OK || v.Events == 0 || len(v.Checks) < 3 || v.Checks[0].Result != "held" {
		t.Fatalf("verify --json: exit %d, %v, %+v\n%s\n%s", code, err, v, out, errOut)
	}

	fakeHugepages(t)
	code, out, _ = runCaptured(t, "hugepages", "--json")
	var h struct {
		Pools []struct{ Node, Total, Free, MiB int }
	}
	if err := json.Unmarshal([]byte(out), &h); code != 0 || err != nil || len(h.Pools) != 2 || h.Pools[1].Node != 0 {
		t.Errorf("hugepages --json: exit %d, %v\n%s", code, err, out)
	}

	code, out, _ = runCaptured(t, "open", "--json", "sim")
	var o struct {
		Name      string
		Simulated bool
	}
	if err := json.Unmarshal([]byte(out), &o); code != 0 || err != nil || !o.Simulated || o.Name != "sim" {
		t.Errorf("open --json sim: exit %d, %v\n%s", code, err, out)
	}

	tr := pcitest.New(t, []pcitest.Dev{{Address: "0000:03:00.0", Vendor: 0x8086, Device: 0x10fb, Class: 0x020000, Driver: "ixgbe", Group: 4, NUMANode: 0}}, nil)
	saved := pci.System
	pci.System = tr.Sysfs
	defer func() { pci.System = saved }()
	code, out, _ = runCaptured(t, "devices", "--json")
	var devs []map[string]any
	if err := json.Unmarshal([]byte(out), &devs); code != 0 || err != nil || len(devs) != 1 || devs[0]["vendor"] != "0x8086" || devs[0]["device"] != "0x10fb" || devs[0]["class"] != "0x020000" {
		t.Errorf("devices --json: exit %d, %v\n%s", code, err, out)
	}
}

// capture -w - writes the pcap to standard output and its messages to
// standard error; --max-size bounds the file; a --frames that cannot fit
// the timeout is refused at once.
func TestNicctlCaptureOutputs(t *testing.T) {
	code, out, errOut := runCaptured(t, "capture", "-w", "-", "--frames", "50")
	if code != 0 {
		t.Fatalf("capture -w -: exit %d: %s", code, errOut)
	}
	r, err := pcap.NewReader(strings.NewReader(out))
	if err != nil {
		t.Fatalf("capture -w - did not write a pcap to stdout: %v (stderr %s)", err, errOut)
	}
	n := 0
	for {
		if _, err := r.Next(); err != nil {
			break
		}
		n++
	}
	if n != 50 || !strings.Contains(errOut, "50 frames") {
		t.Errorf("capture -w -: %d frames in the pcap; stderr %s", n, errOut)
	}
	if _, err := os.Stat("-"); err == nil {
		os.Remove("-")
		t.Errorf("capture -w - created a file named -")
	}

	path := filepath.Join(t.TempDir(), "lim.pcap")
	code, out, errOut = runCaptured(t, "capture", "-w", path, "--frames", "1000", "--size", "1000", "--max-size", "100000")
	st, err := os.Stat(path)
	if code != 0 || err != nil || st.Size() > 100000 || st.Size() < 90000 || !strings.Contains(out, "--max-size") {
		t.Errorf("capture --max-size 100000: exit %d, %v, file %v\n%s%s", code, err, st, out, errOut)
	}

	start := time.Now()
	wantUsage(t, []string{"capture", "-w", filepath.Join(t.TempDir(), "x.pcap"), "--frames", "100000000", "--timeout", "3s"}, "--frames 100000000", "--timeout 3s")
	if time.Since(start) > 2*time.Second {
		t.Errorf("the impossible --frames was refused only after %v", time.Since(start))
	}

	code, out, _ = runCaptured(t, "capture", "-w", filepath.Join(t.TempDir(), "d.pcap"), "--dev", "sim", "--duration", "1500ms", "--frames", "0")
	if code != 0 || !strings.Contains(out, "1.0s") {
		t.Errorf("capture --dev sim: no progress line: exit %d\n%s", code, out)
	}
}

// demo --trace checks its file and the recorder's size before it runs.
func TestNicctlDemoTraceChecks(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCaptured(t, "demo", "--frames", "20000", "--trace", filepath.Join(dir, "no", "t.ndjson"))
	if code == 0 || strings.Contains(out, "sent") || !strings.Contains(errOut, filepath.Join(dir, "no")) {
		t.Errorf("demo --trace into a missing directory: exit %d\n%s%s", code, out, errOut)
	}
	tf := filepath.Join(dir, "t.ndjson")
	wantUsage(t, []string{"demo", "--frames", "20000", "--trace-events", "1000", "--trace", tf}, "--trace-events 1000", "--frames 20000")
	if _, err := os.Stat(tf); err == nil {
		t.Errorf("a trace that cannot fit was written")
	}
}

// startNicctl starts the built nicctl through sh, as `nicctl ... &` in a
// script (so that SIGINT starts out ignored, as for any background job),
// and returns its pid, a reader of its output and a channel with its exit
// status.
func startNicctl(t *testing.T, background bool, args ...string) (pid int, lines *bufio.Scanner, exit chan int, dir string) {
	t.Helper()
	bin := builtNicctl(t)
	dir = t.TempDir()
	var cmd *exec.Cmd
	if background {
		cmd = exec.Command("sh", append([]string{"-c", `"$0" "$@" & echo $!; wait $!`, bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	cmd.Dir = dir
	cmd.Stderr = cmd.Stdout
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exit = make(chan int, 1)
	go func() {
		cmd.Wait()
		pw.Close()
		exit <- cmd.ProcessState.ExitCode()
	}()
	lines = bufio.NewScanner(pr)
	pid = cmd.Process.Pid
	if background {
		if !lines.Scan() {
			t.Fatal("no pid from sh")
		}
		var err error
		if pid, err = atoi(lines.Text()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		if background {
			syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	return pid, lines, exit, dir
}

func atoi(s string) (int, error) { return strconv.Atoi(strings.TrimSpace(s)) }

// stopAfter waits for a line starting with prefix, sends sig to pid, and
// returns everything printed after it and the exit status.
func stopAfter(t *testing.T, pid int, lines *bufio.Scanner, exit chan int, prefix string, sig syscall.Signal) (string, int) {
	t.Helper()
	seen := false
	var rest strings.Builder
	textc := make(chan struct{})
	go func() {
		defer close(textc)
		for lines.Scan() {
			l := lines.Text()
			if !seen && strings.HasPrefix(strings.TrimSpace(l), prefix) {
				seen = true
				time.Sleep(300 * time.Millisecond)
				syscall.Kill(pid, sig)
				continue
			}
			if seen {
				rest.WriteString(l + "\n")
			}
		}
	}()
	select {
	case code := <-exit:
		<-textc
		if !seen {
			t.Fatalf("exited %d before printing %q", code, prefix)
		}
		return rest.String(), code
	case <-time.After(20 * time.Second):
		t.Fatalf("still running 20 s after the line %q (seen %v) and %v", prefix, seen, sig)
	}
	return "", 0
}

// A demo, in the background or not, stops on SIGINT or SIGTERM with its
// summary; a capture stops with a complete pcap.
func TestNicctlSignals(t *testing.T) {
	pid, lines, exit, _ := startNicctl(t, true, "demo", "--frames", "1000000000", "--quiet")
	rest, code := stopAfter(t, pid, lines, exit, "simB", syscall.SIGINT)
	if code != 130 || !strings.Contains(rest, "interrupted") || !strings.Contains(rest, "sent ") || !strings.Contains(rest, "counts agree") {
		t.Errorf("background demo after SIGINT: exit %d\n%s", code, rest)
	}

	pid, lines, exit, _ = startNicctl(t, false, "demo", "--frames", "1000000000", "--quiet")
	rest, code = stopAfter(t, pid, lines, exit, "simB", syscall.SIGTERM)
	if code != 143 || !strings.Contains(rest, "interrupted") || !strings.Contains(rest, "counts agree") {
		t.Errorf("demo after SIGTERM: exit %d\n%s", code, rest)
	}

	pid, lines, exit, dir := startNicctl(t, false, "capture", "-w", "c.pcap", "--frames", "10000000", "--timeout", "10m")
	rest, code = stopAfter(t, pid, lines, exit, "1.0s", syscall.SIGINT)
	if code != 130 || !strings.Contains(rest, "interrupted") {
		t.Errorf("capture after SIGINT: exit %d\n%s", code, rest)
	}
	f, err := os.Open(filepath.Join(dir, "c.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcap.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the interrupted capture is damaged after %d frames: %v", n, err)
		}
		n++
	}
	if n == 0 || !strings.Contains(rest, strconv.Itoa(n)+" frames") {
		t.Errorf("the capture holds %d frames; the summary says\n%s", n, rest)
	}
}

// sim --stats --json prints a JSON object a second and the totals.
func TestNicctlSimStatsJSON(t *testing.T) {
	ns := linuxNetns(t)
	var out bytes.Buffer
	err := ns.Do(func() error {
		return runSim([]string{"--tap", "njson0", "--ip", "10.9.76.2/24", "--host-ip", "10.9.76.1/24", "--stats", "--json", "--duration", "2500ms"}, &out)
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("sim --stats --json printed %d lines:\n%s", len(lines), out.String())
	}
	for i, l := range lines {
		var v struct {
			Time     string
			Counters map[string]uint64
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil || v.Counters == nil {
			t.Fatalf("line %d is not a counters object (%v): %s", i+1, err, l)
		}
		if i == len(lines)-1 && v.Time != "total" {
			t.Errorf("the last line is not the total: %s", l)
		}
	}
}

// iputils' -i 0.2 and -W 1 against Linux.
func TestNicctlPingIputilsFlags(t *testing.T) {
	ns := linuxNetns(t)
	err := ns.Do(func() error {
		return runPing([]string{"-c", "2", "-i", "0.2", "-W", "1", "--tap", "nping3", "--ip", "10.9.75.2/24", "--host-ip", "10.9.75.1/24", "10.9.75.1"})
	})
	if err != nil {
		t.Fatalf("nicctl ping -i 0.2 -W 1: %v", err)
	}
}
