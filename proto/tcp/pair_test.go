package tcp_test

import (
	"net"
	"net/netip"
	"testing"

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
