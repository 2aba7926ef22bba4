package ixgbesim

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/verinic/verinic/ixgbe/regs"
)

// TestIOVASetMatchesMap: the open-addressing multiset behaves like a map
// of counts under any sequence of adds and removes (within its capacity).
func TestIOVASetMatchesMap(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const capacity = 32
		var s iovaSet
		s.init(capacity)
		model := map[uint64]uint32{}
		total := 0
		// Few distinct keys, some colliding in the low bits, so probe
		// runs form and wrap.
		key := rapid.Custom(func(t *rapid.T) uint64 {
			return uint64(rapid.IntRange(0, 40).Draw(t, "k")) << rapid.SampledFrom([]int{0, 7, 20, 44}).Draw(t, "shift")
		})
		for step := 0; step < 200; step++ {
			k := key.Draw(t, "key")
			if total < capacity && rapid.Bool().Draw(t, "add") {
				if got := s.add(k); got != model[k] {
					t.Fatalf("add(%#x) returned %d, model has %d", k, got, model[k])
				}
				model[k]++
				total++
			} else {
				s.remove(k)
				if model[k] > 0 {
					model[k]--
					total--
					if model[k] == 0 {
						delete(model, k)
					}
				}
			}
			for mk, mc := range model {
				if got := s.has(mk); got != mc {
					t.Fatalf("has(%#x) = %d, model %d", mk, got, mc)
				}
			}
		}
	})
}

// Microsoft's RSS verification suite, IPv6 rows (same key as IPv4).
var msVectors6 = []struct {
	dst, src          string
	dport, sport      uint16
	ipv6, ipv6WithTCP uint32
}{
	{"3ffe:2501:200:3::1", "3ffe:2501:200:1fff::7", 1766, 2794, 0x2cc18cd5, 0x40207d3d},
	{"ff02::1", "3ffe:501:8::260:97ff:fe40:efab", 4739, 14230, 0x0f0c461c, 0xdde51bbf},
	{"fe80::200:f8ff:fe21:67cf", "3ffe:1900:4545:3:200:f8ff:fe21:67cf", 38024, 44251, 0x4b61e985, 0x02d1feef},
}

func ipv6Frame(src, dst string, next byte, sport, dport uint16) []byte {
	f := make([]byte, 14+40+20)
	binary.BigEndian.PutUint16(f[12:], 0x86DD)
	ip := f[14:]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], 20)
	ip[6] = next
	ip[7] = 64
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(ip[8:], s[:])
	copy(ip[24:], d[:])
	binary.BigEndian.PutUint16(ip[40:], sport)
	binary.BigEndian.PutUint16(ip[42:], dport)
	return f
}

func TestToeplitzMicrosoftIPv6Vectors(t *testing.T) {
	for _, v := range msVectors6 {
		f := ipv6Frame(v.src, v.dst, 6, v.sport, v.dport)
		if h, typ, ok := RSSHash(msKey, f, regs.MRQC_RSS_FIELD_IPV6); !ok || h != v.ipv6 || typ != RSSTypeIPv6 {
			t.Errorf("%s -> %s: IPv6 hash %#08x (type %d), want %#08x", v.src, v.dst, h, typ, v.ipv6)
		}
		if h, typ, ok := RSSHash(msKey, f, regs.MRQC_RSS_FIELD_IPV6_TCP); !ok || h != v.ipv6WithTCP || typ != RSSTypeTCPIPv6 {
			t.Errorf("%s -> %s: TCP/IPv6 hash %#08x (type %d), want %#08x", v.src, v.dst, h, typ, v.ipv6WithTCP)
		}
	}
	// Hashing disabled for the type: not hashed.
	f := ipv6Frame(msVectors6[0].src, msVectors6[0].dst, 17, 1, 2)
	if _, _, ok := RSSHash(msKey, f, regs.MRQC_RSS_FIELD_IPV4_UDP); ok {
		t.Error("UDP/IPv6 hashed with only UDP/IPv4 enabled")
	}
	// IPv4 fragments are hashed on addresses only.
	g := ipv4Frame("1.2.3.4", "5.6.7.8", 6, 1, 2)
	g[14+6] = 0x20 // MF
	if _, typ, ok := RSSHash(msKey, g, regs.MRQC_RSS_FIELD_IPV4|regs.MRQC_RSS_FIELD_IPV4_TCP); !ok || typ != RSSTypeIPv4 {
		t.Errorf("IPv4 fragment: type %d ok %v, want IPv4-only hash", typ, ok)
	}
}

// TestSoftwareFlushSkipsReposted: a slot reposted (through the head) while
// its write-back was pending gets no stale DD from the old descriptor.
func TestSoftwareFlushSkipsReposted(t *testing.T) {
	n, d, w := soloNIC(t, "swf", 1)
	tq := &d.tx[0]
	d.wr(regs.TXDCTL(0), d.rd(regs.TXDCTL(0))&^regs.TXDCTL_WTHRESH|100<<regs.TXDCTL_WTHRESH_SHIFT)
	cmd := uint32(regs.TXD_DCMD_EOP | regs.TXD_DCMD_RS | regs.TXD_DCMD_IFCS)
	for i := 0; i < tRing-1; i++ {
		copy(tq.buf(i), testFrame(n.MAC(), n.MAC(), 64, uint32(i)))
		txDesc(tq, i, tq.bufIOVA(i), 64, cmd)
	}
	d.wr(regs.TDT(0), tRing-1)
	for i := 0; i < 10; i++ {
		n.StepTx(0)
	}
	if h := d.rd(regs.TDH(0)); h != 10 {
		t.Fatalf("TDH = %d", h)
	}
	// The driver reclaims 0..8 through TDH and reposts them (tail 63 -> 9).
	for i := 0; i < 9; i++ {
		txDesc(tq, i, tq.bufIOVA(i), 64, cmd)
	}
	txDesc(tq, tRing-1, tq.bufIOVA(tRing-1), 64, cmd)
	d.wr(regs.TDT(0), 9)
	d.wr(regs.TXDCTL(0), d.rd(regs.TXDCTL(0))|regs.TXDCTL_SWFLSH)
	for i := 0; i < 9; i++ {
		if atomicLoad32(tq.desc(i)[12:])&regs.TXD_STAT_DD != 0 {
			t.Fatalf("reposted descriptor %d got a stale DD", i)
		}
	}
	if atomicLoad32(tq.desc(9)[12:])&regs.TXD_STAT_DD == 0 {
		t.Fatal("SWFLSH did not write back pending descriptor 9")
	}
	n.Drain(0)
	if len(w.frames) != 10+53+1+9 {
		t.Fatalf("sent %d frames", len(w.frames))
	}
	if v := n.Violations(); len(v) != 0 {
		t.Fatalf("violations %v", v)
	}
}

func TestCableFlushReleasesHeldFrame(t *testing.T) {
	dom := NewDomain()
	a := newStepped(t, "ha", dom)
	b := newStepped(t, "hb", dom)
	c := Connect(a, b, &Faults{Reorder: 1}, nil)
	da := initDriver(t, a, 1)
	db := initDriver(t, b, 1)
	da.waitLink()
	db.waitLink()
	da.send(0, testFrame(b.MAC(), a.MAC(), 64, 1))
	a.Drain(0)
	if s := c.Stats().AB; s.InFlight != 1 || s.Reordered != 1 {
		t.Fatalf("stats %+v", s)
	}
	c.Flush()
	b.Drain(0)
	if got := db.recv(0); len(got) != 1 {
		t.Fatalf("flush delivered %d frames", len(got))
	}
	checkAccounting(t, c.Stats().AB)
}

// TestIdleEngineSleeps: a started, idle NIC must not keep a core busy.
func TestIdleEngineSleeps(t *testing.T) {
	n := newFree(t, "idle", nil)
	n.Attach(newCapture())
	initDriver(t, n, 1)
	n.Start()
	defer n.Stop()
	time.Sleep(50 * time.Millisecond) // past the spinning phase
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	const window = 300 * time.Millisecond
	time.Sleep(window)
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
	if cpu > window/4 {
		t.Fatalf("idle NIC used %v of CPU in %v", cpu, window)
	}
	t.Logf("idle NIC used %v of CPU in %v", cpu, window)
}
