package models

import (
	"bytes"
	"fmt"
	"math/rand"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/verinic/verinic/trace"
)

// streamHist builds TCP application events by hand.
type streamHist struct {
	evs []trace.Event
}

func (h *streamHist) add(e trace.Event) {
	e.Seq = uint64(len(h.evs))
	h.evs = append(h.evs, e)
}

var (
	apClient = netip.MustParseAddrPort("10.0.0.1:40000")
	apServer = netip.MustParseAddrPort("10.0.0.2:80")
)

// pair opens connections a (client) and b (server) to each other.
func (h *streamHist) pair(a, b uint32) {
	h.add(trace.Event{Kind: trace.TCPOpen, Conn: a, Buf: trace.PackAddrPort(apClient), Aux: trace.PackAddrPort(apServer), Flags: 1, State: trace.TCPStateSynSent})
	h.add(trace.Event{Kind: trace.TCPOpen, Conn: b, Buf: trace.PackAddrPort(apServer), Aux: trace.PackAddrPort(apClient), State: trace.TCPStateSynReceived})
}

func (h *streamHist) write(conn uint32, call, ret int64, off uint64, data string) {
	h.add(trace.Event{Kind: trace.AppWrite, Conn: conn, Call: call, T: ret, Buf: off, Len: uint32(len(data)), Data: data})
}

func (h *streamHist) read(conn uint32, call, ret int64, off uint64, data string, eof bool) {
	e := trace.Event{Kind: trace.AppRead, Conn: conn, Call: call, T: ret, Buf: off, Len: uint32(len(data)), Data: data}
	if eof {
		e.Flags = 1
	}
	h.add(e)
}

func (h *streamHist) close(conn uint32, call, ret int64, half bool) {
	e := trace.Event{Kind: trace.AppClose, Conn: conn, Call: call, T: ret}
	if half {
		e.Index = 1
	}
	h.add(e)
}

// result returns the result for the direction written by w.
func streamResult(t *testing.T, rep TCPStreamReport, w uint32) TCPStreamResult {
	t.Helper()
	for _, r := range rep.Results {
		if r.Writer == w {
			return r
		}
	}
	t.Fatalf("no result for writer %d in %+v", w, rep.Results)
	return TCPStreamResult{}
}

// Hand-made histories of conn 1 writing to conn 2: correct ones hold,
// each seeded bug is found and named.
func TestByteStreamHandHistories(t *testing.T) {
	type op func(h *streamHist)
	w := func(call, ret int64, off uint64, d string) op {
		return func(h *streamHist) { h.write(1, call, ret, off, d) }
	}
	r := func(call, ret int64, off uint64, d string) op {
		return func(h *streamHist) { h.read(2, call, ret, off, d, false) }
	}
	eof := func(call, ret int64, off uint64) op {
		return func(h *streamHist) { h.read(2, call, ret, off, "", true) }
	}
	cl := func(call, ret int64) op { return func(h *streamHist) { h.close(1, call, ret, true) } }
	cases := []struct {
		name string
		ops  []op
		ok   bool
		why  string // in the reason of a violation
	}{
		{"sequential", []op{w(0, 1, 0, "hello"), w(2, 3, 5, " world"), r(4, 5, 0, "hel"), r(6, 7, 3, "lo wo"),
			cl(8, 9), r(10, 11, 8, "rld"), eof(12, 13, 11)}, true, ""},
		{"read blocked across the write", []op{r(0, 10, 0, "hello"), w(2, 3, 0, "hello")}, true, ""},
		{"read spans two writes, both in flight", []op{w(0, 5, 0, "ab"), w(6, 20, 2, "cd"), r(1, 21, 0, "abc"), r(22, 23, 3, "d")}, true, ""},
		{"large write read in parts while it blocks", []op{w(0, 100, 0, "abcdef"), r(1, 2, 0, "ab"), r(3, 4, 2, "cd"), r(5, 6, 4, "ef")}, true, ""},
		{"concurrent writers ordered by offset", []op{w(0, 10, 3, "abc"), w(1, 5, 0, "xyz"), r(11, 12, 0, "xyzabc")}, true, ""},
		{"concurrent readers", []op{w(0, 1, 0, "abcdef"), r(2, 10, 3, "def"), r(3, 9, 0, "abc")}, true, ""},
		{"EOF blocked across the close", []op{w(0, 1, 0, "ab"), r(2, 3, 0, "ab"), eof(4, 20, 2), cl(10, 11)}, true, ""},
		{"close concurrent with the last write", []op{w(0, 10, 0, "ab"), cl(5, 6), r(12, 13, 0, "ab"), eof(14, 15, 2)}, true, ""},
		{"unread bytes at the end are no violation", []op{w(0, 1, 0, "abcdef"), r(2, 3, 0, "ab"), cl(4, 5)}, true, ""},

		{"byte duplicated", []op{w(0, 1, 0, "hello"), r(2, 3, 0, "hel"), r(4, 5, 3, "llo")}, false, "byte at stream offset 4 is 'l'"},
		{"chunks swapped", []op{w(0, 1, 0, "abc"), w(2, 3, 3, "def"), r(4, 5, 0, "def"), r(6, 7, 3, "abc")}, false, "byte at stream offset 0"},
		{"byte altered", []op{w(0, 1, 0, "hello"), r(2, 3, 0, "hexlo")}, false, `is 'x', but write seq 2 wrote 'l'`},
		{"read before its write was called", []op{r(0, 1, 0, "abc"), w(2, 3, 0, "abc")}, false, "only 0 were written"},
		{"middle chunk lost, later data read", []op{w(0, 1, 0, "aaa"), w(2, 3, 3, "bbb"), w(4, 5, 6, "ccc"),
			r(6, 7, 0, "aaa"), r(8, 9, 3, "ccc")}, false, "byte at stream offset 3"},
		{"EOF with bytes unread", []op{w(0, 1, 0, "abc"), cl(2, 3), r(4, 5, 0, "ab"), eof(6, 7, 2)}, false, "EOF with 1 written bytes not read"},
		{"EOF before the close was called", []op{w(0, 1, 0, "abc"), r(2, 3, 0, "abc"), eof(4, 5, 3), cl(6, 7)}, false, "EOF before the writer's close"},
		{"data after EOF", []op{w(0, 1, 0, "ab"), cl(2, 3), r(4, 5, 0, "ab"), eof(6, 7, 2), r(8, 9, 2, "zz")}, false, "only 2 bytes were ever written"},
		{"write after close", []op{w(0, 1, 0, "ab"), cl(2, 3), w(4, 5, 2, "cd"), r(6, 7, 0, "abcd")}, false, ""},
		{"write offsets overlap", []op{w(0, 1, 0, "ab"), w(2, 3, 1, "bc"), r(4, 5, 0, "ab")}, false, "recorded at stream offset 1"},
		{"concurrent writers, offsets disagree with the reads", []op{w(0, 10, 3, "abc"), w(1, 5, 0, "xyz"), r(11, 12, 0, "abcxyz")}, false, "byte at stream offset 0"},
		{"invented bytes", []op{w(0, 1, 0, "ab"), r(2, 3, 0, "abc")}, false, "only 2 bytes were ever written"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &streamHist{}
			h.pair(1, 2)
			for _, o := range c.ops {
				o(h)
			}
			for _, seg := range []int{1, 2000} {
				rep := CheckTCPStreamsOptions(h.evs, TCPStreamOptions{Timeout: 10 * time.Second, SegmentOps: seg})
				res := streamResult(t, rep, 1)
				if (res.Verdict == StreamHeld) != c.ok || (!c.ok && res.Verdict != StreamViolated) {
					t.Fatalf("segment %d: verdict %v (%s), want ok=%v", seg, res.Verdict, res.Reason, c.ok)
				}
				if !c.ok && !strings.Contains(res.Reason, c.why) {
					t.Errorf("segment %d: reason %q lacks %q", seg, res.Reason, c.why)
				}
				if rep.Violated() != !c.ok {
					t.Errorf("Violated() = %v", rep.Violated())
				}
				back := streamResult(t, rep, 2)
				if back.Verdict != StreamHeld || back.Writer != 2 || back.Reader != 1 {
					t.Errorf("empty reverse direction: %+v", back)
				}
			}
		})
	}
}

// A violation names its operation's seq and writes porcupine's
// visualization; a held report writes none.
func TestByteStreamVisualization(t *testing.T) {
	h := &streamHist{}
	h.pair(1, 2)
	h.write(1, 0, 1, 0, "hello")
	h.read(2, 2, 3, 0, "hexlo", false)
	rep := CheckTCPStreams(h.evs, 10*time.Second)
	res := streamResult(t, rep, 1)
	if res.Verdict != StreamViolated || res.BadSeq != 3 || !strings.HasPrefix(res.Reason, "read seq 3 (conn 2)") {
		t.Fatalf("%+v", res)
	}
	dir := t.TempDir()
	paths, err := rep.WriteVisualization(dir)
	if err != nil || len(paths) != 1 || !strings.HasSuffix(paths[0], "tcp-stream-conn1-to-conn2.html") {
		t.Fatalf("%v %v", paths, err)
	}
	b, err := os.ReadFile(paths[0])
	if err != nil || !bytes.Contains(b, []byte("<html")) || !bytes.Contains(b, []byte("hexlo")) {
		t.Fatalf("visualization: %v", err)
	}
	h = &streamHist{}
	h.pair(1, 2)
	h.write(1, 0, 1, 0, "hello")
	if paths, err := CheckTCPStreams(h.evs, 0).WriteVisualization(dir + "/none"); len(paths) != 0 || err != nil {
		t.Fatalf("%v %v", paths, err)
	}
}

// Bytes the recorder could not keep are checked by length only; a trace
// with one side, or without tcp_open, is skipped with the reason.
func TestByteStreamUnrecordedAndSkipped(t *testing.T) {
	h := &streamHist{}
	h.pair(1, 2)
	h.add(trace.Event{Kind: trace.AppWrite, Conn: 1, Call: 0, T: 1, Len: 3})            // data not kept
	h.add(trace.Event{Kind: trace.AppRead, Conn: 2, Call: 2, T: 3, Len: 2, Data: "xy"}) // cannot be compared
	h.add(trace.Event{Kind: trace.AppRead, Conn: 2, Call: 4, T: 5, Buf: 2, Len: 1})
	rep := CheckTCPStreams(h.evs, 0)
	if res := streamResult(t, rep, 1); res.Verdict != StreamHeld || res.Unchecked != 4 {
		t.Fatalf("%+v", res)
	}
	// Lengths still count: a fourth byte was never written.
	h.add(trace.Event{Kind: trace.AppRead, Conn: 2, Call: 6, T: 7, Buf: 3, Len: 1})
	if res := streamResult(t, CheckTCPStreams(h.evs, 0), 1); res.Verdict != StreamViolated {
		t.Fatalf("%+v", res)
	}

	h = &streamHist{}
	h.add(trace.Event{Kind: trace.TCPOpen, Conn: 7, Buf: trace.PackAddrPort(apClient), Aux: trace.PackAddrPort(apServer)})
	h.write(7, 0, 1, 0, "GET / HTTP/1.1\r\n\r\n")
	h.read(9, 0, 1, 0, "x", false) // conn 9 has no tcp_open
	rep = CheckTCPStreams(h.evs, 0)
	if len(rep.Results) != 2 || rep.Violated() || rep.Count(StreamSkipped) != 2 {
		t.Fatalf("%+v", rep)
	}
	if r := rep.Results[0]; r.Writer != 7 || !strings.Contains(r.Reason, "no peer in trace") || r.Local != apClient {
		t.Fatalf("%+v", r)
	}
	if r := rep.Results[1]; r.Writer != 9 || !strings.Contains(r.Reason, "no tcp_open") {
		t.Fatalf("%+v", r)
	}
}

// Two connections with the same addresses, one after the other, pair in
// order of opening.
func TestByteStreamPairsReusedAddresses(t *testing.T) {
	h := &streamHist{}
	h.pair(1, 2)
	h.pair(3, 4)
	h.write(1, 0, 1, 0, "first")
	h.read(2, 2, 3, 0, "first", false)
	h.write(3, 4, 5, 0, "second")
	h.read(4, 6, 7, 0, "second", false)
	rep := CheckTCPStreams(h.evs, 0)
	if rep.Count(StreamHeld) != 4 || len(rep.Conns) != 4 || rep.Conns[2].Peer != 4 || !rep.Conns[3].HasPeer || rep.Conns[3].Peer != 3 {
		t.Fatalf("%+v", rep)
	}
	if got := len(rep.ForConn(3)); got != 2 {
		t.Fatalf("ForConn(3): %d results", got)
	}
}

// genStream is a correct history of one direction, built from a
// sequential execution whose k-th step takes effect at time 100k: every
// operation's interval contains its step's time.
type genStream struct {
	writes, reads []trace.Event // conn 1 writes, conn 2 reads
	closes        []trace.Event
	stream        []byte
}

// genStreamHistory draws a history. concurrent: operations of one side may
// overlap each other; otherwise each side makes one call at a time, but
// writer and reader overlap freely.
func genStreamHistory(t *rapid.T, concurrent, withClose bool) *genStream {
	nw := rapid.IntRange(0, 25).Draw(t, "writes")
	g := &genStream{}
	type step struct {
		kind bsKind
		n    int
		eof  bool
	}
	var steps []step
	written, read, w := 0, 0, 0
	var sizes []int
	for range nw {
		sizes = append(sizes, rapid.IntRange(1, 20).Draw(t, "size"))
	}
	closed, eofDone := false, false
	for {
		var choices []string
		if w < nw {
			choices = append(choices, "write")
		}
		if written > read {
			choices = append(choices, "read")
		}
		if w == nw && withClose && !closed {
			choices = append(choices, "close")
		}
		if closed && written == read && !eofDone {
			choices = append(choices, "eof")
		}
		if len(choices) == 0 {
			break
		}
		switch rapid.SampledFrom(choices).Draw(t, "step") {
		case "write":
			steps = append(steps, step{kind: bsWrite, n: sizes[w]})
			written += sizes[w]
			w++
		case "read":
			n := rapid.IntRange(1, written-read).Draw(t, "read")
			steps = append(steps, step{kind: bsRead, n: n})
			read += n
		case "close":
			steps = append(steps, step{kind: bsClose})
			closed = true
		case "eof":
			steps = append(steps, step{kind: bsRead, eof: true})
			eofDone = true
		}
	}
	g.stream = rapid.SliceOfN(rapid.Byte(), written, written).Draw(t, "bytes")
	// Intervals: call in (previous return of the same side, point], return
	// in [point, next point of the same side).
	points := make([]int64, len(steps))
	for k := range steps {
		points[k] = int64(100 * (k + 1))
	}
	side := func(k int) int {
		if steps[k].kind == bsRead {
			return 1
		}
		return 0
	}
	next := make([]int64, len(steps))
	last := [2]int64{1 << 40, 1 << 40}
	for k := len(steps) - 1; k >= 0; k-- {
		next[k] = last[side(k)]
		last[side(k)] = points[k]
	}
	prevRet := [2]int64{-1, -1}
	var wo, ro uint64
	for k, s := range steps {
		var call, ret int64
		if concurrent {
			call = points[k] - int64(rapid.IntRange(0, 250).Draw(t, "before"))
			ret = points[k] + int64(rapid.IntRange(0, 250).Draw(t, "after"))
		} else {
			call = points[k] - int64(rapid.Int64Range(0, points[k]-prevRet[side(k)]-1).Draw(t, "before"))
			ret = points[k] + int64(rapid.Int64Range(0, min(next[k]-points[k]-1, 400)).Draw(t, "after"))
			prevRet[side(k)] = ret
		}
		switch s.kind {
		case bsWrite:
			g.writes = append(g.writes, trace.Event{Kind: trace.AppWrite, Conn: 1, Call: call, T: ret, Buf: wo,
				Len: uint32(s.n), Data: string(g.stream[wo : wo+uint64(s.n)])})
			wo += uint64(s.n)
		case bsRead:
			e := trace.Event{Kind: trace.AppRead, Conn: 2, Call: call, T: ret, Buf: ro, Len: uint32(s.n),
				Data: string(g.stream[ro : ro+uint64(s.n)])}
			if s.eof {
				e.Flags = 1
			}
			g.reads = append(g.reads, e)
			ro += uint64(s.n)
		case bsClose:
			g.closes = append(g.closes, trace.Event{Kind: trace.AppClose, Conn: 1, Call: call, T: ret, Index: 1})
		}
	}
	return g
}

func (g *genStream) events() []trace.Event {
	h := &streamHist{}
	h.pair(1, 2)
	var all []trace.Event
	all = append(append(append(all, g.writes...), g.reads...), g.closes...)
	// Record in return order, as the recorder does.
	for i := 1; i < len(all); i++ {
		for j := i; j > 0 && all[j].T < all[j-1].T; j-- {
			all[j], all[j-1] = all[j-1], all[j]
		}
	}
	for _, e := range all {
		h.add(e)
	}
	return h.evs
}

func (g *genStream) readBytes() string {
	var b strings.Builder
	for _, e := range g.reads {
		b.WriteString(e.Data)
	}
	return b.String()
}

func drawSegment(t *rapid.T) int {
	return rapid.SampledFrom([]int{1, 2, 3, 5, 2000}).Draw(t, "segment")
}

// Correct histories hold, however they are cut into segments, with
// readers and writers overlapping each other or themselves.
func TestByteStreamRapidCorrect(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		conc := rapid.Bool().Draw(t, "concurrent")
		g := genStreamHistory(t, conc, rapid.Bool().Draw(t, "close"))
		seg := drawSegment(t)
		rep := CheckTCPStreamsOptions(g.events(), TCPStreamOptions{Timeout: 10 * time.Second, SegmentOps: seg})
		if res := rep.Results[0]; res.Verdict != StreamHeld {
			t.Fatalf("correct history rejected (segment %d): %s", seg, res.Reason)
		}
	})
}

// Seeded bugs in correct histories are found, however the history is cut.
func TestByteStreamRapidSeededBugs(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		withClose := rapid.Bool().Draw(t, "close")
		g := genStreamHistory(t, false, withClose)
		bug := rapid.SampledFrom([]string{"duplicate", "swap", "alter", "early read", "lost middle", "early EOF", "after EOF"}).Draw(t, "bug")
		var data []int // reads with data
		for i, e := range g.reads {
			if e.Len > 0 {
				data = append(data, i)
			}
		}
		contentBug := false
		switch bug {
		case "duplicate":
			if len(data) == 0 {
				t.Skip("no read")
			}
			i := rapid.SampledFrom(data).Draw(t, "read")
			e := &g.reads[i]
			e.Data = e.Data[:1] + e.Data
			e.Len++
			contentBug = true
		case "swap":
			if len(data) < 2 {
				t.Skip("fewer than two reads")
			}
			i := rapid.IntRange(0, len(data)-2).Draw(t, "read")
			a, b := &g.reads[data[i]], &g.reads[data[i+1]]
			a.Data, b.Data = b.Data, a.Data
			a.Len, b.Len = b.Len, a.Len
			contentBug = true
		case "alter":
			if len(data) == 0 {
				t.Skip("no read")
			}
			e := &g.reads[rapid.SampledFrom(data).Draw(t, "read")]
			k := rapid.IntRange(0, len(e.Data)-1).Draw(t, "byte")
			b := []byte(e.Data)
			b[k] ^= byte(rapid.IntRange(1, 255).Draw(t, "xor"))
			e.Data = string(b)
		case "early read":
			// The write holding a read's last byte is called only after
			// the read returned.
			if len(data) == 0 {
				t.Skip("no read")
			}
			e := g.reads[rapid.SampledFrom(data).Draw(t, "read")]
			end := e.Buf + uint64(e.Len)
			for i := range g.writes {
				w := &g.writes[i]
				if w.Buf < end && end <= w.Buf+uint64(w.Len) {
					w.Call = e.T + 1
					w.T = max(w.T, w.Call)
				}
			}
		case "lost middle":
			if len(data) < 2 {
				t.Skip("fewer than two reads")
			}
			i := rapid.IntRange(0, len(data)-2).Draw(t, "read")
			g.reads = append(g.reads[:data[i]], g.reads[data[i]+1:]...)
			contentBug = true
		case "early EOF":
			// An EOF returned before the close was called, or with bytes
			// unread.
			if len(g.writes) == 0 {
				t.Skip("nothing written")
			}
			first := g.writes[0]
			g.reads = append(g.reads, trace.Event{Kind: trace.AppRead, Conn: 2, Call: first.T + 1, T: first.T + 2, Flags: 1})
			for _, c := range g.closes {
				if c.Call <= first.T+2 {
					t.Skip("closed too early")
				}
			}
		case "after EOF":
			last := int64(0)
			for _, e := range append(append([]trace.Event{}, g.reads...), g.closes...) {
				last = max(last, e.T)
			}
			n := rapid.IntRange(1, 5).Draw(t, "extra")
			g.reads = append(g.reads, trace.Event{Kind: trace.AppRead, Conn: 2, Call: last + 1, T: last + 2,
				Buf: uint64(len(g.stream)), Len: uint32(n), Data: strings.Repeat("z", n)})
		}
		if contentBug && strings.HasPrefix(string(g.stream), g.readBytes()) {
			t.Skip("the mutation left the bytes read a prefix of the bytes written")
		}
		seg := drawSegment(t)
		rep := CheckTCPStreamsOptions(g.events(), TCPStreamOptions{Timeout: 10 * time.Second, SegmentOps: seg})
		if res := rep.Results[0]; res.Verdict != StreamViolated {
			t.Fatalf("%s not found (segment %d): %v %s", bug, seg, res.Verdict, res.Reason)
		}
	})
}

// Cutting a history into segments never changes the verdict: histories
// with operations overlapping on both sides, correct or with a random
// byte altered, a random operation dropped or its interval shifted.
func TestByteStreamRapidCutsAgree(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		g := genStreamHistory(t, rapid.Bool().Draw(t, "concurrent"), rapid.Bool().Draw(t, "close"))
		evs := g.events()
		if len(evs) > 2 {
			i := rapid.IntRange(2, len(evs)-1).Draw(t, "event")
			switch rapid.IntRange(0, 3).Draw(t, "mutation") {
			case 1:
				if evs[i].Data != "" {
					b := []byte(evs[i].Data)
					b[0]++
					evs[i].Data = string(b)
				}
			case 2:
				evs = append(evs[:i], evs[i+1:]...)
			case 3:
				d := rapid.Int64Range(-300, 300).Draw(t, "shift")
				evs[i].Call += d
				evs[i].T += d
			}
		}
		whole := CheckTCPStreamsOptions(evs, TCPStreamOptions{SegmentOps: 1 << 30}).Results[0]
		seg := drawSegment(t)
		cut := CheckTCPStreamsOptions(evs, TCPStreamOptions{SegmentOps: seg}).Results[0]
		if whole.Segments > 1 || whole.Verdict != cut.Verdict {
			t.Fatalf("whole: %v (%s, %d segments); cut every %d: %v (%s, %d segments)", whole.Verdict, whole.Reason, whole.Segments,
				seg, cut.Verdict, cut.Reason, cut.Segments)
		}
	})
}

// memPipe is an in-memory byte pipe with blocking reads. Its faults
// corrupt what it carries.
type memPipe struct {
	mu     sync.Mutex
	cond   *sync.Cond
	buf    []byte
	closed bool
	writes int
	fault  string // "", "duplicate", "drop"
}

func newMemPipe(fault string) *memPipe {
	p := &memPipe{fault: fault}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *memPipe) Write(b []byte) {
	p.mu.Lock()
	p.writes++
	switch {
	case p.fault == "duplicate" && p.writes == 7:
		p.buf = append(p.buf, b...)
		p.buf = append(p.buf, b...)
	case p.fault == "drop" && p.writes == 7:
	default:
		p.buf = append(p.buf, b...)
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *memPipe) CloseWrite() {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *memPipe) Read(b []byte) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.buf) == 0 && !p.closed {
		p.cond.Wait()
	}
	if len(p.buf) == 0 {
		return 0, true
	}
	n := copy(b, p.buf)
	p.buf = p.buf[n:]
	return n, false
}

// recordPipes runs pairs connections over in-memory pipes, both ways,
// recording what the applications do; the pipe of direction fault.conn
// (writer) has the fault.
func recordPipes(t testing.TB, pairs, writes int, fault string, faultConn uint32, dataBytes int) *trace.Recorder {
	rec := trace.NewRecorderWithData(pairs*4*(writes+4)+16, dataBytes)
	var wg sync.WaitGroup
	for p := range pairs {
		a, b := uint32(2*p+1), uint32(2*p+2)
		ca := netip.AddrPortFrom(netip.MustParseAddr("10.1.0.1"), uint16(40000+p))
		cb := netip.MustParseAddrPort("10.1.0.2:80")
		rec.TCPOpen(a, ca, cb, trace.TCPStateSynSent, true)
		rec.TCPOpen(b, cb, ca, trace.TCPStateSynReceived, false)
		for _, d := range [][2]uint32{{a, b}, {b, a}} {
			f := ""
			if d[0] == faultConn {
				f = fault
			}
			pipe := newMemPipe(f)
			wg.Add(2)
			go func(w uint32, seed int64) {
				defer wg.Done()
				rnd := rand.New(rand.NewSource(seed))
				var off uint64
				for range writes {
					chunk := make([]byte, 1+rnd.Intn(100))
					rnd.Read(chunk)
					call := rec.Now()
					pipe.Write(chunk)
					rec.AppWrite(w, call, off, chunk)
					off += uint64(len(chunk))
				}
				call := rec.Now()
				pipe.CloseWrite()
				rec.AppCloseCall(w, call, true)
			}(d[0], int64(d[0]))
			go func(r uint32) {
				defer wg.Done()
				buf := make([]byte, 150)
				var off uint64
				for {
					call := rec.Now()
					n, eof := pipe.Read(buf)
					rec.AppRead(r, call, off, buf[:n], eof)
					off += uint64(n)
					if eof {
						return
					}
				}
			}(d[1])
		}
	}
	wg.Wait()
	if rec.Dropped() != 0 {
		t.Fatalf("recorder dropped %d events", rec.Dropped())
	}
	return rec
}

// Traces recorded by goroutines talking over in-memory pipes, written as
// NDJSON and read back: correct pipes hold, faulty ones are caught, a full
// data arena leaves length checks.
func TestByteStreamRecordedTraceNDJSON(t *testing.T) {
	for _, c := range []struct {
		fault     string
		dataBytes int
		ok        bool
	}{
		{"", 1 << 22, true},
		{"duplicate", 1 << 22, false},
		{"drop", 1 << 22, false},
		{"", 20000, true},
	} {
		t.Run(fmt.Sprintf("%s/%d", c.fault, c.dataBytes), func(t *testing.T) {
			rec := recordPipes(t, 3, 200, c.fault, 3, c.dataBytes)
			var buf bytes.Buffer
			if err := trace.WriteEvents(&buf, trace.Header{Note: "pipes"}, rec.Events()); err != nil {
				t.Fatal(err)
			}
			rd, err := trace.NewReader(&buf)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := rd.ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != len(rec.Events()) {
				t.Fatalf("%d events read back, %d recorded", len(evs), len(rec.Events()))
			}
			for i, e := range evs {
				if e != rec.Events()[i] {
					t.Fatalf("event %d: read back %+v, recorded %+v", i, e, rec.Events()[i])
				}
			}
			rep := CheckTCPStreams(evs, 30*time.Second)
			if len(rep.Results) != 6 {
				t.Fatalf("%d results", len(rep.Results))
			}
			for _, r := range rep.Results {
				want := StreamHeld
				if !c.ok && r.Writer == 3 {
					want = StreamViolated
				}
				if r.Verdict != want {
					t.Errorf("%s: %v (%s), want %v", r.Direction(), r.Verdict, r.Reason, want)
				}
				if r.Writes != 200 || r.BytesRead == 0 {
					t.Errorf("%s: %+v", r.Direction(), r)
				}
			}
			unchecked := uint64(0)
			for _, r := range rep.Results {
				unchecked += r.Unchecked
			}
			if (unchecked > 0) != (rec.DataDropped() > 0) || (c.dataBytes < 1<<20 && unchecked == 0) {
				t.Errorf("unchecked %d bytes, recorder dropped %d", unchecked, rec.DataDropped())
			}
		})
	}
}

// synthStreamEvents is a trace of conns connections (conns/2 pairs), each
// writing and reading ops operations of up to 64 bytes, the reader
// blocking across the writes it waits for.
func synthStreamEvents(conns, ops int) []trace.Event {
	rnd := rand.New(rand.NewSource(1))
	var evs []trace.Event
	add := func(e trace.Event) { e.Seq = uint64(len(evs)); evs = append(evs, e) }
	payload := make([]byte, 1<<16)
	rnd.Read(payload)
	for p := range conns / 2 {
		a, b := uint32(2*p+1), uint32(2*p+2)
		ca := netip.AddrPortFrom(netip.MustParseAddr("10.1.0.1"), uint16(40000+p))
		cb := netip.MustParseAddrPort("10.1.0.2:80")
		add(trace.Event{Kind: trace.TCPOpen, Conn: a, Buf: trace.PackAddrPort(ca), Aux: trace.PackAddrPort(cb)})
		add(trace.Event{Kind: trace.TCPOpen, Conn: b, Buf: trace.PackAddrPort(cb), Aux: trace.PackAddrPort(ca)})
		for _, d := range [][2]uint32{{a, b}, {b, a}} {
			var t, wo, ro int64
			for range ops {
				n := int64(1 + rnd.Intn(64))
				// The reader is already waiting when the write is called
				// and returns after it, with the write's bytes.
				rcall := t
				wcall := t + 1 + rnd.Int63n(5)
				wret := wcall + 1 + rnd.Int63n(5)
				rret := wcall + 1 + rnd.Int63n(10)
				data := string(payload[wo%(1<<15) : wo%(1<<15)+n])
				add(trace.Event{Kind: trace.AppWrite, Conn: d[0], Call: wcall, T: wret, Buf: uint64(wo), Len: uint32(n), Data: data})
				add(trace.Event{Kind: trace.AppRead, Conn: d[1], Call: rcall, T: rret, Buf: uint64(ro), Len: uint32(n), Data: data})
				wo += n
				ro += n
				t = max(wret, rret) + 1
			}
		}
	}
	return evs
}

// A million events: 50 connections each writing and reading 10,000 times.
func BenchmarkByteStreamMillionEvents(b *testing.B) {
	evs := synthStreamEvents(50, 10000)
	b.Logf("%d events", len(evs))
	for b.Loop() {
		rep := CheckTCPStreams(evs, time.Minute)
		if rep.Count(StreamHeld) != 50 {
			b.Fatalf("%+v", rep.Results[0])
		}
	}
}

// The benchmark's history holds, and a byte altered near its end is found.
func TestByteStreamLargeHistory(t *testing.T) {
	evs := synthStreamEvents(4, 5000)
	rep := CheckTCPStreams(evs, time.Minute)
	if rep.Count(StreamHeld) != 4 || rep.Results[0].Segments < 2 {
		t.Fatalf("%+v", rep.Results[0])
	}
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Kind == trace.AppRead && evs[i].Conn == 2 && i < len(evs)-50 {
			b := []byte(evs[i].Data)
			b[0] ^= 1
			evs[i].Data = string(b)
			break
		}
	}
	rep = CheckTCPStreams(evs, time.Minute)
	if rep.Count(StreamViolated) != 1 || !strings.Contains(streamResult(t, rep, 1).Reason, "byte at stream offset") {
		t.Fatalf("%+v", streamResult(t, rep, 1))
	}
}
