//go:build linux

package hostlink

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Netns is a named network namespace created with ip-netns(8). Processes
// reach it with `ip netns exec NAME …` (Exec); this process enters it only on
// a locked OS thread, for the duration of Do, so that sockets and TAP
// devices opened there belong to it.
type Netns struct {
	name string
	path string
}

var netnsSeq atomic.Uint32

// CheckNetns reports why private network namespaces cannot be used here,
// or nil if they can: it needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and
// ip(8).
func CheckNetns() error {
	if os.Geteuid() != 0 {
		return errors.New("hostlink: network namespaces need root (CAP_SYS_ADMIN, CAP_NET_ADMIN)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("hostlink: ip(8) not found (install iproute2): %w", err)
	}
	return nil
}

// NewNetns creates a network namespace named prefix-PID-N (so that parallel
// test binaries never collide), with its loopback up. Namespaces with the
// same prefix left behind by processes that no longer exist (a test binary
// killed by its timeout) are deleted first.
func NewNetns(prefix string) (*Netns, error) {
	if err := CheckNetns(); err != nil {
		return nil, err
	}
	removeStale(prefix)
	name := fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), netnsSeq.Add(1))
	if out, err := run("ip", "netns", "add", name); err != nil {
		return nil, fmt.Errorf("hostlink: ip netns add %s: %w: %s", name, err, out)
	}
	n := &Netns{name: name, path: "/var/run/netns/" + name}
	if _, err := n.IP("link", "set", "lo", "up"); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Name returns the namespace's name (for `ip netns exec`).
func (n *Netns) Name() string { return n.name }

// removeStale deletes namespaces named prefix-PID-N whose PID is gone.
func removeStale(prefix string) {
	entries, err := os.ReadDir("/var/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix+"-")
		if !ok {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid == os.Getpid() {
			continue
		}
		if unix.Kill(pid, 0) == unix.ESRCH {
			run("ip", "netns", "del", e.Name())
		}
	}
}

func run(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}

// IP runs `ip -n NAME args…` and returns its output; the error includes it.
func (n *Netns) IP(args ...string) ([]byte, error) {
	out, err := run("ip", append([]string{"-n", n.name}, args...)...)
	if err != nil {
		return out, fmt.Errorf("hostlink: ip -n %s %s: %w: %s", n.name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Exec runs a command inside the namespace (`ip netns exec NAME cmd args…`)
// with a deadline and returns its combined output.
func (n *Netns) Exec(ctx context.Context, cmd string, args ...string) ([]byte, error) {
	c := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.name, cmd}, args...)...)
	out, err := c.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("hostlink: in netns %s: %s %s: %w", n.name, cmd, strings.Join(args, " "), err)
	}
	return out, nil
}

// Do runs fn on an OS thread that has entered the namespace. Sockets, TAP
// devices and netlink requests made by fn itself belong to the namespace;
// goroutines fn starts run elsewhere and do not. The thread returns to the
// process's namespace afterwards (or is retired if it cannot).
func (n *Netns) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("hostlink: open own netns: %w", err)
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open(n.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("hostlink: open netns %s: %w", n.name, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("hostlink: enter netns %s: %w", n.name, err)
			return
		}
		ferr := fn()
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else: stay locked; the runtime retires the thread with the goroutine
		errc <- ferr
	}()
	return <-errc
}

// OpenTAP creates a TAP device inside the namespace; see the package-level
// OpenTAP.
func (n *Netns) OpenTAP(name string, r Receiver) (*TAP, error) {
	var t *TAP
	err := n.Do(func() (err error) { t, err = OpenTAP(name, r); return err })
	return t, err
}

// OpenRaw opens an AF_PACKET link on an interface inside the namespace; see
// the package-level OpenRaw.
func (n *Netns) OpenRaw(ifname string, r Receiver) (*Raw, error) {
	var l *Raw
	err := n.Do(func() (err error) { l, err = OpenRaw(ifname, r); return err })
	return l, err
}

// AddVeth creates a veth pair a–b inside the namespace, with both ends up.
func (n *Netns) AddVeth(a, b string) error {
	if _, err := n.IP("link", "add", a, "type", "veth", "peer", "name", b); err != nil {
		return err
	}
	for _, ifname := range []string{a, b} {
		if _, err := n.IP("link", "set", ifname, "up"); err != nil {
			return err
		}
	}
	return nil
}

// DisableOffloads turns off an interface's transmit checksum and
// segmentation offloads inside the namespace; see DisableOffloads.
func (n *Netns) DisableOffloads(ifname string) error {
	return n.Do(func() error { return DisableOffloads(ifname) })
}

// Close deletes the namespace. Interfaces inside it go with it once no
// socket or device still holds it.
func (n *Netns) Close() error {
	if out, err := run("ip", "netns", "del", n.name); err != nil {
		return fmt.Errorf("hostlink: ip netns del %s: %w: %s", n.name, err, out)
	}
	return nil
}
