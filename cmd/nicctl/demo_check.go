package main

import (
	"fmt"
	"io"
	"time"

	"github.com/verinic/verinic/internal/pktgen"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
)

// demoCounts is everything the demo's accounting looks at once the traffic
// has stopped: what software sent and received, both NICs' counters, the
// wire's, and the devices' health.
type demoCounts struct {
	sent, sentBytes uint64
	a, b            ixgbe.Stats
	wire            ixgbesim.DirStats // A to B
	tracker         pktgen.Tracker    // all of B's queues merged
	rxDrops         uint64            // B's QPRDC, summed over its queues
	// The driver's own error counters, summed over both NICs' queues:
	// sent buffers their pool refused back (a double free), packets
	// TxBatch refused, received frames dropped for a MAC error or an
	// impossible length, and frames spanning several descriptors.
	txFreeErrors, txBad, rxErrorDrops, rxMultiDesc uint64
	iommuFaults                                    int
	violations                                     int
}

// counts reads the counters after the traffic has stopped.
func (r *demoRig) counts(t *demoTraffic) demoCounts {
	total := pktgen.NewTracker()
	for _, tr := range t.trackers {
		total.Merge(tr)
	}
	c := demoCounts{sent: t.sent.Load(), sentBytes: t.sentBytes.Load(), a: r.nicA.Stats(), b: r.nicB.Stats(),
		wire: r.cable.Stats().AB, tracker: *total, iommuFaults: len(r.domain.Faults()),
		violations: len(r.simA.Violations()) + len(r.simB.Violations())}
	for _, q := range c.b.Queues {
		c.rxDrops += q.RxDrops
	}
	return c.withDriverErrors()
}

// withDriverErrors sums the driver's error counters of both NICs' queues.
func (c demoCounts) withDriverErrors() demoCounts {
	c.txFreeErrors, c.txBad, c.rxErrorDrops, c.rxMultiDesc = 0, 0, 0, 0
	for _, st := range []ixgbe.Stats{c.a, c.b} {
		for _, q := range st.Queues {
			c.txFreeErrors += q.TxFreeErrors
			c.txBad += q.TxBadPackets
			c.rxErrorDrops += q.RxErrorDrops
			c.rxMultiDesc += q.RxMultiDescDrops
		}
	}
	return c
}

// report prints the counts and fills rep.
func (c demoCounts) report(out io.Writer, flowCtl bool, elapsed time.Duration, rep *demoReport) {
	a, b, cs, total := c.a, c.b, c.wire, c.tracker
	fmt.Fprintf(out, "sent      %d frames, %d bytes by software; simA counted GPTC %d, GOTC %d\n", c.sent, c.sentBytes, a.TxPackets, a.TxBytes)
	fmt.Fprintf(out, "wire      delivered %d; dropped %d, corrupted %d, duplicated %d, reordered %d\n", cs.Delivered, cs.Dropped+cs.LinkDown+cs.Overflow, cs.Corrupted, cs.Duplicated, cs.Reordered)
	fmt.Fprintf(out, "received  %d frames, %d bytes by software; simB counted GPRC %d, GORC %d\n", total.Received, total.Bytes, b.RxPackets, b.RxBytes)
	fmt.Fprintf(out, "dropped   rx ring full %d, missed %d, CRC errors %d\n", c.rxDrops, b.RxMissed, b.RxCRCErrors)
	if flowCtl {
		fmt.Fprintf(out, "pause     simB sent XOFF %d, XON %d; simA received XOFF %d, XON %d\n", b.TxXoff, b.TxXon, a.RxXoff, a.RxXon)
	}
	fmt.Fprintf(out, "checked   %d in order, %d gaps, %d late (duplicate/reordered), %d corrupt, %d foreign, over %d flows\n",
		total.InOrder, total.Gaps, total.Late, total.Corrupt, total.Foreign, total.Flows())
	secs := elapsed.Seconds()
	fmt.Fprintf(out, "rate      %.2f Mpps, %.2f Gbit/s of frames, over %.2f s\n", float64(c.sent)/secs/1e6, float64(a.TxBytes)*8/secs/1e9, secs)

	rep.Sent, rep.SentBytes, rep.Received, rep.ReceivedBytes = c.sent, c.sentBytes, total.Received, total.Bytes
	rep.Wire.Delivered, rep.Wire.Dropped, rep.Wire.Corrupted, rep.Wire.Duplicated, rep.Wire.Reordered =
		cs.Delivered, cs.Dropped+cs.LinkDown+cs.Overflow, cs.Corrupted, cs.Duplicated, cs.Reordered
	rep.A.GPTC, rep.A.GOTC, rep.A.XonRx, rep.A.XoffRx = a.TxPackets, a.TxBytes, a.RxXon, a.RxXoff
	rep.B.GPRC, rep.B.GORC, rep.B.RingFull, rep.B.Missed, rep.B.CRCErrors, rep.B.XonTx, rep.B.XoffTx =
		b.RxPackets, b.RxBytes, c.rxDrops, b.RxMissed, b.RxCRCErrors, b.TxXon, b.TxXoff
	rep.Checked.InOrder, rep.Checked.Gaps, rep.Checked.Late, rep.Checked.Corrupt, rep.Checked.Foreign, rep.Checked.Flows =
		total.InOrder, total.Gaps, total.Late, total.Corrupt, total.Foreign, total.Flows()
	rep.Seconds, rep.Mpps, rep.Gbps = secs, float64(c.sent)/secs/1e6, float64(a.TxBytes)*8/secs/1e9
}

// demoCheck is one line of the accounting.
type demoCheck struct {
	What string `json:"what"`
	OK   bool   `json:"ok"`
}

// demoChecks is the accounting every frame must satisfy:
//
//   - A's GPTC = frames the software sent;
//   - frames the wire delivered to B = sent - wire losses + duplicates;
//   - of those, B's MAC counts CRC errors (corrupted), frames missed for
//     lack of packet-buffer space (MPC, not counted as received), and good
//     frames (GPRC); good frames are delivered to software or dropped for
//     lack of descriptors (QPRDC, ring full);
//
// and, by what the run promised: with no fault injected and a window or
// flow control, every frame in order and none lost; with no fault and
// neither (--window 0), every frame in order or counted by B as dropped.
func demoChecks(c demoCounts, p demoPromise) []demoCheck {
	a, b, cs, total := c.a, c.b, c.wire, c.tracker
	s := c.sent
	checks := []demoCheck{
		// The device counts the PAUSE frames it sends in GPTC and GOTC
		// too (64 bytes each); A sends none unless its own buffer fills.
		{"A's GPTC equals frames sent", a.TxPackets-a.TxXon-a.TxXoff == s},
		// GOTC and GORC count from the destination address through the CRC
		// (datasheet 8.2.3.23.27-8.2.3.23.30): 4 FCS bytes per frame more
		// than the software handled.
		{"A's GOTC equals bytes sent plus FCS", a.TxBytes-64*(a.TxXon+a.TxXoff) == c.sentBytes+4*s},
		{"the wire accounts for every frame sent", cs.Offered == s && cs.Delivered == s-cs.Dropped-cs.LinkDown-cs.Overflow+cs.Duplicated},
		{"B's GPRC + missed + CRC errors equals frames arriving", b.RxPackets+b.RxMissed+b.RxCRCErrors == cs.Delivered},
		{"frames delivered equal B's GPRC less ring-full drops", total.Received+total.Corrupt+total.Foreign+c.rxDrops == b.RxPackets},
		{"no corrupt or foreign frame delivered", total.Corrupt == 0 && total.Foreign == 0},
		{"no IOMMU fault", c.iommuFaults == 0},
		{"no ownership violation", c.violations == 0},
		// Every buffer a NIC sent comes back to its pool exactly once.
		{fmt.Sprintf("no TX free errors (double frees: %d)", c.txFreeErrors), c.txFreeErrors == 0},
		// The generator builds only valid frames of one descriptor each, so
		// a refused packet or an error drop is the driver's (or device's)
		// fault, not the wire's: corrupted frames are CRC errors.
		{fmt.Sprintf("no driver error drops (bad TX packets %d, RX error drops %d, multi-descriptor drops %d)",
			c.txBad, c.rxErrorDrops, c.rxMultiDesc), c.txBad == 0 && c.rxErrorDrops == 0 && c.rxMultiDesc == 0},
	}
	switch p {
	case promiseNoLoss:
		checks = append(checks, demoCheck{"every frame in order, none lost (no faults injected)",
			total.InOrder == s && c.rxDrops == 0 && b.RxMissed == 0})
	case promiseCounted:
		// B may drop (ring full, missed), and a flow then skips the
		// frames it lost; nothing arrives late, and sent frames are
		// exactly those delivered plus those B counted dropped.
		drops := c.rxDrops + b.RxMissed
		checks = append(checks, demoCheck{"every frame delivered in order or counted as dropped by B (--window 0: no faults, drops allowed)",
			total.Late == 0 && total.Received+drops == s && total.Gaps <= drops})
	}
	return checks
}
