package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/ixgbe/ixgbesim/hostlink"
	"github.com/verinic/verinic/proto/link"
	"github.com/verinic/verinic/proto/link/pcaplink"
	"github.com/verinic/verinic/proto/route"
	"github.com/verinic/verinic/proto/stack"
)

func init() {
	register(&command{
		name:    "sim",
		summary: "run the stack on a simulated 82599 attached to a TAP device: answers ARP and ping, optional UDP echo",
		usage:   "--tap NAME --ip ADDR/LEN [--host-ip ADDR/LEN] [--gateway ADDR] [--udp-echo PORT] [--stats] [--pcap FILE] [--duration D]",
		run:     runSim,
	})
}

// stackFlags are the flags of the subcommands that run a stack (sim, ping).
type stackFlags struct {
	tap      string
	dev      string
	ip       string
	hostIP   string
	gateway  string
	pcap     string
	busyPoll bool
}

func (f *stackFlags) register(fs *flag.FlagSet, withDev bool) {
	fs.StringVar(&f.tap, "tap", "", "attach a simulated 82599 to a new TAP device of this name (needs CAP_NET_ADMIN)")
	if withDev {
		fs.StringVar(&f.dev, "dev", "", "run on this device instead of a TAP-attached simulator: a PCI address (VFIO)")
	}
	fs.StringVar(&f.ip, "ip", "", "the stack's address and prefix length, e.g. 10.0.0.2/24")
	fs.StringVar(&f.hostIP, "host-ip", "", "with --tap: give the kernel's end of the TAP this address/len and bring it up")
	fs.StringVar(&f.gateway, "gateway", "", "default gateway")
	fs.StringVar(&f.pcap, "pcap", "", "record every frame the stack sends and receives to this pcap file")
	fs.BoolVar(&f.busyPoll, "busy-poll", false, "poll loops never sleep (lowest latency, one busy core per queue)")
}

// runningStack is a stack on one NIC, with what it needs closed after it.
type runningStack struct {
	st      *stack.Stack
	closers []func() error // in order
	pcap    *pcaplink.Link
}

func (r *runningStack) Close() error {
	var errs []error
	if r.st != nil {
		errs = append(errs, r.st.Close())
	}
	if r.pcap != nil {
		errs = append(errs, r.pcap.Flush())
	}
	for _, c := range r.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// startStack builds the device and the stack the flags describe and starts
// its poll loops.
func startStack(f *stackFlags) (_ *runningStack, err error) {
	prefix, err := netip.ParsePrefix(f.ip)
	if err != nil || !prefix.Addr().Is4() {
		return nil, fmt.Errorf("--ip %q: want an IPv4 address with prefix length, like 10.0.0.2/24", f.ip)
	}
	var gw netip.Addr
	if f.gateway != "" {
		if gw, err = netip.ParseAddr(f.gateway); err != nil || !gw.Is4() {
			return nil, fmt.Errorf("--gateway %q: want an IPv4 address", f.gateway)
		}
	}
	if (f.tap == "") == (f.dev == "") {
		return nil, fmt.Errorf("name exactly one of --tap NAME (a simulated NIC on a TAP device) or --dev DEVICE: %w", errUsage)
	}
	r := &runningStack{}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	var dev ixgbe.Device
	if f.tap != "" {
		if f.hostIP != "" {
			if _, err := netip.ParsePrefix(f.hostIP); err != nil {
				return nil, fmt.Errorf("--host-ip %q: want an address with prefix length, like 10.0.0.1/24", f.hostIP)
			}
		}
		sim, err := ixgbesim.New(ixgbesim.Config{Name: "sim-" + f.tap, Mode: ixgbesim.FreeRunning, Policy: dma.NoHugepages})
		if err != nil {
			return nil, err
		}
		r.closers = append(r.closers, func() error { sim.Stop(); return sim.Close() })
		tap, err := hostlink.OpenTAP(f.tap, sim)
		if err != nil {
			return nil, err
		}
		r.closers = append(r.closers, tap.Close)
		sim.Attach(tap)
		// The kernel then completes every checksum of what it sends.
		if err := hostlink.DisableOffloads(tap.Name()); err != nil {
			return nil, err
		}
		if f.hostIP != "" {
			for _, args := range [][]string{{"addr", "add", f.hostIP, "dev", tap.Name()}, {"link", "set", tap.Name(), "up"}} {
				if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
					return nil, fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
				}
			}
		}
		sim.Start()
		dev = sim
	} else {
		if dev, err = openDevice(f.dev); err != nil {
			return nil, err
		}
		d := dev
		r.closers = append(r.closers, func() error { return closeDevice(d) })
	}
	drv, err := ixgbe.New(dev, ixgbe.Config{})
	if err != nil {
		return nil, fmt.Errorf("driver: %w", err)
	}
	// The driver closes first (it stops the queues), then the device.
	r.closers = append([]func() error{drv.Close}, r.closers...)
	var l link.Link = drv
	if f.pcap != "" {
		file, err := os.Create(f.pcap)
		if err != nil {
			return nil, err
		}
		r.closers = append(r.closers, file.Close)
		if r.pcap, err = pcaplink.Wrap(drv, file); err != nil {
			return nil, err
		}
		l = r.pcap
	}
	cfg := stack.Config{}
	if f.busyPoll {
		cfg.IdleSleep = -1
	}
	r.st = stack.New(cfg)
	if _, err := r.st.AddNIC(l, stack.NICConfig{Name: f.tap + f.dev}); err != nil {
		return nil, err
	}
	if err := r.st.AddAddress(1, prefix); err != nil {
		return nil, err
	}
	if gw.IsValid() {
		if err := r.st.AddRoute(route.Route{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Gateway: gw, NIC: 1}); err != nil {
			return nil, err
		}
	}
	if err := r.st.Start(); err != nil {
		return nil, err
	}
	return r, nil
}

func runSim(args []string) error {
	var f stackFlags
	var echoPort int
	var stats bool
	var duration time.Duration
	fs := newFlagSet("sim")
	f.register(fs, false)
	fs.IntVar(&echoPort, "udp-echo", 0, "answer UDP datagrams on this port with their own contents (0: off)")
	fs.BoolVar(&stats, "stats", false, "print the stack's counters that changed, every second")
	fs.DurationVar(&duration, "duration", 0, "stop after this long (0: run until interrupted)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.tap == "" || fs.NArg() != 0 {
		return errUsage
	}
	if echoPort < 0 || echoPort > 65535 {
		return fmt.Errorf("--udp-echo %d: not a port", echoPort)
	}
	r, err := startStack(&f)
	if err != nil {
		return err
	}
	defer r.Close()
	nic := r.st.NIC(1)
	fmt.Printf("verinic stack on simulated 82599 %s at %s on TAP %s\n", nic.MAC(), f.ip, f.tap)
	if f.hostIP == "" {
		fmt.Printf("configure the kernel's end, e.g.: ip addr add <addr>/<len> dev %s && ip link set %s up\n", f.tap, f.tap)
	}
	if echoPort != 0 {
		s, err := r.st.ListenUDP(netip.AddrPortFrom(netip.Addr{}, uint16(echoPort)))
		if err != nil {
			return fmt.Errorf("--udp-echo %d: %w", echoPort, err)
		}
		defer s.Close()
		go func() {
			buf := make([]byte, 65536)
			for {
				n, from, err := s.ReadFrom(buf)
				if err != nil {
					return
				}
				s.WriteTo(buf[:n], from)
			}
		}()
		fmt.Printf("UDP echo on port %d\n", echoPort)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	var end <-chan time.Time
	if duration > 0 {
		end = time.After(duration)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	prev := r.st.Counters()
	for {
		select {
		case <-sig:
			fmt.Println("interrupted")
			printCounters(r.st.Counters(), stack.Counters{}, "total")
			return nil
		case <-end:
			printCounters(r.st.Counters(), stack.Counters{}, "total")
			return nil
		case <-tick.C:
			if stats {
				cur := r.st.Counters()
				printCounters(cur.Sub(prev), prev, time.Now().Format("15:04:05"))
				prev = cur
			}
		}
	}
}

// printCounters prints the non-zero counters of c on one line; gauges
// (cache entries, reassembly memory) follow the counters that moved.
func printCounters(c, _ stack.Counters, label string) {
	var parts, gauges []string
	for _, s := range c.All() {
		switch {
		case s.Value == 0:
		case s.Name == stack.ARPEntries.String() || s.Name == stack.ReasmMemory.String():
			gauges = append(gauges, fmt.Sprintf("%s=%d", s.Name, s.Value))
		default:
			parts = append(parts, fmt.Sprintf("%s=%d", s.Name, s.Value))
		}
	}
	if len(parts) == 0 {
		parts = []string{"(idle)"}
	}
	parts = append(parts, gauges...)
	fmt.Printf("%s %s\n", label, strings.Join(parts, " "))
}
