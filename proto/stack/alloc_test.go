package stack

import (
	"net/netip"
	"testing"

	"github.com/verinic/verinic/proto/link/memlink"
)

// The per-packet path allocates nothing in steady state: a UDP datagram
// sent from a socket, carried through both stacks' poll loops (hand-off,
// frame build, TX, RX, parse, demultiplex, socket queue), received, echoed
// back and received again; and the same for a fragmented datagram and for
// a ping.
func TestSteadyStateAllocatesNothing(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	srv, _ := p.b.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 7))
	cli, _ := p.a.ListenUDP(netip.AddrPort{})
	echo, _ := p.a.NewEcho(0)
	dst := netip.AddrPortFrom(addrB, 7)
	buf := make([]byte, 9000)
	roundTrip := func(size int) func() {
		msg := make([]byte, size)
		return func() {
			if _, err := cli.WriteTo(msg, dst); err != nil {
				t.Fatal(err)
			}
			p.settle()
			n, from, err := srv.ReadFrom(buf)
			if err != nil || n != size {
				t.Fatalf("server read %d, %v", n, err)
			}
			srv.WriteTo(buf[:n], from)
			p.settle()
			if n, _, err := cli.ReadFrom(buf); err != nil || n != size {
				t.Fatalf("client read %d, %v", n, err)
			}
		}
	}
	ping := func() {
		echo.Send(addrB, 1, buf[:56])
		p.settle()
		if _, _, err := echo.Recv(buf); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		f    func()
	}{{"udp 64", roundTrip(64)}, {"udp 1472", roundTrip(1472)}, {"udp 8000 (fragmented)", roundTrip(8000)}, {"ping", ping}} {
		c.f() // warm up: ARP, map growth
		c.f()
		if a := testing.AllocsPerRun(500, c.f); a != 0 {
			t.Errorf("%s: %v allocations per round trip", c.name, a)
		}
	}
}
