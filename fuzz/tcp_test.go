package fuzz

import (
	"encoding/binary"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/verinic/verinic/internal/netsim"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/tcp"
	"github.com/verinic/verinic/proto/tcp/seqnum"
)

// The TCP input harness: host B (the system under test) has one connection
// from host A brought to a chosen state over a deterministic simulated wire
// (internal/netsim, one goroutine, virtual clock). Then B's own frames are
// held (A sees nothing more) and hand-made segments that claim to come from
// A's endpoint are injected into B, with valid checksums.

// Harness states, in the order a fuzz input's first byte picks them.
var harnessStates = []tcp.State{tcp.Listen, tcp.SynReceived, tcp.Established, tcp.FinWait1, tcp.FinWait2, tcp.CloseWait, tcp.LastAck, tcp.TimeWait}

const (
	harnessPort     = 80
	harnessMemLimit = 8 << 20
	harnessMaxConns = 16
)

// sentSeg is a segment B sent, as seen on its wire.
type sentSeg struct {
	flags    header.TCPFlags
	seq, ack uint32
	payload  int
}

type harness struct {
	t     testing.TB
	s     *netsim.Sim
	ln    *tcp.Listener
	peer  *tcp.Conn // A's end (nil for LISTEN)
	conn  *tcp.Conn // B's end (nil for LISTEN and SYN-RECEIVED)
	state tcp.State
	// Where injected segments come from.
	src netip.AddrPort
	// B's segments since the last reset of the log.
	sent []sentSeg
	// The base values relative fields are taken from.
	synAckSeq uint32 // B's ISS in SYN-RECEIVED (from its held SYN-ACK)
	lastRcv   seqnum.Value
	lastUna   seqnum.Value
	haveLast  bool
}

// newHarness builds the two hosts and brings B's connection to state.
func newHarness(t testing.TB, state tcp.State, cfg tcp.Config) *harness {
	t.Helper()
	cfg.MemoryLimit = harnessMemLimit
	cfg.MaxConnections = harnessMaxConns
	if cfg.RecvBuffer == 0 {
		cfg.RecvBuffer, cfg.RecvBufferMax = 64<<10, 64<<10
	}
	cfg.SendBuffer = 256 << 10
	s, err := netsim.NewSim(netsim.Options{AB: netsim.Path{Delay: time.Millisecond}, BA: netsim.Path{Delay: time.Millisecond}, TCP: cfg, Seed: 1, Buffers: 256})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, s: s, state: state}
	t.Cleanup(s.Close)
	s.B.Link.SetTap(h.tap)
	if h.ln, err = s.B.TCP.Listen(netip.AddrPortFrom(s.B.Addr, harnessPort), 4); err != nil {
		t.Fatal(err)
	}
	if state == tcp.Listen {
		h.src = netip.AddrPortFrom(s.A.Addr, 40000)
		// Resolve ARP both ways, so B's answers leave at once.
		if _, err := s.A.TCP.Connect(netip.AddrPort{}, netip.AddrPortFrom(s.B.Addr, 9)); err != nil {
			t.Fatal(err)
		}
		h.run(50 * time.Millisecond)
		h.hold()
		return h
	}
	if state == tcp.SynReceived {
		// B's SYN-ACK is held, so B stays in SYN-RECEIVED. Resolve ARP
		// first with a refused connection.
		if _, err := s.A.TCP.Connect(netip.AddrPort{}, netip.AddrPortFrom(s.B.Addr, 9)); err != nil {
			t.Fatal(err)
		}
		h.run(50 * time.Millisecond)
		h.hold()
	}
	if h.peer, err = s.A.TCP.Connect(netip.AddrPort{}, netip.AddrPortFrom(s.B.Addr, harnessPort)); err != nil {
		t.Fatal(err)
	}
	h.src = h.peer.LocalAddr()
	if state == tcp.SynReceived {
		h.run(5 * time.Millisecond)
		for _, g := range h.sent {
			if g.flags.Has(header.TCPFlagSYN | header.TCPFlagACK) {
				h.synAckSeq = g.seq
			}
		}
		h.expect(tcp.SynReceived)
		return h
	}
	h.run(20 * time.Millisecond)
	if h.conn = h.ln.TryAccept(); h.conn == nil {
		t.Fatalf("no connection accepted (A: %v)", h.peer.State())
	}
	// Data both ways: B has unread data and, below, data in flight.
	h.peer.WriteSome(make([]byte, 3000))
	h.run(20 * time.Millisecond)
	switch state {
	case tcp.Established:
		h.hold()
		h.conn.WriteSome(make([]byte, 20000))
	case tcp.FinWait1:
		h.hold()
		h.conn.WriteSome(make([]byte, 5000))
		h.conn.CloseWrite()
	case tcp.FinWait2:
		h.conn.CloseWrite()
		h.run(20 * time.Millisecond)
		h.hold()
	case tcp.CloseWait:
		h.peer.CloseWrite()
		h.run(20 * time.Millisecond)
		h.hold()
		h.conn.WriteSome(make([]byte, 5000))
	case tcp.LastAck:
		h.peer.CloseWrite()
		h.run(20 * time.Millisecond)
		h.hold()
		h.conn.CloseWrite()
	case tcp.TimeWait:
		h.conn.CloseWrite()
		h.run(20 * time.Millisecond)
		h.peer.CloseWrite()
		h.run(20 * time.Millisecond)
		h.hold()
	}
	h.run(0)
	h.expect(state)
	h.sent = h.sent[:0]
	return h
}

func (h *harness) expect(state tcp.State) {
	h.t.Helper()
	got := h.bState()
	if got != state {
		h.t.Fatalf("harness: B is in %v, want %v", got, state)
	}
}

// bState is the state of B's connection (the listener's, without one).
func (h *harness) bState() tcp.State {
	if h.conn != nil {
		return h.conn.State()
	}
	for _, in := range h.s.B.TCP.Connections() {
		if in.Remote == h.src {
			return in.State
		}
	}
	if h.state == tcp.Listen {
		return tcp.Listen
	}
	return tcp.Closed
}

// hold keeps every frame B sends from now on.
func (h *harness) hold() { h.s.B.Link.SetPath(netsim.Path{Manual: true}) }

func (h *harness) tap(frame []byte) {
	if len(frame) < 34 || binary.BigEndian.Uint16(frame[12:]) != header.EtherTypeIPv4 {
		return
	}
	ip, err := header.ParseIPv4(frame[14:])
	if err != nil || ip.Protocol() != header.IPProtocolTCP {
		return
	}
	seg, err := header.ParseTCP(ip.Payload(), ip.Src(), ip.Dst())
	if err != nil {
		h.t.Errorf("B sent a bad TCP segment: %v", err)
		return
	}
	h.sent = append(h.sent, sentSeg{flags: seg.Flags(), seq: seg.Seq(), ack: seg.Ack(), payload: len(seg.Payload())})
}

// run settles and lets d of virtual time pass, event by event (bounded).
func (h *harness) run(d time.Duration) {
	h.t.Helper()
	end := h.s.Now().Add(d)
	for i := 0; ; i++ {
		if i > 100000 {
			h.t.Fatalf("no progress in virtual time at %v", h.s.Elapsed())
		}
		if err := h.s.Advance(end); err != nil {
			h.t.Fatal(err)
		}
		if !h.s.Now().Before(end) {
			break
		}
	}
	if !h.s.Settle(10000) {
		h.t.Fatalf("stacks still busy at %v", h.s.Elapsed())
	}
}

// seg is a segment to inject.
type seg struct {
	flags    header.TCPFlags
	seq, ack uint32
	window   uint16
	urgent   uint16
	options  []byte
	payload  []byte
}

// inject puts s on B's wire from h.src, then settles.
func (h *harness) inject(s seg) {
	h.t.Helper()
	opts := s.options
	if len(opts) > 40 {
		opts = opts[:40]
	}
	f := header.TCPFields{SrcPort: h.src.Port(), DstPort: harnessPort, Seq: s.seq, Ack: s.ack, Flags: s.flags,
		Window: s.window, Urgent: s.urgent, Options: opts}
	hl := f.HeaderLen()
	frame := make([]byte, 34+hl+len(s.payload))
	header.EncodeEthernet(frame, header.MAC(h.s.B.Link.MAC()), header.MAC(h.s.A.Link.MAC()), header.EtherTypeIPv4)
	header.EncodeIPv4(frame[14:], header.IPv4Fields{TotalLen: uint16(20 + hl + len(s.payload)), TTL: 64, Protocol: header.IPProtocolTCP,
		Src: h.src.Addr().As4(), Dst: h.s.B.Addr.As4()})
	copy(frame[34+hl:], s.payload)
	header.EncodeTCP(frame[34:], f, len(s.payload), h.src.Addr().As4(), h.s.B.Addr.As4())
	h.s.B.Link.Inject(frame)
	if !h.s.Settle(10000) {
		h.t.Fatalf("stacks still busy after a segment (hang) at %v", h.s.Elapsed())
	}
}

// base returns the live values relative fields are taken from: B's
// RCV.NXT, SND.UNA and SND.NXT.
func (h *harness) base() (rcvNxt, sndUna, sndNxt uint32) {
	if h.conn != nil {
		sn := h.conn.Snapshot()
		return uint32(sn.RcvNxt), uint32(sn.SndUna), uint32(sn.SndNxt)
	}
	if h.peer != nil {
		sn := h.peer.Snapshot()
		return uint32(sn.SndNxt), h.synAckSeq, h.synAckSeq + 1
	}
	return 1000, 0, 0
}

// check verifies the properties after a segment: memory and connections
// bounded, the protocol's accounting and the connection's invariants, and
// RCV.NXT and SND.UNA that never move back.
func (h *harness) check() {
	h.t.Helper()
	for _, p := range []*tcp.Protocol{h.s.A.TCP, h.s.B.TCP} {
		if m := p.MemoryInUse(); m > harnessMemLimit {
			h.t.Fatalf("memory in use %d over the limit %d", m, harnessMemLimit)
		}
		if err := p.CheckInvariants(); err != nil {
			h.t.Fatal(err)
		}
	}
	if n := len(h.s.B.TCP.Connections()); n > harnessMaxConns+1 {
		h.t.Fatalf("%d connections", n)
	}
	if h.conn == nil {
		return
	}
	if err := h.conn.CheckInvariants(); err != nil {
		h.t.Fatal(err)
	}
	sn := h.conn.Snapshot()
	if sn.Gone {
		return
	}
	if h.haveLast && (sn.RcvNxt.LessThan(h.lastRcv) || sn.SndUna.LessThan(h.lastUna)) {
		h.t.Fatalf("RCV.NXT %d -> %d, SND.UNA %d -> %d: moved back", h.lastRcv, sn.RcvNxt, h.lastUna, sn.SndUna)
	}
	h.lastRcv, h.lastUna, h.haveLast = sn.RcvNxt, sn.SndUna, true
}

// decodeSeg reads one segment description from b (16 bytes, then options
// and payload) and returns it with the rest of b and the virtual time to
// let pass after it.
//
//	0     flags (all eight bits)
//	1     bit 0: seq absolute, bit 1: ack absolute, bits 2-3: ack base
//	      (SND.UNA, SND.NXT, SND.UNA+1), bits 4-7: options length / 4 * ...
//	2-5   seq: absolute, or a signed offset from RCV.NXT
//	6-9   ack: absolute, or a signed offset from the base
//	10-11 window, 12 payload length, 13 options length (0-40),
//	14    virtual milliseconds to pass afterwards, 15 urgent pointer
func (h *harness) decodeSeg(b []byte) (seg, time.Duration, []byte, bool) {
	if len(b) < 16 {
		return seg{}, 0, nil, false
	}
	rcvNxt, sndUna, sndNxt := h.base()
	s := seg{flags: header.TCPFlags(b[0]), window: binary.BigEndian.Uint16(b[10:]), urgent: uint16(b[15])}
	mode := b[1]
	seq, ack := binary.BigEndian.Uint32(b[2:]), binary.BigEndian.Uint32(b[6:])
	if mode&1 == 0 {
		seq = rcvNxt + seq
	}
	if mode&2 == 0 {
		switch (mode >> 2) & 3 {
		case 0, 3:
			ack = sndUna + ack
		case 1:
			ack = sndNxt + ack
		case 2:
			ack = sndUna + 1 + ack
		}
	}
	s.seq, s.ack = seq, ack
	plen, olen := int(b[12]), min(int(b[13]), 40)
	adv := time.Duration(b[14]) * time.Millisecond
	b = b[16:]
	olen = min(olen, len(b))
	s.options = b[:olen]
	b = b[olen:]
	plen = min(plen, len(b))
	s.payload = b[:plen]
	return s, adv, b[plen:], true
}

// runTCPInput is the fuzz body: the first byte picks the state, the rest is
// up to 16 segments.
func runTCPInput(t *testing.T, data []byte) {
	if len(data) == 0 {
		return
	}
	state := harnessStates[int(data[0])%len(harnessStates)]
	h := newHarness(t, state, tcp.Config{ChallengeAckLimit: 20})
	h.check()
	rest := data[1:]
	for i := 0; i < 16; i++ {
		s, adv, r, ok := h.decodeSeg(rest)
		if !ok {
			break
		}
		rest = r
		h.inject(s)
		h.check()
		if adv > 0 {
			h.run(adv)
			h.check()
		}
	}
	// Let every timer that is due within a minute fire: no hang, and the
	// invariants still hold.
	h.run(61 * time.Second)
	h.check()
}

// segBytes encodes a segment description as decodeSeg reads it.
func segBytes(flags header.TCPFlags, mode uint8, seq, ack int32, window uint16, advMs uint8, options, payload []byte) []byte {
	b := make([]byte, 16, 16+len(options)+len(payload))
	b[0], b[1] = uint8(flags), mode
	binary.BigEndian.PutUint32(b[2:], uint32(seq))
	binary.BigEndian.PutUint32(b[6:], uint32(ack))
	binary.BigEndian.PutUint16(b[10:], window)
	b[12], b[13], b[14] = uint8(len(payload)), uint8(len(options)), advMs
	return append(append(b, options...), payload...)
}

// tcpSeeds are the seed inputs: per state, an in-order data segment, an
// in-window RST, a SYN, an ACK of unsent data, a FIN and options.
func tcpSeeds() [][]byte {
	const (
		A = header.TCPFlagACK
		S = header.TCPFlagSYN
		R = header.TCPFlagRST
		F = header.TCPFlagFIN
		P = header.TCPFlagPSH
	)
	ts := []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0}
	sack := []byte{1, 1, 5, 10, 0, 0, 0, 0, 0, 0, 0, 10}
	var out [][]byte
	for i := range harnessStates {
		out = append(out,
			append([]byte{byte(i)}, segBytes(A|P, 0, 0, 0, 512, 1, nil, []byte("hello"))...),
			append([]byte{byte(i)}, segBytes(R, 0, 100, 0, 0, 0, nil, nil)...),
			append([]byte{byte(i)}, segBytes(R|A, 0, 0, 0, 0, 0, nil, nil)...),
			append([]byte{byte(i)}, segBytes(S, 0, -1, 0, 512, 0, []byte{2, 4, 5, 0xb4}, nil)...),
			append([]byte{byte(i)}, segBytes(A, 0, 0, 1<<20, 512, 5, nil, nil)...),
			append([]byte{byte(i)}, append(segBytes(F|A, 0, 0, 0, 512, 200, ts, []byte("x")), segBytes(A, 0, 2, 0, 0, 0, sack, nil)...)...),
			append([]byte{byte(i)}, segBytes(A, 0, 1<<30, 0, 512, 0, nil, []byte("far"))...),
		)
	}
	// A SYN to the listener with every option, then the cookie-less ACK.
	out = append(out, append([]byte{0}, append(segBytes(S, 1, 5000, 0, 65535, 0, []byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}, nil),
		segBytes(A, 1, 5001, 1, 512, 0, nil, nil)...)...))
	return out
}

// FuzzTCPInput injects fuzzer-chosen segments (flags, sequence and
// acknowledgment numbers relative to the live values or absolute, window,
// options, payload; valid checksums) into a connection in any of eight
// states, and checks after each that nothing panicked or hung (bounded
// polls), memory and connections stay bounded, and the connection's
// invariants hold (tcp.Conn.CheckInvariants, RCV.NXT and SND.UNA never move
// back, tcp.Protocol.CheckInvariants).
//
// Its seeds are the committed corpus in testdata/fuzz/FuzzTCPInput (named
// by state; TestTCPInputCorpus keeps it equal to tcpSeeds), which plain go
// test runs.
func FuzzTCPInput(f *testing.F) {
	f.Fuzz(runTCPInput)
}

// pureAcks counts the segments B sent since the log was reset that carry
// an ACK and no SYN, FIN or RST (a challenge ACK may ride on a data
// segment that the congestion window lets out at the same time), and
// returns the last one.
func (h *harness) pureAcks() (n int, last sentSeg) {
	for _, g := range h.sent {
		if g.flags&^header.TCPFlagPSH == header.TCPFlagACK {
			n++
			last = g
		}
	}
	return n, last
}

func newEstablished(t *testing.T, limit int) (*harness, tcp.Snapshot) {
	h := newHarness(t, tcp.Established, tcp.Config{ChallengeAckLimit: limit})
	h.run(0)
	h.sent = h.sent[:0]
	return h, h.conn.Snapshot()
}

// RFC 5961 3.2: an RST inside the window but not at RCV.NXT is answered with
// a challenge ACK (<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>) and the connection
// goes on.
func TestRFC5961InWindowRSTGetsChallengeACK(t *testing.T) {
	h, sn := newEstablished(t, 100)
	for _, off := range []uint32{1, 1000, 60000} {
		h.inject(seg{flags: header.TCPFlagRST, seq: uint32(sn.RcvNxt) + off})
	}
	n, last := h.pureAcks()
	if n != 3 || last.ack != uint32(sn.RcvNxt) || last.seq != uint32(h.conn.Snapshot().SndNxt) {
		t.Fatalf("%d pure ACKs (want 3), last seq %d ack %d (want %d, %d)", n, last.seq, last.ack, h.conn.Snapshot().SndNxt, sn.RcvNxt)
	}
	if st := h.conn.State(); st != tcp.Established {
		t.Fatalf("connection in %v after in-window RSTs", st)
	}
	c := h.s.B.TCP.Counters()
	if c.Get(tcp.TCPRSTInWindow) != 3 || c.Get(tcp.TCPChallengeACK) != 3 {
		t.Fatalf("TCPRSTInWindow %d, TCPChallengeACK %d", c.Get(tcp.TCPRSTInWindow), c.Get(tcp.TCPChallengeACK))
	}
	// An RST outside the window is ignored silently.
	h.sent = h.sent[:0]
	h.inject(seg{flags: header.TCPFlagRST, seq: uint32(sn.RcvNxt) + 1<<30})
	if len(h.sent) != 0 || h.conn.State() != tcp.Established {
		t.Fatalf("out-of-window RST: %d segments sent, state %v", len(h.sent), h.conn.State())
	}
}

// RFC 5961 3.2 (and RFC 9293 3.10.7.4): an RST at exactly RCV.NXT resets
// the connection.
func TestRFC5961RSTAtRcvNxtResets(t *testing.T) {
	h, sn := newEstablished(t, 100)
	h.inject(seg{flags: header.TCPFlagRST, seq: uint32(sn.RcvNxt)})
	if st := h.conn.State(); st != tcp.Closed {
		t.Fatalf("state %v after an RST at RCV.NXT", st)
	}
	if err := h.conn.Err(); err == nil || err.Error() != tcp.ErrConnReset.Error() {
		t.Fatalf("error %v, want %v", err, tcp.ErrConnReset)
	}
	if n, _ := h.pureAcks(); n != 0 {
		t.Fatalf("%d ACKs answered the reset", n)
	}
}

// RFC 5961 4.2: a SYN in a synchronized state, wherever it lies, gets a
// challenge ACK; the connection goes on.
func TestRFC5961SYNInEstablishedGetsChallengeACK(t *testing.T) {
	h, sn := newEstablished(t, 100)
	h.inject(seg{flags: header.TCPFlagSYN, seq: uint32(sn.RcvNxt) + 5, window: 1000})
	h.inject(seg{flags: header.TCPFlagSYN, seq: uint32(sn.RcvNxt) - 1<<20, window: 1000})
	n, last := h.pureAcks()
	if n != 2 || last.ack != uint32(sn.RcvNxt) {
		t.Fatalf("%d pure ACKs (want 2), last ack %d (want %d)", n, last.ack, sn.RcvNxt)
	}
	if st := h.conn.State(); st != tcp.Established {
		t.Fatalf("connection in %v after a SYN", st)
	}
	if got := h.s.B.TCP.Counters().Get(tcp.TCPSYNChallenge); got != 2 {
		t.Fatalf("TCPSYNChallenge %d", got)
	}
}

// RFC 9293 3.10.7.4 fifth / RFC 5961 5.2: an ACK of data never sent is
// dropped and answered with an ACK; SND.UNA does not move.
func TestRFC5961AckOfUnsentDataDropped(t *testing.T) {
	h, sn := newEstablished(t, 100)
	h.inject(seg{flags: header.TCPFlagACK, seq: uint32(sn.RcvNxt), ack: uint32(sn.SndMax) + 10, window: 1000})
	n, last := h.pureAcks()
	if n != 1 || last.ack != uint32(sn.RcvNxt) {
		t.Fatalf("%d pure ACKs (want 1), ack %d", n, last.ack)
	}
	if got := h.conn.Snapshot(); got.SndUna != sn.SndUna || got.State != tcp.Established {
		t.Fatalf("SND.UNA %d -> %d, state %v", sn.SndUna, got.SndUna, got.State)
	}
	if got := h.s.B.TCP.Counters().Get(tcp.TCPACKUnacceptable); got != 1 {
		t.Fatalf("TCPACKUnacceptable %d", got)
	}
	// Data riding on such an ACK is not taken either.
	h.inject(seg{flags: header.TCPFlagACK, seq: uint32(sn.RcvNxt), ack: uint32(sn.SndMax) + 10, window: 1000, payload: []byte("no")})
	if got := h.conn.Snapshot().RcvNxt; got != sn.RcvNxt {
		t.Fatalf("RCV.NXT moved to %d with data on an unacceptable ACK", got)
	}
}

// RFC 9293 3.10.7.4 first: a segment with data outside the receive window
// is dropped and answered with an ACK.
func TestRFC5961DataOutsideWindowDropped(t *testing.T) {
	h, sn := newEstablished(t, 100)
	wnd := uint32(sn.RcvAdv - sn.RcvNxt)
	for _, seq := range []uint32{uint32(sn.RcvNxt) + wnd + 100, uint32(sn.RcvNxt) - 5000} {
		h.inject(seg{flags: header.TCPFlagACK, seq: seq, ack: uint32(sn.SndUna), window: 1000, payload: []byte("outside")})
	}
	n, last := h.pureAcks()
	if n != 2 || last.ack != uint32(sn.RcvNxt) {
		t.Fatalf("%d pure ACKs (want 2), ack %d (want %d)", n, last.ack, sn.RcvNxt)
	}
	got := h.conn.Snapshot()
	if got.RcvNxt != sn.RcvNxt || got.RcvBuf != sn.RcvBuf {
		t.Fatalf("RCV.NXT %d -> %d, unread %d -> %d", sn.RcvNxt, got.RcvNxt, sn.RcvBuf, got.RcvBuf)
	}
}

// RFC 5961 7: challenge ACKs are rate limited (ChallengeAckLimit per second,
// stack-wide); the budget comes back the next second.
func TestRFC5961ChallengeACKRateLimit(t *testing.T) {
	const limit = 5
	h, sn := newEstablished(t, limit)
	for i := 0; i < 20; i++ {
		h.inject(seg{flags: header.TCPFlagRST, seq: uint32(sn.RcvNxt) + uint32(i) + 1})
		h.inject(seg{flags: header.TCPFlagSYN, seq: uint32(sn.RcvNxt) + uint32(i) + 1})
	}
	n, _ := h.pureAcks()
	c := h.s.B.TCP.Counters()
	if n != limit || c.Get(tcp.TCPChallengeACK) != limit || c.Get(tcp.TCPChallengeACKLimited) != 40-limit {
		t.Fatalf("%d ACKs sent, TCPChallengeACK %d, limited %d; want %d, %d, %d", n, c.Get(tcp.TCPChallengeACK), c.Get(tcp.TCPChallengeACKLimited), limit, limit, 40-limit)
	}
	if st := h.conn.State(); st != tcp.Established {
		t.Fatalf("state %v", st)
	}
	h.run(time.Second)
	h.sent = h.sent[:0]
	h.inject(seg{flags: header.TCPFlagRST, seq: uint32(sn.RcvNxt) + 1})
	if n, _ := h.pureAcks(); n != 1 {
		t.Fatalf("%d challenge ACKs a second later, want 1 (sent %+v)", n, h.sent)
	}
}

var updateTCPCorpus = flag.Bool("update-tcp-corpus", false, "rewrite testdata/fuzz/FuzzTCPInput seeds")

// TestTCPInputCorpus writes the seeds as the committed corpus of
// FuzzTCPInput (with -update-tcp-corpus), or checks that the corpus holds
// every seed, so that go test runs them and a fuzzing run starts from them.
func TestTCPInputCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzTCPInput")
	for i, s := range tcpSeeds() {
		name := filepath.Join(dir, fmt.Sprintf("seed-%02d-%v", i, harnessStates[int(s[0])%len(harnessStates)]))
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if *updateTCPCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(name)
		if err != nil || string(got) != body {
			t.Errorf("corpus file %s missing or stale (rerun with -update-tcp-corpus): %v", name, err)
		}
	}
}
