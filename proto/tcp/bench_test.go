package tcp_test

import (
	"io"
	"net/netip"
	"testing"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/internal/simpair"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/proto/stack"
	"github.com/verinic/verinic/proto/tcp"
	"github.com/verinic/verinic/trace"
)

// BenchmarkBulkMemlink is one connection's bulk throughput between two
// stacks over the in-memory link: b.N chunks of 64 KiB.
func BenchmarkBulkMemlink(b *testing.B) { bulk(b, newPair(b, pairOpts{})) }

// bulk sends b.N chunks of 64 KiB over one connection of p and waits until
// the receiver read them all.
func bulk(b *testing.B, p *pair) {
	c, s := dialAcceptB(b, p, 5001)
	chunk := make([]byte, 64<<10)
	done := make(chan int64)
	go func() {
		n, _ := io.Copy(io.Discard, s)
		done <- n
	}()
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	c.CloseWrite()
	if n := <-done; n != int64(b.N*len(chunk)) {
		b.Fatalf("received %d of %d", n, b.N*len(chunk))
	}
	b.StopTimer()
	c.Close()
	s.Close()
}

// BenchmarkBulkSimNICs is BenchmarkBulkMemlink over two simulated 82599s
// back to back, each run by the ixgbe driver: the path `nicctl serve --dev
// sim` takes, with TCP segmentation offload (tso=on, the default) and
// without (tso=off: one-MSS segments, stack.Config.NoTSO). Bounded by the
// simulator today (issue 10); compare with BenchmarkBulkMemlink in the
// same run, and the two side by side with benchstat -col /tso.
func BenchmarkBulkSimNICs(b *testing.B) {
	for _, tso := range []bool{false, true} {
		name := "tso=off"
		if tso {
			name = "tso=on"
		}
		b.Run(name, func(b *testing.B) { bulk(b, newSimNICPair(b, stack.Config{NoTSO: !tso})) })
	}
}

// newSimNICPair is two stacks with TCP over two simulated 82599s back to
// back, each run by the ixgbe driver, with the driver's offloads.
func newSimNICPair(tb testing.TB, cfg stack.Config) *pair {
	tb.Helper()
	return newSimNICPairOpts(tb, simOpts{cfg: cfg})
}

// simOpts configure newSimNICPairOpts.
type simOpts struct {
	cfg    stack.Config
	ab, ba *ixgbesim.Faults // on the cable
	// wire, when set, joins the NICs instead of a cable.
	wire func(a, b *ixgbesim.NIC)
	rec  *trace.Recorder // TCP's recorder (nil: none)
	tcp  tcp.Config      // both stacks' TCP (its Recorder is rec)
}

// newSimNICPairOpts is newSimNICPair with faults on the cable, a wire of
// the test's own, or a trace recorder.
func newSimNICPairOpts(tb testing.TB, o simOpts) *pair {
	tb.Helper()
	cfg := o.cfg
	sims, err := simpair.New(simpair.Config{Names: [2]string{"sa", "sb"}, Policy: dma.NoHugepages, AB: o.ab, BA: o.ba, NoCable: o.wire != nil})
	if err != nil {
		tb.Fatal(err)
	}
	if o.wire != nil {
		o.wire(sims.A, sims.B)
	}
	var drivers []*ixgbe.NIC
	for _, sn := range []*ixgbesim.NIC{sims.A, sims.B} {
		d, err := ixgbe.New(sn, ixgbe.Config{Mempool: dma.MempoolConfig{Buffers: 4096}})
		if err != nil {
			tb.Fatalf("driver on %s: %v", sn.Name(), err)
		}
		drivers = append(drivers, d)
	}
	p := &pair{sa: stack.New(cfg), sb: stack.New(cfg), rec: o.rec}
	tcfg := o.tcp
	tcfg.Recorder = o.rec
	if p.a, err = tcp.New(p.sa, tcfg); err != nil {
		tb.Fatal(err)
	}
	if p.b, err = tcp.New(p.sb, tcfg); err != nil {
		tb.Fatal(err)
	}
	for i, st := range []*stack.Stack{p.sa, p.sb} {
		if _, err := st.AddNIC(drivers[i], stack.NICConfig{}); err != nil {
			tb.Fatal(err)
		}
		if err := st.AddAddress(1, netip.PrefixFrom([]netip.Addr{addrA, addrB}[i], 24)); err != nil {
			tb.Fatal(err)
		}
		st.Start()
	}
	tb.Cleanup(func() {
		p.sa.Close()
		p.sb.Close()
		for _, d := range drivers {
			d.Close()
		}
		if err := sims.Check(); err != nil {
			tb.Error(err)
		}
		sims.Close()
	})
	return p
}
