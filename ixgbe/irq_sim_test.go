package ixgbe

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
)

// A receiver blocked in WaitRx on an idle queue is woken by the frame's
// interrupt (MSI-X vector of the queue, datasheet 7.3), receives it, and
// the vector is masked again (EIAM) until the next WaitRx.
func TestInterruptWakesBlockedReceiver(t *testing.T) {
	p := newSimPair(t, pairOpts{mode: ixgbesim.FreeRunning})
	p.waitLinks(t)
	if _, err := p.b.WaitRx(0, 0); err != ErrNoInterrupts {
		t.Fatalf("WaitRx without interrupts: %v", err)
	}
	if err := p.b.EnableInterrupts(p.sb.Interrupts(), 0); err != nil {
		t.Fatal(err)
	}
	pkts := make([]dma.Packet, 32)
	if k, _ := p.b.RxBatch(0, pkts); k != 0 {
		t.Fatalf("idle queue returned %d frames", k)
	}
	woke := make(chan bool)
	go func() {
		fired, err := p.b.WaitRx(0, -1)
		if err != nil {
			t.Error(err)
		}
		woke <- fired
	}()
	// The frame goes out only after the receiver is blocked or about to
	// block; either way it must wake it (a pending cause fires on unmask).
	seed := make([]dma.Packet, 1)
	p.a.RxPool(0).AllocBatch(seed)
	seed[0].Len = 60
	buildFrame(seed[0].Data(), &frameSpec{srcMAC: p.a.MAC(), dstMAC: p.b.MAC(), srcPort: 7}, 0, 0, 1)
	if k, err := p.a.TxBatch(0, seed); k != 1 || err != nil {
		t.Fatalf("TxBatch = %d, %v", k, err)
	}
	if !<-woke {
		t.Fatal("WaitRx returned without the interrupt")
	}
	got := 0
	for got == 0 {
		k, err := p.b.RxBatch(0, pkts)
		if err != nil {
			t.Fatal(err)
		}
		got += k
		for _, pk := range pkts[:k] {
			pk.Free()
		}
	}
	// Polling found the frame; the vector is masked until WaitRx again.
	if v := p.sb.Read32(0x00880); v&1 != 0 { // EIMS
		t.Errorf("EIMS = %#x after the message: vector 0 not auto-masked", v)
	}
}

// BenchmarkIdleCPU reports the CPU time (getrusage, user+system, whole
// process) two free-running simulated NICs and a receiver blocked in
// WaitRx use over an idle interval, as a percentage of one CPU. A timed
// back-off or busy polling shows up here; the event-driven engines and an
// interrupt-mode receiver should stay near 0 %.
func BenchmarkIdleCPU(b *testing.B) {
	p := newSimPair(b, pairOpts{mode: ixgbesim.FreeRunning})
	p.waitLinks(b)
	if err := p.b.EnableInterrupts(p.sb.Interrupts(), 10*time.Microsecond); err != nil {
		b.Fatal(err)
	}
	go func() { p.b.WaitRx(0, -1) }()
	time.Sleep(50 * time.Millisecond) // let the engines reach their idle wait
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
	cpu := time.Duration(r1.Utime.Nano()-r0.Utime.Nano()) + time.Duration(r1.Stime.Nano()-r0.Stime.Nano())
	b.ReportMetric(100*float64(cpu)/float64(wall), "cpu%")
}

// timeoutSource is an interrupt source that reports its timeouts as errors
// with a Timeout method, as vfio.Interrupts does (vfio.ErrTimeout), or
// fails outright.
type timeoutSource struct{ err error }

type srcTimeout struct{}

func (srcTimeout) Error() string { return "no interrupt before the timeout" }
func (srcTimeout) Timeout() bool { return true }

func (s timeoutSource) Wait(int, time.Duration) (uint64, error) { return 0, s.err }

// WaitRx reports a source's timeout as "did not fire" without an error, and
// passes any other failure on.
func TestWaitRxTimeoutFromSource(t *testing.T) {
	p := newSimPair(t, pairOpts{mode: ixgbesim.FreeRunning})
	if err := p.b.EnableInterrupts(timeoutSource{fmt.Errorf("wrapped: %w", srcTimeout{})}, 0); err != nil {
		t.Fatal(err)
	}
	if fired, err := p.b.WaitRx(0, time.Millisecond); fired || err != nil {
		t.Errorf("WaitRx over a timing-out source = %v, %v; want false, nil", fired, err)
	}
	broken := errors.New("eventfd gone")
	if err := p.b.EnableInterrupts(timeoutSource{broken}, 0); err != nil {
		t.Fatal(err)
	}
	if fired, err := p.b.WaitRx(0, time.Millisecond); fired || !errors.Is(err, broken) {
		t.Errorf("WaitRx over a failing source = %v, %v; want false and its error", fired, err)
	}
}

// With AdaptivePolling, a queue whose measured receive rate is at or above
// the threshold keeps its vector masked when it runs dry and wakes its
// poller again at once (busy polling, ixy's switch); once the rate falls
// below the threshold the next idle poll hands the vector back (EIMS set
// again, NAPI).
func TestAdaptivePollingSwitch(t *testing.T) {
	p := newSimPair(t, pairOpts{mode: ixgbesim.FreeRunning})
	p.waitLinks(t)
	if err := p.b.SetAdaptivePolling(AdaptivePolling{Rate: 1}); err != ErrNoInterrupts {
		t.Fatalf("SetAdaptivePolling without interrupts: %v", err)
	}
	if err := p.b.EnableInterrupts(p.sb.Interrupts(), 0); err != nil {
		t.Fatal(err)
	}
	if err := p.b.SetAdaptivePolling(AdaptivePolling{Rate: -1}); err == nil {
		t.Error("a negative rate was accepted")
	}
	const interval = 2 * time.Millisecond
	// A threshold of one frame per 100 s: the frame below makes the queue
	// busy however slowly this machine delivers it.
	if err := p.b.SetAdaptivePolling(AdaptivePolling{Rate: 0.01, Interval: interval}); err != nil {
		t.Fatal(err)
	}
	var wakes atomic.Int64
	woke := make(chan struct{}, 1)
	if !p.b.SetRxNotify(0, func() {
		wakes.Add(1)
		select {
		case woke <- struct{}{}:
		default:
		}
	}) {
		t.Fatal("SetRxNotify in interrupt mode reported false")
	}
	pkts := make([]dma.Packet, 32)
	poll := func() int {
		k, err := p.b.RxBatch(0, pkts)
		if err != nil {
			t.Fatal(err)
		}
		for _, pk := range pkts[:k] {
			pk.Free()
		}
		return k
	}
	eims := func() uint32 { return p.sb.Read32(0x00880) & 1 }
	poll() // the first idle poll starts the measurement
	send := func() {
		seed := make([]dma.Packet, 1)
		p.a.RxPool(0).AllocBatch(seed)
		seed[0].Len = 60
		buildFrame(seed[0].Data(), &frameSpec{srcMAC: p.a.MAC(), dstMAC: p.b.MAC(), srcPort: 7}, 0, 0, 1)
		if k, err := p.a.TxBatch(0, seed); k != 1 || err != nil {
			t.Fatalf("TxBatch = %d, %v", k, err)
		}
	}
	send()
	select {
	case <-woke:
	case <-time.After(10 * time.Second):
		t.Fatal("no interrupt wake-up within 10s of a frame")
	}
	deadline := time.Now().Add(10 * time.Second)
	for got := 0; got == 0; got += poll() {
		if time.Now().After(deadline) {
			t.Fatal("the frame did not arrive within 10s")
		}
	}
	time.Sleep(interval + time.Millisecond)
	before := wakes.Load()
	for i := 0; i < 3; i++ {
		if k := poll(); k != 0 {
			t.Fatalf("idle poll got %d frames", k)
		}
	}
	if got := wakes.Load() - before; got != 3 {
		t.Errorf("busy queue: 3 idle polls woke the poller %d times, want 3 (busy polling)", got)
	}
	if eims() != 0 {
		t.Error("busy queue: the vector was unmasked on an idle poll")
	}
	// Raise the threshold: the next measurement finds the queue below it
	// and the idle poll hands the vector back.
	if err := p.b.SetAdaptivePolling(AdaptivePolling{Rate: 1e12, Interval: interval}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(interval + time.Millisecond)
	before = wakes.Load()
	poll()
	if wakes.Load() != before {
		t.Error("a queue below the threshold was woken again instead of sleeping")
	}
	for eims() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the vector was not unmasked within 10s after the queue fell below the threshold")
		}
		time.Sleep(time.Millisecond)
	}
}
