package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/internal/pktgen"
	"github.com/verinic/verinic/ixgbe/regs"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/trace"
)

// demoTraffic is the demo's workers: per queue, a generator on NIC A and a
// counter on NIC B.
type demoTraffic struct {
	rig                        *demoRig
	sent, received, sentBytes  atomic.Uint64
	stopTx, stopRx             atomic.Bool
	trackers                   []*pktgen.Tracker
	errs                       chan error
	txWG, rxWG                 sync.WaitGroup
	start                      time.Time
	window                     int64
	srcMAC, dstMAC             header.MAC
	batch, size, flowsPerQueue int
	offload                    bool
}

// demoOffloads is the cycle of offloads --offload asks for, frame by
// frame: the driver posts a context descriptor whenever the context a
// frame needs differs from the queue's last (a different VLAN tag, or
// none, makes a different context), and none for a frame without offloads
// (datasheet 7.2.3.2.3).
var demoOffloads = [...]dma.Meta{
	dma.TxIPCsum | dma.TxL4Csum,
	(dma.TxIPCsum | dma.TxL4Csum | dma.TxVLAN).WithVLAN(100),
	(dma.TxL4Csum | dma.TxVLAN).WithVLAN(101),
	0,
	dma.TxIPCsum,
}

// demoOffload returns the offloads of the k-th frame of size bytes: a tag
// only where the tagged frame stays within 1514 bytes.
func demoOffload(k, size int) dma.Meta {
	m := demoOffloads[k%len(demoOffloads)]
	if m&dma.TxVLAN != 0 && size+4 > pktgen.MaxFrame {
		m &^= dma.TxVLAN
	}
	return m
}

// startDemoTraffic starts a generator and a counter per queue.
func startDemoTraffic(rig *demoRig, o demoOptions) *demoTraffic {
	t := &demoTraffic{rig: rig, errs: make(chan error, 2*o.queues), start: time.Now(), window: int64(o.window),
		batch: o.batch, size: o.size, flowsPerQueue: 8, offload: o.offload}
	copy(t.srcMAC[:], rig.nicA.MAC())
	copy(t.dstMAC[:], rig.nicB.MAC())
	for q := 0; q < o.queues; q++ { // every tracker exists before a goroutine reads the slice
		t.trackers = append(t.trackers, pktgen.NewTracker())
	}
	for q := 0; q < o.queues; q++ {
		t.rxWG.Add(1)
		go t.count(q)
		share := o.frames / uint64(o.queues)
		if uint64(q) < o.frames%uint64(o.queues) {
			share++
		}
		t.txWG.Add(1)
		go t.generate(q, share)
	}
	return t
}

// inFlightAt is, with sent frames sent, what the generator has sent that
// has neither reached the counter nor been lost on the wire. The generator keeps it under the
// window: application-level flow control, as a real sender gets from TCP,
// so that a slower receiver does not turn the demo into a drop test.
// Frames dropped inside NIC B (which the window is meant to prevent) stall
// the window only briefly. --flow-control makes it unnecessary: B's MAC
// sends 802.3x PAUSE frames when its packet buffer fills, and A's MAC holds
// its transmission.
func (t *demoTraffic) inFlightAt(sent uint64) int64 {
	cs := t.rig.cable.Stats().AB
	return int64(sent) - int64(t.received.Load()) - int64(cs.Dropped+cs.LinkDown+cs.Overflow+cs.Corrupted) + int64(cs.Duplicated)
}

// admit reserves room in the window for up to want frames and returns how
// many the generator may send now, counting them as sent (the caller
// returns what the driver does not accept). The reservation is one
// compare-and-swap on sent, so the queues' generators together never put
// more than the window in flight, not a batch each past it. With no window
// it admits everything; when the window stays full for about 100 ms (frames
// lost inside B stall it) it admits want anyway, so a drop cannot hang the
// run (the accounting then reports the drop).
func (t *demoTraffic) admit(want int) int {
	if t.window <= 0 || want == 0 {
		t.sent.Add(uint64(want))
		return want
	}
	for waited := 0; ; waited++ {
		sent := t.sent.Load()
		room := t.window - t.inFlightAt(sent)
		k := int64(want)
		if waited >= 5000 || t.stopTx.Load() {
			room = k
		}
		if room <= 0 {
			time.Sleep(20 * time.Microsecond)
			continue
		}
		k = min(k, room)
		if t.sent.CompareAndSwap(sent, sent+uint64(k)) {
			return int(k)
		}
	}
}

// count receives on B's queue q and checks every frame with the queue's
// tracker until stopRx.
func (t *demoTraffic) count(q int) {
	defer t.rxWG.Done()
	nic, rec := t.rig.nicB, t.rig.rec
	pkts := make([]dma.Packet, t.batch)
	tags := make([]uint64, 0, t.batch)
	tr := t.trackers[q]
	for !t.stopRx.Load() {
		rec.AppCall(trace.RX, 1, uint16(q))
		n, err := nic.RxBatch(q, pkts)
		if err != nil {
			t.errs <- fmt.Errorf("%s RX queue %d: %w", nic.Name(), q, err)
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
		t.received.Add(uint64(n))
		if n == 0 {
			time.Sleep(20 * time.Microsecond)
		}
	}
}

// generate sends share frames on A's queue q (fewer after stopTx), spread
// over the queue's flows, and then lets the driver reclaim what it sent.
func (t *demoTraffic) generate(q int, share uint64) {
	defer t.txWG.Done()
	nic, rec, pool := t.rig.nicA, t.rig.rec, t.rig.txPools[q]
	flows := make([]pktgen.Flow, t.flowsPerQueue)
	seqs := make([]uint64, t.flowsPerQueue)
	for i := range flows {
		flows[i] = pktgen.DefaultFlow(uint32(q*t.flowsPerQueue+i), t.srcMAC, t.dstMAC)
	}
	sizes := pktgen.Mixed(uint64(q) + 1)
	if t.size != 0 {
		sizes = pktgen.Fixed(t.size)
	}
	pkts := make([]dma.Packet, t.batch)
	tags := make([]uint64, t.batch) // tags[i] names the frame in pkts[i]
	pending := 0                    // built but not yet accepted, at the front of pkts
	var done uint64
	next := 0
	for done < share && !t.stopTx.Load() {
		want := int(min(uint64(t.batch), share-done))
		if pending < want {
			got := pool.AllocBatch(pkts[pending:want])
			for i := pending; i < pending+got; i++ {
				f := next % t.flowsPerQueue
				pktgen.Build(&pkts[i], &flows[f], seqs[f], sizes.Next())
				tags[i] = pktgen.Info{Flow: flows[f].ID, Seq: seqs[f]}.Tag()
				if t.offload {
					// The driver zeroes the IPv4 checksum and seeds the
					// UDP one with the pseudo-header sum; the device
					// completes them and inserts the tag.
					pkts[i].Meta = demoOffload(next, int(pkts[i].Len))
				}
				seqs[f]++
				next++
			}
			pending += got
		}
		admitted := t.admit(pending)
		rec.AppCall(trace.TX, 0, uint16(q))
		n, err := nic.TxBatch(q, pkts[:admitted])
		rec.AppReturn(trace.TX, 0, uint16(q), tags[:n])
		if err != nil {
			t.errs <- fmt.Errorf("%s TX queue %d: %w", nic.Name(), q, err)
			return
		}
		var bytes uint64
		for i := range pkts[:n] {
			bytes += uint64(pkts[i].Len)
			if pkts[i].Meta&dma.TxVLAN != 0 {
				bytes += 4 // the tag the device inserts (7.2.5)
			}
		}
		t.sentBytes.Add(bytes)
		copy(pkts, pkts[n:pending])
		copy(tags, tags[n:pending])
		pending -= n
		done += uint64(n)
		t.sent.Add(^uint64(admitted - n - 1)) // return what the driver did not take
		if n == 0 {
			time.Sleep(10 * time.Microsecond)
		}
	}
	// Frames built but never handed to the driver (the run was stopped) go
	// back to the pool unsent.
	for i := range pkts[:pending] {
		pkts[i].Free()
	}
	// Let the driver reclaim what is in flight, so the pool refills.
	deadline := time.Now().Add(2 * time.Second)
	for pool.InUse() > 0 && time.Now().Before(deadline) {
		if _, err := nic.TxBatch(q, nil); err != nil {
			t.errs <- err
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// wait prints progress every second until every frame is sent and the
// receive side is quiet, then stops the counters. A value on o.stop stops
// the generators first (the frames in flight still drain and are counted);
// wait returns that signal.
func (t *demoTraffic) wait(o demoOptions, out io.Writer) (elapsed time.Duration, sig os.Signal, err error) {
	txDone := make(chan struct{})
	go func() { t.txWG.Wait(); close(txDone) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	var lastSent, lastRecv uint64
	lastT := t.start
	quietSince := time.Time{}
	stallAfter := o.stallAfter
	if stallAfter <= 0 {
		stallAfter = defaultStallAfter
	}
	var progress uint64
	progressAt := time.Now()
	for {
		select {
		case err := <-t.errs:
			t.stopTx.Store(true)
			t.stopRx.Store(true)
			t.txWG.Wait()
			t.rxWG.Wait()
			return time.Since(t.start), sig, err
		case s := <-o.stop:
			if sig == nil {
				sig = s
				t.stopTx.Store(true)
				fmt.Fprintf(out, "interrupted (%v): generators stopped after %d frames; counting what is in flight\n", s, t.sent.Load())
			}
		case <-tick.C:
			if !o.quiet {
				now := time.Now()
				s, r := t.sent.Load(), t.received.Load()
				dt := now.Sub(lastT).Seconds()
				fmt.Fprintf(out, "  %5.1fs  sent %10d (%5.2f Mpps)  received %10d (%5.2f Mpps)\n",
					now.Sub(t.start).Seconds(), s, float64(s-lastSent)/dt/1e6, r, float64(r-lastRecv)/dt/1e6)
				lastSent, lastRecv, lastT = s, r, now
			}
		case <-poll.C:
			// Nothing sent, delivered, received or dropped for stallAfter:
			// a ring has stopped moving. Stop and say which.
			if p := t.progress(); p != progress {
				progress, progressAt = p, time.Now()
			} else if time.Since(progressAt) > stallAfter {
				diag := t.diagnoseStall()
				t.stopTx.Store(true)
				t.stopRx.Store(true)
				t.txWG.Wait()
				t.rxWG.Wait()
				return time.Since(t.start), sig, fmt.Errorf("stalled: no frame sent, delivered or received for %v; %s", stallAfter, diag)
			}
			select {
			case <-txDone:
				cs := t.rig.cable.Stats().AB
				switch {
				case cs.InFlight == 0 && t.received.Load()+nicBDrops(t.rig.nicB) >= cs.Delivered:
				case quietSince.IsZero():
					quietSince = time.Now()
					continue
				case time.Since(quietSince) <= 3*time.Second:
					continue
				}
				// All arrived, or something went missing (the accounting
				// says what).
				elapsed = time.Since(t.start)
				t.stopRx.Store(true)
				t.rxWG.Wait()
				return elapsed, sig, nil
			default:
			}
		}
	}
}

// defaultStallAfter is how long the demo waits without any progress before
// it gives up with a diagnosis (demoOptions.stallAfter overrides it).
const defaultStallAfter = 10 * time.Second

// progress is a number that moves whenever any frame moves anywhere.
func (t *demoTraffic) progress() uint64 {
	cs := t.rig.cable.Stats().AB
	return t.sent.Load() + t.received.Load() + cs.Offered + cs.Delivered + nicBDrops(t.rig.nicB)
}

// diagnoseStall names the rings that hold work the device has not done:
// a TX ring of A whose head (TDH, what the device has fetched) stays short
// of its tail (TDT, what the driver posted), and an RX ring of B whose head
// (RDH) equals its tail (RDT: no free descriptor, the driver is not
// refilling) or that has descriptors but receives nothing. The registers
// are read from the simulated devices (datasheet 8.2.3.9.8-9, 8.2.3.8.3-4).
func (t *demoTraffic) diagnoseStall() string {
	r := t.rig
	var stuck, idle []string
	for q := 0; q < r.nicA.NumTxQueues(); q++ {
		h, tl := r.simA.Read32(regs.TDH(q)), r.simA.Read32(regs.TDT(q))
		if h != tl {
			stuck = append(stuck, fmt.Sprintf("%s TX ring %d: head %d, tail %d (%d descriptors posted that the device does not fetch)",
				r.nicA.Name(), q, h, tl, (tl+uint32(r.nicA.TxRingSize())-h)%uint32(r.nicA.TxRingSize())))
		} else {
			idle = append(idle, fmt.Sprintf("%s TX ring %d: head = tail = %d", r.nicA.Name(), q, h))
		}
	}
	for q := 0; q < r.nicB.NumRxQueues(); q++ {
		h, tl := r.simB.Read32(regs.RDH(q)), r.simB.Read32(regs.RDT(q))
		if h == tl {
			stuck = append(stuck, fmt.Sprintf("%s RX ring %d: head = tail = %d (no free descriptor: the driver does not refill)", r.nicB.Name(), q, h))
		}
	}
	if len(stuck) == 0 {
		return "no ring holds work the device has not done (" + strings.Join(idle, "; ") + ")"
	}
	return strings.Join(stuck, "; ")
}
