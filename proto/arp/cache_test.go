package arp

import (
	"testing"
	"time"

	"github.com/verinic/verinic/proto/header"
)

var (
	t0   = time.Unix(5000, 0)
	ipA  = header.IPv4Addr{10, 0, 0, 1}
	macA = header.MAC{2, 0, 0, 0, 0, 1}
	macB = header.MAC{2, 0, 0, 0, 0, 2}
)

func TestResolveRetriesThenFails(t *testing.T) {
	c := New(Config{})
	_, ok, req, full := c.Resolve(ipA, t0)
	if ok || full || req.Target != ipA || req.Unicast {
		t.Fatalf("first resolve: ok=%v full=%v req=%+v", ok, full, req)
	}
	// A second packet while incomplete: no new request (rate limit).
	if _, ok, req, _ := c.Resolve(ipA, t0.Add(10*time.Millisecond)); ok || req.Target != (header.IPv4Addr{}) {
		t.Fatalf("second resolve sent %+v", req)
	}
	var reqs []Request
	for ms := 100; ms <= 3000; ms += 100 {
		reqs = c.Tick(t0.Add(time.Duration(ms)*time.Millisecond), reqs)
	}
	// Requests at 0 s (from Resolve), 1 s and 2 s; deleted at 3 s.
	if len(reqs) != 2 {
		t.Fatalf("retransmissions in 3 s: %d, want 2", len(reqs))
	}
	if _, st := c.Lookup(ipA); st != Absent || c.Counters().Failed.Load() != 1 {
		t.Fatalf("after 3 unanswered requests: state %v, failed %d", st, c.Counters().Failed.Load())
	}
}

func TestReplyResolvesAndAges(t *testing.T) {
	c := New(Config{})
	gen := c.Generation()
	c.Resolve(ipA, t0)
	c.Learn(ipA, macA, true, true, t0.Add(time.Millisecond))
	if c.Generation() == gen {
		t.Fatal("resolution did not change the generation")
	}
	mac, ok, req, _ := c.Resolve(ipA, t0.Add(time.Second))
	if !ok || mac != macA || req.Target != (header.IPv4Addr{}) {
		t.Fatalf("resolved: %v %v %+v", mac, ok, req)
	}
	// After ReachableTime: still usable, and a unicast probe goes out.
	mac, ok, req, _ = c.Resolve(ipA, t0.Add(31*time.Second))
	if !ok || mac != macA || !req.Unicast || req.MAC != macA {
		t.Fatalf("stale use: %v %v %+v", mac, ok, req)
	}
	// A reply confirms it.
	c.Learn(ipA, macB, true, true, t0.Add(31500*time.Millisecond))
	if mac, st := c.Lookup(ipA); st != Reachable || mac != macB {
		t.Fatalf("after confirm: %v %v", mac, st)
	}
	if c.Counters().MACChanged.Load() != 1 {
		t.Fatal("MAC change not counted")
	}
	// Unused: reachable -> stale -> deleted after GCTime.
	for s := 32; s <= 200; s++ {
		c.Tick(t0.Add(time.Duration(s)*time.Second), nil)
	}
	if _, st := c.Lookup(ipA); st != Absent || c.Counters().GCDeleted.Load() != 1 {
		t.Fatalf("unused entry: state %v", st)
	}
}

func TestUnansweredProbeDeletes(t *testing.T) {
	c := New(Config{})
	c.Add(ipA, macA, t0)
	at := t0.Add(40 * time.Second)
	c.Resolve(ipA, at) // stale: probe 1
	var reqs []Request
	for ms := 0; ms <= 3000; ms += 100 {
		reqs = c.Tick(at.Add(time.Duration(ms)*time.Millisecond), reqs)
	}
	if len(reqs) != 2 || !reqs[0].Unicast {
		t.Fatalf("probe retransmissions: %+v", reqs)
	}
	if _, st := c.Lookup(ipA); st != Absent {
		t.Fatalf("unconfirmed neighbour kept: %v", st)
	}
}

func TestUnsolicitedARPDoesNotCreate(t *testing.T) {
	c := New(Config{})
	c.Learn(ipA, macA, false, false, t0)              // someone else's request
	c.Learn(ipA, macA, true, false, t0)               // gratuitous reply
	c.Learn(header.IPv4Addr{}, macA, false, true, t0) // RFC 5227 probe
	if c.Len() != 0 {
		t.Fatalf("unsolicited ARP created %d entries", c.Len())
	}
	c.Learn(ipA, macA, false, true, t0) // a request for us
	if _, st := c.Lookup(ipA); st != Reachable {
		t.Fatalf("request for us: %v", st)
	}
	// A gratuitous ARP updates an existing entry.
	c.Learn(ipA, macB, false, false, t0)
	if mac, _ := c.Lookup(ipA); mac != macB {
		t.Fatal("gratuitous ARP ignored for a known neighbour")
	}
}

// A flood of requests from distinct senders and of resolutions to distinct
// addresses never grows the cache past MaxEntries, evicts only established
// entries, and refuses resolutions once every entry is incomplete.
func TestFloodStaysBounded(t *testing.T) {
	c := New(Config{MaxEntries: 64})
	for i := 0; i < 10000; i++ {
		ip := header.IPv4Addr{10, byte(i >> 16), byte(i >> 8), byte(i)}
		c.Learn(ip, macA, false, true, t0)
		if c.Len() > 64 {
			t.Fatalf("cache grew to %d", c.Len())
		}
	}
	if c.Counters().Evicted.Load() == 0 {
		t.Fatal("no evictions under a flood")
	}
	refused := 0
	for i := 0; i < 1000; i++ {
		ip := header.IPv4Addr{172, 16, byte(i >> 8), byte(i)}
		if _, _, _, full := c.Resolve(ip, t0); full {
			refused++
		}
	}
	if c.Len() != 64 || refused != 1000-64 {
		t.Fatalf("len %d, refused %d", c.Len(), refused)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		c.Learn(header.IPv4Addr{192, 168, 0, 1}, macA, false, true, t0)
		c.Resolve(header.IPv4Addr{192, 168, 0, 2}, t0)
	})
	if allocs != 0 {
		t.Fatalf("flood allocates %v", allocs)
	}
}

// Learn reports a known neighbour's MAC change, with the MAC replaced.
func TestLearnReportsMACChange(t *testing.T) {
	c := New(Config{})
	now := time.Unix(1000, 0)
	ip := header.IPv4Addr{10, 0, 0, 9}
	m1, m2 := header.MAC{2, 0, 0, 0, 0, 1}, header.MAC{2, 0, 0, 0, 0, 2}
	if _, changed := c.Learn(ip, m1, false, true, now); changed {
		t.Fatal("a new entry reported as changed")
	}
	if _, changed := c.Learn(ip, m1, true, false, now); changed {
		t.Fatal("the same MAC reported as changed")
	}
	old, changed := c.Learn(ip, m2, true, false, now)
	if !changed || old != m1 || c.Counters().MACChanged.Load() != 1 {
		t.Fatalf("change to %v: changed %v, old %v, counted %d", m2, changed, old, c.Counters().MACChanged.Load())
	}
}
