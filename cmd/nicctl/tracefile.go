package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/verinic/verinic/trace"
)

// traceNIC is what a trace header says of a driver's NIC (*ixgbe.NIC and
// *igb.NIC have it).
type traceNIC interface {
	Name() string
	NumRxQueues() int
	NumTxQueues() int
	RxRingSize() int
	TxRingSize() int
	TracePools() []trace.PoolInfo
}

// writeTrace writes the recorder's events to path with a header describing
// the NICs' rings (device numbers are the NICs' positions in nics, which is
// how the demo numbers them in its configs) and the buffer grids of their
// receive pools and of the application's pools (trace/SCHEMA.md "pools").
func writeTrace(path string, rec *trace.Recorder, nics []traceNIC, pools []trace.PoolInfo) error {
	h := trace.Header{Schema: trace.SchemaName, Version: trace.SchemaVersion, Clock: trace.ClockMonotonicNS,
		Note: "nicctl " + strings.Join(commandLine, " ")}
	for i, n := range nics {
		d := trace.DeviceInfo{Dev: uint16(i), Name: n.Name()}
		for q := 0; q < n.NumRxQueues(); q++ {
			d.Queues = append(d.Queues, trace.QueueInfo{Dir: "rx", Queue: uint16(q), Ring: uint32(n.RxRingSize())})
		}
		for q := 0; q < n.NumTxQueues(); q++ {
			d.Queues = append(d.Queues, trace.QueueInfo{Dir: "tx", Queue: uint16(q), Ring: uint32(n.TxRingSize())})
		}
		h.Devices = append(h.Devices, d)
		h.Pools = append(h.Pools, n.TracePools()...)
	}
	h.Pools = append(h.Pools, pools...)
	if err := trace.WriteFile(path, h, rec); err != nil {
		return fmt.Errorf("writing the trace: %w", err)
	}
	return nil
}

// commitTrace writes rec with writeTrace to tmp (made by checkTracePath)
// and renames it to path, so that no half-written trace is ever at path. A
// trace that did not fit the recorder is an error (raise says what else
// makes it fit, "" for nothing) and then nothing is written; on any error
// tmp is removed.
func commitTrace(path, tmp string, rec *trace.Recorder, nics []traceNIC, pools []trace.PoolInfo, raise string) error {
	if d := rec.Dropped(); d > 0 {
		need := uint64(len(rec.Events())) + d
		os.Remove(tmp)
		return fmt.Errorf("the trace did not fit: %d of %d events were dropped, so %s was not written (a partial trace cannot be verified): raise --trace-events to %d or more%s",
			d, need, path, need+need/4, raise)
	}
	if err := writeTrace(tmp, rec, nics, pools); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("--trace %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("--trace %s: %w", path, err)
	}
	return nil
}
