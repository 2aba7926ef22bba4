package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
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
		summary: "check a recorded trace: ring protocol against the TLA+ specs' Go transcription, the simulated device's view against the driver's posts (device truth), FIFO linearizability with porcupine; TCP byte streams with porcupine and TCP protocol",
		usage:   "[--segment OPS] [--timeout D] [--html DIR] [--json] FILE",
		run:     runVerify,
	})
}

func runVerify(args []string) error {
	fs := newFlagSet("verify")
	segment := fs.Int("segment", 4000, "largest porcupine history checked at once (operations)")
	timeout := fs.Duration("timeout", 60*time.Second, "time limit per porcupine history")
	htmlDir := fs.String("html", "", "directory for porcupine's HTML visualization on failure (default: next to FILE)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object: the trace's counts and each check's name, result (held, failed, skipped) and detail")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("name one trace file")
	}
	if *segment < 1 {
		return usagef("--segment %d: want 1 or more operations", *segment)
	}
	if *timeout <= 0 {
		return usagef("--timeout %v: want a positive duration", *timeout)
	}
	path := fs.Arg(0)
	dir := *htmlDir
	if dir == "" {
		dir = filepath.Dir(path)
	}
	out := io.Writer(os.Stdout)
	if *asJSON {
		out = io.Discard
	}
	rep, err := verifyTraceReport(out, path, models.FIFOOptions{SegmentOps: *segment, Timeout: *timeout,
		VisualizeDir: dir, Prefix: strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)) + "-porcupine"})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	if !rep.OK {
		return fmt.Errorf("%s: verification failed", path)
	}
	return nil
}

// verifyReport is what verify --json prints.
type verifyReport struct {
	File       string        `json:"file"`
	Schema     string        `json:"schema"`
	Version    int           `json:"version"`
	Note       string        `json:"note,omitempty"`
	Events     int           `json:"events"`
	RingEvents int           `json:"ring_events"`
	AppEvents  int           `json:"app_events"`
	TCPEvents  int           `json:"tcp_events"`
	Devices    int           `json:"devices"`
	Checks     []verifyCheck `json:"checks"`
	OK         bool          `json:"ok"`
}

// verifyCheck is one verdict line of the text output: "HELD   name: detail",
// "FAILED name: detail" or "SKIPPED name: detail", with the indented lines
// after it.
type verifyCheck struct {
	Name   string `json:"name"`
	Result string `json:"result"` // held, failed, skipped
	Detail string `json:"detail"`
}

// verdictWriter passes the text output on and collects its verdict lines.
type verdictWriter struct {
	w       io.Writer
	partial []byte
	checks  []verifyCheck
}

func (v *verdictWriter) Write(p []byte) (int, error) {
	v.partial = append(v.partial, p...)
	for {
		i := bytes.IndexByte(v.partial, '\n')
		if i < 0 {
			break
		}
		v.line(string(v.partial[:i]))
		v.partial = v.partial[i+1:]
	}
	return v.w.Write(p)
}

func (v *verdictWriter) line(l string) {
	for _, r := range []struct{ prefix, result string }{{"HELD   ", "held"}, {"FAILED ", "failed"}, {"SKIPPED ", "skipped"}} {
		if rest, ok := strings.CutPrefix(l, r.prefix); ok {
			name, detail, _ := strings.Cut(rest, ": ")
			v.checks = append(v.checks, verifyCheck{Name: name, Result: r.result, Detail: detail})
			return
		}
	}
	if n := len(v.checks); n > 0 && strings.HasPrefix(l, "  ") {
		v.checks[n-1].Detail += "\n" + strings.TrimSpace(l)
	}
}

// pcapMagic reports whether b starts like a pcap or pcapng file.
func pcapMagic(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1, 0x0a0d0d0a:
		return true
	}
	return false
}

// verifyTrace runs every check over the trace at path, printing what held,
// and reports whether all did.
func verifyTrace(w io.Writer, path string, opt models.FIFOOptions) (bool, error) {
	rep, err := verifyTraceReport(w, path, opt)
	return rep.OK, err
}

// verifyTraceReport is verifyTrace, with the verdicts collected.
func verifyTraceReport(out io.Writer, path string, opt models.FIFOOptions) (verifyReport, error) {
	vw := &verdictWriter{w: out}
	rep := verifyReport{File: path}
	ok, err := verifyTraceTo(vw, path, opt, &rep)
	rep.Checks, rep.OK = vw.checks, ok && err == nil
	if rep.Checks == nil {
		rep.Checks = []verifyCheck{}
	}
	return rep, err
}

func verifyTraceTo(w io.Writer, path string, opt models.FIFOOptions, vr *verifyReport) (bool, error) {
	start := time.Now()
	if f, err := os.Open(path); err == nil {
		var magic [4]byte
		n, _ := io.ReadFull(f, magic[:])
		f.Close()
		if pcapMagic(magic[:n]) {
			return false, fmt.Errorf("%s is a pcap capture (tcpdump, Wireshark), not a trace: verify checks the NDJSON traces that nicctl demo --trace writes; read a capture with tshark -r %s", path, path)
		}
	}
	h, evs, err := trace.ReadFile(path)
	if errors.Is(err, trace.ErrSchema) {
		return false, fmt.Errorf("%w (verify reads the traces that nicctl demo --trace and trace.WriteFile write)", err)
	}
	if err != nil {
		return false, err
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
	vr.Schema, vr.Version, vr.Note, vr.Events, vr.RingEvents, vr.AppEvents, vr.TCPEvents, vr.Devices =
		h.Schema, h.Version, h.Note, len(evs), ringEvents, appEvents, tcpEvents, len(h.Devices)
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
		fmt.Fprintf(w, "HELD   ring protocol (tla/TxRing.tla, tla/RxRing.tla via models/; driver observations %s): %d ring events on %d rings replayed in %v\n",
			models.ObservationChecks(h, evs), rep.Events, len(rep.Rings), time.Since(t0).Round(time.Millisecond))
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

	all = reportDeviceTruth(w, rep.Truth) && all

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

// reportDeviceTruth prints the device-truth section (models/devtruth.go):
// what the simulated device saw at each doorbell and did in memory, held
// against the driver's posts, and every violation the device found, each
// with its detail. It reports whether it held (or had nothing to check).
func reportDeviceTruth(w io.Writer, tr *models.TruthReport) bool {
	const name = "device truth (the device's view at each doorbell, its stores and violations)"
	switch {
	case tr == nil || !tr.Recorded():
		fmt.Fprintf(w, "SKIPPED %s: the trace has no device-truth events (schema version 3, recorded by the simulator)\n", name)
		return true
	case tr.OK():
		fmt.Fprintf(w, "HELD   %s: %d doorbells, %d descriptors handed over as the driver posted them (%s, %s), %d device stores, %s\n",
			name, tr.Doorbells, tr.Descriptors, models.CheckDescriptorMatchesPost, models.CheckHandedOverOnlyPosted, tr.Stores, models.CheckNoDeviceViolation)
		return true
	}
	var parts []string
	for _, c := range []string{models.CheckHandedOverOnlyPosted, models.CheckDescriptorMatchesPost, models.CheckNoDeviceViolation} {
		if n := tr.ByCheck[c]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c, n))
		}
	}
	rules := make([]string, 0, len(tr.ByRule))
	for r, n := range tr.ByRule {
		rules = append(rules, fmt.Sprintf("%s %d", r, n))
	}
	sort.Strings(rules)
	fmt.Fprintf(w, "FAILED %s: %d violations (%s), %d doorbells, %d descriptors handed over, %d device stores\n",
		name, tr.FailCount, strings.Join(parts, ", "), tr.Doorbells, tr.Descriptors, tr.Stores)
	if len(rules) > 0 {
		fmt.Fprintf(w, "  rules the device saw broken: %s\n", strings.Join(rules, ", "))
	}
	for _, f := range tr.Failures {
		fmt.Fprintf(w, "  %v\n", f)
	}
	if more := tr.FailCount - len(tr.Failures); more > 0 {
		fmt.Fprintf(w, "  ... and %d more of the same checks\n", more)
	}
	return false
}
