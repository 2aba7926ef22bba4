package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/internal/pktgen"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/trace/pcap"
)

func init() {
	register(&command{
		name:    "capture",
		summary: "record frames to a pcap file (tcpdump, tshark, Wireshark): what a device receives (--dev), or the wire between two simulated 82599s",
		usage:   "-w FILE.pcap|- [--dev DEVICE [--queues Q] [--duration D]] [--frames N] [--size BYTES|0] [--timeout D] [--max-size BYTES] [--quiet] [--check]",
		run:     runCapture,
	})
}

type captureOptions struct {
	file     string
	dev      string
	queues   int
	duration time.Duration
	frames   int
	size     int
	check    bool
	timeout  time.Duration
	maxSize  byteSize // largest file (0: no limit)
	quiet    bool     // no progress lines
	// stop ends the capture early (SIGINT, SIGTERM); the file is then
	// complete with what was captured so far.
	stop <-chan os.Signal
	// stdout receives the pcap when file is "-" (os.Stdout by default).
	stdout io.Writer
}

// captureResult is what a capture run established.
type captureResult struct {
	sent, received int
	captured       uint64
	limited        bool               // stopped at --max-size
	interrupted    os.Signal          // the signal that stopped the capture early
	tshark         *pcap.TsharkReport // with --check and tshark installed
}

// maxCaptureRate bounds the frames per second a capture of the simulated
// pair can reach (it moves a few hundred thousand); a --frames beyond
// --timeout at this rate is refused before the run.
const maxCaptureRate = 2_000_000

// pcapFileHeader and pcapRecordHeader are the sizes of pcap's headers.
const pcapFileHeader, pcapRecordHeader = 24, 16

func runCapture(args []string) error {
	var o captureOptions
	o.maxSize = 1e9
	fs := newFlagSet("capture")
	fs.StringVar(&o.file, "w", "", "write the capture to this pcap file, or to standard output with -w - (required)")
	fs.StringVar(&o.dev, "dev", "", "capture what this device receives (PCI address through VFIO, or sim), promiscuously, on every queue")
	fs.IntVar(&o.queues, "queues", 1, fmt.Sprintf("with --dev: receive queues to run, 1..%d (RSS spreads flows over them)", ixgbe.MaxQueues))
	fs.DurationVar(&o.duration, "duration", 0, "with --dev: stop after this long (0: at --frames, or at Ctrl-C)")
	fs.IntVar(&o.frames, "frames", 100, "frames to send from the first simulated NIC to the second; with --dev, stop after this many (0: no limit)")
	fs.IntVar(&o.size, "size", 0, fmt.Sprintf("frame size in bytes without FCS, %d..%d; 0 mixes sizes", pktgen.MinFrame, pktgen.MaxFrame))
	fs.BoolVar(&o.check, "check", false, "afterwards, have tshark dissect the file with checksum validation and fail on malformed frames or bad checksums")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up if the frames have not all arrived by then")
	fs.Var(&o.maxSize, "max-size", "stop before the file grows beyond this many bytes (k, M, G: thousands, millions, billions; 0: no limit)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line every second")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := o.validate(fs.Args()); err != nil {
		return err
	}
	// Messages go to standard error when the pcap goes to standard output.
	info := io.Writer(os.Stdout)
	if o.file == "-" {
		info = os.Stderr
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, stopSignals...)
	defer signal.Stop(sig)
	o.stop = sig

	var res captureResult
	var err error
	if o.dev != "" {
		dev, err := openDevice(o.dev)
		if err != nil {
			return err
		}
		defer closeDevice(dev)
		res, err = captureDevice(o, dev, info)
		if err != nil {
			return err
		}
	} else if res, err = captureSimPair(o, info); err != nil {
		return err
	}
	if res.tshark != nil && (res.tshark.Malformed != 0 || res.tshark.BadChecksums != 0 || res.tshark.ExpertErrors != 0) {
		return fmt.Errorf("tshark found problems in %s: %+v", o.file, *res.tshark)
	}
	if res.interrupted != nil {
		return interrupted(res.interrupted)
	}
	return nil
}

// validate checks the arguments and every numeric flag.
func (o *captureOptions) validate(args []string) error {
	switch {
	case len(args) != 0:
		return usagef("unexpected argument %q: capture takes flags only", args[0])
	case o.file == "":
		return usagef("-w FILE is required: the pcap file to write (-w - for standard output)")
	case o.frames < 0:
		return usagef("--frames %d: want 0 or more (0: no limit, with --dev)", o.frames)
	case o.size != 0 && (o.size < pktgen.MinFrame || o.size > pktgen.MaxFrame):
		return usagef("--size %d: want %d..%d bytes, or 0 for mixed sizes", o.size, pktgen.MinFrame, pktgen.MaxFrame)
	case o.maxSize != 0 && o.maxSize < pcapFileHeader+pcapRecordHeader+pktgen.MinFrame:
		return usagef("--max-size %d: too small for one frame; want at least %d bytes (0: no limit)", o.maxSize, pcapFileHeader+pcapRecordHeader+pktgen.MinFrame)
	case o.file == "-" && o.check:
		return usagef("--check needs a file for tshark to read, not -w -")
	}
	if o.dev != "" {
		switch {
		case o.queues < 1 || o.queues > ixgbe.MaxQueues:
			return usagef("--queues %d: want 1..%d", o.queues, ixgbe.MaxQueues)
		case o.duration < 0:
			return usagef("--duration %v: want a positive duration (0: until --frames or Ctrl-C)", o.duration)
		}
		return nil
	}
	switch {
	case o.frames == 0:
		return usagef("--frames 0: the simulated pair needs at least 1 frame to send (0 means no limit only with --dev)")
	case o.timeout <= 0:
		return usagef("--timeout %v: want a positive duration", o.timeout)
	case float64(o.frames) > o.timeout.Seconds()*maxCaptureRate:
		return usagef("--frames %d cannot arrive within --timeout %v: the simulated pair moves far fewer than %d frames a second; raise --timeout or lower --frames",
			o.frames, o.timeout, maxCaptureRate)
	}
	return nil
}

// byteSize is a byte count flag with an optional k, M or G suffix (powers
// of 1000, as tcpdump -C).
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(v string) error {
	mult := int64(1)
	num := v
	if n := len(v); n > 0 {
		switch v[n-1] {
		case 'k', 'K':
			mult, num = 1e3, v[:n-1]
		case 'M':
			mult, num = 1e6, v[:n-1]
		case 'G':
			mult, num = 1e9, v[:n-1]
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q: want a byte count such as 100000, 500M or 2G", v)
	}
	*b = byteSize(n * mult)
	return nil
}

// createPcap opens the capture's destination: the file, or standard output
// for -w -.
func createPcap(o captureOptions) (*pcap.Writer, error) {
	if o.file != "-" {
		return pcap.Create(o.file, pcap.Options{})
	}
	out := o.stdout
	if out == nil {
		out = os.Stdout
	}
	return pcap.NewWriter(out, pcap.Options{})
}

// pcapSize is the size of a pcap file of frames frames of bytes bytes.
func pcapSize(frames, bytes uint64) uint64 {
	return pcapFileHeader + pcapRecordHeader*frames + bytes
}

// captureProgress prints a progress line every second.
type captureProgress struct {
	start, last time.Time
	out         io.Writer
	quiet       bool
}

func newCaptureProgress(out io.Writer, quiet bool) *captureProgress {
	now := time.Now()
	return &captureProgress{start: now, last: now, out: out, quiet: quiet}
}

func (p *captureProgress) tick(w *pcap.Writer, extra string) {
	now := time.Now()
	if p.quiet || now.Sub(p.last) < time.Second {
		return
	}
	p.last = p.last.Add(time.Second)
	frames, bytes := w.Stats()
	fmt.Fprintf(p.out, "  %5.1fs  %d frames, %d bytes of pcap%s\n", now.Sub(p.start).Seconds(), frames, pcapSize(frames, bytes), extra)
}

// captureSimPair wires two simulated 82599s together through a recording
// wire (pcap.Wire), brings both up with the driver, sends o.frames generated
// frames from the first to the second and writes everything the wire
// carried to o.file. With --max-size it sends only the frames that fit.
func captureSimPair(o captureOptions, out io.Writer) (res captureResult, err error) {
	w, err := createPcap(o)
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := w.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	domain := ixgbesim.NewDomain()
	simA, err := ixgbesim.New(ixgbesim.Config{Name: "capA", Domain: domain, Policy: dma.NoHugepages})
	if err != nil {
		return res, err
	}
	defer simA.Close()
	simB, err := ixgbesim.New(ixgbesim.Config{Name: "capB", Domain: domain, Policy: dma.NoHugepages})
	if err != nil {
		return res, err
	}
	defer simB.Close()
	linkA, linkB := pcap.Wire(w, simA, simB, pcap.TapOptions{})
	simA.Attach(linkA)
	simB.Attach(linkB)
	simA.Start()
	simB.Start()
	defer simA.Stop()
	defer simB.Stop()

	nicA, err := ixgbe.New(simA, ixgbe.Config{})
	if err != nil {
		return res, fmt.Errorf("driver on %s: %w", simA.Name(), err)
	}
	defer nicA.Close()
	nicB, err := ixgbe.New(simB, ixgbe.Config{})
	if err != nil {
		return res, fmt.Errorf("driver on %s: %w", simB.Name(), err)
	}
	defer nicB.Close()
	pool, err := dma.NewMempool(nicA.Allocator(), dma.MempoolConfig{Name: "capture-tx", Buffers: 1024})
	if err != nil {
		return res, err
	}
	defer pool.Release()

	var src, dst header.MAC
	copy(src[:], nicA.MAC())
	copy(dst[:], nicB.MAC())
	flow := pktgen.DefaultFlow(0, src, dst)
	sizes := pktgen.Mixed(1)
	if o.size != 0 {
		sizes = pktgen.Fixed(o.size)
	}
	frames := o.frames
	if o.maxSize > 0 {
		// The sizes are known in advance: send what fits.
		seq, size := sizes, uint64(pcapFileHeader)
		for n := 0; n < frames; n++ {
			size += pcapRecordHeader + uint64(seq.Next())
			if size > uint64(o.maxSize) {
				fmt.Fprintf(out, "--max-size %d: the file holds %d of the %d frames; capturing %d\n", o.maxSize, n, o.frames, n)
				frames, res.limited = n, true
				break
			}
		}
	}
	tracker := pktgen.NewTracker()
	const batch = 32
	tx := make([]dma.Packet, batch)
	rx := make([]dma.Packet, batch)
	pending := 0
	start := time.Now()
	deadline := start.Add(o.timeout)
	progress := newCaptureProgress(out, o.quiet)
	projected := false
loop:
	for res.received < frames {
		select {
		case s := <-o.stop:
			res.interrupted = s
			break loop
		default:
		}
		now := time.Now()
		if now.After(deadline) {
			return res, fmt.Errorf("timed out after %v: %d of %d frames sent, %d received (raise --timeout)", o.timeout, res.sent, frames, res.received)
		}
		// After a second, a rate that cannot make the timeout is said at
		// once rather than at the timeout.
		if el := now.Sub(start); !projected && el > min(time.Second, o.timeout/10) && res.received > 0 {
			projected = true
			rate := float64(res.received) / el.Seconds()
			if need := time.Duration(float64(frames) / rate * float64(time.Second)); need > o.timeout {
				return res, fmt.Errorf("at %.0f frames a second, %d frames take about %v, more than --timeout %v: raise --timeout or lower --frames",
					rate, frames, need.Round(time.Second), o.timeout)
			}
		}
		progress.tick(w, "")
		// Keep at most a ring's worth in flight so that B never drops.
		if want := min(batch, frames-res.sent); want > pending && res.sent-res.received < 256 {
			got := pool.AllocBatch(tx[pending:want])
			for i := pending; i < pending+got; i++ {
				pktgen.Build(&tx[i], &flow, uint64(res.sent+i), sizes.Next())
			}
			pending += got
		}
		n, err := nicA.TxBatch(0, tx[:pending])
		if err != nil {
			return res, fmt.Errorf("%s: transmit: %w", nicA.Name(), err)
		}
		copy(tx, tx[n:pending])
		pending -= n
		res.sent += n
		m, err := nicB.RxBatch(0, rx)
		if err != nil {
			return res, fmt.Errorf("%s: receive: %w", nicB.Name(), err)
		}
		for i := range rx[:m] {
			tracker.Observe(rx[i].Data())
			rx[i].Free()
		}
		res.received += m
		if n == 0 && m == 0 {
			time.Sleep(20 * time.Microsecond)
		}
	}
	for i := range tx[:pending] {
		tx[i].Free()
	}
	if res.interrupted == nil && tracker.InOrder != uint64(frames) {
		return res, fmt.Errorf("%d of %d frames arrived intact and in order: %v", tracker.InOrder, frames, tracker.FirstError)
	}
	// Nothing more crosses the wire: the file is complete once flushed.
	simA.Stop()
	simB.Stop()
	if err := w.Flush(); err != nil {
		return res, fmt.Errorf("writing %s (the file is incomplete): %w", o.file, err)
	}
	res.captured, _ = w.Stats()
	if res.interrupted != nil {
		fmt.Fprintf(out, "interrupted (%v): %s holds the %d frames captured so far (a complete pcap)\n", res.interrupted, pcapName(o.file), res.captured)
		return res, nil
	}
	fmt.Fprintf(out, "%s: %d frames from %s (%s) to %s (%s) captured\n", pcapName(o.file), res.captured, nicA.Name(), nicA.MAC(), nicB.Name(), nicB.MAC())
	return res, checkCapture(o, &res, out)
}

// pcapName names the capture's destination in messages.
func pcapName(file string) string {
	if file == "-" {
		return "standard output"
	}
	return file
}

// captureDevice runs the driver on dev in promiscuous mode and writes every
// frame it receives, on every queue, to o.file, until o.frames frames
// (unless 0), o.duration (unless 0), the file reaches o.maxSize (unless 0),
// or a value on o.stop. One goroutine polls all queues, so that each
// queue's pool is freed from the goroutine that receives on it.
func captureDevice(o captureOptions, dev ixgbe.Device, out io.Writer) (res captureResult, err error) {
	w, err := createPcap(o)
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := w.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	nic, err := startDriver(dev, driverConfig{rxQueues: o.queues, txQueues: 1, promiscuous: true})
	if err != nil {
		return res, fmt.Errorf("driver on %s: %w", dev.Name(), err)
	}
	defer nic.Close()
	fmt.Fprintf(out, "capturing on %s (%s, MAC %s, link %s), %d queue(s), to %s\n", nic.Name(), nic.Family(), nic.MAC(), nic.LinkState(), nic.NumRxQueues(), pcapName(o.file))
	var deadline <-chan time.Time
	if o.duration > 0 {
		t := time.NewTimer(o.duration)
		defer t.Stop()
		deadline = t.C
	}
	progress := newCaptureProgress(out, o.quiet)
	pkts := make([]dma.Packet, 32)
	for o.frames == 0 || res.received < o.frames {
		select {
		case s := <-o.stop:
			res.interrupted = s
			return finishDeviceCapture(o, w, nic, res, out)
		case <-deadline:
			return finishDeviceCapture(o, w, nic, res, out)
		default:
		}
		progress.tick(w, "")
		busy := false
		for q := 0; q < nic.NumRxQueues(); q++ {
			n, err := nic.RxBatch(q, pkts)
			if err != nil {
				return res, fmt.Errorf("%s queue %d: %w", nic.Name(), q, err)
			}
			now := time.Now()
			for i := range pkts[:n] {
				frames, bytes := w.Stats()
				if o.maxSize > 0 && pcapSize(frames+1, bytes+uint64(len(pkts[i].Data()))) > uint64(o.maxSize) {
					res.limited = true
				}
				if !res.limited && (o.frames == 0 || res.received < o.frames) {
					_ = w.WriteFrame(now, pkts[i].Data()) // a write error sticks in w and is reported below
					res.received++
				}
				pkts[i].Free()
			}
			busy = busy || n > 0
		}
		if res.limited {
			return finishDeviceCapture(o, w, nic, res, out)
		}
		if !busy {
			time.Sleep(50 * time.Microsecond)
		}
	}
	return finishDeviceCapture(o, w, nic, res, out)
}

func finishDeviceCapture(o captureOptions, w *pcap.Writer, nic nicDriver, res captureResult, out io.Writer) (captureResult, error) {
	if err := w.Flush(); err != nil {
		return res, fmt.Errorf("writing %s (the file is incomplete): %w", pcapName(o.file), err)
	}
	res.captured, _ = w.Stats()
	rxPackets, rxMissed, rxCRCErrors := nic.Counters()
	why := ""
	switch {
	case res.interrupted != nil:
		why = fmt.Sprintf(" (interrupted: %v; a complete pcap)", res.interrupted)
	case res.limited:
		why = fmt.Sprintf(" (stopped at --max-size %d)", o.maxSize)
	}
	fmt.Fprintf(out, "%s: %d frames captured from %s%s (its counters: %d good frames received, %d missed, %d CRC errors)\n",
		pcapName(o.file), res.captured, nic.Name(), why, rxPackets, rxMissed, rxCRCErrors)
	return res, checkCapture(o, &res, out)
}

// checkCapture runs tshark on the capture when --check asks for it.
func checkCapture(o captureOptions, res *captureResult, out io.Writer) error {
	if !o.check {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := pcap.Tshark(ctx, o.file)
	switch {
	case errors.Is(err, pcap.ErrNoTshark):
		fmt.Fprintf(out, "check skipped: %v\n", err)
		return nil
	case err != nil:
		return err
	}
	res.tshark = &rep
	fmt.Fprintf(out, "tshark: %d frames, %d malformed, %d bad checksums, %d expert errors\n",
		rep.Frames, rep.Malformed, rep.BadChecksums, rep.ExpertErrors)
	return nil
}
