package udp

import (
	"errors"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/verinic/verinic/proto/checksum"
	"github.com/verinic/verinic/proto/clock"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/socket"
)

// fakeNet is a socket.Network that records what is sent.
type fakeNet struct {
	mu   sync.Mutex
	clk  clock.Clock
	sent []sent
}

type sent struct {
	m       socket.Meta
	l4      [8]byte
	payload []byte
}

var (
	local  = netip.MustParseAddr("10.0.0.1")
	remote = netip.MustParseAddr("10.0.0.2")
)

func (n *fakeNet) Clock() clock.Clock        { return n.clk }
func (n *fakeNet) IsLocal(a netip.Addr) bool { return a == local }
func (n *fakeNet) Route(dst, src netip.Addr) (socket.Route, error) {
	if !netip.MustParsePrefix("10.0.0.0/24").Contains(dst) {
		return socket.Route{}, errors.New("no route")
	}
	return socket.Route{NIC: 1, Src: local, NextHop: dst, MTU: 1500}, nil
}
func (n *fakeNet) SendDatagram(b *socket.Base, r socket.Route, m socket.Meta, l4 [8]byte, payload []byte) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, sent{m, l4, append([]byte(nil), payload...)})
	return nil
}

func TestSendBuildsHeaderAndChecksum(t *testing.T) {
	n := &fakeNet{clk: clock.Real}
	p := New(n, Config{})
	s, err := p.Listen(netip.AddrPortFrom(netip.Addr{}, 5000))
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("hello, world")
	if _, err := s.WriteTo(payload, netip.AddrPortFrom(remote, 53)); err != nil {
		t.Fatal(err)
	}
	got := n.sent[0]
	dgram := append(got.l4[:], got.payload...)
	u, err := header.ParseUDP(dgram, local.As4(), remote.As4())
	if err != nil {
		t.Fatalf("the datagram sent does not parse: %v", err)
	}
	if u.SrcPort() != 5000 || u.DstPort() != 53 || string(u.Payload()) != "hello, world" || got.m.Local.Addr() != local {
		t.Fatalf("sent %v ports %d->%d", got.m, u.SrcPort(), u.DstPort())
	}
	if checksum.Sum(dgram, checksum.PseudoHeaderSum(local.As4(), remote.As4(), Proto, uint16(len(dgram)))) != 0xffff {
		t.Fatal("checksum does not verify")
	}
}

func TestBindConnectAndDemux(t *testing.T) {
	n := &fakeNet{clk: clock.Real}
	p := New(n, Config{})
	a, _ := p.Listen(netip.AddrPortFrom(netip.Addr{}, 7))
	if _, err := p.Listen(netip.AddrPortFrom(local, 7)); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second bind: %v", err)
	}
	if _, err := p.Listen(netip.AddrPortFrom(netip.MustParseAddr("10.0.0.99"), 8)); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("bind to a foreign address: %v", err)
	}
	c, err := p.Dial(netip.AddrPort{}, netip.AddrPortFrom(remote, 9))
	if err != nil || c.LocalAddr().Addr() != local || c.LocalAddr().Port() == 0 {
		t.Fatalf("dial: %v %v", c.LocalAddr(), err)
	}
	from := netip.AddrPortFrom(remote, 9)
	if p.Deliver(from, netip.AddrPortFrom(local, 7), 64, 0, []byte("to a")) != Delivered {
		t.Fatal("not delivered to the wildcard socket")
	}
	if p.Deliver(from, c.LocalAddr(), 64, 0, []byte("to c")) != Delivered {
		t.Fatal("not delivered to the connected socket")
	}
	// A connected socket takes only its peer's datagrams.
	if p.Deliver(netip.AddrPortFrom(remote, 10), c.LocalAddr(), 64, 0, nil) != NoSocket {
		t.Fatal("connected socket took a stranger's datagram")
	}
	buf := make([]byte, 2)
	nr, fromA, err := a.ReadFrom(buf)
	if err != nil || nr != 2 || string(buf) != "to" || fromA != from {
		t.Fatalf("ReadFrom: %d %q %v %v", nr, buf, fromA, err)
	}
	// Close frees the port and wakes readers.
	done := make(chan error)
	go func() { _, _, err := a.ReadFrom(buf); done <- err }()
	time.Sleep(10 * time.Millisecond)
	a.Close()
	if err := <-done; !errors.Is(err, socket.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if _, err := p.Listen(netip.AddrPortFrom(local, 7)); err != nil {
		t.Fatalf("port not freed by Close: %v", err)
	}
	// ICMP errors reach connected sockets only.
	p.HandleError(c.LocalAddr(), netip.AddrPortFrom(remote, 9), header.ICMPv4DestinationUnreachable, header.ICMPv4PortUnreachable)
	if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("write after port unreachable: %v", err)
	}
	if _, err := c.WriteTo([]byte("x"), netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), 1)); err == nil {
		t.Fatal("send without a route succeeded")
	}
}

func TestReceiveQueueIsBounded(t *testing.T) {
	p := New(&fakeNet{clk: clock.Real}, Config{RecvBufferBytes: 1000, RecvBufferDatagrams: 4})
	s, _ := p.Listen(netip.AddrPortFrom(netip.Addr{}, 7))
	dst := netip.AddrPortFrom(local, 7)
	results := map[Result]int{}
	for i := 0; i < 10; i++ {
		results[p.Deliver(netip.AddrPortFrom(remote, 1), dst, 64, 0, make([]byte, 100))]++
	}
	if results[Delivered] != 4 || results[QueueFull] != 6 || p.Counters().RcvbufErrors.Load() != 6 || s.Queued() != 4 {
		t.Fatalf("results %v", results)
	}
}
