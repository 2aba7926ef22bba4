package models

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/verinic/verinic/trace"
)

var (
	simAddrA = netip.MustParseAddrPort("10.0.0.1:40000")
	simAddrB = netip.MustParseAddrPort("10.0.0.2:80")
)

// tcpTraceSim runs random behaviours of the Go transcription of Tcp.tla
// and writes what each endpoint does as the TCP layer records it
// (trace/tcp.go): the model's segments become tcp_seg_sent/recv, its state
// changes tcp_state, Read app_read, and so on. Endpoint A is connection 1,
// B connection 2.
type tcpTraceSim struct {
	m      *TCP
	s      *TCPModelState
	ev     []trace.Event
	opened [2]bool
	reads  [2]int
}

func (x *tcpTraceSim) emit(e trace.Event) {
	e.Seq = uint64(len(x.ev))
	e.T = int64(len(x.ev))
	x.ev = append(x.ev, e)
}

func segFlags(g TCPSeg) uint8 {
	var f uint8
	if g.FIN {
		f |= flFIN
	}
	if g.SYN {
		f |= flSYN
	}
	if g.RST {
		f |= flRST
	}
	if g.ACK {
		f |= flACK
	}
	return f
}

func (x *tcpTraceSim) seg(kind trace.Kind, p int, st uint8, g TCPSeg) {
	e := trace.Event{Kind: kind, Conn: uint32(p + 1), State: st, TSeq: g.Seq, TAck: g.Ack, Flags: segFlags(g), Wnd: g.Wnd}
	if g.Data != 0 {
		e.Len = 1
	}
	x.emit(e)
}

func (x *tcpTraceSim) open(p int, st uint8, active bool) {
	local, remote := simAddrA, simAddrB
	if p == 1 {
		local, remote = remote, local
	}
	e := trace.Event{Kind: trace.TCPOpen, Conn: uint32(p + 1), State: st, Buf: trace.PackAddrPort(local), Aux: trace.PackAddrPort(remote)}
	if active {
		e.Flags = 1
	}
	x.emit(e)
	x.opened[p] = true
	if active {
		// proto/tcp records the change from CLOSED after tcp_open.
		x.stateChange(p, tcpClosed, st)
	}
	if n := x.m.n(p); n > 0 {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i + 1)
		}
		x.emit(trace.Event{Kind: trace.AppWrite, Conn: uint32(p + 1), Len: n, Data: string(data)})
	}
}

func (x *tcpTraceSim) stateChange(p int, from, to uint8) {
	if from != to {
		x.emit(trace.Event{Kind: trace.TCPState, Conn: uint32(p + 1), Index: uint32(from), State: to})
	}
}

func newTCPTraceSim(m *TCP, rng *rand.Rand) *tcpTraceSim {
	inits := m.Init()
	x := &tcpTraceSim{m: m, s: inits[rng.IntN(len(inits))]}
	for p := 0; p < 2; p++ {
		if m.active(p) {
			x.open(p, tcpSynSent, true)
		}
	}
	for p := 0; p < 2; p++ {
		if m.active(p) {
			x.seg(trace.TCPSegSent, p, tcpSynSent, m.synSeg(p, &x.s.Ep[p]))
		}
	}
	return x
}

// step takes one random enabled action of the model and records it.
// It returns false when no action is enabled.
func (x *tcpTraceSim) step(rng *rand.Rand) bool {
	m, s := x.m, x.s
	type cand struct {
		kind int
		p    int
		g    TCPSeg
	}
	var cs []cand
	for p := 0; p < 2; p++ {
		for k := 0; k < 6; k++ {
			cs = append(cs, cand{kind: k, p: p})
		}
		for _, g := range s.Net {
			if int(g.Src) != p {
				cs = append(cs, cand{6, p, g}, cand{6, p, g}, cand{7, p, g})
			}
		}
	}
	for _, g := range s.Net {
		cs = append(cs, cand{kind: 8, g: g})
	}
	rng.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
	for _, c := range cs {
		t := s.Clone()
		p := c.p
		before := s.Ep[p]
		var ok bool
		switch c.kind {
		case 0:
			ok = m.SendData(t, p)
		case 1:
			ok = m.Persist(t, p)
		case 2:
			ok = m.Close(t, p)
		case 3:
			ok = m.Timeout(t, p)
		case 4:
			ok = m.Read(t, p)
		case 5:
			ok = m.TimeWaitExpire(t, p)
		case 6, 7:
			ok = m.Receive(t, p, c.g, c.kind == 7)
		case 8:
			ok = m.Lose(t, c.g)
		}
		if !ok {
			continue
		}
		after := t.Ep[p]
		switch c.kind {
		case 0, 1:
			x.seg(trace.TCPSegSent, p, before.St, m.dataSeg(p, &before, before.Nxt, uint8(m.sndOff(&before))))
		case 2:
			x.seg(trace.TCPSegSent, p, before.St, m.finSeg(p, &before, before.Nxt))
			x.stateChange(p, before.St, after.St)
			x.emit(trace.Event{Kind: trace.AppClose, Conn: uint32(p + 1)})
		case 3:
			x.emit(trace.Event{Kind: trace.TCPTimer, Conn: uint32(p + 1), Index: uint32(trace.TimerRetransmit)})
			x.seg(trace.TCPSegSent, p, before.St, m.retransmission(p, &before))
		case 4:
			b := t.Dlv[p][x.reads[p]]
			x.emit(trace.Event{Kind: trace.AppRead, Conn: uint32(p + 1), Buf: uint64(x.reads[p]), Len: 1, Data: string([]byte{b})})
			x.reads[p]++
		case 5:
			x.emit(trace.Event{Kind: trace.TCPTimer, Conn: uint32(p + 1), Index: uint32(trace.TimerTimeWait)})
			x.stateChange(p, before.St, after.St)
		case 6, 7:
			r := m.process(p, before, c.g)
			switch {
			case before.St == tcpClosed || (before.St == tcpListen && after.St == tcpListen):
				// No connection (yet, or any more): the listener or the
				// closed port answers; nothing is recorded per connection.
			case before.St == tcpListen:
				// As proto/tcp records a connection its listener spawns:
				// the SYN received in CLOSED, then the change.
				x.open(p, after.St, false)
				x.seg(trace.TCPSegRecv, p, tcpClosed, c.g)
				x.stateChange(p, tcpClosed, after.St)
				if r.hasOut {
					x.seg(trace.TCPSegSent, p, after.St, r.out)
				}
			default:
				x.seg(trace.TCPSegRecv, p, before.St, c.g)
				x.stateChange(p, before.St, after.St)
				if r.hasOut {
					x.seg(trace.TCPSegSent, p, after.St, r.out)
				}
			}
		}
		x.s = t
		return true
	}
	return false
}

func simTCPTrace(m *TCP, seed uint64, steps int) ([]trace.Event, *TCPModelState) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	x := newTCPTraceSim(m, rng)
	for i := 0; i < steps && x.step(rng); i++ {
	}
	return x.ev, x.s
}

// simModel: the spec with the real modulus 2^32, ISNs near the wrap.
func simModel(bug Bug, lossy bool, simultaneous bool) *TCP {
	return &TCP{M: 1 << 32, ISN: []uint32{0xfffffff0, 0x7ffffffe, 12345}, W: 4, NA: 40, NB: 25, K: 4,
		Simultaneous: simultaneous, Lossy: lossy, Bug: bug}
}

// Behaviours of the protocol, written as traces, are accepted, and the
// report says what held for both endpoints of the pair.
func TestValidateTCPTraceModelBehaviours(t *testing.T) {
	done := 0
	for seed := uint64(1); seed <= 60; seed++ {
		m := simModel(BugNone, seed%3 != 0, seed%4 == 0)
		ev, final := simTCPTrace(m, seed, 4000)
		rep := ValidateTCPTrace(ev)
		if !rep.OK() {
			t.Fatalf("seed %d: a behaviour of the spec was rejected: %v\nfinal model state: %v", seed, rep.Violation, final)
		}
		if rep.Pairs != 1 && final.Ep[1].St != tcpListen {
			t.Fatalf("seed %d: %d pairs\n%v", seed, rep.Pairs, rep.String())
		}
		if m.Done(final) {
			done++
			for _, c := range rep.Conns {
				if !slices.Contains(c.Held, PropSegmentWasSent) || c.BytesRead != uint64(m.n(1-int(c.Conn-1))) {
					t.Fatalf("seed %d: conn %d: %+v", seed, c.Conn, c)
				}
			}
		}
	}
	if done < 10 {
		t.Fatalf("only %d of 60 behaviours completed the connection", done)
	}
	t.Logf("60 behaviours accepted, %d reached both CLOSED with every byte read", done)
}

// Behaviours of the broken variants are rejected where the bug shows in
// what an endpoint records.
func TestValidateTCPTraceBrokenVariants(t *testing.T) {
	for _, c := range []struct {
		bug   Bug
		props []string
	}{
		{BugDeliverOutOfOrder, []string{PropDeliveredInOrder}},
		{BugRetransmitWrongRange, []string{PropDeliveredInOrder}},
		{BugFinTwice, []string{PropRcvNotBeyondSent}},
		{BugIgnoreWindow, []string{PropRcvNotBeyondSent}},
		{BugWindowOffByOne, []string{PropRcvNotBeyondSent}},
		{BugNoTimeWait, []string{PropLegalTransition}},
	} {
		t.Run(string(c.bug), func(t *testing.T) {
			for seed := uint64(1); seed <= 200; seed++ {
				m := simModel(c.bug, true, false)
				m.W, m.NA = 2, 12
				ev, _ := simTCPTrace(m, seed, 3000)
				rep := ValidateTCPTrace(ev)
				if rep.OK() {
					continue
				}
				if !slices.Contains(c.props, rep.Violation.Property) {
					t.Fatalf("seed %d: %s violated, want one of %v: %v", seed, rep.Violation.Property, c.props, rep.Violation)
				}
				t.Logf("seed %d: %v", seed, rep.Violation)
				return
			}
			t.Fatal("no behaviour of the broken variant was rejected")
		})
	}
}

// A clean trace, mutated by hand, is rejected with the right property.
func TestValidateTCPTraceMutations(t *testing.T) {
	var ev []trace.Event
	for seed := uint64(1); ; seed++ {
		m := simModel(BugNone, true, false)
		var final *TCPModelState
		ev, final = simTCPTrace(m, seed, 6000)
		if m.Done(final) {
			break
		}
	}
	if rep := ValidateTCPTrace(ev); !rep.OK() {
		t.Fatalf("clean trace rejected: %v", rep.Violation)
	}
	find := func(f func(e *trace.Event) bool) int {
		for i := range ev {
			if f(&ev[i]) {
				return i
			}
		}
		t.Fatal("no event to mutate")
		return -1
	}
	insert := func(at int, add ...trace.Event) []trace.Event {
		out := slices.Clone(ev[:at])
		out = append(out, add...)
		return append(out, ev[at:]...)
	}
	cases := []struct {
		name   string
		mutate func() []trace.Event
		prop   string
	}{
		{"ack beyond what was received", func() []trace.Event {
			out := slices.Clone(ev)
			i := find(func(e *trace.Event) bool {
				return e.Kind == trace.TCPSegSent && e.Conn == 2 && e.Flags&flACK != 0 && e.State == tcpEstablished
			})
			out[i].TAck += 1000
			return out
		}, PropRcvNotBeyondSent},
		{"read skips a byte", func() []trace.Event {
			out := slices.Clone(ev)
			i := find(func(e *trace.Event) bool { return e.Kind == trace.AppRead && e.Buf == 3 })
			for j := i; j < len(out); j++ {
				if out[j].Kind == trace.AppRead && out[j].Conn == out[i].Conn {
					out[j].Buf++
				}
			}
			return out
		}, PropDeliveredInOrder},
		{"read returns a wrong byte", func() []trace.Event {
			out := slices.Clone(ev)
			i := find(func(e *trace.Event) bool { return e.Kind == trace.AppRead && e.Buf == 5 })
			out[i].Data = "X"
			return out
		}, PropDeliveredInOrder},
		{"segment received that was never sent", func() []trace.Event {
			out := slices.Clone(ev)
			i := find(func(e *trace.Event) bool {
				return e.Kind == trace.TCPSegRecv && e.Conn == 2 && e.Len == 0 && e.State == tcpEstablished
			})
			out[i].TAck -= 0 // keep the ACK; change the window-free identity
			out[i].TSeq += 7
			return out
		}, PropSegmentWasSent},
		{"CLOSE-WAIT without the peer's FIN", func() []trace.Event {
			i := find(func(e *trace.Event) bool {
				return e.Kind == trace.TCPState && e.Conn == 2 && e.State == tcpEstablished
			})
			return insert(i+1, trace.Event{Kind: trace.TCPState, Conn: 2, Index: uint32(tcpEstablished), State: tcpCloseWait})
		}, PropLegalTransition},
		{"reset by an RST outside the window", func() []trace.Event {
			i := find(func(e *trace.Event) bool {
				return e.Kind == trace.TCPState && e.Conn == 2 && e.State == tcpEstablished
			})
			return insert(i+1,
				trace.Event{Kind: trace.TCPSegRecv, Conn: 2, State: tcpEstablished, TSeq: 0x40000000, Flags: flRST},
				trace.Event{Kind: trace.TCPState, Conn: 2, Index: uint32(tcpEstablished), State: tcpClosed})
		}, PropRstInWindow},
		{"data beyond the peer's window", func() []trace.Event {
			out := slices.Clone(ev)
			for j := range out {
				if out[j].Kind == trace.TCPSegRecv && out[j].Conn == 1 {
					out[j].Wnd = 1
				}
				if out[j].Kind == trace.TCPSegSent && out[j].Conn == 2 {
					out[j].Wnd = 1
				}
			}
			return out
		}, PropSendWindow},
		{"state field disagrees", func() []trace.Event {
			out := slices.Clone(ev)
			i := find(func(e *trace.Event) bool {
				return e.Kind == trace.TCPSegSent && e.Conn == 1 && e.State == tcpEstablished
			})
			out[i].State = tcpCloseWait
			return out
		}, PropStateConsistent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := ValidateTCPTrace(c.mutate())
			if rep.OK() {
				t.Fatalf("mutated trace accepted:\n%s", rep.String())
			}
			if rep.Violation.Property != c.prop {
				t.Fatalf("%s violated, want %s: %v", rep.Violation.Property, c.prop, rep.Violation)
			}
			if !strings.Contains(rep.Violation.Error(), "event #") {
				t.Fatalf("message lacks the event: %v", rep.Violation)
			}
			t.Logf("%v", rep.Violation)
		})
	}
}

// bulkTCPTrace is a long clean trace: the model with a 64 KiB window
// moving bytes in bulk is too slow to simulate, so this writes the events
// of an ideal transfer (segments of 1448 bytes, every second one
// acknowledged, sequence numbers wrapping) directly.
func bulkTCPTrace(events int) []trace.Event {
	var ev []trace.Event
	add := func(e trace.Event) { e.Seq = uint64(len(ev)); ev = append(ev, e) }
	a, b := trace.PackAddrPort(simAddrA), trace.PackAddrPort(simAddrB)
	issA, issB := uint32(0xffff0000), uint32(77)
	add(trace.Event{Kind: trace.TCPOpen, Conn: 1, State: tcpSynSent, Buf: a, Aux: b, Flags: 1})
	syn := trace.Event{Kind: trace.TCPSegSent, Conn: 1, State: tcpSynSent, TSeq: issA, Flags: flSYN, Wnd: 65535}
	add(syn)
	add(trace.Event{Kind: trace.TCPOpen, Conn: 2, State: tcpSynReceived, Buf: b, Aux: a})
	syn.Kind, syn.Conn, syn.State = trace.TCPSegRecv, 2, tcpSynReceived
	add(syn)
	sa := trace.Event{Kind: trace.TCPSegSent, Conn: 2, State: tcpSynReceived, TSeq: issB, TAck: issA + 1, Flags: flSYN | flACK, Wnd: 65535}
	add(sa)
	sa.Kind, sa.Conn, sa.State = trace.TCPSegRecv, 1, tcpSynSent
	add(sa)
	add(trace.Event{Kind: trace.TCPState, Conn: 1, Index: uint32(tcpSynSent), State: tcpEstablished})
	ack := trace.Event{Kind: trace.TCPSegSent, Conn: 1, State: tcpEstablished, TSeq: issA + 1, TAck: issB + 1, Flags: flACK, Wnd: 1 << 20}
	add(ack)
	ack.Kind, ack.Conn, ack.State = trace.TCPSegRecv, 2, tcpSynReceived
	add(ack)
	add(trace.Event{Kind: trace.TCPState, Conn: 2, Index: uint32(tcpSynReceived), State: tcpEstablished})
	const mss = 1448
	var off, read uint64
	for len(ev) < events {
		add(trace.Event{Kind: trace.AppWrite, Conn: 1, Buf: off, Len: 2 * mss})
		for k := 0; k < 2; k++ {
			d := trace.Event{Kind: trace.TCPSegSent, Conn: 1, State: tcpEstablished, TSeq: issA + 1 + uint32(off), TAck: issB + 1,
				Flags: flACK, Wnd: 1 << 20, Len: mss}
			add(d)
			d.Kind, d.Conn = trace.TCPSegRecv, 2
			add(d)
			off += mss
		}
		r := trace.Event{Kind: trace.TCPSegSent, Conn: 2, State: tcpEstablished, TSeq: issB + 1, TAck: issA + 1 + uint32(off),
			Flags: flACK, Wnd: 1 << 20}
		add(r)
		r.Kind, r.Conn = trace.TCPSegRecv, 1
		add(r)
		add(trace.Event{Kind: trace.AppRead, Conn: 2, Buf: read, Len: 2 * mss})
		read += 2 * mss
	}
	return ev
}

func TestValidateTCPTraceBulk(t *testing.T) {
	ev := bulkTCPTrace(200000)
	rep := ValidateTCPTrace(ev)
	if !rep.OK() {
		t.Fatalf("bulk trace rejected: %v", rep.Violation)
	}
	c := rep.Conns[1]
	if c.BytesRead < 1<<26 || rep.Pairs != 1 {
		t.Fatalf("bulk: %s", rep.String())
	}
	t.Logf("%s", rep.String())
}

func BenchmarkValidateTCPTrace(b *testing.B) {
	ev := bulkTCPTrace(1000000)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if rep := ValidateTCPTrace(ev); !rep.OK() {
			b.Fatal(rep.Violation)
		}
	}
	b.ReportMetric(float64(len(ev)), "events/op")
}

// A TSO burst (trace.SegOptTSO) stands for the segments the device cuts it
// into: sequence numbers advanced by the size, FIN and PSH on the last
// only, CWR on the first only; an unmarked or short one for itself.
func TestAddSentSegsTSO(t *testing.T) {
	m := map[tcpSegKey]struct{}{}
	const ack, psh, fin, cwr = 0x10, 0x08, 0x01, 0x80
	ev := trace.Event{Kind: trace.TCPSegSent, TSeq: 1000, TAck: 7, Flags: ack | psh | fin | cwr, Len: 3000,
		Index: trace.SegOpts(trace.SegOptTimestamp|trace.SegOptTSO, 1448, 0)}
	addSentSegs(m, &ev)
	want := []tcpSegKey{
		{1000, 7, ack | cwr, 1448},
		{2448, 7, ack, 1448},
		{3896, 7, ack | psh | fin, 104},
	}
	if len(m) != len(want) {
		t.Fatalf("%d segments, want %d: %v", len(m), len(want), m)
	}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("missing %+v in %v", k, m)
		}
	}
	clear(m)
	ev.Index = trace.SegOpts(trace.SegOptTimestamp, 0, 0) // not TSO
	addSentSegs(m, &ev)
	if _, ok := m[tcpSegKey{1000, 7, ev.Flags, 3000}]; !ok || len(m) != 1 {
		t.Errorf("unmarked segment: %v", m)
	}
	clear(m)
	ev.Index, ev.Len = trace.SegOpts(trace.SegOptTSO, 1448, 0), 1448 // one segment's worth
	addSentSegs(m, &ev)
	if _, ok := m[tcpSegKey{1000, 7, ev.Flags, 1448}]; !ok || len(m) != 1 {
		t.Errorf("one-segment burst: %v", m)
	}
}
