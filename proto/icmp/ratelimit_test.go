package icmp

import (
	"testing"
	"time"

	"github.com/verinic/verinic/proto/header"
)

func TestRateLimitPerDestinationLikeLinux(t *testing.T) {
	l := NewRateLimiter(RateLimitConfig{})
	t0 := time.Unix(100, 0)
	dst := header.IPv4Addr{10, 0, 0, 1}
	unreach := header.ICMPv4DestinationUnreachable
	allowed := 0
	for i := 0; i < 20; i++ {
		if l.Allow(dst, unreach, header.ICMPv4PortUnreachable, t0) {
			allowed++
		}
	}
	if allowed != burstFactor {
		t.Fatalf("burst to one destination: %d allowed, want %d", allowed, burstFactor)
	}
	// Then one per second.
	if l.Allow(dst, unreach, 3, t0.Add(999*time.Millisecond)) {
		t.Fatal("allowed before an interval passed")
	}
	if !l.Allow(dst, unreach, 3, t0.Add(1000*time.Millisecond)) {
		t.Fatal("refused after an interval")
	}
	// Another destination has its own bucket.
	if !l.Allow(header.IPv4Addr{10, 0, 0, 2}, unreach, 3, t0) {
		t.Fatal("second destination refused")
	}
	// Echo replies and fragmentation needed are not limited.
	for i := 0; i < 100; i++ {
		if !l.Allow(dst, header.ICMPv4EchoReply, 0, t0) || !l.Allow(dst, unreach, header.ICMPv4FragmentationNeeded, t0) {
			t.Fatal("unmasked type limited")
		}
	}
}

func TestRateLimitGlobalBucket(t *testing.T) {
	l := NewRateLimiter(RateLimitConfig{})
	t0 := time.Unix(100, 0)
	allowed := 0
	for i := 0; i < 200; i++ {
		if l.Allow(header.IPv4Addr{10, 1, byte(i >> 8), byte(i)}, header.ICMPv4TimeExceeded, 0, t0) {
			allowed++
		}
	}
	if allowed != DefaultGlobalBurst {
		t.Fatalf("global burst: %d, want %d", allowed, DefaultGlobalBurst)
	}
	// 1000/s: 10 ms later, 10 more tokens.
	allowed = 0
	for i := 200; i < 400; i++ {
		if l.Allow(header.IPv4Addr{10, 1, byte(i >> 8), byte(i)}, header.ICMPv4TimeExceeded, 0, t0.Add(10*time.Millisecond)) {
			allowed++
		}
	}
	if allowed != 10 {
		t.Fatalf("after 10 ms: %d allowed, want 10", allowed)
	}
	if l.Limited.Load() != 340 {
		t.Fatalf("limited counter %d, want 340", l.Limited.Load())
	}
}
