package stack

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/internal/simpair"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/proto/link"
)

// The driver is a link the stack runs on.
var _ link.Link = (*ixgbe.NIC)(nil)

// simPair is two stacks on two simulated 82599s (free-running engines),
// driven by the real driver, joined back to back by a simulated cable.
type simPair struct {
	a, b       *Stack
	simA, simB *ixgbesim.NIC
	cable      *ixgbesim.Cable
}

func newSimPair(t testing.TB, ab, ba *ixgbesim.Faults, cfg Config) *simPair {
	return newSimPairQ(t, ab, ba, cfg, 1)
}

func newSimPairQ(t testing.TB, ab, ba *ixgbesim.Faults, cfg Config, queues int) *simPair {
	return newSimPairWith(t, ab, ba, cfg, queues, nil)
}

// newSimPairWith is newSimPairQ with setup run on each driver (and its
// simulated NIC) before the stacks take them.
func newSimPairWith(t testing.TB, ab, ba *ixgbesim.Faults, cfg Config, queues int, setup func(*ixgbesim.NIC, *ixgbe.NIC)) *simPair {
	t.Helper()
	sims, err := simpair.New(simpair.Config{Names: [2]string{"sa", "sb"}, Policy: dma.NoHugepages, AB: ab, BA: ba})
	if err != nil {
		t.Fatal(err)
	}
	p := &simPair{simA: sims.A, simB: sims.B, cable: sims.Cable}
	var drivers []*ixgbe.NIC
	for _, sn := range []*ixgbesim.NIC{p.simA, p.simB} {
		d, err := ixgbe.New(sn, ixgbe.Config{RxQueues: queues, TxQueues: queues, Mempool: dma.MempoolConfig{Buffers: 2048}})
		if err != nil {
			t.Fatalf("driver on %s: %v", sn.Name(), err)
		}
		if setup != nil {
			setup(sn, d)
		}
		drivers = append(drivers, d)
	}
	p.a, p.b = New(cfg), New(cfg)
	for i, st := range []*Stack{p.a, p.b} {
		if _, err := st.AddNIC(drivers[i], NICConfig{}); err != nil {
			t.Fatal(err)
		}
		if err := st.AddAddress(1, netip.PrefixFrom([]netip.Addr{addrA, addrB}[i], 24)); err != nil {
			t.Fatal(err)
		}
		st.Start()
	}
	t.Cleanup(func() {
		p.a.Close()
		p.b.Close()
		for _, d := range drivers {
			d.Close()
		}
		sims.Close()
		if f := sims.Domain.Faults(); len(f) > 0 {
			t.Errorf("IOMMU faults: %v", f)
		}
	})
	return p
}

func TestSimBackToBackPingAndUDP(t *testing.T) {
	faults := &ixgbesim.Faults{Seed: 7, Drop: 0.01, Corrupt: 0.01, Duplicate: 0.01, Reorder: 0.01}
	p := newSimPair(t, faults, faults, Config{})
	echo, err := p.a.NewEcho(0)
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	buf := make([]byte, 70000)
	replies := 0
	for seq, size := range []int{56, 1472, 8000, 8000, 20000} {
		data := bytes.Repeat([]byte{byte(seq + 1)}, size)
		for try := 0; try < 5; try++ { // faults may eat a fragment
			echo.Send(addrB, uint16(seq), data)
			echo.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			n, r, err := echo.Recv(buf)
			if err == nil && r.Seq == uint16(seq) && bytes.Equal(buf[:n], data) {
				replies++
				break
			}
		}
	}
	if replies != 5 {
		t.Fatalf("%d of 5 pings answered (A: %v)", replies, nonZero(p.a.Counters()))
	}
	srv, _ := p.b.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 7))
	defer srv.Close()
	go func() {
		b := make([]byte, 70000)
		for {
			n, from, err := srv.ReadFrom(b)
			if err != nil {
				return
			}
			srv.WriteTo(b[:n], from)
		}
	}()
	cli, _ := p.a.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 7))
	defer cli.Close()
	good := 0
	for i := 0; i < 60; i++ {
		size := []int{1, 512, 1472, 4000, 8000, 16000}[i%6]
		msg := bytes.Repeat([]byte{byte(i)}, size)
		cli.Write(msg)
		cli.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		for {
			n, err := cli.Read(buf)
			if err != nil {
				break
			}
			if n == size && bytes.Equal(buf[:n], msg) {
				good++
				break
			}
		}
	}
	st := p.cable.Stats()
	t.Logf("UDP echoes intact: %d/60; cable: %+v", good, st.AB)
	if good < 40 {
		t.Fatalf("only %d/60 UDP echoes over a 1%%-faulty cable (A: %v)", good, nonZero(p.a.Counters()))
	}
}

// With several queues per NIC, RSS spreads flows over the poll loops; every
// fragment of a datagram reaches the same loop (the 82599 hashes fragments
// on addresses only), so reassembly per loop works.
func TestSimMultiQueue(t *testing.T) {
	p := newSimPairQ(t, nil, nil, Config{}, 4)
	srv, _ := p.b.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 7))
	defer srv.Close()
	go func() {
		b := make([]byte, 70000)
		for {
			n, from, err := srv.ReadFrom(b)
			if err != nil {
				return
			}
			srv.WriteTo(b[:n], from)
		}
	}()
	buf := make([]byte, 70000)
	for c := 0; c < 16; c++ {
		cli, err := p.a.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 7))
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int{100, 8000} {
			msg := bytes.Repeat([]byte{byte(c)}, size)
			cli.Write(msg)
			cli.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := cli.Read(buf)
			if err != nil || !bytes.Equal(buf[:n], msg) {
				t.Fatalf("client %d, %d bytes: %v (B: %v)", c, size, err, nonZero(p.b.Counters()))
			}
		}
		cli.Close()
	}
	// Receive work was spread: more than one of B's loops received frames.
	busy := 0
	for _, lp := range p.b.NIC(1).loops {
		if lp.c[RxFrames].Load() > 0 {
			busy++
		}
	}
	t.Logf("B's loops that received frames: %d of 4", busy)
	if busy < 2 {
		t.Fatalf("RSS used %d of 4 queues", busy)
	}
}
