package ixgbesim

import (
	"bytes"
	"testing"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe/regs"
	"github.com/verinic/verinic/trace"
)

// steppedPair connects two stepped NICs back to back in one domain, each
// with a one-queue driver, and waits for both links.
func steppedPair(t *testing.T) (dom *Domain, a, b *NIC, da, db *tDriver) {
	dom = NewDomain()
	a = newStepped(t, "a", dom)
	b = newStepped(t, "b", dom)
	Connect(a, b, nil, nil)
	da = initDriver(t, a, 1)
	db = initDriver(t, b, 1)
	da.waitLink()
	db.waitLink()
	return dom, a, b, da, db
}

func TestSteppedBackToBack(t *testing.T) {
	dom, a, b, da, db := steppedPair(t)
	var sent, got [][]byte
	for i := 0; i < 200; i++ {
		f := testFrame(b.MAC(), a.MAC(), 60+i*7, uint32(i))
		for da.send(0, f) == 0 {
			if a.Drain(0) == 0 {
				t.Fatalf("frame %d: TX ring stuck", i)
			}
			b.Drain(0)
			got = append(got, db.recv(0)...)
		}
		sent = append(sent, f)
		if i%10 == 9 {
			a.Drain(0)
			b.Drain(0)
			got = append(got, db.recv(0)...)
		}
	}
	for k := 0; k < 100 && len(got) < len(sent); k++ {
		a.Drain(0)
		b.Drain(0)
		got = append(got, db.recv(0)...)
	}
	if len(got) != len(sent) {
		t.Fatalf("received %d frames, sent %d", len(got), len(sent))
	}
	for i := range sent {
		if !bytes.Equal(got[i], sent[i]) {
			t.Fatalf("frame %d differs: got %d bytes, sent %d", i, len(got[i]), len(sent[i]))
		}
	}
	if v := a.Violations(); len(v) > 0 {
		t.Fatalf("violations on a: %v", v)
	}
	if v := b.Violations(); len(v) > 0 {
		t.Fatalf("violations on b: %v", v)
	}
	if f := dom.Faults(); len(f) > 0 {
		t.Fatalf("faults: %v", f)
	}
	if g := a.Read32(regs.GPTC); g != 200 {
		t.Errorf("GPTC = %d, want 200", g)
	}
	if g := b.Read32(regs.GPRC); g != 200 {
		t.Errorf("GPRC = %d, want 200", g)
	}
}

// TestSteppedIsDeterministic runs the same scenario twice in stepped mode
// (with cable faults) and requires identical device traces.
func TestSteppedIsDeterministic(t *testing.T) {
	run := func() []trace.Event {
		rec := trace.NewRecorder(1 << 16)
		dom := NewDomain()
		mk := func(name string, id uint16) *NIC {
			n, err := New(Config{Name: name, Mode: Stepped, Domain: dom, Trace: rec, DevID: id, Policy: dma.NoHugepages})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { n.Close() })
			return n
		}
		a, b := mk("da", 1), mk("db", 2)
		Connect(a, b, &Faults{Seed: 3, Drop: 0.1, Duplicate: 0.1, Reorder: 0.1, Delay: time.Microsecond}, nil)
		da := initDriver(t, a, 1)
		db := initDriver(t, b, 1)
		da.waitLink()
		db.waitLink()
		rec.Reset()
		for i := 0; i < 300; i++ {
			da.send(0, testFrame(b.MAC(), a.MAC(), 64+i, uint32(i)))
			a.Drain(0)
			a.Clock().Sleep(time.Microsecond)
			b.Drain(0)
			db.recv(0)
		}
		ev := append([]trace.Event(nil), rec.Events()...)
		for i := range ev {
			ev[i].T = 0 // wall-clock stamps differ; everything else must not
		}
		return ev
	}
	e1, e2 := run(), run()
	if len(e1) < 1000 {
		t.Fatalf("only %d events", len(e1))
	}
	if len(e1) != len(e2) {
		t.Fatalf("runs recorded %d and %d events", len(e1), len(e2))
	}
	for i := range e1 {
		if e1[i] != e2[i] {
			t.Fatalf("event %d differs: %+v vs %+v", i, e1[i], e2[i])
		}
	}
}

// TestCableDirectKeepsFCS sends frames of one descriptor each over a
// fault-free cable, which carries them from the sender's host memory
// without their FCS bytes (fcsAbsent), to a receiver that keeps the FCS
// (HLREG0.RXCRCSTRP clear): each must arrive with its correct FCS, the
// byte counters must count it, and the sender's buffers must not be
// written.
func TestCableDirectKeepsFCS(t *testing.T) {
	_, a, b, da, db := steppedPair(t)
	db.clr(regs.HLREG0, regs.HLREG0_RXCRCSTRP)
	db.clr(regs.RDRXCTL, regs.RDRXCTL_CRCSTRIP)
	tq := &da.tx[0]
	for i := 0; i < tRing; i++ {
		for j := range tq.buf(i) {
			tq.buf(i)[j] = 0xA5
		}
	}
	var sent, got [][]byte
	var bytesOnWire uint32
	for i := 0; i < 40; i++ {
		f := testFrame(b.MAC(), a.MAC(), 60+i*37, uint32(i))
		slot := tq.next
		if da.send(0, f) != 1 {
			t.Fatalf("frame %d not posted", i)
		}
		a.Drain(0)
		b.Drain(0)
		got = append(got, db.recv(0)...)
		sent = append(sent, withFCS(f))
		bytesOnWire += uint32(len(f) + 4)
		if tail := tq.buf(slot)[len(f) : len(f)+4]; !bytes.Equal(tail, []byte{0xA5, 0xA5, 0xA5, 0xA5}) {
			t.Fatalf("frame %d: the sender's buffer was written after the frame: % x", i, tail)
		}
	}
	if len(got) != len(sent) {
		t.Fatalf("received %d frames, sent %d", len(got), len(sent))
	}
	for i := range sent {
		if !bytes.Equal(got[i], sent[i]) {
			t.Fatalf("frame %d differs: got %d bytes, want %d with the FCS", i, len(got[i]), len(sent[i]))
		}
	}
	if v := a.Read32(regs.GOTCL); v != bytesOnWire {
		t.Errorf("GOTCL = %d, want %d", v, bytesOnWire)
	}
	if v := b.Read32(regs.GORCL); v != bytesOnWire {
		t.Errorf("GORCL = %d, want %d", v, bytesOnWire)
	}
	if v := b.Read32(regs.CRCERRS); v != 0 {
		t.Errorf("CRCERRS = %d", v)
	}
	for _, n := range []*NIC{a, b} {
		if v := n.Violations(); len(v) > 0 {
			t.Fatalf("violations on %s: %v", n.Name(), v)
		}
	}
}
