package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/pktgen"
	"github.com/verinic/verinic/trace/pcap"
)

func init() {
	register(&command{
		name:    "capture",
		summary: "record the frames on the wire between two simulated 82599s to a pcap file (tcpdump, tshark, Wireshark)",
		usage:   "-w FILE.pcap [--frames N] [--size BYTES|0] [--check]",
		run:     runCapture,
	})
}

type captureOptions struct {
	file    string
	frames  int
	size    int
	check   bool
	timeout time.Duration
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
	fs.IntVar(&o.frames, "frames", 100, "frames to send from the first simulated NIC to the second")
	fs.IntVar(&o.size, "size", 0, "frame size in bytes without FCS, 60..1514; 0 mixes sizes")
	fs.BoolVar(&o.check, "check", false, "afterwards, have tshark dissect the file with checksum validation and fail on malformed frames or bad checksums")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up if the frames have not all arrived by then")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 || o.file == "" || o.frames < 0 || (o.size != 0 && (o.size < pktgen.MinFrame || o.size > pktgen.MaxFrame)) {
		return errUsage
	}
	res, err := captureSimPair(o, os.Stdout)
	if err != nil {
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
	if o.check {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		rep, err := pcap.Tshark(ctx, o.file)
		switch {
		case errors.Is(err, pcap.ErrNoTshark):
			fmt.Fprintf(out, "check skipped: %v\n", err)
		case err != nil:
			return res, err
		default:
			res.tshark = &rep
			fmt.Fprintf(out, "tshark: %d frames, %d malformed, %d bad checksums, %d expert errors\n",
				rep.Frames, rep.Malformed, rep.BadChecksums, rep.ExpertErrors)
		}
	}
	return res, nil
}
