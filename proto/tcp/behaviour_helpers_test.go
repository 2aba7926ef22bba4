package tcp_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/verinic/verinic/internal/netsim"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/tcp"
)

// Helpers of the protocol-behaviour tests (behaviour_test.go): two hosts on
// the deterministic netsim, every TCP frame either sends recorded by the
// endpoints' taps with its virtual send time, and a driver that moves the
// virtual clock event by event.

// wseg is one TCP segment seen on the wire.
type wseg struct {
	i        int           // index in the log
	at       time.Duration // virtual send time since netsim.Epoch
	from     byte          // 'A' or 'B'
	src, dst netip.AddrPort
	flags    header.TCPFlags
	seq, ack uint32
	win      uint16
	opt      header.TCPOptions
	payload  int
	ipLen    int    // IPv4 total length
	frame    []byte // the Ethernet frame (a copy)
}

func (g wseg) String() string {
	return fmt.Sprintf("#%d %v %c %v seq=%d ack=%d win=%d len=%d", g.i, g.at, g.from, g.flags, g.seq, g.ack, g.win, g.payload)
}

func (g wseg) is(f header.TCPFlags) bool { return g.flags.Has(f) }

// pureAck reports an ACK without data, SYN, FIN or RST.
func (g wseg) pureAck() bool {
	return g.flags&^header.TCPFlagPSH == header.TCPFlagACK && g.payload == 0
}

type bsim struct {
	t    *testing.T
	s    *netsim.Sim
	segs []wseg
	// filter, if set, decides the fate of each frame A sends while A's
	// path is Manual (true: drop); pump applies it.
	filter func(g wseg) bool
	manA   bool
	// watch, if set, runs after every step (to record states).
	watch func()
}

const (
	fA = header.TCPFlagACK
	fS = header.TCPFlagSYN
	fR = header.TCPFlagRST
	fF = header.TCPFlagFIN
	fP = header.TCPFlagPSH
)

func newBSim(t *testing.T, o netsim.Options) *bsim {
	t.Helper()
	if o.Seed == 0 {
		o.Seed = 42
	}
	s, err := netsim.NewSim(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	b := &bsim{t: t, s: s}
	s.A.Link.SetTap(func(f []byte) { b.tap('A', f) })
	s.B.Link.SetTap(func(f []byte) { b.tap('B', f) })
	return b
}

// parseFrame decodes an Ethernet/IPv4/TCP frame.
func parseFrame(f []byte) (wseg, bool) {
	eth, err := header.ParseEthernet(f)
	if err != nil || eth.EtherType() != header.EtherTypeIPv4 {
		return wseg{}, false
	}
	ip, err := header.ParseIPv4(eth.Payload())
	if err != nil || ip.Protocol() != header.IPProtocolTCP {
		return wseg{}, false
	}
	seg, err := header.ParseTCP(ip.Payload(), ip.Src(), ip.Dst())
	if err != nil {
		return wseg{}, false
	}
	g := wseg{src: netip.AddrPortFrom(ip.Src().Netip(), seg.SrcPort()), dst: netip.AddrPortFrom(ip.Dst().Netip(), seg.DstPort()),
		flags: seg.Flags(), seq: seg.Seq(), ack: seg.Ack(), win: seg.Window(), payload: len(seg.Payload()), ipLen: int(ip.TotalLen())}
	if err := header.ParseTCPOptions(seg, &g.opt); err != nil {
		return wseg{}, false
	}
	return g, true
}

func (b *bsim) tap(from byte, f []byte) {
	g, ok := parseFrame(f)
	if !ok {
		if eth, err := header.ParseEthernet(f); err == nil && eth.EtherType() == header.EtherTypeIPv4 {
			if ip, err := header.ParseIPv4(eth.Payload()); err == nil && ip.Protocol() == header.IPProtocolTCP {
				b.t.Errorf("%c sent a malformed TCP segment", from)
			}
		}
		return
	}
	g.i, g.at, g.from, g.frame = len(b.segs), b.s.Elapsed(), from, append([]byte(nil), f...)
	b.segs = append(b.segs, g)
}

// holdA makes A's frames wait for pump (and the filter).
func (b *bsim) holdA() {
	b.s.A.Link.SetPath(netsim.Path{Manual: true})
	b.manA = true
}

// pump delivers or drops (filter) the frames A's Manual path holds.
func (b *bsim) pump() {
	if !b.manA {
		return
	}
	for {
		held := b.s.A.Link.Held()
		if len(held) == 0 {
			return
		}
		g, ok := parseFrame(held[0])
		g.frame = held[0]
		if ok && b.filter != nil && b.filter(g) {
			b.s.A.Link.Drop(0)
		} else {
			b.s.A.Link.Deliver(0)
		}
		if !b.s.Settle(10000) {
			b.t.Fatalf("stacks busy at %v", b.s.Elapsed())
		}
	}
}

// step settles, pumps and moves the clock to the next event (at most to
// end).
func (b *bsim) step(end time.Time) {
	b.t.Helper()
	if !b.s.Settle(10000) {
		b.t.Fatalf("stacks busy at %v", b.s.Elapsed())
	}
	b.pump()
	if b.watch != nil {
		b.watch()
	}
	if err := b.s.Advance(end); err != nil {
		b.t.Fatal(err)
	}
	b.pump()
	if !b.s.Settle(10000) {
		b.t.Fatalf("stacks busy at %v", b.s.Elapsed())
	}
	if b.watch != nil {
		b.watch()
	}
}

// run lets d of virtual time pass, event by event.
func (b *bsim) run(d time.Duration) {
	b.t.Helper()
	end := b.s.Now().Add(d)
	for i := 0; ; i++ {
		if i > 1000000 {
			b.t.Fatalf("no progress at %v", b.s.Elapsed())
		}
		b.step(end)
		if !b.s.Now().Before(end) {
			return
		}
	}
}

// until runs until cond holds (checked after every event), at most limit
// of virtual time; it reports whether cond held.
func (b *bsim) until(limit time.Duration, cond func() bool) bool {
	b.t.Helper()
	end := b.s.Now().Add(limit)
	for i := 0; ; i++ {
		if cond() {
			return true
		}
		if !b.s.Now().Before(end) || i > 1000000 {
			return cond()
		}
		b.step(end)
	}
}

// since returns the segments from index i on sent by from (0: both).
func (b *bsim) since(i int, from byte) []wseg {
	var out []wseg
	for _, g := range b.segs[i:] {
		if from == 0 || g.from == from {
			out = append(out, g)
		}
	}
	return out
}

func (b *bsim) mark() int { return len(b.segs) }

// warmARP resolves ARP both ways with a refused connection (so that the
// first frames of a test leave at once and nothing is queued behind ARP).
func (b *bsim) warmARP() {
	b.t.Helper()
	if _, err := b.s.A.TCP.Connect(netip.AddrPort{}, netip.AddrPortFrom(b.s.B.Addr, 9)); err != nil {
		b.t.Fatal(err)
	}
	b.run(100 * time.Millisecond)
}

// connect opens a connection from A to B:port (listening with backlog)
// and waits for both ends.
func (b *bsim) connect(port uint16) (cli, srv *tcp.Conn, ln *tcp.Listener) {
	b.t.Helper()
	ln, err := b.s.B.TCP.Listen(netip.AddrPortFrom(b.s.B.Addr, port), 8)
	if err != nil {
		b.t.Fatal(err)
	}
	cli, err = b.s.A.TCP.Connect(netip.AddrPort{}, netip.AddrPortFrom(b.s.B.Addr, port))
	if err != nil {
		b.t.Fatal(err)
	}
	if !b.until(10*time.Second, func() bool {
		if srv == nil {
			srv = ln.TryAccept()
		}
		return srv != nil && cli.State() == tcp.Established
	}) {
		b.t.Fatalf("handshake did not complete: A %v", cli.State())
	}
	return cli, srv, ln
}

// writeAll queues data on c, looping the clock until the send buffer took
// it all.
func (b *bsim) writeAll(c *tcp.Conn, data []byte) {
	b.t.Helper()
	n := 0
	if !b.until(60*time.Second, func() bool {
		k, err := c.WriteSome(data[n:])
		if err != nil {
			b.t.Fatalf("write: %v", err)
		}
		n += k
		return n == len(data)
	}) {
		b.t.Fatalf("wrote %d of %d bytes", n, len(data))
	}
}

// reader accumulates what a connection receives.
type reader struct {
	c   *tcp.Conn
	got []byte
	eof bool
	err error
}

// drain reads everything available (at most max bytes; <= 0: all).
func (r *reader) drain(max int) int {
	buf := make([]byte, 64<<10)
	total := 0
	for max <= 0 || total < max {
		want := len(buf)
		if max > 0 {
			want = min(want, max-total)
		}
		n, err := r.c.ReadSome(buf[:want])
		r.got = append(r.got, buf[:n]...)
		total += n
		if errors.Is(err, io.EOF) {
			r.eof = true
			break
		}
		if err != nil {
			r.err = err
			break
		}
		if n == 0 {
			break
		}
	}
	return total
}

// pattern returns n bytes that differ with their offset.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// injectTCP hands ep a TCP segment from src to dst, built with the header
// encoders (valid checksums).
func injectTCP(ep *netsim.Endpoint, dstMAC, srcMAC []byte, src, dst netip.AddrPort, flags header.TCPFlags, seq, ack uint32, win uint16, opts []byte, payload []byte) {
	f := header.TCPFields{SrcPort: src.Port(), DstPort: dst.Port(), Seq: seq, Ack: ack, Flags: flags, Window: win, Options: opts}
	hl := f.HeaderLen()
	frame := make([]byte, 34+hl+len(payload))
	header.EncodeEthernet(frame, header.MAC(dstMAC), header.MAC(srcMAC), header.EtherTypeIPv4)
	header.EncodeIPv4(frame[14:], header.IPv4Fields{TotalLen: uint16(20 + hl + len(payload)), TTL: 64, Protocol: header.IPProtocolTCP,
		Src: src.Addr().As4(), Dst: dst.Addr().As4()})
	copy(frame[34+hl:], payload)
	header.EncodeTCP(frame[34:], f, len(payload), src.Addr().As4(), dst.Addr().As4())
	ep.Inject(frame)
}

// toB injects a segment into B as if from src (an A address).
func (b *bsim) toB(src, dst netip.AddrPort, flags header.TCPFlags, seq, ack uint32, win uint16, opts, payload []byte) {
	injectTCP(b.s.B.Link, b.s.B.Link.MAC(), b.s.A.Link.MAC(), src, dst, flags, seq, ack, win, opts, payload)
	if !b.s.Settle(10000) {
		b.t.Fatal("busy")
	}
}

// toA injects a segment into A as if from src (a B address).
func (b *bsim) toA(src, dst netip.AddrPort, flags header.TCPFlags, seq, ack uint32, win uint16, opts, payload []byte) {
	injectTCP(b.s.A.Link, b.s.A.Link.MAC(), b.s.B.Link.MAC(), src, dst, flags, seq, ack, win, opts, payload)
	if !b.s.Settle(10000) {
		b.t.Fatal("busy")
	}
}

// icmpFragNeeded builds an ICMP "fragmentation needed" (type 3 code 4,
// RFC 1191 4: next-hop MTU in the low 16 bits) from router to the sender
// of quoted (an Ethernet frame that sender sent), quoting its IP header
// and the first 8 bytes of its payload (RFC 792), and returns the frame.
func icmpFragNeeded(quoted []byte, router netip.Addr, mtu uint16, dstMAC, srcMAC []byte) []byte {
	ip := header.IPv4(quoted[14:])
	q := ip[:ip.HeaderLen()+8]
	frame := make([]byte, 14+20+8+len(q))
	header.EncodeEthernet(frame, header.MAC(dstMAC), header.MAC(srcMAC), header.EtherTypeIPv4)
	header.EncodeIPv4(frame[14:], header.IPv4Fields{TotalLen: uint16(20 + 8 + len(q)), TTL: 64, Protocol: header.IPProtocolICMP,
		Src: router.As4(), Dst: ip.Src()})
	copy(frame[42:], q)
	header.EncodeICMPv4(frame[34:], header.ICMPv4DestinationUnreachable, header.ICMPv4FragmentationNeeded, uint32(mtu), len(q))
	return frame
}

// setSeq rewrites the sequence number in a copy of a TCP frame (the TCP
// checksum is not fixed: the copy is only quoted).
func setSeq(frame []byte, seq uint32) []byte {
	f := append([]byte(nil), frame...)
	ip := header.IPv4(f[14:])
	binary.BigEndian.PutUint32(f[14+ip.HeaderLen()+4:], seq)
	return f
}
