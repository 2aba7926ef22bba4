package ixgbesim

import (
	"bytes"
	"testing"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/regs"
)

func newFree(t testing.TB, name string, d *Domain) *NIC {
	t.Helper()
	n, err := New(Config{Name: name, Mode: FreeRunning, Domain: d, Policy: dma.NoHugepages})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestFreeRunningBackToBack runs the engines on their goroutines while a
// sender and a receiver goroutine drive the two NICs: with -race this
// checks the register file's and the engines' synchronization.
func TestFreeRunningBackToBack(t *testing.T) {
	dom := NewDomain()
	a := newFree(t, "fa", dom)
	b := newFree(t, "fb", dom)
	Connect(a, b, nil, nil)
	da := initDriver(t, a, 1)
	db := initDriver(t, b, 1)
	a.Start()
	b.Start()
	da.waitLink()
	db.waitLink()

	const frames = 2000
	want := make([][]byte, frames)
	for i := range want {
		want[i] = testFrame(b.MAC(), a.MAC(), 60+i%1400, uint32(i))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < frames; {
			if da.send(0, want[i]) == 1 {
				i++
				continue
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	var got [][]byte
	var drops uint32
	deadline := time.Now().Add(20 * time.Second)
	for uint32(len(got))+drops < frames && time.Now().Before(deadline) {
		r := db.recv(0)
		if len(r) == 0 {
			time.Sleep(20 * time.Microsecond)
		}
		got = append(got, r...)
		// Drops: no free descriptor (QPRDC), or the packet buffer full
		// because this goroutine or the engine was descheduled (MPC).
		drops += b.Read32(regs.QPRDC(0)) + b.Read32(regs.MPC(0))
	}
	<-done
	a.Stop()
	b.Stop()
	// Drops are allowed (DROP_EN with a slow receiver) but order and
	// content are not negotiable.
	if uint32(len(got))+drops != frames {
		t.Fatalf("received %d + dropped %d != sent %d", len(got), drops, frames)
	}
	j := 0
	for _, g := range got {
		for j < frames && !bytes.Equal(g, want[j]) {
			j++
		}
		if j == frames {
			t.Fatalf("received a frame out of order or corrupted (%d bytes)", len(g))
		}
	}
	if v := a.Violations(); len(v) > 0 {
		t.Fatalf("violations on a: %v", v)
	}
	if v := b.Violations(); len(v) > 0 {
		t.Fatalf("violations on b: %v", v)
	}
	t.Logf("received %d, dropped %d", len(got), drops)
}

// TestFreeRunningDelayedCable: in real time, the delay line is emptied by
// the receiving NIC's engine.
func TestFreeRunningDelayedCable(t *testing.T) {
	dom := NewDomain()
	a := newFree(t, "la", dom)
	b := newFree(t, "lb", dom)
	c := Connect(a, b, &Faults{Delay: 2 * time.Millisecond, Reorder: 0.3, Seed: 1}, nil)
	da := initDriver(t, a, 1)
	db := initDriver(t, b, 1)
	a.Start()
	b.Start()
	defer a.Stop()
	defer b.Stop()
	da.waitLink()
	db.waitLink()
	start := time.Now()
	for i := 0; i < 10; i++ {
		da.send(0, testFrame(b.MAC(), a.MAC(), 64, uint32(i)))
	}
	var got [][]byte
	for len(got) < 10 && time.Since(start) < 5*time.Second {
		got = append(got, db.recv(0)...)
		time.Sleep(100 * time.Microsecond)
	}
	if len(got) != 10 {
		t.Fatalf("received %d of 10 frames (cable %+v)", len(got), c.Stats().AB)
	}
	if el := time.Since(start); el < 2*time.Millisecond {
		t.Fatalf("frames arrived after %v, before the 2 ms delay", el)
	}
	checkAccounting(t, c.Stats().AB)
}
