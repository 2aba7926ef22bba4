package models

import (
	"container/heap"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/verinic/verinic/trace"
)

// TCP byte streams for porcupine.
//
// One direction of one TCP connection is a byte stream: the writer's
// app_write events are the Write operations (interval [Call, T], effect:
// the bytes accepted are appended), the peer's app_read events are the Read
// operations (effect: the bytes returned are taken from the front, or the
// end of the stream is reported), and the writer's app_close events
// (CloseWrite or Close) end the stream. Porcupine checks that some order of
// these operations, consistent with real time, is legal:
//
//   - the bytes read, concatenated, are a prefix of the bytes written,
//     concatenated: nothing lost in the middle, nothing twice, nothing
//     invented, in order;
//   - a read returns only bytes of writes linearized before it, so never
//     bytes whose write had not yet been called when the read returned;
//   - EOF only after the writer's close, once every written byte was read;
//     no write after the close.
//
// What nondeterminism there is: the order of the writes (which fixes the
// stream) and, for each read, which writes preceded it. The first is
// resolved by the writes' recorded stream offsets (app_write Buf: the
// bytes the connection had accepted before, assigned under the
// connection's lock): the model accepts a write only when the stream holds
// exactly that many bytes, so the writes must tile the stream in offset
// order, and that order must agree with real time. With one writer
// goroutine this is the call order; with concurrent writers it is the order
// the connection admitted them, checked, not trusted. The stream is then a
// fixed sequence of byte ranges of the writes' own Data (shared, never
// copied), and a state is three numbers: bytes written, bytes read, closed.
// States are comparable and hash cheaply, so porcupine's cache works, and a
// read compares its bytes with the written ones at the state's read offset
// (precomputed at the read's own recorded offset, the usual case).
//
// Long histories are cut into segments (see cutStream): at a point where no
// operation is in flight, or where only one write and one read are (each of
// them overlapping no other operation of its kind, and no close in
// flight): the write goes to the earlier segment, the read to the later one.
// Both moves are sound and complete for this model: a write linearized
// earlier only makes more bytes readable (and must precede the close in
// any case), a read linearized later sees the same bytes at the same
// offset. So a writer and a reader that each do one call at a time can be
// cut almost anywhere, and porcupine's cost stays linear in the history.
//
// Events recorded without their bytes (the recorder's data arena was full:
// Len > 0 and Data empty) are checked by length and offset only; the
// result counts those bytes as Unchecked.

// StreamVerdict is the outcome for one direction of a connection.
type StreamVerdict uint8

// Verdicts.
const (
	StreamHeld     StreamVerdict = iota // linearizable as a byte stream
	StreamViolated                      // not linearizable: Reason names the first bad operation
	StreamUnknown                       // time limit, or a history that cannot be cut
	StreamSkipped                       // not checkable from this trace (no peer, no tcp_open)
)

func (v StreamVerdict) String() string {
	switch v {
	case StreamHeld:
		return "held"
	case StreamViolated:
		return "violated"
	case StreamUnknown:
		return "unknown"
	case StreamSkipped:
		return "skipped"
	}
	return "invalid"
}

// TCPStreamOptions tunes CheckTCPStreamsOptions.
type TCPStreamOptions struct {
	// Timeout bounds the check of one direction (0: no limit); when it
	// runs out the direction's verdict is StreamUnknown.
	Timeout time.Duration
	// SegmentOps is the size from which a history is cut at the next
	// possible point (default 1000).
	SegmentOps int
	// MaxSegmentOps is the largest history handed to porcupine (default
	// 50000): a direction with no cut point within it is StreamUnknown.
	MaxSegmentOps int
	// Workers checks this many directions at once (default GOMAXPROCS).
	Workers int
}

func (o *TCPStreamOptions) defaults() {
	if o.SegmentOps <= 0 {
		o.SegmentOps = 1000
	}
	if o.MaxSegmentOps < o.SegmentOps {
		o.MaxSegmentOps = max(50000, o.SegmentOps)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
}

// TCPConnInfo describes one connection of a trace.
type TCPConnInfo struct {
	Conn          uint32
	Opened        bool // the trace has its tcp_open
	Local, Remote netip.AddrPort
	Peer          uint32 // the connection at the other end, when HasPeer
	HasPeer       bool
	Events        int // events of this connection (every TCP kind)
}

// TCPStreamResult is the outcome for one direction: Writer's writes, read
// by Reader. A connection without a peer in the trace has one result,
// StreamSkipped, with Reader = Writer and HasReader false.
type TCPStreamResult struct {
	Writer, Reader uint32
	HasReader      bool
	Local, Remote  netip.AddrPort // the writer's addresses
	Verdict        StreamVerdict
	// Reason says why the verdict is not StreamHeld: the first bad
	// operation and what is wrong with it, the time limit, or why the
	// direction was skipped.
	Reason string
	// BadSeq is the trace seq of the first bad operation (StreamViolated).
	BadSeq                uint64
	Writes, Reads, Closes int
	BytesWritten          uint64
	BytesRead             uint64
	// Unchecked counts bytes of writes and reads recorded without their
	// data: checked by length and offset only, not by content.
	Unchecked      uint64
	Segments       int
	LargestSegment int
	Elapsed        time.Duration

	viz *streamViz // the failing segment, for WriteVisualization
}

// Direction names the direction: "conn 3 -> conn 4".
func (r *TCPStreamResult) Direction() string {
	if !r.HasReader {
		return fmt.Sprintf("conn %d", r.Writer)
	}
	return fmt.Sprintf("conn %d -> conn %d", r.Writer, r.Reader)
}

type streamViz struct {
	model porcupine.Model
	info  porcupine.LinearizationInfo
}

// TCPStreamReport is the outcome of CheckTCPStreams.
type TCPStreamReport struct {
	Conns   []TCPConnInfo     // by connection number
	Results []TCPStreamResult // by writer, then reader
	Ops     int               // operations checked
	Elapsed time.Duration
}

// Count returns how many directions have verdict v.
func (r TCPStreamReport) Count(v StreamVerdict) int {
	n := 0
	for i := range r.Results {
		if r.Results[i].Verdict == v {
			n++
		}
	}
	return n
}

// Violated reports whether some direction is not a byte stream.
func (r TCPStreamReport) Violated() bool { return r.Count(StreamViolated) > 0 }

// ForConn returns the results of the directions connection c writes or
// reads.
func (r TCPStreamReport) ForConn(c uint32) []TCPStreamResult {
	var out []TCPStreamResult
	for _, res := range r.Results {
		if res.Writer == c || (res.HasReader && res.Reader == c) {
			out = append(out, res)
		}
	}
	return out
}

// WriteVisualization writes porcupine's HTML visualization of each
// violated direction's failing history into dir, as
// tcp-stream-conn<W>-to-conn<R>.html, and returns the paths written.
func (r TCPStreamReport) WriteVisualization(dir string) ([]string, error) {
	var paths []string
	for _, res := range r.Results {
		if res.viz == nil {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return paths, fmt.Errorf("models: %w", err)
		}
		p := filepath.Join(dir, fmt.Sprintf("tcp-stream-conn%d-to-conn%d.html", res.Writer, res.Reader))
		if err := porcupine.VisualizePath(res.viz.model, res.viz.info, p); err != nil {
			return paths, fmt.Errorf("models: writing porcupine visualization: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// CheckTCPStreams checks every direction of every connection of the trace
// as a byte stream with porcupine, each within timeout (0: no limit).
func CheckTCPStreams(events []trace.Event, timeout time.Duration) TCPStreamReport {
	return CheckTCPStreamsOptions(events, TCPStreamOptions{Timeout: timeout})
}

// bsKind is an operation's kind.
type bsKind uint8

const (
	bsWrite bsKind = iota
	bsRead
	bsClose
)

// bsOp is one operation, porcupine's Input (a pointer: the model never
// copies the bytes).
type bsOp struct {
	kind  bsKind
	eof   bool // read: reported the end of the stream
	half  bool // close: CloseWrite
	known bool // the bytes were recorded (or there are none)
	same  bool // overlaps another operation of its kind in time
	// claim is a read's content check at its recorded offset: 1 matches,
	// -1 differs, 0 not computed.
	claim int8
	conn  uint32
	seq   uint64
	off   uint64 // recorded stream offset
	n     uint64
	call  int64
	ret   int64
	data  string
}

func (o *bsOp) String() string {
	switch o.kind {
	case bsWrite:
		return fmt.Sprintf("write seq %d (conn %d): %d bytes at offset %d%s", o.seq, o.conn, o.n, o.off, quoteSome(o))
	case bsClose:
		if o.half {
			return fmt.Sprintf("CloseWrite seq %d (conn %d)", o.seq, o.conn)
		}
		return fmt.Sprintf("Close seq %d (conn %d)", o.seq, o.conn)
	}
	if o.n == 0 {
		return fmt.Sprintf("read seq %d (conn %d): EOF", o.seq, o.conn)
	}
	s := fmt.Sprintf("read seq %d (conn %d): %d bytes at offset %d%s", o.seq, o.conn, o.n, o.off, quoteSome(o))
	if o.eof {
		s += " and EOF"
	}
	return s
}

func quoteSome(o *bsOp) string {
	if o.n == 0 {
		return ""
	}
	if !o.known {
		return " (bytes not recorded)"
	}
	d := o.data
	if len(d) > 24 {
		return " " + strconv.Quote(d[:24]) + "…"
	}
	return " " + strconv.Quote(d)
}

// bsState is the model's state: bytes written (W) and read (R), closed.
type bsState struct {
	W, R   uint64
	Closed bool
}

// bsTile is a write's place in the stream.
type bsTile struct {
	off, n uint64
	data   string
	known  bool
	seq    uint64
}

// bsStream is one direction's written stream: the writes that tile it in
// offset order, from 0.
type bsStream struct {
	tiles []bsTile
	end   uint64
}

// diff returns the first stream offset at or after r where data differs
// from the written bytes (bytes not recorded match anything), or -1.
func (s *bsStream) diff(r uint64, data string) int64 {
	i := sort.Search(len(s.tiles), func(i int) bool { return s.tiles[i].off+s.tiles[i].n > r })
	for len(data) > 0 {
		if i >= len(s.tiles) {
			return int64(r)
		}
		t := &s.tiles[i]
		start := r - t.off
		k := min(t.n-start, uint64(len(data)))
		if t.known && t.data[start:start+k] != data[:k] {
			for j := uint64(0); j < k; j++ {
				if t.data[start+j] != data[j] {
					return int64(r + j)
				}
			}
		}
		data = data[k:]
		r += k
		i++
	}
	return -1
}

func (s *bsStream) matches(r uint64, o *bsOp) bool {
	if !o.known {
		return true
	}
	if r == o.off && o.claim != 0 {
		return o.claim > 0
	}
	return s.diff(r, o.data) < 0
}

// step is the model's transition; it never changes anything it is given.
func (s *bsStream) step(st bsState, o *bsOp) (bool, bsState) {
	switch o.kind {
	case bsWrite:
		if st.Closed || st.W != o.off {
			return false, st
		}
		st.W += o.n
	case bsClose:
		st.Closed = true
	case bsRead:
		if o.n > 0 {
			if st.R+o.n > st.W || !s.matches(st.R, o) {
				return false, st
			}
			st.R += o.n
		}
		if o.eof && (!st.Closed || st.R != st.W) {
			return false, st
		}
	}
	return true, st
}

// explain says why o cannot follow state st.
func (s *bsStream) explain(st bsState, o *bsOp) string {
	switch o.kind {
	case bsWrite:
		if st.Closed {
			return "a write after the writer's close"
		}
		return fmt.Sprintf("recorded at stream offset %d, but the stream held %d bytes where it could take effect (bytes lost, duplicated or reordered by the writer side)", o.off, st.W)
	case bsClose:
		return "close cannot take effect"
	}
	if o.n > 0 {
		if d := s.diff(st.R, o.data); o.known && d >= 0 && uint64(d) < s.end {
			t := s.tileAt(uint64(d))
			got := o.data[uint64(d)-st.R]
			return fmt.Sprintf("byte at stream offset %d is %q, but write seq %d wrote %q there (after %d bytes read correctly)",
				d, got, t.seq, t.data[uint64(d)-t.off], st.R)
		}
		if st.R+o.n > s.end {
			return fmt.Sprintf("reads stream bytes %d..%d, but only %d bytes were ever written (bytes invented or duplicated)", st.R, st.R+o.n, s.end)
		}
		if st.R+o.n > st.W {
			return fmt.Sprintf("returns stream bytes %d..%d, of which only %d were written by writes called before it returned", st.R, st.R+o.n, st.W)
		}
	}
	if o.eof {
		if !st.Closed {
			return fmt.Sprintf("EOF before the writer's close (CloseWrite or Close) was called (%d bytes read)", st.R+o.n)
		}
		return fmt.Sprintf("EOF with %d written bytes not read (%d read of %d)", st.W-st.R-o.n, st.R+o.n, st.W)
	}
	return "no order of the operations explains it"
}

func (s *bsStream) tileAt(r uint64) *bsTile {
	i := sort.Search(len(s.tiles), func(i int) bool { return s.tiles[i].off+s.tiles[i].n > r })
	return &s.tiles[i]
}

func (s *bsStream) model(init bsState) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return init },
		Step: func(state, input, _ any) (bool, any) {
			return s.step(state.(bsState), input.(*bsOp))
		},
		Hash: func(state any) uint64 {
			st := state.(bsState)
			h := st.W*0x9E3779B97F4A7C15 ^ st.R*0xC2B2AE3D27D4EB4F
			if st.Closed {
				h ^= 0x165667B19E3779F9
			}
			return h
		},
		DescribeOperation: func(input, _ any) string { return input.(*bsOp).String() },
		DescribeState: func(state any) string {
			st := state.(bsState)
			s := fmt.Sprintf("written %d, read %d", st.W, st.R)
			if st.Closed {
				s += ", closed"
			}
			return s
		},
	}
}

// tcpConnRec gathers one connection's events.
type tcpConnRec struct {
	info                  TCPConnInfo
	openSeq               uint64
	writes, reads, closes []*bsOp
}

// CheckTCPStreamsOptions is CheckTCPStreams with options.
func CheckTCPStreamsOptions(events []trace.Event, opt TCPStreamOptions) TCPStreamReport {
	opt.defaults()
	start := time.Now()
	conns := map[uint32]*tcpConnRec{}
	get := func(c uint32) *tcpConnRec {
		r := conns[c]
		if r == nil {
			r = &tcpConnRec{info: TCPConnInfo{Conn: c}}
			conns[c] = r
		}
		return r
	}
	op := func(e *trace.Event, k bsKind) *bsOp {
		ret := max(e.T, e.Call)
		o := &bsOp{kind: k, conn: e.Conn, seq: e.Seq, off: e.Buf, n: uint64(e.Len), call: e.Call, ret: ret, data: e.Data}
		o.known = e.Len == 0 || len(e.Data) == int(e.Len)
		return o
	}
	for i := range events {
		e := &events[i]
		if !e.Kind.IsTCP() {
			continue
		}
		c := get(e.Conn)
		c.info.Events++
		switch e.Kind {
		case trace.TCPOpen:
			if !c.info.Opened {
				c.info.Opened = true
				c.openSeq = e.Seq
				c.info.Local, c.info.Remote = trace.UnpackAddrPort(e.Buf), trace.UnpackAddrPort(e.Aux)
			}
		case trace.AppWrite:
			if e.Len > 0 {
				c.writes = append(c.writes, op(e, bsWrite))
			}
		case trace.AppRead:
			if e.Len > 0 || e.Flags&1 != 0 {
				o := op(e, bsRead)
				o.eof = e.Flags&1 != 0
				c.reads = append(c.reads, o)
			}
		case trace.AppClose:
			o := op(e, bsClose)
			o.n, o.off, o.known, o.half = 0, 0, true, e.Index == 1
			c.closes = append(c.closes, o)
		}
	}

	// Pair connections: the i-th connection opened with addresses (a, b)
	// and the i-th with (b, a) are the two ends of one connection.
	ids := make([]uint32, 0, len(conns))
	for id := range conns {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	type tuple struct{ l, r netip.AddrPort }
	byTuple := map[tuple][]*tcpConnRec{}
	opened := make([]*tcpConnRec, 0, len(ids))
	for _, id := range ids {
		if c := conns[id]; c.info.Opened {
			opened = append(opened, c)
		}
	}
	sort.SliceStable(opened, func(i, j int) bool { return opened[i].openSeq < opened[j].openSeq })
	rank := map[*tcpConnRec]int{}
	for _, c := range opened {
		k := tuple{c.info.Local, c.info.Remote}
		rank[c] = len(byTuple[k])
		byTuple[k] = append(byTuple[k], c)
	}
	for _, c := range opened {
		if peers := byTuple[tuple{c.info.Remote, c.info.Local}]; rank[c] < len(peers) {
			c.info.Peer, c.info.HasPeer = peers[rank[c]].info.Conn, true
		}
	}

	rep := TCPStreamReport{}
	type job struct {
		w, r *tcpConnRec
		idx  int
	}
	var jobs []job
	for _, id := range ids {
		c := conns[id]
		rep.Conns = append(rep.Conns, c.info)
		base := TCPStreamResult{Writer: id, Reader: id, Local: c.info.Local, Remote: c.info.Remote,
			Writes: len(c.writes), Reads: len(c.reads), Closes: len(c.closes)}
		for _, o := range c.writes {
			base.BytesWritten += o.n
		}
		for _, o := range c.reads {
			base.BytesRead += o.n
		}
		switch {
		case !c.info.Opened:
			base.Verdict = StreamSkipped
			base.Reason = "no tcp_open for this connection in the trace: its addresses, hence its peer, are unknown"
		case !c.info.HasPeer:
			base.Verdict = StreamSkipped
			base.Reason = fmt.Sprintf("no peer in trace (%v -> %v: the other end was not recorded, e.g. the Linux kernel)", c.info.Local, c.info.Remote)
		default:
			base.Reader, base.HasReader = c.info.Peer, true
			base.Reads, base.BytesRead = 0, 0
			jobs = append(jobs, job{w: c, r: conns[c.info.Peer], idx: len(rep.Results)})
		}
		rep.Results = append(rep.Results, base)
	}
	var wg sync.WaitGroup
	ch := make(chan job)
	for range min(opt.Workers, max(len(jobs), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				checkDirection(&rep.Results[j.idx], j.w, j.r, opt)
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	for _, j := range jobs {
		rep.Ops += len(j.w.writes) + len(j.w.closes) + len(j.r.reads)
	}
	rep.Elapsed = time.Since(start)
	return rep
}

// retHeap orders operation indices by return time.
type retHeap struct {
	ops []porcupine.Operation
	idx []int
}

func (h *retHeap) Len() int           { return len(h.idx) }
func (h *retHeap) Less(i, j int) bool { return h.ops[h.idx[i]].Return < h.ops[h.idx[j]].Return }
func (h *retHeap) Swap(i, j int)      { h.idx[i], h.idx[j] = h.idx[j], h.idx[i] }
func (h *retHeap) Push(x any)         { h.idx = append(h.idx, x.(int)) }
func (h *retHeap) Pop() any {
	x := h.idx[len(h.idx)-1]
	h.idx = h.idx[:len(h.idx)-1]
	return x
}

// markOverlaps sets same on each operation that overlaps in time another
// of the list (which is sorted by call).
func markOverlaps(ops []*bsOp) {
	maxRet := int64(-1 << 63)
	for i, o := range ops {
		if i > 0 && o.call <= maxRet {
			o.same = true
		}
		if i+1 < len(ops) && ops[i+1].call <= o.ret {
			o.same = true
		}
		maxRet = max(maxRet, o.ret)
	}
}

func byCall(ops []*bsOp) {
	sort.SliceStable(ops, func(i, j int) bool {
		if ops[i].call != ops[j].call {
			return ops[i].call < ops[j].call
		}
		return ops[i].seq < ops[j].seq
	})
}

// checkDirection checks w's writes and closes with r's reads.
func checkDirection(res *TCPStreamResult, w, r *tcpConnRec, opt TCPStreamOptions) {
	t0 := time.Now()
	defer func() { res.Elapsed = time.Since(t0) }()
	res.Reads = len(r.reads)
	for _, o := range r.reads {
		res.BytesRead += o.n
		if !o.known {
			res.Unchecked += o.n
		}
	}
	for _, o := range w.writes {
		if !o.known {
			res.Unchecked += o.n
		}
	}
	if len(w.writes)+len(w.closes)+len(r.reads) == 0 {
		return
	}

	// The stream: writes in offset order tiling [0, end).
	byOff := append([]*bsOp(nil), w.writes...)
	sort.SliceStable(byOff, func(i, j int) bool { return byOff[i].off < byOff[j].off })
	st := &bsStream{}
	for _, o := range byOff {
		if o.off == st.end {
			st.tiles = append(st.tiles, bsTile{off: o.off, n: o.n, data: o.data, known: o.known, seq: o.seq})
			st.end += o.n
		}
	}
	for _, o := range r.reads {
		if o.known && o.n > 0 {
			o.claim = -1
			if st.diff(o.off, o.data) < 0 {
				o.claim = 1
			}
		}
	}
	writes := append([]*bsOp(nil), w.writes...)
	byCall(writes)
	markOverlaps(writes)
	reads := append([]*bsOp(nil), r.reads...)
	byCall(reads)
	markOverlaps(reads)

	all := make([]*bsOp, 0, len(writes)+len(reads)+len(w.closes))
	all = append(append(append(all, writes...), reads...), w.closes...)
	byCall(all)
	ops := make([]porcupine.Operation, len(all))
	// Lanes for the visualization: operations of a kind that overlap get
	// different client ids (writes and closes 0.., reads 1000..).
	var lanes [2][]int64
	for i, o := range all {
		k, base := 0, 0
		if o.kind == bsRead {
			k, base = 1, 1000
		}
		lane := -1
		for l, last := range lanes[k] {
			if last < o.call {
				lane = l
				break
			}
		}
		if lane < 0 {
			lane = len(lanes[k])
			lanes[k] = append(lanes[k], 0)
		}
		lanes[k][lane] = o.ret
		ops[i] = porcupine.Operation{ClientId: base + lane, Input: o, Call: o.call, Return: o.ret}
	}

	var deadline time.Time
	if opt.Timeout > 0 {
		deadline = t0.Add(opt.Timeout)
	}
	state := bsState{}
	check := func(seg []porcupine.Operation) bool {
		if len(seg) == 0 {
			return true
		}
		res.Segments++
		res.LargestSegment = max(res.LargestSegment, len(seg))
		timeout := time.Duration(0)
		if !deadline.IsZero() {
			timeout = time.Until(deadline)
			if timeout <= 0 {
				res.Verdict = StreamUnknown
				res.Reason = fmt.Sprintf("time limit %v reached", opt.Timeout)
				return false
			}
		}
		m := st.model(state)
		switch porcupine.CheckOperationsTimeout(m, seg, timeout) {
		case porcupine.Ok:
			for _, op := range seg {
				o := op.Input.(*bsOp)
				switch o.kind {
				case bsWrite:
					state.W += o.n
				case bsRead:
					state.R += o.n
				case bsClose:
					state.Closed = true
				}
			}
			return true
		case porcupine.Unknown:
			res.Verdict = StreamUnknown
			res.Reason = fmt.Sprintf("time limit %v reached in a history of %d operations from %v", opt.Timeout, len(seg), seg[0].Input)
			return false
		}
		// Illegal: find the operation no linearization gets past.
		_, info := porcupine.CheckOperationsVerbose(m, seg, timeout)
		res.Verdict = StreamViolated
		res.viz = &streamViz{model: m, info: info}
		bad, why := firstBad(st, state, seg, info)
		res.BadSeq = bad.seq
		res.Reason = fmt.Sprintf("%v: %s", bad, why)
		return false
	}

	// Walk the operations in call order; pending holds the next segment.
	h := &retHeap{ops: ops}
	var pending []porcupine.Operation
	var carried []int // in-flight reads moved to the next segment
	segStart := 0
	for i := range ops {
		for h.Len() > 0 && ops[h.idx[0]].Return < ops[i].Call {
			heap.Pop(h)
		}
		if n := len(carried) + i - segStart; n >= opt.SegmentOps {
			if cut, carry := cutStream(ops, h.idx); cut {
				pending = pending[:0]
				for _, j := range carried {
					if !carry[j] {
						pending = append(pending, ops[j])
					}
				}
				for j := segStart; j < i; j++ {
					if !carry[j] {
						pending = append(pending, ops[j])
					}
				}
				if !check(pending) {
					return
				}
				carried = carried[:0]
				for j := range carry {
					carried = append(carried, j)
				}
				segStart = i
			} else if n >= opt.MaxSegmentOps {
				res.Verdict = StreamUnknown
				res.Reason = fmt.Sprintf("no point to cut the history within %d operations from %v (too many operations in flight at once)", n, ops[segStart].Input)
				return
			}
		}
		heap.Push(h, i)
	}
	pending = pending[:0]
	for _, j := range carried {
		pending = append(pending, ops[j])
	}
	pending = append(pending, ops[segStart:]...)
	check(pending)
}

// cutStream decides whether the history can be cut before the next
// operation, given the operations still in flight there (inflight: their
// indices). It can when none is, or when at most one write and one read
// are, neither overlapping another operation of its kind, and no close is:
// the write stays in the earlier segment, the read (carry) goes to the
// later one.
func cutStream(ops []porcupine.Operation, inflight []int) (bool, map[int]bool) {
	if len(inflight) == 0 {
		return true, nil
	}
	if len(inflight) > 2 {
		return false, nil
	}
	var carry map[int]bool
	seen := [3]int{}
	for _, j := range inflight {
		o := ops[j].Input.(*bsOp)
		seen[o.kind]++
		if o.kind == bsClose || o.same || seen[o.kind] > 1 {
			return false, nil
		}
		if o.kind == bsRead {
			carry = map[int]bool{j: true}
		}
	}
	return true, carry
}

// firstBad names the operation that stops the longest partial
// linearization porcupine found: of the operations it leaves out, the one
// that returned first.
func firstBad(st *bsStream, init bsState, seg []porcupine.Operation, info porcupine.LinearizationInfo) (*bsOp, string) {
	var longest []int
	for _, part := range info.PartialLinearizations() {
		for _, l := range part {
			if len(l) > len(longest) {
				longest = l
			}
		}
	}
	done := make([]bool, len(seg))
	s := init
	for _, id := range longest {
		done[id] = true
		_, s = st.step(s, seg[id].Input.(*bsOp))
	}
	best := -1
	for i := range seg {
		if !done[i] && (best < 0 || seg[i].Return < seg[best].Return) {
			best = i
		}
	}
	if best < 0 {
		best = 0
	}
	o := seg[best].Input.(*bsOp)
	return o, st.explain(s, o)
}
