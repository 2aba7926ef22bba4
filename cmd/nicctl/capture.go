package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
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
		usage:   "-w FILE.pcap [--dev DEVICE [--queues Q] [--duration D]] [--frames N] [--size BYTES|0] [--check]",
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
}

// captureResult is what a capture run established.
type captureResult struct {
	sent, received int
	captured       uint64
	tshark         *pcap.TsharkReport // with --check and tshark installed
}

func runCapture(args []string) error {
	var o captureOptions
	fs := newFlagSet("capture")
	fs.StringVar(&o.file, "w", "", "write the capture to this pcap file (required)")
	fs.StringVar(&o.dev, "dev", "", "capture what this device receives (PCI address through VFIO, or sim), promiscuously, on every queue")
	fs.IntVar(&o.queues, "queues", 1, "with --dev: receive queues to run (RSS spreads flows over them)")
	fs.DurationVar(&o.duration, "duration", 0, "with --dev: stop after this long (0: at --frames, or at Ctrl-C)")
	fs.IntVar(&o.frames, "frames", 100, "frames to send from the first simulated NIC to the second; with --dev, stop after this many (0: no limit)")
	fs.IntVar(&o.size, "size", 0, "frame size in bytes without FCS, 60..1514; 0 mixes sizes")
	fs.BoolVar(&o.check, "check", false, "afterwards, have tshark dissect the file with checksum validation and fail on malformed frames or bad checksums")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up if the frames have not all arrived by then")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 || o.file == "" || o.frames < 0 || (o.size != 0 && (o.size < pktgen.MinFrame || o.size > pktgen.MaxFrame)) {
		return errUsage
	}
	var res captureResult
	var err error
	if o.dev != "" {
		if o.queues < 1 || o.queues > ixgbe.MaxQueues {
			return errUsage
		}
		dev, err := openDevice(o.dev)
		if err != nil {
			return err
		}
		defer closeDevice(dev)
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt)
		defer signal.Stop(stop)
		res, err = captureDevice(o, dev, stop, os.Stdout)
		if err != nil {
			return err
		}
	} else if res, err = captureSimPair(o, os.Stdout); err != nil {
		return err
	}
	if res.tshark != nil && (res.tshark.Malformed != 0 || res.tshark.BadChecksums != 0 || res.tshark.ExpertErrors != 0) {
		return fmt.Errorf("tshark found problems in %s: %+v", o.file, *res.tshark)
	}
	return nil
}

// captureSimPair wires two simulated 82599s together through a recording
// wire (pcap.Wire), brings both up with the driver, sends o.frames generated
// frames from the first to the second and writes everything the wire
// carried to o.file.
func captureSimPair(o captureOptions, out io.Writer) (res captureResult, err error) {
	w, err := pcap.Create(o.file, pcap.Options{})
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
	tracker := pktgen.NewTracker()
	const batch = 32
	tx := make([]dma.Packet, batch)
	rx := make([]dma.Packet, batch)
	pending := 0
	deadline := time.Now().Add(o.timeout)
	for res.received < o.frames {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("timed out after %v: %d of %d frames sent, %d received", o.timeout, res.sent, o.frames, res.received)
		}
		// Keep at most a ring's worth in flight so that B never drops.
		if want := min(batch, o.frames-res.sent); want > pending && res.sent-res.received < 256 {
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
	if tracker.InOrder != uint64(o.frames) {
		return res, fmt.Errorf("%d of %d frames arrived intact and in order: %v", tracker.InOrder, o.frames, tracker.FirstError)
	}
	if err := w.Flush(); err != nil {
		return res, err
	}
	res.captured, _ = w.Stats()
	fmt.Fprintf(out, "%s: %d frames from %s (%s) to %s (%s) captured\n", o.file, res.captured, nicA.Name(), nicA.MAC(), nicB.Name(), nicB.MAC())
	return res, checkCapture(o, &res, out)
}

// captureDevice runs the driver on dev in promiscuous mode and writes every
// frame it receives, on every queue, to o.file, until o.frames frames
// (unless 0), o.duration (unless 0), or a value on stop. One goroutine polls
// all queues, so that each queue's pool is freed from the goroutine that
// receives on it.
func captureDevice(o captureOptions, dev ixgbe.Device, stop <-chan os.Signal, out io.Writer) (res captureResult, err error) {
	w, err := pcap.Create(o.file, pcap.Options{})
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := w.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	nic, err := ixgbe.New(dev, ixgbe.Config{RxQueues: o.queues, TxQueues: 1, Promiscuous: true})
	if err != nil {
		return res, fmt.Errorf("driver on %s: %w", dev.Name(), err)
	}
	defer nic.Close()
	fmt.Fprintf(out, "capturing on %s (MAC %s, link %s), %d queue(s), to %s\n", nic.Name(), nic.MAC(), nic.Link(), nic.NumRxQueues(), o.file)
	var deadline <-chan time.Time
	if o.duration > 0 {
		t := time.NewTimer(o.duration)
		defer t.Stop()
		deadline = t.C
	}
	pkts := make([]dma.Packet, 32)
	for o.frames == 0 || res.received < o.frames {
		select {
		case <-stop:
			return finishDeviceCapture(o, w, nic, res, out)
		case <-deadline:
			return finishDeviceCapture(o, w, nic, res, out)
		default:
		}
		busy := false
		for q := 0; q < nic.NumRxQueues(); q++ {
			n, err := nic.RxBatch(q, pkts)
			if err != nil {
				return res, fmt.Errorf("%s queue %d: %w", nic.Name(), q, err)
			}
			now := time.Now()
			for i := range pkts[:n] {
				if o.frames == 0 || res.received < o.frames {
					_ = w.WriteFrame(now, pkts[i].Data()) // a write error sticks in w and is reported below
					res.received++
				}
				pkts[i].Free()
			}
			busy = busy || n > 0
		}
		if !busy {
			time.Sleep(50 * time.Microsecond)
		}
	}
	return finishDeviceCapture(o, w, nic, res, out)
}

func finishDeviceCapture(o captureOptions, w *pcap.Writer, nic *ixgbe.NIC, res captureResult, out io.Writer) (captureResult, error) {
	if err := w.Flush(); err != nil {
		return res, fmt.Errorf("writing %s: %w", o.file, err)
	}
	res.captured, _ = w.Stats()
	st := nic.Stats()
	fmt.Fprintf(out, "%s: %d frames captured from %s (its counters: %d good frames received, %d missed, %d CRC errors)\n",
		o.file, res.captured, nic.Name(), st.RxPackets, st.RxMissed, st.RxCRCErrors)
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
