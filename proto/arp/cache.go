// Package arp is the neighbour cache of the Address Resolution Protocol (RFC
// 826) for one Ethernet interface: it maps IPv4 addresses to MAC addresses,
// ages entries, retries unanswered requests at a bounded rate, and learns
// from received ARP packets with RFC 826's merge rule.
//
// The cache does no I/O: Resolve and Tick tell the caller which requests to
// send, so that the poll loop sends them on its own queue and tests drive the
// cache with a fake clock. Packets waiting for resolution are kept by the
// poll loops (they are DMA buffers of one queue's mempool); the cache only
// says when their next hop resolved or failed.
//
// States follow Linux's neighbour states in a reduced form: Incomplete
// (broadcast requests every RetransTime, at most MaxProbes), Reachable
// (confirmed within ReachableTime), Stale (usable; the next use starts a
// probe), Probe (usable while unicast requests confirm it; deleted when
// MaxProbes go unanswered). Stale entries unused for GCTime are deleted.
//
// A Cache is safe for concurrent use (every poll loop of the interface uses
// it). Its memory is fixed at creation: MaxEntries entries.
package arp

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/verinic/verinic/proto/header"
)

// Config sets the cache's limits and timers. Zero fields take the defaults,
// which are Linux's (net.ipv4.neigh.default.*).
type Config struct {
	MaxEntries    int           // gc_thresh3: 1024
	ReachableTime time.Duration // base_reachable_time: 30 s
	RetransTime   time.Duration // retrans_time: 1 s between requests for one address
	MaxProbes     int           // mcast_solicit / ucast_solicit: 3
	GCTime        time.Duration // gc_stale_time: 60 s
}

// Defaults.
const (
	DefaultMaxEntries    = 1024
	DefaultReachableTime = 30 * time.Second
	DefaultRetransTime   = time.Second
	DefaultMaxProbes     = 3
	DefaultGCTime        = 60 * time.Second
)

// State is an entry's state.
type State uint8

// Entry states.
const (
	Absent State = iota
	Incomplete
	Reachable
	Stale
	Probe
)

func (s State) String() string {
	return [...]string{"absent", "incomplete", "reachable", "stale", "probe"}[s]
}

// Request is an ARP request the caller must send: broadcast when Unicast is
// false, else to MAC (a probe confirming a stale entry).
type Request struct {
	Target  header.IPv4Addr
	Unicast bool
	MAC     header.MAC
}

// Counters of the cache. Read with Load.
type Counters struct {
	Requests   atomic.Uint64 // requests asked of the caller
	Resolved   atomic.Uint64 // incomplete entries that resolved
	Failed     atomic.Uint64 // entries deleted after MaxProbes unanswered requests
	TableFull  atomic.Uint64 // resolutions refused: no entry could be freed
	Evicted    atomic.Uint64 // entries evicted to make room
	Learned    atomic.Uint64 // entries created or updated from received ARP
	MACChanged atomic.Uint64 // updates that changed an entry's MAC
	GCDeleted  atomic.Uint64 // stale entries deleted after GCTime unused
}

type entry struct {
	ip        header.IPv4Addr
	mac       header.MAC
	state     State
	probes    int
	nextProbe time.Time
	confirmed time.Time // last confirmation (reply)
	used      time.Time // last Resolve that found it
	created   time.Time
}

// Cache is one interface's neighbour cache.
type Cache struct {
	cfg      Config
	mu       sync.Mutex
	entries  []entry
	index    map[header.IPv4Addr]int32
	free     []int32
	counters Counters
	gen      atomic.Uint64 // bumped whenever an entry resolves or is deleted
}

// New returns an empty cache.
func New(cfg Config) *Cache {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.ReachableTime <= 0 {
		cfg.ReachableTime = DefaultReachableTime
	}
	if cfg.RetransTime <= 0 {
		cfg.RetransTime = DefaultRetransTime
	}
	if cfg.MaxProbes <= 0 {
		cfg.MaxProbes = DefaultMaxProbes
	}
	if cfg.GCTime <= 0 {
		cfg.GCTime = DefaultGCTime
	}
	c := &Cache{
		cfg:     cfg,
		entries: make([]entry, cfg.MaxEntries),
		index:   make(map[header.IPv4Addr]int32, cfg.MaxEntries),
		free:    make([]int32, cfg.MaxEntries),
	}
	for i := range c.free {
		c.free[i] = int32(cfg.MaxEntries - 1 - i)
	}
	return c
}

// Config returns the cache's configuration with defaults filled in.
func (c *Cache) Config() Config { return c.cfg }

// Counters returns the cache's counters.
func (c *Cache) Counters() *Counters { return &c.counters }

// Len returns the number of entries.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.index)
}

// Cap returns MaxEntries.
func (c *Cache) Cap() int { return c.cfg.MaxEntries }

// Generation changes whenever an entry resolves or is deleted: a poll loop
// with packets waiting for resolution re-checks them only when it changed.
func (c *Cache) Generation() uint64 { return c.gen.Load() }

// Resolve looks ip up for sending a packet at now. ok says whether mac may be
// used. When req.Target is set (non-zero) the caller must send req. When
// full is true no entry could be made and the packet must be dropped.
func (c *Cache) Resolve(ip header.IPv4Addr, now time.Time) (mac header.MAC, ok bool, req Request, full bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, found := c.index[ip]
	if !found {
		i, found = c.alloc(now)
		if !found {
			c.counters.TableFull.Add(1)
			return mac, false, req, true
		}
		e := &c.entries[i]
		*e = entry{ip: ip, state: Incomplete, probes: 1, nextProbe: now.Add(c.cfg.RetransTime), created: now, used: now}
		c.index[ip] = i
		c.counters.Requests.Add(1)
		return mac, false, Request{Target: ip}, false
	}
	e := &c.entries[i]
	e.used = now
	switch e.state {
	case Incomplete:
		return mac, false, req, false
	case Reachable:
		if now.Sub(e.confirmed) < c.cfg.ReachableTime {
			return e.mac, true, req, false
		}
		e.state = Stale
		fallthrough
	case Stale:
		// First use of a stale entry: keep using it and confirm it with a
		// unicast request (Linux's DELAY/PROBE, without the delay).
		e.state, e.probes, e.nextProbe = Probe, 1, now.Add(c.cfg.RetransTime)
		c.counters.Requests.Add(1)
		return e.mac, true, Request{Target: ip, Unicast: true, MAC: e.mac}, false
	}
	return e.mac, true, req, false // Probe
}

// Lookup returns ip's state and MAC without using the entry.
func (c *Cache) Lookup(ip header.IPv4Addr) (header.MAC, State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.index[ip]
	if !ok {
		return header.MAC{}, Absent
	}
	return c.entries[i].mac, c.entries[i].state
}

// alloc takes a free entry, evicting (in order of preference) the least
// recently used stale, reachable or probing entry. Incomplete entries are
// never evicted, so a flood of resolutions cannot push out live neighbours
// faster than RetransTime*MaxProbes frees them... and a flood of incomplete
// entries is refused with TableFull.
func (c *Cache) alloc(now time.Time) (int32, bool) {
	if n := len(c.free); n > 0 {
		i := c.free[n-1]
		c.free = c.free[:n-1]
		return i, true
	}
	victim := int32(-1)
	for i := range c.entries {
		e := &c.entries[i]
		if e.state == Absent || e.state == Incomplete {
			continue
		}
		if victim < 0 || e.used.Before(c.entries[victim].used) {
			victim = int32(i)
		}
	}
	if victim < 0 {
		return 0, false
	}
	c.counters.Evicted.Add(1)
	c.remove(victim)
	i := c.free[len(c.free)-1]
	c.free = c.free[:len(c.free)-1]
	return i, true
}

func (c *Cache) remove(i int32) {
	e := &c.entries[i]
	delete(c.index, e.ip)
	*e = entry{}
	c.free = append(c.free, i)
	c.gen.Add(1)
}

// Learn applies a received ARP packet from senderIP/senderMAC (RFC 826,
// "Packet Reception"): an existing entry for the sender is updated; a new
// one is created only when the packet was addressed to us (targetIsUs), so
// that unsolicited and gratuitous ARP cannot fill the cache. A reply, or any
// packet resolving an incomplete entry, confirms the entry as reachable.
// When the packet changed a known neighbour's MAC (counted in MACChanged:
// cache poisoning, or a replaced NIC), Learn returns changed and the MAC it
// replaced.
func (c *Cache) Learn(senderIP header.IPv4Addr, senderMAC header.MAC, isReply, targetIsUs bool, now time.Time) (old header.MAC, changed bool) {
	if senderIP.IsUnspecified() || senderIP.IsBroadcast() || senderIP.IsMulticast() || senderMAC.IsMulticast() || senderMAC.IsZero() {
		return old, false // RFC 5227 probes (sender 0.0.0.0) and nonsense senders teach nothing
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	i, found := c.index[senderIP]
	if !found {
		if !targetIsUs {
			return old, false
		}
		var ok bool
		if i, ok = c.alloc(now); !ok {
			c.counters.TableFull.Add(1)
			return old, false
		}
		c.entries[i] = entry{ip: senderIP, mac: senderMAC, state: Reachable, confirmed: now, used: now, created: now}
		c.index[senderIP] = i
		c.counters.Learned.Add(1)
		c.gen.Add(1)
		return old, false
	}
	e := &c.entries[i]
	c.counters.Learned.Add(1)
	if e.state != Incomplete && e.mac != senderMAC {
		c.counters.MACChanged.Add(1)
		old, changed = e.mac, true
	}
	e.mac = senderMAC
	switch {
	case e.state == Incomplete:
		c.counters.Resolved.Add(1)
		e.state, e.confirmed, e.probes = Reachable, now, 0
		c.gen.Add(1)
	case isReply || targetIsUs:
		e.state, e.confirmed, e.probes = Reachable, now, 0
	default:
		// Someone else's request told us the sender's (maybe new) MAC:
		// usable, but unconfirmed.
		if e.state == Reachable && now.Sub(e.confirmed) >= c.cfg.ReachableTime {
			e.state = Stale
		}
	}
	return old, changed
}

// Tick advances the cache's timers to now: it appends to dst the requests
// to retransmit and returns it, deletes entries whose requests went
// unanswered MaxProbes times, turns expired reachable entries stale, and
// deletes stale entries unused for GCTime. Call it at least every
// RetransTime/10 for accurate timing.
func (c *Cache) Tick(now time.Time, dst []Request) []Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.entries {
		e := &c.entries[i]
		switch e.state {
		case Incomplete, Probe:
			if now.Before(e.nextProbe) {
				continue
			}
			if e.probes >= c.cfg.MaxProbes {
				c.counters.Failed.Add(1)
				c.remove(int32(i))
				continue
			}
			e.probes++
			e.nextProbe = now.Add(c.cfg.RetransTime)
			c.counters.Requests.Add(1)
			dst = append(dst, Request{Target: e.ip, Unicast: e.state == Probe, MAC: e.mac})
		case Reachable:
			if now.Sub(e.confirmed) >= c.cfg.ReachableTime {
				e.state = Stale
			}
		case Stale:
			if now.Sub(e.used) >= c.cfg.GCTime && now.Sub(e.confirmed) >= c.cfg.GCTime {
				c.counters.GCDeleted.Add(1)
				c.remove(int32(i))
			}
		}
	}
	return dst
}

// Add inserts or replaces a permanent-looking entry (confirmed now), as
// `ip neigh replace` would; tests and static configuration use it.
func (c *Cache) Add(ip header.IPv4Addr, mac header.MAC, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, found := c.index[ip]
	if !found {
		var ok bool
		if i, ok = c.alloc(now); !ok {
			return false
		}
		c.index[ip] = i
	}
	c.entries[i] = entry{ip: ip, mac: mac, state: Reachable, confirmed: now, used: now, created: now}
	c.gen.Add(1)
	return true
}

// Entry is a snapshot of one cache entry, for display.
type Entry struct {
	IP    header.IPv4Addr
	MAC   header.MAC
	State State
}

// Entries returns a snapshot of the cache.
func (c *Cache) Entries() []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Entry, 0, len(c.index))
	for _, i := range c.index {
		e := &c.entries[i]
		out = append(out, Entry{e.ip, e.mac, e.state})
	}
	return out
}
