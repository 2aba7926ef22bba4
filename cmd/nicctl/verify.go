package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/verinic/verinic/models"
	"github.com/verinic/verinic/trace"
)

func init() {
	register(&command{
		name:    "verify",
		summary: "check a recorded trace: ring protocol against the TLA+ specs' Go transcription, FIFO linearizability with porcupine; TCP byte streams with porcupine and TCP protocol",
		usage:   "[--segment OPS] [--timeout D] [--html DIR] FILE",
		run:     runVerify,
	})
}

func runVerify(args []string) error {
	fs := newFlagSet("verify")
	segment := fs.Int("segment", 4000, "largest porcupine history checked at once (operations)")
	timeout := fs.Duration("timeout", 60*time.Second, "time limit per porcupine history")
	htmlDir := fs.String("html", "", "directory for porcupine's HTML visualization on failure (default: next to FILE)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errUsage
	}
	path := fs.Arg(0)
	dir := *htmlDir
	if dir == "" {
		dir = filepath.Dir(path)
	}
	ok, err := verifyTrace(os.Stdout, path, models.FIFOOptions{SegmentOps: *segment, Timeout: *timeout,
		VisualizeDir: dir, Prefix: strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)) + "-porcupine"})
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s: verification failed", path)
	}
	return nil
}

// verifyTrace runs every check over the trace at path, printing what held,
// and reports whether all did.
func verifyTrace(w io.Writer, path string, opt models.FIFOOptions) (bool, error) {
	start := time.Now()
	h, evs, err := trace.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("reading the trace (is it a file written by nicctl demo --trace or trace.WriteFile?): %w", err)
	}
	ringEvents, appEvents, tcpEvents := 0, 0, 0
	for _, e := range evs {
		switch {
		case e.Kind >= trace.DrvPost && e.Kind <= trace.DevDrop:
			ringEvents++
		case e.Kind >= trace.AppCallTx && e.Kind <= trace.AppPacket:
			appEvents++
		case e.Kind.IsTCP():
			tcpEvents++
		}
	}
	tcpNote := ""
	if tcpEvents > 0 {
		tcpNote = fmt.Sprintf(", %d TCP", tcpEvents)
	}
	fmt.Fprintf(w, "trace %s: schema %s v%d, %d events (%d ring, %d application%s), %d devices, read in %v\n",
		path, h.Schema, h.Version, len(evs), ringEvents, appEvents, tcpNote, len(h.Devices), time.Since(start).Round(time.Millisecond))
	if h.Note != "" {
		fmt.Fprintf(w, "  note: %s\n", h.Note)
	}
	all := true
	if tcpEvents > 0 && ringEvents == 0 && appEvents == 0 {
		fmt.Fprintf(w, "SKIPPED ring protocol, ring FIFO, wire FIFO: the trace has no ring or frame events\n")
		return verifyTCP(w, h, evs, opt), nil
	}

	t0 := time.Now()
	rep, err := models.ValidateRings(h, evs)
	if err != nil {
		return false, err
	}
	if rep.Violation == nil {
		fmt.Fprintf(w, "HELD   ring protocol (tla/TxRing.tla, tla/RxRing.tla via models/): %d ring events on %d rings replayed in %v\n",
			rep.Events, len(rep.Rings), time.Since(t0).Round(time.Millisecond))
	} else {
		all = false
		fmt.Fprintf(w, "FAILED ring protocol: after %d ring events, no action of the spec explains\n  %v\n", rep.Events, rep.Violation)
	}
	keys := make([]models.RingKey, 0, len(rep.Rings))
	for k := range rep.Rings {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		st := rep.Rings[k]
		fmt.Fprintf(w, "         %s: ring %d, %d events, %d driver and %d device steps, %d device steps inferred, %d buffers\n",
			k, st.Size, st.Events, st.DriverSteps, st.DeviceSteps, st.Implied, st.Buffers)
	}

	report := func(name string, fr *models.FIFOReport, took time.Duration) {
		switch fr.Result {
		case porcupine.Ok:
			fmt.Fprintf(w, "HELD   %s: linearizable; %d partitions, %d operations in %d histories (largest %d) in %v\n",
				name, fr.Partitions, fr.Ops, fr.Segments, fr.LargestSeg, took.Round(time.Millisecond))
		default:
			all = false
			verdict := "not linearizable"
			if fr.Result == porcupine.Unknown {
				verdict = "undecided (time limit)"
			}
			fmt.Fprintf(w, "FAILED %s: %s in partition %s, history starting at %s\n", name, verdict, fr.Failed, fr.FailedWhere)
			if fr.HTML != "" {
				fmt.Fprintf(w, "         visualization: %s\n", fr.HTML)
			}
		}
	}
	t0 = time.Now()
	ring, err := models.CheckRingFIFO(evs, opt)
	if err != nil {
		return false, err
	}
	report("ring FIFO (porcupine: buffers posted by the driver, taken by the device)", ring, time.Since(t0))
	if appEvents == 0 {
		fmt.Fprintf(w, "SKIPPED wire FIFO: the trace has no application events (app_call_*/app_packet)\n")
	} else {
		t0 = time.Now()
		wire, err := models.CheckWireFIFO(evs, opt)
		if err != nil {
			return false, err
		}
		report("wire FIFO (porcupine: TxBatch to RxBatch frames as a lossy FIFO)", wire, time.Since(t0))
	}
	if tcpEvents > 0 {
		all = verifyTCP(w, h, evs, opt) && all
	}
	return all, nil
}
