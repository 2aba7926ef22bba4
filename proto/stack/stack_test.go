package stack

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/verinic/verinic/proto/clock"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/link/memlink"
	"github.com/verinic/verinic/proto/socket"
)

var (
	addrA = netip.MustParseAddr("10.0.0.1")
	addrB = netip.MustParseAddr("10.0.0.2")
	macA  = net.HardwareAddr{2, 0, 0, 0, 0, 0xa}
	macB  = net.HardwareAddr{2, 0, 0, 0, 0, 0xb}
)

type pair struct {
	a, b   *Stack
	la, lb *memlink.Endpoint
	clk    *clock.Fake
	manual bool
	nicA   *NIC
	nicB   *NIC
}

// newPair builds two stacks joined by an in-memory wire: A is 10.0.0.1/24,
// B 10.0.0.2/24. With a fake clock the test polls by hand; otherwise the
// loops run on goroutines.
func newPair(t testing.TB, fake bool, ab, ba memlink.Faults, cfg Config) *pair {
	t.Helper()
	la, lb, err := memlink.Pair(memlink.Config{MAC: macA}, memlink.Config{MAC: macB}, ab, ba)
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{la: la, lb: lb, manual: fake}
	if fake {
		p.clk = clock.NewFake(time.Unix(1_000_000, 0))
		cfg.Clock = p.clk
	}
	p.a, p.b = New(cfg), New(cfg)
	if p.nicA, err = p.a.AddNIC(la, NICConfig{Name: "a0"}); err != nil {
		t.Fatal(err)
	}
	if p.nicB, err = p.b.AddNIC(lb, NICConfig{Name: "b0"}); err != nil {
		t.Fatal(err)
	}
	if err := p.a.AddAddress(1, netip.PrefixFrom(addrA, 24)); err != nil {
		t.Fatal(err)
	}
	if err := p.b.AddAddress(1, netip.PrefixFrom(addrB, 24)); err != nil {
		t.Fatal(err)
	}
	if !fake {
		p.a.Start()
		p.b.Start()
	}
	t.Cleanup(func() {
		p.a.Close()
		p.b.Close()
		la.Close()
		lb.Close()
	})
	return p
}

// settle polls both stacks until neither has work (manual mode).
func (p *pair) settle() {
	for i := 0; i < 1000; i++ {
		if p.a.Poll()+p.b.Poll() == 0 {
			return
		}
	}
}

// advance moves the fake clock in steps, polling after each.
func (p *pair) advance(d, step time.Duration) {
	for t := time.Duration(0); t < d; t += step {
		p.clk.Advance(step)
		p.settle()
	}
}

func TestPingBetweenStacksWithFragments(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	p.settle()
	echo, err := p.a.NewEcho(0)
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	for seq, size := range []int{0, 56, 1472, 1473, 8000, 65507} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*3 + seq)
		}
		if err := echo.Send(addrB, uint16(seq), data); err != nil {
			t.Fatalf("send %d bytes: %v", size, err)
		}
		p.settle()
		if echo.Queued() != 1 {
			t.Fatalf("%d-byte ping: %d replies (counters A: %v, B: %v)", size, echo.Queued(), nonZero(p.a.Counters()), nonZero(p.b.Counters()))
		}
		buf := make([]byte, 70000)
		n, r, err := echo.Recv(buf)
		if err != nil {
			t.Fatal(err)
		}
		if r.From != addrB || r.Seq != uint16(seq) || r.TTL != 64 || !bytes.Equal(buf[:n], data) {
			t.Fatalf("%d-byte ping: reply from %v seq %d ttl %d, %d bytes, data equal %v", size, r.From, r.Seq, r.TTL, n, bytes.Equal(buf[:n], data))
		}
	}
	cb, ca := p.b.Counters(), p.a.Counters()
	if cb.Get(IPReassembled) != 3 || ca.Get(IPReassembled) != 3 || cb.Get(IPFragmentsOut) == 0 {
		t.Fatalf("fragments: B reassembled %d, A reassembled %d, B sent %d fragments", cb.Get(IPReassembled), ca.Get(IPReassembled), cb.Get(IPFragmentsOut))
	}
	if cb.Get(ICMPEchoIn) != 6 || cb.Get(ICMPEchoOut) != 6 {
		t.Fatalf("B echo in/out %d/%d", cb.Get(ICMPEchoIn), cb.Get(ICMPEchoOut))
	}
}

func nonZero(c Counters) map[string]uint64 {
	m := map[string]uint64{}
	for _, s := range c.All() {
		if s.Value != 0 {
			m[s.Name] = s.Value
		}
	}
	return m
}

func TestUDPBothWaysManual(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	srv, err := p.b.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 7))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := p.a.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 7))
	if err != nil {
		t.Fatal(err)
	}
	if la := cli.LocalAddr(); la.Addr() != addrA || la.Port() < 32768 {
		t.Fatalf("client bound to %v", la)
	}
	buf := make([]byte, 70000)
	for _, size := range []int{0, 1, 100, 1472, 1473, 2961, 8000, 65507} {
		msg := bytes.Repeat([]byte{byte(size)}, size)
		if _, err := cli.Write(msg); err != nil {
			t.Fatalf("write %d: %v", size, err)
		}
		p.settle()
		if srv.Queued() != 1 {
			t.Fatalf("%d-byte datagram: server has %d queued (A: %v, B: %v)", size, srv.Queued(), nonZero(p.a.Counters()), nonZero(p.b.Counters()))
		}
		n, from, err := srv.ReadFrom(buf)
		if err != nil || n != size || !bytes.Equal(buf[:n], msg) || from != cli.LocalAddr() {
			t.Fatalf("server read %d-byte datagram: n=%d from %v err %v", size, n, from, err)
		}
		// Echo back.
		if _, err := srv.WriteTo(buf[:n], from); err != nil {
			t.Fatal(err)
		}
		p.settle()
		if cli.Queued() != 1 {
			t.Fatalf("%d-byte echo: client has %d queued", size, cli.Queued())
		}
		n, err = cli.Read(buf)
		if err != nil || n != size || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("client read %d: n=%d err=%v", size, n, err)
		}
	}
	if _, err := cli.Write(make([]byte, 65508)); !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("65508-byte datagram: %v, want EMSGSIZE", err)
	}
}

func TestPortUnreachableRefusesConnectedSocket(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	cli, err := p.a.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 9999))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Write([]byte("anyone?")); err != nil {
		t.Fatal(err)
	}
	p.settle()
	if got := p.b.Counters().Get(UDPNoPort); got != 1 {
		t.Fatalf("B udp_no_port = %d", got)
	}
	if got := p.a.Counters().Get(ICMPUnreachIn); got != 1 {
		t.Fatalf("A icmp_unreach_in = %d", got)
	}
	_, err = cli.Read(make([]byte, 10))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("read after port unreachable: %v, want ECONNREFUSED", err)
	}
	// Reported once, as Linux does.
	cli.SetReadDeadline(p.clk.Now().Add(time.Second))
	go p.clk.Advance(2 * time.Second)
	if _, err := cli.Read(make([]byte, 10)); !errors.Is(err, socket.ErrDeadlineExceeded) {
		t.Fatalf("second read: %v", err)
	}
}

func TestICMPErrorsAreRateLimited(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	s, _ := p.a.ListenUDP(netip.AddrPort{})
	for i := 0; i < 20; i++ {
		s.WriteTo([]byte("x"), netip.AddrPortFrom(addrB, 4000))
	}
	p.settle()
	c := p.b.Counters()
	if c.Get(UDPNoPort) != 20 || c.Get(ICMPUnreachOut) != 6 || c.Get(ICMPRateLimited) != 14 {
		t.Fatalf("no_port %d, unreach_out %d, rate_limited %d; want 20, 6 (Linux burst), 14", c.Get(UDPNoPort), c.Get(ICMPUnreachOut), c.Get(ICMPRateLimited))
	}
	p.advance(2*time.Second, 100*time.Millisecond)
	s.WriteTo([]byte("x"), netip.AddrPortFrom(addrB, 4000))
	p.settle()
	if got := p.b.Counters().Get(ICMPUnreachOut); got != 7 {
		t.Fatalf("after 2 s: unreach_out %d, want 7", got)
	}
}

func TestARPResolutionFailsAfterRetries(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	p.settle()
	var requests int
	p.la.SetTap(func(f []byte) {
		if len(f) >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 1 && f[41] == 99 {
			requests++
		}
	})
	s, _ := p.a.ListenUDP(netip.AddrPort{})
	for i := 0; i < 3; i++ {
		s.WriteTo([]byte("lost"), netip.AddrPortFrom(netip.MustParseAddr("10.0.0.99"), 5))
	}
	p.settle()
	if requests != 1 {
		t.Fatalf("%d ARP requests for 3 packets at once, want 1", requests)
	}
	p.advance(5*time.Second, 100*time.Millisecond)
	c := p.a.Counters()
	if requests != 3 || c.Get(ARPFailed) != 3 {
		t.Fatalf("after 5 s: %d requests (want 3), arp_failed %d (want 3)", requests, c.Get(ARPFailed))
	}
	if p.nicA.ARP().Len() != 0 { // the failed entry is gone
		t.Fatalf("cache has %d entries", p.nicA.ARP().Len())
	}
}

func TestGratuitousARPOnAddAddress(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	p.settle()
	var got []byte
	p.la.SetTap(func(f []byte) { got = append([]byte(nil), f...) })
	extra := netip.MustParseAddr("10.0.0.77")
	if err := p.a.AddAddress(1, netip.PrefixFrom(extra, 24)); err != nil {
		t.Fatal(err)
	}
	p.settle()
	a, err := header.ParseARP(got[14:])
	if err != nil || a.Op() != header.ARPRequest || a.SenderIP() != extra.As4() || a.TargetIP() != extra.As4() || !header.Ethernet(got).Dst().IsBroadcast() {
		t.Fatalf("no gratuitous ARP for the new address: %x (%v)", got, err)
	}
	// B's cache had A's entry (from the earlier exchange? none yet): an
	// unknown sender's gratuitous ARP creates nothing.
	if _, st := p.nicB.ARP().Lookup(extra.As4()); st != 0 {
		t.Fatalf("gratuitous ARP created an entry in B: %v", st)
	}
}

func TestUDPOverRunningLoopsWithWireFaults(t *testing.T) {
	faults := memlink.Faults{Drop: 0.02, Corrupt: 0.02, Duplicate: 0.02, Reorder: 0.02, Seed: 1}
	p := newPair(t, false, faults, faults, Config{})
	srv, _ := p.b.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 7))
	defer srv.Close()
	go func() {
		buf := make([]byte, 70000)
		for {
			n, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			srv.WriteTo(buf[:n], from)
		}
	}()
	cli, _ := p.a.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 7))
	defer cli.Close()
	buf := make([]byte, 70000)
	good, bad := 0, 0
	perSize := map[int]int{}
	start := time.Now()
	for i := 0; i < 200; i++ {
		size := []int{1, 64, 1472, 3000, 8000}[i%5]
		msg := bytes.Repeat([]byte{byte(i)}, size)
		cli.Write(msg)
		cli.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		for {
			n, err := cli.Read(buf)
			if err != nil {
				break
			}
			if n == size && bytes.Equal(buf[:n], msg) {
				good++
				perSize[size]++
				break
			}
			if n == size || buf[0] != byte(i) {
				continue // a duplicate or late echo of an earlier message
			}
			bad++
			break
		}
	}
	t.Logf("intact echoes per size: %v in %v", perSize, time.Since(start))
	// With 2% loss per frame an 8000-byte echo (12 frames) survives 78% of
	// the time; demand well over half overall.
	if bad != 0 || good < 120 {
		t.Fatalf("%d echoes intact, %d corrupted delivered", good, bad)
	}
	ca, cb := p.a.Counters(), p.b.Counters()
	t.Logf("%d/200 echoed intact; A: %v", good, nonZero(ca))
	if ca.Get(IPBadChecksum)+ca.Get(UDPBadChecksum)+cb.Get(IPBadChecksum)+cb.Get(UDPBadChecksum)+ca.Get(EthOtherHost)+cb.Get(EthOtherHost)+ca.Get(IPMalformed)+cb.Get(IPMalformed) == 0 {
		t.Fatal("corrupted frames were never counted")
	}
}

// Writers blocked on a full hand-off queue all get through once the loop
// drains it, and a write deadline bounds the wait.
func TestHandoffBackpressure(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{HandoffBytes: 8 << 10})
	p.settle()
	srv, _ := p.b.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 7))
	const writers, each = 4, 20
	done := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func() {
			s, err := p.a.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 7))
			if err != nil {
				done <- err
				return
			}
			for i := 0; i < each; i++ {
				if _, err := s.Write(make([]byte, 1000)); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	got := 0
	deadline := time.Now().Add(10 * time.Second)
	for finished := 0; finished < writers; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			finished++
		default:
			if time.Now().After(deadline) {
				t.Fatalf("writers still blocked; %d datagrams through", got)
			}
			p.settle()
			for srv.Queued() > 0 {
				srv.ReadFrom(make([]byte, 2000))
				got++
			}
			time.Sleep(time.Millisecond)
		}
	}
	p.settle()
	got += srv.Queued()
	if got != writers*each {
		t.Fatalf("%d of %d datagrams delivered", got, writers*each)
	}
	// Nobody polls now: a write deadline ends the wait.
	s, _ := p.a.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 7))
	s.SetWriteDeadline(p.clk.Now().Add(time.Second))
	errc := make(chan error, 1)
	go func() {
		for {
			if _, err := s.Write(make([]byte, 1000)); err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(20 * time.Millisecond)
	p.clk.Advance(2 * time.Second)
	if err := <-errc; !errors.Is(err, socket.ErrDeadlineExceeded) {
		t.Fatalf("blocked write: %v", err)
	}
}

// Closing the stack closes its sockets: a reader blocked with no deadline
// returns net.ErrClosed instead of waiting forever.
func TestCloseWakesBlockedReaders(t *testing.T) {
	p := newPair(t, false, memlink.Faults{}, memlink.Faults{}, Config{})
	sock, err := p.a.ListenUDP(netip.AddrPortFrom(addrA, 4000))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := sock.ReadFrom(make([]byte, 100))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the reader block
	if err := p.a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked read returned %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a reader blocked on a socket of a closed stack never returned")
	}
	if n := p.a.UDP().Sockets(); n != 0 {
		t.Fatalf("%d sockets still registered after Close", n)
	}
}
