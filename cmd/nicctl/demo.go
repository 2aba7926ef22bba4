package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/internal/pktgen"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/trace"
)

func init() {
	register(&command{
		name:    "demo",
		summary: "two simulated 82599s back to back: generate on one, count on the other (no hardware, no root)",
		usage:   "[--frames N] [--queues Q] [--batch B] [--size BYTES|0] [--ring N] [--drop P --corrupt P --duplicate P --reorder P --seed S] [--trace FILE]",
		run:     runDemo,
	})
}

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
	quiet    bool
}

func runDemo(args []string) error {
	var o demoOptions
	fs := newFlagSet("demo")
	fs.Uint64Var(&o.frames, "frames", 1_000_000, "frames to send from NIC A to NIC B")
	fs.IntVar(&o.queues, "queues", 4, "RX and TX queues per NIC (RSS spreads flows over B's RX queues)")
	fs.IntVar(&o.batch, "batch", 32, "frames per RxBatch/TxBatch call")
	fs.IntVar(&o.size, "size", 0, "frame size in bytes without FCS, 60..1514; 0 mixes sizes")
	fs.IntVar(&o.ring, "ring", 512, "descriptors per ring (power of two, 64..4096)")
	fs.Float64Var(&o.faults.Drop, "drop", 0, "probability that the wire drops a frame")
	fs.Float64Var(&o.faults.Corrupt, "corrupt", 0, "probability that the wire corrupts a frame (B counts a CRC error)")
	fs.Float64Var(&o.faults.Duplicate, "duplicate", 0, "probability that the wire duplicates a frame")
	fs.Float64Var(&o.faults.Reorder, "reorder", 0, "probability that the wire swaps a frame with the next")
	fs.Int64Var(&o.faults.Seed, "seed", 1, "seed of the wire's fault injector")
	fs.StringVar(&o.trace, "trace", "", "record ring events of both NICs to this NDJSON file (see nicctl verify)")
	fs.IntVar(&o.traceCap, "trace-events", 20_000_000, "capacity of the trace recorder, in events")
	// The default is about what NIC B's 128 KB receive packet buffer
	// (RXPBSIZE[0], datasheet 4.6.7) holds in frames of mixed size, so that
	// a receive engine that is descheduled for a moment loses nothing.
	fs.IntVar(&o.window, "window", 128, "most frames in flight from generator to counter (0: no limit, and B drops what it cannot take)")
	fs.BoolVar(&o.flowCtl, "flow-control", false, "turn on 802.3x link flow control on both NICs: B's MAC pauses A instead of dropping (try with --window 0)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 || o.queues < 1 || o.batch < 1 || (o.size != 0 && (o.size < pktgen.MinFrame || o.size > pktgen.MaxFrame)) {
		return errUsage
	}
	res, err := demo(o, os.Stdout)
	if err != nil {
		return err
	}
	if !res.agree {
		return errors.New("the counts do not agree (see above)")
	}
	return nil
}

// demoResult is what a demo run established.
type demoResult struct {
	sent, received uint64
	agree          bool
}

func demo(o demoOptions, out io.Writer) (demoResult, error) {
	var rec *trace.Recorder
	if o.trace != "" {
		rec = trace.NewRecorder(o.traceCap)
	}
	domain := ixgbesim.NewDomain()
	simA, err := ixgbesim.New(ixgbesim.Config{Name: "simA", Domain: domain, Trace: rec, DevID: 0})
	if err != nil {
		return demoResult{}, err
	}
	defer simA.Close()
	simB, err := ixgbesim.New(ixgbesim.Config{Name: "simB", Domain: domain, Trace: rec, DevID: 1})
	if err != nil {
		return demoResult{}, err
	}
	defer simB.Close()
	cable := ixgbesim.Connect(simA, simB, &o.faults, nil)
	simA.Start()
	simB.Start()
	defer simA.Stop()
	defer simB.Stop()

	cfg := func(dev uint16) ixgbe.Config {
		return ixgbe.Config{RxQueues: o.queues, TxQueues: o.queues, RxRingSize: o.ring, TxRingSize: o.ring, Trace: rec, DevID: dev, FlowControl: o.flowCtl}
	}
	nicA, err := ixgbe.New(simA, cfg(0))
	if err != nil {
		return demoResult{}, err
	}
	defer nicA.Close()
	nicB, err := ixgbe.New(simB, cfg(1))
	if err != nil {
		return demoResult{}, err
	}
	defer nicB.Close()
	for _, n := range []*ixgbe.NIC{nicA, nicB} {
		fc := "off"
		if o.flowCtl {
			fc = "on"
		}
		fmt.Fprintf(out, "%-5s MAC %s  link %s  %d RX / %d TX queues, rings of %d, flow control %s\n",
			n.Name(), n.MAC(), n.Link(), n.NumRxQueues(), n.NumTxQueues(), o.ring, fc)
	}

	var srcMAC, dstMAC header.MAC
	copy(srcMAC[:], nicA.MAC())
	copy(dstMAC[:], nicB.MAC())

	// One transmit pool per TX queue, owned by that queue's goroutine (the
	// driver frees sent buffers into it from the same goroutine).
	txPools := make([]*dma.Mempool, o.queues)
	for q := range txPools {
		txPools[q], err = dma.NewMempool(nicA.Allocator(), dma.MempoolConfig{Name: fmt.Sprintf("demo-tx%d", q), Buffers: 2 * o.ring})
		if err != nil {
			return demoResult{}, err
		}
		defer txPools[q].Release()
	}

	const flowsPerQueue = 8
	var sent, received, sentBytes atomic.Uint64
	// inFlight is what the generator has sent that has neither reached the
	// counter nor been lost on the wire. The generator keeps it under the
	// window: application-level flow control, as a real sender gets from
	// TCP, so that a slower receiver does not turn the demo into a drop
	// test. Frames dropped inside NIC B (which the window is meant to
	// prevent) stall the window only briefly. --flow-control makes it
	// unnecessary: B's MAC sends 802.3x PAUSE frames when its packet
	// buffer fills, and A's MAC holds its transmission.
	inFlight := func() int64 {
		cs := cable.Stats().AB
		return int64(sent.Load()) - int64(received.Load()) - int64(cs.Dropped+cs.LinkDown+cs.Overflow+cs.Corrupted) + int64(cs.Duplicated)
	}
	var stopRx atomic.Bool
	trackers := make([]*pktgen.Tracker, o.queues)
	errs := make(chan error, 2*o.queues)
	var txWG, rxWG sync.WaitGroup
	start := time.Now()

	for q := 0; q < o.queues; q++ {
		trackers[q] = pktgen.NewTracker()
		rxWG.Add(1)
		go func(q int) {
			defer rxWG.Done()
			pkts := make([]dma.Packet, o.batch)
			tags := make([]uint64, 0, o.batch)
			tr := trackers[q]
			for !stopRx.Load() {
				rec.AppCall(trace.RX, 1, uint16(q))
				n, err := nicB.RxBatch(q, pkts)
				if err != nil {
					errs <- fmt.Errorf("%s RX queue %d: %w", nicB.Name(), q, err)
					return
				}
				tags = tags[:0]
				for i := range pkts[:n] {
					if info, ok := tr.Observe(pkts[i].Data()); ok {
						tags = append(tags, info.Tag())
					}
					pkts[i].Free()
				}
				rec.AppReturn(trace.RX, 1, uint16(q), tags)
				received.Add(uint64(n))
				if n == 0 {
					time.Sleep(20 * time.Microsecond)
				}
			}
		}(q)

		share := o.frames / uint64(o.queues)
		if uint64(q) < o.frames%uint64(o.queues) {
			share++
		}
		txWG.Add(1)
		go func(q int, share uint64) {
			defer txWG.Done()
			flows := make([]pktgen.Flow, flowsPerQueue)
			seqs := make([]uint64, flowsPerQueue)
			for i := range flows {
				flows[i] = pktgen.DefaultFlow(uint32(q*flowsPerQueue+i), srcMAC, dstMAC)
			}
			sizes := pktgen.Mixed(uint64(q) + 1)
			if o.size != 0 {
				sizes = pktgen.Fixed(o.size)
			}
			pkts := make([]dma.Packet, o.batch)
			tags := make([]uint64, o.batch) // tags[i] names the frame in pkts[i]
			pending := 0                    // built but not yet accepted, at the front of pkts
			var done uint64
			next := 0
			for done < share {
				if o.window > 0 {
					for waited := 0; inFlight() > int64(o.window) && waited < 5000; waited++ {
						time.Sleep(20 * time.Microsecond) // bounded: at most ~100 ms per batch
					}
				}
				want := int(min(uint64(o.batch), share-done))
				if pending < want {
					got := txPools[q].AllocBatch(pkts[pending:want])
					for i := pending; i < pending+got; i++ {
						f := next % flowsPerQueue
						pktgen.Build(&pkts[i], &flows[f], seqs[f], sizes.Next())
						tags[i] = pktgen.Info{Flow: flows[f].ID, Seq: seqs[f]}.Tag()
						seqs[f]++
						next++
					}
					pending += got
				}
				rec.AppCall(trace.TX, 0, uint16(q))
				n, err := nicA.TxBatch(q, pkts[:pending])
				rec.AppReturn(trace.TX, 0, uint16(q), tags[:n])
				if err != nil {
					errs <- fmt.Errorf("%s TX queue %d: %w", nicA.Name(), q, err)
					return
				}
				var bytes uint64
				for i := range pkts[:n] {
					bytes += uint64(pkts[i].Len)
				}
				sentBytes.Add(bytes)
				copy(pkts, pkts[n:pending])
				copy(tags, tags[n:pending])
				pending -= n
				done += uint64(n)
				sent.Add(uint64(n))
				if n == 0 {
					time.Sleep(10 * time.Microsecond)
				}
			}
			// Let the driver reclaim what is in flight, so the pool refills.
			deadline := time.Now().Add(2 * time.Second)
			for txPools[q].InUse() > 0 && time.Now().Before(deadline) {
				if _, err := nicA.TxBatch(q, nil); err != nil {
					errs <- err
					return
				}
				time.Sleep(100 * time.Microsecond)
			}
		}(q, share)
	}

	// Progress, and the end: all sent, and the receive side quiet.
	txDone := make(chan struct{})
	go func() { txWG.Wait(); close(txDone) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastSent, lastRecv uint64
	lastT := start
	quietSince := time.Time{}
	finished := false
	for !finished {
		select {
		case err := <-errs:
			stopRx.Store(true)
			rxWG.Wait()
			return demoResult{}, err
		case <-tick.C:
			if !o.quiet {
				now := time.Now()
				s, r := sent.Load(), received.Load()
				dt := now.Sub(lastT).Seconds()
				fmt.Fprintf(out, "  %5.1fs  sent %10d (%5.2f Mpps)  received %10d (%5.2f Mpps)\n",
					now.Sub(start).Seconds(), s, float64(s-lastSent)/dt/1e6, r, float64(r-lastRecv)/dt/1e6)
				lastSent, lastRecv, lastT = s, r, now
			}
		case <-time.After(5 * time.Millisecond):
			select {
			case <-txDone:
				if cs := cable.Stats().AB; cs.InFlight == 0 && received.Load()+nicBDrops(nicB) >= cs.Delivered {
					finished = true
				} else if quietSince.IsZero() {
					quietSince = time.Now()
				} else if time.Since(quietSince) > 3*time.Second {
					finished = true // something went missing: the accounting below says what
				}
			default:
			}
		}
	}
	elapsed := time.Since(start)
	stopRx.Store(true)
	rxWG.Wait()

	total := pktgen.NewTracker()
	for _, tr := range trackers {
		total.Merge(tr)
	}
	sa, sb := nicA.Stats(), nicB.Stats()
	cs := cable.Stats().AB
	var rxDrops uint64
	for _, q := range sb.Queues {
		rxDrops += q.RxDrops
	}
	s := sent.Load()
	fmt.Fprintf(out, "sent      %d frames, %d bytes by software; %s counted GPTC %d, GOTC %d\n", s, sentBytes.Load(), nicA.Name(), sa.TxPackets, sa.TxBytes)
	fmt.Fprintf(out, "wire      delivered %d; dropped %d, corrupted %d, duplicated %d, reordered %d\n", cs.Delivered, cs.Dropped+cs.LinkDown+cs.Overflow, cs.Corrupted, cs.Duplicated, cs.Reordered)
	fmt.Fprintf(out, "received  %d frames, %d bytes by software; %s counted GPRC %d, GORC %d\n", total.Received, total.Bytes, nicB.Name(), sb.RxPackets, sb.RxBytes)
	fmt.Fprintf(out, "dropped   rx ring full %d, missed %d, CRC errors %d\n", rxDrops, sb.RxMissed, sb.RxCRCErrors)
	if o.flowCtl {
		fmt.Fprintf(out, "pause     %s sent XOFF %d, XON %d; %s received XOFF %d, XON %d\n",
			nicB.Name(), sb.TxXoff, sb.TxXon, nicA.Name(), sa.RxXoff, sa.RxXon)
	}
	fmt.Fprintf(out, "checked   %d in order, %d gaps, %d late (duplicate/reordered), %d corrupt, %d foreign, over %d flows\n",
		total.InOrder, total.Gaps, total.Late, total.Corrupt, total.Foreign, total.Flows())
	secs := elapsed.Seconds()
	fmt.Fprintf(out, "rate      %.2f Mpps, %.2f Gbit/s of frames, over %.2f s\n", float64(s)/secs/1e6, float64(sa.TxBytes)*8/secs/1e9, secs)

	// The accounting every frame must satisfy:
	//   A's GPTC = frames the software sent;
	//   frames the wire delivered to B = sent - wire losses + duplicates;
	//   of those, B's MAC counts CRC errors (corrupted), frames missed for
	//   lack of packet-buffer space (MPC, not counted as received), and good
	//   frames (GPRC); good frames are delivered to software or dropped for
	//   lack of descriptors (QPRDC, ring full).
	arriving := cs.Delivered
	checks := []struct {
		what string
		ok   bool
	}{
		// The device counts the PAUSE frames it sends in GPTC and GOTC
		// too (64 bytes each); A sends none unless its own buffer fills.
		{"A's GPTC equals frames sent", sa.TxPackets-sa.TxXon-sa.TxXoff == s},
		// GOTC and GORC count from the destination address through the CRC
		// (datasheet 8.2.3.23.27-8.2.3.23.30): 4 FCS bytes per frame more
		// than the software handled.
		{"A's GOTC equals bytes sent plus FCS", sa.TxBytes-64*(sa.TxXon+sa.TxXoff) == sentBytes.Load()+4*s},
		{"the wire accounts for every frame sent", cs.Offered == s && cs.Delivered == s-cs.Dropped-cs.LinkDown-cs.Overflow+cs.Duplicated},
		{"B's GPRC + missed + CRC errors equals frames arriving", sb.RxPackets+sb.RxMissed+sb.RxCRCErrors == arriving},
		{"frames delivered equal B's GPRC less ring-full drops", total.Received+total.Corrupt+total.Foreign+rxDrops == sb.RxPackets},
		{"no corrupt or foreign frame delivered", total.Corrupt == 0 && total.Foreign == 0},
		{"no IOMMU fault", len(domain.Faults()) == 0},
		{"no ownership violation", len(simA.Violations())+len(simB.Violations()) == 0},
	}
	if o.faults == (ixgbesim.Faults{Seed: o.faults.Seed}) {
		checks = append(checks, struct {
			what string
			ok   bool
		}{"every frame in order, none lost (no faults injected)", total.InOrder == s && rxDrops == 0 && sb.RxMissed == 0})
	}
	// Stop both drivers while the devices still run, so that TX drains and
	// every buffer comes home; then every pool must be full again.
	errA, errB := nicA.Stop(), nicB.Stop()
	poolsFull := errA == nil && errB == nil
	for q := range txPools {
		poolsFull = poolsFull && txPools[q].Available() == txPools[q].Size()
	}
	for q := 0; q < nicB.NumRxQueues(); q++ {
		poolsFull = poolsFull && nicB.RxPool(q).Available() == nicB.RxPool(q).Size()
	}
	checks = append(checks, struct {
		what string
		ok   bool
	}{"every mempool full again after the drivers stopped", poolsFull})
	agree := true
	for _, c := range checks {
		mark := "ok  "
		if !c.ok {
			mark, agree = "FAIL", false
		}
		fmt.Fprintf(out, "  %s %s\n", mark, c.what)
	}
	if total.FirstError != nil && !agree {
		fmt.Fprintf(out, "first deviation: %v\n", total.FirstError)
	}
	for _, err := range []error{errA, errB} {
		if err != nil {
			fmt.Fprintf(out, "stopping: %v\n", err)
		}
	}
	if rec != nil {
		simA.Stop() // no device events after this point
		simB.Stop()
		if err := writeTrace(o.trace, rec, []*ixgbe.NIC{nicA, nicB}); err != nil {
			return demoResult{}, err
		}
		fmt.Fprintf(out, "trace     %d events written to %s (%d did not fit)\n", len(rec.Events()), o.trace, rec.Dropped())
	}
	if agree {
		fmt.Fprintln(out, "counts agree")
	}
	return demoResult{sent: s, received: total.Received, agree: agree}, nil
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
