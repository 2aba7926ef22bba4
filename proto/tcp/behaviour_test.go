package tcp_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/verinic/verinic/internal/netsim"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/tcp"
)

// Protocol-behaviour tests: each drives two hosts on the deterministic
// netsim (virtual time only), looks at the segments on the wire and checks
// one clause of an RFC, named in the test's comment. The helpers are in
// behaviour_helpers_test.go.

func delayPaths(d time.Duration) netsim.Options {
	return netsim.Options{AB: netsim.Path{Delay: d}, BA: netsim.Path{Delay: d}}
}

func firstSeg(t *testing.T, segs []wseg, what string, ok func(wseg) bool) wseg {
	t.Helper()
	for _, g := range segs {
		if ok(g) {
			return g
		}
	}
	t.Fatalf("no %s on the wire", what)
	return wseg{}
}

// RFC 9293 3.7.1 (MSS), RFC 2018 2 (SACK-permitted), RFC 7323 1.3, 2.2,
// 3.2 (window scale and timestamps only when both SYNs carry them; TSecr 0
// in a SYN): a SYN offers everything; a SYN-ACK echoes only what the SYN
// offered; a segment without timestamps negotiated carries none; without an
// MSS option the peer's MSS is 536 (RFC 9293 3.7.1, RFC 1122 4.2.2.6).
func TestBehaviourHandshakeOptions(t *testing.T) {
	t.Run("all", func(t *testing.T) {
		b := newBSim(t, delayPaths(time.Millisecond))
		cli, srv, _ := b.connect(80)
		b.writeAll(cli, make([]byte, 100))
		b.run(50 * time.Millisecond)
		syn := firstSeg(t, b.segs, "SYN", func(g wseg) bool { return g.from == 'A' && g.flags == fS })
		o := syn.opt
		if !o.HasMSS || o.MSS != 1460 || !o.SACKPermitted || !o.HasTimestamps || o.TSEcr != 0 || !o.HasWindowScale || o.WindowScale != 7 {
			t.Fatalf("SYN options %+v, want MSS 1460, SACK-permitted, TS (TSecr 0), WS 7", o)
		}
		sa := firstSeg(t, b.segs, "SYN-ACK", func(g wseg) bool { return g.from == 'B' && g.flags == fS|fA })
		o = sa.opt
		if !o.HasMSS || o.MSS != 1460 || !o.SACKPermitted || !o.HasTimestamps || o.TSEcr != syn.opt.TSVal || !o.HasWindowScale {
			t.Fatalf("SYN-ACK options %+v, want MSS, SACK-permitted, TS echoing %d, WS", o, syn.opt.TSVal)
		}
		d := firstSeg(t, b.segs, "data", func(g wseg) bool { return g.from == 'A' && g.payload > 0 })
		if !d.opt.HasTimestamps || d.opt.HasMSS || d.opt.HasWindowScale || d.opt.SACKPermitted {
			t.Fatalf("data segment options %+v, want timestamps only", d.opt)
		}
		if in := srv.Info(); !in.SACK || !in.Timestamps || in.WScale[0] != 7 || in.MSS != 1448 {
			t.Fatalf("B negotiated %+v", in)
		}
	})
	t.Run("sack-only", func(t *testing.T) {
		// A offers SACK but neither timestamps nor window scaling: B's
		// SYN-ACK carries MSS and SACK-permitted only, and no later
		// segment carries timestamps.
		o := delayPaths(time.Millisecond)
		o.TCP = tcp.Config{DisableTimestamps: true, DisableWindowScaling: true}
		o.TCPB = &tcp.Config{}
		b := newBSim(t, o)
		cli, srv, _ := b.connect(80)
		b.writeAll(cli, make([]byte, 3000))
		b.writeAll(srv, make([]byte, 3000))
		b.run(100 * time.Millisecond)
		syn := firstSeg(t, b.segs, "SYN", func(g wseg) bool { return g.from == 'A' && g.flags == fS })
		if !syn.opt.HasMSS || !syn.opt.SACKPermitted || syn.opt.HasTimestamps || syn.opt.HasWindowScale {
			t.Fatalf("SYN options %+v", syn.opt)
		}
		sa := firstSeg(t, b.segs, "SYN-ACK", func(g wseg) bool { return g.from == 'B' && g.flags == fS|fA })
		if !sa.opt.HasMSS || !sa.opt.SACKPermitted || sa.opt.HasTimestamps || sa.opt.HasWindowScale {
			t.Fatalf("SYN-ACK options %+v, want MSS and SACK-permitted only", sa.opt)
		}
		for _, g := range b.segs[sa.i:] {
			if g.opt.HasTimestamps || g.opt.HasWindowScale {
				t.Fatalf("%v carries %+v after a SYN without timestamps/window scale", g, g.opt)
			}
			if g.from == 'B' && g.payload > 1460 {
				t.Fatalf("%v: longer than the MSS", g)
			}
		}
		if in := srv.Info(); !in.SACK || in.Timestamps || in.WScale != [2]int{-1, -1} || in.MSS != 1460 {
			t.Fatalf("B negotiated %+v", in)
		}
	})
	t.Run("none", func(t *testing.T) {
		// A hand-made SYN without any option: the SYN-ACK offers MSS
		// only, and B's data then has no options and at most 536 bytes.
		b := newBSim(t, delayPaths(time.Millisecond))
		b.warmARP()
		ln, err := b.s.B.TCP.Listen(netip.AddrPortFrom(b.s.B.Addr, 80), 4)
		if err != nil {
			t.Fatal(err)
		}
		b.s.B.Link.SetPath(netsim.Path{Manual: true}) // A's stack must not see B's answers
		src := netip.AddrPortFrom(b.s.A.Addr, 40000)
		dst := netip.AddrPortFrom(b.s.B.Addr, 80)
		m := b.mark()
		b.toB(src, dst, fS, 1000, 0, 65535, nil, nil)
		sa := firstSeg(t, b.since(m, 'B'), "SYN-ACK", func(g wseg) bool { return g.flags == fS|fA })
		if !sa.opt.HasMSS || sa.opt.SACKPermitted || sa.opt.HasTimestamps || sa.opt.HasWindowScale || sa.ack != 1001 {
			t.Fatalf("SYN-ACK %v options %+v, want MSS only, ACK 1001", sa, sa.opt)
		}
		b.toB(src, dst, fA, 1001, sa.seq+1, 65535, nil, nil)
		srv := ln.TryAccept()
		if srv == nil {
			t.Fatal("no connection")
		}
		if in := srv.Info(); in.MSS != 536 || in.SACK || in.Timestamps {
			t.Fatalf("B's connection %+v, want MSS 536 and no options", in)
		}
		m = b.mark()
		b.writeAll(srv, make([]byte, 3000))
		b.run(time.Millisecond)
		data := 0
		for _, g := range b.since(m, 'B') {
			if g.payload == 0 {
				continue
			}
			data++
			if g.payload > 536 || len(g.frame) > 14+20+20+536 || g.opt.HasTimestamps || g.opt.SACKBlockCount > 0 {
				t.Fatalf("%v (%+v): want at most 536 bytes and no options", g, g.opt)
			}
		}
		if data < 5 {
			t.Fatalf("%d data segments for 3000 bytes", data)
		}
	})
}

// RFC 9293 3.5 figure 7 (simultaneous open: both SYNs cross, each side
// goes SYN-SENT -> SYN-RECEIVED and sends SYN,ACK with its ISS) and figure
// 13 (simultaneous close: FIN-WAIT-1 -> CLOSING -> TIME-WAIT on both).
func TestBehaviourSimultaneousOpenClose(t *testing.T) {
	b := newBSim(t, delayPaths(5*time.Millisecond))
	b.warmARP()
	rsts := b.s.A.TCP.Counters().Get(tcp.OutRsts) + b.s.B.TCP.Counters().Get(tcp.OutRsts)
	pa := netip.AddrPortFrom(b.s.A.Addr, 5000)
	pb := netip.AddrPortFrom(b.s.B.Addr, 6000)
	m := b.mark()
	ca, err := b.s.A.TCP.Connect(pa, pb)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.s.B.TCP.Connect(pb, pa)
	if err != nil {
		t.Fatal(err)
	}
	var states [2][]tcp.State
	b.watch = func() {
		for i, c := range []*tcp.Conn{ca, cb} {
			if s := c.State(); len(states[i]) == 0 || states[i][len(states[i])-1] != s {
				states[i] = append(states[i], s)
			}
		}
	}
	if !b.until(5*time.Second, func() bool { return ca.State() == tcp.Established && cb.State() == tcp.Established }) {
		t.Fatalf("states %v %v; segments %v", ca.State(), cb.State(), b.since(m, 0))
	}
	for _, side := range []byte{'A', 'B'} {
		segs := b.since(m, side)
		if len(segs) < 2 || segs[0].flags != fS || segs[1].flags != fS|fA || segs[1].seq != segs[0].seq {
			t.Fatalf("%c sent %v, want SYN then SYN,ACK with the same ISS", side, segs)
		}
	}
	want := []tcp.State{tcp.SynSent, tcp.SynReceived, tcp.Established}
	for i := range states {
		if !slices.Equal(states[i], want) {
			t.Fatalf("side %d went %v, want %v", i, states[i], want)
		}
		states[i] = states[i][len(states[i])-1:]
	}
	// Data both ways.
	ra, rb := &reader{c: ca}, &reader{c: cb}
	b.writeAll(ca, []byte("from A"))
	b.writeAll(cb, []byte("from B"))
	b.until(time.Second, func() bool { ra.drain(0); rb.drain(0); return len(ra.got) == 6 && len(rb.got) == 6 })
	if string(ra.got) != "from B" || string(rb.got) != "from A" {
		t.Fatalf("A read %q, B read %q", ra.got, rb.got)
	}
	b.run(100 * time.Millisecond)
	// Both close at the same instant: the FINs cross.
	ca.Close()
	cb.Close()
	if !b.until(5*time.Second, func() bool { return ca.State() == tcp.TimeWait && cb.State() == tcp.TimeWait }) {
		t.Fatalf("states %v %v", ca.State(), cb.State())
	}
	want = []tcp.State{tcp.Established, tcp.FinWait1, tcp.Closing, tcp.TimeWait}
	for i := range states {
		if !slices.Equal(states[i], want) {
			t.Fatalf("side %d went %v, want %v", i, states[i], want)
		}
	}
	if n := b.s.A.TCP.Counters().Get(tcp.OutRsts) + b.s.B.TCP.Counters().Get(tcp.OutRsts); n != rsts {
		t.Fatalf("%d RSTs", n-rsts)
	}
}

func hasConn(p *tcp.Protocol, local, remote netip.AddrPort) bool {
	for _, in := range p.Connections() {
		if in.Local == local && in.Remote == remote {
			return true
		}
	}
	return false
}

// RFC 9293 3.4.2 / 3.10.7.4: TIME-WAIT lasts 2 MSL (Config.TimeWait), then
// CLOSED and gone; a retransmitted FIN is acknowledged and restarts the
// timer (RFC 9293 3.10.7.4 eighth, TIME-WAIT; RFC 1122 4.2.2.13); an RST is
// ignored (RFC 1337).
func TestBehaviourTimeWait(t *testing.T) {
	const tw = 2 * time.Second
	o := delayPaths(5 * time.Millisecond)
	o.TCP = tcp.Config{TimeWait: tw}
	b := newBSim(t, o)
	cli, srv, _ := b.connect(80)
	var twAt, closedAt time.Duration
	b.watch = func() {
		if s := cli.State(); s == tcp.TimeWait && twAt == 0 {
			twAt = b.s.Elapsed()
		} else if s == tcp.Closed && closedAt == 0 {
			closedAt = b.s.Elapsed()
		}
	}
	cli.Close()
	rs := &reader{c: srv}
	b.until(time.Second, func() bool { rs.drain(0); return rs.eof })
	srv.Close()
	if !b.until(time.Second, func() bool { return twAt != 0 }) {
		t.Fatalf("A in %v", cli.State())
	}
	local, remote := cli.LocalAddr(), cli.RemoteAddr()
	fin := firstSeg(t, b.segs, "B's FIN", func(g wseg) bool { return g.from == 'B' && g.is(fF) })
	if !hasConn(b.s.A.TCP, local, remote) {
		t.Fatal("TIME-WAIT connection missing from Connections()")
	}

	// An RST at RCV.NXT: ignored (RFC 1337).
	b.run(500 * time.Millisecond)
	b.toA(remote, local, fR, fin.seq+1, 0, 0, nil, nil)
	if s := cli.State(); s != tcp.TimeWait {
		t.Fatalf("RST in TIME-WAIT: state %v", s)
	}
	if n := b.s.A.TCP.Counters().Get(tcp.TCPTimeWaitRST); n != 1 {
		t.Fatalf("TCPTimeWaitRST %d", n)
	}

	// The FIN again, 1 s into TIME-WAIT: an ACK, and 2 MSL from now.
	b.run(twAt + time.Second - b.s.Elapsed())
	m := b.mark()
	again := b.s.Elapsed()
	b.s.A.Link.Inject(fin.frame)
	b.run(0)
	acks := b.since(m, 'A')
	if len(acks) != 1 || !acks[0].pureAck() || acks[0].ack != fin.seq+1 {
		t.Fatalf("retransmitted FIN answered with %v, want one ACK of %d", acks, fin.seq+1)
	}
	b.until(10*time.Second, func() bool { return closedAt != 0 })
	if closedAt != again+tw {
		t.Fatalf("TIME-WAIT entered at %v, FIN again at %v, CLOSED at %v: want %v", twAt, again, closedAt, again+tw)
	}
	if hasConn(b.s.A.TCP, local, remote) {
		t.Fatal("closed connection still in Connections()")
	}
	t.Logf("TIME-WAIT at %v, FIN retransmitted at %v, CLOSED at %v", twAt, again, closedAt)
}

// RFC 6191 2 (and RFC 9293 3.10.7.4 TIME-WAIT, RFC 1122 4.2.2.13): a new
// SYN for the 4-tuple of a connection in TIME-WAIT whose timestamp (or,
// without timestamps, sequence number) is above the old incarnation's ends
// TIME-WAIT and opens a new connection (TCPTimeWaitReuse).
func TestBehaviourTimeWaitReuse(t *testing.T) {
	for _, ts := range []bool{true, false} {
		name := "timestamps"
		if !ts {
			name = "sequence"
		}
		t.Run(name, func(t *testing.T) {
			o := delayPaths(5 * time.Millisecond)
			o.TCP = tcp.Config{DisableTimestamps: !ts}
			b := newBSim(t, o)
			ln, err := b.s.B.TCP.Listen(netip.AddrPortFrom(b.s.B.Addr, 80), 8)
			if err != nil {
				t.Fatal(err)
			}
			// Several ports: each pair of incarnations has its own ISNs
			// and timestamp offsets.
			for port := uint16(41000); port < 41008; port++ {
				la := netip.AddrPortFrom(b.s.A.Addr, port)
				ra := netip.AddrPortFrom(b.s.B.Addr, 80)
				var srv *tcp.Conn
				cli, err := b.s.A.TCP.Connect(la, ra)
				if err != nil {
					t.Fatal(err)
				}
				b.until(time.Second, func() bool { srv = ln.TryAccept(); return srv != nil })
				if srv == nil {
					t.Fatalf("port %d: no connection", port)
				}
				b.writeAll(cli, pattern(5000))
				rs := &reader{c: srv}
				b.until(time.Second, func() bool { rs.drain(0); return len(rs.got) == 5000 })
				// B closes first: B ends in TIME-WAIT.
				srv.Close()
				rc := &reader{c: cli}
				b.until(time.Second, func() bool { rc.drain(0); return rc.eof })
				cli.Close()
				b.until(time.Second, func() bool { return srv.State() == tcp.TimeWait && cli.State() == tcp.Closed })
				if srv.State() != tcp.TimeWait {
					t.Fatalf("B in %v", srv.State())
				}
				b.run(time.Second)
				before := b.s.B.TCP.Counters().Get(tcp.TCPTimeWaitReuse)
				cli2, err := b.s.A.TCP.Connect(la, ra)
				if err != nil {
					t.Fatal(err)
				}
				var srv2 *tcp.Conn
				b.until(2*time.Second, func() bool {
					if srv2 == nil {
						srv2 = ln.TryAccept()
					}
					return srv2 != nil && cli2.State() == tcp.Established
				})
				if srv2 == nil || cli2.State() != tcp.Established {
					t.Fatalf("port %d: new incarnation not opened (A %v, B's old one %v, PAWSRejected %d)", port, cli2.State(), srv.State(),
						b.s.B.TCP.Counters().Get(tcp.PAWSRejected))
				}
				if got := b.s.B.TCP.Counters().Get(tcp.TCPTimeWaitReuse); got != before+1 {
					t.Fatalf("TCPTimeWaitReuse %d -> %d", before, got)
				}
				if srv.State() != tcp.Closed {
					t.Fatalf("old incarnation in %v", srv.State())
				}
				// The new incarnation carries data.
				b.writeAll(cli2, []byte("again"))
				r2 := &reader{c: srv2}
				b.until(time.Second, func() bool { r2.drain(0); return len(r2.got) == 5 })
				if string(r2.got) != "again" {
					t.Fatalf("new incarnation read %q", r2.got)
				}
				cli2.Close()
				srv2.Close()
				b.run(2 * time.Second)
			}
		})
	}
}

// RFC 6298 5.5-5.6 (back off: RTO doubles per expiry, 2.5 bound MaxRTO;
// 2.4 floor MinRTO 200 ms as Linux), RFC 9293 3.8.3 (R2: give up, ETIMEDOUT
// after MaxRetries), and the SYN's own limit (SynRetries, initial RTO 1 s,
// RFC 6298 2.1).
func TestBehaviourRTOBackoff(t *testing.T) {
	o := delayPaths(time.Millisecond)
	o.TCP = tcp.Config{MaxRTO: 3200 * time.Millisecond, MaxRetries: 8}
	b := newBSim(t, o)
	cli, _, _ := b.connect(80)
	b.run(100 * time.Millisecond)
	b.s.A.Link.SetPath(netsim.Path{Loss: 1}) // B hears nothing more
	m := b.mark()
	t0 := b.s.Elapsed()
	b.writeAll(cli, make([]byte, 1000))
	var deadAt time.Duration
	b.until(60*time.Second, func() bool {
		if cli.State() == tcp.Closed && deadAt == 0 {
			deadAt = b.s.Elapsed()
		}
		return deadAt != 0
	})
	var times []time.Duration
	for _, g := range b.since(m, 'A') {
		if g.payload > 0 {
			times = append(times, g.at-t0)
		}
	}
	want := []time.Duration{0, 200, 600, 1400, 3000, 6200, 9400, 12600, 15800}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if len(times) != len(want) {
		t.Fatalf("data sent at %v, want %v", times, want)
	}
	for i := range want {
		if times[i] != want[i] {
			t.Fatalf("data sent at %v, want %v", times, want)
		}
	}
	if err := cli.Err(); !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("error %v, want ETIMEDOUT", err)
	}
	if deadAt-t0 != 19000*time.Millisecond {
		t.Fatalf("failed at %v, want 19 s after the first send", deadAt-t0)
	}
	c := b.s.A.TCP.Counters()
	if c.Get(tcp.TCPTimeouts) != 9 || c.Get(tcp.TCPAbortOnTimeout) != 1 {
		t.Fatalf("TCPTimeouts %d, TCPAbortOnTimeout %d", c.Get(tcp.TCPTimeouts), c.Get(tcp.TCPAbortOnTimeout))
	}
	t.Logf("transmissions at %v; ETIMEDOUT at %v", times, deadAt-t0)
}

func TestBehaviourSYNRetries(t *testing.T) {
	o := delayPaths(time.Millisecond)
	o.TCP = tcp.Config{SynRetries: 3}
	b := newBSim(t, o)
	b.warmARP()
	b.s.A.Link.SetPath(netsim.Path{Loss: 1})
	m := b.mark()
	t0 := b.s.Elapsed()
	cli, err := b.s.A.TCP.Connect(netip.AddrPort{}, netip.AddrPortFrom(b.s.B.Addr, 80))
	if err != nil {
		t.Fatal(err)
	}
	var deadAt time.Duration
	b.until(60*time.Second, func() bool {
		select {
		case <-cli.Established():
			deadAt = b.s.Elapsed()
			return true
		default:
			return false
		}
	})
	var times []time.Duration
	for _, g := range b.since(m, 'A') {
		if g.flags == fS {
			times = append(times, g.at-t0)
		}
	}
	want := []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second}
	if !slices.Equal(times, want) {
		t.Fatalf("SYNs at %v, want %v", times, want)
	}
	if deadAt-t0 != 15*time.Second || cli.State() != tcp.Closed || !errors.Is(cli.Err(), syscall.ETIMEDOUT) {
		t.Fatalf("at %v: state %v, error %v; want CLOSED with ETIMEDOUT at 15 s", deadAt-t0, cli.State(), cli.Err())
	}
}

// RFC 6298 3 (Karn's algorithm): without timestamps, the ACK of a
// retransmitted segment gives no RTT sample; an ACK of a segment sent once
// does.
func TestBehaviourKarn(t *testing.T) {
	o := delayPaths(10 * time.Millisecond)
	o.TCP = tcp.Config{DisableTimestamps: true}
	b := newBSim(t, o)
	cli, srv, _ := b.connect(80)
	cli.SetNoDelay(true)
	b.run(100 * time.Millisecond)
	srtt0 := cli.Info().SRTT
	dropped := false
	b.holdA()
	b.filter = func(g wseg) bool {
		if g.payload > 0 && !dropped {
			dropped = true
			return true
		}
		return false
	}
	b.writeAll(cli, make([]byte, 1000))
	rs := &reader{c: srv}
	b.until(2*time.Second, func() bool { rs.drain(0); return len(rs.got) == 1000 && cli.Info().SendQ == 0 })
	if cli.Info().SendQ != 0 || !dropped {
		t.Fatal("no recovery")
	}
	if c := b.s.A.TCP.Counters().Get(tcp.TCPTimeouts); c != 1 {
		t.Fatalf("TCPTimeouts %d", c)
	}
	if s := cli.Info().SRTT; s != srtt0 {
		t.Fatalf("SRTT %v -> %v after the ACK of a retransmission (Karn)", srtt0, s)
	}
	// A segment sent once is timed.
	b.writeAll(cli, make([]byte, 1000))
	b.until(2*time.Second, func() bool { rs.drain(0); return len(rs.got) == 2000 && cli.Info().SendQ == 0 })
	if s := cli.Info().SRTT; s == srtt0 {
		t.Fatalf("SRTT %v unchanged after an ACK of a segment sent once", s)
	}
}

// RFC 9293 3.8.6.3 and RFC 5681 4.2: an ACK may be delayed (here
// DelayedAck, 40 ms) but not past the second full-sized segment; an
// out-of-order segment is acknowledged at once (a duplicate ACK) with SACK
// blocks (RFC 2018 4), and so is a segment that fills a gap.
func TestBehaviourDelayedAck(t *testing.T) {
	const d = 5 * time.Millisecond
	b := newBSim(t, delayPaths(d))
	cli, srv, _ := b.connect(80)
	cli.SetNoDelay(true)
	b.run(100 * time.Millisecond)
	mss := cli.Info().MSS
	rs := &reader{c: srv}

	// One full segment: ACKed after DelayedAck.
	m := b.mark()
	t0 := b.s.Elapsed()
	b.writeAll(cli, pattern(mss))
	b.run(200 * time.Millisecond)
	rs.drain(0)
	data := firstSeg(t, b.since(m, 'A'), "data", func(g wseg) bool { return g.payload > 0 })
	ack := firstSeg(t, b.since(m, 'B'), "ACK", func(g wseg) bool { return g.pureAck() && g.ack == data.seq+uint32(mss) })
	if data.at != t0 || ack.at != t0+d+40*time.Millisecond || ack.ack != data.seq+uint32(mss) {
		t.Fatalf("data %v, ACK %v: want the ACK 40 ms after the arrival", data, ack)
	}
	if n := b.s.B.TCP.Counters().Get(tcp.TCPDelayedACKs); n != 1 {
		t.Fatalf("TCPDelayedACKs %d", n)
	}

	// Two full segments: ACKed on the arrival of the second.
	m = b.mark()
	t0 = b.s.Elapsed()
	b.writeAll(cli, pattern(2*mss))
	b.run(200 * time.Millisecond)
	rs.drain(0)
	segs := b.since(m, 'A')
	ack = firstSeg(t, b.since(m, 'B'), "ACK", func(g wseg) bool { return g.pureAck() && g.ack == segs[0].seq+uint32(2*mss) })
	if len(segs) != 2 || ack.at != t0+d || ack.ack != segs[0].seq+uint32(2*mss) {
		t.Fatalf("data %v, ACK %v: want an ACK of both at their arrival (%v)", segs, ack, t0+d)
	}

	b.run(100 * time.Millisecond) // the window update after the read
	// Out of order: the first of three segments is lost once.
	b.holdA()
	lost := false
	b.filter = func(g wseg) bool {
		if g.payload > 0 && !lost {
			lost = true
			return true
		}
		return false
	}
	m = b.mark()
	b.writeAll(cli, pattern(3*mss))
	b.until(time.Second, func() bool { return cli.Info().SendQ == 0 })
	rs.drain(0)
	segs = b.since(m, 'A')
	if len(segs) < 4 {
		t.Fatalf("A sent %v", segs)
	}
	s0, s1, s2, rx := segs[0], segs[1], segs[2], segs[3]
	var acks []wseg
	for _, g := range b.since(s1.i, 'B') {
		if g.pureAck() {
			acks = append(acks, g)
		}
	}
	if len(acks) < 3 {
		t.Fatalf("B's ACKs %v", acks)
	}
	end := s0.seq + uint32(3*mss)
	for i, want := range []struct {
		at   time.Duration
		ack  uint32
		sack header.SACKBlock
	}{{s1.at, s0.seq, header.SACKBlock{Left: s1.seq, Right: s2.seq}}, {s2.at, s0.seq, header.SACKBlock{Left: s1.seq, Right: end}}} {
		a := acks[i]
		if a.at != want.at || a.ack != want.ack || a.opt.SACKBlockCount != 1 || a.opt.SACKBlocks[0] != want.sack {
			t.Fatalf("ACK %d: %v SACK %v, want at %v ack %d SACK %v", i, a, a.opt.SACKBlocks[:a.opt.SACKBlockCount], want.at, want.ack, want.sack)
		}
	}
	if rx.seq != s0.seq {
		t.Fatalf("retransmission %v, want seq %d", rx, s0.seq)
	}
	if a := acks[2]; a.at != rx.at || a.ack != end || a.opt.SACKBlockCount != 0 {
		t.Fatalf("gap fill answered by %v (SACK %d), want an ACK of %d at %v", a, a.opt.SACKBlockCount, end, rx.at)
	}
	if !bytes.Equal(rs.got, append(append(pattern(mss), pattern(2*mss)...), pattern(3*mss)...)) {
		t.Fatal("data corrupted")
	}
}

// RFC 9293 3.7.4 (Nagle): while data is unacknowledged a short segment
// waits for the ACK; with Nagle off (SetNoDelay(true)) it goes at once.
func TestBehaviourNagle(t *testing.T) {
	const d = 5 * time.Millisecond
	for _, nodelay := range []bool{false, true} {
		b := newBSim(t, delayPaths(d))
		cli, _, _ := b.connect(80)
		cli.SetNoDelay(nodelay)
		b.run(100 * time.Millisecond)
		m := b.mark()
		t0 := b.s.Elapsed()
		b.writeAll(cli, make([]byte, 100))
		b.run(0)
		b.writeAll(cli, make([]byte, 100))
		b.run(200 * time.Millisecond)
		var data []wseg
		for _, g := range b.since(m, 'A') {
			if g.payload > 0 {
				data = append(data, g)
			}
		}
		if len(data) != 2 || data[0].at != t0 {
			t.Fatalf("nodelay %v: data %v", nodelay, data)
		}
		if nodelay {
			if data[1].at != t0 {
				t.Fatalf("Nagle off: second write sent at %v, want %v", data[1].at, t0)
			}
			continue
		}
		ack := firstSeg(t, b.since(m, 'B'), "ACK", wseg.pureAck)
		if data[1].at != ack.at+d || data[1].at == t0 {
			t.Fatalf("Nagle on: second write sent at %v, want on the ACK's arrival at %v", data[1].at, ack.at+d)
		}
		t.Logf("Nagle: first segment at %v, ACK sent at %v, second segment at %v", data[0].at, ack.at, data[1].at)
	}
}

// dataSegs returns the segments with payload that side sent from index i.
func (b *bsim) dataSegs(i int, side byte) []wseg {
	var out []wseg
	for _, g := range b.since(i, side) {
		if g.payload > 0 {
			out = append(out, g)
		}
	}
	return out
}

// RFC 9293 3.8.6.1 (zero-window probing; RFC 1122 4.2.2.17): a receiver
// that stops reading advertises a zero window; the sender probes with one
// byte beyond it, backing off exponentially; the window update after the
// reader resumes lets the transfer finish, and if that update is lost the
// next probe recovers it.
func TestBehaviourZeroWindowPersist(t *testing.T) {
	for _, loseUpdate := range []bool{false, true} {
		o := delayPaths(5 * time.Millisecond)
		o.TCPB = &tcp.Config{RecvBuffer: 16 << 10, RecvBufferMax: 16 << 10}
		b := newBSim(t, o)
		cli, srv, _ := b.connect(80)
		data := pattern(100 << 10)
		m := b.mark()
		n, _ := cli.WriteSome(data)
		b.run(10 * time.Second)
		zero := firstSeg(t, b.since(m, 'B'), "zero window", func(g wseg) bool { return g.pureAck() && g.win == 0 })
		var probes []wseg
		for _, g := range b.dataSegs(zero.i, 'A') {
			if g.payload != 1 || g.seq != zero.ack {
				t.Fatalf("after the zero window %v A sent %v, want 1-byte probes at %d; %v", zero, g, zero.ack, b.since(zero.i, 0))
			}
			probes = append(probes, g)
		}
		if len(probes) < 4 {
			t.Fatalf("%d probes in 10 s", len(probes))
		}
		var gaps []time.Duration
		for i := 1; i < len(probes); i++ {
			gaps = append(gaps, probes[i].at-probes[i-1].at)
		}
		for i := 1; i < len(gaps); i++ {
			if gaps[i] != 2*gaps[i-1] {
				t.Fatalf("probe intervals %v: not doubling", gaps)
			}
		}
		if c := b.s.A.TCP.Counters().Get(tcp.TCPWinProbe); c != uint64(len(probes)) {
			t.Fatalf("TCPWinProbe %d, %d probes", c, len(probes))
		}
		t.Logf("lose update %v: zero window at %v, probes every %v", loseUpdate, zero.at, gaps)
		rs := &reader{c: srv}
		probesBefore := len(probes)
		if loseUpdate {
			// The reader empties the buffer; its window update is dropped.
			b.s.B.Link.SetPath(netsim.Path{Manual: true})
			mu := b.mark()
			rs.drain(0)
			b.run(0)
			upd := b.since(mu, 'B')
			if len(upd) != 1 || upd[0].win == 0 || upd[0].ack != zero.ack {
				t.Fatalf("window update %v", upd)
			}
			for len(b.s.B.Link.Held()) > 0 {
				b.s.B.Link.Drop(0)
			}
			b.s.B.Link.SetPath(netsim.Path{Delay: 5 * time.Millisecond})
		}
		written := n
		if !b.until(120*time.Second, func() bool {
			k, _ := cli.WriteSome(data[written:])
			written += k
			rs.drain(0)
			return len(rs.got) == len(data)
		}) {
			t.Fatalf("received %d of %d bytes", len(rs.got), len(data))
		}
		if !bytes.Equal(rs.got, data) {
			t.Fatal("data corrupted")
		}
		extra := b.s.A.TCP.Counters().Get(tcp.TCPWinProbe) - uint64(probesBefore)
		if loseUpdate && extra == 0 {
			t.Fatal("the lost window update was recovered without a probe")
		}
		if b.s.A.TCP.Counters().Get(tcp.TCPTimeouts) != 0 {
			t.Fatalf("TCPTimeouts %d", b.s.A.TCP.Counters().Get(tcp.TCPTimeouts))
		}
	}
}

// RFC 9293 3.8.6.2.2 (receiver SWS avoidance): the right edge of the
// advertised window moves only in steps of at least min(RCV.BUFF/2,
// Eff.snd.MSS), however little the application reads at a time.
func TestBehaviourReceiverSWS(t *testing.T) {
	const buf = 16 << 10
	o := delayPaths(5 * time.Millisecond)
	o.TCPB = &tcp.Config{RecvBuffer: buf, RecvBufferMax: buf}
	b := newBSim(t, o)
	cli, srv, _ := b.connect(80)
	mss := cli.Info().MSS
	sa := firstSeg(t, b.segs, "SYN-ACK", func(g wseg) bool { return g.from == 'B' && g.flags == fS|fA })
	data := pattern(60 << 10)
	m := b.mark()
	written := 0
	rs := &reader{c: srv}
	next := b.s.Now()
	if !b.until(60*time.Second, func() bool {
		k, _ := cli.WriteSome(data[written:])
		written += k
		if !b.s.Now().Before(next) {
			rs.drain(300) // a slow reader: 300 bytes every 10 ms
			next = b.s.Now().Add(10 * time.Millisecond)
		}
		return len(rs.got) == len(data)
	}) {
		t.Fatalf("received %d of %d", len(rs.got), len(data))
	}
	step := min(buf/2, mss)
	right := func(g wseg) uint32 { return g.ack + uint32(g.win) } // B's shift is 0 (16 KiB)
	edge := right(sa)
	moves := 0
	for _, g := range b.since(m, 'B') {
		r := right(g)
		if d := int32(r - edge); d > 0 {
			if int(d) < step {
				t.Fatalf("%v: right edge moved by %d bytes, less than min(RCV.BUFF/2, MSS) = %d", g, d, step)
			}
			moves++
			edge = r
		} else if d < 0 {
			t.Fatalf("%v: right edge moved back by %d", g, -d)
		}
	}
	if !bytes.Equal(rs.got, data) {
		t.Fatal("data corrupted")
	}
	t.Logf("right edge moved %d times in steps of at least %d bytes", moves, step)
}

// RFC 9293 3.8.6.2.1 (sender SWS avoidance): no segment smaller than the
// MSS into a window smaller than half the largest one offered, unless it is
// all the data and nothing is in flight; the override timeout (here the
// persist timer) then sends what the window allows.
func TestBehaviourSenderSWS(t *testing.T) {
	o := delayPaths(5 * time.Millisecond)
	o.TCP = tcp.Config{DisableWindowScaling: true, DisableTimestamps: true}
	b := newBSim(t, o)
	cli, srv, _ := b.connect(80)
	cli.SetNoDelay(true)
	b.run(100 * time.Millisecond)
	// From now on B's own segments are lost; the test speaks for B.
	b.s.B.Link.SetPath(netsim.Path{Loss: 1})
	local, remote := cli.LocalAddr(), cli.RemoteAddr()
	bseq := uint32(srv.Snapshot().SndNxt)
	una := uint32(cli.Snapshot().SndNxt)
	b.toA(remote, local, fA, bseq, una, 500, nil, nil)

	// All the data fits: 300 bytes go at once.
	m := b.mark()
	b.writeAll(cli, make([]byte, 300))
	b.run(0)
	if d := b.dataSegs(m, 'A'); len(d) != 1 || d[0].payload != 300 {
		t.Fatalf("A sent %v, want 300 bytes at once", d)
	}
	b.toA(remote, local, fA, bseq, una+300, 500, nil, nil)

	// 10000 bytes into a 500-byte window: nothing until the override.
	rto := cli.Info().RTO
	m = b.mark()
	t0 := b.s.Elapsed()
	b.writeAll(cli, make([]byte, 10000))
	b.run(rto - time.Millisecond)
	if d := b.dataSegs(m, 'A'); len(d) != 0 {
		t.Fatalf("A sent %v into a 500-byte window (MSS %d)", d, cli.Info().MSS)
	}
	b.run(2 * time.Millisecond)
	d := b.dataSegs(m, 'A')
	if len(d) != 1 || d[0].payload != 500 || d[0].at != t0+rto {
		t.Fatalf("A sent %v, want 500 bytes at the override timeout %v", d, t0+rto)
	}
}

// RFC 1122 4.2.3.6 (keepalive): off by default; when on, after KeepAliveIdle
// without traffic a probe with SEQ = SND.NXT-1 and no data; a live peer
// answers and the connection stays; unanswered, KeepAliveCount probes
// KeepAliveInterval apart end it with ETIMEDOUT.
func TestBehaviourKeepAlive(t *testing.T) {
	o := delayPaths(5 * time.Millisecond)
	o.TCP = tcp.Config{KeepAliveIdle: time.Second, KeepAliveInterval: 500 * time.Millisecond, KeepAliveCount: 3}
	b := newBSim(t, o)
	cli, _, _ := b.connect(80)
	b.run(100 * time.Millisecond)
	m := b.mark()
	b.run(10 * time.Second)
	if segs := b.since(m, 0); len(segs) != 0 {
		t.Fatalf("keepalive off, yet %v", segs)
	}
	cli.SetKeepAlive(true)
	b.run(0)
	t0 := b.s.Elapsed()
	m = b.mark()
	b.run(3500 * time.Millisecond)
	nxt := uint32(cli.Snapshot().SndNxt)
	var probes, answers []wseg
	for _, g := range b.since(m, 0) {
		switch {
		case g.from == 'A' && g.pureAck() && g.seq == nxt-1:
			probes = append(probes, g)
		case g.from == 'B' && g.pureAck() && g.ack == nxt:
			answers = append(answers, g)
		default:
			t.Fatalf("unexpected %v (SND.NXT %d)", g, nxt)
		}
	}
	want := []time.Duration{t0 + time.Second, t0 + 2010*time.Millisecond, t0 + 3020*time.Millisecond}
	if len(probes) != 3 || len(answers) != 3 {
		t.Fatalf("probes %v answers %v", probes, answers)
	}
	for i := range want {
		if probes[i].at != want[i] {
			t.Fatalf("probes %v, want at %v", probes, want)
		}
	}
	if cli.State() != tcp.Established {
		t.Fatalf("state %v", cli.State())
	}
	// The peer falls silent: three probes, then ETIMEDOUT.
	b.s.B.Link.SetPath(netsim.Path{Loss: 1})
	last := probes[2].at + 10*time.Millisecond // the last answer's arrival
	m = b.mark()
	var deadAt time.Duration
	b.until(10*time.Second, func() bool {
		if cli.State() == tcp.Closed && deadAt == 0 {
			deadAt = b.s.Elapsed()
		}
		return deadAt != 0
	})
	probes = b.since(m, 'A')
	if len(probes) != 3 || probes[0].at != last+time.Second || probes[1].at != last+1500*time.Millisecond || probes[2].at != last+2*time.Second {
		t.Fatalf("unanswered probes %v (last answer %v)", probes, last)
	}
	if deadAt != last+2500*time.Millisecond || !errors.Is(cli.Err(), syscall.ETIMEDOUT) {
		t.Fatalf("closed at %v with %v, want ETIMEDOUT at %v", deadAt, cli.Err(), last+2500*time.Millisecond)
	}
	if c := b.s.A.TCP.Counters().Get(tcp.TCPKeepAlive); c != 6 {
		t.Fatalf("TCPKeepAlive %d", c)
	}
}

// RFC 1191 6.4 (and RFC 9293 3.7.3): an ICMP "fragmentation needed" about
// a segment in flight lowers the MSS to the next-hop MTU and the segment is
// resent to fit; RFC 5927 5.1: one quoting a sequence number not in flight
// is ignored.
func TestBehaviourPathMTU(t *testing.T) {
	for _, inFlight := range []bool{true, false} {
		o := netsim.Options{BA: netsim.Path{Delay: time.Millisecond}}
		b := newBSim(t, o)
		cli, srv, _ := b.connect(80)
		b.run(100 * time.Millisecond)
		router := netip.AddrFrom4([4]byte{10, 0, 0, 254})
		const mtu = 1200
		icmpAt := -1
		b.holdA()
		b.filter = func(g wseg) bool {
			if g.payload == 0 || icmpAt >= 0 {
				return inFlight && g.ipLen > mtu
			}
			q := g.frame
			if !inFlight {
				q = setSeq(q, g.seq-100000)
			}
			icmpAt = b.mark()
			b.s.A.Link.Inject(icmpFragNeeded(q, router, mtu, b.s.A.Link.MAC(), b.s.B.Link.MAC()))
			return inFlight && g.ipLen > mtu
		}
		data := pattern(200 << 10)
		written := 0
		rs := &reader{c: srv}
		if !b.until(60*time.Second, func() bool {
			k, _ := cli.WriteSome(data[written:])
			written += k
			rs.drain(0)
			return len(rs.got) == len(data)
		}) {
			t.Fatalf("in flight %v: received %d of %d bytes (A: %+v, stack %v)", inFlight, len(rs.got), len(data), cli.Info(),
				b.s.A.Stack.PathMTU(1, b.s.B.Addr))
		}
		if !bytes.Equal(rs.got, data) {
			t.Fatal("data corrupted")
		}
		c := b.s.A.TCP.Counters()
		biggest := 0
		for _, g := range b.dataSegs(icmpAt, 'A') {
			biggest = max(biggest, g.ipLen)
		}
		if inFlight {
			if biggest > mtu || c.Get(tcp.TCPPMTUUpdates) != 1 || cli.Info().MSS != mtu-40-12 {
				t.Fatalf("after the ICMP: largest packet %d, TCPPMTUUpdates %d, MSS %d", biggest, c.Get(tcp.TCPPMTUUpdates), cli.Info().MSS)
			}
		} else {
			// TCP ignores it: no update, no error, no retransmission,
			// and the stack's path MTU cache is not lowered either (it
			// asks the transport first, RFC 5927 7.2): full packets go on.
			if c.Get(tcp.TCPPMTUUpdates) != 0 || c.Get(tcp.TCPICMPErrors) != 0 || c.Get(tcp.RetransSegs) != 0 {
				t.Fatalf("ignored ICMP: TCPPMTUUpdates %d, TCPICMPErrors %d, RetransSegs %d", c.Get(tcp.TCPPMTUUpdates),
					c.Get(tcp.TCPICMPErrors), c.Get(tcp.RetransSegs))
			}
			if biggest <= mtu {
				t.Fatalf("after a forged ICMP the largest packet was %d: the forged MTU %d was applied", biggest, mtu)
			}
		}
		t.Logf("in flight %v: largest packet after the ICMP %d, timeouts %d, done at %v", inFlight, biggest, c.Get(tcp.TCPTimeouts), b.s.Elapsed())
	}
}

// RFC 5681 3.2 with RFC 3042 (limited transmit: one new segment on each of
// the first two duplicate ACKs) and RFC 6675 (SACK loss recovery): one lost
// segment is retransmitted at the third duplicate ACK, and the transfer
// completes without a timeout.
func TestBehaviourFastRetransmitLimitedTransmit(t *testing.T) {
	b := newBSim(t, netsim.Options{BA: netsim.Path{Delay: 10 * time.Millisecond}})
	cli, srv, _ := b.connect(80)
	b.run(100 * time.Millisecond)
	b.holdA()
	var lost *wseg
	b.filter = func(g wseg) bool {
		if g.payload > 0 && lost == nil {
			lost = &g
			return true
		}
		return false
	}
	m := b.mark()
	data := pattern(300 << 10)
	written := 0
	rs := &reader{c: srv}
	if !b.until(30*time.Second, func() bool {
		k, _ := cli.WriteSome(data[written:])
		written += k
		rs.drain(0)
		return len(rs.got) == len(data)
	}) || !bytes.Equal(rs.got, data) {
		t.Fatalf("received %d of %d bytes", len(rs.got), len(data))
	}
	// The first flight, then on the duplicate ACKs' arrival: two new
	// segments (limited transmit), then the retransmission.
	segs := b.dataSegs(m, 'A')
	flight := 0
	for flight < len(segs) && segs[flight].at == segs[0].at {
		flight++
	}
	high := segs[flight-1].seq + uint32(segs[flight-1].payload)
	next := segs[flight : flight+3]
	if next[0].seq != high || next[1].seq != next[0].seq+uint32(next[0].payload) || next[2].seq != lost.seq {
		t.Fatalf("first flight of %d up to %d; then %v: want two new segments then the retransmission of %d", flight, high, next, lost.seq)
	}
	c := b.s.A.TCP.Counters()
	if c.Get(tcp.TCPTimeouts) != 0 || c.Get(tcp.TCPFastRetrans) != 1 || c.Get(tcp.TCPSACKRecovery) != 1 || c.Get(tcp.RetransSegs) != 1 {
		t.Fatalf("TCPTimeouts %d, TCPFastRetrans %d, TCPSACKRecovery %d, RetransSegs %d", c.Get(tcp.TCPTimeouts), c.Get(tcp.TCPFastRetrans),
			c.Get(tcp.TCPSACKRecovery), c.Get(tcp.RetransSegs))
	}
	t.Logf("flight %d; limited transmit %v %v; retransmission %v; done at %v", flight, next[0], next[1], next[2], b.s.Elapsed())
}

// RFC 6582 (NewReno, no SACK): two segments lost from one window: the
// first is retransmitted at the third duplicate ACK, the second on the
// partial ACK, and recovery ends without a timeout.
func TestBehaviourNewRenoPartialAck(t *testing.T) {
	o := netsim.Options{BA: netsim.Path{Delay: 10 * time.Millisecond}, TCP: tcp.Config{DisableSACK: true}}
	b := newBSim(t, o)
	cli, srv, _ := b.connect(80)
	b.run(100 * time.Millisecond)
	b.holdA()
	n := 0
	var lost []uint32
	b.filter = func(g wseg) bool {
		if g.payload == 0 {
			return false
		}
		n++
		if n == 1 || n == 4 {
			lost = append(lost, g.seq)
			return true
		}
		return false
	}
	m := b.mark()
	data := pattern(300 << 10)
	written := 0
	rs := &reader{c: srv}
	if !b.until(30*time.Second, func() bool {
		k, _ := cli.WriteSome(data[written:])
		written += k
		rs.drain(0)
		return len(rs.got) == len(data)
	}) || !bytes.Equal(rs.got, data) {
		t.Fatalf("received %d of %d bytes", len(rs.got), len(data))
	}
	var rx []wseg
	maxSeq := uint32(0)
	first := true
	for _, g := range b.dataSegs(m, 'A') {
		if !first && int32(g.seq-maxSeq) < 0 {
			rx = append(rx, g)
		}
		if first || int32(g.seq-maxSeq) > 0 {
			maxSeq, first = g.seq, false
		}
	}
	if len(rx) != 2 || rx[0].seq != lost[0] || rx[1].seq != lost[1] {
		t.Fatalf("retransmissions %v, want %d then %d", rx, lost[0], lost[1])
	}
	// The second retransmission answers the partial ACK (ACK = the second
	// hole), which arrived at A just before.
	partial := firstSeg(t, b.since(rx[0].i, 'B'), "partial ACK", func(g wseg) bool { return g.ack == lost[1] })
	if rx[1].at != partial.at+10*time.Millisecond {
		t.Fatalf("partial ACK %v, second retransmission %v", partial, rx[1])
	}
	c := b.s.A.TCP.Counters()
	if c.Get(tcp.TCPTimeouts) != 0 || c.Get(tcp.TCPRenoRecovery) != 1 || c.Get(tcp.TCPFastRetrans) != 1 {
		t.Fatalf("TCPTimeouts %d, TCPRenoRecovery %d, TCPFastRetrans %d", c.Get(tcp.TCPTimeouts), c.Get(tcp.TCPRenoRecovery), c.Get(tcp.TCPFastRetrans))
	}
}

// RFC 7323 2.2-2.4: with a 1 MiB receive buffer the window field is scaled
// (shift 5): field << shift is the free space rounded down to a unit, never
// more than the free space; the right edge never moves back by a whole unit
// (RFC 9293 3.8.6, RFC 7323 2.4).
func TestBehaviourWindowScaling(t *testing.T) {
	const buf = 1 << 20
	o := delayPaths(2 * time.Millisecond)
	o.TCP = tcp.Config{RecvBuffer: buf, RecvBufferMax: buf}
	b := newBSim(t, o)
	cli, srv, _ := b.connect(80)
	const shift = 5
	if in := srv.Info(); in.WScale[1] != shift {
		t.Fatalf("B's receive shift %d, want %d", in.WScale[1], shift)
	}
	irs := uint32(srv.Snapshot().IRS)
	data := pattern(8 << 20)
	written := 0
	rs := &reader{c: srv}
	read := 0
	bad := ""
	var edge uint32
	checked, sws := 0, 0
	b.s.B.Link.SetTap(func(f []byte) {
		b.tap('B', f)
		g := b.segs[len(b.segs)-1]
		if g.is(fS) || !g.is(fA) || bad != "" {
			return
		}
		unread := int(g.ack-irs-1) - read
		free := buf - unread
		w := int(g.win) << shift
		if w > free {
			bad = fmt.Sprintf("%v: window %d past the free space %d", g, w, free)
		}
		if free-w >= 1<<shift {
			sws++ // held back by receiver SWS avoidance
			if free-w >= min(buf/2, 1460) {
				bad = fmt.Sprintf("%v: window %d, free %d", g, w, free)
			}
		}
		r := g.ack + uint32(w)
		if checked > 0 && int32(edge-r) >= 1<<shift {
			bad = fmt.Sprintf("%v: right edge back from %d to %d", g, edge, r)
		}
		if checked == 0 || int32(r-edge) > 0 {
			edge = r
		}
		checked++
	})
	next := b.s.Now()
	if !b.until(60*time.Second, func() bool {
		k, _ := cli.WriteSome(data[written:])
		written += k
		if !b.s.Now().Before(next) {
			read += rs.drain(48 << 10) // a reader slower than the path
			next = b.s.Now().Add(5 * time.Millisecond)
		}
		return len(rs.got) == len(data) || bad != ""
	}) {
		t.Fatalf("received %d of %d", len(rs.got), len(data))
	}
	if bad != "" {
		t.Fatal(bad)
	}
	if !bytes.Equal(rs.got, data) {
		t.Fatal("data corrupted")
	}
	t.Logf("%d ACKs checked (%d held back by SWS avoidance)", checked, sws)
}

// RFC 4987 3.6 (SYN cookies, Linux's encoding): with the SYN queue full
// (backlog 2, two handshakes whose final ACKs are lost) a third SYN gets a
// cookie SYN-ACK; its ACK makes an ESTABLISHED connection with the options
// the cookie carried (MSS from the table, SACK and window scale in the
// timestamp); a forged ACK fails the check and gets an RST (RFC 9293
// 3.10.7.2); with SynCookiesNever the third SYN is dropped.
func TestBehaviourSynCookies(t *testing.T) {
	for _, mode := range []tcp.SynCookieMode{tcp.SynCookiesWhenFull, tcp.SynCookiesNever} {
		o := delayPaths(time.Millisecond)
		o.TCP = tcp.Config{SynCookies: mode}
		b := newBSim(t, o)
		b.warmARP()
		ln, err := b.s.B.TCP.Listen(netip.AddrPortFrom(b.s.B.Addr, 80), 2)
		if err != nil {
			t.Fatal(err)
		}
		dst := netip.AddrPortFrom(b.s.B.Addr, 80)
		half := map[uint16]bool{}
		b.holdA()
		b.filter = func(g wseg) bool { return half[g.src.Port()] && g.pureAck() }
		for i := 0; i < 2; i++ {
			c, err := b.s.A.TCP.Connect(netip.AddrPort{}, dst)
			if err != nil {
				t.Fatal(err)
			}
			half[c.LocalAddr().Port()] = true
			b.run(10 * time.Millisecond)
		}
		m := b.mark()
		c3, err := b.s.A.TCP.Connect(netip.AddrPort{}, dst)
		if err != nil {
			t.Fatal(err)
		}
		b.run(20 * time.Millisecond)
		cb := b.s.B.TCP.Counters()
		if mode == tcp.SynCookiesNever {
			for _, g := range b.since(m, 'B') {
				if g.dst == c3.LocalAddr() {
					t.Fatalf("SYN with a full queue answered: %v", g)
				}
			}
			if cb.Get(tcp.SyncookiesSent) != 0 || cb.Get(tcp.ListenDrops) == 0 || c3.State() != tcp.SynSent {
				t.Fatalf("SyncookiesSent %d, ListenDrops %d, client %v", cb.Get(tcp.SyncookiesSent), cb.Get(tcp.ListenDrops), c3.State())
			}
			continue
		}
		if cb.Get(tcp.SyncookiesSent) != 1 || cb.Get(tcp.SyncookiesRecv) != 1 {
			t.Fatalf("SyncookiesSent %d, SyncookiesRecv %d", cb.Get(tcp.SyncookiesSent), cb.Get(tcp.SyncookiesRecv))
		}
		var srv *tcp.Conn
		for srv == nil || srv.RemoteAddr() != c3.LocalAddr() {
			if srv = ln.TryAccept(); srv == nil {
				t.Fatal("cookie connection not accepted")
			}
		}
		in := srv.Info()
		if srv.State() != tcp.Established || in.MSS != 1460-12 || !in.SACK || !in.Timestamps || in.WScale[0] != 7 {
			t.Fatalf("cookie connection %v %+v: want MSS 1448 (1460 from the table), SACK, timestamps, send shift 7", srv.State(), in)
		}
		ra, rb := &reader{c: c3}, &reader{c: srv}
		up, down := pattern(100<<10), pattern(50<<10)
		b.writeAll(c3, up)
		b.writeAll(srv, down)
		b.until(10*time.Second, func() bool { ra.drain(0); rb.drain(0); return len(ra.got) == len(down) && len(rb.got) == len(up) })
		if !bytes.Equal(ra.got, down) || !bytes.Equal(rb.got, up) {
			t.Fatalf("cookie connection carried %d/%d and %d/%d bytes", len(rb.got), len(up), len(ra.got), len(down))
		}
		// A forged ACK: an RST with SEQ = SEG.ACK, SyncookiesFailed.
		failed := cb.Get(tcp.SyncookiesFailed)
		m = b.mark()
		b.toB(netip.AddrPortFrom(b.s.A.Addr, 45000), dst, fA, 777777, 123456789, 1000, nil, nil)
		var rst []wseg
		for _, g := range b.since(m, 'B') {
			if g.dst.Port() == 45000 {
				rst = append(rst, g)
			}
		}
		if len(rst) != 1 || rst[0].flags != fR || rst[0].seq != 123456789 {
			t.Fatalf("forged cookie ACK answered with %v", rst)
		}
		if got := b.s.B.TCP.Counters().Get(tcp.SyncookiesFailed); got != failed+1 {
			t.Fatalf("SyncookiesFailed %d -> %d", failed, got)
		}
	}
}

// RFC 9293 3.10.7.1 (CLOSED): a segment for no connection gets a reset:
// a SYN (no ACK) <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, a segment with
// an ACK <SEQ=SEG.ACK><CTL=RST>; an RST gets nothing.
func TestBehaviourClosedPort(t *testing.T) {
	b := newBSim(t, delayPaths(time.Millisecond))
	b.warmARP()
	m := b.mark()
	c, err := b.s.A.TCP.Connect(netip.AddrPort{}, netip.AddrPortFrom(b.s.B.Addr, 81))
	if err != nil {
		t.Fatal(err)
	}
	b.run(10 * time.Millisecond)
	syn := firstSeg(t, b.since(m, 'A'), "SYN", func(g wseg) bool { return g.flags == fS })
	rst := firstSeg(t, b.since(m, 'B'), "RST", func(g wseg) bool { return g.is(fR) })
	if rst.flags != fR|fA || rst.seq != 0 || rst.ack != syn.seq+1 {
		t.Fatalf("SYN %v answered with %v", syn, rst)
	}
	if !errors.Is(c.Err(), syscall.ECONNREFUSED) || c.State() != tcp.Closed {
		t.Fatalf("connect: %v %v", c.State(), c.Err())
	}
	src := netip.AddrPortFrom(b.s.A.Addr, 40001)
	dst := netip.AddrPortFrom(b.s.B.Addr, 81)
	b.s.B.Link.SetPath(netsim.Path{Manual: true})
	cases := []struct {
		flags    header.TCPFlags
		seq, ack uint32
		payload  []byte
		want     *wseg
	}{
		{fA, 5000, 7777, nil, &wseg{flags: fR, seq: 7777}},
		{fA | fP, 5000, 8888, []byte("data"), &wseg{flags: fR, seq: 8888}},
		{fS, 9000, 0, nil, &wseg{flags: fR | fA, ack: 9001}},
		{fF, 9100, 0, []byte("ab"), &wseg{flags: fR | fA, ack: 9103}},
		{fR, 5000, 0, nil, nil},
		{fR | fA, 5000, 7777, nil, nil},
	}
	for _, k := range cases {
		m := b.mark()
		b.toB(src, dst, k.flags, k.seq, k.ack, 1000, nil, k.payload)
		got := b.since(m, 'B')
		if k.want == nil {
			if len(got) != 0 {
				t.Fatalf("%v answered with %v", k.flags, got)
			}
			continue
		}
		if len(got) != 1 || got[0].flags != k.want.flags || got[0].seq != k.want.seq || got[0].ack != k.want.ack {
			t.Fatalf("%v seq %d ack %d answered with %v, want %v seq %d ack %d", k.flags, k.seq, k.ack, got, k.want.flags, k.want.seq, k.want.ack)
		}
	}
}

// RFC 9293 3.10.4 with RFC 2525 2.17 (as Linux): Close with unread data
// sends an RST instead of a FIN (TCPAbortOnClose) and the peer sees
// ECONNRESET; data arriving after Close is answered with an RST
// (TCPAbortOnData).
func TestBehaviourCloseUnreadAndDataAfterClose(t *testing.T) {
	b := newBSim(t, delayPaths(time.Millisecond))
	cli, srv, _ := b.connect(80)
	b.writeAll(cli, []byte("unread"))
	b.run(50 * time.Millisecond)
	m := b.mark()
	srv.Close()
	b.run(50 * time.Millisecond)
	segs := b.since(m, 'B')
	if len(segs) != 1 || !segs[0].is(fR) || segs[0].is(fF) {
		t.Fatalf("Close with unread data sent %v, want one RST", segs)
	}
	if b.s.B.TCP.Counters().Get(tcp.TCPAbortOnClose) != 1 || !errors.Is(cli.Err(), syscall.ECONNRESET) {
		t.Fatalf("TCPAbortOnClose %d, client error %v", b.s.B.TCP.Counters().Get(tcp.TCPAbortOnClose), cli.Err())
	}

	cli, srv, _ = b.connect(81)
	b.writeAll(cli, []byte("read"))
	b.run(50 * time.Millisecond)
	(&reader{c: srv}).drain(0)
	m = b.mark()
	srv.Close()
	b.run(50 * time.Millisecond)
	if fin := b.since(m, 'B'); len(fin) != 1 || !fin[0].is(fF) {
		t.Fatalf("Close sent %v, want a FIN", fin)
	}
	m = b.mark()
	b.writeAll(cli, []byte("late"))
	b.run(50 * time.Millisecond)
	segs = b.since(m, 'B')
	if len(segs) != 1 || !segs[0].is(fR) || srv.State() != tcp.Closed {
		t.Fatalf("data after Close answered with %v (B %v)", segs, srv.State())
	}
	if b.s.B.TCP.Counters().Get(tcp.TCPAbortOnData) != 1 || !errors.Is(cli.Err(), syscall.ECONNRESET) {
		t.Fatalf("TCPAbortOnData %d, client error %v", b.s.B.TCP.Counters().Get(tcp.TCPAbortOnData), cli.Err())
	}
}
