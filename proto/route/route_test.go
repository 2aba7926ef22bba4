package route

import (
	"net/netip"
	"testing"

	"pgregory.net/rapid"
)

func TestLongestPrefixMatch(t *testing.T) {
	var tb Table
	gw := netip.MustParseAddr("10.0.0.254")
	for _, r := range []Route{
		{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Gateway: gw, NIC: 1},
		{Prefix: netip.MustParsePrefix("10.0.0.0/8"), NIC: 1},
		{Prefix: netip.MustParsePrefix("10.1.0.0/16"), NIC: 2},
		{Prefix: netip.MustParsePrefix("10.1.2.0/24"), NIC: 3, Metric: 5},
		{Prefix: netip.MustParsePrefix("10.1.2.0/24"), NIC: 4, Metric: 1},
		{Prefix: netip.MustParsePrefix("10.1.2.3/32"), NIC: 5},
	} {
		if err := tb.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		dst string
		nic int
	}{
		{"8.8.8.8", 1}, {"10.9.9.9", 1}, {"10.1.9.9", 2}, {"10.1.2.4", 4}, {"10.1.2.3", 5},
	} {
		r, ok := tb.Lookup(netip.MustParseAddr(c.dst))
		if !ok || r.NIC != c.nic {
			t.Errorf("Lookup(%s) = %v %v, want nic %d", c.dst, r, ok, c.nic)
		}
	}
	if r, _ := tb.Lookup(netip.MustParseAddr("8.8.8.8")); r.NextHop(netip.MustParseAddr("8.8.8.8")) != gw {
		t.Errorf("default route next hop %v", r.NextHop(netip.MustParseAddr("8.8.8.8")))
	}
	if err := tb.Add(Route{Prefix: netip.MustParsePrefix("10.1.2.3/32"), NIC: 5}); err == nil {
		t.Error("duplicate route accepted")
	}
	if tb.Remove(netip.MustParsePrefix("0.0.0.0/0"), 1) != 1 {
		t.Fatal("remove default")
	}
	if _, ok := tb.Lookup(netip.MustParseAddr("8.8.8.8")); ok {
		t.Error("route found after removing the default")
	}
}

// Property: Lookup agrees with a linear scan for the longest matching
// prefix (lowest metric among equals).
func TestLookupMatchesLinearScan(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var tb Table
		var routes []Route
		n := rapid.IntRange(0, 12).Draw(t, "n")
		for i := 0; i < n; i++ {
			a := netip.AddrFrom4([4]byte{10, byte(rapid.IntRange(0, 3).Draw(t, "b")), byte(rapid.IntRange(0, 3).Draw(t, "c")), byte(rapid.IntRange(0, 255).Draw(t, "d"))})
			p := netip.PrefixFrom(a, rapid.IntRange(0, 32).Draw(t, "len")).Masked()
			r := Route{Prefix: p, NIC: i, Metric: rapid.IntRange(0, 3).Draw(t, "metric")}
			if tb.Add(r) == nil {
				routes = append(routes, r)
			}
		}
		for k := 0; k < 20; k++ {
			dst := netip.AddrFrom4([4]byte{10, byte(rapid.IntRange(0, 3).Draw(t, "b")), byte(rapid.IntRange(0, 3).Draw(t, "c")), byte(rapid.IntRange(0, 255).Draw(t, "d"))})
			var want *Route
			for i := range routes {
				r := &routes[i]
				if !r.Prefix.Contains(dst) {
					continue
				}
				if want == nil || r.Prefix.Bits() > want.Prefix.Bits() || (r.Prefix.Bits() == want.Prefix.Bits() && r.Metric < want.Metric) {
					want = r
				}
			}
			got, ok := tb.Lookup(dst)
			if (want != nil) != ok {
				t.Fatalf("Lookup(%v) ok=%v, want %v", dst, ok, want)
			}
			if ok && (got.Prefix != want.Prefix || got.Metric != want.Metric) {
				t.Fatalf("Lookup(%v) = %v, want %v", dst, got, *want)
			}
		}
	})
}

func TestLookupAllocatesNothing(t *testing.T) {
	var tb Table
	tb.Add(Route{Prefix: netip.MustParsePrefix("10.0.0.0/24"), NIC: 1})
	dst := netip.MustParseAddr("10.0.0.7")
	if a := testing.AllocsPerRun(1000, func() { tb.Lookup(dst) }); a != 0 {
		t.Fatalf("Lookup allocates %v", a)
	}
}
