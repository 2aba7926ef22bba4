// Package guest boots a small Linux guest under QEMU to test VFIO against the
// real kernel (docs/vfio.md, "Tests against the real kernel"): a q35
// machine with an emulated Intel IOMMU and emulated Intel NICs (e1000e,
// 8086:10d3, by default; or two igb, 8086:10c9, see MachineIGB), Debian's
// 6.1 kernel booted as an ELF vmlinux through PVH, and an initramfs
// of busybox, the VFIO modules and the project's statically built test
// binaries. The guest's init runs the programs it is given and reports each
// one's exit status on the serial console; Run reads them back.
//
// The kernel parts are prepared by .ci/guest-deps.sh into a cache outside the
// repository (CacheDir).
//
// Beyond the console: Config.Outputs brings files the guest's programs leave
// (ring traces) out through a raw virtio-blk disk; Config.Wait lets a guest
// program stop until the host has acted (WaitForHost); Config.QEMUTrace
// records QEMU's own trace events in windows the guest opens and closes
// (QEMUTraceOn/Off); Config.TAP wires the igb machine's second NIC to a TAP
// device in a network namespace, with the host's Linux as its peer.
package guest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sentinels on the guest's serial console.
const (
	SentinelBooted = "VERINIC-GUEST-BOOTED"
	SentinelResult = "VERINIC-RESULT" // VERINIC-RESULT <name> <exit status>
	SentinelDone   = "VERINIC-GUEST-DONE"
	SentinelError  = "VERINIC-GUEST-ERROR"
)

// NICEnv is the environment variable through which the guest's programs
// learn the PCI address of the first e1000e, which sits alone in its IOMMU
// group behind a PCIe root port; NICsEnv lists all four in address order
// (see QEMUArgs for the topology).
const (
	NICEnv  = "VERINIC_GUEST_NIC"
	NICsEnv = "VERINIC_GUEST_NICS"
)

// E1000eVendorDevice is the NIC QEMU emulates for the default guest.
const E1000eVendorDevice = "0x8086:0x10d3"

// IGBVendorDevice is QEMU's igb, the Intel 82576 (QEMU 8.0 and later), which
// the MachineIGB guest has two of.
const IGBVendorDevice = "0x8086:0x10c9"

// Environment variables of the MachineIGB guest: IGBNICsEnv lists its two
// igb NICs in PCI address order (each alone in its IOMMU group behind its own
// PCIe root port, wired to each other through a QEMU hub). The e1000e
// variables (NICEnv, NICsEnv) are not set there, so the e1000e tests skip.
// IOMMUBitsEnv is set in every guest to the emulated IOMMU's address width.
const (
	IGBNICsEnv   = "VERINIC_GUEST_IGB_NICS"
	IOMMUBitsEnv = "VERINIC_GUEST_IOMMU_BITS"
)

// Files out of the guest (Config.Outputs): the guest's programs leave files
// under the directory named by OutDirEnv (/out), ring traces under the one
// named by TraceDirEnv (/out/traces); after the last program the guest's init
// archives /out (an uncompressed tar) onto a raw virtio-blk disk, and Run
// unpacks it into Config.Outputs on the host. Neither is set when
// Config.Outputs is empty.
const (
	OutDirEnv   = "VERINIC_GUEST_OUT"
	TraceDirEnv = "VERINIC_GUEST_TRACE_DIR"
	guestOutDir = "/out"
	// TraceDir is $VERINIC_GUEST_TRACE_DIR, for arguments of guest programs
	// (which the init quotes, so variables in them are not expanded).
	TraceDir = guestOutDir + "/traces"
)

// SentinelWait is how a guest program asks the host to act while it waits
// (Config.Wait, WaitForHost): "VERINIC-GUEST-WAIT <name>" on the console;
// the guest then reads a line from the serial port, which Run writes once
// the host's hook has returned.
const SentinelWait = "VERINIC-GUEST-WAIT"

// Machine selects the guest's NICs.
type Machine int

const (
	// MachineE1000e (the default) has four e1000es in three IOMMU groups
	// (see QEMUArgs) and an IOMMU with a 39-bit address width.
	MachineE1000e Machine = iota
	// MachineIGB has two igb NICs (Intel 82576), each alone in its IOMMU
	// group behind a PCIe root port, joined by a QEMU hub, and an IOMMU with
	// a 48-bit address width. It needs QEMU 8.0 or later (MinIGBQEMU).
	MachineIGB
)

func (m Machine) String() string {
	switch m {
	case MachineE1000e:
		return "e1000e"
	case MachineIGB:
		return "igb"
	}
	return fmt.Sprintf("Machine(%d)", int(m))
}

// vendorDevice is the NIC model's PCI ID as sysfs prints it.
func (m Machine) vendorDevice() string {
	if m == MachineIGB {
		return IGBVendorDevice
	}
	return E1000eVendorDevice
}

// iommuBits is the address width the machine gives QEMU's intel-iommu
// explicitly: QEMU 7.2 defaults to 39 bits and QEMU 10 to 48, and the e1000e
// tests check the 39-bit limit, so the width does not depend on the version.
func (m Machine) iommuBits() int {
	if m == MachineIGB {
		return 48
	}
	return 39
}

// MinIGBQEMU is the first QEMU version with the igb device (8.0).
var MinIGBQEMU = [2]int{8, 0}

// CacheDir returns where .ci/guest-deps.sh keeps the kernel parts:
// $VERINIC_GUEST_CACHE, else $XDG_CACHE_HOME/verinic/guest, else
// /var/cache/verinic/guest for root and ~/.cache/verinic/guest otherwise.
func CacheDir() string {
	if d := os.Getenv("VERINIC_GUEST_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "verinic/guest")
	}
	if os.Geteuid() == 0 {
		return "/var/cache/verinic/guest"
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache/verinic/guest")
}

// Parts are the prepared kernel parts.
type Parts struct {
	Dir     string
	Vmlinux string
	Modules []string // .ko files in load order
	Package string   // the Debian package they came from
}

// LoadParts reads a prepared cache.
func LoadParts(dir string) (*Parts, error) {
	pkg, err := os.ReadFile(filepath.Join(dir, "complete"))
	if err != nil {
		return nil, fmt.Errorf("guest kernel parts not prepared in %s (run .ci/guest-deps.sh): %w", dir, err)
	}
	order, err := os.ReadFile(filepath.Join(dir, "modules/order"))
	if err != nil {
		return nil, fmt.Errorf("guest kernel parts in %s: %w", dir, err)
	}
	p := &Parts{Dir: dir, Vmlinux: filepath.Join(dir, "vmlinux"), Package: strings.TrimSpace(string(pkg))}
	for _, m := range strings.Fields(string(order)) {
		ko := filepath.Join(dir, "modules", m+".ko")
		if _, err := os.Stat(ko); err != nil {
			return nil, fmt.Errorf("guest kernel parts in %s: %w (run .ci/guest-deps.sh)", dir, err)
		}
		p.Modules = append(p.Modules, ko)
	}
	if _, err := os.Stat(p.Vmlinux); err != nil {
		return nil, fmt.Errorf("guest kernel parts in %s: %w (run .ci/guest-deps.sh)", dir, err)
	}
	for _, m := range requiredModules {
		if !strings.Contains(" "+strings.Join(strings.Fields(string(order)), " ")+" ", " "+m+" ") {
			return nil, fmt.Errorf("guest kernel parts in %s lack module %s (an older cache: run .ci/guest-deps.sh)", dir, m)
		}
	}
	return p, nil
}

// requiredModules are the modules the guest needs: VFIO for the tests, and
// e1000e and igb so that nicctl bind and unbind have a kernel driver to move
// the NIC from and back to (and, for igb, Linux's own driver to compare with).
//
// virtio_blk drives the output disk (Config.Outputs) and pktgen is Linux's
// packet generator for the igb guest's frame-rate comparison.
var requiredModules = []string{"vfio", "vfio_iommu_type1", "vfio-pci", "e1000e", "igb", "virtio_pci", "virtio_blk", "pktgen"}

// EnsureParts returns the prepared parts, running the preparation script
// first when they are missing and it can (as root with apt-get). The script
// also installs QEMU and busybox-static when absent.
func EnsureParts(script string) (*Parts, error) {
	dir := CacheDir()
	haveTools := Available() == nil
	if p, err := LoadParts(dir); err == nil && haveTools {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: the guest kernel parts or QEMU are missing and installing them needs root (run %s as root)", ErrUnavailable, script)
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return nil, fmt.Errorf("%w: the guest kernel parts or QEMU are missing and apt-get is not available to install them", ErrUnavailable)
	}
	cmd := exec.Command("bash", script)
	cmd.Env = append(os.Environ(), "VERINIC_GUEST_CACHE="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s failed: %w\n%s", script, err, tail(out.String(), 30))
	}
	if err := Available(); err != nil {
		return nil, err
	}
	return LoadParts(dir)
}

// ErrUnavailable reports that the guest cannot be run on this machine.
var ErrUnavailable = errors.New("the QEMU guest cannot run here")

// Available checks for the host tools: qemu-system-x86_64 (8.0 or later,
// for the igb machine; .ci/guest-deps.sh installs it) and a static busybox.
func Available() error {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return fmt.Errorf("%w: qemu-system-x86_64 not found (run .ci/guest-deps.sh as root)", ErrUnavailable)
	}
	v, err := QEMUVersion()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if v[0] < MinIGBQEMU[0] || (v[0] == MinIGBQEMU[0] && v[1] < MinIGBQEMU[1]) {
		return fmt.Errorf("%w: qemu-system-x86_64 is %d.%d; the guest tier needs %d.%d or later for igb (run .ci/guest-deps.sh as root: it installs it from bookworm-backports)",
			ErrUnavailable, v[0], v[1], MinIGBQEMU[0], MinIGBQEMU[1])
	}
	if _, err := Busybox(); err != nil {
		return err
	}
	return nil
}

// QEMUVersion returns qemu-system-x86_64's major and minor version.
func QEMUVersion() ([2]int, error) {
	out, err := exec.Command("qemu-system-x86_64", "--version").Output()
	if err != nil {
		return [2]int{}, fmt.Errorf("qemu-system-x86_64 --version: %w", err)
	}
	return parseQEMUVersion(string(out))
}

// parseQEMUVersion reads "QEMU emulator version 10.0.2 (Debian ...)".
func parseQEMUVersion(out string) ([2]int, error) {
	const prefix = "QEMU emulator version "
	i := strings.Index(out, prefix)
	if i < 0 {
		return [2]int{}, fmt.Errorf("qemu-system-x86_64 --version printed no version: %q", tail(out, 2))
	}
	f := strings.SplitN(strings.Fields(out[i+len(prefix):] + " ")[0], ".", 3)
	var v [2]int
	for k := range v {
		n, err := -1, error(nil)
		if k < len(f) {
			n, err = strconv.Atoi(f[k])
		}
		if n < 0 || err != nil {
			return [2]int{}, fmt.Errorf("qemu-system-x86_64 --version: cannot read a version from %q", tail(out, 2))
		}
		v[k] = n
	}
	return v, nil
}

// Busybox returns the path of a statically linked busybox.
func Busybox() (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if static, err := IsStatic(p); err == nil && static {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no static busybox (apt-get install busybox-static)", ErrUnavailable)
}

// IsStatic reports whether an ELF executable is statically linked (has no
// PT_INTERP program header), so that it runs in the initramfs, which has no
// dynamic loader.
func IsStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// Program is a program the guest runs, in order, reporting its exit status.
type Program struct {
	Name string   // for the result line
	Path string   // host path; copied to /bin/<base name>
	Args []string // arguments in the guest
	Pre  string   // shell run before the program (optional)
}

// Config describes one guest run.
type Config struct {
	Machine  Machine // which NICs; MachineE1000e when zero
	Parts    *Parts
	Programs []Program
	Extra    []Entry // more files for the initramfs
	// Setup is shell run by init after the modules load and before the
	// programs (e.g. reserving hugepages).
	Setup string
	// QEMUExtra are more QEMU arguments, placed before the kernel's (e.g.
	// "-trace", "events=FILE,file=LOG" to record the device model's trace
	// events).
	QEMUExtra []string
	Memory    int // MiB, default 512
	Timeout   time.Duration
	WorkDir   string    // where the initramfs and the serial log go
	Log       io.Writer // receives the serial console as it arrives (optional)

	// Outputs, when set, is a host directory (created if needed) that
	// receives the files the guest's programs leave under $VERINIC_GUEST_OUT
	// (traces under $VERINIC_GUEST_TRACE_DIR): the machine gets a raw
	// virtio-blk disk of OutputMiB (default 256, sparse on the host) that the
	// guest's init writes a tar of /out to after the last program; Run
	// unpacks it (Result.Files). An archive larger than the disk is an
	// error.
	Outputs   string
	OutputMiB int

	// Wait holds host hooks by name: a guest program that prints
	// "VERINIC-GUEST-WAIT <name>" (WaitForHost, or vn_wait NAME in Setup or
	// Pre shell) stops until Run has called Wait[name] and written a line to
	// the serial port. A hook's error is kept in Result.HookErrors; a name
	// without a hook is one too (and the guest goes on).
	Wait map[string]func() error

	// QEMUTrace names QEMU trace events (patterns such as "e1000e_tx_descr"
	// or "igb_*") that guest programs may record in named windows:
	// QEMUTraceOn(name) in the guest starts writing them to
	// <WorkDir>/qemutrace/<name>.log, QEMUTraceOff(name) stops (through
	// QEMU's QMP socket: trace-event-set-state, and the log file switched
	// with the monitor's logfile command, which closes and so flushes the
	// window's file). Result.QEMUTraces lists the files. The guest sees
	// VERINIC_GUEST_QEMU_TRACE=1 when this is set.
	QEMUTrace []string

	// TAP, for MachineIGB, wires the second igb (0000:02:00.0) to a TAP
	// device instead of the hub: QEMU runs inside the named network
	// namespace (ip netns exec) and creates the TAP device there, so the
	// host's Linux in that namespace is the igb's peer and nothing else is
	// reachable. The first igb stays alone on the hub.
	TAP *TAPPeer
}

// TAPPeer names the network namespace (created by the caller, e.g. with
// hostlink.NewNetns) and the TAP device QEMU creates in it.
type TAPPeer struct {
	Netns  string
	Ifname string
}

// Result is what the guest reported.
type Result struct {
	Booted   bool
	Done     bool
	Exit     map[string]int // program name -> exit status
	Order    []string
	Errors   []string // SentinelError lines
	Serial   string   // the whole serial log
	Duration time.Duration
	// Boot is the time from QEMU's start to the booted sentinel (the kernel
	// up, init running), before the modules load and the programs run.
	Boot time.Duration
	// Files are the guest's output files (Config.Outputs), relative paths
	// under Config.Outputs in archive order.
	Files []string
	// Waits lists the wait names the guest asked the host for, in order;
	// HookErrors the hooks' errors ("name: error").
	Waits      []string
	HookErrors []string
	// QEMUTraces are the QEMU trace windows recorded (Config.QEMUTrace):
	// window name -> host file.
	QEMUTraces map[string]string
}

// Failed lists the programs that did not exit 0 or did not report.
func (r *Result) Failed(progs []Program) []string {
	var bad []string
	for _, p := range progs {
		if st, ok := r.Exit[p.Name]; !ok {
			bad = append(bad, p.Name+" (no result)")
		} else if st != 0 {
			bad = append(bad, fmt.Sprintf("%s (exit %d)", p.Name, st))
		}
	}
	return bad
}

// initScript is the guest's /init: mount the pseudo file systems, load the
// modules, find the NICs, run the setup and the programs, power off.
func initScript(cfg Config) string {
	var b strings.Builder
	b.WriteString(`#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
echo ` + SentinelBooted + `
for m in $(cat /lib/modules/order); do
  insmod /lib/modules/$m.ko || echo "` + SentinelError + ` insmod $m failed"
done
NICS=
for d in /sys/bus/pci/devices/*; do
  if [ "$(cat $d/vendor):$(cat $d/device)" = "` + cfg.Machine.vendorDevice() + `" ]; then NICS="$NICS ${d##*/}"; fi
done
NIC=$(echo $NICS | cut -d" " -f1)
[ -n "$NIC" ] || echo "` + SentinelError + ` no ` + cfg.Machine.String() + ` found"
`)
	if cfg.Machine == MachineIGB {
		b.WriteString("export " + IGBNICsEnv + `="$(echo $NICS)"` + "\n")
	} else {
		b.WriteString("export " + NICEnv + "=$NIC " + NICsEnv + `="$(echo $NICS)"` + "\n")
	}
	fmt.Fprintf(&b, "export %s=%d TMPDIR=/tmp HOME=/tmp PATH=/bin:/sbin:/usr/bin:/usr/sbin\nip link set lo up\n", IOMMUBitsEnv, cfg.Machine.iommuBits())
	// vn_wait NAME: let the host act (Config.Wait). The console is opened
	// for reading before the sentinel goes out, so that the host's answer
	// cannot arrive before anyone reads.
	b.WriteString(`vn_wait() { exec 3</dev/console; echo "` + SentinelWait + ` $1"; read -r _ <&3; exec 3<&-; }` + "\n")
	if cfg.Outputs != "" {
		fmt.Fprintf(&b, "mkdir -p %[1]s/traces\nexport %[2]s=%[1]s %[3]s=%[1]s/traces\n", guestOutDir, OutDirEnv, TraceDirEnv)
	}
	if len(cfg.QEMUTrace) > 0 {
		b.WriteString("export " + QEMUTraceEnv + "=1\n")
	}
	b.WriteString(cfg.Setup + "\n")
	for _, p := range cfg.Programs {
		b.WriteString(p.Pre + "\n")
		fmt.Fprintf(&b, "cd /tmp; /bin/%s", filepath.Base(p.Path))
		for _, a := range p.Args {
			b.WriteString(" " + shellQuote(a))
		}
		fmt.Fprintf(&b, " 2>&1 </dev/null\necho \"%s %s $?\"\n", SentinelResult, p.Name)
	}
	if cfg.Outputs != "" {
		// The output disk is the only virtio disk: /dev/vda. sync before
		// the power-off, which does not flush anything itself.
		fmt.Fprintf(&b, "cd /\nif [ -b /dev/vda ]; then tar -c -f /dev/vda -C %[1]s . || echo \"%[2]s outputs: tar of %[1]s to /dev/vda failed (larger than the %[3]d MiB disk?)\"; sync; else echo \"%[2]s outputs: no /dev/vda (virtio_blk not loaded?)\"; fi\n",
			guestOutDir, SentinelError, cfg.outputMiB())
	}
	b.WriteString("echo " + SentinelDone + "\npoweroff -f\n")
	return b.String()
}

func (cfg Config) outputMiB() int {
	if cfg.OutputMiB > 0 {
		return cfg.OutputMiB
	}
	return 256
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// BuildInitramfs writes the guest's initramfs to path.
func BuildInitramfs(cfg Config, path string) error {
	bb, err := Busybox()
	if err != nil {
		return err
	}
	entries := []Entry{
		{Path: "init", Mode: TypeRegular | 0o755, Data: []byte(initScript(cfg))},
		{Path: "bin/busybox", Mode: TypeRegular | 0o755, Source: bb},
		{Path: "bin/sh", Mode: TypeSymlink | 0o777, Data: []byte("busybox")},
		{Path: "dev/console", Mode: TypeCharDev | 0o600, Major: 5, Minor: 1},
		{Path: "dev/null", Mode: TypeCharDev | 0o666, Major: 1, Minor: 3},
		{Path: "tmp", Mode: TypeDir | 0o1777},
	}
	var order []string
	for _, ko := range cfg.Parts.Modules {
		name := strings.TrimSuffix(filepath.Base(ko), ".ko")
		order = append(order, name)
		entries = append(entries, Entry{Path: "lib/modules/" + name + ".ko", Mode: TypeRegular | 0o644, Source: ko})
	}
	entries = append(entries, Entry{Path: "lib/modules/order", Mode: TypeRegular | 0o644, Data: []byte(strings.Join(order, "\n") + "\n")})
	for _, p := range cfg.Programs {
		entries = append(entries, Entry{Path: "bin/" + filepath.Base(p.Path), Mode: TypeRegular | 0o755, Source: p.Path})
	}
	entries = append(entries, cfg.Extra...)
	for _, e := range entries[len(entries)-len(cfg.Programs)-len(cfg.Extra):] {
		if e.Source != "" && e.Mode&0o111 != 0 {
			if static, err := IsStatic(e.Source); err == nil && !static {
				return fmt.Errorf("initramfs: %s is dynamically linked and cannot run in the guest (build it with CGO_ENABLED=0)", e.Source)
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if err := WriteCPIO(f, entries); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// QEMUArgs returns the QEMU command line: q35 with the Intel IOMMU placed
// before every PCI device; e1000es: one alone behind a PCIe root port (its
// own IOMMU group), two behind a PCIe-to-PCI bridge (one IOMMU group for
// both, as the IOMMU cannot tell conventional PCI devices apart), and one
// alone behind another such bridge (whose secondary bus reset QEMU 7.2
// carries out, unlike the power-management reset and the root port's bus
// reset, which leave the registers as they were). The first and the last are
// wired to each other through a QEMU hub, so that one can receive what the
// other sends; nothing reaches a network outside QEMU. TCG (KVM is not
// usable on the build machines); the serial console on standard output.
//
// MachineIGB instead has two igb NICs, each alone behind its own PCIe root
// port (so each is alone in its IOMMU group), wired to each other through a
// QEMU hub. The IOMMU's address width is given explicitly (aw-bits: 39 for
// the e1000e machine, 48 for igb), since QEMU's default changed from 39 bits
// (7.2) to 48 (10.0). Interrupt remapping under TCG needs no split irqchip
// (that is a KVM requirement).
func QEMUArgs(cfg Config, initramfs string) []string {
	mem := cfg.Memory
	if mem == 0 {
		mem = 512
	}
	args := []string{
		"-machine", "q35", "-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", strconv.Itoa(mem),
		"-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none", "-serial", "stdio",
		"-no-reboot",
		"-device", fmt.Sprintf("intel-iommu,intremap=on,aw-bits=%d", cfg.Machine.iommuBits()),
	}
	// no_timer_check: under TCG on a loaded host the kernel's early check
	// that the timer interrupt arrives through the (interrupt-remapped)
	// IO-APIC can time out and panic ("timer doesn't work through
	// Interrupt-remapped IO-APIC"; seen here once in five boots under QEMU 10
	// at load 6). The check only guards broken hardware; Linux skips it itself
	// on KVM.
	kernel := []string{
		"-kernel", cfg.Parts.Vmlinux, "-initrd", initramfs,
		"-append", "console=ttyS0 intel_iommu=on no_timer_check panic=-1 quiet loglevel=3",
	}
	if cfg.Machine == MachineIGB {
		second := "hubport,id=hp1,hubid=0"
		if cfg.TAP != nil {
			// QEMU opens the TAP device itself (no helper scripts), inside
			// the namespace it was started in. Without a virtio-net header
			// the kernel segments and checksums what it sends there, as a
			// real wire would carry it (no 64 KiB GSO frames for the igb).
			second = "tap,id=hp1,ifname=" + cfg.TAP.Ifname + ",script=no,downscript=no,vnet_hdr=off"
		}
		args = append(args,
			"-device", "pcie-root-port,id=rp0,chassis=1",
			"-netdev", "hubport,id=hp0,hubid=0",
			"-device", "igb,bus=rp0,netdev=hp0,mac=52:54:00:76:00:01",
			"-device", "pcie-root-port,id=rp1,chassis=2",
			"-netdev", second,
			"-device", "igb,bus=rp1,netdev=hp1,mac=52:54:00:76:00:02",
		)
		args = append(args, cfg.outputDiskArgs(initramfs)...)
		args = append(args, cfg.qemuTraceArgs(initramfs)...)
		return append(append(args, cfg.QEMUExtra...), kernel...)
	}
	args = append(args,
		"-device", "pcie-root-port,id=rp0,chassis=1",
		"-netdev", "hubport,id=hp0,hubid=0",
		"-device", "e1000e,bus=rp0,netdev=hp0",
		"-device", "pcie-pci-bridge,id=br0",
		"-device", "e1000e,bus=br0,addr=1",
		"-device", "e1000e,bus=br0,addr=2",
		"-device", "pcie-pci-bridge,id=br1",
		"-netdev", "hubport,id=hp1,hubid=0",
		"-device", "e1000e,bus=br1,addr=1,netdev=hp1",
	)
	args = append(args, cfg.outputDiskArgs(initramfs)...)
	args = append(args, cfg.qemuTraceArgs(initramfs)...)
	return append(append(args, cfg.QEMUExtra...), kernel...)
}

// qemuTraceArgs adds QEMU's QMP socket and its log file outside the
// windows (Config.QEMUTrace); no event is on until a window opens.
func (cfg Config) qemuTraceArgs(initramfs string) []string {
	if len(cfg.QEMUTrace) == 0 {
		return nil
	}
	dir := filepath.Dir(initramfs)
	return []string{"-qmp", "unix:" + filepath.Join(dir, "qmp.sock") + ",server=on,wait=off", "-D", filepath.Join(dir, "qemu.log")}
}

// outputImage is the host file behind the output disk, beside the
// initramfs.
func outputImage(initramfs string) string {
	return filepath.Join(filepath.Dir(initramfs), "outputs.img")
}

// outputDiskArgs adds the output disk (Config.Outputs): a raw image on a
// virtio-blk PCI device on the root bus, after the NICs so that their
// addresses stay as they were. Without VIRTIO_F_IOMMU_PLATFORM (the default)
// QEMU's virtio devices and Linux's virtio drivers both bypass the IOMMU, so
// the disk needs no mapping and no IOMMU group work.
func (cfg Config) outputDiskArgs(initramfs string) []string {
	if cfg.Outputs == "" {
		return nil
	}
	return []string{
		"-drive", "file=" + outputImage(initramfs) + ",format=raw,if=none,id=vnout",
		"-device", "virtio-blk-pci,drive=vnout",
	}
}

// Run boots the guest and collects what it reports.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Minute
	}
	initramfs := filepath.Join(cfg.WorkDir, "initramfs.cpio")
	if err := BuildInitramfs(cfg, initramfs); err != nil {
		return nil, err
	}
	if cfg.Outputs != "" {
		if err := createOutputImage(outputImage(initramfs), cfg.outputMiB()); err != nil {
			return nil, err
		}
	}
	if cfg.TAP != nil && (cfg.Machine != MachineIGB || cfg.TAP.Netns == "" || cfg.TAP.Ifname == "") {
		return nil, fmt.Errorf("guest: a TAP peer needs the igb machine, a network namespace and an interface name (have %v, %+v)", cfg.Machine, *cfg.TAP)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	name, args := "qemu-system-x86_64", QEMUArgs(cfg, initramfs)
	if cfg.TAP != nil {
		// Only the project's own namespace: QEMU and its TAP device live
		// there and go away with the process.
		name, args = "ip", append([]string{"netns", "exec", cfg.TAP.Netns, name}, args...)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	// The serial port's input: the host's answers to the guest's waits.
	// Without waits QEMU reads /dev/null, as before.
	var stdin io.WriteCloser
	if len(cfg.Wait) > 0 || len(cfg.QEMUTrace) > 0 {
		if stdin, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	res := &Result{Exit: map[string]int{}}
	var serial bytes.Buffer
	var mu sync.Mutex // guards res.HookErrors against the hooks' goroutines
	var hooks sync.WaitGroup
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		serial.WriteString(line + "\n")
		if cfg.Log != nil {
			fmt.Fprintln(cfg.Log, line)
		}
		booted, waits := res.Booted, len(res.Waits)
		parseLine(res, line)
		if res.Booted && !booted {
			res.Boot = time.Since(start)
		}
		if len(res.Waits) > waits {
			// The hook runs while the console goes on being read (the
			// guest's kernel may print meanwhile); the guest goes on once
			// the answer line is written.
			wname := res.Waits[len(res.Waits)-1]
			hooks.Add(1)
			go func() {
				defer hooks.Done()
				var herr error
				if on, window, ok := qemuTraceWait(wname); ok && len(cfg.QEMUTrace) > 0 {
					var file string
					file, herr = qemuTraceWindow(filepath.Dir(initramfs), cfg.QEMUTrace, on, window)
					if herr == nil && on {
						mu.Lock()
						if res.QEMUTraces == nil {
							res.QEMUTraces = map[string]string{}
						}
						res.QEMUTraces[window] = file
						mu.Unlock()
					}
				} else if hook, ok := cfg.Wait[wname]; !ok {
					herr = errors.New("no host hook by that name")
				} else {
					herr = hook()
				}
				if herr != nil {
					mu.Lock()
					res.HookErrors = append(res.HookErrors, wname+": "+herr.Error())
					mu.Unlock()
				}
				if stdin != nil {
					io.WriteString(stdin, "go\n")
				}
			}()
		}
	}
	hooks.Wait()
	if stdin != nil {
		stdin.Close()
	}
	werr := cmd.Wait()
	res.Duration = time.Since(start)
	res.Serial = serial.String()
	if ctx.Err() != nil {
		return res, fmt.Errorf("the guest did not finish within %v (booted: %v)", cfg.Timeout, res.Booted)
	}
	if werr != nil {
		return res, fmt.Errorf("qemu: %w\n%s", werr, tail(stderr.String(), 20))
	}
	if cfg.Outputs != "" && res.Done {
		files, err := unpackOutputs(outputImage(initramfs), cfg.Outputs)
		res.Files = files
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// createOutputImage makes the output disk's image: a sparse file of mib MiB.
func createOutputImage(path string, mib int) error {
	if strings.ContainsAny(path, ",") {
		return fmt.Errorf("guest: output image path %q has a comma, which QEMU's -drive cannot take", path)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("guest: output image: %w", err)
	}
	if err := f.Truncate(int64(mib) << 20); err != nil {
		f.Close()
		return fmt.Errorf("guest: output image: %w", err)
	}
	return f.Close()
}

// unpackOutputs reads the tar the guest wrote at the start of the image and
// writes its regular files under dir. Only regular files and directories are
// taken, at relative paths that stay inside dir; anything else is an error,
// as is a disk the guest never wrote (all zeroes: the init did not reach its
// archive step).
func unpackOutputs(image, dir string) ([]string, error) {
	f, err := os.Open(image)
	if err != nil {
		return nil, fmt.Errorf("guest outputs: %w", err)
	}
	defer f.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("guest outputs: %w", err)
	}
	tr := tar.NewReader(bufio.NewReaderSize(f, 1<<20))
	var files []string
	entries := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return files, fmt.Errorf("guest outputs: reading the archive on the output disk: %w", err)
		}
		entries++
		rel := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if rel == "." && h.Typeflag == tar.TypeDir {
			continue
		}
		if path.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, "../") {
			return files, fmt.Errorf("guest outputs: archive entry %q leaves the output directory", h.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return files, fmt.Errorf("guest outputs: %w", err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return files, fmt.Errorf("guest outputs: %w", err)
			}
			out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return files, fmt.Errorf("guest outputs: %w", err)
			}
			n, err := io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return files, fmt.Errorf("guest outputs: %s: %w", rel, err)
			}
			if n != h.Size {
				return files, fmt.Errorf("guest outputs: %s: %d bytes of %d", rel, n, h.Size)
			}
			files = append(files, rel)
		default:
			return files, fmt.Errorf("guest outputs: archive entry %q is of type %q: only files and directories are taken", h.Name, h.Typeflag)
		}
	}
	if entries == 0 {
		return nil, errors.New("guest outputs: the output disk holds no archive (the guest's init did not reach its archive step)")
	}
	return files, nil
}

func parseLine(res *Result, line string) {
	i := strings.Index(line, "VERINIC-")
	if i < 0 {
		return
	}
	f := strings.Fields(line[i:])
	switch f[0] {
	case SentinelBooted:
		res.Booted = true
	case SentinelDone:
		res.Done = true
	case SentinelWait:
		if len(f) == 2 {
			res.Waits = append(res.Waits, f[1])
		}
	case SentinelError:
		res.Errors = append(res.Errors, strings.Join(f[1:], " "))
	case SentinelResult:
		if len(f) == 3 {
			if st, err := strconv.Atoi(f[2]); err == nil {
				res.Exit[f[1]] = st
				res.Order = append(res.Order, f[1])
			}
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitForHost is the guest side of Config.Wait, for a program running inside
// the guest: it prints "VERINIC-GUEST-WAIT <name>" on the console and
// returns once the host's hook has run and Run has answered with a line on
// the serial port (or after timeout). The console is opened before the
// sentinel goes out, so the answer cannot arrive before anyone reads it.
func WaitForHost(name string, timeout time.Duration) error {
	if strings.ContainsAny(name, " \t\n") || name == "" {
		return fmt.Errorf("guest: wait name %q: want one word", name)
	}
	con, err := os.OpenFile("/dev/console", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("guest: wait for host: %w", err)
	}
	defer con.Close()
	if _, err := fmt.Fprintf(con, "\n%s %s\n", SentinelWait, name); err != nil {
		return fmt.Errorf("guest: wait for host: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := bufio.NewReader(con).ReadString('\n')
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("guest: wait for host %s: %w", name, err)
		}
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("guest: the host did not answer wait %s within %v", name, timeout)
	}
}
