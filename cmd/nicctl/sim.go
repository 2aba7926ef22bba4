package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/verinic/verinic/advring"
	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/internal/hostlink"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/proto/link"
	"github.com/verinic/verinic/proto/link/pcaplink"
	"github.com/verinic/verinic/proto/route"
	"github.com/verinic/verinic/proto/stack"
	"github.com/verinic/verinic/proto/tcp"
	"github.com/verinic/verinic/trace"
)

func init() {
	register(&command{
		name:    "sim",
		summary: "run the stack on a simulated 82599 attached to a TAP device: answers ARP and ping, optional UDP and TCP echo and HTTP",
		usage:   "--tap NAME --ip ADDR/LEN [--host-ip ADDR/LEN] [--gateway ADDR] [--udp-echo PORT] [--tcp-echo PORT] [--http PORT] [--stats] [--conns] [--pcap FILE] [--trace FILE [--trace-events N] [--trace-data BYTES]] [--duration D]",
		run:     func(args []string) error { return runSim(args, os.Stdout) },
	})
}

// stackFlags are the flags of the subcommands that run a stack (sim, ping,
// serve).
type stackFlags struct {
	tap       string
	dev       string
	ip        string
	hostIP    string
	gateway   string
	pcap      string
	busyPoll  bool
	pollAbove float64
	// tcp gives the stack TCP (not a flag: the subcommand decides).
	tcp bool
	// rec records the driver's, the simulated device's and TCP's events
	// (not a flag: the subcommand's --trace makes it; nil: none).
	rec *trace.Recorder
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
	fs.Float64Var(&f.pollAbove, "poll-above", 0, "in interrupt mode, keep a receive queue busy polling while it receives at least this many frames/s (ixy's rate-based switch; 0: off, interrupts whenever the queue runs dry)")
}

// stackSpec is what one stack on one device is given.
type stackSpec struct {
	name      string
	prefix    netip.Prefix
	gateway   netip.Addr
	pcap      string
	busyPoll  bool
	pollAbove float64 // AdaptivePolling's rate (0: off)
	tcp       bool
	// rec records the driver's and TCP's events, the driver's stamped
	// with device number devID (nil: none).
	rec   *trace.Recorder
	devID uint16
}

// spec checks the flags: with where set, that exactly one of --tap and
// --dev names where the stack runs; the addresses, as usage errors that
// name the flag: --ip is a host address of its subnet (not the network or
// the broadcast address), --host-ip (the kernel's end of the TAP) another
// host of the same subnet, --gateway a host of the subnet.
func (f *stackFlags) spec(where bool) (stackSpec, error) {
	s := stackSpec{name: f.tap + f.dev, pcap: f.pcap, busyPoll: f.busyPoll, pollAbove: f.pollAbove, tcp: f.tcp, rec: f.rec}
	switch {
	case f.pollAbove < 0 || f.pollAbove != f.pollAbove:
		return s, usagef("--poll-above %v: want a rate in frames per second, 0 or more (0: off)", f.pollAbove)
	case f.pollAbove > 0 && f.busyPoll:
		return s, usagef("--poll-above switches between interrupts and polling; --busy-poll always polls: give one of them")
	}
	if where && (f.tap == "") == (f.dev == "") {
		return s, usagef("name exactly one of --tap NAME (a simulated 82599 on a new TAP device; root) or --dev DEVICE (a PCI address, through VFIO)")
	}
	var err error
	s.prefix, err = netip.ParsePrefix(f.ip)
	if err != nil || !s.prefix.Addr().Is4() {
		return s, usagef("--ip %q: want the stack's IPv4 address with prefix length, like 10.0.0.2/24", f.ip)
	}
	subnet := s.prefix.Masked()
	if err := hostOf("--ip", s.prefix, subnet); err != nil {
		return s, err
	}
	if f.hostIP != "" {
		host, err := netip.ParsePrefix(f.hostIP)
		if err != nil || !host.Addr().Is4() {
			return s, usagef("--host-ip %q: want an IPv4 address with prefix length, like 10.0.0.1/24", f.hostIP)
		}
		switch {
		case host.Addr() == s.prefix.Addr():
			return s, usagef("--host-ip %s: that is the stack's own address (--ip %s); give the kernel's end another address of %s", f.hostIP, f.ip, subnet)
		case !subnet.Contains(host.Addr()):
			return s, usagef("--host-ip %s: outside the stack's subnet %s; give the kernel's end an address of %s so that the two reach each other", f.hostIP, subnet, subnet)
		}
		if err := hostOf("--host-ip", host, host.Masked()); err != nil {
			return s, err
		}
	}
	if f.gateway != "" {
		if s.gateway, err = netip.ParseAddr(f.gateway); err != nil || !s.gateway.Is4() {
			return s, usagef("--gateway %q: want an IPv4 address", f.gateway)
		}
		switch {
		case s.gateway == s.prefix.Addr():
			return s, usagef("--gateway %s: that is the stack's own address", f.gateway)
		case !subnet.Contains(s.gateway):
			return s, usagef("--gateway %s: outside the stack's subnet %s; a gateway is reached directly, so it must be in %s", f.gateway, subnet, subnet)
		}
		if err := hostOf("--gateway", netip.PrefixFrom(s.gateway, s.prefix.Bits()), subnet); err != nil {
			return s, err
		}
	}
	return s, nil
}

// hostOf checks that p's address is a host of subnet: not its network or
// broadcast address (subnets of 31 and 32 bits have neither, RFC 3021).
func hostOf(flag string, p, subnet netip.Prefix) error {
	if p.Bits() > 30 {
		return nil
	}
	a := p.Addr().As4()
	host := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	mask := ^uint32(0) >> p.Bits()
	switch host & mask {
	case 0:
		return usagef("%s %s: the network address of %s, not a host's; give a host address such as %s", flag, p, subnet, subnet.Addr().Next())
	case mask:
		return usagef("%s %s: the broadcast address of %s, not a host's", flag, p, subnet)
	}
	return nil
}

// runningStack is a stack on one NIC, with what it needs closed after it.
type runningStack struct {
	st      *stack.Stack
	tcp     *tcp.Protocol  // nil unless the spec asked for TCP
	prefix  netip.Prefix   // the stack's address
	closers []func() error // in order
	pcap    *pcaplink.Link
	rxMode  string    // how the receive queues wait (chooseRxMode)
	drv     nicDriver // the driver (startOn)
	// pools are the stack's own transmit pools, for a trace header.
	pools []trace.PoolInfo
	warn  io.Writer // where startOn's warnings go (nil: standard error)
}

func (r *runningStack) warnings() io.Writer {
	if r.warn == nil {
		return os.Stderr
	}
	return r.warn
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
	spec, err := f.spec(true)
	if err != nil {
		return nil, err
	}
	r := &runningStack{}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	var dev ixgbe.Device
	if f.tap != "" {
		if dev, err = r.openTAPSim(f); err != nil {
			return nil, err
		}
	} else {
		if dev, err = openDevice(f.dev); err != nil {
			return nil, err
		}
		d := dev
		r.closers = append(r.closers, func() error { return closeDevice(d) })
	}
	return r, r.startOn(dev, spec)
}

// openTAPSim opens a free-running simulated 82599 wired to a new TAP device
// (closed with r).
func (r *runningStack) openTAPSim(f *stackFlags) (*ixgbesim.NIC, error) {
	sim, err := newFreeSim("sim-"+f.tap, nil, f.rec, 0)
	if err != nil {
		return nil, err
	}
	r.closers = append(r.closers, simDevice{sim}.Close)
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
	return sim, nil
}

// newFreeSim makes a free-running simulated 82599 on ordinary pages (no
// hugepages, no root), in domain (nil: its own), recording its device
// events to rec as device devID (nil: none).
func newFreeSim(name string, domain *ixgbesim.Domain, rec *trace.Recorder, devID uint16) (*ixgbesim.NIC, error) {
	return ixgbesim.New(ixgbesim.Config{Name: name, Mode: ixgbesim.FreeRunning, Policy: dma.NoHugepages, Domain: domain, Trace: rec, DevID: devID})
}

// startOn starts the driver of dev's family (startDriver) on dev (whose
// closing r already holds) and a stack on it as s says, and starts the
// stack's poll loops.
func (r *runningStack) startOn(dev ixgbe.Device, s stackSpec) error {
	drv, err := startDriver(dev, driverConfig{trace: s.rec, devID: s.devID})
	if err != nil {
		return fmt.Errorf("driver: %w", err)
	}
	r.drv = drv
	// The driver closes first (it stops the queues), then the device.
	r.closers = append([]func() error{drv.Close}, r.closers...)
	// A simulated 82599, or a real one whose MSI-X vectors VFIO routes to
	// eventfds: the queues run in interrupt mode (NAPI, datasheet 7.3), so
	// an idle stack blocks instead of polling, and a frame wakes it within
	// microseconds. Without the vectors they poll, and the user is told.
	mode := chooseRxMode(dev, drv.NumRxQueues(), s.busyPoll)
	r.rxMode = mode.what
	if mode.warning != "" {
		fmt.Fprintf(r.warnings(), "nicctl: %s\n", mode.warning)
	}
	if mode.release != nil {
		// After the driver (its notifiers then touch no register), before
		// the device: the blocked waits wake and end.
		r.closers = append([]func() error{drv.Close, mode.release}, r.closers[1:]...)
	}
	if mode.src != nil {
		if err := drv.EnableIRQ(mode.src, rxITR); err != nil {
			return fmt.Errorf("driver: %w", err)
		}
		if s.pollAbove > 0 {
			if err := drv.SetPollAbove(s.pollAbove); err != nil {
				return fmt.Errorf("driver: %w", err)
			}
			r.rxMode += fmt.Sprintf(", busy polling above %g frames/s", s.pollAbove)
		}
	}
	var l link.Link = drv
	if s.pcap != "" {
		file, err := os.Create(s.pcap)
		if err != nil {
			return err
		}
		r.closers = append(r.closers, file.Close)
		if r.pcap, err = pcaplink.Wrap(drv, file); err != nil {
			return err
		}
		l = r.pcap
	}
	cfg := stack.Config{}
	if s.busyPoll {
		cfg.IdleSleep = -1
	}
	r.st = stack.New(cfg)
	r.prefix = s.prefix
	if s.tcp {
		if r.tcp, err = tcp.New(r.st, tcp.Config{Recorder: s.rec}); err != nil {
			return err
		}
	}
	if _, err := r.st.AddNIC(l, stack.NICConfig{Name: s.name}); err != nil {
		return err
	}
	if s.rec != nil {
		// The stack's TSO buffers go to the TX rings too: the trace's
		// header places them (released when the stack closes).
		for _, p := range r.st.NIC(1).TSOPools() {
			r.pools = append(r.pools, advring.TracePool(s.devID, p))
		}
	}
	if err := r.st.AddAddress(1, s.prefix); err != nil {
		return err
	}
	if s.gateway.IsValid() {
		if err := r.st.AddRoute(route.Route{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Gateway: s.gateway, NIC: 1}); err != nil {
			return err
		}
	}
	return r.st.Start()
}

// portFlag checks a port flag whose 0 means off.
func portFlag(name string, port int) error {
	if port < 0 || port > 65535 {
		return usagef("--%s %d: want a port 1..65535 (0: off)", name, port)
	}
	return nil
}

func runSim(args []string, out io.Writer) error {
	var f stackFlags
	var udpEcho, tcpEcho, httpPort int
	var w watchOptions
	var tf traceFlags
	fs := newFlagSet("sim")
	f.register(fs, false)
	tf.register(fs)
	fs.IntVar(&udpEcho, "udp-echo", 0, "answer UDP datagrams on this port with their own contents (0: off)")
	fs.IntVar(&tcpEcho, "tcp-echo", 0, "TCP echo server on this port: each connection gets back what it sends (0: off)")
	fs.IntVar(&httpPort, "http", 0, "HTTP server on this port: / a page, /bytes/N N generated bytes, POST /sha256 hashes the body, POST /echo, /conns the connection table (0: off)")
	w.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q: sim takes flags only", fs.Arg(0))
	}
	if f.tap == "" {
		return usagef("--tap NAME is required: the TAP device the simulated 82599 is wired to")
	}
	if w.duration < 0 {
		return usagef("--duration %v: want a positive duration (0: until interrupted)", w.duration)
	}
	if _, err := f.spec(true); err != nil {
		return err
	}
	for _, p := range []struct {
		name string
		port int
	}{{"udp-echo", udpEcho}, {"tcp-echo", tcpEcho}, {"http", httpPort}} {
		if err := portFlag(p.name, p.port); err != nil {
			return err
		}
	}
	if tcpEcho != 0 && tcpEcho == httpPort {
		return usagef("--tcp-echo and --http both name port %d: give them different ports", tcpEcho)
	}
	f.tcp = true // answers SYNs to closed ports with a RST, as a host does
	if err := tf.check(0); err != nil {
		return err
	}
	defer tf.discard()
	f.rec = tf.recorder()
	r, err := startStack(&f)
	if err != nil {
		return err
	}
	info := out // what is not counters
	if w.json {
		info = os.Stderr
	}
	err = runSimApps(r, &f, w, udpEcho, tcpEcho, httpPort, info, out)
	return closeAndWriteTrace(err, &tf, f.rec, info, r)
}

// closeAndWriteTrace closes the stacks, the last first (every recording
// actor stops), and, with --trace and a driver started, writes the trace of
// their drivers (device numbers in the order given); it returns err, or
// else what closing or writing said.
func closeAndWriteTrace(err error, tf *traceFlags, rec *trace.Recorder, info io.Writer, stacks ...*runningStack) error {
	var errs []error
	for i := len(stacks) - 1; i >= 0; i-- { // the last first
		if cerr := stacks[i].Close(); cerr != nil {
			errs = append(errs, cerr)
		}
	}
	var nics []traceNIC
	var pools []trace.PoolInfo
	for _, r := range stacks {
		if r.drv != nil {
			nics = append(nics, r.drv)
			pools = append(pools, r.pools...)
		}
	}
	if rec != nil && len(nics) > 0 {
		if werr := tf.write(rec, nics, pools, info); werr != nil {
			errs = append(errs, werr)
		}
	}
	if err != nil {
		return err
	}
	return errors.Join(errs...)
}

// runSimApps runs sim's services on r until the watch ends.
func runSimApps(r *runningStack, f *stackFlags, w watchOptions, udpEcho, tcpEcho, httpPort int, info, out io.Writer) error {
	nic := r.st.NIC(1)
	fmt.Fprintf(info, "verinic stack on simulated 82599 %s at %s on TAP %s\n", nic.MAC(), f.ip, f.tap)
	if f.hostIP == "" {
		fmt.Fprintf(info, "configure the kernel's end, e.g.: ip addr add <addr>/<len> dev %s && ip link set %s up\n", f.tap, f.tap)
	}
	if udpEcho != 0 {
		stop, err := startUDPEcho(r.st, udpEcho)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintf(info, "UDP echo on port %d\n", udpEcho)
	}
	if tcpEcho != 0 {
		ln, err := startTCPEcho(r.tcp, tcpEcho)
		if err != nil {
			return fmt.Errorf("--tcp-echo %d: %w", tcpEcho, err)
		}
		defer ln.Close()
		fmt.Fprintf(info, "TCP echo on port %d\n", tcpEcho)
	}
	if httpPort != 0 {
		srv, err := startHTTP(r.tcp, httpPort, "")
		if err != nil {
			return fmt.Errorf("--http %d: %w", httpPort, err)
		}
		defer srv.Close()
		fmt.Fprintf(info, "HTTP on http://%s/\n", netip.AddrPortFrom(r.prefix.Addr(), uint16(httpPort)))
	}
	return r.watch(w, out)
}

// watchOptions are the flags of a stack that runs until told to stop.
type watchOptions struct {
	duration time.Duration
	stats    bool
	conns    bool
	json     bool
}

func (w *watchOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&w.stats, "stats", false, "print the stack's counters that changed (TCP's after the others), every second")
	fs.BoolVar(&w.conns, "conns", false, "print the TCP connection table, like ss -ti: with --stats every second, else at exit")
	fs.DurationVar(&w.duration, "duration", 0, "stop after this long (0: run until interrupted)")
	fs.BoolVar(&w.json, "json", false, `counters as JSON, one object a line: {"time":..., "counters":{...}} every second with --stats (what changed), {"time":"total", ...} at the end; other messages go to standard error`)
}

// watch runs until the duration ends or a signal comes, printing what w
// asks for; at the end it prints the totals.
func (r *runningStack) watch(w watchOptions, out io.Writer) error {
	if w.duration < 0 {
		return usagef("--duration %v: want a positive duration (0: until interrupted)", w.duration)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	var end <-chan time.Time
	if w.duration > 0 {
		end = time.After(w.duration)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	prev := r.counters()
	for {
		select {
		case <-sig:
			if !w.json {
				fmt.Fprintln(out, "interrupted")
			}
			r.printTotals(w, out)
			return nil
		case <-end:
			r.printTotals(w, out)
			return nil
		case <-tick.C:
			if w.stats {
				cur := r.counters()
				printCounters(out, cur.sub(prev), time.Now().Format("15:04:05"), w.json)
				prev = cur
				if w.conns && r.tcp != nil && !w.json {
					formatConns(out, r.tcp.Connections())
				}
			}
		}
	}
}

// printTotals prints the counters since the start and, with --conns, the
// connection table.
func (r *runningStack) printTotals(w watchOptions, out io.Writer) {
	printCounters(out, r.counters(), "total", w.json)
	if w.conns && r.tcp != nil && !w.json {
		formatConns(out, r.tcp.Connections())
	}
}

// counterSnapshot is the stack's counters and, with TCP, TCP's.
type counterSnapshot struct {
	st  stack.Counters
	tcp []tcp.Stat // nil without TCP
}

func (r *runningStack) counters() counterSnapshot {
	c := counterSnapshot{st: r.st.Counters()}
	if r.tcp != nil {
		c.tcp = r.tcp.Counters().All()
	}
	return c
}

// tcpGauge reports whether a TCP counter is a gauge (a level, not a count).
func tcpGauge(name string) bool {
	return name == tcp.CurrEstab.String() || name == tcp.CurrConns.String() || name == tcp.MemoryBytes.String()
}

// sub returns c - prev, counter by counter; gauges keep c's value.
func (c counterSnapshot) sub(prev counterSnapshot) counterSnapshot {
	d := counterSnapshot{st: c.st.Sub(prev.st)}
	if c.tcp != nil {
		d.tcp = make([]tcp.Stat, len(c.tcp))
		for i, s := range c.tcp {
			d.tcp[i] = s
			if !tcpGauge(s.Name) && i < len(prev.tcp) {
				d.tcp[i].Value -= prev.tcp[i].Value
			}
		}
	}
	return d
}

// tcpStatName is a TCP counter's name as Linux's nstat shows it: Tcp before
// the names that do not start with TCP.
func tcpStatName(name string) string {
	if strings.HasPrefix(name, "TCP") {
		return name
	}
	return "Tcp" + name
}

// printCounters prints the non-zero counters of c on one line: the
// stack's, then TCP's; gauges (cache entries, reassembly memory, TCP's
// connections and memory) follow the counters that moved.
//
// With asJSON it prints one JSON object instead: {"time": label,
// "counters": {name: value}, "gauges": {name: value}}, counters that moved
// and gauges that are not zero.
func printCounters(out io.Writer, c counterSnapshot, label string, asJSON bool) {
	if asJSON {
		v := struct {
			Time     string            `json:"time"`
			Counters map[string]uint64 `json:"counters"`
			Gauges   map[string]uint64 `json:"gauges"`
		}{label, map[string]uint64{}, map[string]uint64{}}
		for _, s := range c.st.All() {
			switch {
			case s.Value == 0:
			case s.Name == stack.ARPEntries.String() || s.Name == stack.ReasmMemory.String():
				v.Gauges[s.Name] = s.Value
			default:
				v.Counters[s.Name] = s.Value
			}
		}
		for _, s := range c.tcp {
			switch {
			case s.Value == 0:
			case tcpGauge(s.Name):
				v.Gauges[tcpStatName(s.Name)] = s.Value
			default:
				v.Counters[tcpStatName(s.Name)] = s.Value
			}
		}
		b, _ := json.Marshal(v)
		fmt.Fprintf(out, "%s\n", b)
		return
	}
	var parts, gauges []string
	for _, s := range c.st.All() {
		switch {
		case s.Value == 0:
		case s.Name == stack.ARPEntries.String() || s.Name == stack.ReasmMemory.String():
			gauges = append(gauges, fmt.Sprintf("%s=%d", s.Name, s.Value))
		default:
			parts = append(parts, fmt.Sprintf("%s=%d", s.Name, s.Value))
		}
	}
	for _, s := range c.tcp {
		switch {
		case s.Value == 0:
		case tcpGauge(s.Name):
			gauges = append(gauges, fmt.Sprintf("%s=%d", tcpStatName(s.Name), s.Value))
		default:
			parts = append(parts, fmt.Sprintf("%s=%d", tcpStatName(s.Name), s.Value))
		}
	}
	if len(parts) == 0 {
		parts = []string{"(idle)"}
	}
	parts = append(parts, gauges...)
	fmt.Fprintf(out, "%s %s\n", label, strings.Join(parts, " "))
}
