package stack

import (
	"net/netip"
	"testing"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/proto/clock"
	"github.com/verinic/verinic/proto/link"
	"github.com/verinic/verinic/proto/link/memlink"
)

// metaLink is a memlink endpoint whose device claims to have checked
// checksums: every received frame gets meta, and it offers offloads.
type metaLink struct {
	*memlink.Endpoint
	meta     dma.Meta
	offloads dma.Offloads
}

func (l *metaLink) RxBatch(q int, pkts []dma.Packet) (int, error) {
	n, err := l.Endpoint.RxBatch(q, pkts)
	for i := range pkts[:n] {
		pkts[i].Meta = l.meta
	}
	return n, err
}

func (l *metaLink) Offloads() dma.Offloads { return l.offloads }

var (
	_ link.Offloader = (*metaLink)(nil)
	_ link.Offloader = (*ixgbe.NIC)(nil)
)

// metaStack is stack B (10.0.0.2/24) on a metaLink, polled by hand, with
// the memlink peer that injects frames into it.
func metaStack(t *testing.T, ml *metaLink) (*Stack, *memlink.Endpoint) {
	t.Helper()
	la, lb, err := memlink.Pair(memlink.Config{MAC: macA}, memlink.Config{MAC: macB}, memlink.Faults{}, memlink.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	ml.Endpoint = lb
	s := New(Config{Clock: clock.NewFake(time.Unix(1_000_000, 0))})
	if _, err := s.AddNIC(ml, NICConfig{Name: "b0"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAddress(1, netip.PrefixFrom(addrB, 24)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); la.Close(); lb.Close() })
	return s, la
}

// The stack believes the device: a checksum it verified is not summed again
// (a frame whose UDP checksum is wrong but which the device vouched for is
// delivered, which only the Verified parsers allow), and a frame it flagged
// is counted as a checksum error even when its checksum is right. Without
// link.Offloader the same metadata is ignored and software checks.
func TestStackUsesDeviceChecksums(t *testing.T) {
	good := ipFrame(17, 1, 0, false, udpPayload(7, []byte("hello")))
	badUDP := append([]byte(nil), good...)
	badUDP[len(badUDP)-1] ^= 1
	badIP := append([]byte(nil), good...)
	badIP[24] ^= 0xff
	const ok = dma.RxIPChecked | dma.RxL4Checked
	cases := []struct {
		name     string
		meta     dma.Meta
		offloads dma.Offloads
		frame    []byte
		want     Counter // the counter that moves by one
	}{
		{"verified, wrong udp sum: trusted", ok, dma.OffloadRxChecksum, badUDP, UDPDelivered},
		{"verified, wrong ip sum: trusted", ok, dma.OffloadRxChecksum, badIP, UDPDelivered},
		{"flagged l4, right sum", ok | dma.RxL4Bad, dma.OffloadRxChecksum, good, UDPBadChecksum},
		{"flagged ip, right sum", ok | dma.RxIPBad, dma.OffloadRxChecksum, good, IPBadChecksum},
		{"unchecked: software", 0, dma.OffloadRxChecksum, badUDP, UDPBadChecksum},
		{"no Offloader: meta ignored", ok, 0, badUDP, UDPBadChecksum},
		{"stripped VLAN tag: dropped", ok | dma.RxVLAN, dma.OffloadRxChecksum | dma.OffloadRxVLAN, good, EthVLAN},
	}
	for _, c := range cases {
		ml := &metaLink{meta: c.meta, offloads: c.offloads}
		s, la := metaStack(t, ml)
		srv, err := s.ListenUDP(netipAddrPort(7))
		if err != nil {
			t.Fatal(err)
		}
		before := s.Counters().Get(c.want)
		la.Inject(c.frame)
		for i := 0; i < 10 && s.Poll() > 0; i++ {
		}
		if got := s.Counters().Get(c.want) - before; got != 1 {
			t.Errorf("%s: %s moved by %d (counters %v)", c.name, c.want, got, nonZero(s.Counters()))
		}
		srv.Close()
	}
}

// End to end over two simulated 82599s: the device flags bad IPv4 and UDP
// checksums and the stack counts them; good datagrams are delivered.
func TestDeviceFlaggedChecksumsSim(t *testing.T) {
	p := newSimPair(t, nil, nil, Config{})
	srv, err := p.b.ListenUDP(netipAddrPort(7))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	good := padTo(ipFrame(17, 1, 0, false, udpPayload(7, []byte("hello"))), 60)
	copy(good[0:6], p.simB.MAC())
	badUDP := append([]byte(nil), good...)
	badUDP[14+20+8] ^= 1
	badIP := append([]byte(nil), good...)
	badIP[24] ^= 0xff
	c0 := p.b.Counters()
	p.simB.Receive(withFCS(good))
	p.simB.Receive(withFCS(badUDP))
	p.simB.Receive(withFCS(badUDP))
	p.simB.Receive(withFCS(badIP))
	want := map[Counter]uint64{UDPDelivered: 1, UDPBadChecksum: 2, IPBadChecksum: 1}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := p.b.Counters()
		done := true
		for k, v := range want {
			if c.Get(k)-c0.Get(k) != v {
				done = false
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			for k, v := range want {
				if c.Get(k)-c0.Get(k) != v {
					t.Errorf("%s moved by %d, want %d", k, c.Get(k)-c0.Get(k), v)
				}
			}
			t.Fatalf("B: %v", nonZero(c))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
