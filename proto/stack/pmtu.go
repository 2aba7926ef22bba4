package stack

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/verinic/verinic/proto/header"
)

// Path MTU discovery, receive side (RFC 1191): an ICMP "fragmentation
// needed" names the next-hop MTU of a path; datagrams to that destination
// are then fragmented to it until the entry expires.
const (
	pmtuMin     = 552              // Linux's net.ipv4.route.min_pmtu: smaller reports are raised to it
	pmtuExpires = 10 * time.Minute // Linux's net.ipv4.route.mtu_expires
	pmtuEntries = 1024
)

type pmtuEntry struct {
	mtu     int
	expires time.Time
}

// pmtuCache maps destinations to their path MTU. Safe for concurrent use;
// lookups cost one atomic load while it is empty.
type pmtuCache struct {
	n  atomic.Int32
	mu sync.Mutex
	m  map[header.IPv4Addr]pmtuEntry
}

// update records a path MTU of mtu towards dst (only ever lowering it).
func (c *pmtuCache) update(dst header.IPv4Addr, mtu, linkMTU int, now time.Time) {
	if mtu <= 0 || mtu >= linkMTU {
		return // RFC 1191 4: MTU 0 (old router) or no smaller than ours: nothing learnt
	}
	mtu = max(mtu, pmtuMin)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[header.IPv4Addr]pmtuEntry)
	}
	if e, ok := c.m[dst]; ok && e.mtu <= mtu && now.Before(e.expires) {
		return
	}
	if _, ok := c.m[dst]; !ok && len(c.m) >= pmtuEntries {
		var victim header.IPv4Addr
		first := true
		for a, e := range c.m {
			if first || e.expires.Before(c.m[victim].expires) {
				victim, first = a, false
			}
		}
		delete(c.m, victim)
	}
	c.m[dst] = pmtuEntry{mtu: mtu, expires: now.Add(pmtuExpires)}
	c.n.Store(int32(len(c.m)))
}

// lookup returns the MTU to use towards dst: the path MTU if one is known
// and fresh, else linkMTU.
func (c *pmtuCache) lookup(dst header.IPv4Addr, linkMTU int, now time.Time) int {
	if c.n.Load() == 0 {
		return linkMTU
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[dst]
	if !ok {
		return linkMTU
	}
	if !now.Before(e.expires) {
		delete(c.m, dst)
		c.n.Store(int32(len(c.m)))
		return linkMTU
	}
	return min(e.mtu, linkMTU)
}
