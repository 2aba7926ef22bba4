package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"unsafe"

	"github.com/verinic/verinic/trace"
)

// nicctl sim and nicctl serve record, with --trace FILE, one trace of the
// whole run: the ring engine's events of every driver (advring), the
// simulated devices' own events where the device is the simulator (device
// truth, schema v3), and TCP's events (segments, state changes, timers and
// the application's reads, writes and closes with their bytes, trace/tcp.go)
// of every stack. The file is written when the command stops (a signal or
// --duration; serve --dev sim when its client is done), to a temporary file
// renamed into place, so that no half-written trace is ever at FILE; nicctl
// verify checks it. Without --trace the recorder is nil and nothing is
// recorded (every recording call returns at once).

// traceEventBytes is what one event takes in the recorder.
const traceEventBytes = int(unsafe.Sizeof(trace.Event{}))

// What a trace of the stack takes, measured on serve --dev sim (both ends:
// TCP's events and the rings and device events of both NICs): about 24
// events per KB of TCP payload moved (23.7 with --fetch-size 300000, 21 with
// 1000000) and 2,600 besides (--fetch-size 0: link up, ARP, the handshake,
// the page and the connection table). stackTraceEventsPerKB and
// stackTraceEventsFixed are floors below those, used to refuse before the
// run a --fetch-size whose trace surely cannot fit --trace-events.
const (
	stackTraceEventsPerKB = 16
	stackTraceEventsFixed = 2000
)

// traceFlags are --trace, --trace-events and --trace-data of a command that
// runs a stack.
type traceFlags struct {
	path   string
	events int
	data   int
	tmp    string // the temporary file the trace goes to (check)
}

func (t *traceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.path, "trace", "", "record the drivers' ring events, the simulated devices' events and TCP's events (segments, states, timers, the application's reads and writes with their bytes) to this NDJSON file, written when the command stops, for nicctl verify; the directory is checked before the run")
	fs.IntVar(&t.events, "trace-events", 2_000_000, fmt.Sprintf("capacity of the trace recorder, in events (%d bytes each, touched only as used; about %d per KB of TCP payload); a trace that does not fit is an error and no file is written", traceEventBytes, 24))
	fs.IntVar(&t.data, "trace-data", 64<<20, "bytes of application data (TCP reads and writes) the trace keeps for verify's byte-stream check; beyond them events are kept without their bytes")
}

// check refuses, before the run, a trace that cannot be recorded: a
// capacity below 1 or below need events (0: unknown), a recorder larger
// than the memory available, a file that cannot be written. It makes the
// temporary file the trace is written to (removed by discard, or renamed
// by write).
func (t *traceFlags) check(need int) error {
	if t.path == "" {
		return nil
	}
	if t.events < 1 {
		return usagef("--trace-events %d: want at least 1", t.events)
	}
	if t.data < 0 {
		return usagef("--trace-data %d: want 0 or more bytes", t.data)
	}
	if need > t.events {
		return usagef("--trace-events %d cannot hold this run's trace (about %d events or more): raise --trace-events to %d or move fewer bytes", t.events, need, need+need/4)
	}
	if avail, err := memAvailable(); err == nil {
		if want := uint64(t.events)*uint64(traceEventBytes) + uint64(t.data); want > avail {
			return usagef("--trace-events %d and --trace-data %d take %d MB, more than the %d MB of memory available: lower them", t.events, t.data, want>>20, avail>>20)
		}
	}
	tmp, err := checkTracePath(t.path)
	if err != nil {
		return err
	}
	t.tmp = tmp
	return nil
}

// recorder returns the recorder --trace asks for (nil without --trace).
func (t *traceFlags) recorder() *trace.Recorder {
	if t.path == "" {
		return nil
	}
	return trace.NewRecorderWithData(t.events, t.data)
}

// discard removes the temporary file of a trace that was not written.
func (t *traceFlags) discard() {
	if t.tmp != "" {
		os.Remove(t.tmp)
		t.tmp = ""
	}
}

// write writes rec (every recording actor stopped) with a header for nics
// (numbered by position, as their DevIDs are) and the stacks' own pools to
// the temporary file and
// renames it to --trace; it prints what it wrote. A trace that did not fit
// the recorder is an error, and then no file is left.
func (t *traceFlags) write(rec *trace.Recorder, nics []traceNIC, pools []trace.PoolInfo, out io.Writer) error {
	defer t.discard()
	if err := commitTrace(t.path, t.tmp, rec, nics, pools, ""); err != nil {
		return err
	}
	t.tmp = ""
	kept := ""
	if dd := rec.DataDropped(); dd > 0 {
		kept = fmt.Sprintf(" (%d bytes of application data beyond --trace-data kept as lengths only)", dd)
	}
	fmt.Fprintf(out, "trace %d events written to %s%s\n", len(rec.Events()), t.path, kept)
	return nil
}
