package bench

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	gvgonet "gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	gvheader "gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	gvtcp "gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// gVisor's side: two netstacks, each with one NIC made of an Ethernet
// endpoint over a channel endpoint (so that, like memlink, frames carry an
// Ethernet header and addresses are resolved by ARP). Two pump goroutines
// move frames between the channels, copying each one into a fresh buffer as
// memlink copies frames across its wire. MTU 1500, no GSO, checksums
// computed and verified in software (gVisor's defaults for this link), SACK
// on (gVisor's default is off; Linux's and most stacks' is on).

const (
	gvMTU  = 1500
	gvPort = 5001
)

var (
	gvAddrA = tcpip.AddrFrom4([4]byte{10, 0, 0, 1})
	gvAddrB = tcpip.AddrFrom4([4]byte{10, 0, 0, 2})
)

// countingChannel is a channel endpoint that counts the frames it drops
// when its queue is full (channel.Endpoint drops them silently and reports
// a short write that gVisor's NIC does not count).
type countingChannel struct {
	*channel.Endpoint
	drops *atomic.Uint64
}

func (e countingChannel) WritePackets(pkts gvstack.PacketBufferList) (int, tcpip.Error) {
	n, err := e.Endpoint.WritePackets(pkts)
	if d := pkts.Len() - n; d > 0 && err == nil {
		e.drops.Add(uint64(d))
	}
	return n, err
}

func newGVisorStack(b *testing.B, mac tcpip.LinkAddress, addr tcpip.Address, drops *atomic.Uint64) (*gvstack.Stack, *channel.Endpoint) {
	s := gvstack.New(gvstack.Options{
		NetworkProtocols:   []gvstack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []gvstack.TransportProtocolFactory{gvtcp.NewProtocol},
	})
	sack := tcpip.TCPSACKEnabled(true)
	if err := s.SetTransportProtocolOption(gvtcp.ProtocolNumber, &sack); err != nil {
		b.Fatalf("gvisor: SACK: %v", err)
	}
	ch := channel.New(wireQueue, gvMTU+gvheader.EthernetMinimumSize, mac)
	if err := s.CreateNIC(1, ethernet.New(countingChannel{ch, drops})); err != nil {
		b.Fatalf("gvisor: CreateNIC: %v", err)
	}
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: addr, PrefixLen: 24}}
	if err := s.AddProtocolAddress(1, pa, gvstack.AddressProperties{}); err != nil {
		b.Fatalf("gvisor: AddProtocolAddress: %v", err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: pa.AddressWithPrefix.Subnet(), NIC: 1}})
	return s, ch
}

// pump moves frames sent on from to the receive side of to until ctx ends.
func pump(ctx context.Context, from, to *channel.Endpoint) {
	for {
		pkt := from.ReadContext(ctx)
		if pkt == nil {
			return
		}
		for pkt != nil {
			v := pkt.ToView() // a copy of the whole frame
			pkt.DecRef()
			in := gvstack.NewPacketBuffer(gvstack.PacketBufferOptions{Payload: buffer.MakeWithView(v)})
			to.InjectInbound(0, in) // the Ethernet endpoint reads the type from the frame
			in.DecRef()
			pkt = from.Read()
		}
	}
}

func newGVisorPair(b *testing.B) *tcpPair {
	var drops atomic.Uint64
	sa, cha := newGVisorStack(b, "\x02\x00\x00\x00\x00\x0a", gvAddrA, &drops)
	sb, chb := newGVisorStack(b, "\x02\x00\x00\x00\x00\x0b", gvAddrB, &drops)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { pump(ctx, cha, chb); done <- struct{}{} }()
	go func() { pump(ctx, chb, cha); done <- struct{}{} }()
	ln, err := gvgonet.ListenTCP(sb, tcpip.FullAddress{NIC: 1, Addr: gvAddrB, Port: gvPort}, ipv4.ProtocolNumber)
	if err != nil {
		b.Fatalf("gvisor: listen: %v", err)
	}
	b.Cleanup(func() {
		// Counted before tear-down: closing a stack resets its connections
		// (TIME_WAIT ones included) into channels nobody pumps any more.
		if d := drops.Load(); d > 0 {
			b.ReportMetric(float64(d), "drops")
		}
		ln.Close()
		cancel()
		<-done
		<-done
		sa.Close()
		sb.Close()
		sa.Wait()
		sb.Wait()
	})
	return &tcpPair{
		ln: ln,
		dial: func(ctx context.Context) (net.Conn, error) {
			return gvgonet.DialContextTCP(ctx, sa, tcpip.FullAddress{NIC: 1, Addr: gvAddrB, Port: gvPort}, ipv4.ProtocolNumber)
		},
	}
}

func BenchmarkGVisorTCPBulk(b *testing.B)       { benchBulk(b, newGVisorPair(b)) }
func BenchmarkGVisorTCPRR64(b *testing.B)       { benchRR64(b, newGVisorPair(b)) }
func BenchmarkGVisorTCPConnPerSec(b *testing.B) { benchConnPerSec(b, newGVisorPair(b)) }
