package tcp_test

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/verinic/verinic/internal/netsim"
	"github.com/verinic/verinic/proto/tcp"
)

// tcpModel drives one connection between hosts A (client) and B (server)
// on the deterministic netsim, both directions held so that the test
// decides the fate of every frame.
type tcpModel struct {
	t     *rapid.T
	s     *netsim.Sim
	ln    *tcp.Listener
	conn  [2]*tcp.Conn // 0: A, 1: B
	hosts [2]*netsim.Host
	// The reference model: the byte stream each side wrote (accepted by
	// WriteSome) and read, and who closed what.
	wrote, read [2][]byte
	eof         [2]bool
	closeWrite  [2]bool
	closed      [2]bool
	connected   bool
	gen         byte
	rsts        [2]uint64
}

func newTCPModel(t *rapid.T) *tcpModel {
	cfg := tcp.Config{RecvBuffer: 8 << 10, RecvBufferMax: 8 << 10, SendBuffer: 16 << 10, MaxRetries: 60, SynRetries: 60, MaxRTO: 5 * time.Second}
	s, err := netsim.NewSim(netsim.Options{AB: netsim.Path{Manual: true}, BA: netsim.Path{Manual: true}, TCP: cfg, Seed: 7, Buffers: 512})
	if err != nil {
		t.Fatal(err)
	}
	m := &tcpModel{t: t, s: s, hosts: [2]*netsim.Host{s.A, s.B}}
	if m.ln, err = s.B.TCP.Listen(netip.AddrPortFrom(s.B.Addr, 80), 4); err != nil {
		t.Fatal(err)
	}
	return m
}

// settle polls until idle, accepts, and checks what must hold after every
// step.
func (m *tcpModel) settle() {
	if !m.s.Settle(10000) {
		m.t.Fatalf("stacks still busy at %v", m.s.Elapsed())
	}
	if m.conn[1] == nil {
		m.conn[1] = m.ln.TryAccept()
	}
	m.check()
}

func (m *tcpModel) check() {
	for i, h := range m.hosts {
		if err := h.TCP.CheckInvariants(); err != nil {
			m.t.Fatalf("host %d: %v", i, err)
		}
		c := h.TCP.Counters()
		for _, k := range []tcp.Counter{tcp.AttemptFails, tcp.EstabResets, tcp.TCPAbortOnData, tcp.TCPAbortOnClose, tcp.TCPAbortOnTimeout} {
			if c.Get(k) != 0 {
				m.t.Fatalf("host %d: %v = %d", i, k, c.Get(k))
			}
		}
		// An RST is expected only from a host whose connection is gone
		// (a late duplicate then finds no connection).
		if r := c.Get(tcp.OutRsts); r != m.rsts[i] {
			if m.conn[i] == nil || !m.conn[i].Snapshot().Gone {
				m.t.Fatalf("host %d sent an RST while its connection lives (%v)", i, m.state(i))
			}
			m.rsts[i] = r
		}
		if c := m.conn[i]; c != nil {
			if err := c.CheckInvariants(); err != nil {
				m.t.Fatalf("host %d: %v", i, err)
			}
			if err := c.Err(); err != nil {
				m.t.Fatalf("host %d: connection failed: %v", i, err)
			}
		}
	}
}

func (m *tcpModel) state(i int) tcp.State {
	if m.conn[i] == nil {
		return tcp.Closed
	}
	return m.conn[i].State()
}

func (m *tcpModel) link(dir int) *netsim.Endpoint { return m.hosts[dir].Link }

func (m *tcpModel) Connect(t *rapid.T) {
	if m.connected {
		t.Skip("connected")
	}
	c, err := m.s.A.TCP.Connect(netip.AddrPort{}, netip.AddrPortFrom(m.s.B.Addr, 80))
	if err != nil {
		t.Fatal(err)
	}
	m.conn[0], m.connected = c, true
	m.settle()
}

func (m *tcpModel) Write(t *rapid.T) {
	i := rapid.IntRange(0, 1).Draw(t, "side")
	c := m.conn[i]
	if c == nil || m.closeWrite[i] || m.closed[i] {
		t.Skip("cannot write")
	}
	k := rapid.IntRange(1, 6000).Draw(t, "bytes")
	b := make([]byte, k)
	for j := range b {
		m.gen++
		b[j] = m.gen
	}
	n, err := c.WriteSome(b)
	if err != nil {
		t.Fatalf("side %d write in %v: %v", i, c.State(), err)
	}
	m.wrote[i] = append(m.wrote[i], b[:n]...)
	m.settle()
}

func (m *tcpModel) Read(t *rapid.T) {
	i := rapid.IntRange(0, 1).Draw(t, "side")
	if m.conn[i] == nil || m.closed[i] {
		t.Skip("cannot read")
	}
	m.readSome(i, rapid.IntRange(1, 10000).Draw(t, "max"))
	m.settle()
}

// readSome reads once and checks the bytes against what the peer wrote.
func (m *tcpModel) readSome(i, max int) int {
	b := make([]byte, max)
	n, err := m.conn[i].ReadSome(b)
	peer := m.wrote[1-i]
	off := len(m.read[i])
	if off+n > len(peer) || !bytes.Equal(b[:n], peer[off:off+n]) {
		m.t.Fatalf("side %d read %d bytes at offset %d that the peer did not write there (peer wrote %d)", i, n, off, len(peer))
	}
	m.read[i] = append(m.read[i], b[:n]...)
	if errors.Is(err, io.EOF) {
		if !m.closeWrite[1-i] || len(m.read[i]) != len(peer) {
			m.t.Fatalf("side %d: EOF after %d of %d bytes, peer closed: %v", i, len(m.read[i]), len(peer), m.closeWrite[1-i])
		}
		m.eof[i] = true
	} else if err != nil {
		m.t.Fatalf("side %d read: %v", i, err)
	}
	return n
}

func (m *tcpModel) CloseWrite(t *rapid.T) {
	i := rapid.IntRange(0, 1).Draw(t, "side")
	c := m.conn[i]
	// A close in SYN-SENT deletes the connection (RFC 9293 3.10.4): the
	// model closes only synchronized connections.
	if c == nil || m.closeWrite[i] || (c.State() != tcp.Established && c.State() != tcp.CloseWait) {
		t.Skip("cannot close")
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	m.closeWrite[i] = true
	m.settle()
}

// Close is allowed once the side read the peer's whole stream (else an
// RST is the right answer, RFC 2525 2.17, which this model does not
// expect).
func (m *tcpModel) Close(t *rapid.T) {
	i := rapid.IntRange(0, 1).Draw(t, "side")
	c := m.conn[i]
	if c == nil || m.closed[i] || !m.eof[i] || (c.State() != tcp.CloseWait && !m.closeWrite[i]) {
		t.Skip("cannot close")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	m.closed[i], m.closeWrite[i] = true, true
	m.settle()
}

func (m *tcpModel) held(t *rapid.T) (*netsim.Endpoint, int) {
	dir := rapid.IntRange(0, 1).Draw(t, "dir")
	e := m.link(dir)
	n := len(e.Held())
	if n == 0 {
		t.Skip("nothing held")
	}
	return e, n
}

func (m *tcpModel) DeliverNext(t *rapid.T) {
	e, _ := m.held(t)
	e.Deliver(0)
	m.settle()
}

func (m *tcpModel) DeliverAny(t *rapid.T) { // reorder
	e, n := m.held(t)
	e.Deliver(rapid.IntRange(0, n-1).Draw(t, "i"))
	m.settle()
}

func (m *tcpModel) Drop(t *rapid.T) {
	e, n := m.held(t)
	e.Drop(rapid.IntRange(0, n-1).Draw(t, "i"))
	m.settle()
}

func (m *tcpModel) Duplicate(t *rapid.T) {
	e, n := m.held(t)
	e.Duplicate(rapid.IntRange(0, n-1).Draw(t, "i"))
	m.settle()
}

func (m *tcpModel) Advance(t *rapid.T) {
	d := time.Duration(rapid.IntRange(1, 2000).Draw(t, "ms")) * time.Millisecond
	m.run(d)
}

// run lets d of virtual time pass, event by event, checking as it goes.
func (m *tcpModel) run(d time.Duration) {
	end := m.s.Now().Add(d)
	for i := 0; m.s.Now().Before(end); i++ {
		if i > 100000 {
			m.t.Fatalf("virtual time stuck at %v", m.s.Elapsed())
		}
		if err := m.s.Advance(end); err != nil {
			m.t.Fatal(err)
		}
		m.settle()
	}
}

// finish closes what is open and runs the network without faults until
// both streams are complete and both ends closed, then checks the end
// states.
func (m *tcpModel) finish() {
	if !m.connected {
		return
	}
	for round := 0; ; round++ {
		if round > 2000 {
			m.t.Fatalf("no end: A %v (read %d/%d, eof %v), B %v (read %d/%d, eof %v)", m.state(0), len(m.read[0]), len(m.wrote[1]), m.eof[0],
				m.state(1), len(m.read[1]), len(m.wrote[0]), m.eof[1])
		}
		for _, e := range []*netsim.Endpoint{m.s.A.Link, m.s.B.Link} {
			for len(e.Held()) > 0 {
				e.Deliver(0)
			}
		}
		m.settle()
		for i := 0; i < 2; i++ {
			c := m.conn[i]
			if c == nil {
				continue
			}
			for !m.eof[i] && !m.closed[i] && m.readSome(i, 1<<16) > 0 {
			}
			st := c.State()
			if !m.closeWrite[i] && (st == tcp.Established || st == tcp.CloseWait) {
				c.CloseWrite()
				m.closeWrite[i] = true
			}
			if m.eof[i] && !m.closed[i] {
				c.Close()
				m.closed[i] = true
			}
		}
		m.settle()
		if m.closed[0] && m.closed[1] && m.s.Wire.InFlight() == 0 {
			a, b := m.state(0), m.state(1)
			if (a == tcp.Closed || a == tcp.TimeWait) && (b == tcp.Closed || b == tcp.TimeWait) {
				break
			}
		}
		m.run(100 * time.Millisecond)
	}
	for i := 0; i < 2; i++ {
		if !bytes.Equal(m.read[i], m.wrote[1-i]) {
			m.t.Fatalf("side %d read %d bytes, the peer wrote %d", i, len(m.read[i]), len(m.wrote[1-i]))
		}
	}
	// RFC 9293 3.6: at most one side waits in TIME-WAIT (both, after a
	// simultaneous close); after 2*MSL both are CLOSED.
	m.run(61 * time.Second)
	for _, e := range []*netsim.Endpoint{m.s.A.Link, m.s.B.Link} {
		for len(e.Held()) > 0 {
			e.Deliver(0)
		}
	}
	m.settle()
	if a, b := m.state(0), m.state(1); a != tcp.Closed || b != tcp.Closed {
		m.t.Fatalf("after TIME-WAIT: A %v, B %v", a, b)
	}
	if n := m.s.A.TCP.Counters().Get(tcp.CurrConns) + m.s.B.TCP.Counters().Get(tcp.CurrConns); n != 0 {
		m.t.Fatalf("%d connections left", n)
	}
}

// TestTCPStateMachine checks TCP against a reference model with rapid.
// Random sequences of application calls (connect, write k bytes, read,
// closewrite, close) and network events on held wires (deliver the next
// frame, deliver any frame: reordering, drop, duplicate, let virtual time
// pass) drive one connection; listen happens first. Properties:
//
//   - byte stream: every read returns the next bytes the peer wrote (as
//     WriteSome accepted them), in order, exactly once; EOF comes only after
//     the peer closed its side and every byte was read;
//   - after every step: the connections' and protocols' invariants hold
//     (tcp.Conn.CheckInvariants, tcp.Protocol.CheckInvariants), no
//     connection fails (no reset, abort or timeout: retries are generous),
//     and no RST is sent while the sender's connection lives (the model
//     closes only after reading the peer's whole stream, so it expects
//     none; a late duplicate reaching a connection already gone may draw
//     one, RFC 9293 3.10.7.1);
//   - at the end, with the network run without faults: both streams are
//     complete, both ends reach CLOSED or TIME-WAIT (RFC 9293 3.6), and
//     after 2*MSL both are CLOSED with no connection left.
func TestTCPStateMachine(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := newTCPModel(t)
		defer m.s.Close()
		t.Repeat(map[string]func(*rapid.T){
			"connect":     m.Connect,
			"write":       m.Write,
			"read":        m.Read,
			"closewrite":  m.CloseWrite,
			"close":       m.Close,
			"deliverNext": m.DeliverNext,
			"deliverAny":  m.DeliverAny,
			"drop":        m.Drop,
			"duplicate":   m.Duplicate,
			"advance":     m.Advance,
			"": func(t *rapid.T) {
				m.check()
			},
		})
		m.finish()
	})
}
