package main

import (
	"fmt"
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
