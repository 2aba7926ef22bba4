package models

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/verinic/verinic/trace"
)

// FIFO histories for porcupine.
//
// A queue with one producer: its enqueues are totally ordered (program
// order), so the k-th enqueue carries position k and the model's state is
// just (enqueued, dequeued-up-to) positions into the producer's sequence:
// small, comparable and cheap to hash. A dequeue names the positions of
// the values it returned.
//
//   - strict FIFO (a descriptor ring: what the driver posts the device takes,
//     in order, nothing skipped): a dequeue must take exactly the next
//     position;
//   - lossy FIFO (a wire between two NICs: frames may be lost, never
//     duplicated or reordered): a dequeue may skip positions, never go back.
//
// What porcupine can and cannot see of the driver bugs of ixgbe/bugs.go
// (TestDriverBugsRejected; trace validation rejects all five):
//
//   - reclaim without DD, double post: the ring FIFO of buffer addresses
//     stays in order (the same buffer goes in twice and comes out twice);
//     the wire FIFO sees the frames sent twice (duplicated tags);
//   - wrap off by one: a descriptor posted at index N is never fetched, so
//     the ring FIFO is broken; on the wire it is only a lost frame, which
//     a lossy FIFO allows;
//   - refill of a device-owned slot: the overwritten descriptor's buffer is
//     never filled (ring FIFO broken); on the wire nothing is amiss;
//   - tail before descriptor: seen by the ring FIFO only if the device
//     fetches inside the window between the tail write and the descriptor
//     writes (a device that reacts to the doorbell at once, or a lucky
//     race when free-running); a device that moves only between driver
//     calls finds every descriptor written, and no history shows the bug.
//
// Histories are partitioned by queue, and each partition is cut at
// quiescent points (no operation in flight), the state there being known,
// so that no piece exceeds SegmentOps operations: porcupine's memory grows
// with the square of a history's length.

// fifoState is the model state: E values enqueued, next dequeue from D.
type fifoState struct{ E, D int }

// fifoIn is an operation's input.
type fifoIn struct {
	Enq   bool
	First int   // enqueue: position of the first value
	Count int   // enqueue: how many values
	Pos   []int // dequeue: positions of the values returned, in order
	What  string
}

// fifoModel is a strict or lossy single-producer FIFO.
func fifoModel(lossy bool, init fifoState) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return init },
		Step: func(state, input, _ any) (bool, any) {
			s, in := state.(fifoState), input.(fifoIn)
			if in.Enq {
				if s.E != in.First {
					return false, s
				}
				return true, fifoState{E: s.E + in.Count, D: s.D}
			}
			for _, p := range in.Pos {
				if p < s.D || p >= s.E || (!lossy && p != s.D) {
					return false, s
				}
				s.D = p + 1
			}
			return true, s
		},
		Hash: func(state any) uint64 {
			s := state.(fifoState)
			return uint64(s.E)*0x9E3779B97F4A7C15 ^ uint64(s.D)
		},
		DescribeOperation: func(input, _ any) string { return input.(fifoIn).What },
		DescribeState: func(state any) string {
			s := state.(fifoState)
			return fmt.Sprintf("enqueued %d, dequeued up to %d", s.E, s.D)
		},
	}
}

// FIFOOptions tunes a linearizability check.
type FIFOOptions struct {
	// SegmentOps bounds the operations of one porcupine history (default
	// 4000); longer partitions are cut at quiescent points.
	SegmentOps int
	// Timeout bounds each segment's check (default 30 s); a timeout makes
	// the result Unknown.
	Timeout time.Duration
	// VisualizeDir, when set, receives porcupine's HTML visualization of a
	// failing segment, named <prefix>-<partition>.html.
	VisualizeDir string
	Prefix       string
}

func (o *FIFOOptions) defaults() {
	if o.SegmentOps <= 0 {
		o.SegmentOps = 4000
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Prefix == "" {
		o.Prefix = "porcupine"
	}
}

// FIFOReport is the outcome of a FIFO linearizability check.
type FIFOReport struct {
	Partitions  int
	Ops         int
	Segments    int
	LargestSeg  int // operations in the largest segment checked
	Result      porcupine.CheckResult
	Failed      string // the partition that is not linearizable, or timed out
	FailedWhere string // the first operation of the failing segment
	HTML        string // visualization written for the failure, if any
}

// partitionOps is one partition's operations with client 0 the producer.
type partitionOps struct {
	name  string
	lossy bool
	ops   []porcupine.Operation
}

// checkPartitions runs porcupine over every partition, segment by segment.
func checkPartitions(parts []partitionOps, opt FIFOOptions) (*FIFOReport, error) {
	opt.defaults()
	rep := &FIFOReport{Partitions: len(parts), Result: porcupine.Ok}
	for _, p := range parts {
		rep.Ops += len(p.ops)
		ops := p.ops
		sort.SliceStable(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
		state := fifoState{}
		start := 0
		var maxRet int64 = -1 << 62
		flush := func(end int) (bool, error) {
			seg := ops[start:end]
			if len(seg) == 0 {
				return true, nil
			}
			rep.Segments++
			rep.LargestSeg = max(rep.LargestSeg, len(seg))
			model := fifoModel(p.lossy, state)
			res, info := porcupine.CheckOperationsVerbose(model, seg, opt.Timeout)
			if res != porcupine.Ok {
				rep.Result = res
				rep.Failed = p.name
				rep.FailedWhere = seg[0].Input.(fifoIn).What
				if opt.VisualizeDir != "" {
					path := filepath.Join(opt.VisualizeDir, opt.Prefix+"-"+sanitize(p.name)+".html")
					if err := porcupine.VisualizePath(model, info, path); err != nil {
						return false, fmt.Errorf("models: writing porcupine visualization: %w", err)
					}
					rep.HTML = path
				}
				return false, nil
			}
			// The state after a linearizable segment that ends quiescent.
			for _, op := range seg {
				in := op.Input.(fifoIn)
				if in.Enq {
					state.E = max(state.E, in.First+in.Count)
				} else if len(in.Pos) > 0 {
					state.D = max(state.D, in.Pos[len(in.Pos)-1]+1)
				}
			}
			start = end
			return true, nil
		}
		for i, op := range ops {
			if i > start && i-start >= opt.SegmentOps {
				if maxRet < op.Call {
					if ok, err := flush(i); !ok || err != nil {
						return rep, err
					}
				} else if i-start >= 4*opt.SegmentOps {
					// No quiescent point: porcupine could not hold the
					// history; say so rather than exhaust memory.
					rep.Result = porcupine.Unknown
					rep.Failed = p.name
					rep.FailedWhere = fmt.Sprintf("%s: no quiescent point within %d operations, the history cannot be cut",
						ops[start].Input.(fifoIn).What, i-start)
					return rep, nil
				}
			}
			maxRet = max(maxRet, op.Return)
		}
		if ok, err := flush(len(ops)); !ok || err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

// CheckRingFIFO checks, per ring, that buffers go through it as through a
// FIFO queue: the driver's posts are the enqueues (interval: from the post
// to the tail write that publishes it), and the device's descriptor
// fetches are the dequeues (or, in a trace without device events, the
// driver's reclaims and hand-ups, and then TX context descriptors, which
// hold no buffer, are left out). Values are buffer addresses.
func CheckRingFIFO(events []trace.Event, opt FIFOOptions) (*FIFOReport, error) {
	type ring struct {
		posts     []trace.Event
		postEnd   []int64
		open      []int // posts not yet published by a tail write
		fetches   []trace.Event
		reclaims  []trace.Event
		hasDevice bool
	}
	rings := map[RingKey]*ring{}
	get := func(e trace.Event) *ring {
		k := RingKey{e.Dev, e.Dir, e.Queue}
		r := rings[k]
		if r == nil {
			r = &ring{}
			rings[k] = r
		}
		return r
	}
	for _, e := range events {
		switch e.Kind {
		case trace.DrvPost:
			r := get(e)
			r.open = append(r.open, len(r.posts))
			r.posts = append(r.posts, e)
			r.postEnd = append(r.postEnd, int64(e.Seq))
		case trace.DrvTail:
			r := get(e)
			for _, i := range r.open {
				r.postEnd[i] = int64(e.Seq)
			}
			r.open = r.open[:0]
		case trace.DrvReclaim:
			r := get(e)
			r.reclaims = append(r.reclaims, e)
		case trace.DevFetch:
			r := get(e)
			r.fetches = append(r.fetches, e)
			r.hasDevice = true
		case trace.DevWriteBack, trace.DevDMA, trace.DevHead:
			get(e).hasDevice = true
		}
	}
	keys := make([]RingKey, 0, len(rings))
	for k := range rings {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	var parts []partitionOps
	for _, k := range keys {
		r := rings[k]
		p := partitionOps{name: "ring " + k.String()}
		if !r.hasDevice {
			// The dequeues are the driver's reclaims: a TX context
			// descriptor (trace.PostContext; datasheet 7.2.3.2.3) holds
			// no buffer and is never reclaimed as one, so it is no
			// enqueue either. (The device's fetches take it: with
			// device events it stays.)
			posts, ends := r.posts[:0:0], r.postEnd[:0:0]
			for i, e := range r.posts {
				if e.Dir == trace.TX && e.Aux&trace.PostContext != 0 {
					continue
				}
				posts, ends = append(posts, e), append(ends, r.postEnd[i])
			}
			r.posts, r.postEnd = posts, ends
		}
		// Position of each posted buffer value, in order, for dequeues to
		// name: a dequeue of value v takes the next unconsumed post of v.
		next := map[uint64][]int{}
		for i, e := range r.posts {
			next[e.Buf] = append(next[e.Buf], i)
			p.ops = append(p.ops, porcupine.Operation{
				ClientId: 0, Input: fifoIn{Enq: true, First: i, Count: 1,
					What: fmt.Sprintf("post %#x at %d (seq %d)", e.Buf, e.Index, e.Seq)},
				Call: int64(e.Seq), Return: r.postEnd[i],
			})
		}
		deq, verb := r.reclaims, "reclaim"
		if r.hasDevice {
			deq, verb = r.fetches, "device fetch"
		}
		for _, e := range deq {
			pos := -1 // a value never posted: no linearization can explain it
			if q := next[e.Buf]; len(q) > 0 {
				pos, next[e.Buf] = q[0], q[1:]
			}
			in := fifoIn{Pos: []int{pos}, What: fmt.Sprintf("%s %#x at %d (seq %d)", verb, e.Buf, e.Index, e.Seq)}
			p.ops = append(p.ops, porcupine.Operation{ClientId: 1, Input: in, Call: int64(e.Seq), Return: int64(e.Seq)})
		}
		parts = append(parts, p)
	}
	return checkPartitions(parts, opt)
}

// CheckWireFIFO checks the application's view of a pair of NICs: frames
// handed to TxBatch on one side (app_call_tx … app_packet … app_ret_tx)
// come out of RxBatch on the other (app_call_rx … app_ret_rx) as from a
// lossy FIFO queue: possibly lost, never duplicated or reordered.
// Operations are the calls' intervals; values are the frames' tags.
// Partitions are (TX queue, RX queue) pairs.
func CheckWireFIFO(events []trace.Event, opt FIFOOptions) (*FIFOReport, error) {
	type call struct {
		key   RingKey
		start uint64
		end   uint64
		tags  []uint64
	}
	openCalls := map[RingKey]*call{}
	var txCalls, rxCalls []*call
	for _, e := range events {
		k := RingKey{e.Dev, e.Dir, e.Queue}
		switch e.Kind {
		case trace.AppCallTx, trace.AppCallRx:
			if openCalls[k] != nil {
				return nil, fmt.Errorf("models: seq %d: %s while a call on %s is still open", e.Seq, e.Kind, k)
			}
			openCalls[k] = &call{key: k, start: e.Seq}
		case trace.AppPacket:
			c := openCalls[k]
			if c == nil {
				return nil, fmt.Errorf("models: seq %d: app_packet outside a call on %s", e.Seq, k)
			}
			c.tags = append(c.tags, e.Buf)
		case trace.AppRetTx, trace.AppRetRx:
			c := openCalls[k]
			if c == nil {
				return nil, fmt.Errorf("models: seq %d: %s without a call on %s", e.Seq, e.Kind, k)
			}
			c.end = e.Seq
			delete(openCalls, k)
			if e.Kind == trace.AppRetTx {
				txCalls = append(txCalls, c)
			} else {
				rxCalls = append(rxCalls, c)
			}
		}
	}
	// Where was each tag sent, at which position of its TX queue?
	type origin struct {
		q   RingKey
		pos int
	}
	sent := map[uint64]origin{}
	count := map[RingKey]int{}
	type enq struct {
		c     *call
		first int
	}
	txByQueue := map[RingKey][]enq{}
	for _, c := range txCalls {
		first := count[c.key]
		for _, t := range c.tags {
			if _, dup := sent[t]; dup {
				return nil, fmt.Errorf("models: tag %#x sent twice: tags must identify frames", t)
			}
			sent[t] = origin{c.key, count[c.key]}
			count[c.key]++
		}
		txByQueue[c.key] = append(txByQueue[c.key], enq{c, first})
	}
	type pairKey struct{ tx, rx RingKey }
	deqs := map[pairKey][]porcupine.Operation{}
	unknown := map[RingKey][]porcupine.Operation{}
	for _, c := range rxCalls {
		byTx := map[RingKey][]int{}
		var order []RingKey
		for _, t := range c.tags {
			o, ok := sent[t]
			if !ok {
				in := fifoIn{Pos: []int{-1}, What: fmt.Sprintf("receive on %s: tag %#x that was never sent", c.key, t)}
				unknown[c.key] = append(unknown[c.key], porcupine.Operation{ClientId: 1, Input: in, Call: int64(c.start), Return: int64(c.end)})
				continue
			}
			if _, seen := byTx[o.q]; !seen {
				order = append(order, o.q)
			}
			byTx[o.q] = append(byTx[o.q], o.pos)
		}
		for _, q := range order {
			in := fifoIn{Pos: byTx[q], What: fmt.Sprintf("RxBatch on %s (seq %d-%d): %d frames from %s, positions %v",
				c.key, c.start, c.end, len(byTx[q]), q, byTx[q])}
			pk := pairKey{q, c.key}
			deqs[pk] = append(deqs[pk], porcupine.Operation{ClientId: 1, Input: in, Call: int64(c.start), Return: int64(c.end)})
		}
	}
	var parts []partitionOps
	pairs := make([]pairKey, 0, len(deqs))
	for pk := range deqs {
		pairs = append(pairs, pk)
	}
	sort.Slice(pairs, func(i, j int) bool {
		return pairs[i].tx.String()+pairs[i].rx.String() < pairs[j].tx.String()+pairs[j].rx.String()
	})
	for _, pk := range pairs {
		p := partitionOps{name: pk.tx.String() + " to " + pk.rx.String(), lossy: true}
		for _, en := range txByQueue[pk.tx] {
			in := fifoIn{Enq: true, First: en.first, Count: len(en.c.tags),
				What: fmt.Sprintf("TxBatch on %s (seq %d-%d): %d frames, positions %d..", pk.tx, en.c.start, en.c.end, len(en.c.tags), en.first)}
			p.ops = append(p.ops, porcupine.Operation{ClientId: 0, Input: in, Call: int64(en.c.start), Return: int64(en.c.end)})
		}
		p.ops = append(p.ops, deqs[pk]...)
		parts = append(parts, p)
	}
	for q, ops := range unknown {
		parts = append(parts, partitionOps{name: "unsent frames on " + q.String(), lossy: true, ops: ops})
	}
	return checkPartitions(parts, opt)
}
