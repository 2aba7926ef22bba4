package stack

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verinic/verinic/proto/arp"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/link/memlink"
	"github.com/verinic/verinic/trace/pcap"
)

// frameLog keeps copies of the frames an endpoint sends.
type frameLog struct {
	mu     sync.Mutex
	frames [][]byte
}

func tapFrames(e *memlink.Endpoint) *frameLog {
	l := &frameLog{}
	e.SetTap(func(f []byte) {
		l.mu.Lock()
		l.frames = append(l.frames, append([]byte(nil), f...))
		l.mu.Unlock()
	})
	return l
}

// icmp returns the ICMP messages among the logged frames, with their IP
// headers.
func (l *frameLog) icmp() []header.IPv4 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []header.IPv4
	for _, f := range l.frames {
		eth, err := header.ParseEthernet(f)
		if err != nil || eth.EtherType() != header.EtherTypeIPv4 {
			continue
		}
		ip, err := header.ParseIPv4(eth.Payload())
		if err == nil && ip.Protocol() == header.IPProtocolICMP {
			out = append(out, ip)
		}
	}
	return out
}

// writePcap writes the logged frames to a capture in dir.
func (l *frameLog) writePcap(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "frames.pcap")
	w, err := pcap.Create(path, pcap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	for _, f := range l.frames {
		if err := w.WriteFrame(time.Unix(1, 0), f); err != nil {
			t.Fatal(err)
		}
	}
	l.mu.Unlock()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// tsharkClean checks a capture with tshark (checksums on), skipping when
// tshark is not installed.
func tsharkClean(t *testing.T, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := pcap.Tshark(ctx, path)
	if errors.Is(err, pcap.ErrNoTshark) {
		t.Log("tshark not installed: capture not dissected")
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() {
		t.Fatalf("tshark flags %d frames of %d: %v", len(rep.Flagged), rep.Frames, rep.Flagged)
	}
}

// A datagram that times out in reassembly is answered with ICMP Time
// Exceeded, code 1 (RFC 792), quoting its first fragment's IP header as
// received: total length and checksum untouched, as Linux's ip_expire
// quotes the head fragment (RFC 1812 4.3.2.3: the quote is the offending
// datagram's header as it arrived).
func TestReassemblyTimeExceededQuotesOriginalHeader(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	p.settle()
	sent := tapFrames(p.lb)
	data := udpPayload(7, bytes.Repeat([]byte{0xab}, 200))
	first := ipFrame(17, 77, 0, true, data[:104])
	p.la.Inject(first)
	p.settle()
	p.advance(31*time.Second, time.Second)
	var te header.IPv4
	for _, ip := range sent.icmp() {
		if m := header.ICMPv4(ip.Payload()); m.Type() == header.ICMPv4TimeExceeded && m.Code() == header.ICMPv4ReassemblyExceeded {
			te = ip
		}
	}
	if te == nil {
		t.Fatalf("no ICMP Time Exceeded (B: %v)", nonZero(p.b.Counters()))
	}
	quote := header.ICMPv4(te.Payload()).Payload()
	orig := first[14:]
	if len(quote) < 28 || !bytes.Equal(quote[:20], orig[:20]) {
		t.Fatalf("quoted header\n% x\nwant the fragment's\n% x", quote[:min(len(quote), 20)], orig[:20])
	}
	if !header.IPv4(quote).ChecksumValid() {
		t.Fatal("quoted header checksum does not verify")
	}
	if !bytes.Equal(quote[20:], orig[20:20+len(quote)-20]) {
		t.Fatal("quoted data differs from the fragment's")
	}
	if c := p.b.Counters(); c.Get(ICMPTimeExceededOut) != 1 {
		t.Fatalf("icmp_time_exceeded_out %d, want 1", c.Get(ICMPTimeExceededOut))
	}
	tsharkClean(t, sent.writePcap(t, t.TempDir()))
}

// echoFrame builds an ICMP echo request from src to B, from A's MAC.
func echoFrame(src header.IPv4Addr) []byte {
	msg := make([]byte, 8+8)
	header.EncodeICMPv4Echo(msg, header.ICMPv4Echo, 1, 1, 8)
	f := make([]byte, 34+len(msg))
	header.EncodeEthernet(f, header.MAC(macB), header.MAC(macA), header.EtherTypeIPv4)
	header.EncodeIPv4(f[14:], header.IPv4Fields{TotalLen: uint16(20 + len(msg)), ID: 9, TTL: 64, Protocol: header.IPProtocolICMP, Src: src, Dst: addrB.As4()})
	copy(f[34:], msg)
	return f
}

// arpFrame builds an ARP packet from A's MAC.
func arpFrame(op uint16, sender, target header.IPv4Addr) []byte {
	f := make([]byte, 42)
	dst := header.BroadcastMAC
	if op == header.ARPReply {
		dst = header.MAC(macB)
	}
	header.EncodeEthernet(f, dst, header.MAC(macA), header.EtherTypeARP)
	header.EncodeARP(f[14:], op, header.MAC(macA), sender, header.MAC{}, target)
	return f
}

// Packets from martian sources (RFC 1122 3.2.1.3, RFC 1812 5.3.7: our own
// address, 0/8, loopback 127/8, limited or subnet broadcast, multicast) are
// dropped and counted before anything acts on them, as Linux's
// ip_route_input_slow does (martian_source): no echo reply, no ARP for the
// "sender", no neighbour entry.
func TestMartianSourcesDropped(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	p.settle()
	sent := tapFrames(p.lb)
	for _, src := range []string{"10.0.0.2", "127.0.0.1", "127.9.9.9", "0.0.0.0", "0.1.2.3", "224.0.0.1", "239.1.1.1", "255.255.255.255", "10.0.0.255"} {
		a := netip.MustParseAddr(src).As4()
		before := p.b.Counters()
		p.la.Inject(echoFrame(a))
		p.settle()
		d := p.b.Counters().Sub(before)
		if d.Get(IPMartian) != 1 || d.Get(ICMPEchoIn) != 0 || d.Get(ICMPEchoOut) != 0 || d.Get(ARPRequestsOut) != 0 {
			t.Errorf("echo from %s: %v, want ip_martian 1 and nothing else", src, nonZero(d))
		}
		if _, st := p.nicB.ARP().Lookup(a); st != arp.Absent {
			t.Errorf("echo from %s left a neighbour entry (%v)", src, st)
		}
	}
	if n := len(sent.frames); n != 0 {
		t.Errorf("B sent %d frames answering martians", n)
	}
	// 0.0.0.0 to the limited broadcast is not a martian (Linux accepts it
	// for DHCP; RFC 1122 3.2.1.3 allows 0.0.0.0 as a source while a host
	// learns its address).
	srv, _ := p.b.ListenUDP(netipAddrPort(67))
	f := ipFrame(17, 3, 0, false, udpPayload(67, []byte("discover")))
	copy(f[0:6], header.BroadcastMAC[:])
	ip := header.IPv4(f[14:])
	copy(ip[12:16], []byte{0, 0, 0, 0})
	copy(ip[16:20], []byte{255, 255, 255, 255})
	ip.SetChecksum()
	ip[26], ip[27] = 0, 0 // no UDP checksum (RFC 768)
	p.la.Inject(f)
	p.settle()
	if srv.Queued() != 1 {
		t.Errorf("0.0.0.0 -> 255.255.255.255 not delivered (B: %v)", nonZero(p.b.Counters()))
	}
}

// ARP from martian senders (broadcast, loopback, multicast, another
// subnet, 0.0.0.0 outside an RFC 5227 probe) or for martian targets is
// counted and dropped: no neighbour entry, no reply. An RFC 5227 probe
// (request from 0.0.0.0) is still answered.
func TestARPMartiansNotLearnt(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	p.settle()
	us := addrB.As4()
	cases := []struct {
		name           string
		op             uint16
		sender, target string
	}{
		{"subnet broadcast sender", header.ARPRequest, "10.0.0.255", "10.0.0.2"},
		{"limited broadcast sender", header.ARPRequest, "255.255.255.255", "10.0.0.2"},
		{"loopback sender", header.ARPRequest, "127.0.0.1", "10.0.0.2"},
		{"multicast sender", header.ARPRequest, "224.0.0.5", "10.0.0.2"},
		{"off-subnet sender", header.ARPRequest, "192.168.9.9", "10.0.0.2"},
		{"off-subnet reply", header.ARPReply, "192.168.9.10", "10.0.0.2"},
		{"reply from 0.0.0.0", header.ARPReply, "0.0.0.0", "10.0.0.2"},
		{"multicast target", header.ARPRequest, "10.0.0.7", "224.0.0.1"},
		{"loopback target", header.ARPRequest, "10.0.0.8", "127.0.0.1"},
	}
	for _, c := range cases {
		before := p.b.Counters()
		sip := netip.MustParseAddr(c.sender).As4()
		p.la.Inject(arpFrame(c.op, sip, netip.MustParseAddr(c.target).As4()))
		p.settle()
		d := p.b.Counters().Sub(before)
		if d.Get(ARPMartian) != 1 || d.Get(ARPRepliesOut) != 0 || d.Get(ARPRequestsOut) != 0 {
			t.Errorf("%s: %v, want arp_martian 1 and no reply", c.name, nonZero(d))
		}
		if _, st := p.nicB.ARP().Lookup(sip); st != arp.Absent {
			t.Errorf("%s: learnt as a neighbour (%v)", c.name, st)
		}
	}
	before := p.b.Counters()
	p.la.Inject(arpFrame(header.ARPRequest, header.IPv4Addr{}, us))
	p.settle()
	if d := p.b.Counters().Sub(before); d.Get(ARPRepliesOut) != 1 || d.Get(ARPMartian) != 0 {
		t.Errorf("RFC 5227 probe: %v, want one reply", nonZero(d))
	}
}

// *_out counters count what was sent, not what was attempted: a flood of
// echo requests from sources B has no route to moves ip_no_route, not
// icmp_echo_out (issue 12 saw them equal with zero replies sent). Replies
// that wait for ARP count as sent once queued; the ones the pending queue
// refuses count in arp_queue_full instead, and those whose resolution fails
// later in arp_failed.
func TestOutCountersCountSends(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	p.settle()
	const n = 100
	for i := 0; i < n; i++ {
		p.la.Inject(echoFrame(header.IPv4Addr{172, 16, byte(i), 1})) // off-subnet, no route
	}
	p.settle()
	c := p.b.Counters()
	if c.Get(ICMPEchoIn) != n || c.Get(IPNoRoute) != n || c.Get(ICMPEchoOut) != 0 {
		t.Fatalf("unroutable flood: echo in %d, no route %d, echo out %d; want %d, %d, 0", c.Get(ICMPEchoIn), c.Get(IPNoRoute), c.Get(ICMPEchoOut), n, n)
	}
	// An on-link source that never answers ARP: 64 replies wait (the
	// per-neighbour limit), the rest are refused.
	before := p.b.Counters()
	for i := 0; i < n; i++ {
		p.la.Inject(echoFrame(header.IPv4Addr{10, 0, 0, 77}))
	}
	p.settle()
	d := p.b.Counters().Sub(before)
	if d.Get(ICMPEchoOut) != 64 || d.Get(ARPQueueFull) != n-64 {
		t.Fatalf("silent neighbour: echo out %d, arp_queue_full %d; want 64, %d (%v)", d.Get(ICMPEchoOut), d.Get(ARPQueueFull), n-64, nonZero(d))
	}
	p.advance(5*time.Second, 100*time.Millisecond)
	if d := p.b.Counters().Sub(before); d.Get(ARPFailed) != 64 {
		t.Fatalf("silent neighbour: arp_failed %d, want 64", d.Get(ARPFailed))
	}
	// A UDP datagram to a closed port from an unroutable source: no
	// port-unreachable counted as sent.
	before = p.b.Counters()
	f := ipFrame(17, 5, 0, false, udpPayload(9, []byte("x")))
	ip := header.IPv4(f[14:])
	copy(ip[12:16], []byte{172, 16, 0, 1})
	ip.SetChecksum()
	ip[26], ip[27] = 0, 0
	p.la.Inject(f)
	p.settle()
	if d := p.b.Counters().Sub(before); d.Get(UDPNoPort) != 1 || d.Get(ICMPUnreachOut) != 0 || d.Get(IPNoRoute) != 1 {
		t.Fatalf("closed port, unroutable source: %v; want udp_no_port 1, ip_no_route 1, no icmp_unreach_out", nonZero(d))
	}
}

// A neighbour whose MAC changes (ARP cache poisoning, or a NIC swapped) is
// counted in arp_mac_changed and logged, at most once per
// ARPChangeLogInterval with the number of changes not logged.
func TestARPMACChangeCountedAndLogged(t *testing.T) {
	var logBuf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{&mu, &logBuf}, nil))
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{Logger: logger})
	p.settle()
	a := addrA.As4()
	reply := func(mac header.MAC) []byte {
		f := make([]byte, 42)
		header.EncodeEthernet(f, header.MAC(macB), mac, header.EtherTypeARP)
		header.EncodeARP(f[14:], header.ARPReply, mac, a, header.MAC(macB), addrB.As4())
		return f
	}
	// B learns A's real MAC from A's request for B.
	p.la.Inject(arpFrame(header.ARPRequest, a, addrB.As4()))
	p.settle()
	if mac, _ := p.nicB.ARP().Lookup(a); mac != header.MAC(macA) {
		t.Fatalf("B did not learn A: %v", mac)
	}
	evil := header.MAC{2, 0xe, 0xe, 0xe, 0xe, 0xe}
	for i := 0; i < 50; i++ {
		m := evil
		if i%2 == 1 {
			m = header.MAC(macA)
		}
		p.la.Inject(reply(m))
	}
	p.settle()
	if c := p.b.Counters(); c.Get(ARPMACChanged) != 50 {
		t.Fatalf("arp_mac_changed %d, want 50", c.Get(ARPMACChanged))
	}
	lines := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Split(strings.TrimSpace(logBuf.String()), "\n")
	}
	if l := lines(); len(l) != 1 || !strings.Contains(l[0], "10.0.0.1") || !strings.Contains(l[0], evil.String()) {
		t.Fatalf("log after 50 changes in an instant: %q, want one line naming 10.0.0.1 and %v", l, evil)
	}
	p.clk.Advance(ARPChangeLogInterval)
	p.la.Inject(reply(evil))
	p.settle()
	if l := lines(); len(l) != 2 || !strings.Contains(l[1], "suppressed=49") {
		t.Fatalf("log after the interval: %q, want a second line with suppressed=49", l)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}

// optEcho builds an echo request from A to B whose IP header carries opts
// (padded to a multiple of 4 with End of Option List).
func optEcho(opts []byte) []byte {
	msg := make([]byte, 16)
	copy(msg[8:], "optsdata")
	header.EncodeICMPv4Echo(msg, header.ICMPv4Echo, 7, 3, 8)
	fl := header.IPv4Fields{ID: 11, TTL: 64, Protocol: header.IPProtocolICMP, Src: addrA.As4(), Dst: addrB.As4(), Options: opts}
	hl := fl.HeaderLen()
	fl.TotalLen = uint16(hl + len(msg))
	f := make([]byte, 14+hl+len(msg))
	header.EncodeEthernet(f, header.MAC(macB), header.MAC(macA), header.EtherTypeIPv4)
	header.EncodeIPv4(f[14:], fl)
	copy(f[14+hl:], msg)
	return f
}

// A datagram with a malformed option length gets ICMP Parameter Problem
// whose pointer is the offending octet of the header (RFC 1122 3.2.2.5,
// RFC 792; the octets Linux's ip_options_compile points at), and is
// dropped.
func TestIPOptionsParameterProblem(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	p.settle()
	sent := tapFrames(p.lb)
	cases := []struct {
		name string
		opts []byte
		ptr  uint8
	}{
		{"length 1", []byte{1, 1, 0x44, 1}, 22},               // NOP NOP, then timestamp with length 1
		{"length past the header", []byte{0x07, 9, 4, 0}, 20}, // record route claiming 9 bytes of 4
		{"record route pointer below 4", []byte{0x07, 7, 3, 0, 0, 0, 0, 0}, 22},
		{"timestamp pointer below 5", []byte{0x44, 8, 4, 0, 0, 0, 0, 0}, 22},
	}
	for i, c := range cases {
		before := p.b.Counters()
		p.clk.Advance(time.Second) // past the ICMP error rate limit
		p.la.Inject(optEcho(c.opts))
		p.settle()
		d := p.b.Counters().Sub(before)
		if d.Get(ICMPEchoOut) != 0 || d.Get(ICMPParamProbOut) != 1 || d.Get(IPBadOptions) != 1 {
			t.Errorf("%s: %v, want ip_bad_options and icmp_param_prob_out 1, no echo reply", c.name, nonZero(d))
			continue
		}
		msgs := sent.icmp()
		if len(msgs) != i+1 {
			t.Fatalf("%s: B sent %d ICMP messages in all, want %d", c.name, len(msgs), i+1)
		}
		m := header.ICMPv4(msgs[i].Payload())
		if m.Type() != header.ICMPv4ParameterProblem || m.Code() != 0 || m.Pointer() != c.ptr {
			t.Errorf("%s: type %d code %d pointer %d, want 12/0 pointer %d", c.name, m.Type(), m.Code(), m.Pointer(), c.ptr)
		}
	}
	tsharkClean(t, sent.writePcap(t, t.TempDir()))
}

// Record Route and Timestamp options in an echo request come back in the
// reply, updated with this host (RFC 1122 3.2.2.6: "the recorded route
// will be for the entire round trip"; RFC 791 3.1 for the formats).
func TestEchoReplyRecordRouteAndTimestamp(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	p.settle()
	sent := tapFrames(p.lb)
	rr := []byte{0x07, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0}       // two empty slots
	ts := []byte{0x44, 12, 5, 0x01, 0, 0, 0, 0, 0, 0, 0, 0} // one address+timestamp slot
	opts := append(append(append([]byte(nil), rr...), 1), ts...)
	p.la.Inject(optEcho(opts))
	p.settle()
	msgs := sent.icmp()
	if len(msgs) != 1 || header.ICMPv4(msgs[0].Payload()).Type() != header.ICMPv4EchoReply {
		t.Fatalf("B sent %d ICMP messages, want one echo reply (B: %v)", len(msgs), nonZero(p.b.Counters()))
	}
	o := msgs[0].Options()
	b := addrB.As4()
	wantRR := []byte{0x07, 11, 12, b[0], b[1], b[2], b[3], b[0], b[1], b[2], b[3]}
	if len(o) < 24 || !bytes.Equal(o[:11], wantRR) {
		t.Fatalf("reply options % x, want record route % x first", o, wantRR)
	}
	// Only the options echoed are copied (the NOP is not), as Linux's
	// ip_options_echo does; the header is padded with End of Option List.
	stamp := msSinceMidnightUT(p.clk.Now())
	if o[11] != 0x44 || o[12] != 12 || o[13] != 13 || o[14] != 0x01 || !bytes.Equal(o[15:19], b[:]) || binary.BigEndian.Uint32(o[19:23]) != stamp || o[23] != 0 {
		t.Fatalf("reply timestamp option % x: want our address and timestamp %d, pointer 13", o[11:24], stamp)
	}
	if !bytes.Equal(header.ICMPv4(msgs[0].Payload()).Payload(), []byte("optsdata")) {
		t.Fatal("echo data changed")
	}
	tsharkClean(t, sent.writePcap(t, t.TempDir()))
}

// ICMP timestamp requests are answered (RFC 792; Linux's icmp_timestamp):
// originate copied, receive and transmit in milliseconds since midnight UT.
func TestICMPTimestampAnswered(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	p.settle()
	sent := tapFrames(p.lb)
	msg := make([]byte, 20)
	msg[0] = header.ICMPv4Timestamp
	copy(msg[4:8], []byte{0x12, 0x34, 0, 9})
	copy(msg[8:12], []byte{0, 1, 2, 3}) // originate
	header.EncodeICMPv4(msg, header.ICMPv4Timestamp, 0, 0x12340009, 12)
	p.la.Inject(ipFrame(1, 21, 0, false, msg))
	p.settle()
	msgs := sent.icmp()
	if len(msgs) != 1 {
		t.Fatalf("B sent %d ICMP messages, want a timestamp reply (B: %v)", len(msgs), nonZero(p.b.Counters()))
	}
	m := header.ICMPv4(msgs[0].Payload())
	want := uint32(p.clk.Now().UTC().Sub(p.clk.Now().UTC().Truncate(24*time.Hour)) / time.Millisecond)
	if m.Type() != header.ICMPv4TimestampReply || len(m) != 20 || m.Ident() != 0x1234 || m.Seq() != 9 ||
		!bytes.Equal(m[8:12], []byte{0, 1, 2, 3}) || binary.BigEndian.Uint32(m[12:16]) != want || binary.BigEndian.Uint32(m[16:20]) != want {
		t.Fatalf("reply % x, want type 14, ident/seq and originate copied, receive = transmit = %d", []byte(m), want)
	}
	if c := p.b.Counters(); c.Get(ICMPTimestampIn) != 1 || c.Get(ICMPTimestampOut) != 1 {
		t.Fatalf("timestamp in/out %d/%d", c.Get(ICMPTimestampIn), c.Get(ICMPTimestampOut))
	}
	tsharkClean(t, sent.writePcap(t, t.TempDir()))
}

// Fragmented datagrams from one source keep being reassembled while
// another source floods fragments that never complete: each source may
// hold at most a quarter of the reassembly slots and memory, and eviction
// takes the flooder's datagrams (reassembly.Config.MaxDatagramsPerSource,
// MaxBytesPerSource).
func TestFragmentFloodFromOneSourceSparesOthers(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	p.settle()
	srv, _ := p.b.ListenUDP(netipAddrPort(7))
	flood := func(round, n int) {
		for j := 0; j < n; j++ {
			f := ipFrame(17, uint16(round*1000+j), 8*(j%500), true, make([]byte, 1480))
			ip := header.IPv4(f[14:])
			copy(ip[12:16], []byte{10, 0, 0, 66})
			ip.SetChecksum()
			p.la.Inject(f)
		}
	}
	data := udpPayload(7, make([]byte, 3*1480-8))
	got := 0
	for round := 0; round < 20; round++ {
		for f := 0; f < 3; f++ {
			flood(round*3+f, 300)
			p.la.Inject(ipFrame(17, uint16(40000+round), f*1480, f < 2, data[f*1480:(f+1)*1480]))
			p.settle()
		}
		buf := make([]byte, 5000)
		for srv.Queued() > 0 {
			if n, _, err := srv.ReadFrom(buf); err == nil && n == 3*1480-8 {
				got++
			}
		}
	}
	c := p.b.Counters()
	if got != 20 {
		t.Fatalf("%d of 20 fragmented datagrams got through a flood from another source (B: %v)", got, nonZero(c))
	}
	if used, limit := p.b.ReassemblyMemory(); used > limit/4+limit/64 {
		t.Fatalf("the flooder holds %d of %d bytes of reassembly memory, more than its quarter", used, limit)
	}
}
