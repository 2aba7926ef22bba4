package bench

import (
	"context"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/verinic/verinic/proto/gonet"
	"github.com/verinic/verinic/proto/link/memlink"
	"github.com/verinic/verinic/proto/stack"
	"github.com/verinic/verinic/proto/tcp"
)

// verinic's side: two stacks over memlink (frames copied across an
// in-memory wire holding wireQueue frames each way, ARP, MTU 1500,
// software checksums), TCP with its default Config, and the stack's default
// poll loops (they sleep when idle and are woken by sends) unless
// VERINIC_IDLE_SLEEP says otherwise (-1ns: busy polling, as in
// proto/stack's UDP benchmarks). On two vCPUs the defaults do as well in
// bulk and better in round trips and connections than busy polling, whose
// two spinning loops compete with the application's goroutines.

var (
	viAddrA = netip.MustParseAddr("10.0.0.1")
	viAddrB = netip.MustParseAddr("10.0.0.2")
)

const viPort = 5001

// newVerinicStack builds a stack on l with addr; TCP is attached to it, and
// the stack started, by the caller (tcp.New must come before Start).
func newVerinicStack(b *testing.B, l *memlink.Endpoint, addr netip.Addr) *stack.Stack {
	st := stack.New(stack.Config{IdleSleep: idleSleep})
	nic, err := st.AddNIC(l, stack.NICConfig{})
	if err != nil {
		b.Fatalf("verinic: AddNIC: %v", err)
	}
	if err := st.AddAddress(nic.ID(), netip.PrefixFrom(addr, 24)); err != nil {
		b.Fatalf("verinic: AddAddress: %v", err)
	}
	return st
}

func newVerinicPair(b *testing.B) *tcpPair {
	la, lb, err := memlink.Pair(
		memlink.Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0xa}, WireFrames: wireQueue},
		memlink.Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0xb}, WireFrames: wireQueue},
		memlink.Faults{}, memlink.Faults{})
	if err != nil {
		b.Fatal(err)
	}
	sa := newVerinicStack(b, la, viAddrA)
	sb := newVerinicStack(b, lb, viAddrB)
	ta, err := tcp.New(sa, tcp.Config{})
	if err != nil {
		b.Fatalf("verinic: tcp.New: %v", err)
	}
	tb, err := tcp.New(sb, tcp.Config{})
	if err != nil {
		b.Fatalf("verinic: tcp.New: %v", err)
	}
	for _, st := range []*stack.Stack{sa, sb} {
		if err := st.Start(); err != nil {
			b.Fatalf("verinic: Start: %v", err)
		}
	}
	ln, err := gonet.ListenTCP(tb, &net.TCPAddr{IP: viAddrB.AsSlice(), Port: viPort})
	if err != nil {
		b.Fatalf("verinic: listen: %v", err)
	}
	b.Cleanup(func() {
		if d := la.WireDrops.Load() + lb.WireDrops.Load(); d > 0 {
			b.ReportMetric(float64(d), "drops")
		}
		ln.Close()
		sa.Close()
		sb.Close()
		la.Close()
		lb.Close()
	})
	raddr := &net.TCPAddr{IP: viAddrB.AsSlice(), Port: viPort}
	return &tcpPair{
		ln: ln,
		dial: func(ctx context.Context) (net.Conn, error) {
			return gonet.DialTCP(ctx, ta, nil, raddr)
		},
	}
}

func BenchmarkVerinicTCPBulk(b *testing.B)       { benchBulk(b, newVerinicPair(b)) }
func BenchmarkVerinicTCPRR64(b *testing.B)       { benchRR64(b, newVerinicPair(b)) }
func BenchmarkVerinicTCPConnPerSec(b *testing.B) { benchConnPerSec(b, newVerinicPair(b)) }

// idleSleep is the stacks' Config.IdleSleep: the stack's default (0) unless
// VERINIC_IDLE_SLEEP gives a duration (e.g. 20us, or -1ns for busy polling).
var idleSleep = func() time.Duration {
	if v := os.Getenv("VERINIC_IDLE_SLEEP"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
		panic("VERINIC_IDLE_SLEEP: not a duration: " + v)
	}
	return 0
}()
