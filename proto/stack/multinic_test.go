package stack

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/verinic/verinic/proto/clock"
	"github.com/verinic/verinic/proto/link/memlink"
	"github.com/verinic/verinic/proto/route"
)

// A stack with two interfaces: hosts A (10.0.0.1) and C (10.1.0.1) each
// on one of R's subnets. R answers on both, routes by longest prefix, and a
// reply routed out of the other interface is handed to that interface's
// poll loop.
func TestTwoInterfaces(t *testing.T) {
	clk := clock.NewFake(time.Unix(1000, 0))
	mk := func(mac byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 1, mac} }
	aL, r1L, err := memlink.Pair(memlink.Config{MAC: mk(1)}, memlink.Config{MAC: mk(2)}, memlink.Faults{}, memlink.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	cL, r2L, err := memlink.Pair(memlink.Config{MAC: mk(3)}, memlink.Config{MAC: mk(4)}, memlink.Faults{}, memlink.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { aL.Close(); r1L.Close(); cL.Close(); r2L.Close() }()
	a, c, r := New(Config{Clock: clk}), New(Config{Clock: clk}), New(Config{Clock: clk})
	a.AddNIC(aL, NICConfig{})
	c.AddNIC(cL, NICConfig{})
	r.AddNIC(r1L, NICConfig{Name: "r1"})
	r.AddNIC(r2L, NICConfig{Name: "r2"})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.AddAddress(1, netip.MustParsePrefix("10.0.0.1/24")))
	must(c.AddAddress(1, netip.MustParsePrefix("10.1.0.1/24")))
	must(r.AddAddress(1, netip.MustParsePrefix("10.0.0.254/24")))
	must(r.AddAddress(2, netip.MustParsePrefix("10.1.0.254/24")))
	must(a.AddRoute(route.Route{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.0.0.254"), NIC: 1}))
	settle := func() {
		for i := 0; i < 1000 && a.Poll()+c.Poll()+r.Poll() > 0; i++ {
		}
	}
	settle()

	// A pings R's address on the other interface (the weak host model:
	// any local address is accepted on any interface).
	echo, _ := a.NewEcho(0)
	echo.Send(netip.MustParseAddr("10.1.0.254"), 1, []byte("hi"))
	settle()
	if echo.Queued() != 1 {
		t.Fatalf("A's ping of R's second address: no reply (R: %v)", nonZero(r.Counters()))
	}
	// R sends to both hosts; each datagram leaves by its route.
	sa, _ := a.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 9))
	sc, _ := c.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 9))
	rs, _ := r.ListenUDP(netip.AddrPort{})
	rs.WriteTo([]byte("to A"), netip.MustParseAddrPort("10.0.0.1:9"))
	rs.WriteTo([]byte("to C"), netip.MustParseAddrPort("10.1.0.1:9"))
	settle()
	buf := make([]byte, 10)
	if sa.Queued() != 1 || sc.Queued() != 1 {
		t.Fatalf("A got %d, C got %d datagrams", sa.Queued(), sc.Queued())
	}
	n, from, _ := sc.ReadFrom(buf)
	if string(buf[:n]) != "to C" || from.Addr() != netip.MustParseAddr("10.1.0.254") {
		t.Fatalf("C got %q from %v", buf[:n], from)
	}
	// A host route sends replies to A out of R's second interface: the
	// echo reply is built by interface 1's loop and handed to interface
	// 2's, which sends it to C (which drops it: not its address).
	must(r.AddRoute(route.Route{Prefix: netip.MustParsePrefix("10.0.0.1/32"), Gateway: netip.MustParseAddr("10.1.0.1"), NIC: 2}))
	before := c.Counters().Get(IPNotForUs)
	echo.Send(netip.MustParseAddr("10.0.0.254"), 2, []byte("hi"))
	settle()
	if got := c.Counters().Get(IPNotForUs) - before; got != 1 {
		t.Fatalf("reply routed via interface 2 reached C %d times (R: %v)", got, nonZero(r.Counters()))
	}
}

// A datagram whose first fragment arrived but which never completes is
// answered with ICMP Time Exceeded, code 1, after 30 s (RFC 792).
func TestReassemblyTimeoutSendsTimeExceeded(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	p.settle()
	// Resolve each other first.
	s, _ := p.a.ListenUDP(netip.AddrPort{})
	s.WriteTo([]byte("x"), netip.AddrPortFrom(addrB, 9))
	p.settle()
	p.la.Inject(ipFrame(17, 77, 0, true, udpPayload(7, make([]byte, 64))[:40]))
	p.settle()
	p.advance(29e9, 1e9)
	if got := p.a.Counters().Get(ICMPOtherIn); got != 0 {
		t.Fatalf("time exceeded before 30 s")
	}
	p.advance(2e9, 1e9)
	if got, to := p.a.Counters().Get(ICMPOtherIn), p.b.Counters().Get(ReasmTimeouts); got != 1 || to != 1 {
		t.Fatalf("after 31 s: A received %d ICMP (want 1 time exceeded), B reassembly timeouts %d", got, to)
	}
}
