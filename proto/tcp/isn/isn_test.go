package isn

import (
	"math/bits"
	"net/netip"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// The 64-bit SipHash-2-4 vectors of the reference implementation (veorq/
// SipHash, vectors.h; the paper's appendix A is entry 15): key 00..0f,
// message 00..n-1 for n = 0..31.
var sipVectors = [32]uint64{
	0x726fdb47dd0e0e31, 0x74f839c593dc67fd, 0x0d6c8009d9a94f5a, 0x85676696d7fb7e2d,
	0xcf2794e0277187b7, 0x18765564cd99a68d, 0xcbc9466e58fee3ce, 0xab0200f58b01d137,
	0x93f5f5799a932462, 0x9e0082df0ba9e4b0, 0x7a5dbbc594ddb9f3, 0xf4b32f46226bada7,
	0x751e8fbc860ee5fb, 0x14ea5627c0843d90, 0xf723ca908e7af2ee, 0xa129ca6149be45e5,
	0x3f2acc7f57c29bdb, 0x699ae9f52cbe4794, 0x4bc1b3f0968dd39c, 0xbb6dc91da77961bd,
	0xbed65cf21aa2ee98, 0xd0f2cbb02e3b67c7, 0x93536795e3a33e88, 0xa80c038ccd5ccec8,
	0xb8ad50c6f649af94, 0xbce192de8a85b8ea, 0x17d835b85bbb15f3, 0x2f2e6163076bcfad,
	0xde4daaaca71dc9a5, 0xa6a2506687956571, 0xad87a3535c49ef28, 0x32d892fad841c342,
}

func TestSipHashVectors(t *testing.T) {
	var k [16]byte
	var msg [32]byte
	for i := range k {
		k[i] = byte(i)
	}
	for i := range msg {
		msg[i] = byte(i)
	}
	kk := keyOf(k)
	for n, want := range sipVectors {
		if got := sipHash24(kk.k0, kk.k1, msg[:n]); got != want {
			t.Errorf("length %d: %#x, want %#x", n, got, want)
		}
	}
}

var (
	secret = [16]byte{0x5e, 0xc2, 0xe7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
	t0     = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
)

// fakeClock is an injected clock.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func addrPortGen() *rapid.Generator[netip.AddrPort] {
	return rapid.Custom(func(t *rapid.T) netip.AddrPort {
		var a netip.Addr
		if rapid.Bool().Draw(t, "v6") {
			a = netip.AddrFrom16([16]byte(rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "ip6")))
		} else {
			a = netip.AddrFrom4([4]byte(rapid.SliceOfN(rapid.Byte(), 4, 4).Draw(t, "ip4")))
		}
		return netip.AddrPortFrom(a, rapid.Uint16().Draw(t, "port"))
	})
}

// RFC 6528 section 3: M advances by one every 4 microseconds.
func TestISNAdvancesWithTime(t *testing.T) {
	clk := &fakeClock{t0}
	g := NewGenerator(secret, clk.Now)
	l, r := netip.MustParseAddrPort("192.0.2.1:80"), netip.MustParseAddrPort("198.51.100.7:40000")
	a := g.ISN(l, r)
	clk.now = t0.Add(time.Second)
	if d := g.ISN(l, r) - a; d != 250000 {
		t.Fatalf("ISN advanced %d in one second, want 250000", d)
	}
	clk.now = t0.Add(4 * time.Microsecond)
	if d := g.ISN(l, r) - a; d != 1 {
		t.Fatalf("ISN advanced %d in 4 µs, want 1", d)
	}
	clk.now = t0.Add(3 * time.Microsecond)
	if d := g.ISN(l, r) - a; d != 0 {
		t.Fatalf("ISN advanced %d in 3 µs, want 0", d)
	}
}

func TestISNProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		clk := &fakeClock{time.Unix(0, rapid.Int64Range(0, 1<<61).Draw(t, "t"))}
		g := NewGenerator(secret, clk.Now)
		l, r := addrPortGen().Draw(t, "local"), addrPortGen().Draw(t, "remote")
		a := g.ISN(l, r)
		// M: the ISN for one 4-tuple moves with time at 250000 per second.
		d := rapid.Int64Range(0, 1<<40).Draw(t, "ticks")
		clk.now = clk.now.Add(time.Duration(d) * 4 * time.Microsecond)
		if got := g.ISN(l, r) - a; got != uint32(d) {
			t.Fatalf("ISN advanced %d after %d ticks", got, d)
		}
		// F: another 4-tuple or another secret gives another ISN (the
		// chance of an equal one is 2^-32 per draw).
		r2 := netip.AddrPortFrom(r.Addr(), r.Port()+1)
		l2 := netip.AddrPortFrom(l.Addr().Next(), l.Port())
		if !l2.Addr().IsValid() {
			l2 = netip.AddrPortFrom(l.Addr().Prev(), l.Port())
		}
		b := g.ISN(l, r)
		if g.ISN(l, r2) == b || g.ISN(l2, r) == b || g.ISN(r, l) == b {
			t.Fatalf("equal ISNs across 4-tuples")
		}
		s2 := secret
		s2[rapid.IntRange(0, 15).Draw(t, "byte")] ^= 1 << rapid.IntRange(0, 7).Draw(t, "bit")
		if NewGenerator(s2, clk.Now).ISN(l, r) == b {
			t.Fatalf("equal ISNs across secrets")
		}
	})
}

func TestRandomGeneratorsDiffer(t *testing.T) {
	l, r := netip.MustParseAddrPort("192.0.2.1:80"), netip.MustParseAddrPort("198.51.100.7:40000")
	clk := &fakeClock{t0}
	if NewRandomGenerator(clk.Now).ISN(l, r) == NewRandomGenerator(clk.Now).ISN(l, r) {
		t.Fatal("two random generators agree")
	}
	if NewRandomGenerator(nil).clock == nil {
		t.Fatal("nil clock kept")
	}
}

func TestMSSIndex(t *testing.T) {
	for mss, want := range map[int]int{0: 0, 535: 0, 536: 0, 1299: 0, 1300: 1, 1439: 1, 1440: 2, 1459: 2, 1460: 3, 9000: 3} {
		if got := MSSIndex(mss); got != want {
			t.Errorf("MSSIndex(%d) = %d, want %d", mss, got, want)
		}
	}
}

var cookieSecrets = [2][16]byte{secret, {1: 0xff, 15: 0x42}}

func TestCookieRoundTripAndRefusals(t *testing.T) {
	c := NewCookies(cookieSecrets)
	rapid.Check(t, func(t *rapid.T) {
		l, r := addrPortGen().Draw(t, "local"), addrPortGen().Draw(t, "remote")
		peer := rapid.Uint32().Draw(t, "peerISN")
		idx := rapid.IntRange(0, len(MSSTable)-1).Draw(t, "mssIndex")
		made := time.Unix(rapid.Int64Range(1<<20, 1<<40).Draw(t, "t"), 0)
		cookie := c.Make(l, r, peer, idx, made)
		epochStart := time.Unix(made.Unix()/64*64, 0)
		// Accepted through the end of the next epoch (64 to 128 s).
		for _, now := range []time.Time{made, epochStart, epochStart.Add(127 * time.Second)} {
			if got, ok := c.Check(l, r, peer, cookie, now); !ok || got != idx {
				t.Fatalf("Check at %v after making = %d, %v; want %d", now.Sub(made), got, ok, idx)
			}
		}
		// Refused two epochs on, and before it was made.
		// 256 epochs on, the counter in the top 8 bits has wrapped: the MAC
		// (which covers the whole counter) refuses it.
		for _, now := range []time.Time{epochStart.Add(128 * time.Second), epochStart.Add(-time.Second), made.Add(1000 * time.Hour), made.Add(256 * 64 * time.Second)} {
			if _, ok := c.Check(l, r, peer, cookie, now); ok {
				t.Fatalf("Check at %v after making accepted", now.Sub(made))
			}
		}
		// Refused for another 4-tuple, another peer ISN, an altered bit,
		// other secrets. Each passes by chance with probability 2^-22: the
		// MAC covers the MSS index (Linux's encoding would fail this).
		r2 := netip.AddrPortFrom(r.Addr(), r.Port()^1)
		if _, ok := c.Check(l, r2, peer, cookie, made); ok {
			t.Fatal("accepted for another remote port")
		}
		if _, ok := c.Check(r, l, peer, cookie, made); ok {
			t.Fatal("accepted with local and remote swapped")
		}
		if _, ok := c.Check(l, r, peer+1, cookie, made); ok {
			t.Fatal("accepted for another peer ISN")
		}
		bit := rapid.IntRange(0, 31).Draw(t, "bit")
		if _, ok := c.Check(l, r, peer, cookie^1<<bit, made); ok {
			t.Fatalf("accepted with bit %d flipped", bit)
		}
		other := cookieSecrets
		other[1][0] ^= 1
		if _, ok := NewCookies(other).Check(l, r, peer, cookie, made); ok {
			t.Fatal("accepted under other secrets")
		}
	})
}

// Over many random cookies, the forgery rate of random guesses is about
// len(MSSTable)/2^24 per guess per epoch (2 epochs tried): zero expected in
// 100000 guesses.
func TestCookieRandomGuesses(t *testing.T) {
	c := NewRandomCookies()
	l, r := netip.MustParseAddrPort("192.0.2.1:80"), netip.MustParseAddrPort("198.51.100.7:40000")
	x := uint32(12345)
	accepted := 0
	for i := 0; i < 100000; i++ {
		x = x*1664525 + 1013904223
		if _, ok := c.Check(l, r, 777, bits.RotateLeft32(x, 7), t0); ok {
			accepted++
		}
	}
	if accepted > 1 {
		t.Fatalf("%d random cookies accepted", accepted)
	}
}

func TestMakePanicsOnBadIndex(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	NewCookies(cookieSecrets).Make(netip.AddrPort{}, netip.AddrPort{}, 0, len(MSSTable), t0)
}

func TestTSOpts(t *testing.T) {
	for w := uint8(0); w <= 15; w++ {
		for _, sack := range []bool{false, true} {
			ts := CookieTSval(0x12345678, EncodeTSOpts(w, sack))
			if ts > 0x12345678 || 0x12345678-ts >= 64 {
				t.Fatalf("TSval %#x not just below 0x12345678", ts)
			}
			gw, gok, gsack := DecodeTSOpts(ts)
			wantW, wantOK := min(w, 14), w <= 14
			if w == NoWScale {
				wantW = NoWScale
			}
			if gw != wantW || gok != wantOK || gsack != sack {
				t.Fatalf("wscale %d sack %v: decoded %d %v %v", w, sack, gw, gok, gsack)
			}
		}
	}
	// Across the wrap of the timestamp clock.
	if ts := CookieTSval(5, EncodeTSOpts(9, true)); ts != 0xffffffd9 {
		t.Fatalf("CookieTSval(5) = %#x, want 0xffffffd9", ts)
	}
}

func TestNoAllocs(t *testing.T) {
	clk := &fakeClock{t0}
	g := NewGenerator(secret, clk.Now)
	c := NewCookies(cookieSecrets)
	l, r := netip.MustParseAddrPort("[2001:db8::1]:443"), netip.MustParseAddrPort("[2001:db8::2]:50000")
	allocs := testing.AllocsPerRun(1000, func() {
		_ = g.ISN(l, r)
		k := c.Make(l, r, 99, 3, t0)
		c.Check(l, r, 99, k, t0)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}

func BenchmarkISN(b *testing.B) {
	g := NewGenerator(secret, nil)
	l, r := netip.MustParseAddrPort("192.0.2.1:80"), netip.MustParseAddrPort("198.51.100.7:40000")
	for b.Loop() {
		g.ISN(l, r)
	}
}

func BenchmarkCookieMakeCheck(b *testing.B) {
	c := NewCookies(cookieSecrets)
	l, r := netip.MustParseAddrPort("192.0.2.1:80"), netip.MustParseAddrPort("198.51.100.7:40000")
	for b.Loop() {
		k := c.Make(l, r, 99, 3, t0)
		c.Check(l, r, 99, k, t0)
	}
}

func BenchmarkSipHash40(b *testing.B) {
	var m [40]byte
	for b.Loop() {
		sipHash24(1, 2, m[:])
	}
}
