package guest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readCPIO parses a newc archive (the inverse of WriteCPIO) for the test.
func readCPIO(t *testing.T, b []byte) map[string]Entry {
	t.Helper()
	out := map[string]Entry{}
	var order []string
	for off := 0; ; {
		if off+110 > len(b) || string(b[off:off+6]) != "070701" {
			t.Fatalf("bad header at %d", off)
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(v)
		}
		mode, size, major, minor, namesize := field(1), field(6), field(9), field(10), field(11)
		name := string(b[off+110 : off+110+namesize-1])
		off += (110 + namesize + 3) &^ 3
		data := b[off : off+size]
		off += (size + 3) &^ 3
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Errorf("%d bytes after the trailer", len(b)-off)
			}
			break
		}
		for _, p := range order {
			if strings.HasPrefix(name, p+"/") && out[p].Mode&0o170000 != TypeDir {
				t.Errorf("%s inside non-directory %s", name, p)
			}
		}
		if d := filepath.Dir(name); d != "." {
			if _, ok := out[d]; !ok {
				t.Errorf("%s comes before its directory %s", name, d)
			}
		}
		order = append(order, name)
		out[name] = Entry{Path: name, Mode: uint32(mode), Data: append([]byte(nil), data...), Major: uint32(major), Minor: uint32(minor)}
	}
	return out
}

func TestWriteCPIO(t *testing.T) {
	src := filepath.Join(t.TempDir(), "big")
	big := bytes.Repeat([]byte("0123456789"), 1001) // not a multiple of 4
	if err := os.WriteFile(src, big, 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err := WriteCPIO(&buf, []Entry{
		{Path: "/init", Mode: TypeRegular | 0o755, Data: []byte("#!/bin/sh\n")},
		{Path: "lib/modules/a/b.ko", Mode: TypeRegular | 0o644, Source: src},
		{Path: "dev/console", Mode: TypeCharDev | 0o600, Major: 5, Minor: 1},
		{Path: "bin/sh", Mode: TypeSymlink | 0o777, Data: []byte("busybox")},
		{Path: "lib", Mode: TypeDir | 0o755}, // already added as a parent
	})
	if err != nil {
		t.Fatal(err)
	}
	got := readCPIO(t, buf.Bytes())
	if e := got["init"]; string(e.Data) != "#!/bin/sh\n" || e.Mode != TypeRegular|0o755 {
		t.Errorf("init: %+v", e)
	}
	if e := got["lib/modules/a/b.ko"]; !bytes.Equal(e.Data, big) {
		t.Errorf("streamed file: %d bytes, want %d", len(e.Data), len(big))
	}
	if e := got["dev/console"]; e.Major != 5 || e.Minor != 1 || e.Mode&0o170000 != TypeCharDev {
		t.Errorf("console: %+v", e)
	}
	if e := got["bin/sh"]; string(e.Data) != "busybox" || e.Mode&0o170000 != TypeSymlink {
		t.Errorf("symlink: %+v", e)
	}
	for _, d := range []string{"lib", "lib/modules", "lib/modules/a", "dev", "bin"} {
		if e, ok := got[d]; !ok || e.Mode&0o170000 != TypeDir {
			t.Errorf("directory %s missing", d)
		}
	}
	if len(got) != 9 {
		t.Errorf("%d entries, want 9 (no duplicate directories)", len(got))
	}
	if err := WriteCPIO(&buf, []Entry{{Path: "x", Mode: TypeRegular, Source: "/nonexistent/file"}}); err == nil {
		t.Error("a missing source file was not reported")
	}
}

func TestInitScriptAndResults(t *testing.T) {
	progs := []Program{{Name: "vfio", Path: "/tmp/x/vfio.test", Args: []string{"-test.run", "^TestInGuest|Facts$"}, Pre: "echo 8 > /proc/sys/vm/nr_hugepages"}}
	s := initScript(Config{Programs: progs, Setup: "echo setup"})
	for _, w := range []string{"insmod /lib/modules/$m.ko", "mount -t devtmpfs", "echo setup", "echo 8 > /proc/sys/vm/nr_hugepages",
		"/bin/vfio.test '-test.run' '^TestInGuest|Facts$'", SentinelResult + " vfio $?", "poweroff -f", NICEnv + "=$NIC"} {
		if !strings.Contains(s, w) {
			t.Errorf("init script lacks %q:\n%s", w, s)
		}
	}
	res := &Result{Exit: map[string]int{}}
	for _, l := range []string{"noise", SentinelBooted, "[  3.1] x " + SentinelError + " insmod e1000e failed", SentinelResult + " vfio 1", SentinelResult + " dma 0", SentinelResult + " bad", SentinelDone} {
		parseLine(res, l)
	}
	if !res.Booted || !res.Done || res.Exit["vfio"] != 1 || res.Exit["dma"] != 0 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "e1000e") {
		t.Errorf("parsed %+v", res)
	}
	bad := res.Failed(append(progs, Program{Name: "dma"}, Program{Name: "nicctl"}))
	if strings.Join(bad, ",") != "vfio (exit 1),nicctl (no result)" {
		t.Errorf("failed programs %v", bad)
	}
	if shellQuote("it's") != `'it'\''s'` {
		t.Errorf("shellQuote: %s", shellQuote("it's"))
	}
}

func TestQEMUArgsPlaceTheIOMMUFirst(t *testing.T) {
	args := strings.Join(QEMUArgs(Config{Parts: &Parts{Vmlinux: "/k"}}, "/i"), " ")
	iommu := strings.Index(args, "intel-iommu")
	if iommu < 0 || strings.Index(args, "e1000e") < iommu || strings.Index(args, "pcie-root-port") < iommu {
		t.Errorf("the IOMMU must come before every PCI device: %s", args)
	}
	for _, w := range []string{"-machine q35", "-accel tcg", "intel_iommu=on", "no_timer_check", "console=ttyS0", "-no-reboot", "-kernel /k", "-initrd /i"} {
		if !strings.Contains(args, w) {
			t.Errorf("QEMU arguments lack %q", w)
		}
	}
	// The NICs may only be wired to each other inside QEMU (a hub): no
	// backend that reaches a network outside the process.
	a := QEMUArgs(Config{Parts: &Parts{Vmlinux: "/k"}}, "/i")
	for i, arg := range a {
		if (arg == "-netdev" && !strings.HasPrefix(a[i+1], "hubport,")) || arg == "-nic" || arg == "-net" {
			t.Errorf("network backend %s %s reaches outside QEMU", arg, a[i+1])
		}
	}
}

func TestIGBMachine(t *testing.T) {
	a := QEMUArgs(Config{Machine: MachineIGB, Parts: &Parts{Vmlinux: "/k"}}, "/i")
	args := strings.Join(a, " ")
	if strings.Count(args, "-device igb,") != 2 || strings.Contains(args, "e1000e") {
		t.Errorf("the igb machine wants two igb NICs and no e1000e: %s", args)
	}
	iommu := strings.Index(args, "intel-iommu,intremap=on,aw-bits=48")
	if iommu < 0 || strings.Index(args, "igb,") < iommu || strings.Index(args, "pcie-root-port") < iommu {
		t.Errorf("the 48-bit IOMMU must come before every PCI device: %s", args)
	}
	// Each igb behind its own root port (its own IOMMU group), both on hub 0.
	for _, w := range []string{"igb,bus=rp0,netdev=hp0", "igb,bus=rp1,netdev=hp1", "pcie-root-port,id=rp0", "pcie-root-port,id=rp1",
		"hubport,id=hp0,hubid=0", "hubport,id=hp1,hubid=0", "intel_iommu=on", "-machine q35"} {
		if !strings.Contains(args, w) {
			t.Errorf("igb machine arguments lack %q: %s", w, args)
		}
	}
	for i, arg := range a {
		if (arg == "-netdev" && !strings.HasPrefix(a[i+1], "hubport,")) || arg == "-nic" || arg == "-net" {
			t.Errorf("network backend %s %s reaches outside QEMU", arg, a[i+1])
		}
	}
	if e := strings.Join(QEMUArgs(Config{Parts: &Parts{Vmlinux: "/k"}}, "/i"), " "); !strings.Contains(e, "aw-bits=39") || strings.Contains(e, "igb") {
		t.Errorf("the e1000e machine keeps its 39-bit IOMMU and no igb: %s", e)
	}
	s := initScript(Config{Machine: MachineIGB})
	for _, w := range []string{IGBVendorDevice, IGBNICsEnv + `="$(echo $NICS)"`, IOMMUBitsEnv + "=48", "no igb found"} {
		if !strings.Contains(s, w) {
			t.Errorf("igb init script lacks %q:\n%s", w, s)
		}
	}
	if strings.Contains(s, NICEnv+"=") || strings.Contains(s, E1000eVendorDevice) {
		t.Errorf("the igb init script sets the e1000e variables, so the e1000e tests would run against an igb:\n%s", s)
	}
	if s := initScript(Config{}); !strings.Contains(s, IOMMUBitsEnv+"=39") || strings.Contains(s, IGBNICsEnv) {
		t.Errorf("e1000e init script:\n%s", s)
	}
}

func TestParseQEMUVersion(t *testing.T) {
	for in, want := range map[string][2]int{
		"QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright": {10, 0},
		"QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n":               {7, 2},
		"QEMU emulator version 8.1.0\n":                                                  {8, 1},
	} {
		if got, err := parseQEMUVersion(in); err != nil || got != want {
			t.Errorf("parseQEMUVersion(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "qemu 10", "QEMU emulator version x.y", "QEMU emulator version 10\n"} {
		if v, err := parseQEMUVersion(in); err == nil {
			t.Errorf("parseQEMUVersion(%q) = %v, want an error", in, v)
		}
	}
}

func TestQEMUExtraComesBeforeTheKernel(t *testing.T) {
	for _, m := range []Machine{MachineE1000e, MachineIGB} {
		a := QEMUArgs(Config{Machine: m, Parts: &Parts{Vmlinux: "/k"}, QEMUExtra: []string{"-trace", "events=/e,file=/f"}}, "/i")
		args := strings.Join(a, " ")
		extra, kernel := strings.Index(args, "-trace events=/e,file=/f"), strings.Index(args, "-kernel /k")
		if extra < 0 || kernel < extra || !strings.HasSuffix(args, "quiet loglevel=3") {
			t.Errorf("%v: extra arguments misplaced: %s", m, args)
		}
	}
}

func TestOutputsAndWaitInInitScriptAndArgs(t *testing.T) {
	cfg := Config{Machine: MachineIGB, Parts: &Parts{Vmlinux: "/k"}, Outputs: "/host/out", Programs: []Program{{Name: "p", Path: "/x/p"}}}
	s := initScript(cfg)
	for _, w := range []string{OutDirEnv + "=/out", TraceDirEnv + "=/out/traces", "mkdir -p /out/traces", "tar -c -f /dev/vda -C /out .", "sync", "vn_wait()", SentinelWait} {
		if !strings.Contains(s, w) {
			t.Errorf("init script with outputs lacks %q:\n%s", w, s)
		}
	}
	// The archive is written after the last program, before the done sentinel.
	if p, a, d := strings.Index(s, "/bin/p"), strings.Index(s, "tar -c"), strings.Index(s, "echo "+SentinelDone); !(p < a && a < d) {
		t.Errorf("archive step misplaced (program %d, tar %d, done %d):\n%s", p, a, d, s)
	}
	if s := initScript(Config{}); strings.Contains(s, OutDirEnv) || strings.Contains(s, "/dev/vda") {
		t.Errorf("init script without outputs archives:\n%s", s)
	}
	args := strings.Join(QEMUArgs(cfg, "/w/initramfs.cpio"), " ")
	disk := strings.Index(args, "-drive file=/w/outputs.img,format=raw,if=none,id=vnout -device virtio-blk-pci,drive=vnout")
	if disk < 0 || disk < strings.LastIndex(args, "-device igb,") || disk > strings.Index(args, "-kernel") {
		t.Errorf("output disk missing or not after the NICs: %s", args)
	}
	if a := strings.Join(QEMUArgs(Config{Parts: &Parts{Vmlinux: "/k"}, Outputs: "/o"}, "/w/i"), " "); !strings.Contains(a, "virtio-blk-pci") {
		t.Errorf("e1000e machine without the output disk: %s", a)
	}
	if a := strings.Join(QEMUArgs(Config{Machine: MachineIGB, Parts: &Parts{Vmlinux: "/k"}}, "/w/i"), " "); strings.Contains(a, "virtio") {
		t.Errorf("an output disk without Outputs: %s", a)
	}
}

func TestTAPPeerArgs(t *testing.T) {
	a := QEMUArgs(Config{Machine: MachineIGB, Parts: &Parts{Vmlinux: "/k"}, TAP: &TAPPeer{Netns: "ns", Ifname: "vtap0"}}, "/i")
	var netdevs []string
	for i, arg := range a {
		if arg == "-netdev" {
			netdevs = append(netdevs, a[i+1])
		}
	}
	want := []string{"hubport,id=hp0,hubid=0", "tap,id=hp1,ifname=vtap0,script=no,downscript=no,vnet_hdr=off"}
	if strings.Join(netdevs, " ") != strings.Join(want, " ") {
		t.Errorf("netdevs %q, want %q: the second igb on the TAP device, no helper scripts", netdevs, want)
	}
	if _, err := Run(context.Background(), Config{Parts: &Parts{Vmlinux: "/k"}, TAP: &TAPPeer{Netns: "ns", Ifname: "t"}, WorkDir: t.TempDir()}); err == nil {
		t.Error("a TAP peer on the e1000e machine was accepted")
	}
}

func TestParseWait(t *testing.T) {
	res := &Result{Exit: map[string]int{}}
	for _, l := range []string{"[ 1.2] " + SentinelWait + " peer", SentinelWait, SentinelWait + " a b"} {
		parseLine(res, l)
	}
	if strings.Join(res.Waits, ",") != "peer" {
		t.Errorf("waits %q, want [peer]", res.Waits)
	}
	if err := WaitForHost("two words", time.Second); err == nil {
		t.Error("a wait name with a space was accepted")
	}
}

// writeImage writes a tar of entries at the start of a zeroed image, as the
// guest's init does on its output disk.
func writeImage(t *testing.T, hdrs []*tar.Header, bodies [][]byte) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "outputs.img")
	if err := createOutputImage(img, 1); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if hdrs != nil {
		tw := tar.NewWriter(f)
		for i, h := range hdrs {
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if bodies[i] != nil {
				if _, err := tw.Write(bodies[i]); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestUnpackOutputs(t *testing.T) {
	big := bytes.Repeat([]byte("verinic\n"), 40000)
	img := writeImage(t, []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./traces/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./traces/demo.ndjson", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(big))},
		{Name: "./empty", Typeflag: tar.TypeReg, Mode: 0o644},
	}, [][]byte{nil, nil, big, nil})
	dir := filepath.Join(t.TempDir(), "out")
	files, err := unpackOutputs(img, dir)
	if err != nil || strings.Join(files, ",") != "traces/demo.ndjson,empty" {
		t.Fatalf("unpacked %q, %v", files, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "traces/demo.ndjson")); err != nil || !bytes.Equal(b, big) {
		t.Errorf("trace file: %d bytes, %v; want %d", len(b), err, len(big))
	}
	// A disk the guest never wrote.
	if _, err := unpackOutputs(writeImage(t, nil, nil), t.TempDir()); err == nil || !strings.Contains(err.Error(), "no archive") {
		t.Errorf("blank disk: %v", err)
	}
	// Entries that would leave the directory, or are not plain files.
	for _, h := range []*tar.Header{
		{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "/etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "./link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
	} {
		dir := t.TempDir()
		if _, err := unpackOutputs(writeImage(t, []*tar.Header{h}, [][]byte{nil}), filepath.Join(dir, "out")); err == nil {
			t.Errorf("entry %q (type %q) was taken", h.Name, h.Typeflag)
		}
		if _, err := os.Stat(filepath.Join(dir, "escape")); err == nil {
			t.Errorf("entry %q was written outside the output directory", h.Name)
		}
	}
	// A truncated archive (the disk was too small) is an error, not a short file.
	trunc := writeImage(t, []*tar.Header{{Name: "./f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 21}}, [][]byte{make([]byte, 1<<21)})
	if err := os.Truncate(trunc, 1<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := unpackOutputs(trunc, t.TempDir()); err == nil {
		t.Error("an archive cut short by the end of the disk was accepted")
	}
}

func TestQEMUTraceWindows(t *testing.T) {
	for in, want := range map[string]struct {
		on     bool
		window string
		ok     bool
	}{
		"qemutrace-on:rx": {true, "rx", true}, "qemutrace-off:rx": {false, "rx", true},
		"qemutrace-on:": {}, "qemutrace-on:../x": {}, "qemutrace-on:a,b": {}, "first": {},
	} {
		on, w, ok := qemuTraceWait(in)
		if on != want.on || w != want.window || ok != want.ok {
			t.Errorf("qemuTraceWait(%q) = %v %q %v, want %+v", in, on, w, ok, want)
		}
	}
	cfg := Config{Machine: MachineIGB, Parts: &Parts{Vmlinux: "/k"}, QEMUTrace: []string{"igb_*"}}
	args := strings.Join(QEMUArgs(cfg, "/w/i"), " ")
	if !strings.Contains(args, "-qmp unix:/w/qmp.sock,server=on,wait=off -D /w/qemu.log") {
		t.Errorf("QEMU trace windows without the QMP socket or log: %s", args)
	}
	if !strings.Contains(initScript(cfg), QEMUTraceEnv+"=1") {
		t.Error("the guest is not told that QEMU trace windows are on")
	}
	if strings.Contains(strings.Join(QEMUArgs(Config{Parts: &Parts{Vmlinux: "/k"}}, "/w/i"), " "), "-qmp") {
		t.Error("a QMP socket without QEMU trace windows")
	}
	t.Setenv(QEMUTraceEnv, "")
	if err := QEMUTraceOn("x"); !errors.Is(err, ErrNoQEMUTrace) {
		t.Errorf("QEMUTraceOn outside a tracing guest: %v", err)
	}
}
