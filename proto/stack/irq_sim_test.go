package stack

import (
	"syscall"
	"testing"
	"time"

	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
)

// newIRQSimPair is newSimPair with the drivers in interrupt mode (MSI-X
// from the simulated 82599s, ixgbe.EnableInterrupts) when irq is set, so
// that the stacks' idle loops block until a frame's interrupt.
// Each tune runs on both drivers after EnableInterrupts.
func newIRQSimPair(t testing.TB, irq bool, cfg Config, tune ...func(*ixgbe.NIC) error) *simPair {
	t.Helper()
	return newSimPairWith(t, nil, nil, cfg, 1, func(sn *ixgbesim.NIC, d *ixgbe.NIC) {
		if !irq {
			return
		}
		if err := d.EnableInterrupts(sn.Interrupts(), 10*time.Microsecond); err != nil {
			t.Fatal(err)
		}
		for _, f := range tune {
			if err := f(d); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// With the driver in interrupt mode the stack's loops are notified (they
// block until a frame's interrupt when idle) and traffic flows: the
// interrupt wakes the blocked loop for every request.
func TestSimInterruptModePing(t *testing.T) {
	p := newIRQSimPair(t, true, Config{})
	for _, st := range []*Stack{p.a, p.b} {
		if lp := st.NIC(1).loops[0]; !lp.notified {
			t.Fatal("loop not notified by a driver in interrupt mode")
		}
	}
	echo, err := p.a.NewEcho(0)
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	buf := make([]byte, 1500)
	for seq := 1; seq <= 50; seq++ {
		if err := echo.Send(addrB, uint16(seq), make([]byte, 56)); err != nil {
			t.Fatal(err)
		}
		echo.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			_, r, err := echo.Recv(buf)
			if err != nil {
				t.Fatalf("ping %d: %v", seq, err)
			}
			if r.Seq == uint16(seq) {
				break
			}
		}
	}
	// Without interrupts the loops keep polling (not notified).
	q := newIRQSimPair(t, false, Config{})
	if q.a.NIC(1).loops[0].notified {
		t.Fatal("polling driver reported notifications")
	}
}

// BenchmarkIdleCPUSimStacks reports the process's CPU time (getrusage)
// over an idle interval of two stacks on two free-running simulated 82599s,
// as a percentage of one CPU: with the drivers in interrupt mode (the
// loops block until an interrupt or their next timer) and polling (the
// loops sleep IdleSleep, 200 us, between polls).
func BenchmarkIdleCPUSimStacks(b *testing.B) {
	for _, mode := range []struct {
		name string
		irq  bool
		tune []func(*ixgbe.NIC) error
	}{{"interrupts", true, nil}, {"polling", false, nil}, {"adaptive", true, []func(*ixgbe.NIC) error{adaptive}}} {
		b.Run(mode.name, func(b *testing.B) {
			p := newIRQSimPair(b, mode.irq, Config{}, mode.tune...)
			echo, _ := p.a.NewEcho(0)
			defer echo.Close()
			echo.Send(addrB, 1, make([]byte, 56)) // resolve ARP, then idle
			echo.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, _, err := echo.Recv(make([]byte, 1500)); err != nil {
				b.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
			var r0, r1 syscall.Rusage
			b.ResetTimer()
			start := time.Now()
			syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
			for i := 0; i < b.N; i++ {
				time.Sleep(10 * time.Millisecond)
			}
			syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
			wall := time.Since(start)
			b.StopTimer()
			cpu := r1.Utime.Nano() - r0.Utime.Nano() + r1.Stime.Nano() - r0.Stime.Nano()
			b.ReportMetric(100*float64(cpu)/float64(wall.Nanoseconds()), "cpu%")
		})
	}
}

// BenchmarkPingRTTSimIRQ is PingRTTSim with the drivers in interrupt mode
// and the loops blocking when idle: the round trip includes two interrupt
// wake-ups per direction (engine doorbell, then the loop's vector).
func BenchmarkPingRTTSimIRQ(b *testing.B) {
	p := newIRQSimPair(b, true, Config{})
	pingRTTFrom(b, p.a)
}

// adaptive turns on ixy's rate-based switch (ixgbe.AdaptivePolling) at
// 10,000 frames/s per queue: a back-to-back ping or echo stream over the
// simulated pair is above it, an idle pair below.
func adaptive(d *ixgbe.NIC) error {
	return d.SetAdaptivePolling(ixgbe.AdaptivePolling{Rate: 10000})
}

// BenchmarkPingRTTSimIRQAdaptive is PingRTTSimIRQ with ixy's switch: the
// back-to-back pings keep the loops busy polling.
func BenchmarkPingRTTSimIRQAdaptive(b *testing.B) {
	p := newIRQSimPair(b, true, Config{}, adaptive)
	pingRTTFrom(b, p.a)
}

// BenchmarkUDPEchoSimIRQ64 is UDPEchoSim64 (32 datagrams in flight) with
// the drivers in interrupt mode, NAPI only and with ixy's switch.
func BenchmarkUDPEchoSimIRQ64(b *testing.B) {
	for _, mode := range []struct {
		name string
		tune []func(*ixgbe.NIC) error
	}{{"napi", nil}, {"adaptive", []func(*ixgbe.NIC) error{adaptive}}} {
		b.Run(mode.name, func(b *testing.B) {
			p := newIRQSimPair(b, true, Config{}, mode.tune...)
			udpEchoOn(b, p.a, p.b, 64, 32)
		})
	}
}
