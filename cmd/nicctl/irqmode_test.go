package main

import (
	"bytes"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/ixgbe/regs"
)

// fakeVectors are MSI-X vectors as *vfio.Interrupts gives them: Wait on a
// simulated 82599's vectors (the same messages VFIO would turn into eventfd
// writes), with calls counted.
type fakeVectors struct {
	in       *ixgbesim.Interrupts // nil: Wait fails
	n        int
	waits    atomic.Int64
	fired    atomic.Int64
	disabled atomic.Int64
}

func (v *fakeVectors) Wait(vector int, timeout time.Duration) (uint64, error) {
	v.waits.Add(1)
	if v.disabled.Load() > 0 {
		return 0, errors.New("disabled")
	}
	c, err := v.in.Wait(vector, timeout)
	if c > 0 {
		v.fired.Add(1)
	}
	return c, err
}
func (v *fakeVectors) Count() int     { return v.n }
func (v *fakeVectors) Disable() error { v.disabled.Add(1); return nil }

// msixSim is a simulated 82599 seen as a VFIO device is: registers and DMA
// (the embedded interface hides the simulator's own Interrupts method), and
// MSI-X vectors only through EnableMSIX.
type msixSim struct {
	ixgbe.Device
	sim     *ixgbesim.NIC
	vectors int   // how many the "kernel" grants
	err     error // EnableMSIX fails with this
	got     *fakeVectors
}

func (m *msixSim) EnableMSIX(n int) (vectorSet, error) {
	if m.err != nil {
		return nil, m.err
	}
	m.got = &fakeVectors{in: m.sim.Interrupts(), n: min(n, m.vectors)}
	return m.got, nil
}

// plainDevice has registers and DMA and no interrupt delivery at all.
type plainDevice struct{ ixgbe.Device }

func TestChooseRxMode(t *testing.T) {
	sim, err := newFreeSim("sim-irq", nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer simDevice{sim}.Close()

	if m := chooseRxMode(&msixSim{Device: sim, sim: sim, vectors: 4}, 2, true); m.src != nil || m.warning != "" || !strings.Contains(m.what, "busy") {
		t.Errorf("--busy-poll: %+v; want busy polling without interrupts or warning", m)
	}
	if m := chooseRxMode(sim, 2, false); m.src != ixgbe.Interrupts(sim.Interrupts()) || m.warning != "" || m.release != nil {
		t.Errorf("simulated 82599: %+v; want its own MSI-X", m)
	}
	if m := chooseRxMode(plainDevice{sim}, 2, false); m.src != nil || m.warning != "" {
		t.Errorf("device without interrupts: %+v; want polling, no warning", m)
	}
	// Enough vectors: interrupt mode, and the vectors are given back on close.
	md := &msixSim{Device: sim, sim: sim, vectors: 4}
	m := chooseRxMode(md, 2, false)
	if m.src != md.got || m.warning != "" || m.release == nil || !strings.Contains(m.what, "MSI-X") {
		t.Fatalf("2 queues, 4 vectors: %+v; want interrupt mode", m)
	}
	m.release()
	if md.got.disabled.Load() != 1 {
		t.Error("release did not disable the vectors")
	}
	// Too few vectors: they are given back at once, and the user is told.
	md = &msixSim{Device: sim, sim: sim, vectors: 1}
	m = chooseRxMode(md, 2, false)
	if m.src != nil || m.release != nil || md.got.disabled.Load() != 1 || !strings.Contains(m.warning, "only 1 MSI-X vectors for 2 receive queues") || !strings.Contains(m.warning, "poll") {
		t.Errorf("2 queues, 1 vector: %+v (disabled %d); want polling with a warning, vectors given back", m, md.got.disabled.Load())
	}
	// No MSI-X capability (what VFIO says is passed on).
	md = &msixSim{Device: sim, sim: sim, err: errors.New("no usable interrupt index (MSI-X: no vectors)")}
	m = chooseRxMode(md, 1, false)
	if m.src != nil || !strings.Contains(m.warning, "no MSI-X interrupts (no usable interrupt index (MSI-X: no vectors))") || !strings.Contains(m.warning, sim.Name()) {
		t.Errorf("no MSI-X: %+v; want polling with VFIO's reason and the device's name", m)
	}
}

// simPingPair starts a stack on dev (a wrapped simulator) and a peer stack
// on a plain simulated 82599 wired to it, and pings dev's stack from the
// peer count times; it returns dev's stack still running. With pcap set,
// dev's stack records to that file (--pcap).
func simPingPair(t *testing.T, wrap func(*ixgbesim.NIC) ixgbe.Device, count int, pcap string, pollAbove ...float64) (*runningStack, *bytes.Buffer) {
	t.Helper()
	domain := ixgbesim.NewDomain()
	simA, err := newFreeSim("sim-a", domain, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	simB, err := newFreeSim("sim-b", domain, nil, 1)
	if err != nil {
		simDevice{simA}.Close()
		t.Fatal(err)
	}
	a, b := &runningStack{}, &runningStack{}
	a.closers = append(a.closers, simDevice{simA}.Close)
	b.closers = append(b.closers, simDevice{simB}.Close)
	t.Cleanup(func() {
		b.Close()
		a.Close()
	})
	ixgbesim.Connect(simA, simB, nil, nil)
	simA.Start()
	simB.Start()
	var warn bytes.Buffer
	a.warn = &warn
	spec := stackSpec{name: "a", prefix: netip.MustParsePrefix("10.7.0.1/24"), pcap: pcap}
	if len(pollAbove) > 0 {
		spec.pollAbove = pollAbove[0]
	}
	if err := a.startOn(wrap(simA), spec); err != nil {
		t.Fatal(err)
	}
	if err := b.startOn(simB, stackSpec{name: "b", prefix: netip.MustParsePrefix("10.7.0.2/24")}); err != nil {
		t.Fatal(err)
	}
	echo, err := b.st.NewEcho(0)
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	buf := make([]byte, 64)
	for seq := 1; seq <= count; seq++ {
		got := make(chan error, 1)
		if err := echo.Send(netip.MustParseAddr("10.7.0.1"), uint16(seq), []byte("irq")); err != nil {
			t.Fatal(err)
		}
		go func() {
			_, rep, err := echo.Recv(buf)
			if err == nil && int(rep.Seq) != seq {
				err = errors.New("reply to another request")
			}
			got <- err
		}()
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("ping %d: %v", seq, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("ping %d: no reply within 10s (receive mode %q)", seq, a.rxMode)
		}
	}
	return a, &warn
}

// startOn with a device that gives MSI-X vectors as VFIO does puts the
// driver in interrupt mode over them (GPIE.MSIX_MODE, datasheet
// 8.2.3.5.18), the stack's receive loop is woken by them (also through
// --pcap's recording wrapper: only a stack that was given the notification
// waits on the vectors), and closing the stack gives the vectors back.
func TestStartOnVFIOStyleInterrupts(t *testing.T) {
	for _, pcap := range []bool{false, true} {
		t.Run(map[bool]string{false: "direct", true: "pcap"}[pcap], func(t *testing.T) {
			file := ""
			if pcap {
				file = filepath.Join(t.TempDir(), "a.pcap")
			}
			testStartOnVFIOStyle(t, file)
		})
	}
}

func testStartOnVFIOStyle(t *testing.T, pcap string) {
	var md *msixSim
	a, warn := simPingPair(t, func(sim *ixgbesim.NIC) ixgbe.Device {
		md = &msixSim{Device: sim, sim: sim, vectors: 64}
		return md
	}, 5, pcap)
	if warn.Len() != 0 {
		t.Errorf("warnings: %s", warn)
	}
	if !strings.Contains(a.rxMode, "interrupt mode (MSI-X through VFIO") {
		t.Errorf("receive mode %q", a.rxMode)
	}
	if md.sim.Read32(regs.GPIE)&regs.GPIE_MSIX_MODE == 0 {
		t.Error("GPIE.MSIX_MODE is clear: the driver is not in interrupt mode")
	}
	if md.got.waits.Load() == 0 || md.got.fired.Load() == 0 {
		t.Errorf("the vectors were waited on %d times and fired %d times; want both > 0", md.got.waits.Load(), md.got.fired.Load())
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if md.got.disabled.Load() != 1 {
		t.Errorf("closing the stack disabled the vectors %d times, want once", md.got.disabled.Load())
	}
	if pcap != "" {
		if a.pcap == nil || a.pcap.Frames() < 10 {
			t.Errorf("--pcap recorded %v frames, want the 5 requests and 5 replies at least", a.pcap)
		}
	}
}

// Without enough vectors the stack still runs, polling, and says so.
func TestStartOnTooFewVectorsPolls(t *testing.T) {
	var md *msixSim
	a, warn := simPingPair(t, func(sim *ixgbesim.NIC) ixgbe.Device {
		md = &msixSim{Device: sim, sim: sim, vectors: 0}
		return md
	}, 3, "")
	if !strings.Contains(warn.String(), "only 0 MSI-X vectors") || !strings.Contains(warn.String(), "poll") {
		t.Errorf("warning %q", warn)
	}
	if a.rxMode != "polling" {
		t.Errorf("receive mode %q, want polling", a.rxMode)
	}
	if md.sim.Read32(regs.GPIE)&regs.GPIE_MSIX_MODE != 0 {
		t.Error("GPIE.MSIX_MODE is set without vectors")
	}
	if md.got.waits.Load() != 0 {
		t.Error("vectors that were given back were waited on")
	}
}

// --poll-above turns on ixy's switch in interrupt mode: the stack says so
// and runs; it is refused with --busy-poll or a negative rate.
func TestPollAbove(t *testing.T) {
	for _, f := range []stackFlags{{ip: "10.0.0.2/24", pollAbove: -1}, {ip: "10.0.0.2/24", pollAbove: 1000, busyPoll: true}} {
		if _, err := f.spec(false); err == nil || !strings.Contains(err.Error(), "--poll-above") {
			t.Errorf("%+v: %v, want a usage error naming --poll-above", f, err)
		}
	}
	a, _ := simPingPair(t, func(sim *ixgbesim.NIC) ixgbe.Device { return sim }, 20, "", 1000)
	if !strings.Contains(a.rxMode, "interrupt mode") || !strings.Contains(a.rxMode, "busy polling above 1000 frames/s") {
		t.Errorf("receive mode %q", a.rxMode)
	}
}
