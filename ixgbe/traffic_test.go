package ixgbe

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
)

var framesFlag = flag.Int("frames", 0, "frames for TestTrafficSim (default: 1,000,000; 100,000 with -short or -race)")

// Test frames: Ethernet, IPv4, UDP from port flowPort[flow] to 4789, then a
// 16-byte test header: sequence number in its flow (4), flow (2), TX queue
// (2), frame length (4), CRC-32 of every other byte of the frame (4). The
// rest of the payload is a pattern derived from the sequence number.
const (
	hdrLen     = 14 + 20 + 8
	testHdrLen = 16
	minFrame   = 60
	maxFrameSz = 1514
)

// frameLen is the length of frame seq of flow: 60..1514, mixed.
func frameLen(flow, seq int) int {
	return minFrame + (seq*7919+flow*131)%(maxFrameSz-minFrame+1)
}

type frameSpec struct {
	srcMAC, dstMAC net.HardwareAddr
	srcPort        uint16
}

// buildFrame writes frame seq of flow into b (len(b) == frameLen).
func buildFrame(b []byte, s *frameSpec, flow, txq, seq int) {
	l := len(b)
	copy(b[0:6], s.dstMAC)
	copy(b[6:12], s.srcMAC)
	b[12], b[13] = 0x08, 0x00
	ip := b[14:34]
	ip[0], ip[1] = 0x45, 0
	binary.BigEndian.PutUint16(ip[2:], uint16(l-14))
	binary.BigEndian.PutUint16(ip[4:], uint16(seq))
	ip[6], ip[7], ip[8], ip[9] = 0x40, 0, 64, 17
	ip[10], ip[11] = 0, 0
	copy(ip[12:16], []byte{10, 0, 0, 1})
	copy(ip[16:20], []byte{10, 0, 1, 1})
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xFFFF {
		sum = sum&0xFFFF + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := b[34:42]
	binary.BigEndian.PutUint16(udp[0:], s.srcPort)
	binary.BigEndian.PutUint16(udp[2:], 4789)
	binary.BigEndian.PutUint16(udp[4:], uint16(l-34))
	udp[6], udp[7] = 0, 0
	th := b[hdrLen : hdrLen+testHdrLen]
	binary.LittleEndian.PutUint32(th[0:], uint32(seq))
	binary.LittleEndian.PutUint16(th[4:], uint16(flow))
	binary.LittleEndian.PutUint16(th[6:], uint16(txq))
	binary.LittleEndian.PutUint32(th[8:], uint32(l))
	pat := byte(seq*13 + flow)
	for i := hdrLen + testHdrLen; i < l; i++ {
		b[i] = pat
		pat += 7
	}
	binary.LittleEndian.PutUint32(th[12:], frameCRC(b))
}

func frameCRC(b []byte) uint32 {
	c := crc32.Update(0, crc32.IEEETable, b[:hdrLen+12])
	return crc32.Update(c, crc32.IEEETable, b[hdrLen+testHdrLen:])
}

// parsedFrame is what checkFrame extracts.
type parsedFrame struct {
	flow, txq, seq, length int
}

func checkFrame(b []byte) (parsedFrame, error) {
	if len(b) < hdrLen+testHdrLen {
		return parsedFrame{}, fmt.Errorf("frame of %d bytes is too short", len(b))
	}
	th := b[hdrLen:]
	f := parsedFrame{
		seq:    int(binary.LittleEndian.Uint32(th[0:])),
		flow:   int(binary.LittleEndian.Uint16(th[4:])),
		txq:    int(binary.LittleEndian.Uint16(th[6:])),
		length: int(binary.LittleEndian.Uint32(th[8:])),
	}
	if f.length != len(b) {
		return f, fmt.Errorf("frame says %d bytes, received %d", f.length, len(b))
	}
	if got, want := frameCRC(b), binary.LittleEndian.Uint32(th[12:]); got != want {
		return f, fmt.Errorf("frame flow %d seq %d: checksum %#x, want %#x", f.flow, f.seq, got, want)
	}
	if want := frameLen(f.flow, f.seq); want != len(b) {
		return f, fmt.Errorf("frame flow %d seq %d: %d bytes, want %d", f.flow, f.seq, len(b), want)
	}
	return f, nil
}

// pickFlows chooses flowsPerQueue UDP source ports for each RX queue of the
// receiver, using the simulator's own RSS classification, so that every
// queue carries traffic; it returns the ports and the queue of each flow.
func pickFlows(t testing.TB, p *simPair, queues, flowsPerQueue int) (ports []uint16, rxq []int) {
	spec := frameSpec{srcMAC: p.a.MAC(), dstMAC: p.b.MAC()}
	count := make([]int, queues)
	b := make([]byte, 64)
	for port := 10000; port < 60000 && len(ports) < queues*flowsPerQueue; port++ {
		spec.srcPort = uint16(port)
		buildFrame(b, &spec, 0, 0, 0)
		q := p.sb.RSSQueue(b)
		if q != RSSQueue(rssHashOf(p, b), queues) {
			t.Fatalf("port %d: simulator puts the frame on queue %d, the driver's RETA on %d", port, q, RSSQueue(rssHashOf(p, b), queues))
		}
		if count[q] < flowsPerQueue {
			count[q]++
			ports = append(ports, uint16(port))
			rxq = append(rxq, q)
		}
	}
	if len(ports) != queues*flowsPerQueue {
		t.Fatalf("found flows for queues %v only", count)
	}
	return ports, rxq
}

func rssHashOf(p *simPair, frame []byte) uint32 {
	key := DefaultRSSKey()
	h, _, _ := ixgbesim.RSSHash(key[:], frame, rssHashFields)
	return h
}

// trafficResult is what runTraffic observed.
type trafficResult struct {
	sent, received int64
	bytes          uint64 // sum of frame lengths (without FCS)
	perRxQueue     []int64
}

// runTraffic sends total frames from p.a (TX queues 0..queues-1) to p.b
// (RX queues 0..queues-1) on 4*queues flows and checks every frame: content,
// RX queue (RSS), per-flow order with no loss and no duplicate. At most
// window frames are in flight (sent but not yet received), so that a slow
// receiver cannot make the device drop.
func runTraffic(t testing.TB, p *simPair, queues, total int, window int64) trafficResult {
	ports, flowQueue := pickFlows(t, p, queues, 4)
	flows := len(ports)
	var (
		res      = trafficResult{perRxQueue: make([]int64, queues)}
		sent     atomic.Int64
		received atomic.Int64
		bytes    atomic.Uint64
		failed   atomic.Bool
		errMu    sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
		failed.Store(true)
	}
	// Frames per flow: flow f gets frames f, f+flows, ... of the total.
	perFlow := make([]int, flows)
	for i := 0; i < total; i++ {
		perFlow[i%flows]++
	}
	deadline := time.Now().Add(5 * time.Minute)
	for q := 0; q < queues; q++ {
		wg.Add(2)
		// Sender for TX queue q: flows f with f%queues == q.
		go func(q int) {
			defer wg.Done()
			pool, err := dma.NewMempool(p.a.Allocator(), dma.MempoolConfig{Name: fmt.Sprintf("gen%d", q), Buffers: 1024})
			if err != nil {
				fail(err)
				return
			}
			defer func() {
				// Every buffer must be back once TX queue q is stopped;
				// checked by the caller through the pool list.
				genPools[q] = pool
			}()
			var myFlows []int
			for f := q; f < flows; f += queues {
				myFlows = append(myFlows, f)
			}
			next := make([]int, flows)
			specs := make([]frameSpec, flows)
			for _, f := range myFlows {
				specs[f] = frameSpec{srcMAC: p.a.MAC(), dstMAC: p.b.MAC(), srcPort: ports[f]}
			}
			batch := make([]dma.Packet, 32)
			k := 0
			for !failed.Load() {
				if time.Now().After(deadline) {
					fail(errors.New("sender: timeout"))
					return
				}
				// Fill the batch round-robin over this queue's flows.
				n := 0
				for n < len(batch) {
					f := -1
					for j := 0; j < len(myFlows); j++ {
						c := myFlows[(k+j)%len(myFlows)]
						if next[c] < perFlow[c] {
							f = c
							k = (k + j + 1) % len(myFlows)
							break
						}
					}
					if f < 0 {
						break
					}
					pkt, err := pool.Alloc()
					if err != nil {
						break // all in the TX ring: send what we have
					}
					l := frameLen(f, next[f])
					pkt.Len = uint16(l)
					buildFrame(pkt.Data(), &specs[f], f, q, next[f])
					next[f]++
					batch[n] = pkt
					n++
				}
				if n == 0 {
					done := true
					for _, f := range myFlows {
						if next[f] < perFlow[f] {
							done = false
						}
					}
					if done {
						// Keep cleaning the ring so the pool fills up.
						p.a.TxBatch(q, nil)
						return
					}
					p.a.TxBatch(q, nil) // reclaim
					continue
				}
				for off := 0; off < n; {
					for sent.Load()-received.Load() > window && !failed.Load() {
						p.a.TxBatch(q, nil)
						time.Sleep(5 * time.Microsecond)
					}
					m, err := p.a.TxBatch(q, batch[off:n])
					if err != nil {
						fail(fmt.Errorf("TxBatch(%d): %w", q, err))
						return
					}
					for _, pk := range batch[off : off+m] {
						bytes.Add(uint64(pk.Len))
					}
					sent.Add(int64(m))
					off += m
					if failed.Load() {
						pool.FreeBatch(batch[off:n])
						return
					}
				}
			}
		}(q)
		// Receiver for RX queue q.
		go func(q int) {
			defer wg.Done()
			nextSeq := make([]int, flows)
			pkts := make([]dma.Packet, 64)
			var mine int64
			for !failed.Load() && received.Load() < int64(total) {
				if time.Now().After(deadline) {
					fail(errors.New("receiver: timeout"))
					return
				}
				k, err := p.b.RxBatch(q, pkts)
				if err != nil {
					fail(fmt.Errorf("RxBatch(%d): %w", q, err))
					return
				}
				if k == 0 {
					time.Sleep(2 * time.Microsecond)
					continue
				}
				for _, pk := range pkts[:k] {
					f, err := checkFrame(pk.Data())
					switch {
					case err != nil:
					case f.flow >= flows:
						err = fmt.Errorf("flow %d out of range", f.flow)
					case flowQueue[f.flow] != q:
						err = fmt.Errorf("flow %d arrived on RX queue %d, RSS says %d", f.flow, q, flowQueue[f.flow])
					case f.txq != f.flow%queues:
						err = fmt.Errorf("flow %d says TX queue %d", f.flow, f.txq)
					case f.seq != nextSeq[f.flow]:
						err = fmt.Errorf("flow %d: frame %d after %d (lost, duplicated or reordered)", f.flow, f.seq, nextSeq[f.flow]-1)
					}
					if err != nil {
						fail(fmt.Errorf("RX queue %d: %w", q, err))
						pk.Free()
						continue
					}
					nextSeq[f.flow]++
					if err := pk.Free(); err != nil {
						fail(err)
					}
				}
				mine += int64(k)
				received.Add(int64(k))
			}
			res.perRxQueue[q] = mine
		}(q)
	}
	wg.Wait()
	if firstErr != nil {
		sb, _ := p.b.ReadStats()
		sa, _ := p.a.ReadStats()
		t.Fatalf("after %d sent, %d received: %v\nA stats %+v\nB stats %+v\ncable %+v", sent.Load(), received.Load(), firstErr, sa, sb, p.cable.Stats())
	}
	res.sent, res.received, res.bytes = sent.Load(), received.Load(), bytes.Load()
	return res
}

// genPools holds the generator pools of the last runTraffic (indexed by TX
// queue), checked after the NIC is stopped.
var genPools [MaxQueues]*dma.Mempool

func trafficFrames() int {
	if *framesFlag > 0 {
		return *framesFlag
	}
	if testing.Short() || raceEnabled {
		return 100_000
	}
	return 1_000_000
}

// TestTrafficSim sends a million frames of mixed sizes from NIC A to NIC B
// over four queues (free-running simulators, RSS on B) and checks every
// frame's content, queue and order, B's statistics against what was sent,
// and that every pool is full again afterwards.
func TestTrafficSim(t *testing.T) {
	const queues = 4
	total := trafficFrames()
	p := newSimPair(t, pairOpts{
		mode: ixgbesim.FreeRunning,
		cfgA: Config{TxQueues: queues},
		cfgB: Config{RxQueues: queues},
	})
	p.waitLinks(t)
	genPools = [MaxQueues]*dma.Mempool{}
	start := time.Now()
	res := runTraffic(t, p, queues, total, 192)
	elapsed := time.Since(start)
	t.Logf("%d frames, %d bytes in %v (%.0f frames/s); per RX queue %v", res.received, res.bytes, elapsed, float64(res.received)/elapsed.Seconds(), res.perRxQueue)
	if res.sent != int64(total) || res.received != int64(total) {
		t.Fatalf("sent %d, received %d, want %d", res.sent, res.received, total)
	}
	sa, err := p.a.ReadStats()
	if err != nil {
		t.Fatal(err)
	}
	sb, err := p.b.ReadStats()
	if err != nil {
		t.Fatal(err)
	}
	n := uint64(total)
	// Octet counters include the 4-byte FCS (datasheet 8.2.3.23.18, .20).
	wire := res.bytes + 4*n
	if sa.TxPackets != n || sa.TxBytes != wire {
		t.Errorf("A: GPTC %d, GOTC %d; want %d, %d", sa.TxPackets, sa.TxBytes, n, wire)
	}
	if sb.RxPackets != n || sb.RxBytes != wire || sb.RxMissed != 0 || sb.RxDropped != 0 || sb.RxCRCErrors != 0 {
		t.Errorf("B: GPRC %d GORC %d MPC %d QPRDC %d CRCERRS %d; want %d, %d, 0, 0, 0", sb.RxPackets, sb.RxBytes, sb.RxMissed, sb.RxDropped, sb.RxCRCErrors, n, wire)
	}
	var qpkts, qbytes, qtx uint64
	for q := 0; q < queues; q++ {
		if sb.Queues[q].RxPackets != uint64(res.perRxQueue[q]) {
			t.Errorf("B queue %d: QPRC %d, driver received %d", q, sb.Queues[q].RxPackets, res.perRxQueue[q])
		}
		if res.perRxQueue[q] == 0 {
			t.Errorf("B queue %d received nothing: RSS does not spread", q)
		}
		qpkts += sb.Queues[q].RxPackets
		qbytes += sb.Queues[q].RxBytes
		qtx += sa.Queues[q].TxPackets
	}
	if qpkts != n || qbytes != res.bytes || qtx != n {
		t.Errorf("per-queue sums: QPRC %d QBRC %d QPTC %d; want %d, %d, %d", qpkts, qbytes, qtx, n, res.bytes, n)
	}
	// Stop drains A's TX rings; then every pool must be full.
	if err := p.a.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.b.Stop(); err != nil {
		t.Fatal(err)
	}
	for q := 0; q < queues; q++ {
		if gp := genPools[q]; gp == nil || gp.Available() != gp.Size() {
			t.Errorf("generator pool %d not full after stop", q)
		}
		if rp := p.b.RxPool(q); rp.InUse() != 0 {
			t.Errorf("B RX pool %d: %d buffers out", q, rp.InUse())
		}
	}
	for q := 0; q < queues; q++ {
		genPools[q].Release()
	}
	if err := p.a.Close(); err != nil {
		t.Error(err)
	}
	if err := p.b.Close(); err != nil {
		t.Error(err)
	}
	p.checkClean(t)
}
