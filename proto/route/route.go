// Package route is the stack's IPv4 routing table: longest-prefix match
// (RFC 1812 5.2.4.3) over routes to directly connected networks and via
// gateways, with a default route being the /0 prefix. Among routes with the
// same prefix the lowest metric wins.
//
// Lookups are lock-free and allocate nothing: the table is an immutable
// snapshot behind an atomic pointer, replaced on every change (routes change
// rarely; packets are routed often, from poll loops and from application
// goroutines sending on sockets).
package route

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
)

// Route says where packets to Prefix go.
type Route struct {
	Prefix  netip.Prefix // IPv4, masked
	Gateway netip.Addr   // next hop; zero for a directly connected network
	NIC     int          // outgoing interface
	Src     netip.Addr   // preferred source address; zero: the interface's
	Metric  int          // lower wins among equal prefixes
}

func (r Route) String() string {
	s := r.Prefix.String()
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	s += fmt.Sprintf(" dev %d", r.NIC)
	if r.Src.IsValid() {
		s += " src " + r.Src.String()
	}
	if r.Metric != 0 {
		s += fmt.Sprintf(" metric %d", r.Metric)
	}
	return s
}

// NextHop returns the address to resolve on the link for dst: the gateway,
// or dst itself on a connected network.
func (r Route) NextHop(dst netip.Addr) netip.Addr {
	if r.Gateway.IsValid() {
		return r.Gateway
	}
	return dst
}

// ErrNoRoute is returned for a destination no route covers; it is what
// connect/sendto fail with (ENETUNREACH).
var ErrNoRoute = errors.New("network is unreachable: no route")

type snapshot struct {
	lengths uint64               // bit L set: some route has prefix length L
	best    [33]map[uint32]Route // per length: masked address -> best route
	all     []Route              // every route, sorted for listing
}

// Table is a routing table. The zero value is empty and ready.
type Table struct {
	mu   sync.Mutex // serializes writers
	snap atomic.Pointer[snapshot]
}

func v4(a netip.Addr) (uint32, bool) {
	if !a.Is4() && !a.Is4In6() {
		return 0, false
	}
	b := a.Unmap().As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), true
}

func mask(l int) uint32 {
	if l == 0 {
		return 0
	}
	return ^uint32(0) << (32 - l)
}

// Lookup returns the route for dst by longest-prefix match.
func (t *Table) Lookup(dst netip.Addr) (Route, bool) {
	s := t.snap.Load()
	if s == nil {
		return Route{}, false
	}
	a, ok := v4(dst)
	if !ok {
		return Route{}, false
	}
	for l := 32; l >= 0; l-- {
		if s.lengths&(1<<l) == 0 {
			continue
		}
		if r, ok := s.best[l][a&mask(l)]; ok {
			return r, true
		}
	}
	return Route{}, false
}

// Add inserts r. Adding a route equal in prefix, gateway, interface and
// metric to an existing one fails.
func (t *Table) Add(r Route) error {
	if !r.Prefix.IsValid() || !r.Prefix.Addr().Is4() {
		return fmt.Errorf("route %v: not an IPv4 prefix", r.Prefix)
	}
	if r.Gateway.IsValid() && !r.Gateway.Is4() {
		return fmt.Errorf("route %v: gateway %v is not IPv4", r.Prefix, r.Gateway)
	}
	r.Prefix = r.Prefix.Masked()
	t.mu.Lock()
	defer t.mu.Unlock()
	all := t.routes()
	for _, o := range all {
		if o.Prefix == r.Prefix && o.Gateway == r.Gateway && o.NIC == r.NIC && o.Metric == r.Metric {
			return fmt.Errorf("route %v: already present", r)
		}
	}
	t.publish(append(all, r))
	return nil
}

// Remove deletes every route matching prefix on interface nic (any
// gateway) and returns how many it removed.
func (t *Table) Remove(prefix netip.Prefix, nic int) int {
	prefix = prefix.Masked()
	t.mu.Lock()
	defer t.mu.Unlock()
	var keep []Route
	n := 0
	for _, r := range t.routes() {
		if r.Prefix == prefix && r.NIC == nic {
			n++
			continue
		}
		keep = append(keep, r)
	}
	if n > 0 {
		t.publish(keep)
	}
	return n
}

// RemoveNIC deletes every route through interface nic.
func (t *Table) RemoveNIC(nic int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keep []Route
	for _, r := range t.routes() {
		if r.NIC != nic {
			keep = append(keep, r)
		}
	}
	t.publish(keep)
}

// Routes returns a copy of every route, most specific first.
func (t *Table) Routes() []Route { return t.routes() }

func (t *Table) routes() []Route {
	s := t.snap.Load()
	if s == nil {
		return nil
	}
	return append([]Route(nil), s.all...)
}

func (t *Table) publish(all []Route) {
	s := &snapshot{all: all}
	sort.SliceStable(s.all, func(i, j int) bool {
		a, b := s.all[i], s.all[j]
		if a.Prefix.Bits() != b.Prefix.Bits() {
			return a.Prefix.Bits() > b.Prefix.Bits()
		}
		if a.Prefix.Addr() != b.Prefix.Addr() {
			return a.Prefix.Addr().Less(b.Prefix.Addr())
		}
		return a.Metric < b.Metric
	})
	for _, r := range s.all {
		l := r.Prefix.Bits()
		a, _ := v4(r.Prefix.Addr())
		if s.best[l] == nil {
			s.best[l] = map[uint32]Route{}
		}
		if cur, ok := s.best[l][a]; !ok || r.Metric < cur.Metric {
			s.best[l][a] = r
		}
		s.lengths |= 1 << l
	}
	t.snap.Store(s)
}
