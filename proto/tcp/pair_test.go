package tcp_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/verinic/verinic/models"

	"github.com/verinic/verinic/proto/link/memlink"
	"github.com/verinic/verinic/proto/stack"
	"github.com/verinic/verinic/proto/tcp"
	"github.com/verinic/verinic/trace"
)

// pair is two stacks with TCP over an in-memory wire: A at 10.0.0.1, B at
// 10.0.0.2.
type pair struct {
	sa, sb *stack.Stack
	a, b   *tcp.Protocol
	la, lb *memlink.Endpoint
	rec    *trace.Recorder
}

var (
	addrA = netip.MustParseAddr("10.0.0.1")
	addrB = netip.MustParseAddr("10.0.0.2")
)

type pairOpts struct {
	ab, ba memlink.Faults
	cfg    tcp.Config
	queues int
	rec    *trace.Recorder
}

func newPair(t testing.TB, o pairOpts) *pair {
	t.Helper()
	q := max(o.queues, 1)
	la, lb, err := memlink.Pair(memlink.Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Queues: q, Buffers: 4096, WireFrames: 4096},
		memlink.Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, Queues: q, Buffers: 4096, WireFrames: 4096}, o.ab, o.ba)
	if err != nil {
		t.Fatal(err)
	}
	if o.rec == nil {
		if tt, ok := t.(*testing.T); ok {
			o.rec = checkedRecorder(tt)
		}
	}
	p := &pair{la: la, lb: lb, rec: o.rec}
	p.sa, p.sb = stack.New(stack.Config{}), stack.New(stack.Config{})
	cfg := o.cfg
	cfg.Recorder = o.rec
	if p.a, err = tcp.New(p.sa, cfg); err != nil {
		t.Fatal(err)
	}
	if p.b, err = tcp.New(p.sb, cfg); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		s *stack.Stack
		l *memlink.Endpoint
		a string
	}{{p.sa, la, "10.0.0.1/24"}, {p.sb, lb, "10.0.0.2/24"}} {
		if _, err := x.s.AddNIC(x.l, stack.NICConfig{}); err != nil {
			t.Fatal(err)
		}
		if err := x.s.AddAddress(1, netip.MustParsePrefix(x.a)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.sa.Start(); err != nil {
		t.Fatal(err)
	}
	if err := p.sb.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.sa.Close(); p.sb.Close(); la.Close(); lb.Close() })
	return p
}

// Trace sizes for checkedRecorder: a test whose trace does not fit is not
// checked (the sample is every test that fits; the log says which).
const (
	checkedEvents    = 1 << 18
	checkedDataBytes = 48 << 20
)

// checkedRecorder records every TCP event and application byte of a test
// and, when the test ends (after its stacks closed), checks the trace: the
// protocol against tla/Tcp.tla's transcription (models.ValidateTCPTrace)
// and each byte stream for linearizability (models.CheckTCPStreams).
func checkedRecorder(t *testing.T) *trace.Recorder {
	rec := trace.NewRecorderWithData(checkedEvents, checkedDataBytes)
	t.Cleanup(func() { checkTrace(t, t.Name(), rec) })
	return rec
}

// writeThenClose writes data on c and half-closes it from a goroutine of
// its own. The writer records into the test's trace, so the test waits for
// it at cleanup (before the trace is checked); a writer still blocked after
// 10 s (the test failed before reading everything) is reported, not waited
// for.
func writeThenClose(t *testing.T, c *tcp.Conn, data []byte) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Write(data)
		c.CloseWrite()
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the writer did not end")
		}
	})
}

// checkTrace checks a recorded trace: the protocol against tla/Tcp.tla's
// transcription (models.ValidateTCPTrace) and each byte stream for
// linearizability (models.CheckTCPStreams). A trace that did not fit its
// recorder is logged as unchecked.
func checkTrace(t testing.TB, what string, rec *trace.Recorder) {
	t.Helper()
	if rec.Dropped() > 0 || rec.DataDropped() > 0 {
		t.Logf("%s: trace not checked: %d events and %d data bytes did not fit the recorder", what, rec.Dropped(), rec.DataDropped())
		return
	}
	ev := rec.Events()
	if r := models.ValidateTCPTrace(ev); !r.OK() {
		t.Errorf("%s: trace validation against tla/Tcp.tla: %v", what, r.Violation)
	}
	s := models.CheckTCPStreams(ev, time.Minute)
	for _, res := range s.Results {
		// Skipped: a connection whose peer never existed (refused).
		if res.Verdict != models.StreamHeld && res.Verdict != models.StreamSkipped {
			t.Errorf("%s: byte stream conn %d -> %d: %v %s", what, res.Writer, res.Reader, res.Verdict, res.Reason)
		}
	}
}
