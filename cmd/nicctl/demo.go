package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/internal/pktgen"
	"github.com/verinic/verinic/internal/simpair"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/trace"
)

func init() {
	register(&command{
		name:    "demo",
		summary: "two simulated 82599s back to back: generate on one, count on the other (no hardware, no root)",
		usage:   "[--frames N] [--queues Q] [--batch B] [--size BYTES|0] [--ring N] [--window N] [--flow-control] [--offload] [--drop P --corrupt P --duplicate P --reorder P --seed S] [--schedule S] [--trace FILE [--trace-events N]] [--quiet] [--json]",
		run:     runDemo,
	})
}

// What a demo trace takes, measured on the default configuration (batches
// of 32): about 23 ring and application events and 2.8 KB of NDJSON per
// frame, of them 7 the device's truth (doorbell, descriptors at the tail,
// write-back stores), a little more with smaller batches (31 events and
// 3.6 KB with --batch 1). traceEventsMin is a floor used to refuse, before
// the run, a --frames that cannot fit --trace-events.
const (
	traceEventsPerFrame = 24
	traceEventsMin      = 20
	traceBytesPerFrame  = 2800
)

type demoOptions struct {
	frames   uint64
	queues   int
	batch    int
	size     int
	ring     int
	faults   ixgbesim.Faults
	trace    string
	traceCap int
	window   int
	flowCtl  bool
	offload  bool
	quiet    bool
	// scheduleName is --schedule; validate parses it into schedule.
	scheduleName string
	schedule     ixgbesim.Schedule
	// stop ends the run early (SIGINT, SIGTERM): the generators stop, what
	// is in flight drains and the summary covers the frames sent so far.
	stop <-chan os.Signal
	// traceTmp is where the trace is written before it is renamed to
	// trace (made by runDemo when it checks the path; "" to make it here).
	traceTmp string
	// stallAfter ends the run with a diagnosis when no frame has moved for
	// this long (0: defaultStallAfter).
	stallAfter time.Duration
	// stallHook, for tests, runs once the traffic has started (to inject
	// a device fault).
	stallHook func(*demoRig)
	// driverConfig, for tests, adjusts NIC i's driver configuration (to
	// switch on a deliberate driver bug in an ixgbebugs build).
	driverConfig func(i int, cfg ixgbe.Config) ixgbe.Config
}

func runDemo(args []string) error {
	var o demoOptions
	var asJSON bool
	fs := newFlagSet("demo")
	fs.Uint64Var(&o.frames, "frames", 1_000_000, "frames to send from NIC A to NIC B (at least 1)")
	fs.IntVar(&o.queues, "queues", 4, fmt.Sprintf("RX and TX queues per NIC, 1..%d (RSS spreads flows over B's RX queues)", ixgbe.MaxQueues))
	fs.IntVar(&o.batch, "batch", 32, "frames per RxBatch/TxBatch call, 1..--ring")
	fs.IntVar(&o.size, "size", 0, fmt.Sprintf("frame size in bytes without FCS, %d..%d; 0 mixes sizes", pktgen.MinFrame, pktgen.MaxFrame))
	fs.IntVar(&o.ring, "ring", 512, "descriptors per ring (power of two, 64..4096)")
	fs.Float64Var(&o.faults.Drop, "drop", 0, "probability (0..1) that the wire drops a frame")
	fs.Float64Var(&o.faults.Corrupt, "corrupt", 0, "probability (0..1) that the wire corrupts a frame (B counts a CRC error)")
	fs.Float64Var(&o.faults.Duplicate, "duplicate", 0, "probability (0..1) that the wire duplicates a frame")
	fs.Float64Var(&o.faults.Reorder, "reorder", 0, "probability (0..1) that the wire swaps a frame with the next")
	fs.Int64Var(&o.faults.Seed, "seed", 1, "seed of the wire's fault injector and of --schedule random")
	fs.StringVar(&o.scheduleName, "schedule", "", "adversarial device schedule of both simulated NICs, a comma-separated list of "+ixgbesim.ScheduleNames+
		" (doorbell: descriptors fetched at the tail write; status-first: RX write-back stores DD before the length; split: a delay between those stores; random: choices seeded by --seed); the driver must stay correct under each")
	fs.StringVar(&o.trace, "trace", "", fmt.Sprintf("record ring and application events of both NICs to this NDJSON file for nicctl verify: about %d events and %.1f KB of file per frame (more with small --batch); the directory is checked before the run", traceEventsPerFrame, traceBytesPerFrame/1000.0))
	fs.IntVar(&o.traceCap, "trace-events", 30_000_000, fmt.Sprintf("capacity of the trace recorder, in events (about %d per frame); a trace that does not fit is an error and no file is written", traceEventsPerFrame))
	// The default is about what NIC B's 128 KB receive packet buffer
	// (RXPBSIZE[0], datasheet 4.6.7) holds in frames of mixed size, so that
	// a receive engine that is descheduled for a moment loses nothing.
	fs.IntVar(&o.window, "window", defaultDemoWindow, "most frames in flight from generator to counter; default 256, or ring-1 for smaller rings, so that any one of B's rings can hold them all (0: no limit: B drops what it cannot take, and the check counts the drops instead of wanting none)")
	fs.BoolVar(&o.flowCtl, "flow-control", false, "turn on 802.3x link flow control on both NICs: B's MAC pauses A instead of dropping (try with --window 0)")
	fs.BoolVar(&o.offload, "offload", false, "A asks its device for IPv4 and UDP checksum insertion and 802.1Q tag insertion, varying per frame (context descriptors, datasheet 7.2.3.2.3, 7.2.4, 7.2.5); B strips the tags and checks every checksum")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines")
	fs.BoolVar(&asJSON, "json", false, "print the result as one JSON object (no progress or text)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q: demo takes flags only", fs.Arg(0))
	}
	windowSet := false
	fs.Visit(func(f *flag.Flag) { windowSet = windowSet || f.Name == "window" })
	if !windowSet {
		// Every frame in flight may hash to the same queue of B, whose
		// ring holds ring-1 frames (the 82599 keeps one descriptor
		// unused, 7.1.3.1): a larger default window would make a small
		// --ring a drop test.
		o.window = min(defaultDemoWindow, o.ring-1)
	}
	if err := o.validate(); err != nil {
		return err
	}
	if o.trace != "" {
		tmp, err := checkTracePath(o.trace)
		if err != nil {
			return err
		}
		defer os.Remove(tmp) // renamed away when the trace is complete
		o.traceTmp = tmp
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, stopSignals...)
	defer signal.Stop(sig)
	o.stop = sig

	out := io.Writer(os.Stdout)
	if asJSON {
		o.quiet = true
		out = io.Discard
	}
	res, err := demo(o, out)
	if asJSON && res.report != nil {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(res.report); jerr != nil && err == nil {
			err = jerr
		}
	}
	switch {
	case err != nil:
		return err
	case !res.agree:
		return errors.New("the counts do not agree (see above)")
	case res.interrupted != nil:
		return interrupted(res.interrupted)
	}
	return nil
}

// defaultDemoWindow is --window's default for rings of 257 descriptors or
// more.
const defaultDemoWindow = 256

// validate checks every numeric flag against its range.
func (o *demoOptions) validate() error {
	if o.frames == 0 {
		return usagef("--frames 0: want at least 1 frame")
	}
	if o.queues < 1 || o.queues > ixgbe.MaxQueues {
		return usagef("--queues %d: want 1..%d", o.queues, ixgbe.MaxQueues)
	}
	if o.ring < 64 || o.ring > 4096 || o.ring&(o.ring-1) != 0 {
		return usagef("--ring %d: want a power of two in 64..4096", o.ring)
	}
	if o.batch < 1 || o.batch > o.ring {
		return usagef("--batch %d: want 1..%d (the ring size)", o.batch, o.ring)
	}
	if o.size != 0 && (o.size < pktgen.MinFrame || o.size > pktgen.MaxFrame) {
		return usagef("--size %d: want %d..%d bytes, or 0 for mixed sizes", o.size, pktgen.MinFrame, pktgen.MaxFrame)
	}
	if o.window < 0 {
		return usagef("--window %d: want 0 (no limit) or more frames", o.window)
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"drop", o.faults.Drop}, {"corrupt", o.faults.Corrupt}, {"duplicate", o.faults.Duplicate}, {"reorder", o.faults.Reorder}} {
		if !(p.v >= 0 && p.v <= 1) { // also NaN
			return usagef("--%s %v: want a probability in 0..1", p.name, p.v)
		}
	}
	sc, err := ixgbesim.ParseSchedule(o.scheduleName, uint64(o.faults.Seed))
	if err != nil {
		return usagef("--schedule: %v", err)
	}
	o.schedule = sc
	if o.trace != "" {
		if o.traceCap < 1 {
			return usagef("--trace-events %d: want at least 1", o.traceCap)
		}
		if o.frames > uint64(o.traceCap)/traceEventsMin {
			return usagef("--trace-events %d holds about %d frames' events (%d per frame), not --frames %d: raise --trace-events to %d or lower --frames",
				o.traceCap, o.traceCap/traceEventsPerFrame, traceEventsPerFrame, o.frames, (o.frames+o.frames/4)*traceEventsPerFrame)
		}
	}
	return nil
}

// checkTracePath makes sure a trace can be written at path before the run:
// it creates the temporary file the trace goes to (renamed to path when the
// trace is complete, so that no half-written trace is ever at path).
func checkTracePath(path string) (tmp string, err error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return "", fmt.Errorf("--trace %s: a directory; name a file", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("--trace %s: cannot write there: %w", path, err)
	}
	f.Close()
	return f.Name(), nil
}

// demoResult is what a demo run established.
type demoResult struct {
	sent, received uint64
	agree          bool
	interrupted    os.Signal // the signal that stopped the run early, or nil
	report         *demoReport
}

// demoReport is the result as nicctl demo --json prints it.
type demoReport struct {
	NICs          []demoNICReport `json:"nics"`
	Sent          uint64          `json:"sent"`
	SentBytes     uint64          `json:"sent_bytes"`
	Received      uint64          `json:"received"`
	ReceivedBytes uint64          `json:"received_bytes"`
	Wire          struct {
		Delivered, Dropped, Corrupted, Duplicated, Reordered uint64
	} `json:"wire"`
	A struct {
		GPTC, GOTC, XonRx, XoffRx uint64
	} `json:"a"`
	B struct {
		GPRC, GORC, RingFull, Missed, CRCErrors, XonTx, XoffTx uint64
	} `json:"b"`
	Checked struct {
		InOrder, Gaps, Late, Corrupt, Foreign uint64
		Flows                                 int
	} `json:"checked"`
	Seconds        float64      `json:"seconds"`
	Mpps           float64      `json:"mpps"`
	Gbps           float64      `json:"gbps"`
	Checks         []demoCheck  `json:"checks"`
	FirstDeviation string       `json:"first_deviation,omitempty"`
	Interrupted    string       `json:"interrupted,omitempty"`
	Schedule       string       `json:"schedule,omitempty"`
	Trace          *traceReport `json:"trace,omitempty"`
	Agree          bool         `json:"agree"`
}

type demoNICReport struct {
	Name        string `json:"name"`
	MAC         string `json:"mac"`
	Link        string `json:"link"`
	RxQueues    int    `json:"rx_queues"`
	TxQueues    int    `json:"tx_queues"`
	Ring        int    `json:"ring"`
	FlowControl bool   `json:"flow_control"`
}

type traceReport struct {
	File   string `json:"file"`
	Events int    `json:"events"`
}

func demo(o demoOptions, out io.Writer) (demoResult, error) {
	rig, err := newDemoRig(o)
	if err != nil {
		return demoResult{}, err
	}
	defer rig.close()
	rep := &demoReport{}
	for _, n := range []*ixgbe.NIC{rig.nicA, rig.nicB} {
		fc := "off"
		if o.flowCtl {
			fc = "on"
		}
		fmt.Fprintf(out, "%-5s MAC %s  link %s  %d RX / %d TX queues, rings of %d, flow control %s\n",
			n.Name(), n.MAC(), n.Link(), n.NumRxQueues(), n.NumTxQueues(), o.ring, fc)
		rep.NICs = append(rep.NICs, demoNICReport{Name: n.Name(), MAC: n.MAC().String(), Link: n.Link().String(),
			RxQueues: n.NumRxQueues(), TxQueues: n.NumTxQueues(), Ring: o.ring, FlowControl: o.flowCtl})
	}
	if o.schedule != (ixgbesim.Schedule{}) {
		fmt.Fprintf(out, "schedule  %v on both devices (adversarial device timing, ixgbesim.Schedule)\n", o.schedule)
		rep.Schedule = o.schedule.String()
	}

	tr := startDemoTraffic(rig, o)
	if o.stallHook != nil {
		o.stallHook(rig)
	}
	elapsed, sig, err := tr.wait(o, out)
	if err != nil {
		if rig.rec != nil {
			// The trace of a failed (stalled) run is what says why.
			rig.simA.Stop()
			rig.simB.Stop()
			if werr := rig.writeTrace(o); werr == nil {
				fmt.Fprintf(out, "trace     %d events of the failed run written to %s\n", len(rig.rec.Events()), o.trace)
			}
		}
		return demoResult{}, err
	}
	if sig != nil {
		rep.Interrupted = sig.String()
	}

	c := rig.counts(tr)
	c.report(out, o.flowCtl, elapsed, rep)
	checks := demoChecks(c, o.promise())
	// Stop both drivers while the devices still run, so that TX drains and
	// every buffer comes home; then every pool must be full again.
	errA, errB := rig.nicA.Stop(), rig.nicB.Stop()
	checks = append(checks, demoCheck{"every mempool full again after the drivers stopped", errA == nil && errB == nil && rig.poolsFull()})
	agree := true
	for _, c := range checks {
		mark := "ok  "
		if !c.OK {
			mark, agree = "FAIL", false
		}
		fmt.Fprintf(out, "  %s %s\n", mark, c.What)
	}
	rep.Checks, rep.Agree = checks, agree
	if c.tracker.FirstError != nil && !agree {
		fmt.Fprintf(out, "first deviation: %v\n", c.tracker.FirstError)
		rep.FirstDeviation = c.tracker.FirstError.Error()
	}
	// The simulator's ownership report: which descriptor, buffer and rule.
	for _, sim := range []*ixgbesim.NIC{rig.simA, rig.simB} {
		if v := sim.Violations(); len(v) > 0 {
			fmt.Fprintf(out, "ownership %s: %d violations, first: %v\n", sim.Name(), sim.ViolationCount(), v[0])
		}
	}
	for _, err := range []error{errA, errB} {
		if err != nil {
			fmt.Fprintf(out, "stopping: %v\n", err)
		}
	}
	res := demoResult{sent: c.sent, received: c.tracker.Received, agree: agree, interrupted: sig, report: rep}
	if rig.rec != nil {
		rig.simA.Stop() // no device events after this point
		rig.simB.Stop()
		if err := rig.writeTrace(o); err != nil {
			return res, err
		}
		rep.Trace = &traceReport{File: o.trace, Events: len(rig.rec.Events())}
		fmt.Fprintf(out, "trace     %d events written to %s\n", len(rig.rec.Events()), o.trace)
	}
	if agree {
		fmt.Fprintln(out, "counts agree")
	}
	return res, nil
}

// demoPromise is what a run promises about loss: nothing lost when no
// fault is injected and the window or flow control keeps B from dropping;
// with --window 0 and no flow control B may drop, and every drop must then
// be one B counted.
type demoPromise int

const (
	promiseNone    demoPromise = iota // faults injected: only the accounting holds
	promiseNoLoss                     // every frame arrives, in order
	promiseCounted                    // every frame arrives in order or B counts it dropped
)

func (o demoOptions) promise() demoPromise {
	switch {
	case o.faults != (ixgbesim.Faults{Seed: o.faults.Seed}):
		return promiseNone
	case o.window > 0 || o.flowCtl:
		return promiseNoLoss
	default:
		return promiseCounted
	}
}

// demoRig is the demo's set-up: two simulated 82599s on ordinary pages
// (the simulator needs no hugepages) joined by a cable, a driver on each,
// and a transmit mempool per queue of A.
type demoRig struct {
	rec        *trace.Recorder
	domain     *ixgbesim.Domain
	simA, simB *ixgbesim.NIC
	cable      *ixgbesim.Cable
	nicA, nicB *ixgbe.NIC
	txPools    []*dma.Mempool
	closers    []func()
}

func newDemoRig(o demoOptions) (_ *demoRig, err error) {
	r := &demoRig{}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	if o.trace != "" {
		r.rec = trace.NewRecorder(o.traceCap)
	}
	// Simulated NICs need no hugepages: ordinary pages, and no warning.
	pair, err := simpair.New(simpair.Config{Policy: dma.NoHugepages, Trace: r.rec, AB: &o.faults, Schedule: o.schedule})
	if err != nil {
		return nil, err
	}
	r.closers = append(r.closers, pair.Close) // both engines stop before either NIC closes
	r.domain, r.simA, r.simB, r.cable = pair.Domain, pair.A, pair.B, pair.Cable
	for i, p := range []**ixgbe.NIC{&r.nicA, &r.nicB} {
		sim := []*ixgbesim.NIC{r.simA, r.simB}[i]
		cfg := ixgbe.Config{RxQueues: o.queues, TxQueues: o.queues, RxRingSize: o.ring, TxRingSize: o.ring,
			Trace: r.rec, DevID: uint16(i), FlowControl: o.flowCtl,
			VLANStrip: o.offload && i == 1} // --offload: B strips the tags A inserts
		if o.driverConfig != nil {
			cfg = o.driverConfig(i, cfg)
		}
		n, err := ixgbe.New(sim, cfg)
		if err != nil {
			return nil, fmt.Errorf("driver on %s: %w", sim.Name(), err)
		}
		*p = n
		r.closers = append(r.closers, func() { n.Close() })
	}
	// One transmit pool per TX queue, owned by that queue's goroutine (the
	// driver frees sent buffers into it from the same goroutine).
	for q := 0; q < o.queues; q++ {
		p, err := dma.NewMempool(r.nicA.Allocator(), dma.MempoolConfig{Name: fmt.Sprintf("demo-tx%d", q), Buffers: 2 * o.ring})
		if err != nil {
			return nil, err
		}
		r.txPools = append(r.txPools, p)
		r.closers = append(r.closers, func() { p.Release() })
	}
	return r, nil
}

// close releases what newDemoRig made, last first.
func (r *demoRig) close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
	r.closers = nil
}

// poolsFull reports whether every mempool holds all its buffers again.
func (r *demoRig) poolsFull() bool {
	for _, p := range r.txPools {
		if p.Available() != p.Size() {
			return false
		}
	}
	for q := 0; q < r.nicB.NumRxQueues(); q++ {
		if p := r.nicB.RxPool(q); p.Available() != p.Size() {
			return false
		}
	}
	return true
}

// writeTrace writes the recorded trace to its temporary file and renames
// it into place; a trace that did not fit the recorder is an error, and
// then no file is left.
func (r *demoRig) writeTrace(o demoOptions) error {
	tmp := o.traceTmp
	if tmp == "" {
		var err error
		if tmp, err = checkTracePath(o.trace); err != nil {
			return err
		}
	}
	var pools []trace.PoolInfo // A's transmit pools
	for _, p := range r.txPools {
		pools = append(pools, ixgbe.TracePool(0, p))
	}
	return commitTrace(o.trace, tmp, r.rec, []traceNIC{r.nicA, r.nicB}, pools, ", or lower --frames")
}

// nicBDrops is what NIC B dropped in hardware so far (ring full, missed,
// CRC errors), from its counters.
func nicBDrops(n *ixgbe.NIC) uint64 {
	st := n.Stats()
	d := st.RxMissed + st.RxCRCErrors
	for _, q := range st.Queues {
		d += q.RxDrops
	}
	return d
}
