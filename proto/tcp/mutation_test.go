//go:build tcpmutation

package tcp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/verinic/verinic/internal/netsim"
	"github.com/verinic/verinic/models"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/tcp"
	"github.com/verinic/verinic/trace"
)

// The TCP mutation suite (go test -tags tcpmutation -run Mutation
// ./proto/tcp/). Each mutation of mutation.go is a plausible
// implementation mistake; for each, a scenario over the deterministic
// netsim exercises it while recording a trace, and then every check runs:
//
//	validate    models.ValidateTCPTrace on the recorded trace (Tcp.tla's
//	            abstract protocol)
//	porcupine   models.CheckTCPStreams (byte-stream linearizability)
//	invariants  Conn.CheckInvariants and Protocol.CheckInvariants after
//	            every frame delivered
//	scenario    the transfer arrives intact, within its virtual time, no
//	            connection error, both ends close (B CLOSED, A TIME-WAIT or
//	            CLOSED), the stacks stay idle between events
//	netsim      TestNetsim and TestNetsimDeterministic (golden counts)
//	behaviour   the protocol-behaviour tests (TestBehaviour*)
//	rapid       TestTCPStateMachine
//
// The last three are the package's own tests, run in a child process (this
// test binary, with tcp.MutationEnv naming the mutation). The same
// scenarios without a mutation must pass every check (TestMutationBaseline),
// so a check that fails under a mutation fails because of it.

const (
	chkValidate   = "validate"
	chkPorcupine  = "porcupine"
	chkInvariants = "invariants"
	chkScenario   = "scenario"
	chkNetsim     = "netsim"
	chkBehaviour  = "behaviour"
	chkRapid      = "rapid"
)

var allChecks = []string{chkValidate, chkPorcupine, chkInvariants, chkScenario, chkNetsim, chkBehaviour, chkRapid}

// mfate is what happens to one frame on the wire.
type mfate int

const (
	deliver mfate = iota
	drop
	dup // delivered twice
)

type mscenario struct {
	name  string
	bytes int // A writes this many bytes to B, then closes
	cfg   tcp.Config
	cfgB  *tcp.Config
	// wrap: A's ISS lies this many bytes below 2^32 (the virtual clock is
	// moved before the connect: RFC 6528's ISN follows it).
	wrap uint32
	// fate decides each frame (k counts the frames from that side).
	fate func(x *mrun, from byte, k int, g wseg) mfate
	// read returns how many bytes B's application reads now (<0: all).
	read func(x *mrun) int
	// write returns how many bytes A's application may write now (<0: all).
	write func(x *mrun) int
	// hook runs after every step (injections).
	hook func(x *mrun)
	// injected: off-path segments reach an endpoint; the trace is then
	// validated per endpoint (an injected segment is the channel's output
	// for the endpoint that gets it, but no peer sent it).
	injected bool
	limit    time.Duration
	// tick, if set, wakes the application at least this often.
	tick time.Duration
	// exercised reports (without a mutation) that the run did what the
	// scenario is for: the baseline requires it.
	exercised func(x *mrun) bool
}

// mrun is one run of a scenario.
type mrun struct {
	t        *testing.T
	sc       *mscenario
	s        *netsim.Sim
	rec      *trace.Recorder
	cli, srv *tcp.Conn
	ln       *tcp.Listener
	rng      *rand.Rand
	k        [2]int
	data     []byte
	written  int
	got      []byte
	eof      bool
	start    time.Time
	flag     map[string]any // scenario state
	fails    map[string]string
}

func (x *mrun) fail(check, format string, args ...any) {
	if _, ok := x.fails[check]; !ok {
		x.fails[check] = fmt.Sprintf(format, args...)
	}
}

// abort ends a run early (recovered by run).
type abort struct{}

func (x *mrun) settle() {
	if !x.s.Settle(10000) {
		x.fail(chkScenario, "stacks still busy after 10000 polls at %v (a segment loop)", x.s.Elapsed())
		panic(abort{})
	}
}

func (x *mrun) checkInvariants() {
	for _, c := range []*tcp.Conn{x.cli, x.srv} {
		if c != nil {
			if err := c.CheckInvariants(); err != nil {
				x.fail(chkInvariants, "conn %d: %v", c.ID(), err)
			}
		}
	}
	for _, p := range []*tcp.Protocol{x.s.A.TCP, x.s.B.TCP} {
		if err := p.CheckInvariants(); err != nil {
			x.fail(chkInvariants, "%v", err)
		}
	}
}

// pump delivers, drops or duplicates the held frames of both directions
// until none is left, checking the invariants after each.
func (x *mrun) pump() {
	for n := 0; ; n++ {
		if n > 200000 {
			x.fail(chkScenario, "more than 200000 frames at %v (a segment loop)", x.s.Elapsed())
			panic(abort{})
		}
		moved := false
		for i, ep := range []*netsim.Endpoint{x.s.A.Link, x.s.B.Link} {
			held := ep.Held()
			if len(held) == 0 {
				continue
			}
			moved = true
			from := byte('A' + i)
			f := deliver
			if g, ok := parseFrame(held[0]); ok && x.sc.fate != nil {
				g.frame = append([]byte(nil), held[0]...)
				g.from, g.at = from, x.s.Elapsed()
				f = x.sc.fate(x, from, x.k[i], g)
				x.k[i]++
			}
			switch f {
			case drop:
				ep.Drop(0)
			case dup:
				ep.Duplicate(0)
				x.settle()
				ep.Deliver(0)
			default:
				ep.Deliver(0)
			}
			x.settle()
			x.checkInvariants()
		}
		if !moved {
			return
		}
	}
}

func (x *mrun) step(limit time.Time) {
	x.settle()
	x.pump()
	if x.srv == nil {
		x.srv = x.ln.TryAccept()
	}
	x.app()
	x.settle()
	x.pump()
	if x.sc.hook != nil {
		x.sc.hook(x)
		x.pump()
	}
	if x.sc.tick > 0 {
		if next := x.start.Add((x.s.Now().Sub(x.start)/x.sc.tick + 1) * x.sc.tick); next.Before(limit) {
			limit = next
		}
	}
	if err := x.s.Advance(limit); err != nil {
		x.fail(chkScenario, "%v", err)
		panic(abort{})
	}
}

func (x *mrun) app() {
	want := len(x.data) - x.written
	if x.sc.write != nil {
		if w := x.sc.write(x); w >= 0 {
			want = min(want, w)
		}
	}
	for want > 0 {
		n, err := x.cli.WriteSome(x.data[x.written : x.written+want])
		if err != nil {
			x.fail(chkScenario, "A write: %v", err)
			panic(abort{})
		}
		if n == 0 {
			break
		}
		x.written += n
		want -= n
	}
	if x.written == len(x.data) && x.flag["closed"] == nil && x.cli.State() == tcp.Established {
		x.cli.Close()
		x.flag["closed"] = true
	}
	if x.srv == nil || x.eof {
		return
	}
	max := -1
	if x.sc.read != nil {
		max = x.sc.read(x)
	}
	buf := make([]byte, 64<<10)
	for max != 0 {
		want := len(buf)
		if max > 0 {
			want = min(want, max)
		}
		n, err := x.srv.ReadSome(buf[:want])
		x.got = append(x.got, buf[:n]...)
		if max > 0 {
			max -= n
		}
		if errors.Is(err, io.EOF) {
			x.eof = true
			x.srv.Close()
			return
		}
		if err != nil {
			x.fail(chkScenario, "B read: %v", err)
			panic(abort{})
		}
		if n == 0 {
			return
		}
	}
}

// isnProbe returns the ISS A's connection from port 40000 gets when the
// clock reads netsim.Epoch (same seed, same addresses: the same secret).
func isnProbe(t *testing.T, o netsim.Options) uint32 {
	s, err := netsim.NewSim(o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.A.TCP.Connect(netip.AddrPortFrom(s.A.Addr, 40000), netip.AddrPortFrom(s.B.Addr, 80))
	if err != nil {
		t.Fatal(err)
	}
	return uint32(c.Snapshot().ISS)
}

// runScenario runs sc under mutation m and returns the failed checks
// (check -> first failure) of the four in-process checks.
func runScenario(t *testing.T, sc *mscenario, m tcp.Mutation) (fails map[string]string, events []trace.Event, exercised bool) {
	tcp.SetMutation(m)
	defer tcp.SetMutation(tcp.MutNone)
	rec := trace.NewRecorderWithData(1<<21, 64<<20)
	cfg := sc.cfg
	cfg.Recorder = rec
	if cfg.TimeWait == 0 {
		cfg.TimeWait = 2 * time.Second
	}
	o := netsim.Options{AB: netsim.Path{Manual: true}, BA: netsim.Path{Manual: true}, TCP: cfg, Seed: 7}
	if sc.cfgB != nil {
		b := *sc.cfgB
		b.Recorder, b.TimeWait = rec, cfg.TimeWait
		o.TCPB = &b
	}
	x := &mrun{t: t, sc: sc, rec: rec, rng: rand.New(rand.NewPCG(11, 13)), flag: map[string]any{}, fails: map[string]string{}}
	var skew time.Duration
	if sc.wrap != 0 {
		probe := o
		probe.TCP.Recorder, probe.TCPB = nil, nil
		iss0 := isnProbe(t, probe)
		skew = time.Duration(-sc.wrap-iss0) * 4 * time.Microsecond
	}
	s, err := netsim.NewSim(o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x.s = s
	s.Clock.Set(s.Now().Add(skew))
	x.data = make([]byte, sc.bytes)
	r := rand.New(rand.NewPCG(3, 5))
	for i := range x.data {
		x.data[i] = byte(r.Uint32())
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				if _, ok := p.(abort); !ok {
					x.fail(chkScenario, "panic: %v", p)
				}
			}
		}()
		if x.ln, err = s.B.TCP.Listen(netip.AddrPortFrom(s.B.Addr, 80), 4); err != nil {
			t.Fatal(err)
		}
		if x.cli, err = s.A.TCP.Connect(netip.AddrPortFrom(s.A.Addr, 40000), netip.AddrPortFrom(s.B.Addr, 80)); err != nil {
			t.Fatal(err)
		}
		if sc.wrap != 0 {
			if got := -uint32(x.cli.Snapshot().ISS); got != sc.wrap {
				t.Fatalf("ISS %d lies %d below 2^32, want %d", x.cli.Snapshot().ISS, got, sc.wrap)
			}
		}
		x.start = s.Now()
		limit := x.start.Add(sc.limit)
		for !x.eof && s.Now().Before(limit) {
			x.step(limit)
		}
		if !x.eof {
			x.fail(chkScenario, "stalled: B read %d of %d bytes in %v (A %v, B %v)", len(x.got), len(x.data), sc.limit,
				x.cli.State(), stateOf(x.srv))
		}
		end := s.Now().Add(cfg.TimeWait + 20*time.Second)
		for s.Now().Before(end) {
			x.step(end)
		}
		if x.eof && !bytes.Equal(x.got, x.data) {
			i := 0
			for i < len(x.got) && i < len(x.data) && x.got[i] == x.data[i] {
				i++
			}
			x.fail(chkScenario, "B read %d bytes, A wrote %d: first difference at offset %d", len(x.got), len(x.data), i)
		}
		for _, c := range []*tcp.Conn{x.cli, x.srv} {
			if c != nil && c.Err() != nil {
				x.fail(chkScenario, "conn %d ended with %v", c.ID(), c.Err())
			}
		}
		if st := stateOf(x.srv); st != tcp.Closed {
			x.fail(chkScenario, "B ends in %v, want CLOSED", st)
		}
		if st := x.cli.State(); st != tcp.TimeWait && st != tcp.Closed {
			x.fail(chkScenario, "A ends in %v, want TIME-WAIT or CLOSED", st)
		}
	}()
	events = append([]trace.Event(nil), rec.Events()...)
	if rec.Dropped() != 0 || rec.DataDropped() != 0 {
		t.Fatalf("recorder dropped %d events, %d data bytes", rec.Dropped(), rec.DataDropped())
	}
	checkMutTrace(x, sc, events)
	return x.fails, events, sc.exercised == nil || sc.exercised(x)
}

func stateOf(c *tcp.Conn) tcp.State {
	if c == nil {
		return tcp.Closed
	}
	return c.State()
}

// checkMutTrace runs trace validation and the byte-stream check.
func checkMutTrace(x *mrun, sc *mscenario, events []trace.Event) {
	var parts [][]trace.Event
	if sc.injected {
		by := map[uint32][]trace.Event{}
		var ids []uint32
		for _, e := range events {
			if !e.Kind.IsTCP() {
				continue
			}
			if _, ok := by[e.Conn]; !ok {
				ids = append(ids, e.Conn)
			}
			by[e.Conn] = append(by[e.Conn], e)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			parts = append(parts, by[id])
		}
	} else {
		parts = [][]trace.Event{events}
	}
	for _, p := range parts {
		rep := models.ValidateTCPTrace(p)
		if v := rep.Violation; v != nil {
			x.fail(chkValidate, "conn %d: %s: %s", v.Conn, v.Property, v.Message)
		}
	}
	sr := models.CheckTCPStreams(events, time.Minute)
	for _, r := range sr.Results {
		if r.Verdict == models.StreamViolated {
			x.fail(chkPorcupine, "%s: %s", r.Direction(), r.Reason)
		}
	}
}

// dataFrom reports a data segment from side from.
func (g wseg) dataFrom(from byte) bool { return g.from == from && g.payload > 0 }

// lossy drops about loss of A's data segments, and duplicates about dupP
// of them, from a seeded generator.
func lossy(loss, dupP float64) func(x *mrun, from byte, k int, g wseg) mfate {
	return func(x *mrun, from byte, k int, g wseg) mfate {
		if !g.dataFrom('A') {
			return deliver
		}
		switch r := x.rng.Float64(); {
		case r < loss:
			return drop
		case r < loss+dupP:
			return dup
		}
		return deliver
	}
}

// inject hands to (A or B) a segment from the other end's address.
func (x *mrun) inject(to byte, flags header.TCPFlags, seq, ack uint32, win uint16, opts, payload []byte) {
	a := netip.AddrPortFrom(x.s.A.Addr, 40000)
	b := netip.AddrPortFrom(x.s.B.Addr, 80)
	if to == 'B' {
		injectTCP(x.s.B.Link, x.s.B.Link.MAC(), x.s.A.Link.MAC(), a, b, flags, seq, ack, win, opts, payload)
	} else {
		injectTCP(x.s.A.Link, x.s.A.Link.MAC(), x.s.B.Link.MAC(), b, a, flags, seq, ack, win, opts, payload)
	}
	x.settle()
	x.checkInvariants()
}

// once runs f the first time cond holds.
func (x *mrun) once(key string, cond bool, f func()) {
	if cond && x.flag[key] == nil {
		x.flag[key] = true
		f()
	}
}

var (
	// A 600 KB transfer whose sequence numbers wrap (A's ISS 300000 below
	// 2^32), with 2 % of A's data lost.
	scWrap = &mscenario{name: "wrap", bytes: 600_000, wrap: 300_000, fate: lossy(0.02, 0), limit: 60 * time.Second,
		exercised: func(x *mrun) bool { return x.s.A.TCP.Counters().Get(tcp.RetransSegs) > 0 }}
	// A 400 KB transfer with 3 % of A's data segments lost and 2 %
	// duplicated: out-of-order data, SACK recovery, retransmissions.
	scLoss = &mscenario{name: "loss", bytes: 400_000, fate: lossy(0.03, 0.02), limit: 60 * time.Second,
		exercised: func(x *mrun) bool {
			a, b := x.s.A.TCP.Counters(), x.s.B.TCP.Counters()
			return a.Get(tcp.TCPSACKRecovery) > 0 && a.Get(tcp.RetransSegs) > 0 && b.Get(tcp.TCPOFOQueue) > 0 && b.Get(tcp.TCPDSACKRecv)+a.Get(tcp.TCPDSACKRecv) > 0
		}}
	// A 60 KB transfer into a 16 KiB receive buffer (no window scaling on
	// B's side... it scales: 16 KiB needs none) whose reader stops for 5 s
	// (the window closes; A probes it), then reads 100 bytes per step (less
	// than SWS avoidance announces) for 3 s, then everything.
	scZeroWindow = &mscenario{name: "zero window", bytes: 60_000,
		cfgB: &tcp.Config{RecvBuffer: 16 << 10, RecvBufferMax: 16 << 10},
		read: func(x *mrun) int {
			switch el := x.s.Now().Sub(x.start); {
			case el < 5*time.Second:
				return 0
			case el < 8*time.Second:
				return 100
			}
			return -1
		},
		exercised: func(x *mrun) bool { return x.s.A.TCP.Counters().Get(tcp.TCPWinProbe) > 0 },
		tick:      100 * time.Millisecond, limit: 120 * time.Second}
	// A 64 KB transfer into B with window scaling (a 1 MiB buffer: shift
	// 5), B reading everything at once.
	scScaled = &mscenario{name: "scaled window", bytes: 64 << 10,
		cfgB:      &tcp.Config{RecvBuffer: 1 << 20, RecvBufferMax: 1 << 20},
		exercised: func(x *mrun) bool { return x.srv != nil && x.srv.Info().WScale[1] > 0 },
		limit:     30 * time.Second}
	// A 20 KB transfer; A's FIN arrives twice (duplicated on the wire).
	scFinDup = &mscenario{name: "FIN duplicated", bytes: 20_000,
		fate: func(x *mrun, from byte, k int, g wseg) mfate {
			if from == 'A' && g.is(fF) {
				return dup
			}
			return deliver
		},
		exercised: func(x *mrun) bool { return x.s.B.TCP.Counters().Get(tcp.TCPOutOfWindow) > 0 },
		limit:     30 * time.Second}
	// A 100 KB transfer; as A's 20th data segment passes, an off-path RST
	// with a sequence number 1 MB below B's RCV.NXT reaches B.
	scRst = &mscenario{name: "stale RST", bytes: 100_000, injected: true,
		fate: func(x *mrun, from byte, k int, g wseg) mfate {
			x.once("rst", g.dataFrom('A') && k >= 20 && x.srv != nil, func() {
				sn := x.srv.Snapshot()
				x.inject('B', fR|fA, uint32(sn.RcvNxt)-1_000_000, uint32(sn.SndNxt), 1000, nil, nil)
			})
			return deliver
		},
		exercised: func(x *mrun) bool { return x.flag["rst"] != nil && x.s.B.TCP.Counters().Get(tcp.TCPOutOfWindow) > 0 },
		limit:     30 * time.Second}
	// A 100 KB transfer; as B's 10th segment passes, an off-path ACK
	// reaches A, in its receive window but acknowledging 50 KB beyond
	// SND.MAX.
	scAckBeyond = &mscenario{name: "ACK beyond SND.MAX", bytes: 100_000, injected: true,
		fate: func(x *mrun, from byte, k int, g wseg) mfate {
			x.once("ack", from == 'B' && k >= 10, func() {
				sn := x.cli.Snapshot()
				x.inject('A', fA, uint32(sn.RcvNxt), uint32(sn.SndMax)+50_000, 1000, nil, nil)
			})
			return deliver
		},
		exercised: func(x *mrun) bool {
			return x.flag["ack"] != nil && x.s.A.TCP.Counters().Get(tcp.TCPACKUnacceptable) > 0
		},
		limit: 30 * time.Second}
	// A 50 KB transfer; just before A's first data segment reaches B, an
	// old duplicate (its TSval 100 s older, other bytes) with the same
	// sequence number arrives (RFC 7323 5: what PAWS is for).
	scPAWS = &mscenario{name: "old duplicate (PAWS)", bytes: 50_000, injected: true,
		fate: func(x *mrun, from byte, k int, g wseg) mfate {
			x.once("paws", g.dataFrom('A') && g.opt.HasTimestamps, func() {
				var opts [12]byte
				header.PutTCPOptionNOP(opts[0:])
				header.PutTCPOptionNOP(opts[1:])
				header.PutTCPOptionTimestamps(opts[2:], g.opt.TSVal-100_000, g.opt.TSEcr)
				x.inject('B', fA, g.seq, g.ack, g.win, opts[:], bytes.Repeat([]byte{0xee}, g.payload))
			})
			return deliver
		},
		exercised: func(x *mrun) bool { return x.s.B.TCP.Counters().Get(tcp.PAWSRejected) > 0 },
		limit:     30 * time.Second}
	// A writes 100 bytes every 300 ms (20 writes), B reads at once: each
	// write finds nothing in flight and must leave at once (Nagle holds
	// back only while data is unacknowledged, RFC 9293 3.7.4); the
	// transfer must end within 7 s.
	scSmallWrites = &mscenario{name: "small writes", bytes: 2000,
		write: func(x *mrun) int {
			due := int(x.s.Now().Sub(x.start)/(300*time.Millisecond)) + 1
			return max(due*100-x.written, 0)
		},
		tick: 300 * time.Millisecond, limit: 7 * time.Second}
)

// The scenario each mutation is run with, and the checks that must catch
// it (in-process and child-process ones). An empty list is a mutation no
// check catches: reported, not hidden.
var mutationCases = []struct {
	m      tcp.Mutation
	sc     *mscenario
	expect []string
}{
	{tcp.MutNoWrapCompare, scWrap, []string{chkScenario}},
	// Masked: receiveData trims to the free buffer, so the byte past the
	// window is taken only where it fits, which Tcp.tla's RCV.WND (the free
	// buffer) allows; the spec variant's overflow cannot happen.
	{tcp.MutWindowOffByOne, scZeroWindow, nil},
	{tcp.MutAdvertiseBeyondBuffer, scScaled, []string{chkInvariants, chkBehaviour}},
	{tcp.MutAckUnreceived, scLoss, []string{chkValidate, chkScenario, chkNetsim, chkBehaviour, chkRapid}},
	{tcp.MutRetransmitWrongRange, scLoss, []string{chkValidate, chkPorcupine, chkScenario, chkNetsim, chkBehaviour}},
	{tcp.MutFinTwice, scFinDup, []string{chkValidate, chkScenario, chkNetsim, chkBehaviour, chkRapid}},
	{tcp.MutRstOutOfWindow, scRst, []string{chkValidate, chkScenario}},
	{tcp.MutDeliverOutOfOrder, scLoss, allChecks},
	{tcp.MutSACKDoubleCount, scLoss, []string{chkNetsim}},
	{tcp.MutAckBeyondSndNxt, scAckBeyond, []string{chkValidate, chkScenario}},
	{tcp.MutIgnorePAWS, scPAWS, []string{chkPorcupine, chkScenario}},
	{tcp.MutNoWindowUpdate, scZeroWindow, []string{chkNetsim, chkBehaviour}},
	{tcp.MutNagleAlways, scSmallWrites, []string{chkBehaviour}},
}

func scenarios() []*mscenario {
	seen := map[*mscenario]bool{}
	var out []*mscenario
	for _, c := range mutationCases {
		if !seen[c.sc] {
			seen[c.sc] = true
			out = append(out, c.sc)
		}
	}
	return out
}

// TestMutationBaseline: without a mutation every scenario passes every
// in-process check.
func TestMutationBaseline(t *testing.T) {
	for _, sc := range scenarios() {
		fails, ev, ex := runScenario(t, sc, tcp.MutNone)
		t.Logf("%-22s %6d events: %s", sc.name, len(ev), rowString(fails, allChecks[:4]))
		if !ex {
			t.Errorf("%s: the run did not exercise what the scenario is for", sc.name)
		}
		for c, why := range fails {
			t.Errorf("%s without a mutation: %s fails: %s", sc.name, c, why)
		}
	}
	if os.Getenv(tcp.MutationEnv) == "" && !testing.Short() {
		fails := childChecks(t, tcp.MutNone)
		t.Logf("package tests without a mutation: %s", rowString(fails, allChecks[4:]))
		for c, why := range fails {
			t.Errorf("without a mutation: %s fails: %s", c, why)
		}
	}
}

// childChecks runs the package's netsim, behaviour and rapid tests with
// mutation m (in a child process) and returns the failed checks with the
// failing tests.
func childChecks(t *testing.T, m tcp.Mutation) map[string]string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^(TestNetsim|TestNetsimDeterministic|TestBehaviour.*|TestTCPStateMachine)$",
		"-test.count=1", "-test.v", "-rapid.nofailfile", "-rapid.shrinktime=2s", "-rapid.seed=1")
	cmd.Env = append(os.Environ(), tcp.MutationEnv+"="+m.String())
	out, _ := cmd.CombinedOutput()
	fails := map[string]string{}
	add := func(check, test string) {
		if fails[check] == "" {
			fails[check] = test
		} else {
			fails[check] += " " + test
		}
	}
	for _, ln := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(ln, "--- FAIL: ") {
			continue
		}
		name := strings.Fields(strings.TrimPrefix(ln, "--- FAIL: "))[0]
		switch {
		case strings.HasPrefix(name, "TestNetsim"):
			add(chkNetsim, name)
		case strings.HasPrefix(name, "TestBehaviour"):
			add(chkBehaviour, name)
		case name == "TestTCPStateMachine":
			add(chkRapid, name)
		}
	}
	if p := regexp.MustCompile(`(?m)^panic: .*$`).Find(out); p != nil {
		add(chkBehaviour, "(child panicked: "+string(p)+")")
	}
	if ctx.Err() != nil {
		add(chkBehaviour, "(child timed out)")
	}
	return fails
}

func rowString(fails map[string]string, checks []string) string {
	var sb strings.Builder
	for _, c := range checks {
		if _, ok := fails[c]; ok {
			fmt.Fprintf(&sb, " %s:FAIL", c)
		} else {
			fmt.Fprintf(&sb, " %s:held", c)
		}
	}
	return strings.TrimSpace(sb.String())
}

// TestMutationSuite runs each mutation's scenario and the package's own
// tests under it, prints the row (which checks failed, which held, and
// why), and requires the expected checks to fail.
func TestMutationSuite(t *testing.T) {
	if os.Getenv(tcp.MutationEnv) != "" {
		t.Skip("in a child process")
	}
	children := !testing.Short()
	var table []string
	for _, mc := range mutationCases {
		t.Run(mc.m.String(), func(t *testing.T) {
			fails, _, _ := runScenario(t, mc.sc, mc.m)
			if children {
				for c, why := range childChecks(t, mc.m) {
					fails[c] = why
				}
			}
			checks := allChecks
			if !children {
				checks = allChecks[:4]
			}
			row := fmt.Sprintf("%-22s %-22s %s", mc.m, mc.sc.name, rowString(fails, checks))
			table = append(table, row)
			t.Log(row)
			var keys []string
			for c := range fails {
				keys = append(keys, c)
			}
			sort.Strings(keys)
			for _, c := range keys {
				t.Logf("  %s: %s", c, fails[c])
			}
			for _, c := range mc.expect {
				if _, ok := fails[c]; !ok && (children || !isChild(c)) {
					t.Errorf("%v: expected %s to fail, it held", mc.m, c)
				}
			}
			if len(fails) == 0 {
				t.Logf("  NOT CAUGHT by any check")
			}
		})
	}
	t.Log("mutation x check:\n" + strings.Join(table, "\n"))
}

func isChild(c string) bool { return c == chkNetsim || c == chkBehaviour || c == chkRapid }
