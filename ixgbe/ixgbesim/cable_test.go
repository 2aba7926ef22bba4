package ixgbesim

import (
	"math"
	"testing"
	"time"

	"github.com/verinic/verinic/ixgbe/regs"
)

// pump sends count frames from da to db's NIC and collects what arrives.
func pump(t *testing.T, a, b *NIC, da, db *tDriver, count int) (got [][]byte, rxDrops uint32) {
	t.Helper()
	for i := 0; i < count; i++ {
		f := testFrame(b.MAC(), a.MAC(), 64+i%200, uint32(i))
		for da.send(0, f) == 0 {
			a.Drain(0)
			b.Drain(0)
			got = append(got, db.recv(0)...)
		}
		a.Drain(0)
		b.Drain(0)
		got = append(got, db.recv(0)...)
	}
	for k := 0; k < 10; k++ {
		a.Drain(0)
		b.Drain(0)
		got = append(got, db.recv(0)...)
	}
	return got, b.Read32(regs.QPRDC(0))
}

func checkAccounting(t *testing.T, s DirStats) {
	t.Helper()
	if s.Offered+s.Duplicated != s.Delivered+s.Dropped+s.LinkDown+s.Overflow+s.InFlight {
		t.Fatalf("accounting broken: %+v", s)
	}
}

func near(t *testing.T, what string, got uint64, rate float64, n int) {
	t.Helper()
	want := rate * float64(n)
	// Five standard deviations of a binomial count.
	tol := 5*math.Sqrt(float64(n)*rate*(1-rate)) + 1
	if math.Abs(float64(got)-want) > tol {
		t.Errorf("%s = %d, want %.0f ± %.0f", what, got, want, tol)
	}
}

func TestCableFaultsAccounting(t *testing.T) {
	run := func() (CableStats, int, uint32) {
		dom := NewDomain()
		a := newStepped(t, "ca", dom)
		b := newStepped(t, "cb", dom)
		f := &Faults{Seed: 42, Drop: 0.05, Corrupt: 0.05, Duplicate: 0.05, Reorder: 0.05}
		c := Connect(a, b, f, nil)
		da := initDriver(t, a, 1)
		db := initDriver(t, b, 1)
		da.waitLink()
		db.waitLink()
		const count = 3000
		got, drops := pump(t, a, b, da, db, count)
		b.Clock().Sleep(10 * time.Millisecond) // release a held frame
		got = append(got, db.recv(0)...)
		b.Drain(0)
		got = append(got, db.recv(0)...)
		s := c.Stats()
		checkAccounting(t, s.AB)
		if s.AB.Offered != count || s.AB.InFlight != 0 {
			t.Fatalf("offered %d, in flight %d", s.AB.Offered, s.AB.InFlight)
		}
		near(t, "dropped", s.AB.Dropped, 0.05, count)
		near(t, "corrupted", s.AB.Corrupted, 0.05*0.95, count)
		near(t, "duplicated", s.AB.Duplicated, 0.05*0.95, count)
		near(t, "reordered", s.AB.Reordered, 0.05*0.95, count)
		// Every delivered frame was either accepted or refused for its
		// FCS (a flipped byte always fails CRC-32); every accepted one
		// was received or dropped for want of descriptors.
		crc := b.Read32(regs.CRCERRS)
		if s.AB.Delivered-s.AB.Accepted != uint64(crc) || uint64(crc) < s.AB.Corrupted {
			t.Fatalf("delivered %d, accepted %d, CRC errors %d, corrupted %d", s.AB.Delivered, s.AB.Accepted, crc, s.AB.Corrupted)
		}
		if uint64(len(got))+uint64(drops) != s.AB.Accepted {
			t.Fatalf("received %d + dropped %d != accepted %d", len(got), drops, s.AB.Accepted)
		}
		// Count frames that arrived out of order.
		swaps := 0
		last := uint32(0)
		for _, g := range got {
			tag := uint32(g[14])<<24 | uint32(g[15])<<16 | uint32(g[16])<<8 | uint32(g[17])
			if tag < last {
				swaps++
			}
			last = tag
		}
		if s.AB.Reordered > 0 && swaps == 0 {
			t.Error("reordering configured and counted but nothing arrived out of order")
		}
		return s, len(got), crc
	}
	s1, n1, c1 := run()
	s2, n2, c2 := run()
	if s1 != s2 || n1 != n2 || c1 != c2 {
		t.Fatalf("same seed, different runs:\n%+v %d %d\n%+v %d %d", s1.AB, n1, c1, s2.AB, n2, c2)
	}
}

func TestCableDelayStepped(t *testing.T) {
	dom := NewDomain()
	a := newStepped(t, "da", dom)
	b := newStepped(t, "db", dom)
	c := Connect(a, b, &Faults{Delay: 5 * time.Millisecond}, nil)
	da := initDriver(t, a, 1)
	db := initDriver(t, b, 1)
	da.waitLink()
	db.waitLink()
	da.send(0, testFrame(b.MAC(), a.MAC(), 64, 1))
	a.Drain(0)
	b.Drain(0)
	if s := c.Stats().AB; s.InFlight != 1 || s.Delivered != 0 {
		t.Fatalf("before the delay: %+v", s)
	}
	b.Clock().Sleep(4 * time.Millisecond)
	if s := c.Stats().AB; s.Delivered != 0 {
		t.Fatalf("delivered early: %+v", s)
	}
	b.Clock().Sleep(time.Millisecond)
	b.Drain(0)
	if got := db.recv(0); len(got) != 1 {
		t.Fatalf("after the delay: %d frames", len(got))
	}
	checkAccounting(t, c.Stats().AB)
}

func TestCableLinkFlap(t *testing.T) {
	dom := NewDomain()
	a := newStepped(t, "fa", dom)
	b := newStepped(t, "fb", dom)
	c := Connect(a, b, &Faults{Delay: time.Millisecond}, nil)
	da := initDriver(t, a, 1)
	db := initDriver(t, b, 1)
	da.waitLink()
	db.waitLink()
	a.Read32(regs.EICR)
	da.send(0, testFrame(b.MAC(), a.MAC(), 64, 1))
	a.Drain(0) // on the delay line
	c.SetLinkUp(false)
	if a.Read32(regs.LINKS)&regs.LINKS_UP != 0 || b.Read32(regs.LINKS)&regs.LINKS_UP != 0 {
		t.Fatal("link still up after the cable was pulled")
	}
	if a.Read32(regs.EICR)&regs.EICR_LSC == 0 {
		t.Error("no LSC on link down")
	}
	// Transmission waits while the link is down.
	da.send(0, testFrame(b.MAC(), a.MAC(), 64, 2))
	a.Drain(0)
	if h := a.Read32(regs.TDH(0)); h != 1 {
		t.Fatalf("TDH = %d: transmitted with the link down", h)
	}
	c.SetLinkUp(true)
	a.Clock().Sleep(DefaultLinkUpDelay)
	if a.Read32(regs.LINKS)&regs.LINKS_UP == 0 || b.Read32(regs.LINKS)&regs.LINKS_UP == 0 {
		t.Fatal("link did not come back")
	}
	a.Drain(0)
	a.Clock().Sleep(time.Millisecond)
	b.Drain(0)
	got := db.recv(0)
	if len(got) != 1 || got[0][17] != 2 {
		t.Fatalf("after the flap got %d frames", len(got))
	}
	s := c.Stats().AB
	checkAccounting(t, s)
	if s.LinkDown != 1 || s.Delivered != 1 {
		t.Fatalf("stats %+v", s)
	}
}
