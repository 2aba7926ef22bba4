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
package guest

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
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
var requiredModules = []string{"vfio", "vfio_iommu_type1", "vfio-pci", "e1000e", "igb"}

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
	b.WriteString(cfg.Setup + "\n")
	for _, p := range cfg.Programs {
		b.WriteString(p.Pre + "\n")
		fmt.Fprintf(&b, "cd /tmp; /bin/%s", filepath.Base(p.Path))
		for _, a := range p.Args {
			b.WriteString(" " + shellQuote(a))
		}
		fmt.Fprintf(&b, " 2>&1 </dev/null\necho \"%s %s $?\"\n", SentinelResult, p.Name)
	}
	b.WriteString("echo " + SentinelDone + "\npoweroff -f\n")
	return b.String()
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
		args = append(args,
			"-device", "pcie-root-port,id=rp0,chassis=1",
			"-netdev", "hubport,id=hp0,hubid=0",
			"-device", "igb,bus=rp0,netdev=hp0,mac=52:54:00:76:00:01",
			"-device", "pcie-root-port,id=rp1,chassis=2",
			"-netdev", "hubport,id=hp1,hubid=0",
			"-device", "igb,bus=rp1,netdev=hp1,mac=52:54:00:76:00:02",
		)
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
	return append(append(args, cfg.QEMUExtra...), kernel...)
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
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", QEMUArgs(cfg, initramfs)...)
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	res := &Result{Exit: map[string]int{}}
	var serial bytes.Buffer
	var mu sync.Mutex
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		mu.Lock()
		serial.WriteString(line + "\n")
		mu.Unlock()
		if cfg.Log != nil {
			fmt.Fprintln(cfg.Log, line)
		}
		booted := res.Booted
		parseLine(res, line)
		if res.Booted && !booted {
			res.Boot = time.Since(start)
		}
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
	return res, nil
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
