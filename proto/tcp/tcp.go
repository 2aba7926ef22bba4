// Package tcp is verinic's TCP (RFC 9293) on the stack's poll loops:
// connection state machine with all eleven states, simultaneous open and
// close, TIME_WAIT; RFC 6298 retransmission timeout; RFC 7323 window
// scaling, timestamps and PAWS; MSS option and path MTU (RFC 1191); SACK
// (RFC 2018) with RFC 6675 loss recovery, NewReno (RFC 6582) without it;
// CUBIC (RFC 9438, default) or NewReno congestion control (package cc);
// RFC 3042 limited transmit; delayed ACKs; Nagle; keepalive; persist timer
// and zero-window probes; SWS avoidance on both sides; a listen backlog
// with SYN cookies (RFC 4987); RFC 5961 defences; ISNs per RFC 6528.
//
// Threading. Every connection has a home poll loop: for an accepted
// connection the loop that received its SYN (the NIC's RSS keeps the flow
// there), for an active open the loop SendDatagram's flow hash picks. Only
// the home loop changes protocol state, sends, and arms the connection's
// timers (on the loop's timer queue). Application goroutines take the
// connection's mutex to copy bytes into the send buffer and out of the
// receive buffer, and queue the connection on its home loop's ready list
// (then wake the loop) when that calls for a segment: new data to send, a
// window update, a close. A segment that arrives on another loop is copied
// to the home loop's inbox. Lock order: connection, then a loop's ready
// list; a listener's lock is never held while taking a connection's.
//
// Memory. Send and receive buffers are byte rings per connection (package
// buffer), bounded per connection (SendBuffer, RecvBufferMax with Linux-like
// auto-tuning) and stack-wide (MemoryLimit): past the cap, new connections
// are refused and buffers do not grow. Out-of-order data waits in the
// receive ring at its position, its ranges bounded in count.
package tcp

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/verinic/verinic/proto/demux"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/socket"
	"github.com/verinic/verinic/proto/stack"
	"github.com/verinic/verinic/proto/tcp/cc"
	"github.com/verinic/verinic/proto/tcp/isn"
	"github.com/verinic/verinic/trace"
)

// Proto is TCP's IP protocol number.
const Proto = header.IPProtocolTCP

// SynCookieMode says when a listener answers SYNs with cookies.
type SynCookieMode int

// SYN cookie modes (Linux's net.ipv4.tcp_syncookies 1, 2, 0).
const (
	SynCookiesWhenFull SynCookieMode = iota // when the SYN queue is full (default)
	SynCookiesAlways
	SynCookiesNever
)

// Config configures the TCP layer of a stack. Zero fields take defaults,
// which follow Linux's where RFCs leave a choice.
type Config struct {
	// SendBuffer bounds the bytes a connection holds for sending (unsent
	// and unacknowledged); default 4 MiB (tcp_wmem[2]).
	SendBuffer int
	// RecvBuffer is a connection's initial receive buffer (default 128 KiB,
	// tcp_rmem[1]); auto-tuning grows it up to RecvBufferMax (default 6 MiB,
	// tcp_rmem[2]) when the application keeps up.
	RecvBuffer, RecvBufferMax int
	// MemoryLimit caps the buffer bytes of all connections together
	// (default 256 MiB). Past it new connections are refused and buffers do
	// not grow.
	MemoryLimit int64
	// MaxConnections caps connection endpoints, TIME_WAIT included
	// (default 65536).
	MaxConnections int
	// SynCookies selects when listeners answer with SYN cookies.
	SynCookies SynCookieMode
	// TimeWait is how long a connection stays in TIME_WAIT, 2*MSL (RFC 9293
	// 3.4.2); default 60 s like Linux.
	TimeWait time.Duration
	// MinRTO, MaxRTO and InitialRTO bound the retransmission timeout
	// (defaults 200 ms as Linux, 120 s, 1 s per RFC 6298 2.1).
	MinRTO, MaxRTO, InitialRTO time.Duration
	// MaxRetries is the retransmissions of one segment before the
	// connection fails with ETIMEDOUT (default 15, tcp_retries2);
	// SynRetries those of a SYN (default 6).
	MaxRetries, SynRetries int
	// DelayedAck is the longest an ACK is delayed (default 40 ms; RFC 9293
	// 3.8.6.3 allows up to 500 ms).
	DelayedAck time.Duration
	// Congestion names the congestion control: "cubic" (default) or
	// "newreno".
	Congestion string
	// DisableSACK, DisableTimestamps and DisableWindowScaling turn off
	// those options (all on by default).
	DisableSACK, DisableTimestamps, DisableWindowScaling bool
	// KeepAliveIdle, KeepAliveInterval and KeepAliveCount are the keepalive
	// parameters (RFC 1122 4.2.3.6: idle 2 h; Linux: interval 75 s, 9
	// probes) used when a connection enables keepalive.
	KeepAliveIdle, KeepAliveInterval time.Duration
	KeepAliveCount                   int
	// ChallengeAckLimit is the challenge ACKs sent per second, stack-wide
	// (RFC 5961 section 7; default 1000 as Linux).
	ChallengeAckLimit int
	// OutOfOrderRanges bounds the disjoint ranges of out-of-order data a
	// connection keeps (default 32).
	OutOfOrderRanges int
	// Recorder, if set, records per connection state changes, segments,
	// timers and application calls (trace/tcp.go).
	Recorder *trace.Recorder
	// Rand, if set, is read for the ISN and SYN-cookie secrets instead of
	// crypto/rand: deterministic simulations pass a seeded source so that
	// sequence numbers repeat from run to run. Never set it in production
	// (RFC 6528 3: the secret must be hard to guess).
	Rand io.Reader
}

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.SendBuffer, 4<<20)
	def(&c.RecvBuffer, 128<<10)
	def(&c.RecvBufferMax, 6<<20)
	c.RecvBufferMax = max(c.RecvBufferMax, c.RecvBuffer)
	if c.MemoryLimit <= 0 {
		c.MemoryLimit = 256 << 20
	}
	def(&c.MaxConnections, 65536)
	defD(&c.TimeWait, 60*time.Second)
	defD(&c.MinRTO, 200*time.Millisecond)
	defD(&c.MaxRTO, 120*time.Second)
	defD(&c.InitialRTO, time.Second)
	def(&c.MaxRetries, 15)
	def(&c.SynRetries, 6)
	defD(&c.DelayedAck, 40*time.Millisecond)
	if c.Congestion == "" {
		c.Congestion = cc.CUBIC
	}
	defD(&c.KeepAliveIdle, 2*time.Hour)
	defD(&c.KeepAliveInterval, 75*time.Second)
	def(&c.KeepAliveCount, 9)
	def(&c.ChallengeAckLimit, 1000)
	def(&c.OutOfOrderRanges, 32)
}

// Errors, wrapping the errno Linux reports.
var (
	ErrConnRefused = fmt.Errorf("connection refused: %w", syscall.ECONNREFUSED)
	ErrConnReset   = fmt.Errorf("connection reset by peer: %w", syscall.ECONNRESET)
	ErrTimedOut    = fmt.Errorf("connection timed out: %w", syscall.ETIMEDOUT)
	ErrNotConn     = fmt.Errorf("transport endpoint is not connected: %w", syscall.ENOTCONN)
	ErrPipe        = fmt.Errorf("broken pipe: %w", syscall.EPIPE)
	ErrNoMemory    = fmt.Errorf("TCP memory limit reached: %w", syscall.ENOBUFS)
	ErrTooMany     = fmt.Errorf("too many TCP connections: %w", syscall.EMFILE)
	ErrAborted     = fmt.Errorf("connection aborted: %w", syscall.ECONNABORTED)
)

// Protocol is the TCP layer of one stack.
type Protocol struct {
	st    *stack.Stack
	cfg   Config
	table *demux.Table[endpoint]
	rec   *trace.Recorder

	isn     *isn.Generator
	cookies *isn.Cookies
	tsBase  time.Time // timestamps clock origin (RFC 7323 5.4: per-connection offsets are added)

	loops sync.Map // *stack.Loop -> *loopState; read on every poll, written once per loop

	connIDs  atomic.Uint32
	conns    atomic.Int64 // endpoints in the table (listeners excluded)
	memory   atomic.Int64 // buffer bytes allocated
	estab    atomic.Int64 // CurrEstab
	challMu  sync.Mutex
	challSec int64
	challN   int

	allMu sync.Mutex
	all   map[*Conn]struct{} // every connection, for Close and Connections
	lns   map[*Listener]struct{}

	c counterSet
}

// endpoint is what the demultiplexing table holds: a connection or a
// listener.
type endpoint interface{ isEndpoint() }

// New creates the TCP layer of st and registers it (call before st.Start).
func New(st *stack.Stack, cfg Config) (*Protocol, error) {
	cfg.setDefaults()
	if _, err := cc.New(cfg.Congestion); err != nil {
		return nil, fmt.Errorf("tcp: %w", err)
	}
	src := cfg.Rand
	if src == nil {
		src = rand.Reader
	}
	var secret [16]byte
	var cookieSecrets [2][16]byte
	for _, b := range [][]byte{secret[:], cookieSecrets[0][:], cookieSecrets[1][:]} {
		if _, err := io.ReadFull(src, b); err != nil {
			return nil, fmt.Errorf("tcp: reading a secret for ISNs: %w", err)
		}
	}
	clk := st.Clock()
	p := &Protocol{
		st: st, cfg: cfg, table: demux.NewTable[endpoint](), rec: cfg.Recorder,
		all: map[*Conn]struct{}{}, lns: map[*Listener]struct{}{},
		tsBase: clk.Now(),
	}
	p.isn = isn.NewGenerator(secret, clk.Now)
	p.cookies = isn.NewCookies(cookieSecrets)
	if err := st.RegisterTransport(Proto, p.input); err != nil {
		return nil, fmt.Errorf("tcp: %w", err)
	}
	if err := st.RegisterErrorHandler(Proto, p.icmpError); err != nil {
		return nil, fmt.Errorf("tcp: %w", err)
	}
	if err := st.RegisterPollHook(p.poll); err != nil {
		return nil, fmt.Errorf("tcp: %w", err)
	}
	st.OnClose(p.closeAll)
	return p, nil
}

// Stack returns the stack p runs on.
func (p *Protocol) Stack() *stack.Stack { return p.st }

// Config returns the configuration in force (defaults filled in).
func (p *Protocol) Config() Config { return p.cfg }

// Recorder returns the trace recorder (nil when off).
func (p *Protocol) Recorder() *trace.Recorder { return p.rec }

// MemoryInUse returns the buffer bytes all connections hold.
func (p *Protocol) MemoryInUse() int64 { return p.memory.Load() }

// reserve accounts n more buffer bytes against MemoryLimit.
func (p *Protocol) reserve(n int) bool {
	if p.memory.Add(int64(n)) > p.cfg.MemoryLimit {
		p.memory.Add(-int64(n))
		p.c.inc(TCPMemoryPressures)
		return false
	}
	return true
}

func (p *Protocol) release(n int) { p.memory.Add(-int64(n)) }

// tsNow returns the timestamp clock (milliseconds, RFC 7323 5.4: between
// 1 ms and 1 s per tick) at now.
func (p *Protocol) tsNow(now time.Time) uint32 { return uint32(now.Sub(p.tsBase) / time.Millisecond) }

// allowChallengeAck applies the stack-wide challenge-ACK rate limit (RFC
// 5961 section 7).
func (p *Protocol) allowChallengeAck(now time.Time) bool {
	p.challMu.Lock()
	defer p.challMu.Unlock()
	sec := now.Unix()
	if sec != p.challSec {
		p.challSec, p.challN = sec, 0
	}
	if p.challN >= p.cfg.ChallengeAckLimit {
		p.c.inc(TCPChallengeACKLimited)
		return false
	}
	p.challN++
	return true
}

// loopState is TCP's per-poll-loop state: the connections waiting for the
// loop to act for their application (ready) and segments handed over from
// other loops (inbox).
type loopState struct {
	lp    *stack.Loop
	mu    sync.Mutex
	ready []*Conn
	spare []*Conn
	inbox *socket.DatagramQueue
	out   outSeg // stateless segments (RSTs, cookie SYN-ACKs) built on this loop
}

func (p *Protocol) loopState(lp *stack.Loop) *loopState {
	if ls, ok := p.loops.Load(lp); ok {
		return ls.(*loopState)
	}
	ls, _ := p.loops.LoadOrStore(lp, &loopState{lp: lp, inbox: socket.NewDatagramQueue(1<<20, 1024)})
	return ls.(*loopState)
}

// schedule queues c for its home loop (c.mu held).
func (c *Conn) schedule() {
	if c.queued {
		return
	}
	c.queued = true
	h := c.home
	h.mu.Lock()
	h.ready = append(h.ready, c)
	h.mu.Unlock()
	h.lp.Wake()
}

// poll is the stack's poll hook: it runs the connections queued for this
// loop and the segments handed over to it.
func (p *Protocol) poll(lp *stack.Loop) int {
	v, ok := p.loops.Load(lp)
	if !ok {
		return 0
	}
	ls := v.(*loopState)
	work := 0
	for i := 0; i < 64; i++ {
		data, m, ok := ls.inbox.Peek()
		if !ok {
			break
		}
		p.segmentIn(lp, ls, m.Remote, m.Local, data, true)
		ls.inbox.Discard()
		work++
	}
	ls.mu.Lock()
	batch := ls.ready
	ls.ready = ls.spare[:0]
	ls.mu.Unlock()
	for i, c := range batch {
		c.mu.Lock()
		c.queued = false
		c.onLoop(lp.Now())
		c.mu.Unlock()
		batch[i] = nil
	}
	work += len(batch)
	ls.mu.Lock()
	ls.spare = batch[:0]
	ls.mu.Unlock()
	return work
}

// input is the stack's TCP handler (RFC 9293 3.10.7): it validates the
// segment and passes it to its connection or listener.
func (p *Protocol) input(lp *stack.Loop, ip header.IPv4, bcast bool) {
	if bcast {
		// RFC 1122 4.2.3.10: a SYN to a broadcast or multicast address
		// is ignored; so is anything else.
		p.c.inc(InErrs)
		return
	}
	src, dst := ip.Src(), ip.Dst()
	var seg header.TCP
	var err error
	switch lp.RxL4Checksum() {
	case stack.L4ChecksumGood:
		// The device verified the checksum (82599 L4CS without TCPE,
		// datasheet 7.1.11).
		seg, err = header.ParseTCPVerified(ip.Payload())
	case stack.L4ChecksumBad:
		err = header.ErrTCPChecksum
	default:
		seg, err = header.ParseTCP(ip.Payload(), src, dst)
	}
	if err != nil {
		p.c.inc(InErrs)
		if errors.Is(err, header.ErrTCPChecksum) {
			p.c.inc(InCsumErrors)
		}
		return
	}
	remote := netip.AddrPortFrom(netip.AddrFrom4(src), seg.SrcPort())
	local := netip.AddrPortFrom(netip.AddrFrom4(dst), seg.DstPort())
	p.segmentIn(lp, nil, remote, local, seg, false)
}

// segmentIn dispatches a checked segment. handed says it came through the
// loop's inbox (so it is on its home loop by construction).
func (p *Protocol) segmentIn(lp *stack.Loop, ls *loopState, remote, local netip.AddrPort, seg header.TCP, handed bool) {
	p.c.inc(InSegs)
	if remote.Addr().IsUnspecified() || remote.Port() == 0 || local.Port() == 0 || p.st.IsLocal(remote.Addr()) {
		// Martian endpoints: nothing legitimate comes from them.
		p.c.inc(InErrs)
		return
	}
	e, ok := p.table.Lookup(Proto, local.Addr(), local.Port(), remote.Addr(), remote.Port())
	if !ok {
		p.noConnection(lp, remote, local, seg)
		return
	}
	switch e := e.(type) {
	case *Conn:
		if e.home.lp != lp && !handed {
			// Not this connection's loop: hand the segment over.
			h := e.home
			if !h.inbox.Push(socket.Meta{Local: local, Remote: remote, Proto: Proto}, seg, nil) {
				p.c.inc(TCPBacklogDrop)
				return
			}
			p.c.inc(TCPHandoffs)
			h.lp.Wake()
			return
		}
		e.mu.Lock()
		if e.state == TimeWait && e.newIncarnation(seg) {
			// RFC 9293 3.10.7.4 (TIME-WAIT) and RFC 6191: a new SYN with
			// a higher sequence number (or timestamp) ends TIME-WAIT and
			// goes to the listener.
			p.c.inc(TCPTimeWaitReuse)
			e.destroy(nil)
			e.mu.Unlock()
			if l, ok := p.table.Lookup(Proto, local.Addr(), local.Port(), remote.Addr(), remote.Port()); ok {
				if l, ok := l.(*Listener); ok {
					l.synOrCookie(lp, remote, local, seg)
					return
				}
			}
			p.noConnection(lp, remote, local, seg)
			return
		}
		e.segmentArrives(lp.Now(), seg)
		e.mu.Unlock()
	case *Listener:
		e.synOrCookie(lp, remote, local, seg)
	}
}

// closeAll closes every connection and listener when the stack closes.
func (p *Protocol) closeAll() {
	p.allMu.Lock()
	conns := make([]*Conn, 0, len(p.all))
	for c := range p.all {
		conns = append(conns, c)
	}
	lns := make([]*Listener, 0, len(p.lns))
	for l := range p.lns {
		lns = append(lns, l)
	}
	p.allMu.Unlock()
	for _, l := range lns {
		l.Close()
	}
	for _, c := range conns {
		c.mu.Lock()
		if !c.gone {
			p.rec.AppAbort(c.id, p.rec.Now())
		}
		c.destroy(ErrAborted)
		c.mu.Unlock()
	}
}

// Connections returns a snapshot of every connection, as ss -t shows them.
func (p *Protocol) Connections() []Info {
	p.allMu.Lock()
	conns := make([]*Conn, 0, len(p.all))
	for c := range p.all {
		conns = append(conns, c)
	}
	lns := make([]*Listener, 0, len(p.lns))
	for l := range p.lns {
		lns = append(lns, l)
	}
	p.allMu.Unlock()
	out := make([]Info, 0, len(conns)+len(lns))
	for _, l := range lns {
		out = append(out, l.Info())
	}
	for _, c := range conns {
		out = append(out, c.Info())
	}
	return out
}
