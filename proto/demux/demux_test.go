package demux

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
)

var (
	a1 = netip.MustParseAddr("10.0.0.1")
	a2 = netip.MustParseAddr("10.0.0.2")
	r1 = netip.MustParseAddr("192.168.1.9")
)

func TestLookupPrefersMostSpecific(t *testing.T) {
	tb := NewTable[string]()
	if _, err := tb.Bind(Key{Proto: 17, LocalPort: 53}, "any"); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Bind(Key{Proto: 17, LocalAddr: a1, LocalPort: 54}, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := tb.Insert(Key{17, a1, 54, r1, 999}, "conn"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		local  netip.Addr
		lport  uint16
		remote netip.Addr
		rport  uint16
		want   string
	}{
		{a1, 53, r1, 1, "any"},
		{a2, 53, r1, 1, "any"},
		{a1, 54, r1, 1, "a1"},
		{a1, 54, r1, 999, "conn"},
		{a2, 54, r1, 999, ""},
		{a1, 55, r1, 1, ""},
	}
	for _, c := range cases {
		got, _ := tb.Lookup(17, c.local, c.lport, c.remote, c.rport)
		if got != c.want {
			t.Errorf("Lookup(%v:%d from %v:%d) = %q, want %q", c.local, c.lport, c.remote, c.rport, got, c.want)
		}
	}
	if _, ok := tb.Lookup(6, a1, 53, r1, 1); ok {
		t.Error("lookup matched another protocol")
	}
}

func TestBindConflictsLikeBind2(t *testing.T) {
	tb := NewTable[int]()
	mustBind := func(k Key, e int) {
		t.Helper()
		if _, err := tb.Bind(k, e); err != nil {
			t.Fatalf("bind %v: %v", k, err)
		}
	}
	mustBind(Key{Proto: 17, LocalAddr: a1, LocalPort: 7}, 1)
	mustBind(Key{Proto: 17, LocalAddr: a2, LocalPort: 7}, 2)
	if _, err := tb.Bind(Key{Proto: 17, LocalPort: 7}, 3); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("wildcard over specific: %v, want EADDRINUSE", err)
	}
	if _, err := tb.Bind(Key{Proto: 17, LocalAddr: a1, LocalPort: 7}, 3); !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("same address twice: %v", err)
	}
	mustBind(Key{Proto: 6, LocalAddr: a1, LocalPort: 7}, 4) // other protocol
	if !tb.Remove(Key{Proto: 17, LocalAddr: a1, LocalPort: 7}, 1) {
		t.Fatal("remove failed")
	}
	if tb.Remove(Key{Proto: 17, LocalAddr: a2, LocalPort: 7}, 99) {
		t.Fatal("removed another endpoint's key")
	}
	mustBind(Key{Proto: 17, LocalAddr: a1, LocalPort: 7}, 5)
}

func TestEphemeralAndRebind(t *testing.T) {
	tb := NewTable[int]()
	k, err := tb.Bind(Key{Proto: 17}, 1)
	if err != nil || k.LocalPort < EphemeralFirst || k.LocalPort > EphemeralLast {
		t.Fatalf("ephemeral bind: %v %v", k, err)
	}
	k2, err := tb.Bind(Key{Proto: 17}, 2)
	if err != nil || k2.LocalPort == k.LocalPort {
		t.Fatalf("second ephemeral: %v %v", k2, err)
	}
	conn, err := tb.Rebind(k, Key{Proto: 17, LocalAddr: a1, RemoteAddr: r1, RemotePort: 5}, 1)
	if err != nil || conn.LocalPort != k.LocalPort {
		t.Fatalf("rebind: %v %v", conn, err)
	}
	if _, ok := tb.Get(k); ok {
		t.Fatal("old key still present after rebind")
	}
	if e, ok := tb.Lookup(17, a1, k.LocalPort, r1, 5); !ok || e != 1 {
		t.Fatal("connected key not found")
	}
	if _, err := tb.Rebind(k, Key{Proto: 17, LocalPort: k2.LocalPort}, 1); !errors.Is(err, ErrAddrInUse) && err == nil {
		t.Fatal("rebind from a key not held succeeded")
	}
}

func TestLookupAllocatesNothing(t *testing.T) {
	tb := NewTable[*int]()
	x := 1
	tb.Bind(Key{Proto: 17, LocalPort: 9}, &x)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, ok := tb.Lookup(17, a1, 9, r1, 1000); !ok {
			t.Fatal("miss")
		}
	})
	if allocs != 0 {
		t.Fatalf("Lookup allocates %v", allocs)
	}
}

// Connect reuses a local port for different remote endpoints, never for the
// same 4-tuple, and never takes a listener's port.
func TestConnectReusesPortsPerRemote(t *testing.T) {
	tb := NewTable[int]()
	l := netip.MustParseAddr("10.0.0.1")
	r1, r2 := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	if _, err := tb.Bind(Key{Proto: 6, LocalPort: EphemeralFirst}, 1); err != nil {
		t.Fatal(err)
	}
	k1, err := tb.Connect(Key{Proto: 6, LocalAddr: l, RemoteAddr: r1, RemotePort: 80}, 2)
	if err != nil || k1.LocalPort == EphemeralFirst {
		t.Fatalf("connect took %v, %v (the listener's port is %d)", k1, err, EphemeralFirst)
	}
	k2, err := tb.Connect(Key{Proto: 6, LocalAddr: l, LocalPort: k1.LocalPort, RemoteAddr: r2, RemotePort: 80}, 3)
	if err != nil || k2.LocalPort != k1.LocalPort {
		t.Fatalf("same port to another remote: %v, %v", k2, err)
	}
	if _, err := tb.Connect(Key{Proto: 6, LocalAddr: l, LocalPort: k1.LocalPort, RemoteAddr: r1, RemotePort: 80}, 4); err == nil {
		t.Fatal("the same 4-tuple was bound twice")
	}
	if e, ok := tb.Lookup(6, l, k1.LocalPort, r2, 80); !ok || e != 3 {
		t.Fatalf("lookup = %v %v", e, ok)
	}
}
