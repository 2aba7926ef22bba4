package icmp

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/verinic/verinic/proto/header"
)

// RateLimitConfig mirrors Linux's sysctls. Zero fields take Linux's
// defaults.
type RateLimitConfig struct {
	// PerDestInterval is net.ipv4.icmp_ratelimit (1000 ms): the mean
	// interval between limited messages to one destination, with bursts
	// of up to 6 (XRLIM_BURST_FACTOR) after a quiet period.
	PerDestInterval time.Duration
	// Mask is net.ipv4.icmp_ratemask (6168: destination unreachable,
	// source quench, time exceeded, parameter problem): bit t set limits
	// type t. Fragmentation needed is never limited (PMTU discovery).
	Mask uint32
	// GlobalPerSec and GlobalBurst are icmp_msgs_per_sec (1000) and
	// icmp_msgs_burst (50): a token bucket over all limited messages.
	GlobalPerSec int
	GlobalBurst  int
	// Destinations is how many destinations are tracked (default 1024);
	// the least recently used is forgotten first.
	Destinations int
}

// Linux defaults.
const (
	DefaultPerDestInterval = time.Second
	DefaultRateMask        = 6168
	DefaultGlobalPerSec    = 1000
	DefaultGlobalBurst     = 50
	burstFactor            = 6 // XRLIM_BURST_FACTOR in net/ipv4/icmp.c
)

type peerBucket struct {
	addr   header.IPv4Addr
	tokens time.Duration
	last   time.Time
	used   time.Time
}

// RateLimiter decides whether an ICMP message may be sent, as Linux's
// icmpv4_xrlim_allow and icmp_global_allow do. Safe for concurrent use;
// allocates nothing after creation.
type RateLimiter struct {
	cfg     RateLimitConfig
	mu      sync.Mutex
	global  float64 // tokens
	glast   time.Time
	peers   []peerBucket
	index   map[header.IPv4Addr]int
	Limited atomic.Uint64 // messages refused
}

// NewRateLimiter returns a limiter with cfg.
func NewRateLimiter(cfg RateLimitConfig) *RateLimiter {
	if cfg.PerDestInterval <= 0 {
		cfg.PerDestInterval = DefaultPerDestInterval
	}
	if cfg.Mask == 0 {
		cfg.Mask = DefaultRateMask
	}
	if cfg.GlobalPerSec <= 0 {
		cfg.GlobalPerSec = DefaultGlobalPerSec
	}
	if cfg.GlobalBurst <= 0 {
		cfg.GlobalBurst = DefaultGlobalBurst
	}
	if cfg.Destinations <= 0 {
		cfg.Destinations = 1024
	}
	return &RateLimiter{cfg: cfg, global: float64(cfg.GlobalBurst), peers: make([]peerBucket, 0, cfg.Destinations), index: make(map[header.IPv4Addr]int, cfg.Destinations)}
}

// Allow reports whether a message of type typ/code to dst may go out at now,
// and takes a token if so.
func (l *RateLimiter) Allow(dst header.IPv4Addr, typ, code uint8, now time.Time) bool {
	if typ > 31 || l.cfg.Mask&(1<<typ) == 0 ||
		(typ == header.ICMPv4DestinationUnreachable && code == header.ICMPv4FragmentationNeeded) {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// Global bucket: refilled at GlobalPerSec, capped at GlobalBurst.
	if l.glast.IsZero() || now.After(l.glast) {
		if !l.glast.IsZero() {
			l.global += now.Sub(l.glast).Seconds() * float64(l.cfg.GlobalPerSec)
		}
		l.glast = now
	}
	if l.global > float64(l.cfg.GlobalBurst) {
		l.global = float64(l.cfg.GlobalBurst)
	}
	if l.global < 1 {
		l.Limited.Add(1)
		return false
	}
	// Per-destination bucket (inet_peer_xrlim_allow): tokens are time,
	// earned as it passes, capped at burstFactor intervals; a message
	// costs one interval. A new destination starts with a full bucket.
	p := l.peer(dst, now)
	if now.After(p.last) {
		p.tokens += now.Sub(p.last)
		p.last = now
	}
	p.used = now
	if limit := burstFactor * l.cfg.PerDestInterval; p.tokens > limit {
		p.tokens = limit
	}
	if p.tokens < l.cfg.PerDestInterval {
		l.Limited.Add(1)
		return false
	}
	p.tokens -= l.cfg.PerDestInterval
	l.global--
	return true
}

func (l *RateLimiter) peer(dst header.IPv4Addr, now time.Time) *peerBucket {
	if i, ok := l.index[dst]; ok {
		return &l.peers[i]
	}
	fresh := peerBucket{addr: dst, tokens: burstFactor * l.cfg.PerDestInterval, last: now, used: now}
	if len(l.peers) < cap(l.peers) {
		l.peers = append(l.peers, fresh)
		l.index[dst] = len(l.peers) - 1
		return &l.peers[len(l.peers)-1]
	}
	lru := 0
	for i := range l.peers {
		if l.peers[i].used.Before(l.peers[lru].used) {
			lru = i
		}
	}
	delete(l.index, l.peers[lru].addr)
	l.peers[lru] = fresh
	l.index[dst] = lru
	return &l.peers[lru]
}
