package stack

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/link/memlink"
)

// An ICMP "fragmentation needed" about a datagram A sent lowers the MTU A
// fragments to for that destination (RFC 1191), until it expires.
func TestFragmentationNeededLowersPathMTU(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	p.settle()
	srv, _ := p.b.ListenUDP(netipAddrPort(7))
	cli, _ := p.a.ListenUDP(netip.AddrPort{})
	maxLen := 0
	p.la.SetTap(func(f []byte) {
		if len(f) > 34 && f[12] == 0x08 && f[13] == 0 {
			maxLen = max(maxLen, int(binary.BigEndian.Uint16(f[16:18])))
		}
	})
	send := func() {
		maxLen = 0
		cli.WriteTo(make([]byte, 3000), netip.AddrPortFrom(addrB, 7))
		p.settle()
		if srv.Queued() != 1 {
			t.Fatalf("datagram not delivered (B: %v)", nonZero(p.b.Counters()))
		}
		srv.ReadFrom(make([]byte, 4000))
	}
	send()
	if maxLen != 1500 {
		t.Fatalf("largest IP packet %d before any report, want 1500", maxLen)
	}
	// B (as a router would) reports a next-hop MTU of 1000, quoting the
	// header of A's datagram.
	quote := ipFrame(17, 9, 0, false, udpPayload(7, make([]byte, 3000)))[14 : 14+28]
	copy(quote[12:16], addrA.AsSlice())
	copy(quote[16:20], addrB.AsSlice())
	msg := make([]byte, 8+len(quote))
	copy(msg[8:], quote)
	header.EncodeICMPv4(msg, header.ICMPv4DestinationUnreachable, header.ICMPv4FragmentationNeeded, 1000, len(quote))
	fr := ipFrame(1, 10, 0, false, msg)
	copy(fr[0:6], macA)
	copy(fr[6:12], macB)
	copy(fr[26:30], addrB.AsSlice())
	copy(fr[30:34], addrA.AsSlice())
	header.IPv4(fr[14:34]).SetChecksum()
	p.lb.Inject(fr)
	p.settle()
	if got := p.a.PathMTU(1, addrB); got != 1000 {
		t.Fatalf("path MTU to B = %d, want 1000", got)
	}
	send()
	if maxLen != 1000-4 { // 976 bytes of data (a multiple of 8) + 20
		t.Fatalf("largest IP packet %d after the report, want 996", maxLen)
	}
	p.clk.Advance(11 * time.Minute)
	if got := p.a.PathMTU(1, addrB); got != 1500 {
		t.Fatalf("path MTU after expiry = %d", got)
	}
}

// A socket with DF set gets EMSGSIZE for a datagram over the path MTU and
// sends the others unfragmented with DF on the wire.
func TestDontFragment(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	p.settle()
	srv, _ := p.b.ListenUDP(netipAddrPort(7))
	cli, _ := p.a.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 7))
	cli.SetDontFragment(true)
	var df bool
	p.la.SetTap(func(f []byte) {
		if len(f) > 34 && f[12] == 0x08 && f[13] == 0 && f[23] == 17 {
			df = f[20]&0x40 != 0
		}
	})
	if _, err := cli.Write(make([]byte, 1473)); !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("1473 bytes with DF: %v, want EMSGSIZE", err)
	}
	if _, err := cli.Write(make([]byte, 1472)); err != nil {
		t.Fatal(err)
	}
	p.settle()
	if srv.Queued() != 1 || !df {
		t.Fatalf("1472 bytes with DF: delivered %d, DF on the wire %v", srv.Queued(), df)
	}
}
